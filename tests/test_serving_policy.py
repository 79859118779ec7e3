"""Issue 10: the chain serves what did best live, calibrated on held-out students and live.

Which family answers a request is decided by the families' live scores (cold and warm
requests separately; held-out scores are shown and calibrate); each family's probabilities
are calibrated on held-out students, and its 80% time ranges too until enough live times
exist, then on those; the admin page and ``GET /v1/models`` show the decision. Also
acceptance 2 of the issue: the seed-000 bulk user's cells after a training."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from smartstudy.jobs import SyncRunner
from smartstudy.models.baseline import Baseline
from smartstudy.services import accounts, catalogue, registry, tasks
from smartstudy.services.calibration import Calibrator, fit_calibrator, fit_platt, fit_time
from smartstudy.services.predictor import PredictionService
from smartstudy.services.simulation import simulate_bulk_user
from smartstudy.services.training import run_training
from smartstudy.store.db import UnitOfWork, session_scope
from smartstudy.store.orm import ModelVersion, PracticeTask, Topic, User
from smartstudy.store.repositories.tasks import cell_outcomes

from .web.conftest import PASSWORD, Web, make_admin


# -- calibration, pure ------------------------------------------------------------------
def _overconfident(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes drawn at true chances, and a model that states them twice as far out in
    logit space (the usual overconfidence)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.0, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(float)
    return 1 / (1 + np.exp(-2.0 * z)), y


def test_platt_scaling_undoes_overconfidence_and_is_monotone():
    p, y = _overconfident(4000)
    slope, intercept = fit_platt(p, y)
    assert 0.4 < slope < 0.6 and abs(intercept) < 0.1
    cal = Calibrator(slope=slope, intercept=intercept)
    grid = np.linspace(0.001, 0.999, 999)
    assert np.all(np.diff(cal.probability(grid)) > 0)  # strictly increasing: direction kept
    # Any stored slope that is not positive is refused: calibration can never flip p.
    assert Calibrator.from_dict({"slope": -1.0, "intercept": 0.3}).is_identity
    assert Calibrator.from_dict({"slope": 0.0}).is_identity


def test_platt_scaling_shrinks_to_identity_with_few_rows():
    p, y = _overconfident(8, seed=3)
    slope, intercept = fit_platt(p, y)
    assert abs(slope - 1.0) < 0.25 and abs(intercept) < 0.25
    assert fit_platt(p[:0], y[:0]) == (1.0, 0.0)


def _too_narrow_times(n: int, seed: int) -> tuple[np.ndarray, ...]:
    """Times whose log spread is 0.6 around a median 30% above the model's, from a model
    that claims a spread of 0.3: its 80% ranges are too narrow and too low."""
    rng = np.random.default_rng(seed)
    median = np.exp(rng.uniform(3.5, 6.0, n))
    rt = median * 1.3 * np.exp(rng.normal(0.0, 0.6, n))
    return rt, median, median * np.exp(-1.2816 * 0.3), median * np.exp(1.2816 * 0.3)


def _coverage(rt, low, high) -> float:
    return float(np.mean((rt >= low) & (rt <= high)))


def test_calibrated_interval_holds_80_percent_of_held_out_times():
    fit_rows = _too_narrow_times(1500, seed=1)
    rt, median, p10, p90 = _too_narrow_times(3000, seed=2)  # other students, same model
    shift, scale = fit_time(*fit_rows)
    assert abs(shift - np.log(1.3)) < 0.06
    cal = Calibrator(time_shift=shift, interval_scale=scale)
    new_median, low, high = cal.times(median, p10, p90)
    assert _coverage(rt, p10, p90) < 0.45
    assert 0.77 <= _coverage(rt, low, high) <= 0.83
    assert np.all((low <= new_median) & (new_median <= high))
    assert abs(np.median(np.log(rt / new_median))) < 0.05
    # With three rows the interval barely moves.
    shift, scale = fit_time(*(a[:3] for a in fit_rows))
    few = Calibrator(time_shift=shift, interval_scale=scale)
    assert 0.85 < few.interval_scale < 1.2


# -- the serving policy, from stored held-out metrics -----------------------------------
class Exploding(Baseline):
    """Trains and validates fine, then fails to serve."""

    def predict_one(self, user_id, item_id, skill_id=None):
        raise RuntimeError("boom")


class Flipped(Baseline):
    """Predicts the opposite chance of what it learnt: a bad model."""

    def _predict_validated(self, data):
        out = super()._predict_validated(data)
        out["p_correct"] = 1.0 - out["p_correct"]
        return out


CHANCE = {"easy": 0.9, "medium": 0.6, "hard": 0.2}


def _student(session, email: str) -> uuid.UUID:
    """An account that never signs in (no password hashing: these tests are about models)."""
    user = User(email=email, password_hash="!", display_name=email.split("@")[0])
    session.add(user)
    session.flush()
    return user.id


def _history(context, n_users: int = 14, per_user: int = 12, seed: int = 0):
    """Completed tasks of ``n_users`` students in one topic, success by difficulty."""
    rng = np.random.default_rng(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with session_scope(context.sessions) as session:
        topic = catalogue.ensure_topic(session, "Maths", "Calculus")
        users = [_student(session, f"s{u}@example.com") for u in range(n_users)]
        for u, user_id in enumerate(users):
            for k in range(per_user):
                difficulty = ("easy", "medium", "hard")[k % 3]
                at = start + timedelta(hours=u * per_user + k)
                session.add(
                    PracticeTask(
                        user_id=user_id,
                        topic_id=topic.id,
                        difficulty=difficulty,
                        created_at=at,
                        completed_at=at,
                        is_correct=bool(rng.random() < CHANCE[difficulty]),
                        actual_time_seconds=float(rng.lognormal(4, 0.4)),
                    )
                )
        return users, topic.id


def _frame(n_users: int, per_user: int, seed: int = 0) -> pd.DataFrame:
    """The same kind of history as an interactions frame, without a database."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        for k in range(per_user):
            difficulty = ("easy", "medium", "hard")[k % 3]
            rows.append(
                {
                    "user_id": str(uuid.UUID(int=u + 1)),
                    "item_id": f"t:{difficulty}",
                    "skill_id": "t",
                    "correct": float(rng.random() < CHANCE[difficulty]),
                    "rt_seconds": float(rng.lognormal(4, 0.4)),
                    "order": float(u * per_user + k),
                }
            )
    return pd.DataFrame(rows)


