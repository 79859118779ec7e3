"""Tests of the LNIRT model (van der Linden 2007; R package LNIRT) and its simulator."""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from smartstudy.data.schema import validate_interactions
from smartstudy.data.simulate import simulate_lnirt
from smartstudy.eval.metrics import auc
from smartstudy.models import base as base_module
from smartstudy.models.base import (
    PREDICTION_COLUMNS,
    ArtifactError,
    CannotPredictError,
    LearnerModel,
    NotFittedError,
)
from smartstudy.models.lnirt import (
    LNIRT,
    DegenerateFitError,
    TopicLNIRT,
    accuracy_update,
    check_lnirt_parameters,
    time_update,
)
from smartstudy.models.lnirt import fit as lnirt_fit
from smartstudy.models.lnirt import model as lnirt_module
from smartstudy.models.lnirt.calibration import apply_logit_map_one


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.corrcoef(x, y)[0, 1])


@pytest.fixture(scope="module")
def recovery() -> tuple[LNIRT, pd.DataFrame, dict]:
    df, truth = simulate_lnirt(1000, 50, rho=-0.4, seed=0)
    return LNIRT().fit(df), df, truth


@pytest.fixture
def model(recovery: tuple[LNIRT, pd.DataFrame, dict]) -> LNIRT:
    # A private copy, so that tests which update it do not leak into each other.
    return LNIRT.from_bytes(recovery[0].to_bytes())


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "item_id", "correct", "rt_seconds", "order"])


# -- acceptance 1: parameter recovery ---------------------------------------------------------


def test_em_recovers_simulated_parameters(recovery: tuple[LNIRT, pd.DataFrame, dict]) -> None:
    m, _, truth = recovery
    items = [m.item_index_[i] for i in truth["item_ids"]]
    users = [m.user_index_[u] for u in truth["user_ids"]]
    assert m.converged_
    assert _corr(m.b_[items], truth["b"]) >= 0.98
    assert _corr(m.beta_[items], truth["beta"]) >= 0.98
    assert _corr(m.a_[items], truth["a"]) >= 0.90
    assert _corr(m.alpha_[items], truth["alpha"]) >= 0.90
    assert _corr(m.person_mean_[users, 0], truth["theta"]) >= 0.90
    assert _corr(m.person_mean_[users, 1], truth["tau"]) >= 0.90
    assert abs(m.rho_ - truth["rho"]) <= 0.05
    assert abs(m.rho_ - _corr(truth["theta"], truth["tau"])) <= 0.05
    # Identification: Var(theta) = 1, mean 0; the speed scale is the data's own.
    assert m.sigma_P_[0, 0] == 1.0
    np.testing.assert_array_equal(m.mu_P_, [0.0, 0.0])
    assert abs(math.sqrt(m.sigma_P_[1, 1]) - truth["sigma_tau"]) < 0.05
    # Person posteriors are honest: about 90% of true values inside the 90% intervals.
    z = (truth["theta"] - m.person_mean_[users, 0]) / np.sqrt(m.person_cov_[users, 0, 0])
    assert 0.86 <= np.mean(np.abs(z) < 1.645) <= 0.94
    z = (truth["tau"] - m.person_mean_[users, 1]) / np.sqrt(m.person_cov_[users, 1, 1])
    assert 0.86 <= np.mean(np.abs(z) < 1.645) <= 0.94


def test_em_objective_never_decreases() -> None:
    df, _ = simulate_lnirt(300, 15, seed=2, p_administered=0.6)
    packed = lnirt_fit.pack_responses(validate_interactions(df))
    priors = lnirt_fit.LNIRTPriors()
    objective = [
        lnirt_fit.fit_em(packed, priors=priors, max_iter=k, tol=0.0, accelerate=False).objective
        for k in range(1, 25)
    ]
    assert np.all(np.diff(objective) > -1e-8)
    assert objective[-1] > objective[0] + 1.0


def test_the_m_step_reuses_the_e_step_s_probit_without_changing_a_bit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The first Fisher step on (a, b) starts from the E-step's items and takes its probit from
    # there; evaluating it afresh (the reuse refused) must give the same fit to the last bit.
    df, _ = simulate_lnirt(300, 15, seed=2, p_administered=0.6)
    packed = lnirt_fit.pack_responses(validate_interactions(df))
    priors = lnirt_fit.LNIRTPriors(item_strength=2.0)
    reused: list[bool] = []
    at = lnirt_fit._Probit.at

    def counted(self, a: np.ndarray, b: np.ndarray) -> bool:
        reused.append(at(self, a, b))
        return reused[-1]

    monkeypatch.setattr(lnirt_fit._Probit, "at", counted)
    shared = lnirt_fit.fit_em(packed, priors=priors, tol=1e-6)
    assert reused and all(reused)
    monkeypatch.setattr(lnirt_fit._Probit, "at", lambda self, a, b: False)
    fresh = lnirt_fit.fit_em(packed, priors=priors, tol=1e-6)
    assert fresh.n_iter == shared.n_iter
    for name in ("a", "b", "alpha", "beta", "person_mean", "person_cov", "sigma_P"):
        np.testing.assert_array_equal(getattr(shared, name), getattr(fresh, name))


