"""LNIRT in the app (issue 3, acceptance 4): the seed-000 bulk user, per topic and difficulty,
and other users' personal parameters staying their own."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from smartstudy.data.simulate import simulate_app_learners
from smartstudy.jobs import SyncRunner
from smartstudy.models import base as base_module
from smartstudy.models.base import PREDICTION_COLUMNS, LearnerModel
from smartstudy.models.lnirt import LNIRT, DegenerateFitError, TopicLNIRT
from smartstudy.models.lnirt import model as lnirt_model
from smartstudy.services import accounts, catalogue, tasks
from smartstudy.services.errors import CannotPredictError
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
    # These are LNIRT's checks: leave the neural model out of the chain, and ask LNIRT first
    # (with nothing held out the chain's last family would answer first).
    context.predictor = PredictionService(chain=("lnirt", "baseline"), fixed_order=True)
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
    # Times that vary as real ones do (an LNIRT fit on times all alike is degenerate).
    spread = np.exp(0.3 * np.random.default_rng(len(outcomes)).standard_normal(len(outcomes)))
    for i, correct in enumerate(outcomes):
        with context.sessions() as session:
            difficulty = ("easy", "medium", "hard")[i % 3]
            task = tasks.create_task(session, context.predictor, user, topic.id, difficulty)
            seconds = (60.0, 200.0, 450.0)[i % 3] * (1.3 if correct else 1.6) * spread[i]
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


# -- TopicLNIRT.predict_one: the fast path ------------------------------------------------------
def _one_row_predict(model: TopicLNIRT, user: object, item: object, skill: object) -> dict:
    """``predict`` on the one-row frame of an attempt not made yet: what ``predict_one`` serves."""
    frame = pd.DataFrame(
        {"user_id": [user], "item_id": [item], "skill_id": [skill], "correct": [np.nan]}
    ).assign(order=0.0)
    return {k: float(v) for k, v in model.predict(frame).iloc[0].items()}


def _outcome(call: Callable[[], dict]) -> dict | tuple[type, str]:
    """The call's answer, or the type and message of what it raised."""
    try:
        return call()
    except (ValueError, CannotPredictError) as exc:
        return type(exc), str(exc)


def _assert_predict_one_is_predict(model: TopicLNIRT, probes: list[tuple]) -> None:
    for probe in probes:
        fast = _outcome(lambda probe=probe: model.predict_one(*probe))
        slow = _outcome(lambda probe=probe: _one_row_predict(model, *probe))
        if isinstance(slow, tuple):
            assert fast == slow, probe
            continue
        assert list(fast) == list(PREDICTION_COLUMNS), probe
        assert all(type(v) is float and math.isfinite(v) for v in fast.values()), probe
        assert fast == pytest.approx(slow, rel=1e-12, abs=0), probe


TOPIC_PROBES = [
    ("learner1", "Calculus:easy", "Calculus"),  # known user, topic and item
    ("learner2", "Mechanics:hard", "Mechanics"),
    ("stranger", "Calculus:medium", "Calculus"),  # unknown user: the population prior
    ("learner3", "Calculus:expert", "Calculus"),  # unknown item of a fitted topic
    ("learner1", "Waves:easy", "Waves"),  # a topic with too few rows for an LNIRT
    ("learner1", "Optics:easy", "Optics"),  # a topic never seen
    ("learner1", "Calculus:easy", None),  # no topic: the item names it, and has no LNIRT
    ("learner1", "Calculus", None),  # ... unless the item is a fitted topic's name
    ("learner1", "Calculus:easy", np.nan),
]


@pytest.fixture(scope="module")
def topic_model() -> TopicLNIRT:
    train, _ = simulate_app_learners([30] * 40, seed=5)
    waves = (train["skill_id"] == "Waves").to_numpy()
    rare = waves & (np.cumsum(waves) > 5)  # Waves keeps 5 rows, fewer than min_rows
    model = TopicLNIRT().fit(train[~rare])
    assert set(model.models_) == {"Calculus", "Mechanics", "Microeconomics"}
    assert "Waves" in model.skipped_
    return model


