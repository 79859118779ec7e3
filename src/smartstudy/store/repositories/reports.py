"""Reads behind a student's report pages (``services.reports``): counts and columns of their
tasks, their mastery, quizzes and export rows, and the model versions the admin page lists.

Every function that reads a user's rows takes that user's id and returns nothing of anyone
else's. Counting and grouping happen here in SQL; the services shape what comes back.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, case, func, select
from sqlalchemy.orm import Session, defer, selectinload

from smartstudy.store.orm import (
    DIFFICULTIES,
    BKTUserSkillState,
    Concept,
    Exam,
    MasterySnapshot,
    ModelVersion,
    PracticeTask,
    Question,
    SessionQuestion,
    StudySession,
    Subject,
    Topic,
    User,
)

_CORRECT_AS_INT = case((PracticeTask.is_correct.is_(True), 1), else_=0)
_COMPLETED = PracticeTask.completed_at.is_not(None)
#: The prediction a task stored when it was made: chance, median, p10 and p90, and the model.
STORED_PREDICTION = (
    PracticeTask.predicted_correct,
    PracticeTask.predicted_time_median_s,
    PracticeTask.predicted_time_p10_s,
    PracticeTask.predicted_time_p90_s,
    PracticeTask.model_name,
)


# -- the user and their tasks ----------------------------------------------------------------
def stored_time_zone(session: Session, user_id: uuid.UUID) -> str | None:
    """The time zone stored for the user (None for an unknown user or none stored)."""
    return session.scalar(select(User.time_zone).where(User.id == user_id))


def completed_tasks_since(
    session: Session, user_id: uuid.UUID, since: datetime, limit: int
) -> list[PracticeTask]:
    """The user's tasks completed at or after ``since``, newest first, topic and subject loaded."""
    return list(
        session.scalars(
            select(PracticeTask)
            .options(selectinload(PracticeTask.topic).selectinload(Topic.subject))
            .where(PracticeTask.user_id == user_id, PracticeTask.completed_at >= since)
            .order_by(PracticeTask.completed_at.desc())
            .limit(limit)
        )
    )


def completed_totals(
    session: Session, user_id: uuid.UUID, since: datetime | None = None
) -> tuple[int, int, float]:
    """(tasks, correct, seconds) of the user's completed tasks, all or those since ``since``."""
    stmt = select(
        func.count(),
        func.coalesce(func.sum(_CORRECT_AS_INT), 0),
        func.coalesce(func.sum(PracticeTask.actual_time_seconds), 0.0),
    ).where(PracticeTask.user_id == user_id, _COMPLETED)
    if since is not None:
        stmt = stmt.where(PracticeTask.completed_at >= since)
    n, correct, seconds = session.execute(stmt).one()
    return int(n), int(correct), float(seconds)


def completions_since(
    session: Session, user_id: uuid.UUID, since: datetime
) -> list[tuple[datetime, bool | None, float | None]]:
    """(completed_at, correct, seconds) of each task the user completed since ``since``."""
    rows = session.execute(
        select(
            PracticeTask.completed_at, PracticeTask.is_correct, PracticeTask.actual_time_seconds
        ).where(PracticeTask.user_id == user_id, PracticeTask.completed_at >= since)
    )
    return [(at, correct, seconds) for at, correct, seconds in rows]


def topic_difficulty_aggregates(session: Session, user_id: uuid.UUID) -> list[Row[Any]]:
    """Per (subject, topic, difficulty) of the user's completed tasks: subject, topic,
    difficulty, count, correct, mean seconds, mean predicted chance, mean predicted median."""
    return list(
        session.execute(
            select(
                Subject.name,
                Topic.name,
                PracticeTask.difficulty,
                func.count(),
                func.sum(_CORRECT_AS_INT),
                func.avg(PracticeTask.actual_time_seconds),
                func.avg(PracticeTask.predicted_correct),
                func.avg(PracticeTask.predicted_time_median_s),
            )
            .join(Topic, Topic.id == PracticeTask.topic_id)
            .join(Subject, Subject.id == Topic.subject_id)
            .where(PracticeTask.user_id == user_id, _COMPLETED)
            .group_by(Subject.name, Topic.name, PracticeTask.difficulty)
        )
    )


