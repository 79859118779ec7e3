"""Reads of the catalogue (subjects, topics) for pickers and filters."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from smartstudy.store.orm import Subject, Topic


def subjects_with_topics(session: Session) -> list[Subject]:
    """Every subject by name, with its topics loaded (one query for the topics)."""
    return list(
        session.scalars(
            select(Subject).options(selectinload(Subject.topics)).order_by(Subject.name)
        )
    )


def find_topic(session: Session, topic_id: uuid.UUID) -> Topic | None:
    """The topic, or None when there is no such topic (a form's choice may be stale)."""
    return session.get(Topic, topic_id)
