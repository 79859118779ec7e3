"""What a user owns: the counts the account-deletion page shows before anything is removed."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from smartstudy.store.repositories import reports as queries


def count_owned(session: Session, user_id: uuid.UUID) -> dict[str, int]:
    """How many rows of each kind belong to the user (what account deletion removes): tasks,
    quiz sessions, quiz questions, mastery states, mastery snapshots and exams."""
    return queries.owned_counts(session, user_id)
