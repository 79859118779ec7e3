"""BKT fitting (Baum-Welch EM) and the BKT learner model: recovery, bounds, restarts,
forgetting, degeneracy, cross-validation, persistence and one-step-ahead prediction."""

from __future__ import annotations

import dataclasses
import itertools
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smartstudy.data.simulate import simulate_bkt
from smartstudy.eval.crossval import crossvalidate
from smartstudy.eval.metrics import auc
from smartstudy.models.bkt import BKT, DEFAULT_PARAMS, BKTParams, fit_em, fit_em_batch
from smartstudy.models.bkt import em as em_module
from smartstudy.models.bkt.core import predict_correct, update_mastery

# Parameter sets whose every parameter is identified to well within 0.05 by 500 students x
# 20 attempts (the largest error over 20 simulated data sets was 0.043).
RECOVERY_SETS = [
    BKTParams(l0=0.30, t=0.15, s=0.10, g=0.25),
    BKTParams(l0=0.20, t=0.08, s=0.15, g=0.30),
    BKTParams(l0=0.15, t=0.10, s=0.10, g=0.20),
    BKTParams(l0=0.25, t=0.12, s=0.20, g=0.10),
]


@pytest.fixture(scope="module")
def recovery_data() -> tuple[pd.DataFrame, dict]:
    return simulate_bkt(500, 20, RECOVERY_SETS, n_skills=len(RECOVERY_SETS), seed=0)


@pytest.fixture(scope="module")
def small_data() -> tuple[pd.DataFrame, dict]:
    return simulate_bkt(150, 12, [RECOVERY_SETS[0], RECOVERY_SETS[3]], n_skills=2, seed=3)


@pytest.fixture(scope="module")
def small_model(small_data: tuple[pd.DataFrame, dict]) -> BKT:
    return BKT(n_restarts=2).fit(small_data[0])


def _true_predictions(df: pd.DataFrame, params: dict[str, dict[str, float]]) -> np.ndarray:
    """One-step-ahead P(correct) from the true parameters, by the scalar core functions."""
    out = np.empty(len(df))
    state: dict[tuple[str, str], float] = {}
    ordered = df.sort_values(["user_id", "order"], kind="stable")
    for idx, row in zip(ordered.index, ordered.itertuples(index=False), strict=True):
        p = BKTParams.from_mapping(params[row.skill_id])
        key = (row.user_id, row.skill_id)
        mastery = state.get(key, p.l0)
        out[df.index.get_loc(idx)] = predict_correct(mastery, p.s, p.g)
        state[key] = update_mastery(mastery, row.correct, p)
    return out


# -- the simulator ---------------------------------------------------------------------------------
def test_simulate_bkt_draws_from_the_model() -> None:
    truth = BKTParams(l0=0.2, t=0.15, s=0.1, g=0.25, f=0.05)
    df, info = simulate_bkt(4000, 8, [truth, RECOVERY_SETS[0]], n_skills=2, seed=1)
    assert len(df) == 4000 * 8 * 2
    assert list(df.columns) == ["user_id", "item_id", "skill_id", "correct", "rt_seconds", "order"]
    assert info["params"]["k0"] == truth.to_dict()
    k0 = df["skill_id"].to_numpy() == "k0"
    learned = info["learned"][k0].reshape(4000, 8)  # rows are sorted by user, then order
    # P(L_1) = l0 and P(L_{k+1}) = P(L_k) (1 - f) + (1 - P(L_k)) t
    expected = [truth.l0]
    for _ in range(7):
        expected.append(expected[-1] * (1 - truth.f) + (1 - expected[-1]) * truth.t)
    np.testing.assert_allclose(learned.mean(axis=0), expected, atol=0.02)
    answers = df["correct"].to_numpy()[k0].reshape(4000, 8)
    assert answers[learned == 1].mean() == pytest.approx(1 - truth.s, abs=0.01)
    assert answers[learned == 0].mean() == pytest.approx(truth.g, abs=0.01)
    # Skills are interleaved within a student, each skill's attempts in sequence.
    first = df[df["user_id"] == df["user_id"].iloc[0]]
    assert first["order"].tolist() == list(range(16))
    assert first["skill_id"].nunique() == 2 and not first["skill_id"].is_monotonic_increasing
    with pytest.raises(ValueError, match="parameter sets"):
        simulate_bkt(10, 5, [truth], n_skills=2)
    with pytest.raises(ValueError, match="missing"):
        simulate_bkt(10, 5, {"l0": 0.1, "t": 0.1, "s": 0.1})


