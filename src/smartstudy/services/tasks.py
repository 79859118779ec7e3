"""Practice tasks: create with a prediction, start, complete, list, read.

``complete_task`` (``complete_tasks`` for a batch) is the one completion use case.

Students only ever see their own tasks; another student's task answers "not found", so
that ids reveal nothing. Admins see every task.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Integer, bindparam, case, func, insert, select, update
from sqlalchemy.orm import Session, selectinload

from smartstudy.services import explain, rules, training
from smartstudy.services.catalogue import get_topic, topic_names
from smartstudy.services.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    ServiceError,
)
from smartstudy.services.predictor import Prediction, PredictionService
from smartstudy.store.db import unit_of_work
from smartstudy.store.orm import (
    DIFFICULTIES,
    PracticeTask,
    Topic,
    TrainingCounter,
    User,
    utcnow,
)

if TYPE_CHECKING:
    from smartstudy.services.context import AppContext
    from smartstudy.store.db import UnitOfWork

MAX_TASK_SECONDS = rules.MAX_TASK_SECONDS  # the limit lives in rules; this name stays for callers
#: The counter that schedules model training (see ``Settings.retrain_every``).
TRAINING_COUNTER = "training"


def check_difficulty(difficulty: str) -> str:
    if difficulty not in DIFFICULTIES:
        raise InvalidInputError("difficulty", f"must be one of {', '.join(DIFFICULTIES)}")
    return difficulty


def check_time(seconds: float, field: str = "actual_time_seconds") -> float:
    if not isinstance(seconds, int | float) or not math.isfinite(seconds):
        raise InvalidInputError(field, "must be a number of seconds")
    if seconds <= 0:
        raise InvalidInputError(field, "must be greater than 0 seconds")
    if seconds > MAX_TASK_SECONDS:
        raise InvalidInputError(
            field, f"must be at most {MAX_TASK_SECONDS} seconds ({rules.MAX_TASK_HOURS} h)"
        )
    return float(seconds)


def preview(
    session: Session,
    predictor: PredictionService,
    user: User,
    topic_id: uuid.UUID,
    difficulty: str,
) -> Prediction:
    """What the models expect for this user, topic and difficulty, without a task."""
    get_topic(session, topic_id)
    return predictor.predict(session, user.id, topic_id, check_difficulty(difficulty))


def create_task(
    session: Session,
    predictor: PredictionService,
    user: User,
    topic_id: uuid.UUID,
    difficulty: str,
    description: str | None = None,
) -> PracticeTask:
    description = rules.check_text(
        (description or "").strip(), "description", rules.MAX_DESCRIPTION, multiline=True
    )
    topic_names(session, topic_id)  # the topic exists (topics are never deleted)
    # Every family's answer is stored with the task: the families are ranked on these live
    # one-step-ahead predictions once the outcomes are in (``registry.live_scores``).
    prediction = predictor.predict(
        session, user.id, topic_id, check_difficulty(difficulty), candidates=True
    )
    task = PracticeTask(
        user_id=user.id,
        topic_id=topic_id,
        difficulty=difficulty,
        description=description or None,
        predicted_correct=prediction.p_correct,
        predicted_time_median_s=prediction.time_median_s,
        predicted_time_p10_s=prediction.time_p10_s,
        predicted_time_p90_s=prediction.time_p90_s,
        model_name=prediction.model_name,
        model_version=prediction.model_version,
        family_predictions=prediction.family_predictions(),
    )
    session.add(task)
    session.flush()
    return task


def get_task(session: Session, actor: User, task_id: uuid.UUID) -> PracticeTask:
    task = session.get(PracticeTask, task_id)
    if task is None or (actor.role != "admin" and task.user_id != actor.id):
        raise NotFoundError("task not found")
    return task


def _lock_task(session: Session, actor: User, task_id: uuid.UUID) -> PracticeTask:
    """The task, locked for update where the database supports row locks."""
    task = session.scalar(select(PracticeTask).where(PracticeTask.id == task_id).with_for_update())
    if task is None or (actor.role != "admin" and task.user_id != actor.id):
        raise NotFoundError("task not found")
    return task


def start_task(session: Session, actor: User, task_id: uuid.UUID) -> PracticeTask:
    task = _lock_task(session, actor, task_id)
    if task.completed_at is not None:
        raise ConflictError("task is already completed")
    if task.started_at is not None:
        raise ConflictError("task is already started")
    task.started_at = utcnow()
    session.flush()
    return task


def remember_next(
    session: Session, predictor: PredictionService, user: User, task_id: uuid.UUID
) -> None:
    """Store on a just-completed task the next prediction for its topic and difficulty, with
    its explanation: the result page then shows what it showed at the time, whatever the
    models learn later. Best effort: with no prediction possible, nothing is stored."""
    task = get_task(session, user, task_id)
    try:
        nxt = preview(session, predictor, user, task.topic_id, task.difficulty)
    except ServiceError:
        return
    task.next_prediction = explain.shown_next(session, task, nxt)
    session.flush()


def discard_task(session: Session, actor: User, task_id: uuid.UUID) -> None:
    """Delete a task that is not completed (the student changed their mind); a completed
    task is part of the history and the models' data, and cannot be discarded."""
    task = _lock_task(session, actor, task_id)
    if task.completed_at is not None:
        raise ConflictError("a completed task cannot be discarded")
    session.delete(task)
    session.flush()