def completed_task_columns(session: Session, user_id: uuid.UUID) -> list[Row[Any]]:
    """The user's completed tasks oldest first, as columns: completed_at, topic, difficulty,
    correct, seconds, predicted chance, predicted median, p10 and p90, model name."""
    return list(
        session.execute(
            select(
                PracticeTask.completed_at,
                Topic.name,
                PracticeTask.difficulty,
                PracticeTask.is_correct,
                PracticeTask.actual_time_seconds,
                *STORED_PREDICTION,
            )
            .join(Topic, Topic.id == PracticeTask.topic_id)
            .where(PracticeTask.user_id == user_id, _COMPLETED)
            .order_by(PracticeTask.completed_at, PracticeTask.id)
        )
    )


# -- the task history ------------------------------------------------------------------------
@dataclass(frozen=True)
class TaskFilter:
    """Which of a user's tasks a history page lists (None: no condition). ``status`` is
    "completed" or "open", ``result`` "correct" or "wrong"; ``created_from`` (included) and
    ``created_before`` (excluded) are UTC instants."""

    user_id: uuid.UUID
    topic_id: uuid.UUID | None = None
    subject_id: uuid.UUID | None = None
    difficulty: str | None = None
    status: str | None = None
    result: str | None = None
    created_from: datetime | None = None
    created_before: datetime | None = None


_DIFFICULTY_RANK = case({d: i for i, d in enumerate(DIFFICULTIES)}, value=PracticeTask.difficulty)
#: What each sort of the history orders by.
HISTORY_SORT_KEYS: dict[str, Any] = {
    "date": PracticeTask.created_at,
    "completed": PracticeTask.completed_at,
    "topic": Topic.name,
    "difficulty": _DIFFICULTY_RANK,
    "predicted": PracticeTask.predicted_correct,
    "time": PracticeTask.actual_time_seconds,
    "result": PracticeTask.is_correct,
}