# -- the EM machinery ------------------------------------------------------------------------------
def _direct_e_step(
    seqs: list[list[int]], p: BKTParams
) -> tuple[float, tuple[float, float, float, float, float]]:
    """Textbook scaled forward-backward with explicit matrices (Rabiner 1989): the
    log-likelihood and the M-step's re-estimates (l0, t, s, g, f)."""
    trans = np.array([[1 - p.t, p.t], [p.f, 1 - p.f]])
    loglik, l0_sum = 0.0, 0.0
    xi = np.zeros((2, 2))
    gam_total = np.zeros(2)
    gam_correct = np.zeros(2)
    for y in seqs:
        n = len(y)
        emis = np.array([[1 - p.g, p.s] if v == 0 else [p.g, 1 - p.s] for v in y])
        alpha = np.zeros((n, 2))
        scale = np.zeros(n)
        a = np.array([1 - p.l0, p.l0]) * emis[0]
        scale[0] = a.sum()
        alpha[0] = a / scale[0]
        for k in range(1, n):
            a = (alpha[k - 1] @ trans) * emis[k]
            scale[k] = a.sum()
            alpha[k] = a / scale[k]
        beta = np.ones((n, 2))
        for k in range(n - 2, -1, -1):
            beta[k] = trans @ (emis[k + 1] * beta[k + 1]) / scale[k + 1]
        gamma = alpha * beta
        loglik += float(np.log(scale).sum())
        l0_sum += gamma[0, 1]
        for k in range(n - 1):
            xi += np.outer(alpha[k], emis[k + 1] * beta[k + 1]) * trans / scale[k + 1]
        gam_total += gamma.sum(axis=0)
        gam_correct += (gamma * np.array(y)[:, None]).sum(axis=0)
    estimates = (
        l0_sum / len(seqs),
        xi[0, 1] / xi[0].sum(),
        (gam_total[1] - gam_correct[1]) / gam_total[1],
        gam_correct[0] / gam_total[0],
        xi[1, 0] / xi[1].sum(),
    )
    return loglik, estimates


@pytest.mark.parametrize("forget", [0.0, 0.07])
def test_vectorised_e_and_m_step_match_direct_forward_backward(forget: float) -> None:
    rng = np.random.default_rng(1)
    seqs = [list(rng.integers(0, 2, rng.integers(1, 12))) for _ in range(40)]
    p = BKTParams(0.3, 0.15, 0.12, 0.25, forget)
    y = np.concatenate(seqs).astype(float)
    lengths = np.array([len(s) for s in seqs])
    forgets = forget > 0
    skill = np.zeros(len(seqs), dtype=np.int64)
    counts = em_module._model_counts(y, lengths, skill, 1)
    work = em_module._workspace(len(y), forgets)
    batch = em_module._make_batch(y.astype(np.int64), lengths, skill, counts, work)
    params = np.array([[p.l0, p.t, p.s, p.g, p.f]])
    loglik, stats = em_module._e_step(batch, params, forgets)
    unbounded = (np.zeros(5), np.ones(5) - 1e-12)
    updated = em_module._m_step(params, stats, batch, *unbounded, forgets)[0]

    expected_ll, expected = _direct_e_step(seqs, p)
    assert loglik[0] == pytest.approx(expected_ll, rel=1e-12)
    np.testing.assert_allclose(updated, np.array(expected) * [1, 1, 1, 1, forgets], rtol=1e-10)


