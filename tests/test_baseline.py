"""Baseline-specific checks: hand-computed shrinkage, the user-offset formula, intervals
from the residual spread, cold-start fallbacks, update/fit equivalence and real data.

The generic contract (no peeking, save/load, ...) lives in test_model_contract.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata

from smartstudy.data import InteractionsWarning
from smartstudy.data.simulate import simulate_app_learners
from smartstudy.models import Baseline
from smartstudy.models import base as base_module
from smartstudy.models import baseline as baseline_module
from smartstudy.models.base import PREDICTION_COLUMNS, Z80, LearnerModel
from smartstudy.models.baseline import (
    DEFAULT_LOG_TIME_SD,
    DEFAULT_TIME_MEDIAN_S,
    PRIOR_MIN_ROWS,
    PRIOR_MIN_USERS,
)
from tests.learn_many import refused_alike

DATASETS = Path(__file__).parents[1] / "../shared/datasets"

# Five attempts: skill A holds items i1, i2; item i3 has no skill and no time.
TINY = pd.DataFrame(
    {
        "user_id": ["u1", "u1", "u2", "u2", "u3"],
        "item_id": ["i1", "i2", "i1", "i3", "i2"],
        "skill_id": ["A", "A", "A", None, "A"],
        "correct": [1, 0, 1, 0, 1],
        "rt_seconds": [10.0, 20.0, 40.0, np.nan, 20.0],
        "order": [0, 1, 0, 1, 0],
    }
)
K_ITEM, K_SKILL = 2.0, 4.0


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    """Mann-Whitney AUC (ties get half credit through average ranks)."""
    ranks = rankdata(score)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _tiny_model(**params: float | None) -> Baseline:
    return Baseline(k_item=K_ITEM, k_skill=K_SKILL, **params).fit(TINY)


# -- correctness: shrinkage --------------------------------------------------------------
def test_shrinkage_by_hand() -> None:
    model = _tiny_model(user_prior_precision=None)
    # Global: 3 of 5 correct, plus the one documented pseudo-attempt at 0.5.
    p_global = (3 + 0.5) / (5 + 1)
    p_skill = (3 + K_SKILL * p_global) / (4 + K_SKILL)  # skill A: 3 of 4
    p_i1 = (2 + K_ITEM * p_skill) / (2 + K_ITEM)  # i1: 2 of 2
    p_i2 = (1 + K_ITEM * p_skill) / (2 + K_ITEM)  # i2: 1 of 2
    p_i3 = (0 + K_ITEM * p_global) / (1 + K_ITEM)  # i3: 0 of 1, no skill -> parent global

    assert model.predict_one("new", "i1", "A")["p_correct"] == pytest.approx(p_i1, abs=1e-12)
    assert model.predict_one("new", "i2", "A")["p_correct"] == pytest.approx(p_i2, abs=1e-12)
    assert model.predict_one("new", "i3")["p_correct"] == pytest.approx(p_i3, abs=1e-12)
    # A known item asked without its skill still uses the skill it was seen with.
    assert model.predict_one("new", "i1")["p_correct"] == pytest.approx(p_i1, abs=1e-12)
    assert p_i1 > p_i2 > p_i3  # the hand values are themselves distinct


def test_cold_start_fallbacks() -> None:
    model = _tiny_model(user_prior_precision=None)
    p_global = (3 + 0.5) / (5 + 1)
    p_skill = (3 + K_SKILL * p_global) / (4 + K_SKILL)
    assert model.predict_one("new", "new-item", "A")["p_correct"] == pytest.approx(p_skill)
    assert model.predict_one("new", "new-item")["p_correct"] == pytest.approx(p_global)
    assert model.predict_one("new", "new-item", "new-skill")["p_correct"] == pytest.approx(p_global)

    # An unknown user gets no offset, even from a model with user offsets.
    personal = _tiny_model(user_prior_precision=1.0)
    assert personal.predict_one("new", "i1", "A") == model.predict_one("new", "i1", "A")


def test_time_hierarchy_by_hand() -> None:
    model = _tiny_model(user_prior_precision=None)
    lt = np.log([10.0, 20.0, 40.0, 20.0])  # every timed attempt is in skill A

    def ss(x: np.ndarray) -> float:
        return float(((x - x.mean()) ** 2).sum())

    mu_g = (lt.sum() + math.log(DEFAULT_TIME_MEDIAN_S)) / (4 + 1)
    var_g = (ss(lt) + DEFAULT_LOG_TIME_SD**2) / (3 + 1)
    mu_s = (lt.sum() + K_SKILL * mu_g) / (4 + K_SKILL)
    var_s = (ss(lt) + K_SKILL * var_g) / (3 + K_SKILL)
    i1 = np.log([10.0, 40.0])
    mu_i1 = (i1.sum() + K_ITEM * mu_s) / (2 + K_ITEM)
    var_i1 = (ss(i1) + K_ITEM * var_s) / (1 + K_ITEM)
    sd = math.sqrt(var_i1 * (1 + 1 / (2 + K_ITEM)))  # plus the variance of the item mean

    pred = model.predict_one("new", "i1", "A")
    assert pred["time_median_s"] == pytest.approx(math.exp(mu_i1), rel=1e-12)
    assert pred["time_p10_s"] == pytest.approx(math.exp(mu_i1 - Z80 * sd), rel=1e-12)
    assert pred["time_p90_s"] == pytest.approx(math.exp(mu_i1 + Z80 * sd), rel=1e-12)

    # i3 was never timed: its time is the global one, widened like any untimed item.
    pred3 = model.predict_one("new", "i3")
    sd3 = math.sqrt(var_g * (1 + 1 / (0 + K_ITEM)))
    assert pred3["time_median_s"] == pytest.approx(math.exp(mu_g), rel=1e-12)
    assert pred3["time_p90_s"] == pytest.approx(math.exp(mu_g + Z80 * sd3), rel=1e-12)


def test_time_without_any_time_data_uses_documented_default() -> None:
    model = Baseline(k_item=K_ITEM).fit(TINY.drop(columns="rt_seconds"))
    pred = model.predict_one("new", "i1", "A")
    sd = DEFAULT_LOG_TIME_SD * math.sqrt(1 + 1 / K_ITEM)
    assert pred["time_median_s"] == pytest.approx(DEFAULT_TIME_MEDIAN_S, rel=1e-12)
    assert pred["time_p10_s"] == pytest.approx(DEFAULT_TIME_MEDIAN_S * math.exp(-Z80 * sd))
    assert pred["time_p90_s"] == pytest.approx(DEFAULT_TIME_MEDIAN_S * math.exp(Z80 * sd))
    assert pred["time_p10_s"] < pred["time_median_s"] < pred["time_p90_s"]


def test_interval_follows_residual_spread() -> None:
    """An item whose times scatter more gets a wider interval, matching its spread."""
    rng = np.random.default_rng(3)
    n = 400
    sds = {"steady": 0.2, "erratic": 1.0}
    frames = [
        pd.DataFrame(
            {
                "user_id": [f"p{j}" for j in range(n)],
                "item_id": item,
                "skill_id": "S",
                "correct": rng.integers(0, 2, n),
                "rt_seconds": np.exp(rng.normal(math.log(30.0), sd, n)),
                "order": 0,
            }
        )
        for item, sd in sds.items()
    ]
    # The item's own variance is checked here, so the learned interval scale stays at 1.
    model = Baseline(learn_interval_scale=False).fit(pd.concat(frames, ignore_index=True))
    for item, sd in sds.items():
        pred = model.predict_one("new", item, "S")
        fitted_sd = math.log(pred["time_p90_s"] / pred["time_p10_s"]) / (2 * Z80)
        assert fitted_sd == pytest.approx(sd, rel=0.1), item
        assert pred["time_median_s"] == pytest.approx(30.0, rel=0.15), item
        # Fresh attempts fall inside the 80% interval about 80% of the time.
        fresh = np.exp(rng.normal(math.log(30.0), sd, 4000))
        inside = np.mean((fresh >= pred["time_p10_s"]) & (fresh <= pred["time_p90_s"]))
        assert 0.75 < inside < 0.85, item


# -- interval scale ---------------------------------------------------------------------------
def _heavy_tailed_times(users: int, seed: int) -> pd.DataFrame:
    """Users answer 20 of 30 items; log time = item mean + user offset + Student-t noise
    (df = 3). The heavy tails and the large user offsets make the plain log-normal interval
    miss its 80 %: this is what the learned scale is for."""
    rng = np.random.default_rng(seed)
    n_items, per_user = 30, 20
    item_mean = rng.normal(math.log(30.0), 0.5, n_items)
    user_offset = rng.normal(0.0, 1.0, users)
    items = np.concatenate([rng.choice(n_items, per_user, replace=False) for _ in range(users)])
    user = np.repeat(np.arange(users), per_user)
    log_t = item_mean[items] + user_offset[user] + 0.25 * rng.standard_t(3, users * per_user)
    return pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in user],
            "item_id": [f"i{i}" for i in items],
            "skill_id": "S",
            "correct": rng.integers(0, 2, users * per_user),
            "rt_seconds": np.exp(log_t),
            "order": np.tile(np.arange(per_user), users),
        }
    )


def _coverage(model: Baseline, test: pd.DataFrame) -> float:
    pred = model.predict(test)
    rt = test["rt_seconds"].to_numpy()
    inside = (rt >= pred["time_p10_s"].to_numpy()) & (rt <= pred["time_p90_s"].to_numpy())
    return float(inside.mean())


def test_interval_scale_holds_80_percent_of_unseen_students_times() -> None:
    """Fitted on 400 students, the interval holds about 80 % of the times of 600 others,
    predicted one step ahead; the plain log-normal interval misses that clearly."""
    data = _heavy_tailed_times(1000, seed=0)
    is_train = data["user_id"].isin([f"u{u}" for u in range(400)])
    train, test = data[is_train], data[~is_train]
    scaled = Baseline().fit(train)
    plain = Baseline(learn_interval_scale=False).fit(train)
    assert plain.interval_scale_ == 1.0
    assert scaled.interval_scale_ != 1.0

    covered, covered_plain = _coverage(scaled, test), _coverage(plain, test)
    assert 0.77 <= covered <= 0.83
    assert abs(covered_plain - 0.8) > abs(covered - 0.8) + 0.015
    # Only the width changes: the medians are the same.
    np.testing.assert_allclose(
        scaled.predict(test)["time_median_s"], plain.predict(test)["time_median_s"], rtol=1e-12
    )


def _assert_state_round_trip(
    model: Baseline, key: str, unset: float, bads: tuple, probe: tuple[str, str, str]
) -> None:
    """The learned ``key`` (attribute ``key_``) travels with the saved model; a state
    stored before it was learned gets ``unset``; a bad stored value is refused by name."""
    attr = f"{key}_"
    clone = Baseline.from_bytes(model.to_bytes())
    assert getattr(clone, attr) == getattr(model, attr) != unset
    assert clone.predict_one(*probe) == model.predict_one(*probe)
    state = model._get_state()
    del state[key]
    old = Baseline()
    old._set_state(state)
    assert getattr(old, attr) == unset
    for bad in bads:
        with pytest.raises(ValueError, match=key):
            Baseline()._set_state({**model._get_state(), key: bad})


def test_interval_scale_is_saved_and_validated() -> None:
    model = Baseline().fit(_heavy_tailed_times(60, seed=1))
    # A state stored before the scale was learned serves the plain interval.
    bads = (0, -1.0, math.nan, math.inf, "x", True)
    _assert_state_round_trip(model, "interval_scale", 1.0, bads, ("u1", "i1", "S"))


def test_interval_scale_is_one_without_enough_data() -> None:
    assert _tiny_model().interval_scale_ == 1.0
    # Many rows, too few users.
    few_users = _heavy_tailed_times(PRIOR_MIN_USERS - 1, seed=2)
    assert len(few_users) >= PRIOR_MIN_ROWS
    assert Baseline().fit(few_users).interval_scale_ == 1.0
    # Enough users and rows, but too few of them timed.
    untimed = _heavy_tailed_times(60, seed=2)
    untimed.loc[untimed.index[PRIOR_MIN_ROWS - 1 :], "rt_seconds"] = np.nan
    assert Baseline().fit(untimed).interval_scale_ == 1.0
    with pytest.raises(ValueError, match="learn_interval_scale"):
        Baseline(learn_interval_scale=1).fit(TINY)  # type: ignore[arg-type]


# -- user offsets ---------------------------------------------------------------------------
def test_user_offset_formula_within_predict() -> None:
    prec, k_time, k_pair = 2.0, 3.0, 4.0
    model = _tiny_model(user_prior_precision=prec, k_user_time=k_time, k_pair_time=k_pair)
    plain = _tiny_model(user_prior_precision=None)
    new_user = pd.DataFrame(
        {
            "user_id": "new",
            "item_id": ["i1", "i2", "i3", "i1"],
            "skill_id": ["A", "A", None, "A"],
            "correct": [0, 0, 1, 1],
            "rt_seconds": [80.0, np.nan, 5.0, 12.0],
            "order": [0, 1, 2, 3],
        }
    )
    pred = model.predict(new_user)
    base = plain.predict(new_user)  # the item-level predictions, without user offsets
    p = base["p_correct"].to_numpy()
    mu = np.log(base["time_median_s"].to_numpy())
    y = new_user["correct"].to_numpy(dtype=float)
    lt = np.log(new_user["rt_seconds"].to_numpy())

    # The offset filter: a Newton step on the posterior at the current offset per answer.
    shift, info = 0.0, 0.0
    for t in range(len(new_user)):
        expected = _sigmoid(_logit(p[t]) + shift)
        assert pred["p_correct"].iloc[t] == pytest.approx(expected, abs=1e-12), t
        gained = expected * (1 - expected)
        shift += (y[t] - expected) / (prec + info + gained)
        info += gained

        timed = [s for s in range(t) if not np.isnan(lt[s])]
        offset = sum(lt[s] - mu[s] for s in timed) / (len(timed) + k_time)
        # The user's own earlier times on this item pull it towards their mean there.
        same = [s for s in timed if new_user["item_id"].iloc[s] == new_user["item_id"].iloc[t]]
        mean = (sum(lt[s] for s in same) + k_pair * (mu[t] + offset)) / (len(same) + k_pair)
        expected_median = math.exp(mean)
        assert pred["time_median_s"].iloc[t] == pytest.approx(expected_median), t
    # Two early misses pull the user down; the sign is the point of the offset.
    assert pred["p_correct"].iloc[2] < base["p_correct"].iloc[2]


def test_user_offset_from_training_uses_the_predictions_before_each_row() -> None:
    """A training row's residual is taken against the item level fitted on the rows before
    it, as ``update`` takes it, so a refit leaves a user's offset where learning put it."""
    prec = 1.5
    model = _tiny_model(user_prior_precision=prec)
    plain = _tiny_model(user_prior_precision=None)
    shift = info = 0.0
    for position, (_, row) in enumerate(TINY.iterrows()):
        if row["user_id"] != "u1":
            continue
        before = Baseline(k_item=K_ITEM, k_skill=K_SKILL, user_prior_precision=None).fit(
            TINY.iloc[:position]
        )
        p_item = before.predict_one("stranger", row["item_id"], row["skill_id"])["p_correct"]
        p = _sigmoid(_logit(p_item) + shift)
        shift += (row["correct"] - p) / (prec + info + p * (1 - p))
        info += p * (1 - p)
    p_item = plain.predict_one("u1", "i3")["p_correct"]
    expected = _sigmoid(_logit(p_item) + shift)
    assert model.predict_one("u1", "i3")["p_correct"] == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("floor", [0.0, 0.2])
