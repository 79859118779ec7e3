"""Storage: migrations, constraints, time zones — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from smartstudy.store.migrate import current_revision, head_revision
from smartstudy.store.orm import Base, PracticeTask, Subject, Topic, TrainingCounter, User


def test_migrations_reach_head_and_create_every_table(context):
    assert current_revision(context.engine) == head_revision()
    tables = set(inspect(context.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    with context.sessions() as session:
        assert session.get(TrainingCounter, "training") is not None


def test_migrations_match_the_orm(context):
    """Autogenerate finds nothing to do: the migrations and the ORM agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with context.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def _user(session, email="u@example.com"):
    user = User(email=email, password_hash="x", display_name="u")
    session.add(user)
    session.flush()
    return user


def _topic(session):
    subject = Subject(name="Maths")
    session.add(subject)
    session.flush()
    topic = Topic(subject_id=subject.id, name="Calculus")
    session.add(topic)
    session.flush()
    return topic


def test_times_come_back_aware_utc(context):
    local = datetime(2026, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    with context.sessions() as session:
        user = _user(session)
        topic = _topic(session)
        task = PracticeTask(user_id=user.id, topic_id=topic.id, difficulty="easy", created_at=local)
        session.add(task)
        session.commit()
        task_id = task.id
    with context.sessions() as session:
        stored = session.get(PracticeTask, task_id).created_at
    assert stored.tzinfo is not None
    assert stored == local
    assert stored.utcoffset() == timedelta(0)


def test_naive_times_are_refused(context):
    with context.sessions() as session:
        user = _user(session)
        topic = _topic(session)
        session.add(
            PracticeTask(
                user_id=user.id,
                topic_id=topic.id,
                difficulty="easy",
                created_at=datetime(2026, 1, 1),
            )
        )
        with pytest.raises(Exception, match="naive datetime"):
            session.flush()


@pytest.mark.parametrize(
    "fields",
    [
        {"difficulty": "extreme"},
        {"actual_time_seconds": 0.0},
        {"actual_time_seconds": 90000.0},
        {"predicted_correct": 1.5},
    ],
)
def test_database_constraints_hold(context, fields):
    with context.sessions() as session:
        user = _user(session)
        topic = _topic(session)
        values = {"difficulty": "easy", **fields}
        session.add(PracticeTask(user_id=user.id, topic_id=topic.id, **values))
        with pytest.raises(IntegrityError):
            session.flush()


def test_unique_email_and_cascade(context):
    with context.sessions() as session:
        user = _user(session)
        topic = _topic(session)
        session.add(PracticeTask(user_id=user.id, topic_id=topic.id, difficulty="hard"))
        session.commit()
        session.delete(user)
        session.commit()
        assert session.scalars(select(PracticeTask)).all() == []
    with context.sessions() as session:
        _user(session, "same@example.com")
        session.commit()
        session.add(User(email="same@example.com", password_hash="y"))
        with pytest.raises(IntegrityError):
            session.flush()


def test_sqlite_uses_wal(tmp_path):
    from sqlalchemy import text

    from smartstudy.store.db import make_engine
    from smartstudy.store.migrate import upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'nested' / 'x.db'}")
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()
    assert (tmp_path / "nested" / "x.db").is_file()