@pytest.mark.parametrize("student_t", [False, True])
def test_the_accelerated_em_reaches_the_plain_em_s_fixed_point_in_fewer_steps(
    student_t: bool,
) -> None:
    df, _ = simulate_lnirt(300, 15, seed=2, p_administered=0.6)
    packed = lnirt_fit.pack_responses(validate_interactions(df))
    priors = lnirt_fit.LNIRTPriors(item_strength=2.0)
    fits = {
        accelerate: lnirt_fit.fit_em(
            packed, priors=priors, tol=1e-7, student_t=student_t, accelerate=accelerate
        )
        for accelerate in (False, True)
    }
    plain, fast = fits[False], fits[True]
    assert plain.converged and fast.converged
    assert fast.n_iter < plain.n_iter / 2
    for name in ("a", "b", "alpha", "beta", "person_mean", "sigma_P", "item_prior_sd"):
        np.testing.assert_allclose(getattr(fast, name), getattr(plain, name), atol=1e-4)
    # With Student-t times the objective is the normal model's at the last step's weights,
    # which the two paths reach from different points: equal to about 1e-6 relative.
    assert fast.objective == pytest.approx(plain.objective, abs=1e-2 if student_t else 1e-3)
    if student_t:
        assert fast.time_df == pytest.approx(plain.time_df, rel=1e-3)


@pytest.mark.parametrize("student_t", [False, True])
def test_a_wild_extrapolation_is_rejected_and_the_em_still_converges(
    monkeypatch: pytest.MonkeyPatch, student_t: bool
) -> None:
    # The first SQUAREM jump is forced ten thousand times too far (exponentials overflow):
    # it must be rejected without an error or a warning, and the fit end where the plain EM's
    # does.
    df, _ = simulate_lnirt(300, 15, seed=2, p_administered=0.6)
    packed = lnirt_fit.pack_responses(validate_interactions(df))
    priors = lnirt_fit.LNIRTPriors(item_strength=2.0)
    fit = functools.partial(lnirt_fit.fit_em, packed, priors=priors, tol=1e-7, student_t=student_t)
    plain = fit(accelerate=False)
    natural = lnirt_fit._EMPath.step_length
    lengths: list[float] = []

    def wild_first(r: np.ndarray, v: np.ndarray) -> float:
        lengths.append(1e4 if not lengths else natural(r, v))
        return lengths[-1]

    monkeypatch.setattr(lnirt_fit._EMPath, "step_length", staticmethod(wild_first))
    monkeypatch.setattr(lnirt_fit, "_SQUAREM_STEP_MAX", 1e4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        forced = fit()
    assert lengths[0] == 1e4 and len(lengths) > 1
    assert forced.converged
    for name in ("a", "b", "alpha", "beta", "person_mean", "sigma_P"):
        np.testing.assert_allclose(getattr(forced, name), getattr(plain, name), atol=1e-4)


def test_sparse_and_dense_designs_give_the_same_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    df, _ = simulate_lnirt(150, 12, seed=4, p_administered=0.7)
    dense = LNIRT().fit(df)
    monkeypatch.setattr(lnirt_fit, "_DENSE_MAX_CELLS", 0)
    sparse = LNIRT().fit(df)
    for name in ("a_", "b_", "alpha_", "beta_", "person_mean_", "person_cov_", "sigma_P_"):
        np.testing.assert_allclose(getattr(sparse, name), getattr(dense, name), atol=1e-9)


def test_repeated_attempts_and_a_single_user_fit() -> None:
    # The app's shape: items are (topic, difficulty) pairs attempted many times by few users.
    rng = np.random.default_rng(1)
    rows = []
    for k in range(90):
        item = ["easy", "medium", "hard"][k % 3]
        p = {"easy": 0.85, "medium": 0.6, "hard": 0.3}[item]
        med = {"easy": 60.0, "medium": 220.0, "hard": 450.0}[item]
        rows.append(
            {
                "user_id": "solo",
                "item_id": item,
                "correct": int(rng.uniform() < p),
                "rt_seconds": med * math.exp(0.4 * rng.standard_normal()),
                "order": k,
            }
        )
    m = LNIRT().fit(_frame(rows))
    state = m.person_state("solo")
    assert state["is_personalized"] and state["n"] == 90
    easy, hard = m.predict_one("solo", "easy"), m.predict_one("solo", "hard")
    assert easy["p_correct"] > hard["p_correct"]
    assert 40 < easy["time_median_s"] < 90 < 300 < hard["time_median_s"] < 650
    # New users beyond the initial buffer capacity keep their own state.
    for k in range(40):
        m.update({"user_id": f"new{k}", "item_id": "easy", "correct": k % 2, "rt_seconds": 30 + k})
    np.testing.assert_array_equal(m.person_state("solo")["mean"], state["mean"])
    np.testing.assert_array_equal(m.person_state("solo")["cov"], state["cov"])
    means = [m.person_state(f"new{k}")["mean"][0] for k in range(40)]
    assert all(means[k] < means[k + 1] for k in range(0, 40, 2))  # wrong (even k) < correct
    assert len(m.person_mean_) == 41


# -- acceptance 4: validation and degeneracy --------------------------------------------------


def _good_params() -> dict:
    return {
        "a": np.array([1.0, 1.5]),
        "b": np.array([0.0, 1.0]),
        "alpha": np.array([2.0, 1.0]),
        "beta": np.array([4.0, 3.0]),
        "sigma_P": np.array([[1.0, -0.1], [-0.1, 0.1]]),
        "person_mean": np.zeros((1, 2)),
        "person_cov": np.array([[[0.2, 0.0], [0.0, 0.01]]]),
    }


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("a", np.array([1.0, 0.0]), "a must be > 0"),
        ("alpha", np.array([-1.0, 1.0]), "alpha must be > 0"),
        ("alpha", np.array([2.0, 128.0]), "alpha=128.0 for item 1 is above 20"),
        ("b", np.array([np.nan, 1.0]), "b is not finite"),
        ("beta", np.array([4.0, np.inf]), "beta is not finite"),
        ("sigma_P", np.array([[1.0, 0.316], [0.316, 0.1]]), "correlation"),
        ("sigma_P", np.array([[1.0, 0.0], [0.0, 0.0]]), "variances must be positive"),
        ("sigma_P", np.array([[1.0, 0.1], [0.0, 0.1]]), "symmetric"),
        ("person_cov", np.array([[[0.2, 0.1], [0.1, 0.01]]]), "not positive definite"),
    ],
)
def test_check_parameters_names_the_degenerate_parameter(
    name: str, value: np.ndarray, message: str
) -> None:
    params = _good_params()
    check_lnirt_parameters(**params)
    params[name] = value
    with pytest.raises(DegenerateFitError, match=message):
        check_lnirt_parameters(**params)


