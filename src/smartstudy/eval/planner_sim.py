"""Simulation study of the exam planner (issue 13): does following the plan pay off?

``smartstudy evaluate --scenario planner`` runs :func:`run_planner_study`. Simulated learners
prepare for an exam with a fixed daily budget under five policies and the study reports their
true readiness on the exam date and the minutes they needed to reach the target.

The generative model (the "truth" of the simulation) is fitted on the Cognitive Tutor steps of
``shared/datasets/cognitive_tutor`` (KDD Cup 2010 subset; 16,858 steps, 587 students, 12
skills) by :func:`fit_generative`. It is *not* the planner's own model: it is a separate,
data-fitted performance-factors model, and the planner only ever sees the estimates of an online
estimator (:class:`EstimatorPrior`), never these parameters.

Accuracy, a logistic additive-factors / performance-factors model (Cen, Koedinger & Junker
2006; Pavlik, Cen & Koedinger 2009) with a DAS3H-style forgetting term (Choffin et al. 2019)::

    logit P(correct) = theta_s + u_sk + beta_k - delta_i + g(lag) * L_sk
    L_sk   = sum_t gamma_t log(1 + S_skt) + rho_t log(1 + F_skt)
    g(lag) = (1 + lag) ** -phi

``theta_s`` student ability, ``u_sk`` the student's deviation on skill ``k``, ``beta_k`` skill
easiness, ``delta_i`` item difficulty (within its skill), ``S_skt`` / ``F_skt`` the student's
earlier successes / failures on the skill's items of difficulty tertile ``t`` (if the data
support a rate per tertile, by BIC; otherwise one rate on the total counts) and ``lag`` the
number of attempts on other skills since the last attempt on ``k``: the learned part fades with
the lag. Fitted by L2-penalised maximum likelihood (L-BFGS, analytic gradient); the penalties
of ``theta``, ``u`` and ``delta`` are their Gaussian prior variances, re-estimated by empirical
Bayes (a Laplace approximation to the posterior variances, three rounds).

Speed, a log-normal response-time model (van der Linden 2007) with a practice speed-up::

    log T = mu_k + iota_i - tau_s - v_sk - kappa log(1 + n_sk) + eps,  eps ~ N(0, sigma^2)

fitted by penalised least squares with the same empirical-Bayes variances.

Forgetting: in the tutor data the lag is short (99 % of repeat attempts come within 10 other
attempts) and its own fit puts ``phi`` at 0, so ``phi`` is fitted with the same model, at skill
level, on 400 learners of ``assistments09`` (:func:`fit_forgetting`), whose lags reach
hundreds of attempts; the tutor model is then refitted with that ``phi`` fixed.

Assumptions (stated in the README): the data have no day-level timestamps, so a calendar day
away from a topic is taken to be worth ``attempts_per_day`` attempts of lag, the number of
app-sized tasks a typical learner fits in the daily budget; a step of the tutor is scaled to an
app-sized task by :data:`TIME_SCALE` (x20: the median step of 11 s becomes a task of about
3.7 min, the size of the app's medium tasks).

The study (:func:`run_planner_study`): per seed, the estimator's prior is fitted on a training
cohort (:func:`fit_estimator_prior`), then each of ``learners`` simulated learners (6 topics,
Dirichlet exam weights, 20 random pre-exam tasks) studies ``days`` days at 30 min/day under
each policy of :data:`POLICIES` (:func:`run_learner`: the same day rule for all). Metrics:
weighted true readiness on the exam date, the share of topics at target, and the minutes until
the weighted true readiness (if the exam were the next morning) first reaches the target.
:func:`format_planner_table` and :meth:`PlannerStudy.to_dict` give the table and the JSON.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

DATASET = "cognitive_tutor"
#: A tutor step (median 11 s) becomes an app-sized task (median about 3.7 min).
TIME_SCALE = 20.0
N_TOPICS = 6
N_DIFFICULTIES = 3
DIFFICULTY_NAMES: tuple[str, ...] = ("easy", "medium", "hard")
MEDIUM = 1
EXAM_DAYS = 14
DAILY_MINUTES = 30
TARGET = 0.8
PRE_TASKS = 20
PRE_DAYS = 14
TRAIN_LEARNERS = 200
TRAIN_TASKS = 40
MAX_TASKS_PER_DAY = 60
POLICIES: tuple[str, ...] = ("plan", "random", "lowest_mastery", "easiest", "hardest")
START_DATE = date(2026, 1, 5)
_EB_ROUNDS = 3
_Z90 = 1.2815515655446004


# --------------------------------------------------------------------------------------------
# Features of the tutor steps
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StepData:
    """Index arrays and practice features of an interactions frame, one entry per step."""

    student: np.ndarray  # int index into students
    pair: np.ndarray  # int index of the (student, skill) pair
    skill: np.ndarray
    item: np.ndarray
    correct: np.ndarray  # float 0/1
    successes: np.ndarray  # (n, 3) earlier successes on the skill per tertile
    failures: np.ndarray  # (n, 3)
    lag: np.ndarray  # attempts on other skills since the last attempt on this skill
    n_prior: np.ndarray  # earlier attempts on the skill
    log_rt: np.ndarray  # log seconds, NaN if missing
    students: tuple[str, ...]
    skills: tuple[str, ...]
    items: tuple[str, ...]
    item_skill: np.ndarray  # skill index of each item
    n_pairs: int


def step_data(df: pd.DataFrame, item_tertile: np.ndarray | None = None) -> StepData:
    """Index ``df`` (an interactions frame with ``skill_id``) and count earlier practice.

    ``item_tertile`` (one entry 0/1/2 per item, in the order of ``StepData.items``, which is
    sorted) splits the counts by the tertile of the practised item; without it every count
    lands in tertile 1.
    """
    need = {"user_id", "item_id", "skill_id", "correct", "order"}
    missing = sorted(need - set(df.columns))
    if missing:
        raise ValueError(f"expected columns {sorted(need)}; missing {missing}")
    df = df.sort_values(["user_id", "order"], kind="stable", ignore_index=True)
    s_codes, students = pd.factorize(df["user_id"].astype(str), sort=True)
    k_codes, skills = pd.factorize(df["skill_id"].astype(str), sort=True)
    i_codes, items = pd.factorize(df["item_id"].astype(str), sort=True)
    item_skill = np.zeros(len(items), dtype=np.int64)
    item_skill[i_codes] = k_codes
    n = len(df)
    succ = np.zeros((n, 3))
    fail = np.zeros((n, 3))
    lag = np.zeros(n)
    n_prior = np.zeros(n)
    pair = np.zeros(n, dtype=np.int64)
    y = df["correct"].to_numpy(dtype=float)
    tert = np.ones(len(items), dtype=np.int64) if item_tertile is None else item_tertile
    pairs: dict[tuple[int, int], int] = {}
    counts: dict[int, np.ndarray] = {}
    last: dict[int, int] = {}
    prev_student = -1
    pos = 0
    for r in range(n):
        s = int(s_codes[r])
        k = int(k_codes[r])
        if s != prev_student:
            counts = {}
            last = {}
            prev_student = s
            pos = 0
        key = (s, k)
        if key not in pairs:
            pairs[key] = len(pairs)
        pair[r] = pairs[key]
        c = counts.get(k)
        if c is None:
            c = np.zeros((2, 3))
            counts[k] = c
        succ[r] = c[0]
        fail[r] = c[1]
        n_prior[r] = c.sum()
        lag[r] = pos - last[k] - 1 if k in last else 0.0
        c[0 if y[r] > 0.5 else 1, tert[i_codes[r]]] += 1.0
        last[k] = pos
        pos += 1
    rt = df["rt_seconds"].to_numpy(dtype=float) if "rt_seconds" in df else np.full(n, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_rt = np.where(rt > 0, np.log(rt), np.nan)
    return StepData(
        student=s_codes.astype(np.int64),
        pair=pair,
        skill=k_codes.astype(np.int64),
        item=i_codes.astype(np.int64),
        correct=y,
        successes=succ,
        failures=fail,
        lag=lag,
        n_prior=n_prior,
        log_rt=log_rt,
        students=tuple(str(x) for x in students),
        skills=tuple(str(x) for x in skills),
        items=tuple(str(x) for x in items),
        item_skill=item_skill,
        n_pairs=len(pairs),
    )


def _learning_features(data: StepData, per_tertile: bool) -> tuple[np.ndarray, np.ndarray]:
    if per_tertile:
        return np.log1p(data.successes), np.log1p(data.failures)
    return (
        np.log1p(data.successes.sum(axis=1, keepdims=True)),
        np.log1p(data.failures.sum(axis=1, keepdims=True)),
    )


# --------------------------------------------------------------------------------------------
# Accuracy: penalised maximum likelihood with empirical-Bayes variances
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AccuracyFit:
    """The fitted accuracy model (see the module docstring for the equation)."""

    theta: np.ndarray
    u: np.ndarray
    beta: np.ndarray
    delta: np.ndarray
    gamma: np.ndarray  # learning per success, one per tertile (or one)
    rho: np.ndarray  # learning per failure
    phi: float  # forgetting exponent of (1 + lag)
    sigma_theta: float
    sigma_u: float
    sigma_delta: float
    log_likelihood: float
    n_params: int
    per_tertile: bool
    bic: float  # -2 log L + (population parameters) log(n); random effects are penalised


def _pack(parts: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.atleast_1d(p).astype(float) for p in parts])


def _accuracy_eta(
    data: StepData, xs: np.ndarray, xf: np.ndarray, ell: np.ndarray, parts: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The log-odds of every step, the forgetting factor and the learned part."""
    th, u, be, de, ga, rh, ph = parts
    g = np.exp(-ph[0] * ell)
    learn = xs @ ga + xf @ rh
    eta = th[data.student] + u[data.pair] + be[data.skill] - de[data.item] + g * learn
    return eta, g, learn


