"""Robust learning (issue 10): implausible completion times must not reach the models.

The plausibility rule and the robust statistics live in ``models.base``; every model applies
them (see tests/test_model_contract.py for the per-family check through the public contract).
Here: the rule itself, and acceptance 3 through the app: ten completions with absurd times by
one student change another student's predicted median for that cell by less than 5%, with the
served online state (``/v1/tasks/preview`` after a training run) and for each deterministic
family refitted as the app fits it, on SQLite and PostgreSQL.

Not asserted here: the preview after a second training run. It also moves with the serving
policy (which family answers), the neural network's run-to-run variation and the calibration
fitted on held-out students by the training job, none of which is a model's learning rule.
"""

from __future__ import annotations

import dataclasses
import uuid

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from smartstudy.jobs import SyncRunner
from smartstudy.models.base import (
    MIN_PLAUSIBLE_SECONDS,
    POP_ATTEMPTS_PER_USER_ITEM,
    ROBUST_Z,
    plausible_log_times,
    population_weights,
    robust_seconds,
    winsorise,
)
from smartstudy.models.baseline import Baseline
from smartstudy.services import accounts, tasks
from smartstudy.services.predictor import completed_interactions, item_key
from smartstudy.services.training import run_training
from smartstudy.store.db import UnitOfWork, session_scope
from smartstudy.store.orm import User

ABSURD_TIMES = (1e-300, 86_400.0)
# Families whose refit is a deterministic function of the data. The neural network's training
# varies by about 10% on this small topic when any single time changes (190 s -> 200 s for
# one student moved the victim's median by up to 10.5% in our runs), so a 5% bound on its
# refit cannot be told apart from that variation here; tests/test_model_contract.py checks
# it on the contract data, where that variation is small.
REFIT_CHECKED = ("baseline", "lnirt")
# The largest relative change of another student's predicted median that acceptance 3 allows.
MAX_SHIFT = 0.05


# -- the rule --------------------------------------------------------------------------------
def test_plausibility_rule_floors_and_ignores() -> None:
    lt, has_t = plausible_log_times(np.array([1e-300, 0.5, 30.0, np.nan, np.inf, -1.0, 0.0]))
    assert has_t.tolist() == [True, True, True, False, False, False, False]
    assert lt[:3] == pytest.approx([np.log(MIN_PLAUSIBLE_SECONDS)] * 2 + [np.log(30.0)])


def test_winsorise_bounds_a_time_by_the_band() -> None:
    centre, spread = np.array([5.0]), np.array([0.4])
    assert winsorise(np.array([0.0]), centre, spread)[0] == pytest.approx(5.0 - ROBUST_Z * 0.4)
    assert winsorise(np.array([11.4]), centre, spread)[0] == pytest.approx(5.0 + ROBUST_Z * 0.4)
    assert winsorise(np.array([5.3]), centre, spread)[0] == 5.3


def test_robust_seconds_clip_only_the_outliers() -> None:
    rng = np.random.default_rng(3)
    rt = np.exp(rng.normal(np.log(190.0), 0.3, 60))
    rt[:3] = (1e-300, 86_400.0, np.nan)
    frame = pd.DataFrame(
        {"user_id": [f"u{k}" for k in range(60)], "item_id": "cell", "skill_id": "topic"}
    ).assign(rt_seconds=rt, correct=1.0, order=0.0)
    out = robust_seconds(frame)
    assert np.isnan(out[2])
    assert 60.0 < out[0] < 190.0 < out[1] < 600.0
    inliers = np.abs(np.log(rt[3:] / 190.0)) < 0.6
    np.testing.assert_allclose(out[3:][inliers], rt[3:][inliers])


def test_population_weights_count_a_users_first_attempts_per_item() -> None:
    users = np.array(["a", "a", "a", "b", "a"], dtype=object)
    items = np.array(["x", "x", "y", "x", "x"], dtype=object)
    has_t = np.array([False, True, True, True, True])
    w = population_weights(users, items, has_t)
    expected = [0.0, 1.0, 1.0, 1.0, float(POP_ATTEMPTS_PER_USER_ITEM > 1)]
    assert w.tolist() == expected