def test_log_likelihood_is_exact_after_long_confident_runs() -> None:
    # 40 right then 80 wrong answers with tiny slip and guess: the odds of mastery reach
    # ~1e86 before the wrong answers bring them down. A probability would have saturated at
    # 1.0 and scored every later wrong answer as a slip (log 0.01 each).
    p = BKTParams(l0=0.5, t=0.3, s=0.01, g=0.01)
    answers = [1] * 40 + [0] * 80
    exact = Fraction(1)
    p_l = Fraction(1, 2)
    s, g, t = Fraction(1, 100), Fraction(1, 100), Fraction(3, 10)
    for y in answers:
        right = p_l * (1 - s) + (1 - p_l) * g
        evidence = right if y else 1 - right
        exact *= evidence
        post = p_l * ((1 - s) if y else s) / evidence
        p_l = post + (1 - post) * t
    expected = math.log(exact.numerator) - math.log(exact.denominator)
    # max_iter=1: a single E-step, which scores the starting point (restart 0 starts at
    # first_params) without moving it.
    res = fit_em_batch(
        np.array(answers, dtype=float),
        np.array([len(answers)]),
        np.array([0]),
        1,
        max_iter=1,
        first_params=p,
    )[0]
    assert res is not None and res.n_iter == 1 and res.params == p
    assert res.log_likelihood == pytest.approx(expected, rel=1e-10)
    # What saturation would have given: every wrong answer after the first 40 scored as a slip.
    assert res.log_likelihood > expected - 1.0 > 80 * math.log(0.01)


def test_em_never_lowers_the_likelihood_and_reports_convergence() -> None:
    df, _ = simulate_bkt(200, 15, RECOVERY_SETS[1], seed=5)
    seqs = [g["correct"].tolist() for _, g in df.groupby("user_id")]
    lls = [fit_em(seqs, max_iter=k, tol=0.0).log_likelihood for k in (1, 2, 3, 5, 8, 13)]
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(lls)), lls
    done = fit_em(seqs, max_iter=200, tol=1e-6)
    assert done.converged and done.n_iter < 200
    # Stopped by tol (1e-6 per attempt), it is within a hair of the longer fixed run.
    assert done.log_likelihood == pytest.approx(lls[-1], abs=0.05)
    capped = fit_em(seqs, max_iter=2, tol=1e-12)
    assert not capped.converged and capped.n_iter == 2


# -- parameter recovery ----------------------------------------------------------------------------
def test_parameter_recovery(recovery_data: tuple[pd.DataFrame, dict]) -> None:
    df, truth = recovery_data
    model = BKT(n_restarts=3, seed=0).fit(df)
    assert model.degenerate_skills_ == {}
    for skill, true in zip(truth["skill_ids"], RECOVERY_SETS, strict=True):
        est = model.params_[skill]
        assert model.skill_status_[skill] == "fitted"
        for name in ("l0", "t", "s", "g"):
            assert abs(getattr(est, name) - getattr(true, name)) < 0.05, (skill, name, est)
        assert est.f == 0.0
        assert model.fit_report_[skill]["converged"]


def test_forgetting_is_learned_when_present() -> None:
    truth = BKTParams(l0=0.3, t=0.2, s=0.1, g=0.2, f=0.1)
    df, _ = simulate_bkt(500, 20, truth, seed=2)
    with_f = BKT(forgets=True, n_restarts=2).fit(df)
    without = BKT(n_restarts=2).fit(df)
    est = with_f.params_["k0"]
    assert abs(est.f - truth.f) < 0.03, est
    for name in ("t", "s", "g"):
        assert abs(getattr(est, name) - getattr(truth, name)) < 0.05, (name, est)
    # With forgetting, a higher prior trades off against early forgetting: l0 is the least
    # identified parameter (errors up to 0.07 over simulated data sets like this one).
    assert abs(est.l0 - truth.l0) < 0.1, est
    assert without.params_["k0"].f == 0.0
    # One forgetting parameter explains these data far better (a likelihood-ratio statistic
    # of hundreds, where chance gives about 1).
    assert with_f.log_likelihood_ - without.log_likelihood_ > 50

    no_forgetting, _ = simulate_bkt(500, 20, dataclasses.replace(truth, f=0.0), seed=2)
    assert BKT(forgets=True).fit(no_forgetting).params_["k0"].f < 0.02