@dataclass(frozen=True)
class Completion:
    """One outcome to record: ``actor`` completes their open task ``task_id``."""

    actor: User
    task_id: uuid.UUID
    is_correct: bool
    actual_time_seconds: float
    completed_at: datetime | None = None


def complete_task(
    context: AppContext,
    uow: UnitOfWork,
    actor: User,
    task_id: uuid.UUID,
    is_correct: bool,
    actual_time_seconds: float,
    completed_at: datetime | None = None,
) -> PracticeTask:
    """The completion use case (the API, the web study page and the CSV import all come
    here): record the outcome once, count it toward training, commit, let the served models
    learn from it, and wake the training job when it is due (``complete_tasks``)."""
    completion = Completion(actor, task_id, is_correct, actual_time_seconds, completed_at)
    return complete_tasks(context, uow, [completion])[0]


def complete_tasks(
    context: AppContext, uow: UnitOfWork, completions: Sequence[Completion]
) -> list[PracticeTask]:
    """Complete many tasks in one transaction, all or nothing (an import's file).

    Every time is checked before anything is written. Then the unit of work commits; only
    after the commit do the served models learn (they never learn an outcome that was
    rolled back) and is the training counter bumped once by the number of completions
    (``count_toward_training``): the one statement that takes it to
    ``Settings.retrain_every`` resets it and queues a training job, so exactly one
    completion triggers each training, and the job row is stored before the runner is
    woken. A held unit of work (the demo's seeding) counts inside its own transaction.
    """
    if not completions:
        return []
    seconds = [check_time(c.actual_time_seconds) for c in completions]
    session = uow.session
    locked = _lock_tasks(session, [c.task_id for c in completions])
    done: list[PracticeTask] = []
    for completion, spent in zip(completions, seconds, strict=True):
        task = locked.get(completion.task_id)
        if task is None or not _may_complete(completion.actor, task):
            raise NotFoundError("task not found")
        if task.completed_at is not None:
            raise ConflictError("task is already completed")
        now = completion.completed_at or utcnow()
        if task.started_at is None:
            task.started_at = now - timedelta(seconds=spent)
        task.completed_at = now
        task.is_correct = bool(completion.is_correct)
        task.actual_time_seconds = spent
        done.append(task)
    session.flush()
    for task in done:
        uow.after_commit(partial(context.predictor.observe, task))
    if uow.hold:
        # One all-or-nothing transaction (the demo's seeding): counted inside it.
        if count_completions(session, len(done), context.settings.retrain_every):
            training.queue_training(session)
            uow.after_commit(partial(training.schedule_training, context), stored=True)
    else:
        uow.after_commit(partial(count_toward_training, context, len(done)))
    uow.commit()
    return done


def count_toward_training(context: AppContext, completed: int) -> None:
    """After the completions are committed: add them to the training counter, and queue
    and schedule a training when that takes it to ``Settings.retrain_every``.

    The counter row is the one row every completion updates, so it is updated by one
    statement that the database commits at once (autocommit): its lock is never held while
    this process waits for Python's GIL, and completions do not queue behind each other.
    A process that dies between the two commits loses the count of its last completions,
    which only delays the next training; a completion is never lost, nor trained twice.
    """
    every = context.settings.retrain_every
    with context.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        due = count_completions(conn, completed, every)
    if not due:
        return
    with unit_of_work(context.sessions) as uow:
        training.queue_training(uow.session)
        # Sent even when a queued job was joined: a message lost with a broker outage must
        # not leave that job waiting for good.
        uow.after_commit(partial(training.schedule_training, context))


