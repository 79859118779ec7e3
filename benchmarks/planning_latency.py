"""Latency of next-task recommendations and exam plans for a student with 1,000 tasks.

Acceptance 5 of issue 13: both are served in under 100 ms. On a scratch SQLite database,
``simulate_cohort`` adds students with 1,000 completed tasks each over the last 60 days (the
demo catalogue: 7 topics in 3 subjects); the model families are trained and loaded as a
server has them; the first student gets an exam on every topic (weights 1 to 3), 14 days
ahead at 30 min/day. Then, each call in its own session as a request has it:

- the service functions (``services.planning.recommendations`` and ``exam_plan``), with the
  time of a plan split into its parts: the student's record (three grouped queries), the
  predictions (7 topics x 3 difficulties through ``PredictionService.predict``) and the
  pure planner (``planning.build_plan``: the plan, the workload curve at 9 daily budgets and
  the bisection for the minutes needed);
- the same through the API (``GET /v1/recommendations``, ``GET /v1/exams/{id}/plan``) with
  FastAPI's TestClient, serialisation and authentication included;
- longer exams (60 days at 60 min, 365 days at 120 min), where the planner's share grows.

The predictor reads the database at most every ``Settings.sync_interval`` seconds, as
``smartstudy serve`` configures it (``--sync-interval 0`` reads it before every prediction).
It prints the median and 95th percentile in milliseconds over ``--repeat`` calls.

    .venv/bin/python benchmarks/planning_latency.py [--students 20] [--repeat 50]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from smartstudy.api.app import create_app
from smartstudy.config import Settings
from smartstudy.jobs import SyncRunner
from smartstudy.planning import ExamSpec, build_plan
from smartstudy.services import accounts, planning
from smartstudy.services.cohort import cohort_email, simulate_cohort
from smartstudy.services.context import AppContext
from smartstudy.store.db import session_scope
from smartstudy.store.orm import Exam, User
from smartstudy.store.repositories import exams as exams_repo

PASSWORD = "benchmark password 1"
TASKS = 1000
LIMIT_MS = 100.0


def _times(fn: Callable[[], object], repeat: int) -> list[float]:
    fn()  # warm: a first call may load what later ones reuse
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def _line(label: str, ms: list[float], *, judged: bool = False) -> None:
    median = statistics.median(ms)
    p95 = statistics.quantiles(ms, n=20)[-1] if len(ms) >= 2 else ms[0]
    verdict = ""
    if judged:
        verdict = "  ok (< 100 ms)" if p95 < LIMIT_MS else "  OVER 100 ms"
    print(f"{label:<58} median {median:7.1f} ms   p95 {p95:7.1f} ms{verdict}")


def _setup(context: AppContext, students: int, families: list[str]) -> tuple[User, Exam]:
    started = time.perf_counter()
    simulate_cohort(context, students, TASKS, seed=0, days=60.0, password=PASSWORD)
    print(f"cohort: {students} students x {TASKS} completed tasks", end="")
    print(f" in {time.perf_counter() - started:.0f} s")
    for name in families:
        started = time.perf_counter()
        with session_scope(context.sessions) as session:
            context.predictor.train(session, name)
        print(f"trained {name} in {time.perf_counter() - started:.1f} s")
    with session_scope(context.sessions) as session:
        user = accounts.get_user_by_email(session, cohort_email(1))
        assert user is not None
        topics = exams_repo.all_topics(session)
        exam = planning.create_exam(
            session,
            user,
            name="Finals",
            exam_date=planning.utc_today() + timedelta(days=14),
            daily_minutes=30,
            topics=[(t.id, 1.0 + k % 3) for k, t in enumerate(topics)],
        )
        session.expunge_all()
    with session_scope(context.sessions) as session:  # load and catch up every family
        planning.recommendations(session, context.predictor, user)
    return user, exam


def _service(context: AppContext, user: User, exam: Exam, repeat: int) -> None:
    predictor = context.predictor

    def recommend() -> None:
        with context.sessions() as session:
            planning.recommendations(session, predictor, session.get(User, user.id))

    def plan() -> None:
        with context.sessions() as session:
            me = session.get(User, user.id)
            planning.exam_plan(session, predictor, me, planning.get_exam(session, me, exam.id))

    _line("service: recommendations (7 topics x 3)", _times(recommend, repeat), judged=True)
    _line("service: exam plan, 14 days at 30 min/day", _times(plan, repeat), judged=True)

    # Where a plan's time goes.
    with context.sessions() as session:
        me = session.get(User, user.id)
        weighted = planning.exam_topics(session, exam)
        topics = [t for t, _ in weighted]
        _line(
            "  part: record (grouped queries)",
            _times(lambda: planning.topic_states(session, me, weighted), repeat),
        )
        _line(
            "  part: predictions (21 cells)",
            _times(lambda: planning.forecasts(session, predictor, me, topics), repeat),
        )
        states = planning.topic_states(session, me, weighted)
        cells = planning.forecasts(session, predictor, me, topics)
    today = planning.utc_today()
    for days, minutes in ((14, 30), (60, 60), (365, 120)):
        spec = ExamSpec(exam_date=today + timedelta(days=days), daily_minutes=minutes)
        for workload in (True, False):
            what = "with" if workload else "without"
            _line(
                f"  part: build_plan {days} d at {minutes} min, {what} workload",
                _times(
                    lambda s=spec, w=workload: build_plan(states, cells, s, today, workload=w),
                    max(repeat // 5, 3),
                ),
            )


def _api(context: AppContext, exam: Exam, repeat: int) -> None:
    with TestClient(create_app(context=context)) as client:
        r = client.post("/v1/auth/login", json={"email": cohort_email(1), "password": PASSWORD})
        r.raise_for_status()
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}

        def get(path: str) -> Callable[[], None]:
            def call() -> None:
                client.get(path, headers=headers).raise_for_status()

            return call

        _line(
            "API: GET /v1/recommendations", _times(get("/v1/recommendations"), repeat), judged=True
        )
        _line(
            "API: GET /v1/exams/{id}/plan (14 days at 30 min/day)",
            _times(get(f"/v1/exams/{exam.id}/plan"), repeat),
            judged=True,
        )
        _line(
            "API: GET /v1/exams/{id}/plan.ics", _times(get(f"/v1/exams/{exam.id}/plan.ics"), repeat)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=20, help="e.g. 20: students of 1,000 tasks")
    parser.add_argument("--repeat", type=int, default=50, help="timed calls per line")
    parser.add_argument(
        "--families",
        default="lnirt,baseline",
        help="model families to train first, e.g. lnirt,neural,baseline",
    )
    parser.add_argument(
        "--sync-interval",
        type=float,
        default=None,
        help="seconds between the predictor's database reads (default: the server's setting)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder), secret_key="bench-" + "x" * 40)
        settings.retrain_every = 1_000_000  # no training while the clock runs
        context = AppContext.from_settings(settings)
        context.migrate()
        context.runner = SyncRunner()
        context.predictor.sync_interval = (
            settings.sync_interval if args.sync_interval is None else args.sync_interval
        )
        print(f"predictor sync interval: {context.predictor.sync_interval} s; today {date.today()}")
        try:
            user, exam = _setup(context, args.students, args.families.split(","))
            _service(context, user, exam, args.repeat)
            _api(context, exam, args.repeat)
        finally:
            context.close()


if __name__ == "__main__":
    main()
