"""``smartstudy simulate cohort``: simulated students with completed tasks, valid app data."""

from __future__ import annotations

import dataclasses
import itertools
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from smartstudy.cli import app
from smartstudy.services import accounts, cohort, tasks
from smartstudy.services.errors import ConflictError, InvalidInputError
from smartstudy.services.validation import run_checks
from smartstudy.store.db import session_scope
from smartstudy.store.orm import PracticeTask, Topic, TrainingCounter, User, utcnow

runner = CliRunner()


def _with_retrain_every(context, every: int):
    return dataclasses.replace(
        context, settings=context.settings.model_copy(update={"retrain_every": every})
    )


def _cohort_users(session) -> list[User]:
    return list(
        session.scalars(
            select(User).where(User.email.like("cohort-%@example.com")).order_by(User.email)
        )
    )


def test_a_small_cohort_is_valid_app_data(context):
    context = _with_retrain_every(context, 7)
    before = utcnow()
    result = cohort.simulate_cohort(context, 5, 20, seed=3, days=10, password="cohort pass 1")
    assert (result.students, result.tasks) == (5, 100)
    assert (result.first_email, result.last_email) == (
        "cohort-00001@example.com",
        "cohort-00005@example.com",
    )
    assert result.password is None  # chosen by the caller, not made up

    with context.sessions() as session:
        users = _cohort_users(session)
        assert [u.email for u in users] == [f"cohort-{k:05d}@example.com" for k in range(1, 6)]
        assert all(u.role == "student" and u.is_active for u in users)
        assert len({u.password_hash for u in users}) == 1  # hashed once
        rows = session.scalars(select(PracticeTask).order_by(PracticeTask.completed_at)).all()
        assert len(rows) == 100
        for user in users:
            mine = [t for t in rows if t.user_id == user.id]
            assert len(mine) == 20
            assert user.created_at < mine[0].created_at
            for earlier, later in itertools.pairwise(mine):
                # One task after another: the next starts after the previous ended.
                assert later.created_at >= earlier.completed_at
            assert mine[0].completed_at >= before - timedelta(days=10, minutes=1)
        for t in rows:
            assert t.completed_at is not None and t.completed_at < before
            assert t.created_at <= t.started_at <= t.completed_at
            assert (t.completed_at - t.started_at).total_seconds() == pytest.approx(
                t.actual_time_seconds, abs=1e-3
            )
            assert 0 < t.actual_time_seconds <= tasks.MAX_TASK_SECONDS
            assert t.is_correct in (True, False)
            assert 0 <= t.predicted_correct <= 1
            assert 0 < t.predicted_time_p10_s <= t.predicted_time_median_s
            assert t.predicted_time_median_s <= t.predicted_time_p90_s
            assert (t.model_name, t.model_version) == ("baseline", "simulated")
        # The simulated learners differ: outcomes and predictions are not constant.
        assert 0 < sum(t.is_correct for t in rows) < 100
        assert len({round(t.predicted_correct, 6) for t in rows}) > 10
        assert {t.difficulty for t in rows} <= {"easy", "medium", "hard"}
        counter = session.get(TrainingCounter, tasks.TRAINING_COUNTER)
        assert counter is not None
        # Every completion counted; fewer than retrain_every left pending.
        assert (counter.total, counter.count) == (100, 100 % 7)
        # The demo catalogue holds the topics.
        names = set(session.scalars(select(Topic.name)))
        assert {"Calculus", "Microeconomics", "Mechanics"} <= names

        # A cohort student can sign in and gets predictions.
        user = accounts.authenticate(session, "cohort-00002@example.com", "cohort pass 1")
        topic_id = next(t.topic_id for t in rows if t.user_id == user.id)
        task = tasks.create_task(session, context.predictor, user, topic_id, "medium")
        assert 0 <= task.predicted_correct <= 1 and task.model_name
        session.rollback()

    failed = [r for r in run_checks(context, sample_users=5) if not r.passed]
    assert not failed, failed


def test_a_second_run_adds_new_students_after_the_existing_ones(context):
    first = cohort.simulate_cohort(context, 2, 3, seed=1)
    assert first.password and len(first.password) >= 12
    second = cohort.simulate_cohort(context, 3, 4, seed=1)
    assert second.first_email == "cohort-00003@example.com"
    assert second.last_email == "cohort-00005@example.com"
    with context.sessions() as session:
        emails = [u.email for u in _cohort_users(session)]
        assert emails == [f"cohort-{k:05d}@example.com" for k in range(1, 6)]
        assert session.scalar(select(func.count()).select_from(PracticeTask)) == 2 * 3 + 3 * 4
        assert session.get(TrainingCounter, tasks.TRAINING_COUNTER).total == 18
        # Each run's password opens its own accounts.
        accounts.authenticate(session, "cohort-00001@example.com", first.password)
        accounts.authenticate(session, "cohort-00005@example.com", second.password)


