"""LNIRT with heavy-tailed times: Student-t log-time residuals (learned degrees of freedom),
robust person updates, exact t intervals, learned shrinkage of sparse items' time parameters
and the artifacts that carry them (issue 15, acceptance 2)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from smartstudy.data.simulate import simulate_lnirt
from smartstudy.eval.metrics import interval_coverage
from smartstudy.eval.protocol import split_by_student
from smartstudy.models.base import ArtifactError, CannotPredictError
from smartstudy.models.lnirt import (
    LNIRT,
    TopicLNIRT,
    accuracy_update,
    predictive_moments,
    time_update,
)
from smartstudy.models.lnirt import model as lnirt_model
from smartstudy.models.lnirt.calibration import apply_logit_map_one
from smartstudy.models.lnirt.model import t_interval_halfwidth
from tests.artifacts import rewrite_meta


def _t_times(df: pd.DataFrame, truth: dict, nu: float, seed: int) -> pd.DataFrame:
    """Redraw the times of a simulated frame with Student-t residuals of scale 1/alpha."""
    rng = np.random.default_rng(seed)
    item = pd.Index(truth["item_ids"]).get_indexer(df["item_id"])
    user = pd.Index(truth["user_ids"]).get_indexer(df["user_id"])
    noise = rng.standard_t(nu, size=len(df)) / truth["alpha"][item]
    log_t = truth["beta"][item] - truth["tau"][user] + noise
    return df.assign(rt_seconds=np.exp(log_t))


@pytest.fixture(scope="module")
def heavy() -> tuple[pd.DataFrame, dict]:
    df, truth = simulate_lnirt(1200, 40, rho=-0.4, seed=11)
    return _t_times(df, truth, nu=4.0, seed=12), truth


@pytest.fixture(scope="module")
def heavy_fits(heavy: tuple[pd.DataFrame, dict]) -> tuple[LNIRT, LNIRT]:
    df, _ = heavy
    return LNIRT().fit(df), LNIRT(time_model="normal").fit(df)


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.corrcoef(x, y)[0, 1])


def test_t_fit_recovers_parameters_and_degrees_of_freedom(heavy, heavy_fits) -> None:
    _, truth = heavy
    t_model, normal_model = heavy_fits
    items = [t_model.item_index_[i] for i in truth["item_ids"]]
    users = [t_model.user_index_[u] for u in truth["user_ids"]]
    # nu = 4 in truth; the fit sees times winsorised at 3.5 robust sds, which trims the
    # farthest tail, so the estimate may sit a little above 4.
    assert t_model.time_df_ is not None
    assert 2.5 <= t_model.time_df_ <= 8.0
    assert normal_model.time_df_ is None
    assert _corr(t_model.beta_[items], truth["beta"]) >= 0.99
    assert _corr(t_model.alpha_[items], truth["alpha"]) >= 0.85
    # alpha is the t's own scale parameter: recovered on its scale, not inflated by the tails.
    ratio = np.median(t_model.alpha_[items] / truth["alpha"])
    assert 0.85 <= ratio <= 1.15
    assert _corr(t_model.person_mean_[users, 1], truth["tau"]) >= 0.95
    assert abs(t_model.rho_ - truth["rho"]) <= 0.06
    # The robust fit estimates the time intensities at least as well as the normal fit.
    err_t = np.abs(t_model.beta_[items] - truth["beta"]).mean()
    err_n = np.abs(normal_model.beta_[items] - truth["beta"]).mean()
    assert err_t <= err_n * 1.02


def test_t_fit_on_normal_data_learns_near_normal_tails() -> None:
    df, truth = simulate_lnirt(800, 30, seed=5)
    m = LNIRT().fit(df)
    assert m.time_df_ is not None and m.time_df_ >= 30.0
    items = [m.item_index_[i] for i in truth["item_ids"]]
    assert 0.9 <= np.median(m.alpha_[items] / truth["alpha"]) <= 1.1


def test_coverage_of_new_persons_is_near_80_percent_on_heavy_tailed_data(heavy) -> None:
    df, _ = heavy
    train, test = split_by_student(df, test_fraction=0.25, seed=1)
    t_pred = LNIRT().fit(train).predict(test)
    cov_t = interval_coverage(test["rt_seconds"], t_pred["time_p10_s"], t_pred["time_p90_s"])
    assert 0.78 <= cov_t <= 0.82
    n_pred = LNIRT(time_model="normal").fit(train).predict(test)
    cov_n = interval_coverage(test["rt_seconds"], n_pred["time_p10_s"], n_pred["time_p90_s"])
    # The normal model's sd is inflated by the tails: its 80% interval holds too many.
    assert abs(cov_t - 0.8) < abs(cov_n - 0.8)


def test_one_absurd_time_moves_a_person_less_than_under_the_normal_model(heavy_fits) -> None:
    t_model, normal_model = heavy_fits
    item = t_model.item_ids_[0]
    moves = {}
    for label, m in (("t", t_model), ("normal", normal_model)):
        before = m.person_state("new-user")["mean"][1]
        typical = math.exp(m.beta_[m.item_index_[item]])
        m.update({"user_id": "new-user", "item_id": item, "correct": 1, "rt_seconds": typical})
        m.update({"user_id": "new-user", "item_id": item, "correct": 1, "rt_seconds": 3600.0})
        after = m.person_state("new-user")["mean"][1]
        moves[label] = after - before
    # Both slow the person down (tau falls); the t much less.
    assert moves["t"] < 0 and moves["normal"] < 0
    assert abs(moves["t"]) < 0.5 * abs(moves["normal"])


def test_robust_time_step_is_exact_assumed_density_filtering() -> None:
    mean = np.array([[0.2, -0.1]])
    cov = np.array([[[1.0, 0.3], [0.3, 0.2]]])
    alpha, beta, var_beta, nu = 2.0, 4.0, 0.05, 5.0
    for log_t in (3.6, 4.5, 6.0):
        new_mean, new_cov = time_update(
            mean, cov, np.array([log_t]), np.array([alpha]), np.array([beta]), var_beta, nu
        )
        y = beta - log_t
        # The exact posterior of tau, by Simpson's rule on a fine grid (it agrees with
        # adaptive quadrature to 1e-13): a N(-0.1, 0.2) prior times the likelihood of a
        # t residual of scale 1/alpha plus N(0, var_beta) noise on the item's intensity.
        tau = np.linspace(-4, 4, 1601)
        x = np.linspace(-2, 2, 801)
        noise = stats.norm.pdf(x, scale=math.sqrt(var_beta))
        inner = noise * alpha * stats.t.pdf(alpha * (y - tau[:, None] - x), nu)
        dens = stats.norm.pdf(tau, -0.1, math.sqrt(0.2)) * integrate.simpson(inner, x=x, axis=1)
        z = integrate.simpson(dens, x=tau)
        m1 = integrate.simpson(tau * dens, x=tau) / z
        m2 = integrate.simpson(tau * tau * dens, x=tau) / z
        assert new_mean[0, 1] == pytest.approx(m1, abs=1e-5)
        assert new_cov[0, 1, 1] == pytest.approx(min(m2 - m1 * m1, 0.2), abs=1e-5)
        # theta moves through its covariance with tau, in the same direction.
        assert np.sign(new_mean[0, 0] - 0.2) == np.sign(new_mean[0, 1] + 0.1)
    # A typical time teaches about as much as under the normal model.
    t_mean, _ = time_update(mean, cov, np.array([4.2]), np.array([alpha]), np.array([beta]), 0, nu)
    n_mean, _ = time_update(mean, cov, np.array([4.2]), np.array([alpha]), np.array([beta]), 0)
    assert t_mean[0, 1] - mean[0, 1] == pytest.approx(n_mean[0, 1] - mean[0, 1], rel=0.25)


@pytest.mark.parametrize("nu", [1.5, 4.0, 30.0])
def test_t_interval_has_the_right_quantiles(nu: float) -> None:
    alpha = np.array([2.0, 2.0, 1.0])
    var = np.array([0.0, 0.1, 0.5])
    q = t_interval_halfwidth(var, alpha, nu)
    assert q[0] == pytest.approx(stats.t.ppf(0.9, nu) / 2.0, rel=1e-6)
    rng = np.random.default_rng(0)
    for k in (1, 2):
        draws = rng.normal(0, math.sqrt(var[k]), 400_000) + rng.standard_t(nu, 400_000) / alpha[k]
        assert np.mean(np.abs(draws) <= q[k]) == pytest.approx(0.8, abs=0.004)
    # predictive_moments returns the half-width over Z80 as the interval scale.
    mean = np.zeros((3, 2))
    cov = np.zeros((3, 2, 2))
    cov[:, 1, 1] = var
    _, _, scale = predictive_moments(mean, cov, np.ones(3), np.zeros(3), alpha, np.zeros(3), nu=nu)
    np.testing.assert_allclose(scale * 1.2815515655446004, q)


def test_sparse_items_time_parameters_are_shrunk_with_learned_strength() -> None:
    # 60 items with time intensities of sd 0.3; half are seen by only 1-3 persons.
    df, truth = simulate_lnirt(600, 60, seed=21, beta_sd=0.3)
    rng = np.random.default_rng(3)
    item = pd.Index(truth["item_ids"]).get_indexer(df["item_id"])
    sparse_items = np.arange(60) % 2 == 1
    keep = ~sparse_items[item] | (rng.uniform(size=len(df)) < 2.0 / 600)
    df = df[keep]
    learned = LNIRT().fit(df)
    fixed = LNIRT(prior_item_strength=None).fit(df)
    # The learned spread of the time intensities is near the true 0.3, not the prior's 1.0.
    assert 0.2 <= learned.item_prior_sd_[3] <= 0.45
    ids = [truth["item_ids"][i] for i in np.flatnonzero(sparse_items)]
    j = [learned.item_index_[i] for i in ids if i in learned.item_index_]
    true_beta = pd.Series(truth["beta"], index=truth["item_ids"]).loc[
        [i for i in ids if i in learned.item_index_]
    ]
    err_learned = np.sqrt(np.mean((learned.beta_[j] - true_beta.to_numpy()) ** 2))
    err_fixed = np.sqrt(np.mean((fixed.beta_[j] - true_beta.to_numpy()) ** 2))
    assert err_learned < err_fixed
    # Their uncertainty widens their intervals relative to a well-seen item.
    dense_item = truth["item_ids"][0]
    wide = learned.predict_one("u-new", ids[0])
    narrow = learned.predict_one("u-new", dense_item)
    width = lambda p: math.log(p["time_p90_s"] / p["time_p10_s"])  # noqa: E731
    assert width(wide) > width(narrow)


def test_sparse_items_discriminations_are_shrunk_with_learned_strength() -> None:
    # 60 items of nearly one discrimination (a in [0.9, 1.1]); half are seen by about 8
    # persons, whose few answers would give them extreme slopes under the fixed prior.
    df, truth = simulate_lnirt(600, 60, seed=21, a_range=(0.9, 1.1))
    rng = np.random.default_rng(3)
    item = pd.Index(truth["item_ids"]).get_indexer(df["item_id"])
    sparse_items = np.arange(60) % 2 == 1
    df = df[~sparse_items[item] | (rng.uniform(size=len(df)) < 8.0 / 600)]
    learned = LNIRT().fit(df)
    fixed = LNIRT(prior_item_strength=None).fit(df)
    ids = [truth["item_ids"][i] for i in np.flatnonzero(sparse_items)]
    ids = [i for i in ids if i in learned.item_index_]
    true_log_a = np.log(pd.Series(truth["a"], index=truth["item_ids"]).loc[ids].to_numpy())

    def error(model: LNIRT) -> float:
        fitted = np.log(model.a_[[model.item_index_[i] for i in ids]])
        return float(np.sqrt(np.mean((fitted - true_log_a) ** 2)))

    assert error(learned) < 0.5 * error(fixed)
    assert learned.item_prior_sd_[0] < 0.12  # the items' slopes nearly agree
    # Items whose slopes really differ, each seen by every person, keep their spread.
    varied, truth = simulate_lnirt(600, 30, seed=22, a_range=(0.4, 2.5))
    model = LNIRT().fit(varied)
    true_spread = float(np.std(np.log(truth["a"]), ddof=1))
    assert model.item_prior_sd_[0] == pytest.approx(true_spread, rel=0.3)


def _skill_frame(seed: int = 5) -> pd.DataFrame:
    """400 persons x 40 items in four skills of difficulty centres -1.5, -0.5, 0.5, 1.5."""
    rng = np.random.default_rng(seed)
    centres = np.array([-1.5, -0.5, 0.5, 1.5])
    skill = np.arange(40) % 4
    b = centres[skill] + rng.normal(0, 0.3, 40)
    theta = rng.normal(0, 1, 400)
    person, item = np.divmod(np.arange(400 * 40), 40)
    correct = rng.uniform(size=len(person)) < stats.norm.cdf(theta[person] - b[item])
    return pd.DataFrame(
        {
            "user_id": [f"u{p}" for p in person],
            "item_id": [f"i{i}" for i in item],
            "skill_id": [f"s{k}" for k in skill[item]],
            "correct": correct.astype(float),
            "rt_seconds": np.exp(rng.normal(3.0, 0.5, len(person))),
            "order": np.arange(len(person)),
        }
    )


@pytest.mark.parametrize("method", ["em", "gibbs"])
def test_an_unknown_item_of_a_known_skill_starts_from_its_skill(method: str) -> None:
    df = _skill_frame()
    params = {"method": method, "n_samples": 60, "burn_in": 20}
    model = LNIRT(**params).fit(df)
    assert model.skill_ids_.tolist() == ["s0", "s1", "s2", "s3"]
    assert np.all(np.diff(model.skill_b_centre_) > 0.6)  # the skills' centres, in order
    assert 0.1 < model.skill_b_sd_ < 0.6  # the items' spread around them (0.3)
    chances = [model.predict_one("new", "unseen", f"s{k}")["p_correct"] for k in range(4)]
    assert chances[0] > 0.8 and chances[3] < 0.2 and np.all(np.diff(chances) < 0)
    population = model.predict_one("new", "unseen")["p_correct"]
    assert model.predict_one("new", "unseen", "no-such-skill")["p_correct"] == population
    # predict on a frame agrees, and so does what the user learns from such a row.
    frame = pd.DataFrame(
        {"user_id": ["x", "x"], "item_id": ["unseen", "unseen"], "skill_id": ["s3", "s3"]}
        | {"correct": [0.0, 1.0], "rt_seconds": [20.0, 20.0], "order": [1, 2]}
    )
    rows = model.predict(frame)
    assert rows["p_correct"].iloc[0] == pytest.approx(chances[3])
    row = {"user_id": "x", "item_id": "unseen", "skill_id": "s3", "correct": 0.0}
    model.update(row | {"rt_seconds": 20.0})
    assert model.predict_one("x", "unseen", "s3")["p_correct"] == pytest.approx(
        rows["p_correct"].iloc[1]
    )
    # Without skills, every unknown item is the population's.
    plain = LNIRT(**params).fit(df.drop(columns="skill_id"))
    assert plain.skill_ids_.size == 0 and plain.skill_b_sd_ is None
    assert plain.predict_one("new", "unseen", "s0")["p_correct"] == pytest.approx(
        plain.predict_one("new", "unseen")["p_correct"]
    )


def test_skill_centres_survive_save_and_load_and_older_artifacts_have_none(tmp_path) -> None:
    model = LNIRT().fit(_skill_frame())
    path = tmp_path / "lnirt.zip"
    model.save(path)
    again = LNIRT.load(path)
    np.testing.assert_array_equal(again.skill_b_centre_, model.skill_b_centre_)
    assert again.predict_one("new", "unseen", "s0") == model.predict_one("new", "unseen", "s0")
    # An artifact written before skill centres (and so before skill abilities): unknown
    # items use the population.

    def strip(meta: dict) -> None:
        for key in ("skill_ids_", "skill_b_centre_", "skill_b_sd_", "skill_sd_", "item_skill_"):
            del meta["state"][key]

    older = LNIRT.from_bytes(rewrite_meta(model.to_bytes(), strip))
    assert older.skill_ids_.size == 0
    assert older.predict_one("new", "unseen", "s0") == model.predict_one("new", "unseen")


def test_save_load_round_trip_keeps_the_t_model(heavy_fits, tmp_path) -> None:
    t_model, _ = heavy_fits
    path = tmp_path / "lnirt.zip"
    t_model.save(path)
    again = LNIRT.load(path)
    assert again.time_df_ == t_model.time_df_
    np.testing.assert_array_equal(again.drift_, t_model.drift_)
    np.testing.assert_array_equal(again.item_prior_sd_, t_model.item_prior_sd_)
    frame = pd.DataFrame(
        {
            "user_id": ["x", "x", "y"],
            "item_id": [t_model.item_ids_[0], t_model.item_ids_[1], "unknown-item"],
            "correct": [1, 0, 1],
            "rt_seconds": [50.0, 900.0, 20.0],
            "order": [0, 1, 0],
        }
    )
    pd.testing.assert_frame_equal(again.predict(frame), t_model.predict(frame))


def test_old_artifact_without_degrees_of_freedom_loads_as_the_normal_model(heavy_fits) -> None:
    t_model, _ = heavy_fits

    def strip(meta: dict) -> None:
        for key in ("time_df_", "drift_"):
            del meta["state"][key]
        for key in ("time_model", "prior_item_strength", "learn_drift"):
            del meta["params"][key]

    old = LNIRT.from_bytes(rewrite_meta(t_model.to_bytes(), strip))
    assert old.time_df_ is None
    np.testing.assert_array_equal(old.drift_, [0.0, 0.0])
    one = old.predict_one("new-person", t_model.item_ids_[0])
    j = 0
    mean, cov = old.mu_P_[None, :], old.sigma_P_[None, :, :]
    s2 = (old.alpha_sd_[j] / old.alpha_[j]) ** 2
    p, mu, sd = predictive_moments(
        mean,
        cov,
        old.a_[j : j + 1],
        old.b_[j : j + 1],
        old.alpha_[j : j + 1] * math.exp(-s2),
        old.beta_[j : j + 1],
        old.b_sd_[j] ** 2,
        old.beta_sd_[j] ** 2,
    )
    assert one["p_correct"] == pytest.approx(apply_logit_map_one(p[0], old.calibration_))
    assert one["time_p90_s"] == pytest.approx(math.exp(mu[0] + 1.2815515655446004 * sd[0]))


@pytest.mark.parametrize(
    ("key", "bad"),
    [
        ("time_df_", -1.0),
        ("time_df_", "many"),
        ("time_df_", float("inf")),
        ("drift_", [0.1, -0.1]),
        ("drift_", [0.1]),
    ],
)
def test_artifact_with_invalid_new_fields_is_refused(heavy_fits, key, bad) -> None:
    t_model, _ = heavy_fits

    def spoil(meta: dict) -> None:
        meta["state"][key] = bad

    with pytest.raises(ArtifactError):
        LNIRT.from_bytes(rewrite_meta(t_model.to_bytes(), spoil))


def test_unknown_time_model_is_rejected() -> None:
    df, _ = simulate_lnirt(30, 5, seed=1)
    with pytest.raises(ValueError, match="time_model"):
        LNIRT(time_model="cauchy").fit(df)
    with pytest.raises(ValueError, match="prior_item_strength"):
        LNIRT(prior_item_strength=-1.0).fit(df)


def test_gibbs_samples_the_degrees_of_freedom(heavy) -> None:
    df, truth = heavy
    small = df[df["user_id"].isin(truth["user_ids"][:300])]
    m = LNIRT(method="gibbs", n_samples=150, burn_in=100, seed=1).fit(small)
    assert m.time_df_ is not None and 2.0 <= m.time_df_ <= 12.0
    normal = LNIRT(method="gibbs", n_samples=150, burn_in=100, time_model="normal").fit(small)
    assert normal.time_df_ is None


# -- persons who change while they work: learned drift ------------------------------------------


def _learning_persons(
    n_persons: int, n_items: int, drift: float, seed: int, speed_drift: float = 0.0
) -> pd.DataFrame:
    """Answers of persons whose ability takes a random-walk step of variance ``drift`` and
    whose speed one of variance ``speed_drift`` after every item (times as in LNIRT)."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.8, 1.6, n_items)
    b = rng.normal(0, 1, n_items)
    beta = rng.normal(4, 0.4, n_items)
    rows = []
    for p in range(n_persons):
        theta = rng.normal() + np.cumsum(rng.normal(0, math.sqrt(drift), n_items))
        tau = rng.normal(0, 0.3) + np.cumsum(rng.normal(0, math.sqrt(speed_drift), n_items))
        order = rng.permutation(n_items)
        for k, i in enumerate(order):
            rows.append(
                {
                    "user_id": f"p{p}",
                    "item_id": f"i{i}",
                    "correct": int(rng.uniform() < stats.norm.cdf(a[i] * (theta[k] - b[i]))),
                    "rt_seconds": math.exp(beta[i] - tau[k] + rng.normal(0, 0.4)),
                    "order": k,
                }
            )
    return pd.DataFrame(rows)