def _live_scores(advantages: dict[str, tuple[float, float]], rows: int = 200) -> dict:
    """Live scores where each named family beats the chain's last by (cold, warm)
    advantages, measured precisely (a small standard error)."""

    def part(adv: float) -> dict:
        return {
            "rows": rows,
            "log_loss": 0.5 - adv,
            "last_log_loss": 0.5,
            "advantage": adv,
            "advantage_se": 0.001,
        }

    return {
        "tasks": 2 * rows,
        "families": {
            name: {"all": part(max(cold, warm)), "cold": part(cold), "warm": part(warm)}
            for name, (cold, warm) in advantages.items()
        },
    }


def _block(version_id, cold_loss: float, warm_loss: float, calibration=None, live=None) -> dict:
    def kind(loss: float) -> dict:
        metrics = {"rows": 40, "log_loss": loss}
        return {"raw": metrics, "calibrated": metrics}

    return {
        "evaluation": "job-1",
        "evaluated_at": "2026-01-02T00:00:00+00:00",
        "version_id": str(version_id),
        "cold_tasks": registry.COLD_TASKS,
        "kinds": {
            "all": kind(min(cold_loss, warm_loss)),
            "cold": kind(cold_loss),
            "warm": kind(warm_loss),
        },
        "calibration": calibration or {},
        "live": live,
    }


def _store_blocks(context, blocks: dict[str, dict]) -> None:
    """Give each named family's active version a serving block (its version id filled in)."""
    with session_scope(context.sessions) as session:
        for name, block in blocks.items():
            row = session.scalar(
                select(ModelVersion).where(
                    ModelVersion.model_name == name, ModelVersion.is_active.is_(True)
                )
            )
            row.metrics = {**row.metrics, "serving": {**block, "version_id": str(row.id)}}
    # Blocks are written by a training, which a predictor notices; this one is by hand.
    context.predictor.forget()


def _two_family_world(context, factories: dict):
    """Three students (nothing held out), both families trained, a warm and a cold user."""
    users, topic_id = _history(context, n_users=3)
    context.predictor = PredictionService(chain=tuple(factories), factories=factories)
    context.runner = SyncRunner()
    job = run_training(context)
    assert job.status == "succeeded", job.error
    assert job.summary["serving"]["held_out"] is False
    with session_scope(context.sessions) as session:
        newcomer = _student(session, "new@example.com")
    return users[0], newcomer, topic_id


def test_cold_and_warm_requests_go_to_the_family_that_did_best_live(context):
    factories = {"lnirt_like": Baseline, "baseline": lambda: Baseline(k_item=2.0)}
    warm_user, cold_user, topic_id = _two_family_world(context, factories)
    with context.sessions() as session:
        # Nothing held out: the chain's last family answers everything.
        assert context.predictor.predict(session, cold_user, topic_id, "easy").model_name == (
            "baseline"
        )
    live = _live_scores({"lnirt_like": (-0.05, 0.05)})
    _store_blocks(
        context,
        {
            "lnirt_like": _block(None, cold_loss=0.70, warm_loss=0.50, live=live),
            "baseline": _block(None, cold_loss=0.60, warm_loss=0.55, live=live),
        },
    )
    with context.sessions() as session:
        assert context.predictor.request_kind(session, cold_user, topic_id) == "cold"
        assert context.predictor.request_kind(session, warm_user, topic_id) == "warm"
        cold = context.predictor.predict(session, cold_user, topic_id, "easy")
        warm = context.predictor.predict(session, warm_user, topic_id, "easy")
    assert (cold.model_name, warm.model_name) == ("baseline", "lnirt_like")