def test_degenerate_fit_raises_and_leaves_the_model_unfitted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    df, _ = simulate_lnirt(60, 8, seed=2)
    real_fit_em = lnirt_module.fit_em

    def collapsed(*args: object, **kwargs: object) -> lnirt_fit.LNIRTEstimate:
        est = real_fit_em(*args, **kwargs)
        s = est.sigma_P[1, 1]
        # Ability and speed collapsed onto one axis: rho = 1.
        return dataclasses.replace(est, sigma_P=np.array([[1.0, math.sqrt(s)], [math.sqrt(s), s]]))

    monkeypatch.setattr(lnirt_module, "fit_em", collapsed)
    m = LNIRT()
    with pytest.raises(DegenerateFitError, match="correlation"):
        m.fit(df)
    with pytest.raises(NotFittedError):
        m.predict(df)


def test_fit_rejects_unusable_input() -> None:
    df, _ = simulate_lnirt(20, 5, seed=0)
    with pytest.raises(ValueError, match="no row has a known `correct`"):
        LNIRT().fit(df.assign(correct=np.nan))
    with pytest.raises(ValueError, match="method"):
        LNIRT(method="bogus").fit(df)
    with pytest.raises(ValueError, match="prior_b_sd"):
        LNIRT(prior_b_sd=0.0).fit(df)
    with pytest.raises(ValueError, match="empty"):
        LNIRT().fit(df.iloc[:0])


def test_tampered_artifact_is_refused(model: LNIRT) -> None:
    model.alpha_ = model.alpha_.copy()
    model.alpha_[3] = -1.0
    with pytest.raises(ArtifactError, match="alpha must be > 0"):
        LNIRT.from_bytes(model.to_bytes())


# -- acceptance 4: online update and cold start -----------------------------------------------


def test_cold_start_user_gets_the_population_prior(model: LNIRT) -> None:
    state = model.person_state("never-seen")
    assert state == {
        "mean": pytest.approx(model.mu_P_),
        "cov": pytest.approx(model.sigma_P_),
        "n": 0,
        "is_personalized": False,
    }
    item = model.item_ids_[0]
    pred = model.predict_one("never-seen", item)
    i = model.item_index_[item]
    a, b = model.a_[i], model.b_[i]
    # The item's own uncertainty widens the predictive (b_sd_, beta_sd_ and alpha_sd_), and
    # the fit's recalibration maps the probit's chance (``calibration``).
    var_theta = 1 + model.b_sd_[i] ** 2
    probit = norm.cdf(a * (0.0 - b) / math.sqrt(1 + a * a * var_theta))
    assert pred["p_correct"] == pytest.approx(apply_logit_map_one(probit, model.calibration_))
    alpha = model.alpha_[i] * math.exp(-((model.alpha_sd_[i] / model.alpha_[i]) ** 2))
    var_tau = model.sigma_P_[1, 1] + model.beta_sd_[i] ** 2
    assert model.time_df_ is not None  # Student-t residuals, the default
    half = lnirt_module.t_interval_halfwidth(
        np.array([var_tau]), np.array([alpha]), model.time_df_
    )[0]
    assert pred["time_median_s"] == pytest.approx(math.exp(model.beta_[i]))
    assert pred["time_p90_s"] == pytest.approx(math.exp(model.beta_[i] + half))
    normal = LNIRT.from_bytes(model.to_bytes())
    normal.time_df_ = None
    sd = math.sqrt(1 / alpha**2 + var_tau)
    assert normal.predict_one("never-seen", item)["time_p90_s"] == pytest.approx(
        math.exp(model.beta_[i] + 1.2815515655446004 * sd)
    )


def test_unknown_item_gets_population_parameters_and_a_wider_interval(model: LNIRT) -> None:
    known = model.predict_one("never-seen", model.item_ids_[0])
    unknown = model.predict_one("never-seen", "brand-new-item")
    assert 0.0 < unknown["p_correct"] < 1.0
    assert unknown["time_median_s"] == pytest.approx(math.exp(model.item_prior_mean_[3]))
    width = lambda p: math.log(p["time_p90_s"] / p["time_p10_s"])  # noqa: E731
    assert width(unknown) > width(known)
    model.update({"user_id": "u", "item_id": "brand-new-item", "correct": 1, "rt_seconds": 9.0})
    assert model.person_state("u")["is_personalized"]