def test_static_persons_get_no_drift() -> None:
    df = _learning_persons(400, 30, drift=0.0, seed=7)
    m = LNIRT().fit(df)
    assert m.drift_[0] == 0.0
    assert m.drift_[1] <= 0.003 * m.sigma_P_[1, 1]


def test_speed_drift_is_learned_and_predicts_times_better() -> None:
    df = _learning_persons(500, 40, drift=0.0, seed=8, speed_drift=0.01)
    train, test = split_by_student(df, test_fraction=0.3, seed=0)
    drifting = LNIRT().fit(train)
    static = LNIRT(learn_drift=False).fit(train)
    assert 0.003 <= drifting.drift_[1] <= 0.05
    np.testing.assert_array_equal(static.drift_, [0.0, 0.0])
    log_t = np.log(test["rt_seconds"].to_numpy())

    def rmse(m: LNIRT) -> float:
        median = m.predict(test)["time_median_s"].to_numpy()
        return float(np.sqrt(np.mean((np.log(median) - log_t) ** 2)))

    # A static speed grows too certain and stops following the person; the drift keeps it
    # following (measured: RMSE of log time 0.46 against 0.51).
    assert rmse(drifting) < rmse(static) - 0.02


def test_ability_never_drifts_so_a_correct_answer_never_lowers_a_prediction() -> None:
    # Persons whose ability does wander: a random walk on theta would fit them better, but
    # it would pull every prediction towards 1/2 after each answer.
    df = _learning_persons(300, 30, drift=0.05, seed=9, speed_drift=0.01)
    m = LNIRT().fit(df)
    assert m.drift_[0] == 0.0 and m.drift_[1] > 0.0
    items = list(m.item_ids_[:8])
    for user in ("new person", "p3", "p17"):
        for answered in items[:4]:
            for correct in (1, 0):
                after = LNIRT.from_bytes(m.to_bytes())
                after.update(
                    {"user_id": user, "item_id": answered, "correct": correct, "rt_seconds": 55.0}
                )
                for item in items:
                    p0 = m.predict_one(user, item)["p_correct"]
                    p1 = after.predict_one(user, item)["p_correct"]
                    assert (p1 >= p0) if correct else (p1 <= p0), (user, answered, item, p0, p1)


