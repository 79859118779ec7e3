"""Reads of practice tasks that pages show beside a form."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from smartstudy.store.orm import PracticeTask, Topic


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
