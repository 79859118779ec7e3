"""Reads of the question bank."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from smartstudy.store.orm import Question


def find_question(session: Session, question_id: uuid.UUID) -> Question | None:
    """The question, or None when there is no such question."""
    return session.get(Question, question_id)