def _one_or_two_answers(persons: int, seed: int) -> pd.DataFrame:
    """A topic where each person answers one or two of three items, with times."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(persons):
        tau = rng.normal(0.0, 0.4)
        for k in range(int(rng.integers(1, 3))):
            seconds = float(np.exp(3.0 - tau + 0.5 * rng.normal()))
            rows.append(
                (f"p{u}", f"T:{rng.integers(3)}", "T", float(rng.random() < 0.6), seconds, k)
            )
    return pd.DataFrame(
        rows, columns=["user_id", "item_id", "skill_id", "correct", "rt_seconds", "order"]
    )


def test_a_topic_without_enough_repeated_times_gets_no_lnirt() -> None:
    """Only a person's second and later times show how their times vary around their own
    speed. Eleven persons with one or two answers each (under 10 repeats) let the fit put the
    whole spread into the speeds (a residual sd near 0 instead of 0.5): skipped. Thirty such
    persons fit, with a plausible spread."""
    few = _one_or_two_answers(11, seed=5)
    repeats = len(few) - few["user_id"].nunique()
    assert len(few) >= 10 and repeats < 10
    # The fit that the rule avoids states times to within a few percent, or is degenerate.
    try:
        sharpest = LNIRT().fit(few).alpha_.max()
    except DegenerateFitError:
        sharpest = math.inf
    assert sharpest > 10
    model = TopicLNIRT().fit(few)
    assert model.models_ == {}
    assert f"{repeats} repeated timed answers, fewer than 10" in model.skipped_["T"]
    enough = _one_or_two_answers(30, seed=5)
    assert len(enough) - enough["user_id"].nunique() >= 10
    fitted = TopicLNIRT().fit(enough)
    assert set(fitted.models_) == {"T"}
    assert fitted.models_["T"].alpha_.max() < 10
    # Without any time, the accuracy-only LNIRT is still fitted (it serves no prediction).
    untimed = TopicLNIRT().fit(few.assign(rt_seconds=np.nan))
    assert untimed.accuracy_only_ == ["T"]


def test_topic_predict_one_equals_predict(topic_model: TopicLNIRT) -> None:
    model = TopicLNIRT.from_bytes(topic_model.to_bytes())
    _assert_predict_one_is_predict(model, TOPIC_PROBES)
    for row in (
        {"user_id": "learner1", "item_id": "Calculus:easy", "skill_id": "Calculus", "correct": 0},
        {
            "user_id": "newbie",
            "item_id": "Mechanics:hard",
            "skill_id": "Mechanics",
            "correct": 1,
            "rt_seconds": 800.0,
        },
        {"user_id": "newbie", "item_id": "Calculus:expert", "skill_id": "Calculus", "correct": 1},
    ):
        before = model.predict_one(row["user_id"], row["item_id"], row["skill_id"])
        model.update(row)
        assert model.predict_one(row["user_id"], row["item_id"], row["skill_id"]) != before
    probes = [
        *TOPIC_PROBES,
        ("newbie", "Mechanics:hard", "Mechanics"),
        ("newbie", "Calculus:expert", "Calculus"),
    ]
    _assert_predict_one_is_predict(model, probes)

    clone = TopicLNIRT.from_bytes(model.to_bytes())
    _assert_predict_one_is_predict(clone, probes)
    for probe in probes:
        assert _outcome(lambda probe=probe: clone.predict_one(*probe)) == _outcome(
            lambda probe=probe: model.predict_one(*probe)
        )


def test_a_loaded_model_builds_its_interval_table_before_it_serves(
    topic_model: TopicLNIRT,
) -> None:
    """The Student-t interval table is built by ``load``, not by the first prediction: a
    served version is loaded off the request path, and a request holds its model's lock."""
    assert any(m.time_df_ is not None for m in topic_model.models_.values())
    lnirt_model._halfwidth_table.cache_clear()
    model = TopicLNIRT.from_bytes(topic_model.to_bytes())
    built = lnirt_model._halfwidth_table.cache_info().misses
    assert built >= 1
    for probe in TOPIC_PROBES:
        _outcome(lambda p=probe: model.predict_one(*p))
    assert lnirt_model._halfwidth_table.cache_info().misses == built


def test_topic_learn_many_is_update_row_by_row(topic_model: TopicLNIRT) -> None:
    """Each topic learns its rows at once; rows of a topic without an LNIRT (Waves) or of an
    unknown one teach nothing, and rows without a skill go by their item's topic."""
    rows, _ = simulate_app_learners([25] * 12, seed=9)
    rows = rows.assign(user_id=lambda d: np.where(d.index % 3 == 0, "learner1", d["user_id"]))
    rows.loc[rows.index[::5], "skill_id"] = None
    rows.loc[rows.index[::5], "item_id"] = "Calculus"
    rows.loc[rows.index[1::9], "skill_id"] = "Optics"
    one_by_one, at_once = (TopicLNIRT.from_bytes(topic_model.to_bytes()) for _ in range(2))
    for row in rows.to_dict("records"):
        one_by_one.update(row)
    at_once.learn_many(rows)
    probes = {(u, i, s) for u, i, s in rows[["user_id", "item_id", "skill_id"]].itertuples(False)}
    for probe in sorted(probes, key=str)[:200]:
        mine, theirs = (
            _outcome(lambda p=probe: at_once.predict_one(*p)),
            _outcome(lambda p=probe: one_by_one.predict_one(*p)),
        )
        if isinstance(theirs, dict):
            assert mine == pytest.approx(theirs, rel=1e-12)
        else:
            assert mine == theirs


@pytest.mark.parametrize(
    "args",
    [
        (None, "Calculus:easy", "Calculus"),
        ("learner1", None, "Calculus"),
        (math.nan, "Calculus:easy", "Optics"),
        (pd.NA, "Calculus:easy", "Calculus"),
        ("learner1", pd.NaT, None),
    ],
)
def test_topic_predict_one_rejects_missing_ids_as_before(
    topic_model: TopicLNIRT, args: tuple
) -> None:
    fast = _outcome(lambda: topic_model.predict_one(*args))
    assert isinstance(fast, tuple) and issubclass(fast[0], ValueError)
    assert fast == _outcome(lambda: LearnerModel.predict_one(topic_model, *args))


def test_topic_predict_one_builds_no_data_frame(
    topic_model: TopicLNIRT, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = {p: _outcome(lambda p=p: topic_model.predict_one(*p)) for p in TOPIC_PROBES}

    def no_frames(*args: object, **kwargs: object) -> None:
        raise AssertionError("predict_one went through predict")

    monkeypatch.setattr(base_module, "validate_interactions", no_frames)
    monkeypatch.setattr(LNIRT, "_item_arrays", no_frames)
    for probe in TOPIC_PROBES:
        assert _outcome(lambda probe=probe: topic_model.predict_one(*probe)) == expected[probe]
