"""A training reads only what was completed since the last one (``services.history``), and
always gets what a whole read would give: late commits, imports of old tasks, deleted
accounts and ties in time included."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import delete

from smartstudy.jobs import SyncRunner
from smartstudy.models.baseline import Baseline
from smartstudy.services import accounts, catalogue, history
from smartstudy.services.history import TrainingHistory
from smartstudy.services.predictor import PredictionService, completed_interactions
from smartstudy.services.training import run_training
from smartstudy.store.db import session_scope
from smartstudy.store.orm import PracticeTask

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def students(context):
    with session_scope(context.sessions) as session:
        topic = catalogue.create_topic(
            session, catalogue.create_subject(session, "Maths").id, "Calculus"
        )
        users = [
            accounts.create_user(session, f"s{k}@example.com", "password 123").id for k in range(12)
        ]
    return context, users, topic.id


def _complete(context, user_id, topic_id, at: datetime, n: int = 1) -> None:
    with session_scope(context.sessions) as session:
        for k in range(n):
            session.add(
                PracticeTask(
                    id=uuid.uuid4(),
                    user_id=user_id,
                    topic_id=topic_id,
                    difficulty=("easy", "medium", "hard")[k % 3],
                    created_at=at,
                    completed_at=at,
                    is_correct=k % 2 == 0,
                    actual_time_seconds=30.0 + k,
                )
            )


def _same_as_a_whole_read(context, kept: TrainingHistory, how: str) -> pd.DataFrame:
    with context.sessions() as session:
        got = kept.read(session)
        whole = completed_interactions(session)
    pd.testing.assert_frame_equal(got, whole)
    assert kept.last_read == how
    return got


def test_each_read_is_a_whole_read_and_reads_only_what_is_new(students) -> None:
    context, users, topic = students
    kept = TrainingHistory()
    for k, user in enumerate(users):
        _complete(context, user, topic, START + timedelta(minutes=k), n=5)
    _same_as_a_whole_read(context, kept, "full")
    _same_as_a_whole_read(context, kept, "new rows only")  # nothing new
    newest = START + timedelta(minutes=len(users) - 1)
    # Later completions, and ties in time (ordered by task id, as a whole read orders them).
    _complete(context, users[0], topic, newest + timedelta(minutes=5), n=4)
    got = _same_as_a_whole_read(context, kept, "new rows only")
    got["correct"] = -1.0  # a caller's change stays with the caller
    _same_as_a_whole_read(context, kept, "new rows only")
    # Committed late by another process: a time before the newest one read, within LATE.
    _complete(context, users[1], topic, newest + timedelta(minutes=5, seconds=-3))
    _same_as_a_whole_read(context, kept, "new rows only")
    # Imported with an old time: the counts disagree, so everything is read again.
    _complete(context, users[2], topic, START - timedelta(days=30))
    _same_as_a_whole_read(context, kept, "full")
    _complete(context, users[3], topic, newest + timedelta(minutes=9))
    _same_as_a_whole_read(context, kept, "new rows only")
    # An account deleted: its tasks go, and so do they from the next read.
    with session_scope(context.sessions) as session:
        session.execute(delete(PracticeTask).where(PracticeTask.user_id == users[4]))
    got = _same_as_a_whole_read(context, kept, "full")
    assert str(users[4]) not in set(got["user_id"])


def test_everything_is_read_again_after_a_while(students, monkeypatch) -> None:
    context, users, topic = students
    _complete(context, users[0], topic, START, n=3)
    kept = TrainingHistory()
    _same_as_a_whole_read(context, kept, "full")
    monkeypatch.setattr(history, "FULL_EVERY", 0.0)
    _same_as_a_whole_read(context, kept, "full")
    monkeypatch.setattr(history, "FULL_EVERY", 300.0)
    _same_as_a_whole_read(context, kept, "new rows only")


def test_trainings_read_only_what_is_new(students) -> None:
    context, users, topic = students
    context.runner = SyncRunner()
    context.predictor = PredictionService(chain=("baseline",), factories={"baseline": Baseline})
    for k, user in enumerate(users):
        _complete(context, user, topic, START + timedelta(minutes=k), n=12)
    first = run_training(context)
    _complete(context, users[0], topic, START + timedelta(hours=1), n=3)
    second = run_training(context)
    assert (first.summary["read"], second.summary["read"]) == ("full", "new rows only")
    assert second.summary["rows"] == first.summary["rows"] + 3 == 12 * len(users) + 3


def test_a_completion_committed_during_a_read_does_not_make_it_read_everything(
    students, monkeypatch
) -> None:
    """The new rows and the count they are checked against come from one snapshot: under
    load, completions commit between the two statements all the time."""
    context, users, topic = students
    if context.engine.dialect.name == "sqlite":
        pytest.skip("SQLite: a read holds the write lock, so nothing commits during it")
    _complete(context, users[0], topic, START, n=3)
    kept = TrainingHistory()
    _same_as_a_whole_read(context, kept, "full")
    _complete(context, users[0], topic, START + timedelta(minutes=1), n=2)
    count = history.tasks_repo.completed_count
    committed = []

    def count_after_another_commit(session):
        if not committed:  # another process completes a task between the two statements
            _complete(context, users[1], topic, START + timedelta(minutes=2))
            committed.append(True)
        return count(session)

    monkeypatch.setattr(history.tasks_repo, "completed_count", count_after_another_commit)
    with context.sessions() as session:
        got = kept.read(session)
    assert committed and kept.last_read == "new rows only"
    assert len(got) == 5  # what was committed when the read began
    monkeypatch.setattr(history.tasks_repo, "completed_count", count)
    assert len(_same_as_a_whole_read(context, kept, "new rows only")) == 6