def test_online_update_moves_the_posterior_the_right_way(model: LNIRT) -> None:
    item = model.item_ids_[0]
    i = model.item_index_[item]
    prior = model.person_state("new")

    model.update({"user_id": "new", "item_id": item, "correct": 1})
    after_right = model.person_state("new")
    assert after_right["is_personalized"] and after_right["n"] == 1
    assert after_right["mean"][0] > prior["mean"][0]
    assert after_right["cov"][0, 0] < prior["cov"][0, 0]
    assert np.linalg.det(after_right["cov"]) < np.linalg.det(prior["cov"])

    model.update({"user_id": "wrong", "item_id": item, "correct": 0})
    assert model.person_state("wrong")["mean"][0] < prior["mean"][0]

    # Same answer, different times: only the time part differs from "new".
    slow = math.exp(model.beta_[i] + 1.0)
    model.update({"user_id": "slow", "item_id": item, "correct": 1, "rt_seconds": slow})
    after_slow = model.person_state("slow")
    assert after_slow["mean"][1] < after_right["mean"][1]  # slower than expected: tau goes down
    assert after_slow["cov"][1, 1] < after_right["cov"][1, 1]
    assert after_slow["cov"][0, 0] == after_right["cov"][0, 0]
    assert np.linalg.det(after_slow["cov"]) > 0
    # In these data ability and speed correlate (rho = -0.4: able persons are slower), so a
    # time tells about ability and the fit lets it (``time_weight_``): the slow answer raises
    # theta further. With a weight of 0 the time leaves theta where the answer put it.
    assert model.time_weight_ > 0 and model.rho_ < 0
    assert after_slow["mean"][0] > after_right["mean"][0]
    model.time_weight_ = 0.0
    model.update({"user_id": "slow, speed only", "item_id": item, "correct": 1, "rt_seconds": slow})
    assert model.person_state("slow, speed only")["mean"][0] == after_right["mean"][0]

    fast = math.exp(model.beta_[i] - 1.0)
    model.update({"user_id": "fast", "item_id": item, "correct": 1, "rt_seconds": fast})
    assert model.person_state("fast")["mean"][1] > after_right["mean"][1]

    # An attempt without an outcome is refused (the contract: it would teach nothing).
    before = model.person_state("slow")
    with pytest.raises(ValueError, match="correct"):
        model.update({"user_id": "slow", "item_id": item, "correct": None, "rt_seconds": slow})
    assert model.person_state("slow")["n"] == before["n"]


def test_update_rejects_bad_values(model: LNIRT) -> None:
    item = model.item_ids_[0]
    with pytest.raises(ValueError, match="correct"):
        model.update({"user_id": "u", "item_id": item, "correct": 2})
    with pytest.raises(ValueError, match="rt_seconds"):
        model.update({"user_id": "u", "item_id": item, "correct": 1, "rt_seconds": "slow"})
    with pytest.raises(ValueError, match="user_id"):
        model.update({"item_id": item, "correct": 1})
    assert model.person_state("u")["n"] == 0


def test_training_users_keep_their_fitted_posterior(model: LNIRT) -> None:
    user = next(iter(model.user_index_))
    i = model.user_index_[user]
    state = model.person_state(user)
    assert state["is_personalized"] and state["n"] == 50
    np.testing.assert_array_equal(state["mean"], model.person_mean_[i])
    np.testing.assert_array_equal(state["cov"], model.person_cov_[i])


def test_adf_step_matches_numerical_moments() -> None:
    # Moment matching is exact: compare with brute-force moments of prior x Phi likelihood.
    mean = np.array([[0.3, -0.2]])
    cov = np.array([[[0.8, -0.15], [-0.15, 0.09]]])
    a, b = np.array([1.7]), np.array([0.9])
    new_mean, new_cov = accuracy_update(mean, cov, np.array([0.0]), a, b)
    rng = np.random.default_rng(0)
    draws = rng.multivariate_normal(mean[0], cov[0], size=400_000)
    w = norm.cdf(-a[0] * (draws[:, 0] - b[0]))
    m = np.average(draws, axis=0, weights=w)
    c = np.cov(draws.T, aweights=w)
    np.testing.assert_allclose(new_mean[0], m, atol=5e-3)
    np.testing.assert_allclose(new_cov[0], c, atol=5e-3)
    # The time step is the exact conjugate update.
    tm, tc = time_update(mean, cov, np.array([4.5]), np.array([2.0]), np.array([4.0]))
    h = np.array([0.0, 1.0])
    gain = cov[0] @ h / (h @ cov[0] @ h + 0.25)
    np.testing.assert_allclose(tm[0], mean[0] + gain * ((4.0 - 4.5) - mean[0, 1]))
    np.testing.assert_allclose(tc[0], cov[0] - np.outer(gain, h @ cov[0]))


# -- acceptance 4: prediction contract --------------------------------------------------------


def _test_users(n: int = 30, seed: int = 9) -> pd.DataFrame:
    df, _ = simulate_lnirt(n, 50, rho=-0.4, seed=seed)
    df["user_id"] = "t-" + df["user_id"]
    return df