def test_refit_equals_online_learning_for_every_user(floor: float) -> None:
    """Fitting on n rows then learning row n + 1 online predicts exactly as a refit on all
    n + 1 rows: a new version never moves a student's prediction by itself (with a guessing
    floor too, as long as the floor stays the same)."""
    rows = TINY.reset_index(drop=True)
    params = {"k_item": K_ITEM, "k_skill": K_SKILL, "learn_user_prior": False}
    params |= {"guess_floor": floor, "learn_guess_floor": False}
    online = Baseline(**params).fit(rows.iloc[:3])
    for k in range(3, len(rows)):
        online.update(rows.iloc[k].to_dict())
    refit = Baseline(**params).fit(rows)
    for user in rows["user_id"].unique():
        for item, skill in rows[["item_id", "skill_id"]].drop_duplicates().itertuples(index=False):
            a = online.predict_one(user, item, skill)["p_correct"]
            b = refit.predict_one(user, item, skill)["p_correct"]
            assert a == pytest.approx(b, abs=1e-9), (user, item)


def test_user_prior_strength_is_learned_from_the_spread_of_abilities() -> None:
    """Empirical Bayes: users who differ a lot get a weak prior (answers move them far),
    users who are all alike a strong one; with too few users the starting value is kept."""
    rng = np.random.default_rng(3)

    def cohort(ability_sd: float, users: int = 120, per_user: int = 25) -> pd.DataFrame:
        ability = rng.normal(0.0, ability_sd, users)
        rows = []
        for u in range(users):
            for t in range(per_user):
                item = f"i{rng.integers(10)}"
                p = 1 / (1 + math.exp(-(ability[u] + 0.5)))
                rows.append((f"u{u}", item, "A", float(rng.random() < p), 30.0, t))
        return pd.DataFrame(
            rows, columns=["user_id", "item_id", "skill_id", "correct", "rt_seconds", "order"]
        )

    spread = Baseline().fit(cohort(2.0))
    alike = Baseline().fit(cohort(0.1))
    assert spread._user_priors()[0] < 1.0 < alike._user_priors()[0]
    few = Baseline(user_prior_precision=1.5).fit(cohort(2.0, users=5))
    assert few._user_priors()[0] == 1.5
    fixed = Baseline(learn_user_prior=False).fit(cohort(2.0))
    assert fixed._user_priors()[0] == 1.0
    # The learned strengths travel with the saved model.
    assert Baseline.from_bytes(spread.to_bytes())._user_priors() == spread._user_priors()