def test_baseline_fit_then_update_matches_refit_with_absurd_rows() -> None:
    """fit() replays update()'s winsorisation, so the online and retrained states agree."""
    rng = np.random.default_rng(5)
    n = 400
    rt = np.exp(rng.normal(4.0, 0.5, n))
    rt[rng.random(n) < 0.05] = 1e-300
    frame = pd.DataFrame(
        {
            "user_id": [f"u{v}" for v in rng.integers(0, 20, n)],
            "item_id": [f"i{v}" for v in rng.integers(0, 6, n)],
            "skill_id": "s",
            "correct": rng.integers(0, 2, n),
            "rt_seconds": rt,
            "order": np.arange(n, dtype=float),
        }
    )
    online = Baseline().fit(frame.iloc[:300])
    for row in frame.iloc[300:].to_dict("records"):
        online.update(row)
    refit = Baseline().fit(frame)
    a, b = online._get_state(), refit._get_state()
    np.testing.assert_allclose(a["item_stats"], b["item_stats"], rtol=1e-9)
    np.testing.assert_allclose(a["global_stats"], b["global_stats"], rtol=1e-9)


# -- acceptance 3, through the app -----------------------------------------------------------
def _user(context, email: str) -> User:
    with session_scope(context.sessions) as session:
        return accounts.create_user(session, email, "password 123")


def _complete(context, user: User, topic_id, difficulty: str, correct: bool, seconds: float):
    """Create and complete one task; the served models learn from it (no training here:
    the counter's threshold is out of reach)."""
    quiet = dataclasses.replace(
        context, settings=context.settings.model_copy(update={"retrain_every": 10**9})
    )
    with context.sessions() as session:
        task = tasks.create_task(session, context.predictor, user, topic_id, difficulty)
        tasks.complete_task(quiet, UnitOfWork(session), user, task.id, correct, seconds)


def _median(client, headers: dict, topic_id: str) -> float:
    r = client.post(
        "/v1/tasks/preview", json={"topic_id": topic_id, "difficulty": "medium"}, headers=headers
    )
    assert r.status_code == 200, r.text
    return float(r.json()["predicted_time_median_s"])


def _refit_shifts(context, victim: User, topic_id: uuid.UUID, attacker: User) -> dict[str, float]:
    """Per family in ``REFIT_CHECKED``: the victim's medium-cell median from a model refitted
    on every completed task, relative to one refitted on the same tasks with the attacker's
    times made ordinary (190 s). Refitting on all tasks keeps the attacker in (a validation
    hold-out might leave them out); the control isolates the effect of the absurd times."""
    with context.sessions() as session:
        data = completed_interactions(session)
    control = data.assign(
        rt_seconds=data["rt_seconds"].where(data["user_id"] != str(attacker.id), 190.0)
    )
    item = item_key(topic_id, "medium")
    shifts = {}
    for name in REFIT_CHECKED:
        medians = [
            context.predictor.fit_model(name, frame)[0].predict_one(
                str(victim.id), item, str(topic_id)
            )["time_median_s"]
            for frame in (data, control)
        ]
        shifts[name] = medians[0] / medians[1] - 1.0
    return shifts


def test_absurd_times_of_one_student_barely_move_another(client, context, student, topic) -> None:
    context.runner = SyncRunner()
    rng = np.random.default_rng(10)
    topic_id = topic["id"]
    topic_uuid = uuid.UUID(topic_id)
    # A populated topic: 25 students, each a little faster or slower than the others.
    for k in range(25):
        user = _user(context, f"peer{k}@example.com")
        speed = rng.normal(0.0, 0.25)
        for difficulty, base, n in (("easy", 100.0, 1), ("medium", 190.0, 2), ("hard", 320.0, 1)):
            for _ in range(n):
                seconds = float(base * np.exp(speed + rng.normal(0.0, 0.25)))
                _complete(context, user, topic_uuid, difficulty, bool(rng.random() < 0.6), seconds)
    with context.sessions() as session:
        victim = session.scalars(select(User).where(User.email == "student@example.com")).one()
    for _ in range(3):
        _complete(context, victim, topic_uuid, "medium", True, 190.0)
    run_training(context)

    for k, absurd in enumerate(ABSURD_TIMES):
        before = _median(client, student, topic_id)
        attacker = _user(context, f"attacker{k}@example.com")
        for _ in range(10):
            _complete(context, attacker, topic_uuid, "medium", True, absurd)
        online = _median(client, student, topic_id)
        assert abs(online / before - 1.0) < MAX_SHIFT, (absurd, before, online)
        for name, shift in _refit_shifts(context, victim, topic_uuid, attacker).items():
            assert abs(shift) < MAX_SHIFT, (absurd, name, shift)
