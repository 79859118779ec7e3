"""Practice tasks: create with a prediction, start, complete, list, read.

Students only ever see their own tasks; another student's task answers "not found", so
that ids reveal nothing. Admins see every task.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from smartstudy.services import rules
from smartstudy.services.catalogue import get_topic
from smartstudy.services.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from smartstudy.services.predictor import Prediction, PredictionService
from smartstudy.store.orm import (
    DIFFICULTIES,
    PracticeTask,
    Topic,
    TrainingCounter,
    User,
    utcnow,
)

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
        raise InvalidInputError(field, f"must be at most {MAX_TASK_SECONDS} seconds (24 h)")
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
    prediction = preview(session, predictor, user, topic_id, difficulty)
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


def complete_task(
    session: Session,
    actor: User,
    task_id: uuid.UUID,
    is_correct: bool,
    actual_time_seconds: float,
    completed_at: datetime | None = None,
) -> PracticeTask:
    """Record the outcome once; the caller commits, then tells the predictor."""
    seconds = check_time(actual_time_seconds)
    task = _lock_task(session, actor, task_id)
    if task.completed_at is not None:
        raise ConflictError("task is already completed")
    now = completed_at or utcnow()
    if task.started_at is None:
        task.started_at = now - timedelta(seconds=seconds)
    task.completed_at = now
    task.is_correct = bool(is_correct)
    task.actual_time_seconds = seconds
    bump_training_counter(session)
    session.flush()
    return task


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