def _item_spread_cohort(item_sd: float, seed: int, users: int = 150, draw: int = 0) -> pd.DataFrame:
    """Students (``draw``: which ones) doing items of 30 skills (10 items each) whose logits
    scatter by ``item_sd`` around their skill's (fixed by ``seed``); students of equal
    ability."""
    rng = np.random.default_rng(seed)
    skill_logit = rng.normal(0.5, 0.8, 30)
    item_logit = skill_logit.repeat(10) + rng.normal(0.0, item_sd, 300)
    rng = np.random.default_rng([seed, draw])
    rows = []
    for u in range(users):
        for t, i in enumerate(rng.integers(300, size=20)):
            p = 1 / (1 + math.exp(-item_logit[i]))
            rows.append((f"u{draw}-{u}", f"i{i}", f"s{i // 10}", float(rng.random() < p), 30.0, t))
    return pd.DataFrame(
        rows, columns=["user_id", "item_id", "skill_id", "correct", "rt_seconds", "order"]
    )


def test_how_strongly_an_items_rate_is_shrunk_is_learned() -> None:
    """Empirical Bayes for ``k_item``'s rate: items that scatter widely around their skill
    keep more of their own record (fewer pseudo-attempts), items that are all alike are
    pulled to their skill; other students are predicted better than with the default 8."""
    for seed in (0, 1):
        for item_sd in (1.5, 0.05):
            model = Baseline().fit(_item_spread_cohort(item_sd, seed))
            assert (model.item_rate_k_ < 8.0) if item_sd > 1 else (model.item_rate_k_ > 8.0)
            default = Baseline.from_bytes(model.to_bytes())
            default.item_rate_k_ = 8.0
            test = _item_spread_cohort(item_sd, seed, draw=1)
            assert _log_loss(model, test) < _log_loss(default, test)
    # Too few students: the constructor's value.
    assert Baseline(k_item=5.0).fit(_item_spread_cohort(1.5, 0, users=10)).item_rate_k_ == 5.0
    assert Baseline(learn_user_prior=False).fit(_item_spread_cohort(1.5, 0)).item_rate_k_ == 8.0
    model = Baseline().fit(_item_spread_cohort(1.5, 2))
    bads = (0, -1.0, math.nan, math.inf, "x", True)
    _assert_state_round_trip(model, "item_rate_k", 8.0, bads, ("u0-1", "i1", "s0"))


def _three_pl_cohort(floor: float, users: int, seed: int, per_user: int = 20) -> pd.DataFrame:
    """Multiple-choice-like answers: ``floor + (1 - floor) sigmoid(ability - difficulty)``,
    abilities N(0, 1.5), 12 items of one skill with difficulties from -1.5 to 2."""
    rng = np.random.default_rng(seed)
    ability = rng.normal(0.0, 1.5, users)
    difficulty = np.linspace(-1.5, 2.0, 12)
    rows = []
    for u in range(users):
        for t in range(per_user):
            i = int(rng.integers(len(difficulty)))
            p = floor + (1 - floor) * _sigmoid(ability[u] - difficulty[i])
            rows.append((f"s{seed}u{u}", f"i{i}", "A", float(rng.random() < p), 30.0, t))
    return pd.DataFrame(
        rows, columns=["user_id", "item_id", "skill_id", "correct", "rt_seconds", "order"]
    )


