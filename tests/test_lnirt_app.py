"""LNIRT in the app (issue 3, acceptance 4): the seed-000 bulk user, per topic and difficulty,
and other users' personal parameters staying their own."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from smartstudy.jobs import SyncRunner
from smartstudy.services import accounts, catalogue, tasks
from smartstudy.services.predictor import PredictionService
from smartstudy.services.simulation import simulate_bulk_user
from smartstudy.services.training import run_training
from smartstudy.store.db import UnitOfWork, session_scope
from smartstudy.store.orm import PracticeTask, Topic
from smartstudy.store.repositories.tasks import cell_outcomes


@pytest.fixture
def quiet_context(context):
    # Train only when the test says so: each check below then sees one known version.
    context.runner = SyncRunner()
    context.settings.retrain_every = 1_000_000
    # These are LNIRT's checks: leave the neural model out of the chain.
    context.predictor = PredictionService(chain=("lnirt", "baseline"))
    return context


def _topic(session, name):
    return session.scalar(select(Topic).where(Topic.name == name))


def _observed(session, user_id, topic_id, difficulty):
    rows = cell_outcomes(session, user_id, topic_id, difficulty)
    correct = np.array([r[0] for r in rows], dtype=float)
    seconds = np.array([r[1] for r in rows], dtype=float)
    return len(rows), correct.mean(), float(np.median(seconds))


def test_bulk_user_predictions_match_their_history(quiet_context):
    context = quiet_context
    result = simulate_bulk_user(context, "bulk@example.com", seed=0)
    assert result.tasks == 600
    with context.sessions() as session:
        user = accounts.get_user_by_email(session, "bulk@example.com")
        lnirt = context.predictor.served_model(session, "lnirt")
        for topic_name in ("Calculus", "Microeconomics"):
            topic = _topic(session, topic_name)
            assert lnirt.person_state(user.id, topic.id)["is_personalized"]
            for difficulty in ("easy", "medium", "hard"):
                n, rate, median = _observed(session, user.id, topic.id, difficulty)
                assert n == 100
                p = context.predictor.predict(session, user.id, topic.id, difficulty)
                assert p.model_name == "lnirt"
                where = f"{topic_name} {difficulty}"
                assert abs(p.p_correct - rate) <= 0.05, (where, p.p_correct, rate)
                assert abs(p.time_median_s - median) <= 0.20 * median, (where, p, median)
                assert p.time_p10_s < p.time_median_s < p.time_p90_s


def _history(context, user, topic, outcomes):
    for i, correct in enumerate(outcomes):
        with context.sessions() as session:
            difficulty = ("easy", "medium", "hard")[i % 3]
            task = tasks.create_task(session, context.predictor, user, topic.id, difficulty)
            seconds = (60.0, 200.0, 450.0)[i % 3] * (1.3 if correct else 1.6)
            tasks.complete_task(context, UnitOfWork(session), user, task.id, correct, seconds)


def test_other_users_keep_their_own_parameters(quiet_context):
    context = quiet_context
    with session_scope(context.sessions) as session:
        ada = accounts.create_user(session, "ada@example.com", "password 123")
        ben = accounts.create_user(session, "ben@example.com", "password 123")
        maths = catalogue.create_subject(session, "Mathematics")
        calculus = catalogue.create_topic(session, maths.id, "Calculus")
    _history(context, ada, calculus, [True, True, False, True, True, True, False, True, True])
    _history(context, ben, calculus, [False, True, False, False, True, False, False, True, False])
    run_training(context)

    with context.sessions() as session:
        lnirt = context.predictor.served_model(session, "lnirt")
        ada_before = lnirt.person_state(ada.id, calculus.id)
        ben_before = lnirt.person_state(ben.id, calculus.id)
        items_before = lnirt.models_[str(calculus.id)].b_.copy()
    assert ada_before["mean"][0] > ben_before["mean"][0]  # Ada answers more often right

    # The bulk user works through the service: online learning touches only their state.
    simulate_bulk_user(context, "bulk@example.com", seed=1, per_difficulty=20)
    # ... until simulate_bulk_user's final training; check the online part on a fresh copy:
    with context.sessions() as session:
        bulk = accounts.get_user_by_email(session, "bulk@example.com")
        lnirt = context.predictor.served_model(session, "lnirt")
        snapshot = {u: lnirt.person_state(u.id, calculus.id) for u in (ada, ben)}
        for _ in range(10):
            lnirt.update(
                {
                    "user_id": str(bulk.id),
                    "item_id": f"{calculus.id}:hard",
                    "skill_id": str(calculus.id),
                    "correct": 1,
                    "rt_seconds": 30.0,
                }
            )
        for u in (ada, ben):
            after = lnirt.person_state(u.id, calculus.id)
            np.testing.assert_array_equal(after["mean"], snapshot[u]["mean"])
            np.testing.assert_array_equal(after["cov"], snapshot[u]["cov"])

        # After retraining with the bulk user, the shared item parameters moved, and each
        # other user's posterior is what their OWN answers give under the new items: replay
        # Ada's history for a brand-new person through the online update and compare.
        sub = lnirt.models_[str(calculus.id)]
        assert not np.allclose(sub.b_, items_before)
        ada_rows = session.execute(
            select(PracticeTask)
            .where(PracticeTask.user_id == ada.id)
            .order_by(PracticeTask.completed_at)
        ).scalars()
        replay = type(sub).from_bytes(sub.to_bytes())
        for t in ada_rows:
            replay.update(
                {
                    "user_id": "ada-replay",
                    "item_id": f"{calculus.id}:{t.difficulty}",
                    "correct": int(t.is_correct),
                    "rt_seconds": t.actual_time_seconds,
                }
            )
        fitted = sub.person_state(str(ada.id))
        replayed = replay.person_state("ada-replay")
    np.testing.assert_allclose(fitted["mean"], replayed["mean"], atol=0.1)
    np.testing.assert_allclose(np.diag(fitted["cov"]), np.diag(replayed["cov"]), rtol=0.25)