def _task_conditions(f: TaskFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [PracticeTask.user_id == f.user_id]
    if f.topic_id is not None:
        conditions.append(PracticeTask.topic_id == f.topic_id)
    if f.subject_id is not None:
        conditions.append(
            PracticeTask.topic_id.in_(select(Topic.id).where(Topic.subject_id == f.subject_id))
        )
    if f.difficulty is not None:
        conditions.append(PracticeTask.difficulty == f.difficulty)
    if f.status == "completed":
        conditions.append(_COMPLETED)
    elif f.status == "open":
        conditions.append(PracticeTask.completed_at.is_(None))
    if f.result in ("correct", "wrong"):
        conditions.append(PracticeTask.is_correct.is_(f.result == "correct"))
    if f.created_from is not None:
        conditions.append(PracticeTask.created_at >= f.created_from)
    if f.created_before is not None:
        conditions.append(PracticeTask.created_at < f.created_before)
    return conditions


def count_tasks(session: Session, f: TaskFilter) -> int:
    """How many of the user's tasks match ``f``."""
    return _count(session, PracticeTask, *_task_conditions(f))


def task_page(
    session: Session, f: TaskFilter, sort: str, descending: bool, limit: int, offset: int
) -> list[PracticeTask]:
    """The tasks matching ``f`` in the order of ``HISTORY_SORT_KEYS[sort]``, topic and subject
    loaded: rows without a value (open tasks) last either way, portably across backends;
    ties newest first, then by id."""
    key = HISTORY_SORT_KEYS[sort]
    order = [key.is_(None), key.desc() if descending else key.asc()]
    if sort != "date":
        order.append(PracticeTask.created_at.desc())
    return list(
        session.scalars(
            select(PracticeTask)
            .join(Topic, Topic.id == PracticeTask.topic_id)
            .options(selectinload(PracticeTask.topic).selectinload(Topic.subject))
            .where(*_task_conditions(f))
            .order_by(*order, PracticeTask.id)
            .limit(limit)
            .offset(offset)
        )
    )


#: The columns of ``export_rows``, in order (the CSV header of the export).
EXPORT_COLUMNS = (
    "task_id",
    "subject",
    "topic",
    "difficulty",
    "description",
    "created_at",
    "started_at",
    "completed_at",
    "correct",
    "rt_seconds",
    "predicted_correct",
    "predicted_time_median_s",
    "predicted_time_p10_s",
    "predicted_time_p90_s",
    "model_name",
    "model_version",
)


def export_rows(session: Session, user_id: uuid.UUID) -> list[Row[Any]]:
    """All of the user's tasks oldest first, one row of ``EXPORT_COLUMNS`` each."""
    return list(
        session.execute(
            select(
                PracticeTask.id,
                Subject.name,
                Topic.name,
                PracticeTask.difficulty,
                PracticeTask.description,
                PracticeTask.created_at,
                PracticeTask.started_at,
                PracticeTask.completed_at,
                PracticeTask.is_correct,
                PracticeTask.actual_time_seconds,
                *STORED_PREDICTION,
                PracticeTask.model_version,
            )
            .join(Topic, Topic.id == PracticeTask.topic_id)
            .join(Subject, Subject.id == Topic.subject_id)
            .where(PracticeTask.user_id == user_id)
            .order_by(PracticeTask.created_at, PracticeTask.id)
        )
    )


def _count(session: Session, model: type, *conditions: Any) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0


def owned_counts(session: Session, user_id: uuid.UUID) -> dict[str, int]:
    """How many rows of each kind belong to the user (what account deletion removes)."""
    quiz_ids = select(StudySession.id).where(StudySession.user_id == user_id)
    return {
        "tasks": _count(session, PracticeTask, PracticeTask.user_id == user_id),
        "quiz_sessions": _count(session, StudySession, StudySession.user_id == user_id),
        "quiz_questions": _count(
            session, SessionQuestion, SessionQuestion.session_id.in_(quiz_ids)
        ),
        "mastery_states": _count(session, BKTUserSkillState, BKTUserSkillState.user_id == user_id),
        "mastery_snapshots": _count(session, MasterySnapshot, MasterySnapshot.user_id == user_id),
        "exams": _count(session, Exam, Exam.user_id == user_id),
    }


# -- catalogue and mastery -------------------------------------------------------------------
def mastery_rows(
    session: Session, user_id: uuid.UUID
) -> list[tuple[uuid.UUID, str, str, float, int]]:
    """(concept id, concept, topic, mastery, attempts) of each concept the user attempted,
    by topic then concept name."""
    rows = session.execute(
        select(
            BKTUserSkillState.concept_id,
            Concept.name,
            Topic.name,
            BKTUserSkillState.p_mastery,
            BKTUserSkillState.n_attempts,
        )
        .join(Concept, Concept.id == BKTUserSkillState.concept_id)
        .join(Topic, Topic.id == Concept.topic_id)
        .where(BKTUserSkillState.user_id == user_id)
        .order_by(Topic.name, Concept.name)
    )
    return [(cid, concept, topic, p, n) for cid, concept, topic, p, n in rows]


def subjects_with_concepts(session: Session) -> list[Subject]:
    """Every subject by name, with its topics and their concepts loaded."""
    return list(
        session.scalars(
            select(Subject)
            .options(selectinload(Subject.topics).selectinload(Topic.concepts))
            .order_by(Subject.name)
        )
    )


def mastery_by_concept(session: Session, user_id: uuid.UUID) -> dict[uuid.UUID, tuple[float, int]]:
    """The user's (mastery, attempts) per concept they have a state for."""
    rows = session.execute(
        select(
            BKTUserSkillState.concept_id,
            BKTUserSkillState.p_mastery,
            BKTUserSkillState.n_attempts,
        ).where(BKTUserSkillState.user_id == user_id)
    )
    return {cid: (p, n) for cid, p, n in rows}


def question_counts(session: Session) -> dict[uuid.UUID, int]:
    """How many questions each concept has (concepts without any are absent)."""
    rows = session.execute(select(Question.concept_id, func.count()).group_by(Question.concept_id))
    return {cid: int(n) for cid, n in rows}


def count_questions(session: Session, concept_id: uuid.UUID) -> int:
    """How many questions the concept has."""
    return _count(session, Question, Question.concept_id == concept_id)


def completed_by_topic(session: Session, user_id: uuid.UUID) -> dict[uuid.UUID, tuple[int, int]]:
    """The user's (completed, correct) task counts per topic they completed a task of."""
    rows = session.execute(
        select(PracticeTask.topic_id, func.count(), func.sum(_CORRECT_AS_INT))
        .where(PracticeTask.user_id == user_id, _COMPLETED)
        .group_by(PracticeTask.topic_id)
    )
    return {tid: (int(n), int(c or 0)) for tid, n, c in rows}


def find_concept(session: Session, concept_id: uuid.UUID) -> Concept | None:
    """The concept with its topic and subject loaded, or None."""
    return session.scalar(
        select(Concept)
        .options(selectinload(Concept.topic).selectinload(Topic.subject))
        .where(Concept.id == concept_id)
    )


def mastery_state(
    session: Session, user_id: uuid.UUID, concept_id: uuid.UUID
) -> BKTUserSkillState | None:
    """The user's mastery state of the concept, or None before their first attempt."""
    return session.get(BKTUserSkillState, (user_id, concept_id))


def mastery_snapshots(
    session: Session,
    user_id: uuid.UUID,
    concept_ids: Collection[uuid.UUID],
    until: datetime | None = None,
) -> list[MasterySnapshot]:
    """The user's mastery snapshots of the concepts, oldest first (up to ``until``)."""
    stmt = select(MasterySnapshot).where(
        MasterySnapshot.user_id == user_id, MasterySnapshot.concept_id.in_(list(concept_ids))
    )
    if until is not None:
        stmt = stmt.where(MasterySnapshot.created_at <= until)
    return list(session.scalars(stmt.order_by(MasterySnapshot.created_at)))


def concept_names(session: Session, concept_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The name of each concept of ``concept_ids`` that exists."""
    rows = session.execute(
        select(Concept.id, Concept.name).where(Concept.id.in_(list(concept_ids)))
    )
    return {cid: name for cid, name in rows}


def topic_names(session: Session, topic_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The name of each topic of ``topic_ids`` that exists."""
    rows = session.execute(select(Topic.id, Topic.name).where(Topic.id.in_(list(topic_ids))))
    return {tid: name for tid, name in rows}


def recent_quizzes(session: Session, user_id: uuid.UUID, limit: int) -> list[StudySession]:
    """The user's newest quiz sessions first, with their questions loaded."""
    return list(
        session.scalars(
            select(StudySession)
            .options(selectinload(StudySession.questions))
            .where(StudySession.user_id == user_id)
            .order_by(StudySession.created_at.desc())
            .limit(limit)
        )
    )


# -- model versions --------------------------------------------------------------------------
def version_counts(session: Session) -> dict[str, int]:
    """How many versions each model family has."""
    rows = session.execute(
        select(ModelVersion.model_name, func.count()).group_by(ModelVersion.model_name)
    )
    return {name: int(n) for name, n in rows}


def newest_versions(session: Session, name: str, limit: int) -> list[ModelVersion]:
    """The family's newest versions first, artifacts left unloaded (a page never needs them)."""
    return list(
        session.scalars(
            select(ModelVersion)
            .options(defer(ModelVersion.artifact))
            .where(ModelVersion.model_name == name)
            .order_by(ModelVersion.created_at.desc(), ModelVersion.version.desc())
            .limit(limit)
        )
    )