def _log_loss(model: Baseline, test: pd.DataFrame) -> float:
    p = model.predict(test)["p_correct"].to_numpy()
    y = test["correct"].to_numpy(dtype=float)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def test_guessing_floor_is_learned_where_students_guess_and_only_there() -> None:
    """Four-option answers have a floor near 0.25: it is learned, and new students are
    predicted better one step ahead with it; answers without a floor learn none."""
    guessing = Baseline().fit(_three_pl_cohort(0.25, 300, seed=1))
    assert 0.15 <= guessing.guess_floor_ <= 0.35
    without = Baseline(learn_guess_floor=False).fit(_three_pl_cohort(0.25, 300, seed=1))
    assert without.guess_floor_ == 0.0
    test = _three_pl_cohort(0.25, 200, seed=2)
    assert _log_loss(guessing, test) < _log_loss(without, test) - 0.002
    # The same students answering without luck: no floor.
    assert Baseline().fit(_three_pl_cohort(0.0, 300, seed=1)).guess_floor_ <= 0.05
    # Too few students to learn from: the constructor's floor is kept.
    assert Baseline(guess_floor=0.1).fit(_three_pl_cohort(0.25, 5, seed=1)).guess_floor_ == 0.1


def test_guessing_floor_keeps_population_rates_and_the_direction_of_evidence() -> None:
    model = Baseline().fit(_three_pl_cohort(0.25, 300, seed=1))
    assert model.guess_floor_ > 0
    plain = Baseline(user_prior_precision=None).fit(_three_pl_cohort(0.25, 300, seed=1))
    for item in ("i0", "i6", "i11"):
        # A student with no record gets the item's rate itself.
        assert model.predict_one("new", item, "A")["p_correct"] == pytest.approx(
            plain.predict_one("new", item, "A")["p_correct"], abs=1e-12
        )
        # A student who failed everything stays above the floor (or half the rate).
        history = pd.DataFrame(
            {
                "user_id": "weak",
                "item_id": [f"i{k % 12}" for k in range(30)] + [item],
                "skill_id": "A",
                "correct": [0.0] * 30 + [np.nan],
                "order": range(31),
            }
        )
        p_item = plain.predict_one("new", item, "A")["p_correct"]
        p_weak = model.predict(history)["p_correct"].iloc[-1]
        assert min(model.guess_floor_, p_item / 2) < p_weak < p_item
    # Correct answers never lower the next prediction, wrong ones never raise it.
    rng = np.random.default_rng(4)
    for _ in range(50):
        answers = rng.integers(0, 2, 8).astype(float)
        frame = pd.DataFrame(
            {
                "user_id": "probe",
                "item_id": [f"i{k}" for k in rng.integers(0, 12, 9)],
                "skill_id": "A",
                "correct": [*answers, np.nan],
                "order": range(9),
            }
        )
        p = model.predict(frame)["p_correct"].to_numpy()
        flipped = frame.assign(correct=[*answers[:-1], 1.0 - answers[-1], np.nan])
        q = model.predict(flipped)["p_correct"].to_numpy()
        assert (q[-1] - p[-1]) * (1 - 2 * answers[-1]) > 0


def test_guessing_floor_is_saved_and_validated() -> None:
    model = Baseline().fit(_three_pl_cohort(0.25, 300, seed=1))
    # A state stored before the floor was learned has none.
    bads = (-0.1, 0.5, math.nan, "x", True)
    _assert_state_round_trip(model, "guess_floor", 0.0, bads, ("s1u3", "i4", "A"))
    for bad in bads:
        with pytest.raises(ValueError, match="guess_floor"):
            Baseline(guess_floor=bad).fit(TINY)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="learn_guess_floor"):
        Baseline(learn_guess_floor="yes").fit(TINY)  # type: ignore[arg-type]


def test_personalisation_reacts_to_history() -> None:
    model = _tiny_model()
    history = pd.DataFrame(
        {
            "user_id": "new",
            "item_id": ["i1", "i2", "i1", "i2"],
            "skill_id": "A",
            "correct": [1, 1, 1, np.nan],
            "order": [0, 1, 2, 3],
        }
    )
    flipped = history.assign(correct=[0, 0, 0, np.nan])
    good, bad = model.predict(history), model.predict(flipped)
    assert good["p_correct"].iloc[0] == bad["p_correct"].iloc[0]
    assert good["p_correct"].iloc[3] > bad["p_correct"].iloc[3] + 0.1


def test_user_offsets_can_be_disabled() -> None:
    model = _tiny_model(user_prior_precision=None)
    a = model.predict_one("u1", "i1", "A")
    b = model.predict_one("u2", "i1", "A")
    assert a == b


# -- update ------------------------------------------------------------------------------------
def _random_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rt = np.round(np.exp(rng.normal(3.5, 0.7, n)), 1)
    rt[rng.random(n) < 0.1] = np.nan
    skills = np.array(["a", "b", "c", None], dtype=object)[rng.integers(0, 4, n)]
    return pd.DataFrame(
        {
            "user_id": [f"u{v}" for v in rng.integers(0, 12, n)],
            "item_id": [f"i{v}" for v in rng.integers(0, 30, n)],
            "skill_id": skills,
            "correct": rng.integers(0, 2, n),
            "rt_seconds": rt,
            "order": np.arange(n, dtype=float),
        }
    )


@pytest.mark.parametrize(
    "extra",
    [
        {"user_id": "u1", "item_id": "i3", "skill_id": "a", "correct": 1, "rt_seconds": 33.0},
        {"user_id": "new", "item_id": "new", "skill_id": "new", "correct": 0, "rt_seconds": 9.5},
        {"user_id": "u2", "item_id": "i4", "skill_id": None, "correct": 0, "rt_seconds": np.nan},
    ],
)
def test_update_equals_refit_for_item_statistics(extra: dict[str, object]) -> None:
    frame = _random_frame(300, seed=11)
    updated = Baseline().fit(frame)
    updated.update(extra)
    refit = Baseline().fit(pd.concat([frame, pd.DataFrame([{**extra, "order": 300.0}])]))

    a, b = updated._get_state(), refit._get_state()
    for key in ("item_ids", "skill_ids", "user_ids"):
        assert a[key] == b[key], key
    np.testing.assert_array_equal(a["item_skill"], b["item_skill"])
    for key in ("item_stats", "skill_stats", "global_stats"):
        # Counts agree exactly; log-time sums to rounding (log of one value vs a vector).
        np.testing.assert_allclose(a[key], b[key], rtol=1e-13, atol=0, err_msg=key)
        np.testing.assert_array_equal(a[key][..., :3], b[key][..., :3], err_msg=key)
    probe = ("someone", extra["item_id"], extra["skill_id"])
    assert updated.predict_one(*probe) == pytest.approx(refit.predict_one(*probe), rel=1e-12)