def test_update_adds_the_drift_after_learning(heavy_fits) -> None:
    t_model, _ = heavy_fits
    m = LNIRT.from_bytes(t_model.to_bytes())
    m.drift_ = np.array([0.05, 0.01])
    item = m.item_ids_[3]
    j = m.item_index_[item]
    m.update({"user_id": "d", "item_id": item, "correct": 1})
    expected_mean, expected_cov = accuracy_update(
        m.mu_P_[None, :],
        m.sigma_P_[None, :, :],
        np.array([1.0]),
        m.a_[j : j + 1],
        m.b_[j : j + 1],
        m.b_sd_[j : j + 1] ** 2,
    )
    state = m.person_state("d")
    np.testing.assert_allclose(state["mean"], expected_mean[0])
    np.testing.assert_allclose(state["cov"], expected_cov[0] + np.diag([0.05, 0.01]))


def test_a_correct_but_slow_answer_never_lowers_a_prediction() -> None:
    # Speed and ability correlated (rho 0.6): the joint step reads a slow answer as evidence
    # of low ability. With times teaching speed only (``time_weight_`` 0), the direction
    # guarantee holds for every item whatever the time. With a learned share of the joint
    # step, it holds for the answered item (``_ability_from_time``), the item the guarantee
    # is about (the same cell); another item may then follow what the time says.
    rng = np.random.default_rng(11)
    n_persons, n_items = 300, 25
    person = rng.multivariate_normal([0, 0], [[1.0, 0.3], [0.3, 0.25]], n_persons)
    a, b = rng.uniform(0.8, 1.6, n_items), rng.normal(0, 1, n_items)
    beta = rng.normal(4, 0.4, n_items)
    rows = [
        {
            "user_id": f"p{p}",
            "item_id": f"i{i}",
            "correct": int(rng.uniform() < stats.norm.cdf(a[i] * (person[p, 0] - b[i]))),
            "rt_seconds": math.exp(beta[i] - person[p, 1] + rng.normal(0, 0.4)),
            "order": i,
        }
        for p in range(n_persons)
        for i in range(n_items)
    ]
    m = LNIRT(learn_time_weight=False).fit(pd.DataFrame(rows))
    assert m.sigma_P_[0, 1] > 0.1  # the fit sees the correlation
    assert m.time_weight_ == 0.0
    learned = LNIRT().fit(pd.DataFrame(rows))
    assert learned.time_weight_ > 0.0  # times tell about ability in these data
    items = list(m.item_ids_[:6])
    for user in ("new person", "p5"):
        for correct, seconds in ((1, 3000.0), (0, 2.0)):  # slow and right, fast and wrong
            row = {"user_id": user, "item_id": items[0], "correct": correct, "rt_seconds": seconds}
            for model in (m, learned):
                after = LNIRT.from_bytes(model.to_bytes())
                after.update(row)
                assert after.person_state(user)["mean"][1] != model.person_state(user)["mean"][1]
                for item in items if model is m else items[:1]:
                    p0 = model.predict_one(user, item)["p_correct"]
                    p1 = after.predict_one(user, item)["p_correct"]
                    if model is m:
                        assert (p1 > p0) if correct else (p1 < p0), (user, item, p0, p1)
                    else:
                        assert (p1 >= p0) if correct else (p1 <= p0), (user, item, p0, p1)
            # The learned share moves ability with the time: a slow right answer (rho > 0:
            # slow persons are weaker) raises it less than a quick one.
            if correct:
                quick = LNIRT.from_bytes(learned.to_bytes())
                quick.update(row | {"rt_seconds": 5.0})
                slow = LNIRT.from_bytes(learned.to_bytes())
                slow.update(row)
                assert quick.person_state(user)["mean"][0] > slow.person_state(user)["mean"][0]