def test_a_user_turns_warm_after_five_tasks_in_the_topic(context):
    factories = {"first": Baseline, "second": lambda: Baseline(k_item=2.0)}
    _, newcomer, topic_id = _two_family_world(context, factories)
    live = _live_scores({"first": (-0.05, 0.05)})
    _store_blocks(
        context,
        {
            "first": _block(None, 0.70, 0.50, live=live),
            "second": _block(None, 0.60, 0.55, live=live),
        },
    )
    context.settings.retrain_every = 1_000_000
    answered = []
    for _ in range(registry.COLD_TASKS + 1):
        with context.sessions() as session:
            user = accounts.get_user(session, newcomer)
            task = tasks.create_task(session, context.predictor, user, topic_id, "medium")
            answered.append(task.model_name)
            tasks.complete_task(context, UnitOfWork(session), user, task.id, True, 60.0)
    assert answered == ["second"] * registry.COLD_TASKS + ["first"]


def test_a_failing_best_family_still_falls_back(context):
    factories = {"exploding": Exploding, "baseline": Baseline}
    _, cold_user, topic_id = _two_family_world(context, factories)
    live = _live_scores({"exploding": (0.2, 0.2)})
    _store_blocks(
        context,
        {
            "exploding": _block(None, 0.40, 0.40, live=live),
            "baseline": _block(None, 0.60, 0.60, live=live),
        },
    )
    with context.sessions() as session:
        policy = context.predictor.policy(session)
        assert policy.order(context.predictor.chain, "cold") == ("exploding", "baseline")
        p = context.predictor.predict(session, cold_user, topic_id, "medium")
    assert p.model_name == "baseline"
    assert any(name == "exploding" for _, name, _ in context.predictor.fallbacks)


def test_the_stored_calibration_is_applied_to_the_answer(context):
    factories = {"baseline": Baseline}
    warm_user, _, topic_id = _two_family_world(context, factories)
    with context.sessions() as session:
        raw = context.predictor.predict(session, warm_user, topic_id, "hard")
    calibration = {
        "warm": {"slope": 0.5, "intercept": -0.4, "time_shift": 0.2, "interval_scale": 1.5}
    }
    _store_blocks(context, {"baseline": _block(None, 0.6, 0.6, calibration)})
    with context.sessions() as session:
        cal = context.predictor.predict(session, warm_user, topic_id, "hard")
    expected = Calibrator(slope=0.5, intercept=-0.4, time_shift=0.2, interval_scale=1.5)
    assert cal.p_correct == pytest.approx(expected.probability(raw.p_correct))
    assert cal.time_median_s == pytest.approx(raw.time_median_s * np.exp(0.2))
    ratio = np.log(cal.time_p90_s / cal.time_median_s) / np.log(raw.time_p90_s / raw.time_median_s)
    assert ratio == pytest.approx(1.5)


def test_calibrated_predictions_keep_the_direction_guarantee(context):
    warm_user, _, topic_id = _two_family_world(context, {"baseline": Baseline})
    calibration = {"warm": {"slope": 0.4, "intercept": -1.0, "time_shift": 0.0}}
    _store_blocks(context, {"baseline": _block(None, 0.6, 0.6, calibration)})
    outcomes = (True, True, False, False, True, False)
    for correct, before, after in _answers(context, warm_user, topic_id, "hard", outcomes):
        assert (after >= before) if correct else (after <= before), (correct, before, after)


def _answers(context, user_id, topic_id, difficulty: str, outcomes):
    """Each outcome as a task created and completed by ``user_id``: (correct, chance stored
    for the task, chance predicted for the same cell right after), with no training."""
    context.settings.retrain_every = 1_000_000
    for correct in outcomes:
        with context.sessions() as session:
            user = accounts.get_user(session, user_id)
            task = tasks.create_task(session, context.predictor, user, topic_id, difficulty)
            before = task.predicted_correct
            tasks.complete_task(context, UnitOfWork(session), user, task.id, correct, 90.0)
        with context.sessions() as session:
            after = context.predictor.predict(session, user_id, topic_id, difficulty).p_correct
        yield correct, before, after


# -- end to end: a training scores every family on the same held-out rows ---------------
@pytest.fixture
def trained(context):
    """Fourteen students; a sound family, a flipped one, and a training."""
    users, topic_id = _history(context)
    factories = {"flipped": Flipped, "baseline": Baseline}
    context.predictor = PredictionService(chain=("flipped", "baseline"), factories=factories)
    context.runner = SyncRunner()
    job = run_training(context)
    assert job.status == "succeeded", job.error
    return context, job, users, topic_id


def test_training_scores_every_family_on_the_same_held_out_rows(trained):
    context, job, users, topic_id = trained
    assert job.summary["serving"]["held_out"] is True
    with context.sessions() as session:
        rows = {
            r.model_name: r
            for r in session.scalars(select(ModelVersion).where(ModelVersion.is_active.is_(True)))
        }
    blocks = {name: row.metrics["serving"] for name, row in rows.items()}
    held = set(rows["baseline"].training_summary["holdout_users"])
    assert held and all(b["evaluation"] == str(job.id) for b in blocks.values())
    for kind in ("cold", "warm"):
        counts = {b["kinds"][kind]["raw"]["rows"] for b in blocks.values()}
        assert len(counts) == 1  # the same rows for every family
    # First tasks of each held-out student in the topic are cold, the rest warm.
    assert blocks["baseline"]["kinds"]["cold"]["raw"]["rows"] == registry.COLD_TASKS * len(held)
    # Calibration is fitted on the held-out rows and nothing else.
    assert blocks["baseline"]["calibration"]["all"]["rows"] == job.summary["holdout_rows"]
    assert job.summary["holdout_rows"] == 12 * len(held)
    # The flipped family validates worse, so the sound one answers every kind of request.
    assert job.summary["serving"]["order"] == {
        "cold": ["baseline", "flipped"],
        "warm": ["baseline", "flipped"],
    }
    with context.sessions() as session:
        assert context.predictor.predict(session, users[0], topic_id, "easy").model_name == (
            "baseline"
        )
    # Calibration is used only where it validated better (it cannot undo negative skill:
    # it is kept monotone).
    flipped = blocks["flipped"]["kinds"]["all"]
    assert flipped["calibrated"]["log_loss"] <= flipped["raw"]["log_loss"]
    assert blocks["flipped"]["calibration"]["all"]["slope"] > 0