def test_service_can_start_empty_and_learn_online() -> None:
    empty = pd.DataFrame(columns=["user_id", "item_id", "skill_id", "correct", "order"])
    model = Baseline().fit(empty)
    first = model.predict_one("u", "t1", "topic")
    assert first["p_correct"] == 0.5
    assert first["time_median_s"] == pytest.approx(DEFAULT_TIME_MEDIAN_S)
    for _ in range(20):  # more than the initial capacity of every table
        model.update({"user_id": "u", "item_id": "t1", "skill_id": "topic", "correct": 1})
    for j in range(20):
        model.update({"user_id": f"v{j}", "item_id": f"t{j}", "skill_id": f"s{j}", "correct": 0})
    assert model.predict_one("u", "t1", "topic")["p_correct"] > 0.9
    assert model.predict_one("v3", "t3", "s3")["p_correct"] < 0.5
    clone = Baseline.from_bytes(model.to_bytes())
    assert clone.predict_one("u", "t1", "topic") == model.predict_one("u", "t1", "topic")


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"item_id": "i1", "correct": 1}, "user_id"),
        ({"user_id": "u1", "item_id": float("nan"), "correct": 1}, "item_id"),
        ({"user_id": "u1", "item_id": "i1", "correct": 0.5}, "correct"),
        ({"user_id": "u1", "item_id": "i1", "correct": None}, "correct"),
        ({"user_id": "u1", "item_id": "i1", "correct": 1, "rt_seconds": "fast"}, "rt_seconds"),
        ({"user_id": "u1", "item_id": "i1", "correct": 1, "rt_seconds": True}, "rt_seconds"),
    ],
)
def test_update_validates_the_row(row: dict[str, object], field: str) -> None:
    model = _tiny_model()
    before = model._get_state()
    with pytest.raises(ValueError, match=field):
        model.update(row)
    after = model._get_state()
    assert after["user_ids"] == before["user_ids"]
    np.testing.assert_array_equal(after["global_stats"], before["global_stats"])


@pytest.mark.parametrize("seconds", [0, -3.0, math.inf, -math.inf])
def test_update_reads_an_unusable_time_as_missing(seconds: float) -> None:
    """A logged duration of zero or less (or an infinite one) teaches the outcome, not the
    time: the same state as the row with no time, and a warning that says so."""
    row = {"user_id": "u1", "item_id": "i1", "correct": 1}
    with_time, without = _tiny_model(), _tiny_model()
    with pytest.warns(InteractionsWarning, match=r"`rt_seconds` .* read as missing"):
        with_time.update({**row, "rt_seconds": seconds})
    without.update(row)
    assert with_time.predict_one("u1", "i1") == without.predict_one("u1", "i1")
    assert with_time.predict_one("u1", "i1") != _tiny_model().predict_one("u1", "i1")


@pytest.mark.parametrize(
    "params",
    [{"k_item": 0}, {"k_skill": -1.0}, {"user_prior_precision": 0.0}, {"k_user_time": math.nan}],
)
def test_bad_hyperparameters_are_named(params: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(params))):
        Baseline(**params).fit(TINY)