# -- restarts and bounds ---------------------------------------------------------------------------
def test_bounds_are_respected(recovery_data: tuple[pd.DataFrame, dict]) -> None:
    df, truth = recovery_data
    bounds = {"g": [0.01, 0.15], "l0": [0.25, 0.9], "t": [0.01, 0.1]}
    model = BKT(bounds=bounds, n_restarts=3).fit(df)
    for skill in truth["skill_ids"]:
        fitted = model.fit_report_[skill]["fitted"]
        for name, (lo, hi) in bounds.items():
            assert lo <= fitted[name] <= hi, (skill, name, fitted)
    # Skill k0's true guess 0.25 lies above the bound: the fit sits on it.
    assert model.fit_report_["k0"]["fitted"]["g"] == pytest.approx(0.15)


def test_restarts_never_do_worse_and_are_reported(recovery_data: tuple[pd.DataFrame, dict]) -> None:
    df, truth = recovery_data
    one = BKT(n_restarts=1, seed=4).fit(df)
    five = BKT(n_restarts=5, seed=4).fit(df)
    for skill in truth["skill_ids"]:
        rep = five.fit_report_[skill]
        assert 0 <= rep["best_restart"] < 5
        # Restart 0 starts at the defaults in both fits, so more restarts cannot lose.
        assert rep["log_likelihood"] >= one.fit_report_[skill]["log_likelihood"] - 1e-6
    results = fit_em_batch(
        df["correct"].to_numpy(dtype=float)[:200],
        np.full(20, 10),
        np.zeros(20, dtype=np.int64),
        1,
        n_restarts=4,
        seed=1,
    )
    res = results[0]
    assert res is not None
    assert len(res.restart_log_likelihoods) == 4
    assert res.log_likelihood == max(res.restart_log_likelihoods)
    assert res.restart_log_likelihoods[res.best_restart] == res.log_likelihood


def test_fit_is_deterministic_for_a_seed(small_data: tuple[pd.DataFrame, dict]) -> None:
    df, _ = small_data
    a = BKT(n_restarts=3, seed=11).fit(df)
    b = BKT(n_restarts=3, seed=11).fit(df)
    assert a.params_ == b.params_
    assert a.mastery_ == b.mastery_


def test_bad_hyperparameters_are_named(small_data: tuple[pd.DataFrame, dict]) -> None:
    df, _ = small_data
    for kwargs, needle in [
        ({"n_restarts": 0}, "n_restarts"),
        ({"max_iter": 2.5}, "max_iter"),
        ({"tol": -1.0}, "tol"),
        ({"bounds": {"s": [0.2, 0.1]}}, "bounds"),
        ({"bounds": {"q": [0.1, 0.2]}}, "unknown parameter"),
        ({"default_params": {"l0": 0.1, "t": 0.2, "s": 0.1, "g": 0.7}}, "default_params"),
        ({"forgets": "yes"}, "forgets"),
    ]:
        with pytest.raises(ValueError, match=needle):
            BKT(**kwargs).fit(df)


# -- degenerate and sparse skills ------------------------------------------------------------------
def test_degenerate_fit_is_detected_and_not_used(small_data: tuple[pd.DataFrame, dict]) -> None:
    df, _ = small_data
    # Bounds that force every fitted guess above one half make every fit degenerate.
    model = BKT(bounds={"g": [0.55, 0.9]}).fit(df)
    assert set(model.degenerate_skills_) == {"k0", "k1"}
    assert any("guess" in reason for reason in model.degenerate_skills_["k0"])
    assert model.fit_report_["k0"]["fitted"]["g"] >= 0.55  # the fit itself is kept on record
    assert model.params_["k0"] == DEFAULT_PARAMS and model.skill_status_["k0"] == "degenerate"
    # Predictions use the defaults: a new student's first attempt is 0.1 * 0.9 + 0.9 * 0.2.
    assert model.predict_one("new", "k0", "k0")["p_correct"] == pytest.approx(0.27)