def _accuracy_objective(
    data: StepData,
    xs: np.ndarray,
    xf: np.ndarray,
    ell: np.ndarray,
    cuts: np.ndarray,
    var: dict[str, float],
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """Penalised negative log-likelihood and its gradient; ``var`` holds the prior variances
    (read at each call, so empirical-Bayes rounds can change them)."""
    ridge_learn = 1.0  # N(0, 1) prior on learning rates: weak on the logit scale
    y = data.correct
    sizes = [len(data.students), data.n_pairs, len(data.skills), len(data.items)]

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        parts = np.split(x, cuts)
        th, u, _be, de, ga, rh, _ph = parts
        eta, g, learn = _accuracy_eta(data, xs, xf, ell, parts)
        nll = float(np.sum(np.logaddexp(0.0, eta) - y * eta))
        r = 1.0 / (1.0 + np.exp(-eta)) - y
        pen = (
            0.5 * float(th @ th) / var["theta"]
            + 0.5 * float(u @ u) / var["u"]
            + 0.5 * float(de @ de) / var["delta"]
            + 0.5 * (float(ga @ ga) + float(rh @ rh)) / ridge_learn
        )
        rg = r * g
        grad = _pack(
            [
                np.bincount(data.student, r, sizes[0]) + th / var["theta"],
                np.bincount(data.pair, r, sizes[1]) + u / var["u"],
                np.bincount(data.skill, r, sizes[2]),
                -np.bincount(data.item, r, sizes[3]) + de / var["delta"],
                xs.T @ rg + ga / ridge_learn,
                xf.T @ rg + rh / ridge_learn,
                [float(np.sum(-rg * learn * ell))],
            ]
        )
        return nll + pen, grad

    return objective


def _update_variances(
    data: StepData, parts: list[np.ndarray], eta: np.ndarray, var: dict[str, float]
) -> None:
    """Empirical Bayes: prior variance = mean of (posterior mean^2 + posterior variance), the
    posterior variance from the diagonal of the Hessian (Laplace approximation)."""
    th, u, _be, de, *_ = parts
    p = 1.0 / (1.0 + np.exp(-eta))
    w = p * (1.0 - p)
    for name, vals, idx, size in (
        ("theta", th, data.student, len(data.students)),
        ("u", u, data.pair, data.n_pairs),
        ("delta", de, data.item, len(data.items)),
    ):
        post_var = 1.0 / (np.bincount(idx, w, size) + 1.0 / var[name])
        var[name] = float(max(np.mean(vals**2 + post_var), 1e-4))


def fit_accuracy(
    data: StepData,
    *,
    per_tertile: bool,
    phi: float | None = None,
    max_iter: int = 500,
    eb_rounds: int = _EB_ROUNDS,
) -> AccuracyFit:
    """Fit the accuracy model on ``data`` (penalised ML, L-BFGS-B, empirical-Bayes rounds);
    ``phi`` given: the forgetting exponent is fixed at that value."""
    xs, xf = _learning_features(data, per_tertile)
    n_l = xs.shape[1]
    sizes = [len(data.students), data.n_pairs, len(data.skills), len(data.items), n_l, n_l, 1]
    cuts = np.cumsum(sizes)[:-1]
    ell = np.log1p(data.lag)
    y = data.correct
    var = {"theta": 1.0, "u": 0.25, "delta": 1.0}
    x = np.zeros(sum(sizes))
    x[cuts[1] : cuts[2]] = float(np.log((y.mean() + 1e-3) / (1 - y.mean() + 1e-3)))
    x[-1] = 0.1 if phi is None else phi
    bounds = [(None, None)] * (len(x) - 1) + [(0.0, 5.0) if phi is None else (phi, phi)]
    objective = _accuracy_objective(data, xs, xf, ell, cuts, var)
    for _ in range(max(1, eb_rounds)):
        res = optimize.minimize(
            objective, x, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": max_iter}
        )
        x = res.x
        eta, _, _ = _accuracy_eta(data, xs, xf, ell, np.split(x, cuts))
        _update_variances(data, np.split(x, cuts), eta, var)
    th, u, be, de, ga, rh, ph = np.split(x, cuts)
    eta, _, _ = _accuracy_eta(data, xs, xf, ell, np.split(x, cuts))
    log_lik = -float(np.sum(np.logaddexp(0.0, eta) - y * eta))
    # Population parameters (skills, learning, forgetting, three variances) for the BIC; the
    # random effects are integrated out by the penalty, so they are not counted.
    n_params = len(data.skills) + 2 * n_l + 1 + 3
    return AccuracyFit(
        theta=th,
        u=u,
        beta=be,
        delta=de,
        gamma=ga.copy(),
        rho=rh.copy(),
        phi=float(ph[0]),
        sigma_theta=math.sqrt(var["theta"]),
        sigma_u=math.sqrt(var["u"]),
        sigma_delta=math.sqrt(var["delta"]),
        log_likelihood=log_lik,
        n_params=n_params,
        per_tertile=per_tertile,
        bic=-2.0 * log_lik + n_params * math.log(len(y)),
    )


# --------------------------------------------------------------------------------------------
# Speed: penalised least squares on log times
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SpeedFit:
    """The fitted log-normal speed model (see the module docstring)."""

    mu: np.ndarray  # per skill, log seconds
    iota: np.ndarray  # per item, deviation from its skill
    tau: np.ndarray  # per student (higher = faster)
    v: np.ndarray  # per (student, skill) pair
    kappa: float  # practice speed-up per log(1 + earlier attempts)
    sigma: float  # residual sd of log time
    sigma_tau: float
    sigma_v: float
    sigma_iota: float


def fit_speed(data: StepData, *, eb_rounds: int = _EB_ROUNDS) -> SpeedFit:
    """Fit the speed model on the steps of ``data`` with a time (penalised least squares)."""
    ok = np.isfinite(data.log_rt)
    if ok.sum() < 10:
        raise ValueError("the speed model needs at least 10 steps with a time (rt_seconds)")
    z = data.log_rt[ok]
    st, pr, sk, it = data.student[ok], data.pair[ok], data.skill[ok], data.item[ok]
    lp = np.log1p(data.n_prior[ok])
    n_s, n_p, n_k, n_i = len(data.students), data.n_pairs, len(data.skills), len(data.items)
    sizes = [n_k, n_i, n_s, n_p, 1]
    cuts = np.cumsum(sizes)[:-1]
    var = {"tau": 0.25, "v": 0.1, "iota": 0.5, "eps": float(np.var(z))}

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        mu, io, ta, v, ka = np.split(x, cuts)
        pred = mu[sk] + io[it] - ta[st] - v[pr] - ka[0] * lp
        r = (pred - z) / var["eps"]
        loss = 0.5 * float(np.sum((pred - z) ** 2)) / var["eps"]
        loss += 0.5 * (
            float(io @ io) / var["iota"] + float(ta @ ta) / var["tau"] + float(v @ v) / var["v"]
        )
        grad = _pack(
            [
                np.bincount(sk, r, n_k),
                np.bincount(it, r, n_i) + io / var["iota"],
                -np.bincount(st, r, n_s) + ta / var["tau"],
                -np.bincount(pr, r, n_p) + v / var["v"],
                [float(-np.sum(r * lp))],
            ]
        )
        return loss, grad

    x = np.zeros(sum(sizes))
    x[:n_k] = float(np.mean(z))
    for _ in range(max(1, eb_rounds)):
        x = optimize.minimize(objective, x, jac=True, method="L-BFGS-B", options={"maxiter": 500}).x
        mu, io, ta, v, ka = np.split(x, cuts)
        res = z - (mu[sk] + io[it] - ta[st] - v[pr] - ka[0] * lp)
        prec = 1.0 / var["eps"]
        for name, vals, idx, size in (
            ("tau", ta, st, n_s),
            ("v", v, pr, n_p),
            ("iota", io, it, n_i),
        ):
            post_var = 1.0 / (np.bincount(idx, minlength=size) * prec + 1.0 / var[name])
            var[name] = float(max(np.mean(vals**2 + post_var), 1e-4))
        var["eps"] = float(np.mean(res**2))
    mu, io, ta, v, ka = np.split(x, cuts)
    return SpeedFit(
        mu=mu,
        iota=io,
        tau=ta,
        v=v,
        kappa=float(ka[0]),
        sigma=math.sqrt(var["eps"]),
        sigma_tau=math.sqrt(var["tau"]),
        sigma_v=math.sqrt(var["v"]),
        sigma_iota=math.sqrt(var["iota"]),
    )


# --------------------------------------------------------------------------------------------
# The generative model
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GenerativeModel:
    """The truth of the simulation, fitted on real data by :func:`fit_generative`.

    Items are grouped per skill into three cells by tertile of difficulty (``delta``):
    ``cell_delta[k][d]`` and ``cell_log_time[k][d]`` hold the difficulties and log-second
    intensities (``mu_k + iota_i``, tutor scale) of skill ``k``'s items in tertile ``d``.
    """

    skills: tuple[str, ...]
    beta: np.ndarray
    cell_delta: tuple[tuple[np.ndarray, ...], ...]
    cell_log_time: tuple[tuple[np.ndarray, ...], ...]
    gamma: np.ndarray
    rho: np.ndarray
    per_tertile: bool
    phi: float
    kappa: float
    sigma_theta: float
    sigma_u: float
    sigma_tau: float
    sigma_v: float
    corr_theta_tau: float
    sigma_time: float
    time_scale: float = TIME_SCALE
    attempts_per_day: float = 8.0
    diagnostics: dict[str, Any] = field(default_factory=dict)

    def learning(self, successes: np.ndarray, failures: np.ndarray) -> float:
        """The learned log-odds ``L`` of one (student, skill) from its counts per tertile."""
        if self.per_tertile:
            return float(self.gamma @ np.log1p(successes) + self.rho @ np.log1p(failures))
        return float(
            self.gamma[0] * math.log1p(successes.sum()) + self.rho[0] * math.log1p(failures.sum())
        )


def _tertiles(values: np.ndarray) -> np.ndarray:
    """0/1/2 by rank within ``values`` (equal-sized thirds, ties broken by position)."""
    ranks = np.argsort(np.argsort(values, kind="stable"), kind="stable")
    return np.minimum((3 * ranks) // max(len(values), 1), 2).astype(np.int64)


def fit_forgetting(
    df: pd.DataFrame, *, learners: int = 400, seed: int = 0, eb_rounds: int = 1
) -> AccuracyFit:
    """Fit the accuracy model at skill level on a sample of ``learners`` of ``df``.

    Used on ASSISTments 2009 for the forgetting exponent ``phi``: its lags reach hundreds of
    attempts, where the tutor data's 99th percentile is 10 (too short to see forgetting).
    Items are collapsed to their skill (17,708 problems with about 16 answers each would
    slow the fit and add nothing to ``phi``).
    """
    users = np.sort(df["user_id"].astype(str).unique())
    rng = np.random.default_rng(seed)
    chosen = rng.choice(users, size=min(learners, len(users)), replace=False)
    sub = df[df["user_id"].astype(str).isin(set(chosen))]
    sub = sub.assign(item_id=sub["skill_id"])
    return fit_accuracy(step_data(sub), per_tertile=False, eb_rounds=eb_rounds, max_iter=300)


def _forgetting_exponent(
    forgetting: pd.DataFrame | float | None, learners: int, diagnostics: dict[str, Any]
) -> float:
    """phi: given, or fitted at skill level on ``forgetting`` (default ``assistments09``)."""
    from smartstudy.data.loaders import load_dataset

    if isinstance(forgetting, float | int):
        diagnostics["phi_source"] = "given"
        return float(forgetting)
    frame = load_dataset("assistments09") if forgetting is None else forgetting
    forget_fit = fit_forgetting(frame, learners=learners)
    diagnostics["phi_source"] = (
        f"assistments09, skill level, {learners} learners" if forgetting is None else "given frame"
    )
    diagnostics["phi_fit"] = {
        "phi": forget_fit.phi,
        "gamma": float(forget_fit.gamma[0]),
        "rho": float(forget_fit.rho[0]),
    }
    return forget_fit.phi


def _item_tertiles(steps: pd.DataFrame, diagnostics: dict[str, Any]) -> np.ndarray:
    """Each item's difficulty tertile within its skill, from a first fit with one learning
    rate (phi free: the tutor's own view)."""
    first = step_data(steps)
    n_items = np.bincount(first.item_skill, minlength=len(first.skills))
    if (n_items < 3).any():
        few = [first.skills[k] for k in np.flatnonzero(n_items < 3)]
        raise ValueError(f"every skill needs at least 3 items (one per tertile); too few: {few}")
    if len(first.skills) < N_TOPICS:
        raise ValueError(f"need at least {N_TOPICS} skills, got {len(first.skills)}")
    common = fit_accuracy(first, per_tertile=False)
    diagnostics["phi_in_steps"] = common.phi
    tert = np.zeros(len(first.items), dtype=np.int64)
    for k in range(len(first.skills)):
        idx = np.flatnonzero(first.item_skill == k)
        tert[idx] = _tertiles(common.delta[idx])
    return tert


def _cells(
    data: StepData, tert: np.ndarray, acc: AccuracyFit, speed: SpeedFit
) -> tuple[list[tuple[np.ndarray, ...]], list[tuple[np.ndarray, ...]]]:
    """Per skill and tertile: the items' difficulties and log times."""
    cell_delta = []
    cell_time = []
    for k in range(len(data.skills)):
        idx = np.flatnonzero(data.item_skill == k)
        cell_delta.append(tuple(acc.delta[idx[tert[idx] == d]] for d in range(3)))
        cell_time.append(tuple(speed.mu[k] + speed.iota[idx[tert[idx] == d]] for d in range(3)))
    return cell_delta, cell_time


def fit_generative(
    steps: pd.DataFrame | None = None,
    forgetting: pd.DataFrame | float | None = None,
    *,
    forgetting_learners: int = 400,
    per_tertile: bool | None = None,
    daily_minutes: int = DAILY_MINUTES,
) -> GenerativeModel:
    """Fit the generative model (module docstring): accuracy and speed on ``steps``
    (default: the ``cognitive_tutor`` data set), the forgetting exponent on ``forgetting``
    (default: ``assistments09``; a float fixes it). ``per_tertile=None`` picks one learning
    rate or one per difficulty tertile by BIC."""
    from smartstudy.data.loaders import load_dataset

    started = time.perf_counter()
    if steps is None:
        steps = load_dataset(DATASET)
    diagnostics: dict[str, Any] = {"steps": len(steps)}
    phi = _forgetting_exponent(forgetting, forgetting_learners, diagnostics)
    tert = _item_tertiles(steps, diagnostics)
    data = step_data(steps, tert)
    fits = {
        flag: fit_accuracy(data, per_tertile=flag, phi=phi)
        for flag in ((False, True) if per_tertile is None else (per_tertile,))
    }
    diagnostics["bic"] = {("per_tertile" if k else "common"): v.bic for k, v in fits.items()}
    acc = min(fits.values(), key=lambda f: f.bic)
    speed = fit_speed(data)
    th_s = acc.theta
    corr = float(np.corrcoef(th_s, speed.tau)[0, 1]) if len(th_s) > 2 else 0.0
    rt = steps["rt_seconds"].to_numpy(dtype=float) if "rt_seconds" in steps else np.array([])
    rt = rt[np.isfinite(rt) & (rt > 0)]
    median_step = float(np.median(rt)) if len(rt) else float(np.exp(np.mean(speed.mu)))
    attempts_per_day = daily_minutes * 60.0 / (TIME_SCALE * median_step)
    cell_delta, cell_time = _cells(data, tert, acc, speed)
    diagnostics.update(
        {
            "per_tertile": acc.per_tertile,
            "log_likelihood": acc.log_likelihood,
            "median_step_seconds": median_step,
            "fit_seconds": time.perf_counter() - started,
        }
    )
    return GenerativeModel(
        skills=data.skills,
        beta=acc.beta.copy(),
        cell_delta=tuple(cell_delta),
        cell_log_time=tuple(cell_time),
        gamma=acc.gamma.copy(),
        rho=acc.rho.copy(),
        per_tertile=acc.per_tertile,
        phi=phi,
        kappa=speed.kappa,
        sigma_theta=acc.sigma_theta,
        sigma_u=acc.sigma_u,
        sigma_tau=speed.sigma_tau,
        sigma_v=speed.sigma_v,
        corr_theta_tau=corr,
        sigma_time=speed.sigma,
        attempts_per_day=attempts_per_day,
        diagnostics=diagnostics,
    )


def simulate_steps(
    model: GenerativeModel, n_students: int, n_attempts: int, *, seed: int = 0
) -> pd.DataFrame:
    """Tutor-like steps drawn from ``model`` (random skills, items and interleaving).

    For recovery tests: each student answers ``n_attempts`` steps on skills drawn at random
    (with runs: the next step stays on the same skill with probability 0.6), items drawn at
    random within the skill. Columns as the loaders'; ``rt_seconds`` on the tutor's scale.
    """
    rng = np.random.default_rng(seed)
    rows = []
    n_k = len(model.skills)
    cov = [
        [model.sigma_theta**2, model.corr_theta_tau * model.sigma_theta * model.sigma_tau],
        [model.corr_theta_tau * model.sigma_theta * model.sigma_tau, model.sigma_tau**2],
    ]
    for s in range(n_students):
        theta, tau = rng.multivariate_normal([0.0, 0.0], cov)
        u = rng.normal(0.0, model.sigma_u, n_k)
        v = rng.normal(0.0, model.sigma_v, n_k)
        counts = np.zeros((n_k, 2, 3))
        last = np.full(n_k, -1)
        k = int(rng.integers(n_k))
        for pos in range(n_attempts):
            if pos and rng.random() > 0.6:
                k = int(rng.integers(n_k))
            d = int(rng.integers(3))
            cell = model.cell_delta[k][d]
            j = int(rng.integers(len(cell)))
            lag = pos - last[k] - 1 if last[k] >= 0 else 0
            g = (1.0 + lag) ** -model.phi
            eta = theta + u[k] + model.beta[k] - cell[j] + g * model.learning(*counts[k])
            y = int(rng.random() < 1.0 / (1.0 + math.exp(-eta)))
            n_prior = counts[k].sum()
            log_t = (
                model.cell_log_time[k][d][j]
                - tau
                - v[k]
                - model.kappa * math.log1p(n_prior)
                + rng.normal(0.0, model.sigma_time)
            )
            rows.append(
                (
                    f"s{s:04d}",
                    f"{model.skills[k]}|{d}|{j}",
                    model.skills[k],
                    y,
                    math.exp(log_t),
                    pos + 1,
                )
            )
            counts[k, 0 if y else 1, d] += 1
            last[k] = pos
    return pd.DataFrame(
        rows, columns=["user_id", "item_id", "skill_id", "correct", "rt_seconds", "order"]
    )


# --------------------------------------------------------------------------------------------
# Simulated learners (the truth)
# --------------------------------------------------------------------------------------------
class _Learner:
    """One simulated learner's true state on its topics (copied for each policy)."""

    def __init__(self, model: GenerativeModel, rng: np.random.Generator) -> None:
        self.model = model
        self.topics = np.sort(rng.choice(len(model.skills), size=N_TOPICS, replace=False))
        self.weights = rng.dirichlet(np.full(N_TOPICS, 2.0))
        cross = model.corr_theta_tau * model.sigma_theta * model.sigma_tau
        cov = [[model.sigma_theta**2, cross], [cross, model.sigma_tau**2]]
        theta, tau = rng.multivariate_normal([0.0, 0.0], cov)
        self.base = theta + rng.normal(0.0, model.sigma_u, N_TOPICS) + model.beta[self.topics]
        self.tau = tau - rng.normal(0.0, model.sigma_v, N_TOPICS)  # speed per topic
        self.counts = np.zeros((N_TOPICS, 2, 3))
        self.learned = np.zeros(N_TOPICS)
        self.last = np.full(N_TOPICS, np.nan)
        medium = [model.cell_delta[k][MEDIUM] for k in self.topics]
        self._medium_delta = np.concatenate(medium)
        self._medium_topic = np.repeat(np.arange(N_TOPICS), [len(m) for m in medium])
        self._medium_count = np.array([len(m) for m in medium], dtype=float)

    def copy(self) -> _Learner:
        other = object.__new__(_Learner)
        other.__dict__.update(self.__dict__)
        other.counts = self.counts.copy()
        other.learned = self.learned.copy()
        other.last = self.last.copy()
        return other

    def _fade(self, t: int, clock: float) -> float:
        if math.isnan(self.last[t]):
            return 1.0
        lag = max(clock - self.last[t] - 1.0, 0.0)
        return (1.0 + lag) ** -self.model.phi

    def readiness(self, clock: float) -> np.ndarray:
        """True P(correct) per topic at the medium (exam) difficulty at ``clock``: the mean
        over the topic's medium items."""
        lag = np.maximum(clock - self.last - 1.0, 0.0)
        fade = np.where(np.isnan(self.last), 1.0, (1.0 + np.nan_to_num(lag)) ** -self.model.phi)
        shift = self.base + fade * self.learned
        p = 1.0 / (1.0 + np.exp(self._medium_delta - shift[self._medium_topic]))
        return np.bincount(self._medium_topic, p, N_TOPICS) / self._medium_count

    def attempt(self, t: int, d: int, clock: float, rng: np.random.Generator) -> tuple[int, float]:
        """Answer one task of topic ``t`` at difficulty ``d``: (correct, seconds)."""
        m = self.model
        k = int(self.topics[t])
        cell = m.cell_delta[k][d]
        j = int(rng.integers(len(cell)))
        eta = self.base[t] - cell[j] + self._fade(t, clock) * self.learned[t]
        y = int(rng.random() < 1.0 / (1.0 + math.exp(-eta)))
        log_t = (
            m.cell_log_time[k][d][j]
            - self.tau[t]
            - m.kappa * math.log1p(self.counts[t].sum())
            + m.sigma_time * rng.standard_normal()
        )
        self.counts[t, 0 if y else 1, d] += 1.0
        self.learned[t] = m.learning(self.counts[t, 0], self.counts[t, 1])
        self.last[t] = clock
        return y, m.time_scale * math.exp(log_t)


def _clock(model: GenerativeModel, day: int, minutes: float, daily_minutes: float) -> float:
    """Lag clock in attempts: a day is ``attempts_per_day`` attempts; within a day the clock
    moves with the minutes studied (a full daily budget is a full day)."""
    return model.attempts_per_day * (day + min(minutes / daily_minutes, 1.0))


# --------------------------------------------------------------------------------------------
# The estimator every policy sees
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EstimatorPrior:
    """Population prior of the online estimator, fitted on a separate training cohort.

    Success: per topic a Gaussian belief N(m, v) over the log-odds at medium, with offsets
    ``offsets[d]`` for easy / medium / hard (a random-intercept logistic model fitted by
    Gauss-Hermite marginal likelihood), updated after each answer by the Laplace (online
    Bayesian logistic) step, with ``drift`` added to ``v`` before each answer so the belief
    can follow learning (``drift`` picked on the cohort by one-step-ahead log-likelihood).
    Time: log seconds = ``log_time[d]`` + a per-topic offset shrunk with ``time_k0`` pseudo
    tasks. Mastery (for lowest-mastery-first and the plan's TopicState): BKT with one
    parameter set fitted by EM on the cohort's per-topic sequences.
    """

    offsets: tuple[float, float, float]
    mean: float
    var: float
    drift: float
    log_time: tuple[float, float, float]
    time_sd: float
    time_k0: float
    bkt: tuple[float, float, float, float]  # l0, t, s, g


class _Estimate:
    """The online estimates of one learner (what every policy sees)."""

    def __init__(self, prior: EstimatorPrior) -> None:
        self.prior = prior
        self.m = np.full(N_TOPICS, prior.mean)
        self.v = np.full(N_TOPICS, prior.var)
        self.t_sum = np.zeros(N_TOPICS)
        self.t_n = np.zeros(N_TOPICS)
        self.mastery = np.full(N_TOPICS, prior.bkt[0])
        self.recent: list[deque[int]] = [deque(maxlen=10) for _ in range(N_TOPICS)]
        self.n_tasks = np.zeros(N_TOPICS, dtype=np.int64)
        self.last = np.full(N_TOPICS, np.nan)

    def copy(self) -> _Estimate:
        other = object.__new__(_Estimate)
        other.prior = self.prior
        for name in ("m", "v", "t_sum", "t_n", "mastery", "n_tasks", "last"):
            setattr(other, name, getattr(self, name).copy())
        other.recent = [deque(r, maxlen=10) for r in self.recent]
        return other

    def p(self, t: int, d: int) -> float:
        """Predicted success (probit approximation of the Gaussian-logistic mean)."""
        x = (self.m[t] + self.prior.offsets[d]) / math.sqrt(1.0 + math.pi * self.v[t] / 8.0)
        return 1.0 / (1.0 + math.exp(-x))

    def p_all(self) -> np.ndarray:
        off = np.asarray(self.prior.offsets)
        x = (self.m[:, None] + off[None, :]) / np.sqrt(1.0 + np.pi * self.v[:, None] / 8.0)
        return 1.0 / (1.0 + np.exp(-x))

    def times(self, t: int, d: int) -> tuple[float, float, float]:
        """Predicted (median, p10, p90) seconds."""
        pr = self.prior
        n = self.t_n[t]
        offset = self.t_sum[t] / (n + pr.time_k0)
        sd = pr.time_sd * math.sqrt(1.0 + 1.0 / (n + pr.time_k0))
        mid = pr.log_time[d] + offset
        return math.exp(mid), math.exp(mid - _Z90 * sd), math.exp(mid + _Z90 * sd)

    def observe(self, t: int, d: int, y: int, seconds: float, clock: float) -> None:
        pr = self.prior
        v = self.v[t] + pr.drift
        p = 1.0 / (1.0 + math.exp(-(self.m[t] + pr.offsets[d])))
        v_new = 1.0 / (1.0 / v + p * (1.0 - p))
        self.m[t] += v_new * (y - p)
        self.v[t] = v_new
        self.t_sum[t] += math.log(seconds) - pr.log_time[d]
        self.t_n[t] += 1.0
        _l0, tr, s, g = pr.bkt
        m = self.mastery[t]
        post = (
            m * (1 - s) / (m * (1 - s) + (1 - m) * g) if y else m * s / (m * s + (1 - m) * (1 - g))
        )
        self.mastery[t] = post + (1.0 - post) * tr
        self.recent[t].append(int(y))
        self.n_tasks[t] += 1
        self.last[t] = clock


def _random_intercept_logit(
    group: np.ndarray, d: np.ndarray, y: np.ndarray
) -> tuple[tuple[float, float, float], float, float]:
    """Offsets per difficulty (medium = 0), mean and variance of the per-(learner, topic)
    log-odds at medium: marginal ML with 24-point Gauss-Hermite quadrature."""
    nodes, w = np.polynomial.hermite_e.hermegauss(24)
    logw = np.log(w / np.sqrt(2.0 * np.pi))
    n_g = int(group.max()) + 1

    def nll(x: np.ndarray) -> float:
        mean, c_easy, c_hard, log_sd = x
        off = np.array([c_easy, 0.0, c_hard])[d]
        eta = mean + off[:, None] + np.exp(log_sd) * nodes[None, :]
        ll = y[:, None] * eta - np.logaddexp(0.0, eta)
        per_group = np.zeros((n_g, len(nodes)))
        np.add.at(per_group, group, ll)
        return -float(np.sum(_logsumexp_rows(per_group + logw[None, :])))

    res = optimize.minimize(
        nll,
        np.array([0.0, 1.0, -1.0, 0.0]),
        method="Nelder-Mead",
        options={"xatol": 1e-4, "fatol": 1e-4, "maxiter": 2000},
    )
    mean, c_easy, c_hard, log_sd = res.x
    return (float(c_easy), 0.0, float(c_hard)), float(mean), float(np.exp(2 * log_sd))


def _logsumexp_rows(a: np.ndarray) -> np.ndarray:
    top = a.max(axis=1, keepdims=True)
    return (top + np.log(np.exp(a - top).sum(axis=1, keepdims=True)))[:, 0]


def _pre_history(
    model: GenerativeModel,
    learner: _Learner,
    n_tasks: int,
    days: int,
    rng: np.random.Generator,
    estimate: _Estimate | None = None,
    log: list[tuple[int, int, int, float]] | None = None,
) -> None:
    """``n_tasks`` random tasks on random days of the ``days`` before day 0."""
    when = np.sort(rng.integers(-days, 0, size=n_tasks))
    minutes = 0.0
    previous = None
    for day in when:
        if day != previous:
            minutes, previous = 0.0, day
        t, d = int(rng.integers(N_TOPICS)), int(rng.integers(3))
        clock = _clock(model, int(day), minutes, DAILY_MINUTES)
        y, seconds = learner.attempt(t, d, clock, rng)
        minutes += seconds / 60.0
        if estimate is not None:
            estimate.observe(t, d, y, seconds, clock)
        if log is not None:
            log.append((t, d, y, seconds))


def fit_estimator_prior(
    model: GenerativeModel,
    *,
    learners: int = TRAIN_LEARNERS,
    tasks: int = TRAIN_TASKS,
    seed: int = 0,
) -> EstimatorPrior:
    """Fit the estimator's population prior on a training cohort of simulated learners that
    is separate from the study's (its own seed stream); each does ``tasks`` random tasks."""
    from smartstudy.models.bkt import fit_em

    rng = np.random.default_rng([seed, 7919])
    group, diff, ys, secs, seqs = [], [], [], [], []
    logs = []
    for i in range(learners):
        learner = _Learner(model, rng)
        log: list[tuple[int, int, int, float]] = []
        _pre_history(model, learner, tasks, EXAM_DAYS, rng, log=log)
        logs.append(log)
        per_topic: list[list[int]] = [[] for _ in range(N_TOPICS)]
        for t, d, y, s in log:
            group.append(i * N_TOPICS + t)
            diff.append(d)
            ys.append(y)
            secs.append(math.log(s))
            per_topic[t].append(y)
        seqs.extend(s for s in per_topic if s)
    g_arr = np.unique(np.asarray(group), return_inverse=True)[1]
    d_arr, y_arr, lt = np.asarray(diff), np.asarray(ys, dtype=float), np.asarray(secs)
    offsets, mean, var = _random_intercept_logit(g_arr, d_arr, y_arr)
    log_time = tuple(float(np.mean(lt[d_arr == d])) for d in range(3))
    resid = lt - np.asarray(log_time)[d_arr]
    sums = np.bincount(g_arr, resid)
    ns = np.bincount(g_arr).astype(float)
    within = float(np.sum((resid - (sums / ns)[g_arr]) ** 2) / max(len(resid) - len(ns), 1))
    between = max(float(np.var(sums / ns)) - within * float(np.mean(1.0 / ns)), 1e-3)
    bkt = fit_em(seqs, seed=seed).params
    prior = EstimatorPrior(
        offsets=offsets,
        mean=mean,
        var=var,
        drift=0.0,
        log_time=log_time,  # type: ignore[arg-type]
        time_sd=math.sqrt(within),
        time_k0=within / between,
        bkt=(bkt.l0, bkt.t, bkt.s, bkt.g),
    )
    best = None
    for drift in (0.0, 0.01, 0.03, 0.1, 0.3):
        candidate = EstimatorPrior(**{**prior.__dict__, "drift": drift})
        ll = 0.0
        for log in logs:
            est = _Estimate(candidate)
            for t, d, y, s in log:
                p = min(max(est.p(t, d), 1e-6), 1 - 1e-6)
                ll += math.log(p if y else 1.0 - p)
                est.observe(t, d, y, s, 0.0)
        if best is None or ll > best[0]:
            best = (ll, candidate)
    assert best is not None
    return best[1]


# --------------------------------------------------------------------------------------------
# Policies
# --------------------------------------------------------------------------------------------
Choice = tuple[int, int]


class _Policy:
    name = ""

    def start_day(self, day: int) -> None:
        """Called before each study day."""

    def next_task(self, est: _Estimate, day: int, used: float) -> Choice | None:
        raise NotImplementedError


class _Random(_Policy):
    name = "random"

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def next_task(self, est: _Estimate, day: int, used: float) -> Choice | None:
        return int(self.rng.integers(N_TOPICS)), int(self.rng.integers(3))


class _LowestMastery(_Policy):
    """OATutor's rule: the topic with the lowest estimated (BKT) mastery, at medium."""

    name = "lowest_mastery"

    def next_task(self, est: _Estimate, day: int, used: float) -> Choice | None:
        return int(np.argmin(est.mastery)), MEDIUM


class _Easiest(_Policy):
    name = "easiest"

    def next_task(self, est: _Estimate, day: int, used: float) -> Choice | None:
        t, d = np.unravel_index(int(np.argmax(est.p_all())), (N_TOPICS, 3))
        return int(t), int(d)


class _Hardest(_Policy):
    name = "hardest"

    def next_task(self, est: _Estimate, day: int, used: float) -> Choice | None:
        t, d = np.unravel_index(int(np.argmin(est.p_all())), (N_TOPICS, 3))
        return int(t), int(d)


Planner = Callable[..., Any]


class _Plan(_Policy):
    """``build_plan`` on the current estimates at the start of each day; its tasks for today
    in order. When they run out with budget left (tasks were quicker than predicted), the
    day is re-planned with the minutes done so far, as the app does after a completion."""

    name = "plan"

    def __init__(
        self,
        planner: Planner,
        learner: _Learner,
        model: GenerativeModel,
        daily_minutes: int,
        days: int = EXAM_DAYS,
    ) -> None:
        from smartstudy import planning

        self.planning = planning
        self.planner = planner
        self.names = [model.skills[k] for k in learner.topics]
        self.weights = learner.weights
        self.model = model
        self.exam = planning.ExamSpec(
            exam_date=START_DATE + timedelta(days=days),
            daily_minutes=daily_minutes,
            target=TARGET,
            exam_difficulty="medium",
        )
        self.queue: deque[Choice] = deque()
        self.replans = 0

    def start_day(self, day: int) -> None:
        self.queue.clear()

    def _state(self, est: _Estimate, day: int, used: float) -> tuple[list[Any], list[Any]]:
        pl = self.planning
        now = _clock(self.model, day, used, self.exam.daily_minutes)
        topics = []
        forecasts = []
        for t in range(N_TOPICS):
            recent = est.recent[t]
            n = int(est.n_tasks[t])
            topics.append(
                pl.TopicState(
                    topic_id=f"t{t}",
                    name=self.names[t],
                    weight=float(self.weights[t]),
                    mastery=float(est.mastery[t]) if n else None,
                    recent_correct=int(sum(recent)),
                    recent_total=len(recent),
                    n_tasks=n,
                    days_since_practice=(
                        None
                        if math.isnan(est.last[t])
                        else (now - est.last[t]) / self.model.attempts_per_day
                    ),
                )
            )
            for d in range(3):
                med, p10, p90 = est.times(t, d)
                forecasts.append(
                    pl.CellForecast(
                        topic_id=f"t{t}",
                        difficulty=DIFFICULTY_NAMES[d],
                        p_correct=est.p(t, d),
                        time_median_s=med,
                        time_p10_s=p10,
                        time_p90_s=p90,
                    )
                )
        return topics, forecasts

    def next_task(self, est: _Estimate, day: int, used: float) -> Choice | None:
        if not self.queue:
            topics, forecasts = self._state(est, day, used)
            today = START_DATE + timedelta(days=day)
            plan = self.planner(
                topics, forecasts, self.exam, today, minutes_done_today=used, workload=False
            )
            self.replans += 1
            first = plan.days[0] if plan.days else None
            if first is None or first.day != today:
                return None
            for task in first.tasks:
                self.queue.append((int(task.topic_id[1:]), DIFFICULTY_NAMES.index(task.difficulty)))
            if not self.queue:
                return None
        return self.queue.popleft()


# --------------------------------------------------------------------------------------------
# The study
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LearnerOutcome:
    """One learner under one policy."""

    policy: str
    seed: int
    learner: int
    readiness: float  # weighted true readiness on the exam date
    readiness_unweighted: float  # its plain mean over the topics
    topics_at_target: float  # share of topics with true readiness >= target on the exam date
    start_readiness: float  # weighted true readiness before day 0 (the same for all policies)
    minutes_to_target: float  # inf: never reached before the exam
    minutes: float  # minutes studied in all
    tasks: int
    over_budget_days: int  # days whose minutes exceeded the budget by more than the last task


def _policy(
    name: str,
    rng: np.random.Generator,
    planner: Planner | None,
    learner: _Learner,
    model: GenerativeModel,
    daily_minutes: int,
    days: int = EXAM_DAYS,
) -> _Policy:
    if name == "plan":
        if planner is None:
            from smartstudy.planning import build_plan

            planner = build_plan
        return _Plan(planner, learner, model, daily_minutes, days)
    if name == "random":
        return _Random(rng)
    if name == "lowest_mastery":
        return _LowestMastery()
    if name == "easiest":
        return _Easiest()
    if name == "hardest":
        return _Hardest()
    raise ValueError(f"unknown policy {name!r}; choose from {', '.join(POLICIES)}")


def run_learner(
    policy: _Policy,
    learner: _Learner,
    est: _Estimate,
    model: GenerativeModel,
    rng: np.random.Generator,
    *,
    days: int = EXAM_DAYS,
    daily_minutes: int = DAILY_MINUTES,
    target: float = TARGET,
    trace: list[tuple[int, int, int, int, float, float]] | None = None,
) -> dict[str, float]:
    """Study ``days`` days under ``policy``; the same day rule for every policy: take the
    policy's next task while the minutes used plus its predicted median fit the budget (the
    first task of a day always), stop at the first that does not fit."""
    w = learner.weights
    start = float(w @ learner.readiness(_clock(model, 0, 0.0, daily_minutes)))
    reached = 0.0 if start >= target else math.inf
    total = 0.0
    n_tasks = 0
    over = 0
    for day in range(days):
        policy.start_day(day)
        used = 0.0
        n_day = 0
        last_minutes = 0.0
        while n_day < MAX_TASKS_PER_DAY:
            choice = policy.next_task(est, day, used)
            if choice is None:
                break
            t, d = choice
            predicted = est.times(t, d)[0] / 60.0
            if n_day and used + predicted > daily_minutes:
                break
            clock = _clock(model, day, used, daily_minutes)
            y, seconds = learner.attempt(t, d, clock, rng)
            est.observe(t, d, y, seconds, clock)
            if trace is not None:
                trace.append((day, t, d, y, seconds, predicted))
            last_minutes = seconds / 60.0
            used += last_minutes
            total += last_minutes
            n_day += 1
            n_tasks += 1
            if math.isinf(reached):
                # Readiness if the exam were the next morning.
                ready = float(w @ learner.readiness(_clock(model, day + 1, 0.0, daily_minutes)))
                if ready >= target:
                    reached = total
        if used - last_minutes > daily_minutes:
            over += 1
    final = learner.readiness(_clock(model, days, 0.0, daily_minutes))
    return {
        "readiness": float(w @ final),
        "readiness_unweighted": float(np.mean(final)),
        "topics_at_target": float(np.mean(final >= target)),
        "start_readiness": start,
        "minutes_to_target": reached,
        "minutes": total,
        "tasks": float(n_tasks),
        "over_budget_days": float(over),
    }


@dataclass
class PlannerStudy:
    """Every learner's outcome under every policy, and the summaries of the README."""

    outcomes: list[LearnerOutcome]
    policies: tuple[str, ...]
    seeds: tuple[int, ...]
    learners: int
    model: GenerativeModel
    priors: dict[int, EstimatorPrior]
    seconds: float
    days: int = EXAM_DAYS

    def _per_seed(self, policy: str, seed: int) -> list[LearnerOutcome]:
        return [o for o in self.outcomes if o.policy == policy and o.seed == seed]

    def seed_stats(self, policy: str, seed: int) -> dict[str, float]:
        """One policy on one seed. Minutes to target are over the learners below the target
        at the start: the median (inf when more than half never reach it) and the restricted
        mean, ``mean(min(T, cap))`` with ``cap`` = the whole budget (14 x 30 = 420 min), which
        counts a learner who never reaches the target as needing the whole budget (a
        standard survival summary that is defined even when many never reach it; it
        understates differences, so it is conservative for a policy that reaches it sooner).
        """
        rows = self._per_seed(policy, seed)
        below = [o for o in rows if o.start_readiness < TARGET]
        to_target = np.array([o.minutes_to_target for o in below])
        cap = float(self.days * DAILY_MINUTES)
        return {
            "start_readiness": float(np.mean([o.start_readiness for o in rows])),
            "readiness": float(np.mean([o.readiness for o in rows])),
            "readiness_unweighted": float(np.mean([o.readiness_unweighted for o in rows])),
            "topics_at_target": float(np.mean([o.topics_at_target for o in rows])),
            "reached_share": float(np.mean(np.isfinite(to_target))) if len(below) else 1.0,
            "median_minutes_to_target": float(np.median(to_target)) if len(below) else 0.0,
            "restricted_minutes_to_target": (
                float(np.mean(np.minimum(to_target, cap))) if len(below) else 0.0
            ),
            "never_reached": int(np.sum(np.isinf(to_target))),
            "below_target_at_start": len(below),
            "minutes": float(np.mean([o.minutes for o in rows])),
            "over_budget_days": int(sum(o.over_budget_days for o in rows)),
        }

    def summary(self) -> dict[str, Any]:
        """Means over seeds with 95 % t-intervals, and the plan against the best other
        policy: the difference in readiness at the exam, and the ratio of restricted mean
        minutes to target (the best other is the one with the highest readiness and the one
        with the fewest restricted minutes, over all seeds)."""
        per = {p: [self.seed_stats(p, s) for s in self.seeds] for p in self.policies}
        out: dict[str, Any] = {"policies": {}}
        for p, rows in per.items():
            entry = {}
            for key in (
                "start_readiness",
                "readiness",
                "readiness_unweighted",
                "topics_at_target",
                "reached_share",
                "median_minutes_to_target",
                "restricted_minutes_to_target",
                "minutes",
            ):
                entry[key] = _interval([r[key] for r in rows])
            entry["never_reached"] = int(sum(r["never_reached"] for r in rows))
            entry["below_target_at_start"] = int(sum(r["below_target_at_start"] for r in rows))
            entry["over_budget_days"] = int(sum(r["over_budget_days"] for r in rows))
            out["policies"][p] = entry
        others = [p for p in self.policies if p != "plan"]
        if "plan" in self.policies and others:
            pol = out["policies"]
            best_r = max(others, key=lambda p: pol[p]["readiness"]["mean"])
            best_m = min(others, key=lambda p: pol[p]["restricted_minutes_to_target"]["mean"])
            diff = [
                a["readiness"] - b["readiness"]
                for a, b in zip(per["plan"], per[best_r], strict=True)
            ]
            ratio = [
                _ratio(a["restricted_minutes_to_target"], b["restricted_minutes_to_target"])
                for a, b in zip(per["plan"], per[best_m], strict=True)
            ]
            medians = [
                _ratio(a["median_minutes_to_target"], b["median_minutes_to_target"])
                for a, b in zip(per["plan"], per[best_m], strict=True)
            ]
            minutes = [
                a["minutes"] / b["minutes"] for a, b in zip(per["plan"], per[best_r], strict=True)
            ]
            out["plan_vs_best"] = {
                "best_readiness_policy": best_r,
                "readiness_difference": _interval(diff),
                "minutes_used_ratio": _interval(minutes),
                "best_minutes_policy": best_m,
                "minutes_ratio": _interval(ratio),
                # NaN (null in JSON) when a median is not reached in some seed.
                "median_minutes_ratio": _interval(medians),
            }
        return out

    def to_dict(self) -> dict[str, Any]:
        m = self.model
        return {
            "scenario": "planner",
            "learners": self.learners,
            "seeds": list(self.seeds),
            "days": self.days,
            "daily_minutes": DAILY_MINUTES,
            "target": TARGET,
            "seconds": round(self.seconds, 1),
            "generative_model": {
                "skills": list(m.skills),
                "gamma": m.gamma.tolist(),
                "rho": m.rho.tolist(),
                "per_tertile": m.per_tertile,
                "phi": m.phi,
                "kappa": m.kappa,
                "sigma_theta": m.sigma_theta,
                "sigma_u": m.sigma_u,
                "sigma_tau": m.sigma_tau,
                "sigma_v": m.sigma_v,
                "corr_theta_tau": m.corr_theta_tau,
                "sigma_time": m.sigma_time,
                "time_scale": m.time_scale,
                "attempts_per_day": m.attempts_per_day,
                "diagnostics": _jsonable(m.diagnostics),
            },
            "estimator_priors": {str(s): _jsonable(p.__dict__) for s, p in self.priors.items()},
            **_jsonable(self.summary()),
        }


def _ratio(a: float, b: float) -> float:
    if math.isinf(a) or math.isinf(b):
        return math.nan
    if b == 0:
        return math.inf if a > 0 else 1.0
    return a / b


def _interval(values: Sequence[float]) -> dict[str, float]:
    """Mean and 95 % t-interval over seeds (NaN-free values; inf propagates)."""
    x = np.asarray(values, dtype=float)
    mean = float(np.mean(x))
    if len(x) < 2 or not np.all(np.isfinite(x)):
        return {"mean": mean, "low": mean, "high": mean}
    half = float(stats.t.ppf(0.975, len(x) - 1) * np.std(x, ddof=1) / math.sqrt(len(x)))
    return {"mean": mean, "low": mean - half, "high": mean + half}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, float | np.floating):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _one_learner(
    model: GenerativeModel,
    prior: EstimatorPrior,
    planner: Planner | None,
    policies: Sequence[str],
    seed: int,
    i: int,
    days: int,
) -> list[LearnerOutcome]:
    """Learner ``i`` of ``seed`` under every policy, with common random numbers: the same
    learner and pre-exam history, and one stream of answers and times."""
    rng = np.random.default_rng([seed, i, 0])
    learner = _Learner(model, rng)
    est = _Estimate(prior)
    _pre_history(model, learner, PRE_TASKS, PRE_DAYS, rng, estimate=est)
    out = []
    for name in policies:
        policy = _policy(
            name, np.random.default_rng([seed, i, 2]), planner, learner, model, DAILY_MINUTES, days
        )
        result = run_learner(
            policy,
            learner.copy(),
            est.copy(),
            model,
            np.random.default_rng([seed, i, 1]),
            days=days,
        )
        out.append(
            LearnerOutcome(
                policy=name,
                seed=seed,
                learner=i,
                readiness=result["readiness"],
                readiness_unweighted=result["readiness_unweighted"],
                topics_at_target=result["topics_at_target"],
                start_readiness=result["start_readiness"],
                minutes_to_target=result["minutes_to_target"],
                minutes=result["minutes"],
                tasks=int(result["tasks"]),
                over_budget_days=int(result["over_budget_days"]),
            )
        )
    return out


def run_planner_study(
    learners: int = 200,
    seeds: Sequence[int] = (0, 1, 2),
    *,
    policies: Sequence[str] = POLICIES,
    model: GenerativeModel | None = None,
    planner: Planner | None = None,
    train_learners: int = TRAIN_LEARNERS,
    days: int = EXAM_DAYS,
    progress: Callable[[str], None] | None = None,
) -> PlannerStudy:
    """The whole study: fit the generative model (unless given), then per seed fit the
    estimator prior on a training cohort and run ``learners`` learners under each policy.

    Common random numbers: a learner (its parameters, topics, weights, pre-exam history) is the
    same under every policy, and the answers and times are drawn from one stream per learner,
    so policies differ by what they choose. Deterministic for given seeds.
    """
    if learners < 1:
        raise ValueError("learners must be at least 1")
    if days < 1:
        raise ValueError("days must be at least 1")
    if not seeds:
        raise ValueError("give at least one seed")
    unknown = [p for p in policies if p not in POLICIES]
    if unknown:
        raise ValueError(f"unknown policy {unknown}; choose from {', '.join(POLICIES)}")
    started = time.perf_counter()
    if model is None:
        if progress:
            progress("fitting the generative model")
        model = fit_generative()
    outcomes: list[LearnerOutcome] = []
    priors: dict[int, EstimatorPrior] = {}
    for seed in seeds:
        if progress:
            progress(f"seed {seed}: fitting the estimator prior")
        prior = fit_estimator_prior(model, learners=train_learners, seed=seed)
        priors[seed] = prior
        for i in range(learners):
            if progress and i % 50 == 0:
                progress(f"seed {seed}: learner {i}/{learners}")
            outcomes.extend(_one_learner(model, prior, planner, policies, int(seed), i, days))
    return PlannerStudy(
        outcomes=outcomes,
        policies=tuple(policies),
        seeds=tuple(int(s) for s in seeds),
        learners=learners,
        model=model,
        priors=priors,
        seconds=time.perf_counter() - started,
        days=days,
    )


def _fmt(iv: dict[str, float], digits: int = 3, missing: str = "not reached") -> str:
    m, lo, hi = (iv[k] for k in ("mean", "low", "high"))
    if not math.isfinite(m):
        return missing
    return f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def format_planner_table(study: PlannerStudy) -> str:
    """Plain-text table: one line per policy, then the plan against the best other policy."""
    s = study.summary()
    n = study.learners * len(study.seeds)
    head = (
        f"Planner study: {study.learners} learners x {len(study.seeds)} seeds "
        f"(seeds {', '.join(map(str, study.seeds))}), {study.days} days, {DAILY_MINUTES} min/day, "
        f"target {TARGET:.2f} at medium; means over seeds [95% interval over seeds]"
    )
    cols = (
        f"{'policy':<16}{'readiness at exam':<24}{'unweighted':<24}{'topics at target':<24}"
        f"{'reached target':<24}{'min to target (r. mean)':<24}{'median':>8}{'min used':>10}"
    )
    lines = [head, cols, "-" * len(cols)]
    for p in study.policies:
        e = s["policies"][p]
        median = e["median_minutes_to_target"]["mean"]
        lines.append(
            f"{p:<16}{_fmt(e['readiness']):<24}{_fmt(e['readiness_unweighted']):<24}"
            f"{_fmt(e['topics_at_target']):<24}"
            f"{_fmt(e['reached_share']):<24}{_fmt(e['restricted_minutes_to_target'], 0):<24}"
            f"{(f'{median:.0f}' if math.isfinite(median) else 'n.r.'):>8}"
            f"{e['minutes']['mean']:>10.0f}"
        )
    if "plan_vs_best" in s:
        v = s["plan_vs_best"]
        lines.append("")
        lines.append(
            f"plan - {v['best_readiness_policy']} (best other by readiness at exam): "
            f"{_fmt(v['readiness_difference'])}; minutes used plan / "
            f"{v['best_readiness_policy']}: {_fmt(v['minutes_used_ratio'], 3)}"
        )
        lines.append(
            f"plan / {v['best_minutes_policy']} (best other by minutes to target, restricted "
            f"mean): {_fmt(v['minutes_ratio'], 2)}; ratio of medians: "
            f"{_fmt(v['median_minutes_ratio'], 2, 'undefined (a median not reached)')}"
        )
    start = s["policies"][study.policies[0]]["start_readiness"]["mean"]
    below = s["policies"][study.policies[0]]["below_target_at_start"]
    lines.append(
        f"({n} learners per policy; weighted readiness before day 0 {start:.3f}; {below} "
        f"learners below target at the start, over whom 'reached target' and the minutes are "
        f"taken; r. mean = mean of min(minutes, {study.days * DAILY_MINUTES}); median n.r. = "
        f"more than half never reached it in at least one seed; "
        f"ran in {study.seconds:.0f} s)"
    )
    return "\n".join(lines)