# -- real data ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_credential_data_one_step_ahead() -> None:
    path = DATASETS / "credential_form1" / "responses_long.csv"
    if not path.is_file():
        pytest.skip(f"real data set not available at {path.resolve()}")
    raw = pd.read_csv(path, usecols=["person", "item", "correct", "rt_seconds"])
    df = pd.DataFrame(
        {
            "user_id": raw["person"],
            "item_id": raw["item"],
            "correct": raw["correct"],
            # LNIRT treats the 109 zero durations as missing; so do we.
            "rt_seconds": raw["rt_seconds"].where(raw["rt_seconds"] > 0),
            # No presentation order is recorded: use the item number, as LNIRT's examples do.
            "order": raw["item"],
        }
    )
    persons = np.sort(df["user_id"].unique())
    rng = np.random.default_rng(2024)
    test_persons = rng.choice(persons, size=len(persons) // 5, replace=False)
    is_test = df["user_id"].isin(test_persons)
    train, test = df[~is_test], df[is_test]

    model = Baseline().fit(train)
    pred = model.predict(test)
    y = test["correct"].to_numpy()
    p = pred["p_correct"].to_numpy()
    auc = _auc(y, p)
    assert auc > 0.6

    # User offsets are what makes one-step-ahead prediction personal: they must help.
    plain = Baseline(user_prior_precision=None).fit(train).predict(test)["p_correct"].to_numpy()
    assert auc > _auc(y, plain) + 0.005

    rt = test["rt_seconds"].to_numpy()
    timed = ~np.isnan(rt)
    inside = (rt[timed] >= pred["time_p10_s"].to_numpy()[timed]) & (
        rt[timed] <= pred["time_p90_s"].to_numpy()[timed]
    )
    assert 0.7 < inside.mean() < 0.9


# -- predict_one: the fast path -----------------------------------------------------------------
def _one_row_predict(model: Baseline, user: object, item: object, skill: object) -> dict:
    """``predict`` on the one-row frame of an attempt not made yet: what ``predict_one`` serves."""
    frame = pd.DataFrame(
        {"user_id": [user], "item_id": [item], "skill_id": [skill], "correct": [np.nan]}
    ).assign(order=0.0)
    return {k: float(v) for k, v in model.predict(frame).iloc[0].items()}


def _assert_predict_one_is_predict(model: Baseline, probes: list[tuple]) -> None:
    for probe in probes:
        fast = model.predict_one(*probe)
        assert list(fast) == list(PREDICTION_COLUMNS), probe
        assert all(type(v) is float and math.isfinite(v) for v in fast.values()), probe
        assert fast == pytest.approx(_one_row_predict(model, *probe), rel=1e-12, abs=0), probe


def _raised(call: Callable[[], object]) -> tuple[type, str]:
    with pytest.raises(ValueError) as info:
        call()
    return type(info.value), str(info.value)


APP_PROBES = [
    ("learner1", "Calculus:easy", "Calculus"),  # known user, item and skill
    ("learner1", "Calculus:hard", None),  # the item's own skill
    ("learner2", "Waves:medium", "Calculus"),  # a row's skill other than the item's
    ("stranger", "Mechanics:hard", "Mechanics"),  # unknown user
    ("learner3", "Optics:easy", "Waves"),  # unknown item of a known skill
    ("learner3", "Waves:easy", "Optics"),  # unknown skill
    ("learner4", "Optics:easy", None),  # unknown item, no skill
    ("stranger", "Optics:hard", "Optics"),  # nothing known
]


def test_predict_one_equals_predict_on_the_one_row_frame() -> None:
    train, _ = simulate_app_learners([30] * 40, seed=5)
    model = Baseline().fit(train)
    # Enough data that the learned priors and interval scale are in play.
    assert model.interval_scale_ != 1.0
    assert model._user_priors() != (1.0, 5.0)
    _assert_predict_one_is_predict(model, APP_PROBES)

    for row in (
        {"user_id": "learner1", "item_id": "Calculus:easy", "skill_id": "Calculus", "correct": 0},
        {"user_id": "learner1", "item_id": "Calculus:hard", "correct": 1, "rt_seconds": 900.0},
        {"user_id": "newbie", "item_id": "Optics:easy", "skill_id": "Optics", "correct": 1},
        {"user_id": "stranger2", "item_id": "Waves:easy", "correct": 0, "rt_seconds": 0.2},
    ):
        before = model.predict_one(row["user_id"], row["item_id"], row.get("skill_id"))
        model.update(row)
        assert model.predict_one(row["user_id"], row["item_id"], row.get("skill_id")) != before
    probes = [*APP_PROBES, ("newbie", "Optics:easy", "Optics"), ("newbie", "Optics:hard", None)]
    _assert_predict_one_is_predict(model, probes)

    clone = Baseline.from_bytes(model.to_bytes())
    _assert_predict_one_is_predict(clone, probes)
    for probe in probes:
        assert clone.predict_one(*probe) == model.predict_one(*probe)


def test_predict_one_reads_ids_as_predict_does() -> None:
    train, _ = simulate_app_learners([30] * 30, seed=6)
    # Numeric ids, with a gap in the skills so that the skill column is float ("2.0" is "2").
    train["user_id"] = train["user_id"].str.removeprefix("learner").astype(int)
    train["item_id"] = pd.factorize(train["item_id"])[0] + 100
    skill = pd.factorize(train["skill_id"])[0].astype(float)
    train["skill_id"] = np.where(np.arange(len(train)) % 7 == 0, np.nan, skill)
    model = Baseline().fit(train)
    assert "3" in model.user_index_ and "101" in model.item_index_ and "2" in model.skill_index_
    probes = [
        (3, 101, 2),
        (3.0, 101.0, 2.0),
        (np.int64(3), np.int64(101), np.float64(2.0)),
        (3, 101, np.nan),
        (3, 101, None),
        (3.5, 101, 1),  # a fractional id is nobody
        (True, 101, 2),
        # Types only the DataFrame path converts (bytes are decoded, float32 goes through
        # Python floats): answered by it, so still the same.
        (b"3", np.float32(101.0), "2"),
        (3, 101, pd.NA),
        (np.str_("3"), "101", np.float32(2.0)),
    ]
    _assert_predict_one_is_predict(model, probes)
    assert model.predict_one(3.0, 101.0, 2.0) == model.predict_one("3", "101", "2")
    assert model.predict_one(3, 101, None) != model.predict_one("stranger", 101, None)


@pytest.mark.parametrize(
    "args",
    [
        (None, "Calculus:easy", "Calculus"),
        ("learner1", None, "Calculus"),
        (math.nan, "Calculus:easy", None),
        ("learner1", np.float64("nan"), None),
        (pd.NA, "Calculus:easy", "Calculus"),
        ("learner1", pd.NaT, "Calculus"),
        (None, None, None),
    ],
)
def test_predict_one_rejects_missing_ids_as_before(args: tuple) -> None:
    train, _ = simulate_app_learners([20] * 10, seed=7)
    model = Baseline().fit(train)
    assert _raised(lambda: model.predict_one(*args)) == _raised(
        lambda: LearnerModel.predict_one(model, *args)
    )


def test_predict_one_builds_no_data_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    train, _ = simulate_app_learners([20] * 10, seed=8)
    model = Baseline().fit(train)
    expected = {probe: model.predict_one(*probe) for probe in APP_PROBES}

    def no_frames(*args: object, **kwargs: object) -> None:
        raise AssertionError("predict_one went through predict")

    monkeypatch.setattr(base_module, "validate_interactions", no_frames)
    monkeypatch.setattr(baseline_module, "sort_for_sequences", no_frames)
    for probe in APP_PROBES:
        assert model.predict_one(*probe) == expected[probe]


class Halved(Baseline):
    """A subclass that changes every prediction: its predict_one must show the change."""

    def _predict_validated(self, data: pd.DataFrame) -> pd.DataFrame:
        out = super()._predict_validated(data)
        out["p_correct"] = out["p_correct"] / 2.0
        return out


def test_predict_one_of_a_subclass_that_changes_predict_goes_through_it() -> None:
    train, _ = simulate_app_learners([20] * 10, seed=8)
    plain, halved = Baseline().fit(train), Halved().fit(train)
    for probe in APP_PROBES:
        expected = plain.predict_one(*probe)
        expected["p_correct"] /= 2.0
        assert halved.predict_one(*probe) == pytest.approx(expected, rel=1e-12, abs=0)


@pytest.mark.parametrize("floor", [0.0, 0.2])
def test_an_answer_never_moves_its_own_items_next_prediction_against_it(floor: float) -> None:
    """Before and after, not only right against wrong: a correct answer never lowers the
    next prediction for the same item, a wrong one never raises it, whatever the student's
    record. The offset's estimate from sums at a zero offset failed this for a strong
    student answering an easy item right (and a weak one answering a hard item wrong)."""
    cohort = _three_pl_cohort(floor, 300, seed=3, per_user=40)
    model = Baseline(guess_floor=floor, learn_guess_floor=False).fit(cohort)
    rng = np.random.default_rng(5)
    items = [f"i{k}" for k in range(12)]
    for student in range(60):
        user, skill = f"probe{student}", "A"
        # Records from all wrong to all right, on items of every difficulty.
        strength = student / 59
        for _ in range(int(rng.integers(5, 40))):
            item = items[int(rng.integers(12))]
            right = float(rng.random() < strength)
            model.update({"user_id": user, "item_id": item, "skill_id": skill, "correct": right})
        for _ in range(6):
            item = items[int(rng.integers(12))]
            right = float(rng.random() < strength)
            before = model.predict_one(user, item, skill)["p_correct"]
            model.update({"user_id": user, "item_id": item, "skill_id": skill, "correct": right})
            after = model.predict_one(user, item, skill)["p_correct"]
            assert (after >= before) if right else (after <= before), (user, item, before, after)


def test_a_version_stored_before_the_offset_filter_serves_the_offsets_it_served() -> None:
    """Stored user statistics used to hold sums of score and information at a zero offset;
    such a version loads with the offsets it served (score / (information + precision)),
    and goes on learning with the filter. A bad offset form or information is refused."""
    model = Baseline().fit(_three_pl_cohort(0.0, 60, seed=2))
    state = model._get_state()
    users = state["user_stats"].copy()
    precision = model.user_precision_
    # The same offsets written the old way: any score sum S with S / (I + precision) = offset.
    old_stats = users.copy()
    old_stats[:, 0] = users[:, 0] * (users[:, 1] + precision)
    old = {k: v for k, v in state.items() if k != "user_offsets"}
    restored = Baseline()
    restored._set_state({**old, "user_stats": old_stats})
    restored.fitted_ = True  # as ``from_bytes`` marks a loaded model
    for user in ("s2u0", "s2u7", "s2u33"):
        for item in ("i0", "i5", "i11"):
            assert restored.predict_one(user, item, "A")["p_correct"] == pytest.approx(
                model.predict_one(user, item, "A")["p_correct"], abs=1e-12
            )
    row = {"user_id": "s2u7", "item_id": "i5", "skill_id": "A", "correct": 1.0}
    restored.update(row)
    model.update(row)
    assert restored.predict_one("s2u7", "i5", "A") == pytest.approx(
        model.predict_one("s2u7", "i5", "A"), abs=1e-12
    )
    with pytest.raises(ValueError, match="user_offsets"):
        Baseline()._set_state({**state, "user_offsets": "sums"})
    negative = users.copy()
    negative[3, 1] = -0.5
    with pytest.raises(ValueError, match="negative information"):
        Baseline()._set_state({**state, "user_stats": negative})


def test_learn_many_is_update_row_by_row() -> None:
    """``learn_many`` (rows read once) leaves exactly the state ``update`` row by row leaves:
    known and new users, items and skills, rows without a skill, missing and absurd times."""
    data, _ = simulate_app_learners([30] * 40, seed=8)
    users = data["user_id"].unique()
    model = Baseline().fit(data[~data["user_id"].isin(users[:10])])
    rows = data[data["user_id"].isin(users[:14])].copy()
    rows.loc[rows.index[::5], "rt_seconds"] = np.nan
    rows.loc[rows.index[1::9], "rt_seconds"] = 1e-300
    rows.loc[rows.index[2::11], "item_id"] = "a new item"
    rows.loc[rows.index[3::13], "skill_id"] = None
    rows.loc[rows.index[4::17], "skill_id"] = "a new skill"
    one_by_one, at_once = (Baseline.from_bytes(model.to_bytes()) for _ in range(2))
    for row in rows.to_dict("records"):
        one_by_one.update(row)
    at_once.learn_many(rows)
    for name in ("user_index_", "item_index_", "skill_index_", "pair_timed_"):
        assert getattr(at_once, name) == getattr(one_by_one, name)
    for name in ("user_stats_", "item_stats_", "item_skill_", "skill_stats_", "global_stats_"):
        np.testing.assert_array_equal(getattr(at_once, name), getattr(one_by_one, name))
    probe = rows.iloc[:50].assign(correct=np.nan)
    pd.testing.assert_frame_equal(at_once.predict(probe), one_by_one.predict(probe))


def test_learn_many_refuses_what_update_refuses_after_the_rows_before() -> None:
    data, _ = simulate_app_learners([20] * 20, seed=9)
    model = Baseline().fit(data)
    rows = data.iloc[:30].copy()
    rows["rt_seconds"] = rows["rt_seconds"].astype(object)
    rows.iloc[12, rows.columns.get_loc("rt_seconds")] = "slow"
    at_once, one_by_one = refused_alike(model, rows, "rt_seconds")
    np.testing.assert_array_equal(at_once.user_stats_, one_by_one.user_stats_)
    np.testing.assert_array_equal(at_once.item_stats_, one_by_one.item_stats_)


# -- a user's time on one item ------------------------------------------------------------------
def _item_speed_cohort(
    users: int, interaction_sd: float, seed: int, prefix: str = "u"
) -> pd.DataFrame:
    """``users`` students × 4 items × 8 timed attempts: log time = item + user (+ a user × item
    effect of sd ``interaction_sd``) + noise of sd 0.5."""
    rng = np.random.default_rng(seed)
    items = {"i1": 3.5, "i2": 4.0, "i3": 4.5, "i4": 5.0}
    rows = []
    for u in range(users):
        speed = rng.normal(0.0, 0.4)
        for item, centre in items.items():
            own = rng.normal(0.0, interaction_sd)
            for k in range(8):
                lt = centre + speed + own + rng.normal(0.0, 0.5)
                rows.append((f"{prefix}{u}", item, "S", int(rng.random() < 0.6), math.exp(lt), k))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "skill_id", "correct", "rt", "k"])
    frame = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    frame["order"] = frame.groupby("user_id").cumcount()
    return frame.rename(columns={"rt": "rt_seconds"}).drop(columns="k")