@pytest.mark.parametrize("nu", [1.5, 3.0, 7.3, 30.0])
def test_the_interval_table_matches_the_converged_quantile(nu: float, monkeypatch) -> None:
    """The table that ``t_interval_halfwidth`` interpolates (built when a version loads)
    gives the 90% quantile to 2e-4 relative over six decades of the normal part's spread."""
    var = np.geomspace(1e-6, 1e6, 2000)
    alpha = np.full_like(var, 1.0)
    table = t_interval_halfwidth(var, alpha, nu)
    monkeypatch.setattr(lnirt_model, "_NEWTON_STEPS", 30)
    exact = lnirt_model._standard_halfwidth(np.sqrt(var), nu)
    assert np.max(np.abs(table / exact - 1.0)) < 2e-4


def test_times_all_equal_fit_without_overflow_and_are_not_served() -> None:
    """A class whose every time is the same number (typed, not timed) has no residual spread:
    the time precision is fitted to a floor instead of growing without bound, and the
    small-topic rule then keeps that LNIRT from serving."""
    rows = []
    for user, results in (("a", [1, 0] * 5), ("b", [1] * 9 + [0]), ("c", [1, 0] * 3)):
        for level in ("easy", "medium"):
            for ok in results:
                rows.append(
                    {
                        "user_id": user,
                        "item_id": f"T:{level}",
                        "skill_id": "T",
                        "correct": float(ok),
                        "rt_seconds": 150.0,
                        "order": len(rows),
                    }
                )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = TopicLNIRT().fit(pd.DataFrame(rows))
    with pytest.raises(CannotPredictError):
        model.predict_one("b", "T:easy", "T")