def test_batches_commit_as_they_go(context):
    seen = []
    cohort.simulate_cohort(
        context, 3, 5, batch_rows=4, progress=lambda done, total: seen.append((done, total))
    )
    assert seen == [(4, 15), (8, 15), (12, 15), (15, 15)]


def test_existing_history_feeds_the_predictions(context):
    """A later cohort's stored predictions come from a Baseline that has seen the earlier
    data: a first prediction is the population's, not the empty model's 0.5."""
    cohort.simulate_cohort(context, 4, 30, seed=5)
    cohort.simulate_cohort(context, 1, 1, seed=6)
    with context.sessions() as session:
        user = _cohort_users(session)[-1]
        (task,) = session.scalars(select(PracticeTask).where(PracticeTask.user_id == user.id))
        assert task.predicted_correct != pytest.approx(0.5, abs=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"students": 0, "tasks_per_student": 3}, "students"),
        ({"students": 2, "tasks_per_student": 0}, "tasks"),
        ({"students": 2, "tasks_per_student": 10_000}, "tasks"),
        ({"students": 2, "tasks_per_student": 3, "days": 0}, "days"),
        ({"students": 2, "tasks_per_student": 3, "password": "short"}, "password"),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(context, kwargs, field):
    with pytest.raises(InvalidInputError) as caught:
        cohort.simulate_cohort(context, **kwargs)
    assert caught.value.field == field
    with session_scope(context.sessions) as session:
        assert session.scalar(select(func.count()).select_from(User)) == 0


def test_cli_simulate_cohort(context, tmp_path, monkeypatch):
    monkeypatch.setenv("SMARTSTUDY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SMARTSTUDY_DATABASE_URL", raising=False)
    url = context.engine.url.render_as_string(hide_password=False)
    args = ["simulate", "cohort", "--students", "2", "--tasks", "3", "--database-url", url]
    result = runner.invoke(app, [*args, "--seed", "4"])
    assert result.exit_code == 0, result.output
    assert "2 students (cohort-00001@example.com .. cohort-00002@example.com)" in result.output
    assert "6 completed tasks" in result.output
    assert "password of every new account:" in result.output
    with context.sessions() as session:
        assert len(_cohort_users(session)) == 2
        assert session.scalar(select(func.count()).select_from(PracticeTask)) == 6

    bad = runner.invoke(app, [*args, "--password", "short"])
    assert bad.exit_code == 1
    assert "password: must be at least 8 characters" in bad.output
    with context.sessions() as session:
        assert len(_cohort_users(session)) == 2


def test_cli_refuses_a_malformed_database_url(tmp_path, monkeypatch):
    monkeypatch.setenv("SMARTSTUDY_DATA_DIR", str(tmp_path / "data"))
    args = ["simulate", "cohort", "--students", "1", "--tasks", "1", "--database-url", "nonsense"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "--database-url: 'nonsense' is not a database URL" in result.output


def test_a_concurrent_run_that_took_the_numbers_adds_nothing(context, monkeypatch):
    cohort.simulate_cohort(context, 2, 2, seed=1)
    # As if another run had numbered its students between our look-up and our insert.
    monkeypatch.setattr(cohort, "last_cohort_number", lambda _session: 0)
    with pytest.raises(ConflictError, match=r"cohort-00001@example\.com \.\. cohort-00003"):
        cohort.simulate_cohort(context, 3, 2, seed=2)
    with context.sessions() as session:
        assert len(_cohort_users(session)) == 2
        assert session.scalar(select(func.count()).select_from(PracticeTask)) == 4
        assert session.get(TrainingCounter, tasks.TRAINING_COUNTER).total == 4


def test_the_planner_statistics_are_refreshed_after_the_load(context):
    """A bulk load ends with ANALYZE, so that PostgreSQL reads recent completions through
    their index even with autovacuum off (a table scan otherwise, on every catch-up)."""
    if context.engine.dialect.name != "postgresql":
        pytest.skip("pg_stat_user_tables is PostgreSQL's")
    before = utcnow()
    cohort.simulate_cohort(context, 3, 5, seed=2)
    deadline = time.monotonic() + 10  # a backend reports its statistics within a second
    while True:
        with context.engine.connect() as conn:
            analyzed = conn.execute(
                text(
                    "SELECT greatest(last_analyze, last_autoanalyze) FROM pg_stat_user_tables "
                    "WHERE relname = 'practice_tasks'"
                )
            ).scalar()
        if (analyzed is not None and analyzed >= before) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert analyzed is not None and analyzed >= before