def test_skills_with_too_few_attempts_use_the_defaults(
    small_data: tuple[pd.DataFrame, dict],
) -> None:
    df, _ = small_data
    rare = pd.DataFrame(
        {"user_id": ["a", "a", "b"], "item_id": "q", "skill_id": "rare", "correct": [1, 0, 1]}
    ).assign(order=[100, 101, 100])
    model = BKT(min_attempts=10).fit(pd.concat([df, rare], ignore_index=True))
    assert model.skill_status_["rare"] == "too_few_attempts"
    assert model.params_["rare"] == DEFAULT_PARAMS
    assert model.skill_status_["k0"] == "fitted"


# -- prediction and online updates -----------------------------------------------------------------
def test_predict_matches_the_scalar_update_chain(small_model: BKT) -> None:
    test, _ = simulate_bkt(30, 15, [RECOVERY_SETS[0], RECOVERY_SETS[3]], n_skills=2, seed=9)
    test = test.assign(user_id="new-" + test["user_id"])
    pred = small_model.predict(test)["p_correct"].to_numpy()
    expected = _true_predictions(test, {k: p.to_dict() for k, p in small_model.params_.items()})
    # Equal up to the scalar core's clamp of mastery to [PROB_EPS, 1 - PROB_EPS] (1e-9),
    # which the odds-based batch pass does not need.
    np.testing.assert_allclose(pred, expected, rtol=0, atol=1e-8)


def test_no_peeking_and_no_mutation(small_model: BKT) -> None:
    test, _ = simulate_bkt(20, 10, [RECOVERY_SETS[0], RECOVERY_SETS[3]], n_skills=2, seed=8)
    before_state = dict(small_model.mastery_)
    base = small_model.predict(test)["p_correct"]
    user_rows = test.index[test["user_id"] == test["user_id"].iloc[0]]
    for k in (0, 4, len(user_rows) - 1):
        changed = test.copy()
        changed.loc[user_rows[k], "correct"] = 1 - changed.loc[user_rows[k], "correct"]
        after = small_model.predict(changed)["p_correct"]
        upto = user_rows[: k + 1]
        np.testing.assert_array_equal(base.loc[upto], after.loc[upto])
        others = test.index[test["user_id"] != test["user_id"].iloc[0]]
        np.testing.assert_array_equal(base.loc[others], after.loc[others])
    assert small_model.mastery_ == before_state


def test_training_users_continue_from_their_mastery(
    small_data: tuple[pd.DataFrame, dict], small_model: BKT
) -> None:
    df, _ = small_data
    user = df["user_id"].iloc[0]
    p = small_model.params_["k0"]
    mastery = small_model.mastery(user, "k0")
    assert mastery == small_model.mastery_[(user, "k0")]
    assert mastery != pytest.approx(p.l0)
    # The user's next attempt is predicted from that mastery, not from the prior.
    expected = predict_correct(mastery, p.s, p.g)
    assert small_model.predict_one(user, "k0", "k0")["p_correct"] == pytest.approx(expected)


def test_update_is_the_scalar_step_and_matches_predict(small_model: BKT) -> None:
    model = BKT.from_bytes(small_model.to_bytes())
    rows = [("u-new", "k1", 1), ("u-new", "k1", 0), ("u-new", "k0", 1), ("u-new", "k1", 1)]
    frame = pd.DataFrame(
        {
            "user_id": [r[0] for r in rows] + ["u-new"],
            "item_id": [r[1] for r in rows] + ["k1"],
            "skill_id": [r[1] for r in rows] + ["k1"],
            "correct": [r[2] for r in rows] + [np.nan],
            "order": np.arange(len(rows) + 1),
        }
    )
    batch = model.predict(frame)["p_correct"].to_numpy()
    p1 = model.params_["k1"]
    expected = update_mastery(update_mastery(update_mastery(p1.l0, 1, p1), 0, p1), 1, p1)
    for user, skill, correct in rows:
        model.update({"user_id": user, "item_id": skill, "skill_id": skill, "correct": correct})
    assert model.mastery("u-new", "k1") == pytest.approx(expected, abs=1e-15)
    # The batch prediction of the unanswered last row saw exactly the same history.
    assert model.predict_one("u-new", "k1", "k1")["p_correct"] == pytest.approx(batch[-1])


