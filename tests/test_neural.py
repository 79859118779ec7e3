"""NeuralPredictor beyond the shared contract: strategies, determinism, cold start, online
updates against batch prediction, the fast ``predict_one`` path, monotonicity, the time head
and persistence. Data are small seeded simulations so the whole file runs in seconds."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from smartstudy.data.simulate import simulate_app_learners, simulate_lnirt
from smartstudy.eval.metrics import auc, interval_coverage, rmse_log_time
from smartstudy.models import Baseline, NeuralPredictor
from smartstudy.models.base import ArtifactError
from smartstudy.models.neural import STRATEGIES
from smartstudy.models.neural.features import (
    CORRECTNESS_FEATURES,
    DECAY_SKILL,
    N_CORR,
    RECENT,
    HistoryStore,
    correctness_features,
    grouped_decay,
    grouped_ema,
    grouped_streaks,
    read_decay,
    recent_window,
)

FAST: dict[str, Any] = {"epochs": 4, "hidden": 8, "time_hidden": 8, "d_item": 4, "d_skill": 4}
RTOL = 1e-9


def _app_data(seed: int = 3) -> pd.DataFrame:
    counts = [30 + (7 * k) % 40 for k in range(36)]
    df, _ = simulate_app_learners(counts, seed=seed)
    return df


APP = _app_data()
_USERS = sorted(APP["user_id"].unique())
TRAIN = APP[APP["user_id"].isin(_USERS[:28])].reset_index(drop=True)
TEST = APP[~APP["user_id"].isin(_USERS[:28])].reset_index(drop=True)
_CACHE: dict[str, NeuralPredictor] = {}


def _fitted(strategy: str = "inverse_frequency") -> NeuralPredictor:
    if strategy not in _CACHE:
        _CACHE[strategy] = NeuralPredictor(strategy=strategy, **FAST).fit(TRAIN)
    return _CACHE[strategy]


def _copy(model: NeuralPredictor) -> NeuralPredictor:
    return NeuralPredictor.from_bytes(model.to_bytes())


# -- strategies ------------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_trains_and_predicts(strategy: str) -> None:
    model = _fitted(strategy)
    pred = model.predict(TEST)
    assert np.isfinite(pred.to_numpy()).all()
    p = pred["p_correct"].to_numpy()
    assert ((p > 0) & (p < 1)).all()
    assert p.std() > 0.05, "predictions must depend on the item and history"
    assert auc(TEST["correct"], p) > 0.6
    assert (pred["time_p10_s"] < pred["time_median_s"]).all()
    assert (pred["time_median_s"] < pred["time_p90_s"]).all()
    assert model.train_info_["strategy"] == strategy
    assert model.train_info_["epochs_run"] >= 1


def test_strategies_differ_where_they_should() -> None:
    heads = _fitted("per_user_heads")
    assert heads.shape_.d_user == 0 and len(heads.head_b_) == len(heads.head_users_) + 1
    # Shrinkage keeps the heads moderate, and unknown users (row 0) use the shared head.
    assert heads.head_b_[0] == 0.0 and heads.head_g_[0] == 0.0
    assert np.abs(heads.head_b_).max() < 3.0
    assert np.abs(heads.head_b_).max() > 0.0
    l2 = _fitted("l2")
    assert l2.shape_.d_user == max(1, FAST.get("d_user", 4) // 2)
    assert l2.smoothing_.count_cap == 50.0
    progressive = _fitted("progressive")
    assert "pretrain_epochs" in progressive.train_info_


def test_inverse_frequency_weights_are_normalised_and_inverse() -> None:
    model = NeuralPredictor(frequency_power=1.0)
    codes = np.array([0] * 90 + [1] * 9 + [2])
    w = model._row_weights(codes, np.ones(len(codes), dtype=bool))
    assert math.isclose(w.mean(), 1.0)
    per_user = [w[codes == k].sum() for k in range(3)]
    np.testing.assert_allclose(per_user, per_user[0], rtol=1e-12)  # equal total influence
    assert (NeuralPredictor(strategy="none")._row_weights(codes, codes >= 0) == 1.0).all()


def test_bad_hyperparameters_are_rejected() -> None:
    with pytest.raises(ValueError, match="strategy"):
        NeuralPredictor(strategy="magic").fit(TRAIN)
    with pytest.raises(ValueError, match="epochs"):
        NeuralPredictor(epochs=0).fit(TRAIN)
    with pytest.raises(ValueError, match="val_fraction"):
        NeuralPredictor(val_fraction=1.0).fit(TRAIN)


# -- determinism -----------------------------------------------------------------------------
def test_deterministic_given_seed_and_seed_matters() -> None:
    import torch

    threads = torch.get_num_threads()
    a = NeuralPredictor(seed=7, **FAST).fit(TRAIN).predict(TEST)
    b = NeuralPredictor(seed=7, **FAST).fit(TRAIN).predict(TEST)
    c = NeuralPredictor(seed=8, **FAST).fit(TRAIN).predict(TEST)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert not np.allclose(a["p_correct"], c["p_correct"])
    assert torch.get_num_threads() == threads, "fit must restore torch's thread count"


# -- cold start --------------------------------------------------------------------------------
def test_cold_start_users_items_and_skills() -> None:
    model = _fitted()
    known_item = TRAIN["item_id"].iloc[0]
    a = model.predict_one("new-user-1", known_item)
    b = model.predict_one("new-user-2", known_item)
    assert a == b, "every unseen user starts from the same cold-start state"
    for args in (("new", "new-topic:hard", "new-topic"), ("new", "x:y", None)):
        out = model.predict_one(*args)
        assert all(math.isfinite(v) for v in out.values())
        assert 0.0 < out["p_correct"] < 1.0
        assert out["time_p10_s"] < out["time_median_s"] < out["time_p90_s"]
    # A known item is told apart from an unseen one, and easy from hard for a new user.
    easy = model.predict_one("new", "Calculus:easy", "Calculus")["p_correct"]
    hard = model.predict_one("new", "Calculus:hard", "Calculus")["p_correct"]
    assert easy > hard + 0.1
    # Validation users are held out of the user vocabulary (scored as new users).
    assert len(model.user_vocab_) < TRAIN["user_id"].nunique()


# -- one-step-ahead, online updates, fast path -------------------------------------------------
def _test_user_rows(k: int = 0) -> pd.DataFrame:
    user = sorted(TEST["user_id"].unique())[k]
    return TEST[TEST["user_id"] == user].sort_values("order").reset_index(drop=True)


@pytest.mark.parametrize("strategy", ["inverse_frequency", "per_user_heads"])
def test_update_then_predict_one_equals_batch_predict(strategy: str) -> None:
    # A new user, and a trained user continuing (their state comes from fit). Each user runs
    # on a fresh copy: online, other users' answers also refine the population references,
    # which batch prediction must never let leak between users.
    trained = TRAIN["user_id"].iloc[0]
    sequences = [
        _test_user_rows(0),
        _test_user_rows(2).assign(user_id=trained, order=lambda d: d["order"] + 10_000),
    ]
    for rows in sequences:
        model = _copy(_fitted(strategy))
        batch = model.predict(rows)
        online = []
        for rec in rows.to_dict("records"):
            online.append(model.predict_one(rec["user_id"], rec["item_id"], rec["skill_id"]))
            model.update(rec)
        online_df = pd.DataFrame(online, index=rows.index)[batch.columns]
        np.testing.assert_allclose(online_df.to_numpy(), batch.to_numpy(), rtol=RTOL, atol=1e-12)
        # The state after the updates predicts what a batch with one more row would.
        nxt = rows.iloc[[-1]].assign(correct=np.nan, order=rows["order"].max() + 1)
        last = model.predict_one(nxt["user_id"].iloc[0], nxt["item_id"].iloc[0])
        full = _copy(_fitted(strategy)).predict(pd.concat([rows, nxt])).iloc[-1]
        np.testing.assert_allclose([last[c] for c in full.index], full.to_numpy(), rtol=RTOL)


def test_predict_one_equals_predict_with_missing_outcome() -> None:
    model = _fitted()
    users = ["brand-new", TRAIN["user_id"].iloc[3], TRAIN["user_id"].iloc[-1]]
    items = [*sorted(APP["item_id"].unique())[:5], "unseen:medium"]
    frame = pd.DataFrame(
        [
            {"user_id": u, "item_id": i, "skill_id": i.split(":")[0], "correct": np.nan}
            for u in users
            for i in items
        ]
    )
    frame["order"] = np.arange(len(frame))
    batch = model.predict(frame)
    for k, rec in enumerate(frame.to_dict("records")):
        one = model.predict_one(rec["user_id"], rec["item_id"], rec["skill_id"])
        np.testing.assert_allclose(
            [one[c] for c in batch.columns], batch.iloc[k].to_numpy(), rtol=RTOL, atol=1e-12
        )


def test_update_is_constant_time_state() -> None:
    model = _copy(_fitted())
    user, item = TRAIN["user_id"].iloc[0], TRAIN["item_id"].iloc[0]
    row = {"user_id": user, "item_id": item, "skill_id": item.split(":")[0], "correct": 1}
    model.update(row)
    sizes = (len(model.history_.user_index), len(model.history_.item_index))
    before = model.predict_one(user, item)
    for k in range(200):
        model.update({**row, "correct": k % 2, "rt_seconds": 30.0 + k})
    assert (len(model.history_.user_index), len(model.history_.item_index)) == sizes
    assert model.predict_one(user, item) != before
    assert model.history_.recent_yn[model.history_.user_index[user]] == RECENT


def test_update_leaves_the_users_own_reference_alone() -> None:
    # Leave-user-out references: a user's own answers never make "the item" look easier to
    # them (seed 002's dominant user); other users' references do learn from them.
    model = _copy(_fitted())
    item, skill = "Waves:hard", "Waves"
    own_before = model.refs_.references(
        np.array([item], dtype=object),
        np.array([skill], dtype=object),
        *_own(model, "solo", skill, item),
    )
    for _ in range(30):
        model.update({"user_id": "solo", "item_id": item, "skill_id": skill, "correct": 1})
    own_after = model.refs_.references(
        np.array([item], dtype=object),
        np.array([skill], dtype=object),
        *_own(model, "solo", skill, item),
    )
    other = model.refs_.references(
        np.array([item], dtype=object),
        np.array([skill], dtype=object),
        *_own(model, "x", skill, item),
    )
    np.testing.assert_allclose(own_after[0], own_before[0], rtol=1e-12)
    assert other[0][0] > own_before[0][0] + 0.01


def _own(model: NeuralPredictor, user: str, skill: str, item: str) -> tuple[np.ndarray, ...]:
    from smartstudy.models.neural.features import own_stats

    u, s, i = model.history_.single(user, skill, item)[:3]
    return own_stats(u), own_stats(s), own_stats(i)


def test_rows_without_outcome_teach_nothing_in_batch() -> None:
    model = _fitted()
    rows = _test_user_rows(0)
    asked = rows.copy()
    asked.loc[3, "correct"] = np.nan
    dropped = rows.drop(index=3)
    np.testing.assert_allclose(
        model.predict(asked).drop(index=3).to_numpy(),
        model.predict(dropped).to_numpy(),
        rtol=RTOL,
    )


# -- monotonicity ------------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["inverse_frequency", "none", "per_user_heads"])
def test_monotone_in_the_outcome_history(strategy: str) -> None:
    base = _fitted(strategy)
    users = ["fresh", TRAIN["user_id"].iloc[0], TEST["user_id"].iloc[0]]
    items = sorted(APP["item_id"].unique())[::3]
    for user in users:
        for item in items:
            skill = item.split(":")[0]
            for correct, sign in ((1, 1.0), (0, -1.0)):
                model = _copy(base)
                p = [model.predict_one(user, item, skill)["p_correct"]]
                for k in range(5):
                    model.update(
                        {
                            "user_id": user,
                            "item_id": item,
                            "skill_id": skill,
                            "correct": correct,
                            "rt_seconds": 10.0 * (k + 1) ** 2,  # times must not matter
                        }
                    )
                    p.append(model.predict_one(user, item, skill)["p_correct"])
                steps = sign * np.diff(p)
                assert (steps >= -1e-12).all(), (strategy, user, item, correct, p)
                assert steps.sum() > 1e-4, "answers must move the prediction"


def test_monotone_weights_are_positive_by_construction() -> None:
    net = _fitted().net_
    assert (net.c_Wm > 0).all() and (net.c_slopes > 0).all()


# -- time head -------------------------------------------------------------------------------
def test_time_head_intervals_cover_about_80_percent() -> None:
    df, _ = simulate_lnirt(300, 20, seed=4, sigma_tau=0.4, alpha_range=(1.5, 2.5))
    users = sorted(df["user_id"].unique())
    train = df[df["user_id"].isin(users[:220])]
    test = df[~df["user_id"].isin(users[:220])]
    model = NeuralPredictor(**FAST).fit(train)
    pred = model.predict(test)
    rt = test["rt_seconds"].to_numpy()
    cover = interval_coverage(rt, pred["time_p10_s"], pred["time_p90_s"])
    assert 0.74 <= cover <= 0.86, cover
    base = Baseline().fit(train).predict(test)
    assert (
        rmse_log_time(rt, pred["time_median_s"]) < rmse_log_time(rt, base["time_median_s"]) + 0.01
    )
    # The median is not a constant "mean-centred guess" (seed 001's time head).
    assert np.log(pred["time_median_s"]).std() > 0.3
    assert model.with_time_ and 0.5 <= model.time_calibration_ <= 3.0


def test_without_training_times_times_are_sensible_and_follow_the_user() -> None:
    model = NeuralPredictor(**FAST).fit(TRAIN.assign(rt_seconds=np.nan))
    assert not model.with_time_
    new = model.predict_one("someone", TRAIN["item_id"].iloc[0])
    assert math.isclose(new["time_median_s"], 60.0, rel_tol=1e-9)
    assert new["time_p10_s"] < 60.0 < new["time_p90_s"]
    for _ in range(10):
        model.update({"user_id": "someone", "item_id": "a", "correct": 1, "rt_seconds": 600.0})
    assert model.predict_one("someone", "a")["time_median_s"] > 200.0


# -- persistence ------------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["per_user_heads", "l2"])
def test_save_load_round_trip_is_exact(strategy: str, tmp_path: Any) -> None:
    model = _fitted(strategy)
    model.save(tmp_path / "m.model")
    loaded = NeuralPredictor.load(tmp_path / "m.model")
    pd.testing.assert_frame_equal(loaded.predict(TEST), model.predict(TEST), check_exact=True)
    row = {"user_id": "late", "item_id": "Waves:easy", "skill_id": "Waves", "correct": 0}
    a, b = _copy(model), loaded
    a.update(row)
    b.update(row)
    assert a.predict_one("late", "Waves:easy") == b.predict_one("late", "Waves:easy")


def test_state_is_json_and_arrays_only() -> None:
    state = _fitted()._get_state()
    for key, value in state.items():
        assert isinstance(value, np.ndarray | dict | list | str | int | float | bool), key
        if isinstance(value, np.ndarray):
            assert value.dtype != object, key


# -- feature machinery --------------------------------------------------------------------------
def test_grouped_ema_matches_the_sequential_recurrence() -> None:
    rng = np.random.default_rng(0)
    codes = rng.integers(-1, 5, 300)
    y = rng.integers(0, 2, 300).astype(float)
    y[rng.random(300) < 0.1] = np.nan
    start = rng.random((5, 2))
    before, final = grouped_ema(codes, y, start, (0.3, 0.7))
    state = start.copy()
    for r in range(300):
        g = codes[r]
        if g < 0:
            continue
        np.testing.assert_allclose(before[r], state[g], rtol=1e-12)
        if not np.isnan(y[r]):
            state[g] = (1 - np.array([0.3, 0.7])) * state[g] + np.array([0.3, 0.7]) * y[r]
    np.testing.assert_allclose(final, state, rtol=1e-12)


def test_recent_window_continues_a_stored_buffer() -> None:
    codes = np.array([0, 0, 0, 1, 1])
    mask = np.array([True, False, True, True, True])
    values = np.array([1.0, 9.0, 0.0, 1.0, 1.0])
    buffers = np.array([[0, 0, 1, 1, 1], [0, 0, 0, 0, 0]], dtype=float)
    total, count = recent_window(codes, mask, values, buffers, np.array([4, 0]))
    # user 0: buffer holds (0, 1, 1, 1) newest last; rows then add 1, (skipped), 0.
    np.testing.assert_array_equal(count, [4, 5, 5, 0, 1])
    np.testing.assert_array_equal(total, [3, 4, 4, 0, 1])
    assert isinstance(HistoryStore().to_state()["hist_user_ids"], list)


def test_grouped_decay_matches_the_sequential_recurrence() -> None:
    # Soft windows in attempts: an answer given at clock t_j weighs lam ** (t - 1 - t_j) when
    # read at clock t; groups start from stored counts as of their stored clocks.
    rng = np.random.default_rng(1)
    n, lams = 400, (0.5, 0.9)
    codes = rng.integers(-1, 6, n)
    y = rng.integers(0, 2, n).astype(float)
    y[rng.random(n) < 0.1] = np.nan
    clock = np.cumsum(rng.integers(0, 3, n)).astype(float) + 5.0
    start = rng.random((6, 4))
    start_clock = rng.integers(0, 5, 6).astype(float)
    before, final, final_clock = grouped_decay(codes, y, clock, start, start_clock, lams)
    state, at = start.copy(), start_clock.copy()
    lam = np.tile(lams, 2)
    for r in range(n):
        g = codes[r]
        if g < 0:
            assert (before[r] == 0).all()
            continue
        now = state[g] * lam ** (clock[r] - at[g])
        np.testing.assert_allclose(before[r], now, rtol=1e-10)
        if not np.isnan(y[r]):
            state[g] = lam * now + np.r_[[y[r]] * 2, [1 - y[r]] * 2]
            at[g] = clock[r] + 1
        else:
            state[g], at[g] = now, clock[r]
    np.testing.assert_allclose(final, state, rtol=1e-10)
    np.testing.assert_allclose(read_decay(final, final_clock, at, lams), state, rtol=1e-10)


def test_grouped_streaks_match_the_sequential_runs() -> None:
    rng = np.random.default_rng(2)
    codes = rng.integers(-1, 4, 300)
    y = rng.integers(0, 2, 300).astype(float)
    y[rng.random(300) < 0.1] = np.nan
    start = rng.integers(0, 3, (4, 2)).astype(float)
    before, final = grouped_streaks(codes, y, start)
    state = start.copy()
    for r in range(300):
        g = codes[r]
        if g < 0:
            continue
        np.testing.assert_array_equal(before[r], state[g])
        if not np.isnan(y[r]):
            state[g] = [y[r] * (state[g][0] + 1), (1 - y[r]) * (state[g][1] + 1)]
    np.testing.assert_array_equal(final, state)


def test_recency_state_online_equals_batch() -> None:
    # The store built from a batch (fit) holds the same recency-weighted counts and runs as
    # one built by update(), row by row, and both predict the same.
    model = _fitted()
    rows = pd.concat([_test_user_rows(1), _test_user_rows(3)]).reset_index(drop=True)
    online = _copy(model)
    for rec in rows.sort_values(["user_id", "order"]).to_dict("records"):
        online.update(rec)
    batch = NeuralPredictor(**FAST).fit(pd.concat([TRAIN, rows], ignore_index=True)).history_
    h = online.history_
    for user in rows["user_id"].unique():
        r_on, r_b = h.user_index[user], batch.user_index[user]
        np.testing.assert_allclose(h.user_dec[r_on], batch.user_dec[r_b], rtol=1e-10)
        np.testing.assert_array_equal(h.user_streak[r_on], batch.user_streak[r_b])
        clock_on = h.user_cnt[r_on, 0] + h.user_cnt[r_on, 1]
        for skill in rows.loc[rows["user_id"] == user, "skill_id"].unique():
            s_on, s_b = h.skill_index[(r_on, skill)], batch.skill_index[(r_b, skill)]
            for table in ("skill_dec", "skill_streak"):
                np.testing.assert_allclose(
                    getattr(h, table)[s_on], getattr(batch, table)[s_b], rtol=1e-10
                )
            read = read_decay(
                h.skill_dec[[s_on]], h.skill_clock[[s_on]], np.array([clock_on]), DECAY_SKILL
            )
            np.testing.assert_allclose(read, h.single(user, skill, "x")[10], rtol=1e-12)


def test_flipping_one_answer_to_correct_never_lowers_later_predictions() -> None:
    # Monotone in the whole outcome history, not just the latest answer: interleaved skills
    # (whose recency-weighted counts fade while other skills are practised) and runs.
    base = _fitted()
    rng = np.random.default_rng(5)
    items = sorted(APP["item_id"].unique())
    seq = [items[k] for k in rng.integers(0, len(items), 25)]
    answers = rng.integers(0, 2, 25)
    for flip in np.flatnonzero(answers == 0)[:4]:
        preds = []
        for ans in (answers, np.where(np.arange(25) == flip, 1, answers)):
            model = _copy(base)
            for item, a in zip(seq, ans, strict=True):
                model.update({"user_id": "u", "item_id": item, "correct": int(a)})
            preds.append([model.predict_one("u", it)["p_correct"] for it in items])
        assert (np.array(preds[1]) >= np.array(preds[0]) - 1e-12).all()


def test_each_correctness_feature_is_monotone_in_every_past_answer() -> None:
    # Feature by feature (the network's positive weights cannot hide one feature moving the
    # wrong way): a history with one answer flipped to correct has every correctness feature
    # at least as high, for every (skill, item) asked about afterwards.
    base = _fitted()
    rng = np.random.default_rng(6)
    items = sorted(APP["item_id"].unique())
    seq = [items[k] for k in rng.integers(0, len(items), 30)]
    answers = rng.integers(0, 2, 30)
    for flip in np.flatnonzero(answers == 0)[-6:]:
        feats = []
        for ans in (answers, np.where(np.arange(30) == flip, 1, answers)):
            model = _copy(base)
            for item, a in zip(seq, ans, strict=True):
                model.update({"user_id": "u", "item_id": item, "correct": int(a)})
            rows = []
            for item in items:
                hist = model.history_.single("u", model.item_skill_.get(item), item)
                rows.append(correctness_features(model.smoothing_, *hist[:5], *hist[7:])[0])
            feats.append(np.array(rows))
        assert feats[0].shape[1] == N_CORR
        assert (feats[1] >= feats[0] - 1e-12).all(), np.argwhere(feats[1] < feats[0] - 1e-12)


def test_artifact_of_the_old_feature_layout_is_refused() -> None:
    # An artifact saved before the recency features (22 correctness features, no recency
    # state) must fail to load, not predict with misaligned features.
    import io
    import json
    import zipfile

    old_n = CORRECTNESS_FEATURES.index("user_decay0.9_log_correct")
    assert 0 < old_n < N_CORR
    blob = _fitted().to_bytes()
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        meta = json.loads(zf.read("meta.json"))
        with np.load(io.BytesIO(zf.read("arrays.npz"))) as npz:
            arrays = {k: npz[k] for k in npz.files}
    for key in ("hist_user_dec", "hist_user_streak", "hist_skill_dec", "hist_skill_clock"):
        arrays.pop(key)
    for key in ("corr_mean", "corr_sd", "net_c_Wm", "net_c_lm"):
        arrays[key] = arrays[key][:old_n]
    arrays["net_c_slope_skill__weight"] = arrays["net_c_slope_skill__weight"][:, :old_n]
    meta["state"]["shape"]["n_corr"] = old_n
    buf, arr = io.BytesIO(), io.BytesIO()
    np.savez(arr, **arrays)
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("meta.json", json.dumps(meta))
        zf.writestr("arrays.npz", arr.getvalue())
    with pytest.raises(ArtifactError):
        NeuralPredictor.from_bytes(buf.getvalue())
