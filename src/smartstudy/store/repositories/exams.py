"""Exams, and the reads of a student's record that recommendations and exam plans rest on.

Every read here is bounded by the student's own rows (their tasks, their mastery states),
grouped per topic in the database: one query each, whatever the length of the history.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from smartstudy.store.orm import (
    BKTUserSkillState,
    Concept,
    Exam,
    PracticeTask,
    Subject,
    Topic,
    as_utc,
)

#: How many of the newest completed tasks per topic count as "recent".
RECENT_TASKS = 10


@dataclass(frozen=True)
class TopicRecord:
    """A student's completed work in one topic."""

    n_tasks: int
    last_completed_at: datetime | None
    recent_correct: int
    recent_total: int


def add_exam(session: Session, exam: Exam) -> Exam:
    session.add(exam)
    session.flush()
    return exam


def find_exam(session: Session, exam_id: uuid.UUID) -> Exam | None:
    return session.get(Exam, exam_id)


def remove_exam(session: Session, exam: Exam) -> None:
    session.delete(exam)
    session.flush()


def user_exams(session: Session, user_id: uuid.UUID) -> list[Exam]:
    """The user's exams, by date (then by when they were added)."""
    return list(
        session.scalars(
            select(Exam)
            .where(Exam.user_id == user_id)
            .order_by(Exam.exam_date, Exam.created_at, Exam.id)
        )
    )


def next_exam(session: Session, user_id: uuid.UUID, after: date) -> Exam | None:
    """The user's nearest exam dated after ``after``."""
    return session.scalars(
        select(Exam)
        .where(Exam.user_id == user_id, Exam.exam_date > after)
        .order_by(Exam.exam_date, Exam.created_at, Exam.id)
        .limit(1)
    ).first()


def topics_by_id(session: Session, topic_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Topic]:
    """The topics of ``topic_ids`` that exist."""
    if not topic_ids:
        return {}
    rows = session.scalars(select(Topic).where(Topic.id.in_(list(topic_ids))))
    return {t.id: t for t in rows}


def subject_topics(session: Session, subject_id: uuid.UUID) -> list[Topic]:
    """The subject's topics by name."""
    return list(
        session.scalars(select(Topic).where(Topic.subject_id == subject_id).order_by(Topic.name))
    )


def all_topics(session: Session) -> list[Topic]:
    """Every topic, by subject name then topic name."""
    return list(
        session.scalars(select(Topic).join(Subject).order_by(Subject.name, Topic.name, Topic.id))
    )


def find_subject(session: Session, subject_id: uuid.UUID) -> Subject | None:
    return session.get(Subject, subject_id)


def topic_records(
    session: Session, user_id: uuid.UUID, topic_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, TopicRecord]:
    """Per topic of ``topic_ids`` the user has completed tasks in: how many, when the last
    one was completed, and how many of the newest ``RECENT_TASKS`` were correct. Two
    grouped queries (one aggregate, one ranking each topic's tasks newest first): both
    faster than either one query doing both or reading the rows."""
    if not topic_ids:
        return {}
    done = (
        PracticeTask.user_id == user_id,
        PracticeTask.topic_id.in_(list(topic_ids)),
        PracticeTask.completed_at.is_not(None),
    )
    totals = session.execute(
        select(PracticeTask.topic_id, func.count(), func.max(PracticeTask.completed_at))
        .where(*done)
        .group_by(PracticeTask.topic_id)
    ).all()
    ranked = (
        select(
            PracticeTask.topic_id.label("topic_id"),
            PracticeTask.is_correct.label("is_correct"),
            func.row_number()
            .over(
                partition_by=PracticeTask.topic_id,
                order_by=(PracticeTask.completed_at.desc(), PracticeTask.id),
            )
            .label("rank"),
        )
        .where(*done)
        .subquery()
    )
    recent = {
        topic_id: (int(correct or 0), int(total))
        for topic_id, correct, total in session.execute(
            select(
                ranked.c.topic_id,
                func.sum(case((ranked.c.is_correct.is_(True), 1), else_=0)),
                func.count(),
            )
            .where(ranked.c.rank <= RECENT_TASKS)
            .group_by(ranked.c.topic_id)
        )
    }
    out: dict[uuid.UUID, TopicRecord] = {}
    for topic_id, n, last in totals:
        correct, total = recent.get(topic_id, (0, 0))
        out[topic_id] = TopicRecord(
            n_tasks=int(n),
            last_completed_at=as_utc(last),
            recent_correct=correct,
            recent_total=total,
        )
    return out


def topic_mastery(
    session: Session, user_id: uuid.UUID, topic_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, float]:
    """Per topic: the mean BKT mastery of the user's concepts in it that have a state."""
    if not topic_ids:
        return {}
    rows = session.execute(
        select(Concept.topic_id, func.avg(BKTUserSkillState.p_mastery))
        .join(Concept, Concept.id == BKTUserSkillState.concept_id)
        .where(BKTUserSkillState.user_id == user_id, Concept.topic_id.in_(list(topic_ids)))
        .group_by(Concept.topic_id)
    ).all()
    return {topic_id: float(mean) for topic_id, mean in rows if mean is not None}


def seconds_completed_since(
    session: Session, user_id: uuid.UUID, topic_ids: Collection[uuid.UUID], since: datetime
) -> float:
    """Seconds the user spent on tasks in ``topic_ids`` completed at or after ``since``."""
    if not topic_ids:
        return 0.0
    total = session.scalar(
        select(func.sum(PracticeTask.actual_time_seconds)).where(
            PracticeTask.user_id == user_id,
            PracticeTask.topic_id.in_(list(topic_ids)),
            PracticeTask.completed_at >= since,
        )
    )
    return float(total or 0.0)