def test_update_validates_rows(small_model: BKT) -> None:
    model = BKT.from_bytes(small_model.to_bytes())
    good = {"user_id": "u", "item_id": "k0", "correct": 1}
    for bad, needle in [
        ({**good, "correct": "yes"}, "correct"),
        ({**good, "correct": 2}, "correct"),
        ({**good, "correct": float("nan")}, "correct"),
        ({k: v for k, v in good.items() if k != "correct"}, "correct"),
        ({**good, "user_id": None}, "user_id"),
        ({k: v for k, v in good.items() if k != "user_id"}, "user_id"),
        ({"user_id": "u", "correct": 1}, "item_id"),
    ]:
        with pytest.raises(ValueError, match=needle):
            model.update(bad)
    model.update({**good, "correct": True})
    model.update({**good, "correct": 0.0, "skill_id": None})  # no skill: the item is the skill
    assert ("u", "k0") in model.mastery_


def test_rows_without_skill_use_the_item_and_unknown_skills_the_defaults(
    small_model: BKT,
) -> None:
    frame = pd.DataFrame(
        {
            "user_id": ["x", "x", "y"],
            "item_id": ["k0", "k0", "brand-new"],
            "skill_id": [None, None, "never-seen"],
            "correct": [1, 0, 1],
            "order": [0, 1, 0],
        }
    )
    pred = small_model.predict(frame)["p_correct"].to_numpy()
    p0 = small_model.params_["k0"]
    assert pred[0] == pytest.approx(predict_correct(p0.l0, p0.s, p0.g))
    assert pred[1] == pytest.approx(predict_correct(update_mastery(p0.l0, 1, p0), p0.s, p0.g))
    assert pred[2] == pytest.approx(0.27)  # defaults: 0.1 * 0.9 + 0.9 * 0.2


# -- cross-validation and persistence --------------------------------------------------------------
def test_crossvalidate_gives_the_quality_of_the_true_model() -> None:
    df, truth = simulate_bkt(300, 15, [RECOVERY_SETS[0], RECOVERY_SETS[1]], n_skills=2, seed=6)
    model = BKT()
    before = model.get_params()
    cv = crossvalidate(model, df, k=5, seed=0)
    assert cv["k"] == 5 and len(cv["folds"]) == 5
    assert sum(f["n"] for f in cv["folds"]) == len(df)
    y = df["correct"].to_numpy()
    oracle = _true_predictions(df, truth["params"])
    # Fitted on 80 % of the students, each fold predicts almost as well as the truth does.
    assert cv["auc"] == pytest.approx(auc(y, oracle), abs=0.02)
    assert 0.6 < cv["auc"] < 0.9
    assert cv["rmse"] == pytest.approx(float(np.sqrt(np.mean((y - oracle) ** 2))), abs=0.01)
    assert 0.3 < cv["log_loss"] < 0.7
    assert all(math.isfinite(cv[f"{m}_sd"]) for m in ("auc", "rmse", "log_loss"))
    assert model.get_params() == before and not hasattr(model, "params_")
    with pytest.raises(ValueError, match="k must be"):
        crossvalidate(model, df, k=1)


def test_save_load_round_trip(small_model: BKT, tmp_path: Path) -> None:
    path = tmp_path / "bkt.model"
    small_model.save(path)
    loaded = BKT.load(path)
    assert loaded.params_ == small_model.params_
    assert loaded.mastery_ == small_model.mastery_
    assert loaded.skill_status_ == small_model.skill_status_
    assert loaded.degenerate_skills_ == small_model.degenerate_skills_
    assert loaded.log_likelihood_ == pytest.approx(small_model.log_likelihood_)
    test, _ = simulate_bkt(10, 8, RECOVERY_SETS[0], seed=12)
    pd.testing.assert_frame_equal(loaded.predict(test), small_model.predict(test))
