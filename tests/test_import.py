"""CSV import of completed tasks: all rows valid, or nothing written."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from smartstudy.services.accounts import create_user
from smartstudy.services.importing import ImportErrors, import_tasks_csv
from smartstudy.store.db import UnitOfWork, session_scope
from smartstudy.store.orm import PracticeTask, Subject, Topic, TrainingCounter

GOOD = """email,subject,topic,difficulty,correct,rt_seconds,completed_at
ada@example.com,Mathematics,Calculus,easy,1,61.5,2026-01-05T10:00:00Z
ada@example.com,Mathematics,Calculus,hard,0,480,2026-01-05T10:20:00+01:00
ada@example.com,Economics,Microeconomics,medium,true,250,
"""


@pytest.fixture
def ada(context):
    with session_scope(context.sessions) as session:
        create_user(session, "ada@example.com", "password 123", "Ada")


def _counts(context):
    with context.sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(PracticeTask)),
            session.scalar(select(func.count()).select_from(Subject)),
            session.scalar(select(func.count()).select_from(Topic)),
            session.get(TrainingCounter, "training").total,
        )


def test_import_valid_file(context, ada):
    with session_scope(context.sessions) as session:
        result = import_tasks_csv(context, UnitOfWork(session), io.StringIO(GOOD))
    assert (result.rows, result.subjects_created, result.topics_created) == (3, 2, 2)
    assert _counts(context) == (3, 2, 2, 3)
    with context.sessions() as session:
        tasks = session.scalars(select(PracticeTask).order_by(PracticeTask.completed_at)).all()
    # 10:20 at UTC+1 is 09:20 UTC, before the 10:00 UTC row.
    assert [t.difficulty for t in tasks[:2]] == ["hard", "easy"]
    assert tasks[0].completed_at.isoformat() == "2026-01-05T09:20:00+00:00"
    assert tasks[1].actual_time_seconds == 61.5 and tasks[1].is_correct is True
    assert tasks[2].difficulty == "medium" and tasks[2].is_correct is True
    assert all(t.completed_at is not None and t.started_at is not None for t in tasks)


@pytest.mark.parametrize(
    ("bad_line", "column", "needle"),
    [
        ("ada@example.com,Mathematics,Calculus,extreme,1,60,", "difficulty", "'extreme'"),
        ("ada@example.com,Mathematics,Calculus,easy,maybe,60,", "correct", "0/1"),
        ("ada@example.com,Mathematics,Calculus,easy,1,-3,", "rt_seconds", "more than 0"),
        ("ada@example.com,Mathematics,Calculus,easy,1,90000,", "rt_seconds", "24 h"),
        ("ada@example.com,Mathematics,Calculus,easy,1,abc,", "rt_seconds", "not a number"),
        ("nobody@example.com,Mathematics,Calculus,easy,1,60,", "email", "no account"),
        ("ada@example.com,,Calculus,easy,1,60,", "subject", "empty"),
        ("ada@example.com,Mathematics,Calculus,easy,1,60,yesterday", "completed_at", "ISO 8601"),
        (
            "ada@example.com,Mathematics,Calculus,easy,1,60,2999-01-01T00:00:00",
            "completed_at",
            "future",
        ),
    ],
)
def test_one_bad_line_names_it_and_writes_nothing(context, ada, bad_line, column, needle):
    with session_scope(context.sessions) as session:
        import_tasks_csv(context, UnitOfWork(session), io.StringIO(GOOD))
    before = _counts(context)
    text = GOOD + "ada@example.com,Physics,Waves,easy,1,30,\n" + bad_line + "\n"
    session = context.sessions()
    with pytest.raises(ImportErrors) as info:
        import_tasks_csv(context, UnitOfWork(session), io.StringIO(text))
    session.rollback()
    session.close()
    message = str(info.value)
    assert f"line 6, column {column}" in message
    assert needle in message
    assert len(info.value.problems) == 1
    assert _counts(context) == before  # Physics/Waves from line 5 were not created either


def test_header_problems(context, ada):
    session = context.sessions()
    with pytest.raises(ImportErrors, match="line 1: missing column"):
        import_tasks_csv(
            context, UnitOfWork(session), io.StringIO("email,subject\nada@example.com,Maths\n")
        )
    with pytest.raises(ImportErrors, match="unknown column"):
        import_tasks_csv(
            context,
            UnitOfWork(session),
            io.StringIO("email,subject,topic,difficulty,correct,rt_seconds,colour\n"),
        )
    with pytest.raises(ImportErrors, match="empty"):
        import_tasks_csv(context, UnitOfWork(session), io.StringIO(""))
    with pytest.raises(ImportErrors, match="no rows"):
        import_tasks_csv(
            context,
            UnitOfWork(session),
            io.StringIO("email,subject,topic,difficulty,correct,rt_seconds\n"),
        )
    session.close()


def test_every_error_is_reported(context, ada):
    text = (
        "email,subject,topic,difficulty,correct,rt_seconds\n"
        "ada@example.com,M,C,easy,2,60\n"
        "ada@example.com,M,C,easy,1,60\n"
        "ada@example.com,M,C,sideways,1,0\n"
    )
    with context.sessions() as session, pytest.raises(ImportErrors) as info:
        import_tasks_csv(context, UnitOfWork(session), io.StringIO(text))
    problems = info.value.problems
    assert problems[0].startswith("line 2, column correct")
    assert any(p.startswith("line 4, column difficulty") for p in problems)
    assert any(p.startswith("line 4, column rt_seconds") for p in problems)