def _may_complete(actor: User, task: PracticeTask) -> bool:
    return actor.role == "admin" or task.user_id == actor.id


#: Ids per locking query: well under SQLite's and PostgreSQL's bound-parameter limits.
_LOCK_CHUNK = 500


def _lock_tasks(session: Session, task_ids: list[uuid.UUID]) -> dict[uuid.UUID, PracticeTask]:
    """The tasks, locked for update where the database supports row locks (in id order,
    so two batches never wait on each other crosswise)."""
    ordered = sorted(set(task_ids))
    found: dict[uuid.UUID, PracticeTask] = {}
    for start in range(0, len(ordered), _LOCK_CHUNK):
        chunk = ordered[start : start + _LOCK_CHUNK]
        rows = session.scalars(
            select(PracticeTask)
            .where(PracticeTask.id.in_(chunk))
            .order_by(PracticeTask.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        found.update((row.id, row) for row in rows)
    return found


# Built once: this runs after every completion, and building it costs more than running it.
_BY, _EVERY = bindparam("by", type_=Integer), bindparam("every", type_=Integer)
_COUNT_COMPLETIONS = (
    update(TrainingCounter)
    .where(TrainingCounter.name == TRAINING_COUNTER)
    .values(
        count=case((TrainingCounter.count + _BY >= _EVERY, 0), else_=TrainingCounter.count + _BY),
        total=TrainingCounter.total + _BY,
    )
    .returning(TrainingCounter.count)
)


def count_completions(session: Session | Connection, by: int, every: int) -> bool:
    """Add ``by`` completions to the training counter and claim it if that makes it reach
    ``every``: one UPDATE, so the counter row stays locked for the shortest time. True for
    the one statement that takes the count from below ``every`` to ``every`` or more (it
    resets it to zero): exactly one completion triggers each training."""
    new_count = session.execute(_COUNT_COMPLETIONS, {"by": by, "every": every}).scalar_one_or_none()
    if new_count is None:
        session.execute(insert(TrainingCounter).values(name=TRAINING_COUNTER, count=by, total=by))
        return training.claim_training(session, every)
    return by > 0 and new_count == 0


def bump_training_counter(session: Session, by: int = 1) -> None:
    """Atomically add ``by`` completions to the training counter (one UPDATE)."""
    result = session.execute(
        update(TrainingCounter)
        .where(TrainingCounter.name == TRAINING_COUNTER)
        .values(count=TrainingCounter.count + by, total=TrainingCounter.total + by)
    )
    if result.rowcount == 0:
        session.add(TrainingCounter(name=TRAINING_COUNTER, count=by, total=by))


@dataclass(frozen=True)
class TaskPage:
    items: list[PracticeTask]
    total: int
    limit: int
    offset: int


def list_tasks(
    session: Session,
    actor: User,
    *,
    user_id: uuid.UUID | None = None,
    topic_id: uuid.UUID | None = None,
    difficulty: str | None = None,
    completed: bool | None = None,
    limit: int = 50,
    offset: int = 0,
) -> TaskPage:
    if not 1 <= limit <= rules.MAX_PAGE_SIZE:
        raise InvalidInputError("limit", f"must be between 1 and {rules.MAX_PAGE_SIZE}")
    if not 0 <= offset <= rules.MAX_OFFSET:
        raise InvalidInputError("offset", f"must be between 0 and {rules.MAX_OFFSET:,}")
    if actor.role != "admin":
        if user_id is not None and user_id != actor.id:
            raise PermissionDeniedError("students can only list their own tasks")
        user_id = actor.id
    conditions = []
    if user_id is not None:
        conditions.append(PracticeTask.user_id == user_id)
    if topic_id is not None:
        conditions.append(PracticeTask.topic_id == topic_id)
    if difficulty is not None:
        conditions.append(PracticeTask.difficulty == check_difficulty(difficulty))
    if completed is True:
        conditions.append(PracticeTask.completed_at.is_not(None))
    elif completed is False:
        conditions.append(PracticeTask.completed_at.is_(None))
    total = session.scalar(select(func.count()).select_from(PracticeTask).where(*conditions))
    items = session.scalars(
        select(PracticeTask)
        .options(selectinload(PracticeTask.topic).selectinload(Topic.subject))
        .where(*conditions)
        .order_by(PracticeTask.created_at.desc(), PracticeTask.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return TaskPage(items=list(items), total=total or 0, limit=limit, offset=offset)