def test_held_out_rows_a_version_was_fitted_on_are_not_used():
    train, holdout, _ = registry.split_for_validation(_frame(12, 12))
    model = Baseline().fit(train)
    pred = registry.predict_rows(model, holdout)
    usable = np.ones(len(holdout), dtype=bool)
    usable[: len(holdout) // 2] = False  # as if fitted on those rows
    family = registry.HeldOutPredictions("baseline", "v", True, pred, usable)
    block = registry.evaluate_serving(holdout, [family], "e")["baseline"]
    assert block["calibration"]["all"]["rows"] == int(usable.sum())
    assert block["kinds"]["all"]["raw"]["rows"] == int(usable.sum())


def test_a_family_that_answers_few_held_out_rows_is_not_ranked():
    train, holdout, _ = registry.split_for_validation(_frame(40, 6))
    assert len(holdout) >= registry.MIN_KIND_ROWS
    pred = registry.predict_rows(Baseline().fit(train), holdout)
    everywhere = np.ones(len(holdout), dtype=bool)
    sparse = np.zeros(len(holdout), dtype=bool)
    sparse[:5] = True  # e.g. an LNIRT whose topics mostly have too little data yet
    blocks = registry.evaluate_serving(
        holdout,
        [
            registry.HeldOutPredictions("lnirt", "a", True, pred, sparse),
            registry.HeldOutPredictions("baseline", "b", True, pred, everywhere),
        ],
        "e",
    )
    assert blocks["lnirt"]["ranked"] is False and blocks["baseline"]["ranked"] is True
    assert blocks["baseline"]["kinds"]["all"]["raw"]["rows"] == len(holdout)
    policy = registry.ServingPolicy(
        {n: {**b, "version_id": b["version_id"]} for n, b in blocks.items()}
    )
    assert policy.order(("lnirt", "baseline"), "warm") == ("baseline", "lnirt")


# -- the admin page and the API ---------------------------------------------------------
def test_admin_page_and_api_show_the_decision(client, admin, trained):
    _, job, _, _ = trained
    body = client.get("/v1/models", headers=admin).json()
    serving = body["serving"]
    assert serving["held_out"] is True and serving["evaluation"] == str(job.id)
    assert serving["order"]["cold"][0] == "baseline"
    names = {f["model_name"] for f in serving["families"]}
    assert names == {"baseline", "flipped"}
    family = next(f for f in serving["families"] if f["model_name"] == "baseline")
    assert family["kinds"]["warm"]["calibrated"]["log_loss"] > 0
    assert family["calibration"]["cold"]["rows"] > 0

    web = Web(client)
    web.login("admin@example.com", "admin password 1")
    page = web.get("/admin/models").text
    assert 'id="serving-table"' in page
    assert 'id="order-cold">baseline → flipped' in page
    assert 'data-model="flipped" data-kind="warm"' in page


def test_admin_page_says_when_nothing_is_held_out(client, context):
    _history(context, n_users=3)
    context.runner = SyncRunner()
    context.predictor = PredictionService(chain=("lnirt", "baseline"))
    run_training(context)
    make_admin(context, "boss@example.com")
    web = Web(client)
    web.login("boss@example.com", PASSWORD)
    page = web.get("/admin/models").text
    assert "Nothing is held out yet" in page and "not calibrated" in page
    # The chain's last family answers first until another one has shown it does better.
    assert 'id="chain-order">baseline → lnirt<' in page
    assert "baseline answers first (baseline → lnirt)" in page


# -- acceptance 2: the seed-000 bulk user ---------------------------------------------------
def _observed(session, user_id, topic_id, difficulty) -> tuple[float, float, np.ndarray]:
    rows = cell_outcomes(session, user_id, topic_id, difficulty)
    times = np.array([r[1] for r in rows], dtype=float)
    return float(np.mean([r[0] for r in rows])), float(np.median(times)), times


def test_bulk_user_cells_match_their_history_with_the_default_chain(context):
    context.runner = SyncRunner()
    context.settings.retrain_every = 1_000_000
    context.predictor = PredictionService()  # the default chain: one student, nothing held out
    simulate_bulk_user(context, "bulk@example.com", seed=0)
    misses = []
    with context.sessions() as session:
        user = accounts.get_user_by_email(session, "bulk@example.com")
        for topic_name in ("Calculus", "Microeconomics"):
            topic = session.scalar(select(Topic).where(Topic.name == topic_name))
            for difficulty in ("easy", "medium", "hard"):
                rate, median, times = _observed(session, user.id, topic.id, difficulty)
                p = context.predictor.predict(session, user.id, topic.id, difficulty)
                # "The range is where 8 of 10 of your times should fall": it holds about
                # that share of the user's own times in the cell, not all of them.
                inside = float(np.mean((times >= p.time_p10_s) & (times <= p.time_p90_s)))
                if (
                    abs(p.p_correct - rate) > 0.05
                    or abs(p.time_median_s - median) > 0.15 * median
                    or not 0.7 <= inside <= 0.95
                ):
                    misses.append(
                        f"{topic_name} {difficulty}: {p.model_name} p {p.p_correct:.2f} vs "
                        f"{rate:.2f}, median {p.time_median_s:.0f} s vs {median:.0f} s, "
                        f"{inside:.2f} of the times in {p.time_p10_s:.0f}-{p.time_p90_s:.0f} s"
                    )
    assert not misses, misses


def test_policy_without_blocks_serves_the_last_family_first():
    policy = registry.ServingPolicy()
    assert policy.evaluation is None
    assert policy.order(("neural", "lnirt", "baseline"), "cold") == ("baseline", "neural", "lnirt")
    assert policy.calibrator("neural", uuid.uuid4(), "cold").is_identity
    assert fit_calibrator(np.zeros(0), np.zeros(0), np.zeros(0), None).is_identity


def _scored(log_loss: float, rows: int = 200) -> dict:
    scores = {"log_loss": log_loss, "rows": rows}
    return {"evaluation": "e", "ranked": True, "kinds": {"all": {"calibrated": scores}}}


def test_held_out_scores_alone_do_not_promote_a_family():
    chain = ("neural", "lnirt", "baseline")
    policy = registry.ServingPolicy(
        {"neural": _scored(0.40), "lnirt": _scored(0.45), "baseline": _scored(0.50)}
    )
    assert policy.order(chain, "cold") == ("baseline", "neural", "lnirt")
    # With nothing validated at all (a handful of students), the last family answers first
    # as well: no other family has shown that it predicts better.
    assert registry.ServingPolicy().order(chain, "warm") == ("baseline", "neural", "lnirt")


def test_a_family_must_beat_the_last_one_live_by_the_margin_and_the_noise():
    chain = ("neural", "baseline")
    held_out = {"neural": _scored(0.45), "baseline": _scored(0.50)}
    margin = registry.LIVE_MARGIN

    def live(adv: float, se: float) -> dict:
        part = {"rows": 300, "advantage": adv, "advantage_se": se}
        return {"tasks": 300, "families": {"neural": {"all": part, "cold": part, "warm": part}}}

    def order(adv: float, se: float) -> tuple[str, ...]:
        return registry.ServingPolicy(held_out, live(adv, se)).order(chain, "warm")

    assert order(margin / 2, 0.0001) == ("baseline", "neural")  # below the margin
    assert order(2 * margin, 0.0001) == ("neural", "baseline")
    assert order(4 * margin, 0.05) == ("baseline", "neural")  # within the noise
    assert order(-0.1, 0.0001) == ("baseline", "neural")


# -- live ranking: what each family would have served, scored once the outcome is in ----
def _live(advantages: dict[str, dict[str, tuple[int, float]]]) -> dict:
    """A ``live_scores`` result: per family and kind, (rows, advantage over the last)."""
    return {
        "tasks": 500,
        "families": {
            name: {
                kind: {
                    "rows": rows,
                    "log_loss": 0.5 - adv,
                    "last_log_loss": 0.5,
                    "advantage": adv,
                    "advantage_se": 0.001,
                }
                for kind, (rows, adv) in kinds.items()
            }
            for name, kinds in advantages.items()
        },
    }


def test_live_scores_decide_the_order_once_a_family_answered_enough():
    chain = ("neural", "lnirt", "baseline")
    # Held out, neural and LNIRT both beat baseline clearly (which promotes neither)...
    held_out = {
        "neural": _scored(0.45),
        "lnirt": _scored(0.46),
        "baseline": _scored(0.50),
    }
    margin = registry.LIVE_MARGIN
    live = _live(
        {
            "neural": {"all": (400, -0.03), "warm": (300, -0.03), "cold": (100, -0.02)},
            "lnirt": {
                "all": (400, 3 * margin),
                "warm": (300, 4 * margin),
                "cold": (100, margin / 2),
            },
        }
    )
    policy = registry.ServingPolicy(held_out, live)
    # ...but live only LNIRT does, and only on warm requests by more than the margin.
    assert policy.order(chain, "warm") == ("lnirt", "baseline", "neural")
    assert policy.order(chain, "cold") == ("baseline", "neural", "lnirt")
    # A kind with too few live rows follows all live rows.
    few = _live(
        {
            "neural": {"all": (400, 2 * margin), "warm": (400, 2 * margin), "cold": (10, -0.1)},
            "lnirt": {"all": (400, -0.01), "warm": (400, -0.01), "cold": (10, 0.2)},
        }
    )
    assert registry.ServingPolicy(held_out, few).order(chain, "cold") == (
        "neural",
        "baseline",
        "lnirt",
    )
    # Too few live rows anywhere: the last family answers first.
    young = _live({"neural": {"all": (50, 0.1)}, "lnirt": {"all": (50, 0.1)}})
    assert registry.ServingPolicy(held_out, young).order(chain, "warm") == (
        "baseline",
        "neural",
        "lnirt",
    )


class Leaky(Baseline):
    """Looks perfect on held-out students: it peeks at each row's outcome, which a batch
    prediction can do. Live, where no outcome exists yet, it says 90% for everything."""

    def _predict_validated(self, data):
        out = super()._predict_validated(data)
        correct = data["correct"].to_numpy(dtype=float)
        out["p_correct"] = np.where(np.isnan(correct) | (correct > 0.5), 0.9, 0.1)
        return out


def test_a_family_that_validates_well_but_serves_badly_is_not_promoted(context):
    users, topic_id = _history(context)
    factories = {"leaky": Leaky, "baseline": Baseline}
    context.predictor = PredictionService(chain=("leaky", "baseline"), factories=factories)
    context.runner = SyncRunner()
    context.settings.retrain_every = 1_000_000
    job = run_training(context)
    leaky = job.summary["leaky"]
    assert "active" in leaky["status"]
    # Held out it looks perfect, but that alone promotes no family.
    assert job.summary["serving"]["order"]["warm"] == ["baseline", "leaky"]
    rng = np.random.default_rng(5)
    served = []
    for k in range(registry.LIVE_MIN_ROWS + 20):
        difficulty = ("easy", "medium", "hard")[k % 3]
        with context.sessions() as session:
            user = accounts.get_user(session, users[k % len(users)])
            task = tasks.create_task(session, context.predictor, user, topic_id, difficulty)
            served.append(task.model_name)
            stored = task.family_predictions
            assert set(stored["families"]) == {"leaky", "baseline"}
            assert stored["kind"] in ("cold", "warm")
            assert stored["families"][task.model_name][0] == pytest.approx(
                task.predicted_correct, abs=1e-6
            )
            correct = bool(rng.random() < CHANCE[difficulty])
            tasks.complete_task(context, UnitOfWork(session), user, task.id, correct, 60.0)
    assert served.count("baseline") == len(served)
    job = run_training(context)
    assert job.status == "succeeded", job.error
    assert job.summary["serving"]["order"] == {
        "cold": ["baseline", "leaky"],
        "warm": ["baseline", "leaky"],
    }
    assert "live log loss" in job.summary["serving"]["reason"]
    with context.sessions() as session:
        live = registry.serving_policy(session, context.predictor.chain).live
        assert live["tasks"] == len(served)
        assert live["families"]["leaky"]["all"]["advantage"] < -registry.LIVE_MARGIN
        user = accounts.get_user(session, users[0])
        assert tasks.create_task(session, context.predictor, user, topic_id, "easy").model_name == (
            "baseline"
        )


def test_admin_page_and_api_show_the_live_ranking(client, admin, context):
    test_a_family_that_validates_well_but_serves_badly_is_not_promoted(context)
    live = client.get("/v1/models", headers=admin).json()["serving"]["live"]
    assert live["families"]["leaky"]["warm"]["rows"] > 0
    assert live["families"]["leaky"]["all"]["advantage"] < 0
    web = Web(client)
    web.login("admin@example.com", "admin password 1")
    page = web.get("/admin/models").text
    assert 'id="live-table"' in page and 'data-model="leaky" data-kind="warm"' in page
    assert 'id="order-warm">baseline → leaky' in page


def _live_tasks(
    context, users, topic_id, n: int, seed: int = 5, time_spread: float = 0.0
) -> list[str]:
    """``n`` tasks created and completed by ``users`` in turn; the families that answered.
    Times are a minute, times a log-normal factor of sd ``time_spread``."""
    rng = np.random.default_rng(seed)
    served = []
    for k in range(n):
        difficulty = ("easy", "medium", "hard")[k % 3]
        with context.sessions() as session:
            user = accounts.get_user(session, users[k % len(users)])
            task = tasks.create_task(session, context.predictor, user, topic_id, difficulty)
            served.append(task.model_name)
            correct = bool(rng.random() < CHANCE[difficulty])
            seconds = float(60.0 * np.exp(time_spread * rng.normal()))
            tasks.complete_task(context, UnitOfWork(session), user, task.id, correct, seconds)
    return served


def test_a_family_that_does_better_live_is_promoted(context):
    users, topic_id = _history(context)
    factories = {"good": Baseline, "flipped": Flipped}
    context.predictor = PredictionService(chain=("good", "flipped"), factories=factories)
    context.runner = SyncRunner()
    context.settings.retrain_every = 1_000_000
    run_training(context)
    before = _live_tasks(context, users, topic_id, registry.LIVE_MIN_ROWS + 20)
    assert set(before) == {"flipped"}  # validated, nothing proven live: the last answers
    job = run_training(context)
    assert job.summary["serving"]["order"] == {
        "cold": ["good", "flipped"],
        "warm": ["good", "flipped"],
    }
    assert set(_live_tasks(context, users, topic_id, 5, seed=6)) == {"good"}


# -- calibration that fails live is withheld ----------------------------------------------
def _gains(p_gain: float, rows: int) -> dict:
    return {"p_gain_rows": rows, "p_gain": p_gain, "p_gain_se": 0.001}


def test_a_probability_calibration_that_did_worse_live_is_withheld():
    fitted = {"slope": 2.0, "intercept": 0.3, "time_shift": 0.2, "interval_scale": 1.5}
    block = _block(uuid.UUID(int=7), 0.6, 0.6, {"cold": fitted, "warm": fitted})
    version = block["version_id"]
    full = Calibrator.from_dict(fitted)
    enough = registry.LIVE_MIN_ROWS
    live = {
        "tasks": 3 * enough,
        "families": {},
        "calibration": {
            "baseline": {
                "all": _gains(-0.01, 3 * enough),
                "warm": _gains(0.02, 2 * enough),
                "cold": _gains(0.01, enough),
            }
        },
    }
    policy = registry.ServingPolicy({"baseline": block}, live)
    assert policy.fitted_calibrator("baseline", version, "warm") == full
    # On all live tasks the chance part did worse: it is withheld for every kind alike
    # (the chance has one calibration, so a request turning warm never changes it), even
    # where one kind's tasks alone say otherwise. The time part still serves.
    assert policy.probability_holds_live("baseline") is False
    for kind in ("cold", "warm"):
        served = policy.calibrator("baseline", version, kind)
        assert served == full.restricted(probability=False, times=True)
        assert served.probability(0.7) == 0.7
        assert served.times(60.0, 30.0, 120.0) == full.times(60.0, 30.0, 120.0)
    # A calibration that helped, or too few live tasks anywhere: it serves as fitted.
    helped = {"calibration": {"baseline": {"all": _gains(0.002, enough)}}}
    young = {"calibration": {"baseline": {"all": _gains(-0.01, enough - 1)}}}
    for other in (helped, young):
        policy = registry.ServingPolicy({"baseline": block}, other)
        assert policy.calibrator("baseline", version, "cold") == full
    # Another version's calibration is never applied.
    assert policy.calibrator("baseline", uuid.UUID(int=8), "warm").is_identity


def _world_served_through(context, fitted: dict):
    """A warm student served through the held-out calibration ``fitted`` (for both kinds)
    and ``LIVE_MIN_ROWS`` + 10 tasks completed through it: (warm user, topic, the stored
    (family_predictions, time) of those tasks, the live scores)."""
    warm_user, _, topic_id = _two_family_world(context, {"baseline": Baseline})
    calibration = {kind: {**fitted, "rows": 40} for kind in registry.KINDS}
    _store_blocks(context, {"baseline": _block(None, 0.6, 0.6, calibration)})
    context.settings.retrain_every = 1_000_000
    _live_tasks(context, [warm_user], topic_id, registry.LIVE_MIN_ROWS + 10, time_spread=0.5)
    with context.sessions() as session:
        stored = session.execute(
            select(PracticeTask.family_predictions, PracticeTask.actual_time_seconds).where(
                PracticeTask.user_id == warm_user, PracticeTask.family_predictions.is_not(None)
            )
        ).all()
        live = registry.live_scores(session, context.predictor.chain)
    assert len(stored) == registry.LIVE_MIN_ROWS + 10
    return warm_user, topic_id, stored, live


def _badly_calibrated_world(context):
    """A warm student served through a calibration that states every chance far too low
    and every 80% range far too narrow, and ``LIVE_MIN_ROWS`` + 10 tasks completed through
    it; the live scores are stored with the calibration, as a training would."""
    bad = {"slope": 1.0, "intercept": -2.5, "time_shift": 0.0, "interval_scale": 0.25}
    calibration = {kind: {**bad, "rows": 40} for kind in registry.KINDS}
    warm_user, topic_id, stored, live = _world_served_through(context, bad)
    for s, _ in stored:
        raw, cal = s["uncalibrated"]["baseline"], s["calibrated"]["baseline"]
        # Served as fitted (nothing was measured live yet), and stored both ways.
        assert s["families"]["baseline"] == cal
        expected = Calibrator(**bad).probability(raw[0])
        assert cal[0] == pytest.approx(expected, abs=1e-5)
        assert cal[1] == pytest.approx(raw[1], rel=1e-5)
        assert raw[2] < cal[2] < cal[1] < cal[3] < raw[3]
    gains = live["calibration"]["baseline"]["all"]
    # Serving 9 easy tasks in 10 at about 30% costs log loss; a range a quarter as wide
    # holds far fewer of the times (log-normal around a minute).
    assert gains["p_gain_rows"] == gains["live_time_rows"] == registry.LIVE_MIN_ROWS + 10
    assert gains["p_gain"] < -0.1
    assert gains["coverage_served"] < gains["coverage_raw"] - 0.2
    # The time calibration refitted on these live times makes their uncalibrated ranges
    # hold about 80% of them: split-conformal, so exactly 80% as fitted, then shrunk towards
    # no change (``calibration.TIME_PRIOR_ROWS``), which on 110 tasks costs a few points.
    refit = Calibrator(
        time_shift=gains["live_time_shift"], interval_scale=gains["live_interval_scale"]
    )
    inside = []
    for s, seconds in stored:
        _, low, high = refit.times(*s["uncalibrated"]["baseline"][1:])
        inside.append(low <= seconds <= high)
    assert np.mean(inside) >= 0.75
    _store_blocks(context, {"baseline": _block(None, 0.6, 0.6, calibration, live=live)})
    return warm_user, topic_id, refit


def test_tasks_store_the_calibration_both_ways_and_a_failing_chance_stops_serving(context):
    warm_user, topic_id, refit = _badly_calibrated_world(context)
    with context.sessions() as session:
        p = context.predictor.predict(session, warm_user, topic_id, "easy", candidates=True)
    raw, fitted = p.variants["baseline"]
    assert fitted[0] < raw[0] - 0.2
    # The chance is served uncalibrated, the times with the calibration refitted live.
    served = (p.p_correct, p.time_median_s, p.time_p10_s, p.time_p90_s)
    assert served == pytest.approx((raw[0], *refit.times(*raw[1:])))
    assert fitted[2] > served[2] and fitted[3] < served[3]
    # Still stored both ways, so the calibration can earn its place back.
    assert p.family_predictions()["calibrated"]["baseline"][0] == pytest.approx(fitted[0], abs=1e-6)


def test_a_calibration_of_the_times_alone_is_not_scored_on_the_chance(context):
    """Where the fitted calibration leaves the chance as it is, its tasks say nothing about
    calibrating the chance: they are not counted in its live gain (which would otherwise
    read 0 on every such task), while the time ranges are refitted on them."""
    narrow = {"slope": 1.0, "intercept": 0.0, "time_shift": 0.0, "interval_scale": 0.25}
    _, _, stored, live = _world_served_through(context, narrow)
    for s, _ in stored:
        assert s["uncalibrated"]["baseline"][0] == s["calibrated"]["baseline"][0]
    gains = live["calibration"]["baseline"]["all"]
    assert gains["p_gain_rows"] == 0 and gains["p_gain"] is None
    assert gains["live_time_rows"] == registry.LIVE_MIN_ROWS + 10
    assert gains["coverage_served"] < gains["coverage_raw"]


def test_time_ranges_refitted_live_hold_80_percent_of_new_times(context):
    """Held-out ranges far too narrow: once enough live times exist, the ranges served
    are refitted on them and hold about 80% of the times of tasks that come after."""
    warm_user, topic_id, _ = _badly_calibrated_world(context)
    first = _completed_times(context, warm_user)
    _live_tasks(context, [warm_user], topic_id, 300, seed=9, time_spread=0.5)
    later = _completed_times(context, warm_user)[len(first) :]
    inside = [low <= t <= high for t, low, high in later]
    assert len(inside) == 300
    assert 0.72 <= np.mean(inside) <= 0.88
    # Those 110 first tasks were served the held-out ranges: far fewer held their times.
    assert np.mean([low <= t <= high for t, low, high in first]) < 0.6


def _completed_times(context, user_id) -> list[tuple[float, float, float]]:
    """(time, p10, p90) of ``user_id``'s completed tasks that were served a prediction, in
    completion order."""
    with context.sessions() as session:
        rows = session.execute(
            select(
                PracticeTask.actual_time_seconds,
                PracticeTask.predicted_time_p10_s,
                PracticeTask.predicted_time_p90_s,
            )
            .where(
                PracticeTask.user_id == user_id,
                PracticeTask.completed_at.is_not(None),
                PracticeTask.family_predictions.is_not(None),
            )
            .order_by(PracticeTask.completed_at, PracticeTask.id)
        ).all()
    return [tuple(float(v) for v in r) for r in rows]


def test_admin_page_shows_the_calibration_withheld_live(client, admin, context):
    _, _, refit = _badly_calibrated_world(context)
    api = client.get("/v1/models", headers=admin).json()["serving"]
    live = api["live"]["calibration"]["baseline"]["all"]
    assert live["p_gain"] < 0
    assert live["live_interval_scale"] == pytest.approx(refit.interval_scale)
    served = {f["model_name"]: f["probability_calibration_served"] for f in api["families"]}
    assert served["baseline"] == {"cold": False, "warm": False}
    web = Web(client)
    web.login("admin@example.com", "admin password 1")
    page = web.get("/admin/models").text
    assert 'id="live-calibration-table"' in page
    table = page.split('id="live-calibration-table"')[1]
    assert "withheld" in table.split('data-kind="warm"')[1].split("</tr>")[0]
    # The live refit of the time ranges, and the coverage before and as served.
    row = table.split('data-kind="all"')[1].split("</tr>")[0]
    assert f"×{refit.interval_scale:.2f}" in row
    assert f"{100 * live['coverage_served']:.1f}%" in row


def test_a_new_students_chance_keeps_the_direction_guarantee_from_cold_to_warm(context):
    _, newcomer, topic_id = _two_family_world(context, {"baseline": Baseline})
    # Cold and warm chance parts that differ (as stored before the chance had one
    # calibration for every kind): turning warm after a wrong answer raised the chance.
    calibration = {
        "all": {"slope": 1.2, "intercept": 0.2},
        "cold": {"slope": 1.0, "intercept": -1.0},
        "warm": {"slope": 1.0, "intercept": 1.0},
    }
    _store_blocks(context, {"baseline": _block(None, 0.6, 0.6, calibration)})
    outcomes = (True, False, True, True, False, False, True, False)
    assert not outcomes[registry.COLD_TASKS - 1]  # the answer that turns the student warm
    for correct, before, after in _answers(context, newcomer, topic_id, "medium", outcomes):
        assert (after > before) if correct else (after < before), (correct, before, after)
