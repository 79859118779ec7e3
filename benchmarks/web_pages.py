"""Server time of every web page for a student with 1,000 completed tasks (target < 300 ms).

Builds a SQLite database in a temporary folder: the demo catalogue and question bank, one
student with N completed tasks spread over 120 days (each created with a prediction and
completed through the services, as a real one), a dozen submitted quizzes, and an admin.
Then renders each page in-process (FastAPI TestClient, no network) many times and prints
the median and p95 per page. Exits non-zero if a page's median is over the target.
Usage: python benchmarks/web_pages.py [--tasks 1000] [--repeat 30]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import statistics
import sys
import tempfile
import time
import warnings
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select

from smartstudy.api.app import create_app
from smartstudy.config import Settings
from smartstudy.services import accounts, catalogue, planning, quiz, tasks
from smartstudy.services.context import AppContext
from smartstudy.services.demo import seed_catalogue
from smartstudy.store.db import session_scope, unit_of_work
from smartstudy.store.orm import StudySession, utcnow

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

TARGET_MS = 300.0
PASSWORD = "benchmark password"
TIMES = {"easy": 70.0, "medium": 230.0, "hard": 500.0}
LOGITS = {"easy": 1.3, "medium": 0.3, "hard": -0.8}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def build(context: AppContext, n_tasks: int) -> dict[str, str]:
    """The student's history; returns ids the page URLs need."""
    rng = np.random.default_rng(0)
    now = utcnow()
    # The history claims no training as it goes: the families are trained at the end.
    seeding = dataclasses.replace(
        context, settings=context.settings.model_copy(update={"retrain_every": 2**31 - 1})
    )
    with unit_of_work(context.sessions, hold=True) as uow:
        session = uow.session
        seed_catalogue(session)
        accounts.create_user(session, "admin@example.com", PASSWORD, "Admin", role="admin")
        user = accounts.create_user(session, "bench@example.com", PASSWORD, "Bench")
        topics = catalogue.list_topics(session)
        offsets = np.sort(rng.uniform(1, 120 * 24, size=n_tasks))[::-1]
        last = None
        for hours_ago in offsets:
            topic = topics[int(rng.integers(len(topics)))]
            difficulty = str(rng.choice(("easy", "medium", "hard")))
            correct = bool(rng.random() < 1 / (1 + math.exp(-LOGITS[difficulty])))
            seconds = float(TIMES[difficulty] * math.exp(rng.normal(0, 0.4)))
            done_at = now - timedelta(hours=float(hours_ago))
            task = tasks.create_task(session, context.predictor, user, topic.id, difficulty)
            task.created_at = done_at - timedelta(seconds=seconds + 20)
            tasks.complete_task(seeding, uow, user, task.id, correct, seconds, completed_at=done_at)
            last = task
        assert last is not None
        open_task = tasks.create_task(session, context.predictor, user, topics[0].id, "medium")
        calculus = next(t for t in topics if t.name == "Calculus")
        quiz_id = ""
        for k in range(12):
            s = quiz.create_session(session, user, topic_id=calculus.id, n_questions=5, seed=k)
            for q in s.questions:
                right = q.snapshot_json["correct_option"]
                quiz.answer_question(session, user, s.id, q.id, right if rng.random() < 0.7 else 0)
            session.flush()
            quiz_id = str(s.id)
        concept_id = str(catalogue.list_concepts(session, calculus.id)[0].id)
        exam = planning.create_exam(
            session,
            user,
            name="Bench exam",
            exam_date=now.date() + timedelta(days=14),
            daily_minutes=30,
            subject_id=calculus.subject_id,
            weekdays_off=[6],
        )
        ids = {
            "exam": str(exam.id),
            "done": str(last.id),
            "open": str(open_task.id),
            "quiz": quiz_id,
            "concept": concept_id,
            "topic": str(calculus.id),
        }
    # Submitting commits per question (as the app does), so it runs after the big transaction.
    with session_scope(context.sessions) as session:
        user = accounts.get_user_by_email(session, "bench@example.com")
        mine = select(StudySession.id).where(StudySession.user_id == user.id)
        for quiz_id in session.scalars(mine).all():
            quiz.submit_session(session, user, quiz_id)
    with session_scope(context.sessions) as session:
        for name in context.predictor.chain:
            if name != "neural":  # the neural family trains in the background only
                context.predictor.train(session, name)
    return ids


def login(client: TestClient, email: str) -> None:
    client.cookies.clear()
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = client.post(
        "/login",
        data={"csrf_token": token, "email": email, "password": PASSWORD},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000, help="completed tasks of the student")
    parser.add_argument("--repeat", type=int, default=30, help="timed renders per page")
    args = parser.parse_args()
    with warnings.catch_warnings():  # Starlette's note about its test client's HTTP library
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), secret_key="benchmark-" + "k" * 40)
        context = AppContext.from_settings(settings)
        context.migrate()
        started = time.perf_counter()
        ids = build(context, args.tasks)
        took = time.perf_counter() - started
        print(f"built a student with {args.tasks} completed tasks in {took:.1f} s")
        student_pages = [
            ("dashboard", "/dashboard"),
            ("study timer: choose", "/study"),
            ("study timer: open task", f"/study/tasks/{ids['open']}"),
            ("study timer: result", f"/study/tasks/{ids['done']}"),
            ("tasks", "/tasks"),
            (
                "tasks: filtered, sorted, page 5",
                f"/tasks?topic={ids['topic']}&sort=time&page=5&per_page=10",
            ),
            ("analytics", "/analytics"),
            ("subjects", "/subjects"),
            ("concept mastery", f"/concepts/{ids['concept']}"),
            ("quiz result", f"/quiz/{ids['quiz']}"),
            ("settings", "/settings"),
            ("settings: CSV export", "/settings/export.csv"),
            ("preparation", "/preparation"),
            ("preparation: exam plan (14 days)", f"/preparation/exams/{ids['exam']}"),
            ("preparation: calendar (.ics)", f"/preparation/exams/{ids['exam']}/plan.ics"),
        ]
        rows = []
        with TestClient(create_app(context=context)) as client:
            for who, pages in (
                ("bench@example.com", student_pages),
                ("admin@example.com", [("admin models", "/admin/models")]),
            ):
                login(client, who)
                for name, path in pages:
                    for _ in range(3):  # warm-up: templates, served models, caches
                        assert client.get(path).status_code == 200, path
                    times = []
                    for _ in range(args.repeat):
                        t0 = time.perf_counter()
                        r = client.get(path)
                        times.append((time.perf_counter() - t0) * 1000)
                        assert r.status_code == 200, (path, r.status_code)
                    rows.append(
                        (name, statistics.median(times), _percentile(times, 0.95), len(r.content))
                    )
        context.close()

    print(f"\nserver time per page, {args.repeat} renders each, SQLite, in-process (ms)")
    print(f"{'page':<34} {'median':>8} {'p95':>8} {'KiB':>6}  under {TARGET_MS:.0f} ms")
    slow = []
    for name, median, p95, size in rows:
        ok = median < TARGET_MS
        slow += [] if ok else [name]
        print(f"{name:<34} {median:8.1f} {p95:8.1f} {size / 1024:6.1f}  {'yes' if ok else 'NO'}")
    if slow:
        print(f"over {TARGET_MS:.0f} ms: {', '.join(slow)}")
        sys.exit(1)
    print(f"every page under {TARGET_MS:.0f} ms (median)")


if __name__ == "__main__":
    main()