def test_a_student_who_is_nearly_all_of_an_items_data_is_predicted_from_their_own_times() -> None:
    """Only a student's first timed attempt at an item enters its shared time statistics (so
    one student cannot move another's prediction), yet a student with a hundred attempts at
    an item is predicted from them: the offset on the item beyond the student's overall one.
    Seed 000's bulk user in miniature: one student, very different times per item."""
    rng = np.random.default_rng(3)
    medians = {"easy": 40.0, "medium": 200.0, "hard": 600.0}
    rows = [
        ("heavy", item, "T", int(rng.random() < 0.5), median * math.exp(rng.normal(0.0, 0.3)))
        for _ in range(100)
        for item, median in medians.items()
    ]
    rows += [("light", item, "T", 1, 120.0) for item in medians]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "skill_id", "correct", "rt_seconds"])
    frame["order"] = frame.groupby("user_id").cumcount()
    model = Baseline().fit(frame)
    without = Baseline(k_pair_time=None).fit(frame)
    for item in medians:
        observed = frame[(frame["user_id"] == "heavy") & (frame["item_id"] == item)]
        own = float(np.median(observed["rt_seconds"]))
        assert model.predict_one("heavy", item, "T")["time_median_s"] == pytest.approx(
            own, rel=0.15
        ), item
        # Without that offset the three items' times are nearly alike (one attempt each).
        if item != "medium":
            assert without.predict_one("heavy", item, "T")["time_median_s"] != pytest.approx(
                own, rel=0.15
            ), item
        # Another student still gets the population's time: the heavy student's hundred
        # attempts count once in the shared statistics.
        other = model.predict_one("new", item, "T")["time_median_s"]
        assert other == without.predict_one("new", item, "T")["time_median_s"]
    # Online learning gets there too: a hundred attempts learnt one by one.
    online = Baseline().fit(frame[frame["user_id"] == "light"])
    for row in frame[frame["user_id"] == "heavy"].to_dict("records"):
        online.update(row)
    hard = frame[(frame["user_id"] == "heavy") & (frame["item_id"] == "hard")]
    assert online.predict_one("heavy", "hard", "T")["time_median_s"] == pytest.approx(
        float(np.median(hard["rt_seconds"])), rel=0.15
    )


def test_the_strength_of_a_students_offset_on_an_item_is_learned() -> None:
    """Empirical Bayes, as for the user priors: where students' times on an item differ from
    their times elsewhere, the offset is learned with a small pseudo-count and predicts
    unseen students' later times better; where they do not, it is turned off."""
    with_effect = _item_speed_cohort(60, interaction_sd=0.6, seed=1)
    model = Baseline().fit(with_effect)
    assert model.pair_time_k_ is not None and model.pair_time_k_ <= 4.0
    test = _item_speed_cohort(30, interaction_sd=0.6, seed=2, prefix="new")
    later = test["order"] >= 16

    def rmse(m: Baseline) -> float:
        pred = m.predict(test)[later]
        residual = np.log(pred["time_median_s"]) - np.log(test.loc[later, "rt_seconds"])
        return float(np.sqrt(np.mean(residual**2)))

    assert rmse(model) < rmse(Baseline(k_pair_time=None).fit(with_effect)) - 0.05
    none = Baseline().fit(_item_speed_cohort(60, interaction_sd=0.0, seed=3))
    assert none.pair_time_k_ is None or none.pair_time_k_ >= 16.0


