"""GET /v1/admin/person-fit: students whose times or answers the active LNIRT does not explain
(issue 15)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from smartstudy.services import accounts, catalogue
from smartstudy.services.predictor import PredictionService
from smartstudy.store.db import session_scope
from smartstudy.store.orm import PracticeTask

DIFFICULTIES = ("easy", "medium", "hard")
MEDIAN_SECONDS = {"easy": 60.0, "medium": 200.0, "hard": 450.0}
N_STUDENTS, N_TASKS = 30, 30
RAPID = "rapid@example.com"


def _students(context) -> None:
    """Students whose tasks follow LNIRT, and one who rapid-guesses 40% of the tasks."""
    rng = np.random.default_rng(3)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with session_scope(context.sessions) as session:
        subject = catalogue.create_subject(session, "Maths")
        topic = catalogue.create_topic(session, subject.id, "Calculus")
        for s in range(N_STUDENTS + 1):
            email = RAPID if s == N_STUDENTS else f"s{s}@example.com"
            user = accounts.create_user(session, email, "password 123")
            theta, tau = rng.normal(), rng.normal(0.0, 0.3)
            for k in range(N_TASKS):
                difficulty = DIFFICULTIES[k % 3]
                b = DIFFICULTIES.index(difficulty) - 1.0
                p = 1.0 / (1.0 + np.exp(-(theta - b)))
                seconds = MEDIAN_SECONDS[difficulty] * np.exp(-tau + rng.normal(0.0, 0.4))
                if email == RAPID and k % 5 < 2:
                    seconds, p = seconds * 0.1, 0.25
                at = start + timedelta(minutes=s * N_TASKS + k)
                session.add(
                    PracticeTask(
                        user_id=user.id,
                        topic_id=topic.id,
                        difficulty=difficulty,
                        created_at=at,
                        completed_at=at,
                        is_correct=bool(rng.uniform() < p),
                        actual_time_seconds=float(seconds),
                    )
                )


@pytest.fixture
def lnirt_context(context):
    context.predictor = PredictionService(chain=("lnirt", "baseline"))
    _students(context)
    return context


def test_person_fit_lists_the_rapid_guesser(client, lnirt_context, admin, student) -> None:
    url = "/v1/admin/person-fit"
    untrained = client.get(url, headers=admin)
    assert untrained.status_code == 200, untrained.text
    assert untrained.json()["model_version"] is None and untrained.json()["rows"] == []
    assert "no active LNIRT" in untrained.json()["message"]
    with session_scope(lnirt_context.sessions) as session:
        lnirt_context.predictor.train(session, "lnirt")

    assert client.get(url, headers=student).status_code == 403
    assert client.get(url).status_code == 401
    assert client.get(url, params={"level": 1.5}, headers=admin).status_code == 422

    r = client.get(url, headers=admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_version"] == 1 and body["level"] == 0.05 and body["message"] is None
    assert body["n_students"] == N_STUDENTS + 1
    # Item time parameters come from each student's first attempt at a cell, so with 30
    # students (split at random for validation) a few others may be flagged at 5% as well.
    assert 1 <= body["n_flagged"] < N_STUDENTS // 2
    rows = body["rows"]
    assert len(rows) == body["n_flagged"]
    assert all(row["flag_time"] or row["flag_resp"] for row in rows)
    top = rows[0]  # the most aberrant first
    assert top["email"] == RAPID
    assert top["kind"] == "rapid" and top["flag_time"] and top["mean_resid"] < 0
    assert top["n"] == N_TASKS and top["p_time"] < 1e-6

    everyone = client.get(url, params={"all": "true", "level": 0.01}, headers=admin).json()
    assert len(everyone["rows"]) == N_STUDENTS + 1
    assert everyone["n_flagged"] <= body["n_flagged"]
    assert {row["kind"] for row in everyone["rows"]} <= {"rapid", "slow", "erratic responses", ""}