def test_no_peeking_and_no_mutation(model: LNIRT) -> None:
    df = _test_users()
    before = model.to_bytes()
    pred = model.predict(df)
    assert model.to_bytes() == before
    user = df["user_id"].iloc[0]
    rows = df.index[df["user_id"] == user]
    target = rows[10]
    flipped = df.copy()
    flipped.loc[target, "correct"] = 1 - flipped.loc[target, "correct"]
    flipped.loc[target, "rt_seconds"] = flipped.loc[target, "rt_seconds"] * 20.0
    pred2 = model.predict(flipped)
    pd.testing.assert_series_equal(pred.loc[target], pred2.loc[target])
    later = rows[11]
    assert pred.loc[later, "p_correct"] != pred2.loc[later, "p_correct"]
    assert pred.loc[later, "time_median_s"] != pred2.loc[later, "time_median_s"]
    others = df.index[df["user_id"] != user]
    pd.testing.assert_frame_equal(pred.loc[others], pred2.loc[others])


def test_predict_equals_sequential_updates(model: LNIRT) -> None:
    df = _test_users(n=3).sample(frac=1.0, random_state=1)  # shuffled rows, same order column
    pred = model.predict(df)
    online = LNIRT.from_bytes(model.to_bytes())
    for _, row in df.sort_values(["user_id", "order"]).iterrows():
        one = online.predict_one(row["user_id"], row["item_id"])
        for col, value in one.items():
            assert pred.loc[row.name, col] == pytest.approx(value, rel=1e-12)
        online.update(row.to_dict())


def test_predictions_are_well_formed(model: LNIRT) -> None:
    df = _test_users()
    df.loc[df.index[::7], "rt_seconds"] = np.nan
    df.loc[df.index[::5], "correct"] = np.nan
    pred = model.predict(df)
    assert list(pred.columns) == ["p_correct", "time_median_s", "time_p10_s", "time_p90_s"]
    assert pred.index.equals(df.index)
    assert pred.notna().all().all()
    assert ((pred["p_correct"] > 0) & (pred["p_correct"] < 1)).all()
    assert (pred["time_p10_s"] < pred["time_median_s"]).all()
    assert (pred["time_median_s"] < pred["time_p90_s"]).all()