def test_offsets_on_items_are_saved_and_validated() -> None:
    model = Baseline().fit(_item_speed_cohort(40, interaction_sd=0.6, seed=4))
    # A state stored before these offsets serves without them, as it did.
    bads = (0, -1.0, math.nan, math.inf, "x", True)
    _assert_state_round_trip(model, "pair_time_k", None, bads, ("u1", "i2", "S"))
    state = model._get_state()
    with pytest.raises(ValueError, match="pair_time_sums"):
        Baseline()._set_state({**state, "pair_time_sums": state["pair_time_sums"][:-1]})
    bad = state["pair_time_sums"].copy()
    bad[0, 1] = -1.0
    with pytest.raises(ValueError, match="pair_time_sums"):
        Baseline()._set_state({**state, "pair_time_sums": bad})


def _scatter_cohort(
    users: int, seed: int, scatters: tuple[float, ...], prefix: str = "u"
) -> pd.DataFrame:
    """``users`` students × 4 items × 10 timed attempts: log time = item + user speed + noise
    whose sd is the student's own (cycling through ``scatters``)."""
    rng = np.random.default_rng(seed)
    items = {"i1": 3.5, "i2": 4.0, "i3": 4.5, "i4": 5.0}
    rows = []
    for u in range(users):
        speed, sd = rng.normal(0.0, 0.4), scatters[u % len(scatters)]
        for _ in range(10):
            for item, centre in items.items():
                lt = centre + speed + rng.normal(0.0, sd)
                rows.append((f"{prefix}{u}", item, "S", int(rng.random() < 0.6), math.exp(lt)))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "skill_id", "correct", "rt_seconds"])
    frame["order"] = frame.groupby("user_id").cumcount()
    return frame


def test_a_students_own_scatter_at_an_item_sets_the_width_of_their_range() -> None:
    """Steady and erratic students: with the pair's scatter learned, the range of each holds
    about 80 % of their later times; with the model's scatter for everyone, the steady
    students' ranges hold nearly all of them and the erratic ones' too few."""
    scatters = (0.15, 0.9)
    train = _scatter_cohort(60, seed=1, scatters=scatters)
    model = Baseline().fit(train)
    assert model.pair_var_nu_ is not None and model.pair_var_nu_ <= 8.0
    plain = Baseline(k_pair_var=None).fit(train)
    assert plain.pair_var_nu_ is None
    test = _scatter_cohort(40, seed=2, scatters=scatters, prefix="new")
    later = (test["order"] >= 20).to_numpy()
    steady = (test["user_id"].str[3:].astype(int) % 2 == 0).to_numpy()

    def coverage(m: Baseline, rows: np.ndarray) -> float:
        pred = m.predict(test)
        rt = test["rt_seconds"].to_numpy()
        inside = (rt >= pred["time_p10_s"].to_numpy()) & (rt <= pred["time_p90_s"].to_numpy())
        return float(inside[rows].mean())

    for group in (steady, ~steady):
        assert 0.7 <= coverage(model, later & group) <= 0.9
    assert coverage(plain, later & steady) > 0.95
    assert coverage(plain, later & ~steady) < 0.7
    # The same model predicts the same for everyone before their second time at an item.
    first = (test["order"] < 8).to_numpy()
    a, b = model.predict(test)[first], plain.predict(test)[first]
    np.testing.assert_allclose(
        np.log(a["time_p90_s"] / a["time_p10_s"]),
        np.log(b["time_p90_s"] / b["time_p10_s"]) * model.interval_scale_ / plain.interval_scale_,
    )
    # Where every student scatters alike, the pair's scatter is not used (or barely).
    alike = Baseline().fit(_scatter_cohort(60, seed=3, scatters=(0.5,)))
    assert alike.pair_var_nu_ is None or alike.pair_var_nu_ >= 8.0


def test_a_heavy_students_range_at_an_item_is_as_narrow_as_their_times() -> None:
    """Seed 000's bulk user in miniature: a hundred steady attempts at each of three items.
    Their range holds about 80 % of their times, learned in a fit or one update at a time."""
    rng = np.random.default_rng(4)
    medians = {"easy": 40.0, "medium": 200.0, "hard": 600.0}
    rows = [
        ("heavy", item, "T", int(rng.random() < 0.5), median * math.exp(rng.normal(0.0, 0.3)))
        for _ in range(100)
        for item, median in medians.items()
    ]
    rows += [("light", item, "T", 1, t) for item in medians for t in (30.0, 300.0)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "skill_id", "correct", "rt_seconds"])
    frame["order"] = frame.groupby("user_id").cumcount()
    online = Baseline().fit(frame[frame["user_id"] == "light"])
    for row in frame[frame["user_id"] == "heavy"].to_dict("records"):
        online.update(row)
    for model in (Baseline().fit(frame), online):
        for item in medians:
            times = frame.loc[
                (frame["user_id"] == "heavy") & (frame["item_id"] == item), "rt_seconds"
            ].to_numpy()
            pred = model.predict_one("heavy", item, "T")
            inside = float(np.mean((times >= pred["time_p10_s"]) & (times <= pred["time_p90_s"])))
            assert 0.7 <= inside <= 0.95, (item, inside)
            # A new student still gets the population's range.
            new = model.predict_one("new", item, "T")
            assert (
                new["time_p90_s"] / new["time_p10_s"] > 2 * pred["time_p90_s"] / pred["time_p10_s"]
            )


def test_the_scatter_at_an_item_is_saved_and_validated() -> None:
    model = Baseline().fit(_scatter_cohort(60, seed=5, scatters=(0.15, 0.9)))
    bads = (0, -1.0, math.nan, math.inf, "x", True)
    _assert_state_round_trip(model, "pair_var_nu", None, bads, ("u1", "i2", "S"))
    # A version stored before the sums of squares (two columns) serves the ranges it served.
    state = model._get_state()
    del state["pair_var_nu"]
    state["pair_time_sums"] = state["pair_time_sums"][:, :2]
    old = Baseline()
    old._set_state(state)
    old.fitted_ = True  # as from_bytes does after _set_state
    assert old.pair_var_nu_ is None
    without = Baseline.from_bytes(model.to_bytes())
    without.pair_var_nu_ = None
    assert old.predict_one("u1", "i2", "S") == without.predict_one("u1", "i2", "S")
    assert old.predict_one("u1", "i2", "S") != model.predict_one("u1", "i2", "S")
    old.update({"user_id": "u1", "item_id": "i2", "correct": 1, "rt_seconds": 50.0})
    assert len(old.pair_time_[next(iter(old.pair_time_))]) == 3
    bad = model._get_state()["pair_time_sums"].copy()
    bad[0, 2] = -1.0
    with pytest.raises(ValueError, match="pair_time_sums"):
        Baseline()._set_state({**model._get_state(), "pair_time_sums": bad})
