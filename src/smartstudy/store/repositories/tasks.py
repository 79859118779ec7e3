"""Reads of practice tasks that pages, explanations and reports show."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, selectinload

from smartstudy.store.orm import PracticeTask, Topic


def completed_count(session: Session) -> int:
    """How many tasks are completed, everyone's."""
    stmt = select(func.count()).select_from(PracticeTask)
    return int(session.scalar(stmt.where(PracticeTask.completed_at.is_not(None))) or 0)


def open_tasks(session: Session, user_id: uuid.UUID, limit: int) -> list[PracticeTask]:
    """The user's newest tasks not completed yet, with topic and subject loaded."""
    return list(
        session.scalars(
            select(PracticeTask)
            .options(selectinload(PracticeTask.topic).selectinload(Topic.subject))
            .where(PracticeTask.user_id == user_id, PracticeTask.completed_at.is_(None))
            .order_by(PracticeTask.created_at.desc())
            .limit(limit)
        )
    )


def last_task(session: Session, user_id: uuid.UUID) -> PracticeTask | None:
    """The user's newest task, with its topic loaded (the study page's last choice)."""
    return session.scalars(
        select(PracticeTask)
        .options(selectinload(PracticeTask.topic))
        .where(PracticeTask.user_id == user_id)
        .order_by(PracticeTask.created_at.desc(), PracticeTask.id)
        .limit(1)
    ).first()


def cell_outcomes(
    session: Session,
    user_id: uuid.UUID,
    topic_id: uuid.UUID,
    difficulty: str,
    *,
    before: datetime | None = None,
    limit: int | None = None,
) -> list[tuple[bool, float | None]]:
    """(correct, seconds) of the user's completed tasks in one (topic, difficulty) cell,
    newest first: all of them, or the ``limit`` newest completed before ``before``."""
    stmt = select(PracticeTask.is_correct, PracticeTask.actual_time_seconds).where(
        PracticeTask.user_id == user_id,
        PracticeTask.topic_id == topic_id,
        PracticeTask.difficulty == difficulty,
        PracticeTask.completed_at.is_not(None),
    )
    if before is not None:
        stmt = stmt.where(PracticeTask.completed_at < before)
    stmt = stmt.order_by(PracticeTask.completed_at.desc(), PracticeTask.id)
    if limit is not None:
        stmt = stmt.limit(limit)
    # Plain rows through the session's connection: every new task's explanation asks.
    return [(bool(ok), t) for ok, t in session.connection().execute(stmt)]


def cell_tallies(
    session: Session,
    *,
    user_id: uuid.UUID | None = None,
    other_than: uuid.UUID | None = None,
    topic_ids: Collection[uuid.UUID] | None = None,
    before: datetime | None = None,
) -> dict[tuple[uuid.UUID, str], tuple[int, int]]:
    """(tasks, correct) of completed tasks per (topic, difficulty): of ``user_id``, or of
    everyone but ``other_than``, in ``topic_ids`` (all topics: None), completed before
    ``before``."""
    stmt = select(
        PracticeTask.topic_id,
        PracticeTask.difficulty,
        func.count(),
        func.coalesce(func.sum(case((PracticeTask.is_correct.is_(True), 1), else_=0)), 0),
    ).where(PracticeTask.completed_at.is_not(None))
    if user_id is not None:
        stmt = stmt.where(PracticeTask.user_id == user_id)
    if other_than is not None:
        stmt = stmt.where(PracticeTask.user_id != other_than)
    if topic_ids is not None:
        stmt = stmt.where(PracticeTask.topic_id.in_(list(topic_ids)))
    if before is not None:
        stmt = stmt.where(PracticeTask.completed_at < before)
    stmt = stmt.group_by(PracticeTask.topic_id, PracticeTask.difficulty)
    return {
        (topic, difficulty): (int(n), int(correct))
        for topic, difficulty, n, correct in session.connection().execute(stmt)
    }