def test_save_load_round_trip(model: LNIRT, tmp_path) -> None:
    model.update({"user_id": "online-only", "item_id": model.item_ids_[1], "correct": 1})
    path = tmp_path / "lnirt.zip"
    model.save(path)
    loaded = LNIRT.load(path)
    assert loaded.get_params() == model.get_params()
    df = _test_users(n=5)
    pd.testing.assert_frame_equal(loaded.predict(df), model.predict(df))
    for user in ("online-only", next(iter(model.user_index_)), "nobody"):
        a, b = loaded.person_state(user), model.person_state(user)
        np.testing.assert_array_equal(a["mean"], b["mean"])
        np.testing.assert_array_equal(a["cov"], b["cov"])
        assert (a["n"], a["is_personalized"]) == (b["n"], b["is_personalized"])
    for name in ("a_", "b_", "alpha_", "beta_", "sigma_P_", "item_prior_sd_", "a_sd_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    loaded.update({"user_id": "online-only", "item_id": model.item_ids_[1], "correct": 0})
    assert model.person_state("online-only")["n"] == 1  # the original is untouched


def test_fit_learns_from_partial_rows() -> None:
    df, truth = simulate_lnirt(300, 20, seed=5)
    rng = np.random.default_rng(0)
    df.loc[rng.uniform(size=len(df)) < 0.2, "rt_seconds"] = np.nan
    df.loc[rng.uniform(size=len(df)) < 0.2, "correct"] = np.nan
    m = LNIRT().fit(df)
    items = [m.item_index_[i] for i in truth["item_ids"]]
    assert _corr(m.b_[items], truth["b"]) > 0.95
    assert _corr(m.beta_[items], truth["beta"]) > 0.98
    both_missing = df["correct"].isna() & df["rt_seconds"].isna()
    assert int(m.person_n_.sum()) == len(df) - int(both_missing.sum())


# -- the Gibbs sampler -----------------------------------------------------------------------


def test_gibbs_recovers_items_and_gives_posterior_sds() -> None:
    df, truth = simulate_lnirt(200, 20, rho=-0.4, seed=1)
    m = LNIRT(method="gibbs", n_samples=300, burn_in=150, seed=3).fit(df)
    items = [m.item_index_[i] for i in truth["item_ids"]]
    assert _corr(m.b_[items], truth["b"]) >= 0.95
    assert _corr(m.beta_[items], truth["beta"]) >= 0.95
    assert _corr(m.alpha_[items], truth["alpha"]) >= 0.85
    assert -0.7 < m.rho_ < -0.1
    for name in ("a_sd_", "b_sd_", "alpha_sd_", "beta_sd_"):
        sd = getattr(m, name)
        assert np.all(np.isfinite(sd)) and np.all(sd > 0)
    # Posterior sds of beta agree with the EM's standard errors in size.
    em = LNIRT().fit(df)
    ratio = np.median(m.beta_sd_ / em.beta_sd_)
    assert 0.8 < ratio < 1.25
    again = LNIRT(method="gibbs", n_samples=300, burn_in=150, seed=3).fit(df)
    np.testing.assert_array_equal(again.b_, m.b_)


# -- the simulator ---------------------------------------------------------------------------


def test_simulator_draws_from_the_model() -> None:
    df, truth = simulate_lnirt(4000, 6, rho=-0.5, seed=11, n_skills=2)
    assert list(df.columns) == ["user_id", "item_id", "skill_id", "correct", "rt_seconds", "order"]
    validate_interactions(df, require_time=True)
    assert len(df) == 4000 * 6
    assert truth["theta"].shape == truth["tau"].shape == (4000,)
    assert truth["a"].shape == truth["beta"].shape == (6,)
    assert np.all(truth["a"] > 0) and np.all(truth["alpha"] > 0)
    assert abs(_corr(truth["theta"], truth["tau"]) - (-0.5)) < 0.05
    assert sorted(df.groupby("user_id")["order"].apply(list).iloc[0]) == list(range(1, 7))
    assert set(df["skill_id"]) == {"s0", "s1"}
    item = truth["item_ids"][2]
    rows = df[df["item_id"] == item]
    a, b = truth["a"][2], truth["b"][2]
    # Marginal P(correct) of a probit item under theta ~ N(0, 1).
    assert rows["correct"].mean() == pytest.approx(
        norm.cdf(-a * b / math.sqrt(1 + a * a)), abs=0.03
    )
    log_t = np.log(rows["rt_seconds"])
    assert log_t.mean() == pytest.approx(truth["beta"][2], abs=0.03)
    assert log_t.var() == pytest.approx(1 / truth["alpha"][2] ** 2 + 0.4**2, rel=0.1)


def test_simulator_is_seeded_and_can_be_sparse() -> None:
    a, ta = simulate_lnirt(50, 10, seed=3, p_administered=0.3)
    b, tb = simulate_lnirt(50, 10, seed=3, p_administered=0.3)
    pd.testing.assert_frame_equal(a, b)
    np.testing.assert_array_equal(ta["theta"], tb["theta"])
    assert len(a) < 0.5 * 50 * 10
    assert a["user_id"].nunique() == 50
    c, _ = simulate_lnirt(50, 10, seed=4, p_administered=0.3)
    assert not a.equals(c)
    with pytest.raises(ValueError, match="rho"):
        simulate_lnirt(5, 5, rho=1.0)


# -- acceptance 2 on real data ---------------------------------------------------------------


@pytest.mark.slow
def test_credential_form1_one_step_ahead() -> None:
    loaders = pytest.importorskip("smartstudy.data.loaders")
    try:
        df = loaders.load_dataset("credential_form1")
    except loaders.DatasetNotFoundError:
        pytest.skip("credential_form1 is not available")
    metrics = pytest.importorskip("smartstudy.eval.metrics")
    protocol = pytest.importorskip("smartstudy.eval.protocol")
    train, test = protocol.split_by_student(df, test_fraction=0.2, seed=0)
    model = LNIRT().fit(train)
    pred = model.predict(test)
    assert metrics.auc(test["correct"], pred["p_correct"]) >= 0.735
    assert metrics.rmse_log_time(test["rt_seconds"], pred["time_median_s"]) <= 0.505
    coverage = metrics.interval_coverage(test["rt_seconds"], pred["time_p10_s"], pred["time_p90_s"])
    assert 0.77 <= coverage <= 0.83


# -- predict_one: the fast path -----------------------------------------------------------------
def _one_row_predict(model: LNIRT, user: object, item: object, skill: object = None) -> dict:
    """``predict`` on the one-row frame of an attempt not made yet: what ``predict_one`` serves."""
    frame = pd.DataFrame(
        {"user_id": [user], "item_id": [item], "skill_id": [skill], "correct": [np.nan]}
    ).assign(order=0.0)
    return {k: float(v) for k, v in model.predict(frame).iloc[0].items()}


def _assert_predict_one_is_predict(model: LNIRT, probes: list[tuple]) -> None:
    for probe in probes:
        fast = model.predict_one(*probe)
        assert list(fast) == list(PREDICTION_COLUMNS), probe
        assert all(type(v) is float and math.isfinite(v) for v in fast.values()), probe
        assert fast == pytest.approx(_one_row_predict(model, *probe), rel=1e-12, abs=0), probe


def _raised(call: Callable[[], object]) -> tuple[type, str]:
    with pytest.raises(ValueError) as info:
        call()
    return type(info.value), str(info.value)


LNIRT_PROBES = [
    ("p1", "i3"),  # known user and item
    ("p2", "i7", "s0"),  # a skill, which LNIRT does not use
    ("p2", "i7", "unknown-skill"),
    ("never-seen", "i4"),  # the population prior
    ("p3", "brand-new-item"),  # the item population
    ("never-seen", "brand-new-item", None),
]


def test_predict_one_equals_predict_on_the_one_row_frame(model: LNIRT) -> None:
    _assert_predict_one_is_predict(model, LNIRT_PROBES)
    for row in (
        {"user_id": "p1", "item_id": "i3", "correct": 0, "rt_seconds": 300.0},
        {"user_id": "p2", "item_id": "brand-new-item", "correct": 1},
        {"user_id": "newbie", "item_id": "i5", "correct": 1, "rt_seconds": 20.0},
        {"user_id": "newbie", "item_id": "other-new-item", "correct": 0, "rt_seconds": 0.3},
    ):
        before = model.predict_one(row["user_id"], row["item_id"])
        model.update(row)
        assert model.predict_one(row["user_id"], row["item_id"]) != before
    probes = [*LNIRT_PROBES, ("newbie", "i5"), ("newbie", "other-new-item", "s0")]
    _assert_predict_one_is_predict(model, probes)

    clone = LNIRT.from_bytes(model.to_bytes())
    _assert_predict_one_is_predict(clone, probes)
    for probe in probes:
        assert clone.predict_one(*probe) == model.predict_one(*probe)


def test_predict_one_reads_ids_as_predict_does() -> None:
    df, _ = simulate_lnirt(60, 8, seed=3)
    df["user_id"] = df["user_id"].str.removeprefix("p").astype(int)
    df["item_id"] = df["item_id"].str.removeprefix("i").astype(int) + 100
    model = LNIRT().fit(df)
    assert "3" in model.user_index_ and "101" in model.item_index_
    probes = [
        (3, 101),
        (3.0, 101.0, 2.0),
        (np.int64(3), np.int64(101), np.nan),
        (3.5, 101),  # a fractional id is nobody
        (True, 101),
        # Types only the DataFrame path converts (bytes are decoded, float32 goes through
        # Python floats): answered by it, so still the same.
        (b"3", np.float32(101.0)),
        (3, 101, pd.NA),
        (np.str_("3"), "101"),
    ]
    _assert_predict_one_is_predict(model, probes)
    assert model.predict_one(3.0, 101.0) == model.predict_one("3", "101")
    assert model.predict_one(3, 101) != model.predict_one("stranger", 101)


@pytest.mark.parametrize(
    "args",
    [
        (None, "i1"),
        ("p1", None),
        (math.nan, "i1", None),
        ("p1", np.float64("nan")),
        (pd.NA, "i1", "s0"),
        ("p1", pd.NaT),
        (None, None, None),
    ],
)
def test_predict_one_rejects_missing_ids_as_before(model: LNIRT, args: tuple) -> None:
    assert _raised(lambda: model.predict_one(*args)) == _raised(
        lambda: LearnerModel.predict_one(model, *args)
    )


def test_predict_one_builds_no_data_frame(model: LNIRT, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = {probe: model.predict_one(*probe) for probe in LNIRT_PROBES}

    def no_frames(*args: object, **kwargs: object) -> None:
        raise AssertionError("predict_one went through predict")

    monkeypatch.setattr(base_module, "validate_interactions", no_frames)
    monkeypatch.setattr(lnirt_module, "sort_for_sequences", no_frames)
    monkeypatch.setattr(LNIRT, "_item_arrays", no_frames)
    for probe in LNIRT_PROBES:
        assert model.predict_one(*probe) == expected[probe]


# -- accuracy-only (2PL) mode: data without response times ------------------------------------


@pytest.fixture(scope="module")
def without_times() -> tuple[LNIRT, LNIRT, pd.DataFrame, pd.DataFrame, dict]:
    """The full model and the accuracy-only model fitted on the same training users."""
    df, truth = simulate_lnirt(800, 30, rho=-0.4, seed=5)
    test_users = df["user_id"].unique()[::4]
    is_test = df["user_id"].isin(test_users)
    train, test = df[~is_test], df[is_test]
    full = LNIRT().fit(train)
    accuracy_only = LNIRT().fit(train.drop(columns="rt_seconds"))
    return full, accuracy_only, train, test, truth


def test_fit_without_times_fits_the_response_part_only(without_times) -> None:
    full, acc, train, _, truth = without_times
    assert full.times_fitted_ and not acc.times_fitted_
    # The 2PL items are the full model's: accuracy never depended on times.
    assert _corr(acc.b_, full.b_) > 0.99
    assert _corr(acc.a_, full.a_) > 0.95
    assert _corr(acc.b_, truth["b"]) > 0.95
    # An all-NaN time column is the same as no column.
    nan_times = LNIRT().fit(train.assign(rt_seconds=np.nan))
    assert not nan_times.times_fitted_
    np.testing.assert_allclose(nan_times.b_, acc.b_)


def test_accuracy_only_predictions_match_the_full_model(without_times) -> None:
    full, acc, _, test, _ = without_times
    pred_full, pred_acc = full.predict(test), acc.predict(test)
    assert list(pred_acc.columns) == list(PREDICTION_COLUMNS)
    assert pred_acc[list(PREDICTION_COLUMNS[1:])].isna().all().all()
    p = pred_acc["p_correct"].to_numpy()
    assert np.isfinite(p).all() and ((p > 0) & (p < 1)).all()
    auc_full = auc(test["correct"], pred_full["p_correct"])
    auc_acc = auc(test["correct"], pred_acc["p_correct"])
    assert auc_acc > 0.7
    assert abs(auc_acc - auc_full) < 0.01
    one = acc.predict_one(test["user_id"].iloc[0], test["item_id"].iloc[0])
    assert math.isfinite(one["p_correct"]) and math.isnan(one["time_median_s"])


def test_accuracy_only_model_ignores_later_times(without_times) -> None:
    _, acc, _, test, _ = without_times
    # Times in the data predicted or learned from do not move an accuracy-only model.
    np.testing.assert_allclose(
        acc.predict(test)["p_correct"],
        acc.predict(test.drop(columns="rt_seconds"))["p_correct"],
    )
    a = LNIRT.from_bytes(acc.to_bytes())
    b = LNIRT.from_bytes(acc.to_bytes())
    a.update({"user_id": "u", "item_id": test["item_id"].iloc[0], "correct": 1, "rt_seconds": 2.0})
    b.update({"user_id": "u", "item_id": test["item_id"].iloc[0], "correct": 1})
    np.testing.assert_allclose(a.person_state("u")["mean"], b.person_state("u")["mean"])


def test_accuracy_only_save_load_round_trip(without_times, tmp_path) -> None:
    _, acc, _, test, _ = without_times
    path = tmp_path / "lnirt_2pl.zip"
    acc.save(path)
    loaded = LNIRT.load(path)
    assert loaded.times_fitted_ is False
    pd.testing.assert_frame_equal(loaded.predict(test), acc.predict(test))


def test_accuracy_only_gibbs_fit_works() -> None:
    df, truth = simulate_lnirt(300, 15, seed=2)
    m = LNIRT(method="gibbs", n_samples=150, burn_in=100).fit(df.drop(columns="rt_seconds"))
    assert not m.times_fitted_
    assert _corr(m.b_, truth["b"]) > 0.9
    assert m.predict(df)["time_median_s"].isna().all()


def test_topic_without_times_scores_answers_but_serves_no_predictions() -> None:
    df, _ = simulate_lnirt(300, 20, seed=8, n_skills=2)
    df.loc[df["skill_id"] == "s1", "rt_seconds"] = np.nan
    model = TopicLNIRT().fit(df)
    assert model.accuracy_only_ == ["s1"]
    assert model.models_["s0"].times_fitted_
    timed, untimed = df[df["skill_id"] == "s0"], df[df["skill_id"] == "s1"]
    assert np.isfinite(model.predict(timed).to_numpy()).all()
    with pytest.raises(CannotPredictError, match="without response times"):
        model.predict(untimed)
    row = untimed.iloc[0]
    with pytest.raises(CannotPredictError, match="without response times"):
        model.predict_one(row["user_id"], row["item_id"], row["skill_id"])
    # The untimed topic still scores the answers; its time statistics are missing.
    fit = model.person_fit(df, by_topic=True)
    assert fit.loc[fit["skill_id"] == "s1", "lz_time"].isna().all()
    assert fit.loc[fit["skill_id"] == "s1", "lz_resp"].notna().all()
    assert fit.loc[fit["skill_id"] == "s0", "lz_time"].notna().all()
    restored = TopicLNIRT.from_bytes(model.to_bytes())
    assert restored.accuracy_only_ == ["s1"]


def _with_a_heavy_person(reps: int) -> pd.DataFrame:
    """200 simulated persons answering half of 60 items, and one more who answers every item
    ``reps`` times (7 in 10 right, about 20 s each)."""
    df, _ = simulate_lnirt(200, 60, seed=4, p_administered=0.5)
    rng = np.random.default_rng(4)
    items = np.repeat(df["item_id"].unique(), reps)
    skills = df.drop_duplicates("item_id").set_index("item_id")["skill_id"]
    heavy = pd.DataFrame(
        {
            "user_id": "heavy",
            "item_id": items,
            "skill_id": skills.loc[items].to_numpy(),
            "correct": (rng.random(len(items)) < 0.7).astype(int),
            "rt_seconds": np.exp(rng.normal(3.0, 0.5, len(items))),
            "order": np.arange(len(items)),
        }
    )
    return pd.concat([df, heavy[df.columns]], ignore_index=True)


@pytest.mark.parametrize("dense", [True, False])
def test_a_person_with_thousands_of_responses_does_not_break_the_fit(
    monkeypatch: pytest.MonkeyPatch, dense: bool
) -> None:
    # 9,000 responses give a posterior of theta far narrower than the grid's spacing (0.1):
    # on the grid alone its variance came out as 0 and the fit was refused as degenerate.
    packed = lnirt_fit.pack_responses(validate_interactions(_with_a_heavy_person(150)))
    heavy = list(packed.user_ids).index("heavy")
    if not dense:  # the design of large item banks: sparse person x item matrices
        monkeypatch.setattr(lnirt_fit, "_DENSE_MAX_CELLS", 0)
    est = lnirt_fit.fit_em(packed, priors=lnirt_fit.LNIRTPriors(), tol=1e-6)
    assert lnirt_fit._Design(packed).dense is dense
    check_lnirt_parameters(
        est.a, est.b, est.alpha, est.beta, est.sigma_P, est.person_mean, est.person_cov
    )
    # A grid fine enough to resolve it (spacing 0.003) agrees on its mean and variance and on
    # the items. (Rounded to the nearest node, the person had moved every item: mean a 1.37
    # against 1.05, the person's theta 0.21 against 0.92.)
    fine = lnirt_fit.fit_em(packed, priors=lnirt_fit.LNIRTPriors(), tol=1e-6, n_quadrature=4001)
    assert est.person_cov[heavy, 0, 0] == pytest.approx(fine.person_cov[heavy, 0, 0], rel=0.25)
    assert est.person_mean[heavy, 0] == pytest.approx(fine.person_mean[heavy, 0], abs=0.05)
    assert est.a.mean() == pytest.approx(fine.a.mean(), rel=0.1)
    assert np.abs(est.b - fine.b).max() < 0.15
