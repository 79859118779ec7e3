"""Estimators for the hierarchical speed-accuracy model (LNIRT) used by ``model.py``.

The model is that of van der Linden (2007), "A hierarchical framework for modeling speed and
accuracy on test items", Psychometrika 72(3), 287-308, as implemented in the R package LNIRT
(Fox, Klotzke & Klein Entink) and described by Fox, Klein Entink & van der Linden (2007),
"Modeling of responses and response times with the package cirt", JSS 20(7):

- accuracy, two-parameter normal ogive: ``P(y_pi = 1) = Phi(a_i (theta_p - b_i))``, ``a_i > 0``;
- time, lognormal: ``log T_pi ~ N(beta_i - tau_p, 1 / alpha_i**2)``, ``alpha_i > 0``, or with
  Student-t residuals of scale ``1 / alpha_i`` (``student_t=True``), fitted as a scale
  mixture of normals with a precision weight per response (Lange, Little & Taylor 1989) and
  learned degrees of freedom;
- persons: ``(theta_p, tau_p) ~ N((0, 0), Sigma_P)`` with ``Var(theta) = 1`` (the scale is
  identified by mean theta 0, sd theta 1 and mean tau 0; a negative tau is a slower person).

Two estimators are provided.

``fit_em`` (the default) is marginal maximum a posteriori estimation of the item parameters
by EM (Bock & Aitkin 1981) with vectorised Fisher-scoring / Newton M-steps. Ability is
integrated on a fixed uniform grid (the trapezoidal rule is spectrally accurate for the
smooth, Gaussian-like posteriors involved). Given theta, speed enters only through Gaussian
terms, so it is integrated *analytically*: ``tau | theta ~ N(c theta, s2)`` and the person's
log times reduce to a precision ``A_p`` and a precision-weighted mean ``Z_p``. The E-step is
therefore a pair of (sparse or dense) matrix products, and the EM is deterministic. Person
posteriors (mean 2-vector and 2x2 covariance) come out exactly (up to quadrature). With
Student-t residuals every timed response carries a precision weight (its expectation given
the current fit), the same Gaussian algebra holds given the weights, and the weights and the
degrees of freedom are updated once per iteration (``_student_t_step``). The EM's steps are
extrapolated (SQUAREM, ``_EMPath.squarem``), which reaches the same fixed point in a quarter to
a half of the plain EM's steps. A person with thousands of responses has a posterior of theta
narrower than the grid's spacing; the grid cannot resolve it, so such a person's moments come
from a Laplace approximation and the M-step places them between the two nodes around their
mode (``_laplace_moments``, ``_interpolated``).

``fit_gibbs`` is the MCMC scheme of the R package: data augmentation for the probit
(Albert 1992), conjugate normal steps for persons and items, a Gamma step for the time
precisions and an inverse-Wishart step for the person covariance, with the scale
re-identified after every sweep. It returns posterior means and standard deviations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import sparse, stats
from scipy.special import digamma, gammaln, log_ndtr, logsumexp, ndtri, polygamma

# Flat matrices below this size are kept dense when they are at least this full: a dense
# BLAS product is then much faster than a sparse one and memory stays small.
_DENSE_MAX_CELLS = 20_000_000
_DENSE_MIN_FILL = 0.05
# Half-width of the ability grid: theta ~ N(0, 1) a priori, so |theta| > 6 carries < 1e-8.
_GRID_HALF_WIDTH = 6.0
# The least log-time residual variance an item's time precision is fitted to (sd 0.01).
_MIN_RESID_VAR = 1e-4
_LOG_2PI = float(np.log(2.0 * np.pi))


class DegenerateFitError(RuntimeError):
    """Raised when a fit (or a restored state) produced parameters that must not be used."""


@dataclass(frozen=True)
class LNIRTPriors:
    """Weak priors of the estimators (standard deviations on the scale named).

    Item parameters have normal priors on ``log a``, ``b``, ``log alpha`` and ``beta`` whose
    centres are estimated from the data (empirical Bayes) and whose spreads are these values.
    The person covariance gets a weak prior worth ``person_strength`` pseudo-persons: the
    theta-tau regression slope is shrunk towards 0 and the residual speed variance towards
    ``speed_sd**2``; it matters only when very few persons are fitted.

    ``item_strength`` (None: the spreads stay fixed) lets the EM learn the spreads of the
    priors on ``log a``, ``log alpha`` and ``beta`` too, by empirical Bayes
    (``_learned_priors``), with the given spread as a conjugate (inverse-gamma) hyperprior
    worth ``item_strength`` pseudo-items. How strongly a sparsely seen item's discrimination
    and time parameters are pulled towards the population of items is then learned from the
    data; the difficulties keep the given spread.
    """

    log_a_sd: float = 0.5
    b_sd: float = 2.0
    log_alpha_sd: float = 0.5
    beta_sd: float = 1.0
    person_strength: float = 2.0
    speed_sd: float = 0.5
    item_strength: float | None = None


@dataclass
class LNIRTEstimate:
    """What a fit learned, in the identified scale (see the module docstring).

    ``item_prior_mean``/``item_prior_sd`` describe the population of items on the scales
    ``(log a, b, log alpha, beta)``: the centres of the priors and the spread of the fitted
    items, used for items never seen in training. ``*_sd`` are posterior standard deviations
    (Gibbs) or approximate standard errors from the complete-data information (EM; they
    ignore the uncertainty about persons and so are somewhat too small). ``time_df`` is the
    degrees of freedom of Student-t log-time residuals (None: normal residuals).
    """

    item_ids: np.ndarray
    user_ids: np.ndarray
    a: np.ndarray
    b: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    a_sd: np.ndarray
    b_sd: np.ndarray
    alpha_sd: np.ndarray
    beta_sd: np.ndarray
    sigma_P: np.ndarray
    person_mean: np.ndarray
    person_cov: np.ndarray
    person_n: np.ndarray
    item_prior_mean: np.ndarray
    item_prior_sd: np.ndarray
    objective: float
    n_iter: int
    converged: bool
    time_df: float | None = None
    # The skills of the items: ``skill_ids`` (without the group of items that have none),
    # and per skill the centre of its items' difficulties, which an unknown item of that
    # skill starts from; ``skill_b_sd`` is the spread of the items around their skill's
    # centre. None when the items have no skills.
    skill_ids: np.ndarray | None = None
    skill_b_centre: np.ndarray | None = None
    skill_b_sd: float | None = None
    # Each item's skill as an index into ``skill_ids`` (``len(skill_ids)``: no skill).
    item_skill: np.ndarray | None = None


@dataclass
class PackedResponses:
    """Responses as integer-coded arrays (one entry per row of the fitted frame)."""

    user_ids: np.ndarray
    item_ids: np.ndarray
    user: np.ndarray
    item: np.ndarray
    correct: np.ndarray  # float 0/1, NaN = unknown
    log_time: np.ndarray  # float, NaN = unknown
    # Each item's skill as a code into ``skill_ids``; items without a skill share the code
    # ``len(skill_ids)`` (a group of their own, not a skill).
    item_skill: np.ndarray | None = None
    skill_ids: np.ndarray | None = None

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def has_times(self) -> bool:
        """Whether any row has a response time (False: an accuracy-only, 2PL fit)."""
        return bool(np.isfinite(self.log_time).any())


def pack_responses(data: pd.DataFrame) -> PackedResponses:
    """Integer-code users and items of a validated interactions frame.

    Raises ``ValueError`` when there is nothing to learn accuracy from. A frame without any
    response time is accepted: both estimators then fit the accuracy part alone (the
    two-parameter normal ogive), because every time term of their likelihoods is a sum over
    timed responses and vanishes; the time parameters stay at their starting values and
    carry no information (see ``PackedResponses.has_times``).
    """
    if len(data) == 0:
        raise ValueError("cannot fit LNIRT on an empty interactions frame")
    user, user_ids = pd.factorize(data["user_id"], sort=True)
    item, item_ids = pd.factorize(data["item_id"], sort=True)
    correct = data["correct"].to_numpy(dtype=float)
    rt = data["rt_seconds"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_time = np.log(rt)
    if not np.isfinite(correct).any():
        raise ValueError("cannot fit LNIRT: no row has a known `correct` outcome")
    item_skill, skill_ids = _item_skills(data, item, len(item_ids))
    return PackedResponses(
        user_ids=np.asarray(user_ids, dtype=str),
        item_ids=np.asarray(item_ids, dtype=str),
        user=user.astype(np.int64),
        item=item.astype(np.int64),
        correct=correct,
        log_time=log_time,
        item_skill=item_skill,
        skill_ids=skill_ids,
    )


def _item_skills(
    data: pd.DataFrame, item: np.ndarray, n_items: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Each item's skill (the skill of its first row with one) as codes, and the skill ids;
    (None, None) when no row has a skill."""
    if "skill_id" not in data.columns:
        return None, None
    skill = data["skill_id"]
    known = skill.notna().to_numpy()
    if not known.any():
        return None, None
    codes, skill_ids = pd.factorize(skill[known], sort=True)
    item_skill = np.full(n_items, len(skill_ids), dtype=np.int64)  # no skill: its own group
    items, first = np.unique(item[known], return_index=True)
    item_skill[items] = codes[first]
    return item_skill, np.asarray(skill_ids, dtype=str)


# An item's difficulty is shrunk towards its skill's centre, and each skill's centre towards
# the mean of all items with this many pseudo-items: a skill of one item is half-way between
# that item and everyone's mean.
_SKILL_CENTRE_STRENGTH = 1.0


def skill_centres(b: np.ndarray, item_skill: np.ndarray | None) -> np.ndarray:
    """Per item, the centre of its difficulty prior: the mean difficulty of its skill's items,
    shrunk towards the mean of all items by ``_SKILL_CENTRE_STRENGTH`` pseudo-items (the
    mean of all items when the items have no skills)."""
    overall = float(b.mean())
    if item_skill is None:
        return np.full(len(b), overall)
    k = _SKILL_CENTRE_STRENGTH
    sums = np.bincount(item_skill, weights=b)
    counts = np.bincount(item_skill)
    return ((sums + k * overall) / (counts + k))[item_skill]


# ---------------------------------------------------------------------------------------
# EM (marginal MAP) estimator
# ---------------------------------------------------------------------------------------


def _person_item_matrix(
    user: np.ndarray, item: np.ndarray, values: np.ndarray, shape: tuple[int, int], dense: bool
) -> np.ndarray | sparse.csr_matrix:
    # Repeated attempts of the same item by the same person add up: every formula of the EM
    # is a sum over responses, so counts and sums are sufficient statistics.
    if dense:
        flat = np.bincount(user * shape[1] + item, weights=values, minlength=shape[0] * shape[1])
        return flat.reshape(shape)
    return sparse.csr_matrix((values, (user, item)), shape=shape)


class _Design:
    """Sufficient statistics of the responses as person x item matrices.

    The time statistics carry a weight per timed response (``weight_times``): 1 for the
    normal model, the expected precision multiplier of each response under Student-t
    residuals (a scale mixture of normals, see ``_student_t_step``).
    """

    def __init__(self, packed: PackedResponses) -> None:
        n_p, n_i = packed.n_users, packed.n_items
        n_cells = n_p * n_i
        self.dense = n_cells <= _DENSE_MAX_CELLS and len(packed.user) >= _DENSE_MIN_FILL * n_cells
        self.shape = (n_p, n_i)
        acc = np.isfinite(packed.correct)
        ua, ia, y = packed.user[acc], packed.item[acc], packed.correct[acc]
        self.right = _person_item_matrix(ua, ia, y, self.shape, self.dense)
        self.wrong = _person_item_matrix(ua, ia, 1.0 - y, self.shape, self.dense)
        if self.dense:
            self.right_T, self.wrong_T = self.right.T, self.wrong.T
        else:
            # Row-compressed transposes make the M-step products as fast as the E-step ones.
            self.right_T = self.right.T.tocsr()
            self.wrong_T = self.wrong.T.tocsr()
        tim = np.isfinite(packed.log_time)
        self.ut, self.it, self.lt = packed.user[tim], packed.item[tim], packed.log_time[tim]
        # Per-item and per-person counts that do not change during the EM.
        self.n_time_item = np.bincount(self.it, minlength=n_i).astype(float)
        self.n_time_person = np.bincount(self.ut, minlength=n_p).astype(float)
        self.n_acc_item = np.bincount(ia, minlength=n_i).astype(float)
        self.p_correct_item = np.bincount(ia, weights=y, minlength=n_i)
        self.n_persons = n_p
        self.n_items = n_i
        self.weight_times(np.ones_like(self.lt))

    def weight_times(self, w: np.ndarray) -> None:
        """(Re)build the weighted time statistics from one weight per timed response."""
        ut, it, lt, shape = self.ut, self.it, self.lt, self.shape
        self.t_count = _person_item_matrix(ut, it, w, shape, self.dense)
        self.t_sum = _person_item_matrix(ut, it, w * lt, shape, self.dense)
        self.t_sumsq = _person_item_matrix(ut, it, w * lt * lt, shape, self.dense)
        if self.dense:
            self.t_count_T, self.t_sum_T = self.t_count.T, self.t_sum.T
        else:
            self.t_count_T = self.t_count.T.tocsr()
            self.t_sum_T = self.t_sum.T.tocsr()
        n_i = shape[1]
        self.w_time_item = np.bincount(it, weights=w, minlength=n_i)
        self.sum_lt_item = np.bincount(it, weights=w * lt, minlength=n_i)
        self.sumsq_lt_item = np.bincount(it, weights=w * lt * lt, minlength=n_i)
        self.half_sum_log_w = 0.5 * float(np.sum(np.log(w)))


#: A person's posterior of theta whose grid standard deviation is below this fraction of the
#: grid's spacing is too narrow for the grid (``_laplace_moments``), and the Newton steps
#: that replace it.
_NARROW_FRACTION = 0.25
_LAPLACE_STEPS = 50


def _mills(eta: np.ndarray, log_cdf: np.ndarray | None = None) -> np.ndarray:
    """phi(eta) / Phi(eta), computed in logs so that it stays finite in the far tails;
    ``log_cdf``, when given, is ``log_ndtr(eta)`` already computed."""
    if log_cdf is None:
        log_cdf = log_ndtr(eta)
    return np.exp(-0.5 * eta * eta - 0.5 * _LOG_2PI - log_cdf)


@dataclass
class _Probit:
    """The accuracy part's linear predictor at the items' current (a, b): ``eta`` (items x
    grid) and ``log Phi(eta)``, ``log Phi(-eta)``. The E-step needs them, and the M-step's
    first Fisher step starts from the same (a, b), so it reuses them instead of evaluating
    the normal CDF again (the costliest part of an EM step on data with many items)."""

    a: np.ndarray
    b: np.ndarray
    eta: np.ndarray
    log_p: np.ndarray
    log_q: np.ndarray

    def at(self, a: np.ndarray, b: np.ndarray) -> bool:
        """Whether this is the probit of exactly these items."""
        return np.array_equal(a, self.a) and np.array_equal(b, self.b)


@dataclass
class _EStep:
    mean_theta: np.ndarray
    mean_theta2: np.ndarray
    mean_tau: np.ndarray
    mean_tau2: np.ndarray
    mean_theta_tau: np.ndarray
    post: np.ndarray  # persons x grid posterior weights of theta
    loglik: float
    probit: _Probit
    narrow: np.ndarray  # persons whose posterior the grid cannot resolve (``_laplace_moments``)


def _e_step(
    d: _Design,
    grid: np.ndarray,
    log_w: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    alpha: np.ndarray,
    beta: np.ndarray,
    slope: float,
    resid_var: float,
    narrow_before: np.ndarray | None = None,
) -> _EStep:
    """The E-step at the items ``a, b, alpha, beta`` and the population ``slope, resid_var``.
    ``narrow_before``: the persons an earlier step of the same fit found too narrow for the
    grid; they stay so (a person switching between the grid and the Laplace approximation
    from one step to the next kept the EM from settling)."""
    eta = a[:, None] * (grid[None, :] - b[:, None])
    probit = _Probit(a, b, eta, log_ndtr(eta), log_ndtr(-eta))
    ll = d.right @ probit.log_p + d.wrong @ probit.log_q

    # Time part: the log times of person p are N(beta_i - tau_p, 1/alpha_i^2) and reduce to
    # A_p = sum alpha_i^2 and Z_p = sum alpha_i^2 (beta_i - log t) / A_p ~ N(tau_p, 1/A_p).
    a2 = alpha * alpha
    prec = d.t_count @ a2
    has_t = prec > 0
    safe_prec = np.where(has_t, prec, 1.0)
    zbar = np.where(has_t, (d.t_count @ (a2 * beta) - d.t_sum @ a2) / safe_prec, 0.0)
    var_z = resid_var + 1.0 / safe_prec
    resid = zbar[:, None] - slope * grid[None, :]
    ll += np.where(has_t[:, None], -0.5 * resid * resid / var_z[:, None], 0.0)

    log_post = ll + log_w[None, :]
    top = log_post.max(axis=1)
    post = np.exp(log_post - top[:, None])
    norm = post.sum(axis=1)
    post /= norm[:, None]
    lse = top + np.log(norm)
    m1 = post @ grid
    m2 = post @ (grid * grid)
    narrow = m2 - m1 * m1 < (_NARROW_FRACTION * (grid[1] - grid[0])) ** 2
    if narrow_before is not None:
        narrow |= narrow_before
    if narrow.any():
        time_part = (has_t, zbar, var_z, slope)
        m1, m2 = _laplace_moments(d, narrow, a, b, time_part, m1, m2)
        post = _interpolated(post, narrow, m1, grid)

    # tau | theta, data is normal with a mean linear in theta: w c theta + (1 - w) Z.
    post_prec = 1.0 / resid_var + np.where(has_t, prec, 0.0)
    v = 1.0 / post_prec
    w = (1.0 / resid_var) / post_prec
    k = w * slope
    r = (1.0 - w) * zbar
    mean_tau = k * m1 + r
    mean_tau2 = v + k * k * m2 + 2.0 * k * r * m1 + r * r
    mean_theta_tau = k * m2 + r * m1

    # Terms of the marginal likelihood that do not depend on theta (for the objective).
    sum_sq = d.t_count @ (a2 * beta * beta) - 2.0 * (d.t_sum @ (a2 * beta)) + d.t_sumsq @ a2
    within = np.where(has_t, sum_sq - prec * zbar * zbar, 0.0)
    const = (
        float(d.n_time_item @ np.log(alpha))
        + d.half_sum_log_w
        - 0.5 * _LOG_2PI * float(d.n_time_person.sum())
        - 0.5 * float(within.sum())
        + 0.5 * float(np.sum(np.where(has_t, -np.log(safe_prec) - np.log(var_z), 0.0)))
    )
    return _EStep(
        m1,
        m2,
        mean_tau,
        mean_tau2,
        mean_theta_tau,
        post,
        float(lse.sum()) + const,
        probit,
        narrow,
    )


def _laplace_moments(
    d: _Design,
    narrow: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    time_part: tuple[np.ndarray, np.ndarray, np.ndarray, float],
    m1: np.ndarray,
    m2: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``m1`` and ``m2`` (the posterior's first two moments of theta) with those of the
    ``narrow`` persons replaced by a Laplace approximation of their posterior.

    A person with thousands of responses has a posterior of theta narrower than the grid's
    spacing: nearly all its weight falls on one node, so the grid puts its mean on that node
    and its variance near zero (exactly zero once the neighbours' weights underflow, and the
    fit is then refused as degenerate). Such a posterior is close to normal (Bernstein-von
    Mises), so its mode and curvature, found by Newton's method on the continuous log
    posterior (the same probit responses, time summary ``(has_t, zbar, var_z, slope)`` and
    N(0, 1) population as the grid's), give its mean and variance. ``d(phi/Phi)(eta)/d eta
    = -lambda (eta + lambda)``, so the log posterior is concave and the steps settle."""
    has_t, zbar, var_z, slope = time_part
    people = np.flatnonzero(narrow)
    right, wrong = d.right[people], d.wrong[people]
    if sparse.issparse(right):
        counts = (right + wrong).tocoo()
        rows, cols = counts.row, counts.col
        r = np.asarray(right[rows, cols]).ravel()
        w = np.asarray(wrong[rows, cols]).ravel()
    else:
        rows, cols = np.nonzero(right + wrong)
        r, w = right[rows, cols], wrong[rows, cols]
    k = len(people)
    ai, bi = a[cols], b[cols]
    timed = has_t[people]
    t_prec = np.where(timed, slope * slope / var_z[people], 0.0)
    t_mean = np.where(timed, slope * zbar[people] / var_z[people], 0.0)
    theta = m1[people].copy()
    for _ in range(_LAPLACE_STEPS):
        # Gradient and curvature (information) of the log posterior at theta.
        eta = ai * (theta[rows] - bi)
        lam_pos, lam_neg = _mills(eta), _mills(-eta)
        grad = np.bincount(rows, ai * (r * lam_pos - w * lam_neg), minlength=k)
        grad += t_mean - t_prec * theta - theta
        curv = r * lam_pos * (eta + lam_pos) + w * lam_neg * (lam_neg - eta)
        info = np.bincount(rows, ai * ai * curv, minlength=k) + t_prec + 1.0
        step = np.clip(grad / info, -1.0, 1.0)
        if np.max(np.abs(step)) < 1e-10:
            break  # at the mode: info is its curvature
        theta += step
    var = 1.0 / info
    m1, m2 = m1.copy(), m2.copy()
    m1[people], m2[people] = theta, var + theta * theta
    return m1, m2


def _interpolated(
    post: np.ndarray, narrow: np.ndarray, mean: np.ndarray, grid: np.ndarray
) -> np.ndarray:
    """``post`` with each ``narrow`` person's weights replaced by its ``mean`` shared between
    the two grid nodes around it (linear interpolation): the M-step then sees such a person
    where the Laplace approximation puts them, not rounded to the nearest node, which with a
    person who dominates the data moved every item."""
    post = post.copy()
    people = np.flatnonzero(narrow)
    step = grid[1] - grid[0]
    x = np.clip((mean[people] - grid[0]) / step, 0.0, len(grid) - 1.0)
    low = np.minimum(np.floor(x).astype(np.int64), len(grid) - 2)
    upper = x - low
    post[people] = 0.0
    post[people, low] = 1.0 - upper
    post[people, low + 1] = upper
    return post


def _normal_logprior(x: np.ndarray, centre: float | np.ndarray, sd: float) -> float:
    return float(-0.5 * np.sum(((x - centre) / sd) ** 2))


def _log_posterior(
    loglik: float,
    items: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    b_centres: np.ndarray,
    priors: LNIRTPriors,
) -> float:
    """The EM's objective: the marginal log-likelihood plus the items' log priors (around the
    items' means, and for ``b`` its skill's centre), up to a constant."""
    log_a, b, log_alpha, beta = items
    return (
        loglik
        + _normal_logprior(log_a, float(log_a.mean()), priors.log_a_sd)
        + _normal_logprior(b, b_centres, priors.b_sd)
        + _normal_logprior(log_alpha, float(log_alpha.mean()), priors.log_alpha_sd)
        + _normal_logprior(beta, float(beta.mean()), priors.beta_sd)
    )


def _accuracy_m_step(
    d: _Design,
    e: _EStep,
    grid: np.ndarray,
    log_a: np.ndarray,
    b: np.ndarray,
    centre: tuple[float, float | np.ndarray],
    priors: LNIRTPriors,
    n_steps: int = 2,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fisher-scoring steps on (log a, b) for every item at once; returns the information.

    ``centre`` holds the prior centres of ``log a`` and of ``b`` (one per item: its
    skill's)."""
    r1 = d.right_T @ e.post  # expected correct responses of item i at grid node q
    r0 = d.wrong_T @ e.post
    n = r1 + r0
    p_la, p_b = 1.0 / priors.log_a_sd**2, 1.0 / priors.b_sd**2
    for step in range(n_steps):
        a = np.exp(log_a)
        if step == 0 and e.probit.at(a, b):
            # The E-step's own items: its probit is this step's, to the last bit.
            eta = e.probit.eta
            lam_pos, lam_neg = _mills(eta, e.probit.log_p), _mills(-eta, e.probit.log_q)
        else:
            eta = a[:, None] * (grid[None, :] - b[:, None])
            lam_pos, lam_neg = _mills(eta), _mills(-eta)
        score = r1 * lam_pos - r0 * lam_neg
        info = n * lam_pos * lam_neg  # Fisher information of the probit in eta
        g_la = np.sum(score * eta, axis=1) - p_la * (log_a - centre[0])
        g_b = -a * np.sum(score, axis=1) - p_b * (b - centre[1])
        i11 = np.sum(info * eta * eta, axis=1) + p_la
        i12 = -a * np.sum(info * eta, axis=1)
        i22 = a * a * np.sum(info, axis=1) + p_b
        det = i11 * i22 - i12 * i12
        step_la = (i22 * g_la - i12 * g_b) / det
        step_b = (i11 * g_b - i12 * g_la) / det
        # Bounded steps keep an early, poorly informed iteration from overshooting.
        log_a = log_a + np.clip(step_la, -0.5, 0.5)
        b = b + np.clip(step_b, -1.0, 1.0)
    cov_la = i22 / det
    cov_b = i11 / det
    return log_a, b, np.stack([cov_la, cov_b])


def _time_m_step(
    d: _Design,
    e: _EStep,
    log_alpha: np.ndarray,
    beta: np.ndarray,
    centre: tuple[float, float],
    priors: LNIRTPriors,
    n_newton: int = 3,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Conditional maximisation of beta then log alpha; returns their approximate variances."""
    n, nw = d.n_time_item, d.w_time_item
    # Weighted E sum (log t + tau) and E sum (log t + tau)^2 over each item's timed responses
    # (weights 1 under normal residuals).
    s1 = d.sum_lt_item + d.t_count_T @ e.mean_tau
    s2 = d.sumsq_lt_item + 2.0 * (d.t_sum_T @ e.mean_tau) + d.t_count_T @ e.mean_tau2
    p_beta = 1.0 / priors.beta_sd**2
    a2 = np.exp(2.0 * log_alpha)
    beta = (a2 * s1 + p_beta * centre[1]) / (a2 * nw + p_beta)
    # Floored at a log-time sd of 1% per response: times all equal (a student who always
    # types the same number) would otherwise drive the time precision to infinity.
    ss = np.maximum(s2 - 2.0 * beta * s1 + nw * beta * beta, nw * _MIN_RESID_VAR)
    p_la = 1.0 / priors.log_alpha_sd**2
    for _ in range(n_newton):
        # f(u) = n u - e^{2u} ss / 2 - p (u - m)^2 / 2 is concave in u = log alpha.
        e2u = np.exp(2.0 * log_alpha)
        grad = n - e2u * ss - p_la * (log_alpha - centre[0])
        hess = -2.0 * e2u * ss - p_la
        log_alpha = log_alpha - np.clip(grad / hess, -1.0, 1.0)
    a2 = np.exp(2.0 * log_alpha)
    var_beta = 1.0 / (a2 * nw + p_beta)
    var_log_alpha = 1.0 / (2.0 * a2 * ss + p_la)
    return log_alpha, beta, np.stack([var_log_alpha, var_beta])


def _population_m_step(e: _EStep, priors: LNIRTPriors) -> tuple[float, float]:
    """MAP of tau | theta ~ N(c theta, s2): slope shrunk to 0, variance to speed_sd^2."""
    k = priors.person_strength
    n = len(e.mean_theta)
    sxx = float(e.mean_theta2.sum())
    sxy = float(e.mean_theta_tau.sum())
    syy = float(e.mean_tau2.sum())
    slope = sxy / (sxx + k)
    resid = syy - 2.0 * slope * sxy + slope * slope * sxx + k * slope * slope
    resid_var = (resid + k * priors.speed_sd**2) / (n + k + 2.0)
    return slope, max(resid_var, 1e-12)


def _start_values(d: _Design) -> tuple[np.ndarray, ...]:
    n_acc = np.maximum(d.n_acc_item, 1.0)
    p = np.clip((d.p_correct_item + 0.5) / (n_acc + 1.0), 0.02, 0.98)
    # With a = 1 and theta ~ N(0, 1): P(correct) = Phi(-b / sqrt(2)).
    b = -np.sqrt(2.0) * ndtri(p)
    log_a = np.zeros(d.n_items)
    n_t = d.n_time_item
    overall = d.sum_lt_item.sum() / max(n_t.sum(), 1.0)
    beta = np.where(n_t > 0, d.sum_lt_item / np.maximum(n_t, 1.0), overall)
    var = np.where(n_t > 1, d.sumsq_lt_item / np.maximum(n_t, 1.0) - beta * beta, 0.25)
    log_alpha = -0.5 * np.log(np.clip(var, 0.01, 100.0))
    return log_a, b, log_alpha, beta


# Student-t residuals: the degrees of freedom live in [_NU_MIN, _NU_MAX] and get the
# Gamma(2, 0.1) prior of Juarez & Steel (2010), "Model-based clustering of non-Gaussian panel
# data based on skew-t distributions", JBES 28(1), 52-66 (mode 10, mean 20), which keeps nu
# finite and away from 0 when few times are fitted and is negligible when many are.
_NU_MIN, _NU_MAX = 1.0, 1000.0
_NU_PRIOR_SHAPE, _NU_PRIOR_RATE = 2.0, 0.1
_NU_START = 10.0


def _nu_log_posterior(log_nu: float, u: np.ndarray) -> tuple[float, float, float]:
    """Log posterior of nu given squared standardised residuals ``u`` (Student-t likelihood
    at fixed scale, Gamma prior), and its first and second derivatives in ``log nu``."""
    nu = math.exp(log_nu)
    n = float(len(u))
    lg = np.log1p(u / nu)
    ratio = u / (nu + u)
    s_lg, s_r, s_r2 = float(lg.sum()), float(ratio.sum()), float(np.sum(ratio * ratio))
    h1, h0 = 0.5 * (nu + 1.0), 0.5 * nu
    value = (
        n * (gammaln(h1) - gammaln(h0) - 0.5 * log_nu)
        - h1 * s_lg
        + (_NU_PRIOR_SHAPE - 1.0) * log_nu
        - _NU_PRIOR_RATE * nu
    )
    # d/dnu and d2/dnu2, then the chain rule to log nu.
    d1 = (
        n * (0.5 * digamma(h1) - 0.5 * digamma(h0) - 0.5 / nu)
        - 0.5 * s_lg
        + h1 * s_r / nu
        + (_NU_PRIOR_SHAPE - 1.0) / nu
        - _NU_PRIOR_RATE
    )
    d2 = (
        n * (0.25 * polygamma(1, h1) - 0.25 * polygamma(1, h0) + 0.5 / nu**2)
        + s_r / nu
        - h1 * (2.0 * s_r - s_r2) / nu**2
        - (_NU_PRIOR_SHAPE - 1.0) / nu**2
    )
    return value, nu * d1, nu * d1 + nu * nu * d2


def _update_nu(nu: float, u: np.ndarray, n_steps: int = 3) -> float:
    """ECME step for nu (Liu & Rubin 1994, "The ECME algorithm", Biometrika 81(4)): Newton
    steps in ``log nu`` on the observed-data log posterior at the current scales, each step
    bounded and halved until the posterior does not decrease; stops once a step is tiny."""
    x = math.log(nu)
    lo, hi = math.log(_NU_MIN), math.log(_NU_MAX)
    value, g, h = _nu_log_posterior(x, u)
    for _ in range(n_steps):
        step = -g / h if h < 0 else math.copysign(1.0, g)
        step = min(hi, max(lo, x + max(-1.0, min(1.0, step)))) - x
        while abs(step) > 1e-4:
            new = _nu_log_posterior(x + step, u)
            if new[0] >= value:
                x, (value, g, h) = x + step, new
                break
            step *= 0.5
        if abs(step) <= 1e-4:
            break
    return math.exp(x)


def _student_t_step(
    d: _Design, e: _EStep, alpha: np.ndarray, beta: np.ndarray, nu: float
) -> tuple[float, np.ndarray]:
    """E- and CM-step of Student-t log-time residuals; returns the new nu and the weights.

    ``log T = beta_i - tau_p + eps / (alpha_i sqrt(w))`` with ``eps ~ N(0, 1)`` and
    ``w ~ Gamma(nu / 2, nu / 2)`` is a Student-t with ``nu`` degrees of freedom and scale
    ``1 / alpha_i`` (Lange, Little & Taylor 1989, "Robust statistical modeling using the t
    distribution", JASA 84(408)). Given the squared standardised residual ``u`` (its
    expectation over the person's speed posterior) nu is updated first (``_update_nu``), then
    the weights are ``E w = (nu + 1) / (nu + u)``.
    """
    var_tau = np.maximum(e.mean_tau2 - e.mean_tau * e.mean_tau, 0.0)
    r = d.lt - beta[d.it] + e.mean_tau[d.ut]
    u = alpha[d.it] ** 2 * (r * r + var_tau[d.ut])
    nu = _update_nu(nu, u)
    return nu, (nu + 1.0) / (nu + u)


def _learned_priors(
    priors: LNIRTPriors,
    base: LNIRTPriors,
    values: tuple[np.ndarray, np.ndarray, np.ndarray],
    variances: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> LNIRTPriors:
    """Empirical-Bayes spreads of the item priors on ``log a``, ``log alpha`` and ``beta``
    (see ``LNIRTPriors.item_strength``).

    ``values`` are the items' ``(log a, log alpha, beta)`` and ``variances`` their posterior
    variances; the spreads of ``base`` are the hyperprior's. The update is MacKay's (1992,
    "Bayesian interpolation", Neural Computation 4(3)) fixed point ``s^2 = sum (x_i - m)^2 /
    sum gamma_i`` with ``gamma_i = 1 - v_i / s^2`` (how well the data determine item i), which
    converges much faster than the plain EM update ``s^2 = mean((x_i - m)^2 + v_i)`` when the
    spread is small; the conjugate hyperprior adds ``k s0^2`` and ``k`` to numerator and
    denominator. A learned spread never exceeds the given one: the given spreads are the
    weakest shrinkage allowed, and with a few near-deterministic items (the app's small
    topics) a growing spread would otherwise let their time discriminations run off to
    infinity together.

    The discriminations' spread is learned so that items seen a few times do not get
    extreme slopes from a few lucky answers: on cognitive_tutor, where a third of the rows
    are on items seen fewer than 20 times, the learned spread is small (the items share
    nearly one slope) and the log loss of new students fell from 0.533 to 0.528 (3 split
    seeds); on data sets with well-seen items it stays near the given 0.5 and changes
    nothing. The difficulties keep their given spread: their variances come from the
    complete-data information of the probit, which ignores the uncertainty about
    abilities, and with them the same update shrank the difficulties of sparsely seen items
    so hard on cognitive_tutor (spread 2.0 -> 0.33 after 500 iterations, still falling) that
    the AUC of new students fell from 0.79 to 0.76.
    """
    k = priors.item_strength
    if k is None:
        return priors
    sds = []
    for x, v, s_now, s0 in zip(
        values,
        variances,
        (priors.log_a_sd, priors.log_alpha_sd, priors.beta_sd),
        (base.log_a_sd, base.log_alpha_sd, base.beta_sd),
        strict=True,
    ):
        well_determined = float(np.sum(np.clip(1.0 - v / (s_now * s_now), 0.0, 1.0)))
        ss = float(np.sum((x - x.mean()) ** 2))
        sds.append(min(s0, float(np.sqrt((k * s0 * s0 + ss) / (k + well_determined)))))
    return replace(priors, log_a_sd=sds[0], log_alpha_sd=sds[1], beta_sd=sds[2])


def fit_em(
    packed: PackedResponses,
    *,
    priors: LNIRTPriors,
    max_iter: int = 500,
    tol: float = 1e-4,
    n_quadrature: int = 121,
    student_t: bool = False,
    accelerate: bool = True,
) -> LNIRTEstimate:
    """Marginal MAP estimation by EM (see the module docstring).

    Stops when no item or population parameter moves by more than ``tol`` in one EM step;
    ``max_iter`` bounds the EM steps. ``student_t`` fits Student-t log-time residuals with
    learned degrees of freedom (see ``_student_t_step``; the person E-step is then conditional
    on the current weights, and the objective is that of the normal model at the final
    weights). With ``priors.item_strength`` set, the spreads of the item priors are learned
    too. ``accelerate`` extrapolates the EM's path (SQUAREM, ``_EMPath``), which reaches the
    same fixed point in a fraction of the steps; False runs the plain EM.
    """
    if n_quadrature < 11:
        raise ValueError(f"n_quadrature must be at least 11, got {n_quadrature}")
    d = _Design(packed)
    grid = np.linspace(-_GRID_HALF_WIDTH, _GRID_HALF_WIDTH, n_quadrature)
    log_w = -0.5 * grid * grid
    log_w -= logsumexp(log_w)  # the N(0, 1) population of theta, discretised
    student_t = student_t and packed.has_times
    path = _EMPath(d, grid, log_w, packed.item_skill, priors, _NU_START if student_t else None)
    x = path.start()
    converged = False
    if accelerate:
        x, converged = path.squarem(x, max_iter, tol)
    while not converged and path.steps < max_iter:
        new = path.step(x)
        converged = path.moved(x, new) < tol
        x = new
    return path.estimate(packed, x, converged)


# SQUAREM's step lengths (Varadhan & Roland 2008, "Simple and globally convergent methods for
# accelerating the convergence of any EM algorithm", Scand. J. Statist. 35(2), 335-353, scheme
# S3): the extrapolation length starts at most 1 and may grow fourfold each time it reaches the
# bound. An extrapolated point whose objective falls below the cycle's start by more than
# _SQUAREM_SLACK (nats, as the R package SQUAREM's objfn.inc) is replaced by the plain EM's point
# and the bound shrinks again. Without slack, Student-t fits gained little: their objective is
# the normal model's at the current weights, which move between the points compared, and
# credential_form1 took longer than the plain EM.
_SQUAREM_STEP_MAX, _SQUAREM_STEP_GROWTH, _SQUAREM_SLACK = 1.0, 4.0, 1.0
# Logs above this are taken as this when a vector is unpacked: an overshooting extrapolation
# must give a rejected point, not an overflow.
_LOG_CAP = 700.0


def _capped_exp(value: float) -> float:
    return math.exp(min(float(value), _LOG_CAP))


class _EMPath:
    """The EM as a map on one vector of everything an iteration carries: ``(log a, b,
    log alpha, beta)`` of every item, the population's ``(slope, log resid_var)``, and, when
    learned, ``log nu`` and the logs of the learned prior spreads. ``step`` is one EM
    iteration from a vector; ``squarem`` extrapolates along the path of steps. The Student-t
    weights are not in the vector: as in the plain EM, a step's E-step uses the weights the
    step before it set, and then sets new ones from its own E-step.
    """

    def __init__(
        self,
        d: _Design,
        grid: np.ndarray,
        log_w: np.ndarray,
        item_skill: np.ndarray | None,
        priors: LNIRTPriors,
        nu: float | None,
    ) -> None:
        self.d, self.grid, self.log_w, self.item_skill = d, grid, log_w, item_skill
        self.base = priors
        self.with_nu = nu is not None
        self.nu0 = nu
        self.learn_spreads = priors.item_strength is not None
        self.n_core = 4 * d.n_items + 2  # the part the convergence test looks at
        self.steps = 0
        self.objective = -math.inf  # of the last step's starting point
        self.last: tuple[np.ndarray, np.ndarray, LNIRTPriors] | None = None
        self.weights: np.ndarray | None = None  # the Student-t weights the last step set
        self.narrow: np.ndarray | None = None  # persons too narrow for the grid so far

    def start(self) -> np.ndarray:
        log_a, b, log_alpha, beta = _start_values(self.d)
        p = self.base
        return self._pack(log_a, b, log_alpha, beta, 0.0, p.speed_sd**2, self.nu0, p)

    def _pack(
        self,
        log_a: np.ndarray,
        b: np.ndarray,
        log_alpha: np.ndarray,
        beta: np.ndarray,
        slope: float,
        resid_var: float,
        nu: float | None,
        priors: LNIRTPriors,
    ) -> np.ndarray:
        tail = [slope, math.log(resid_var)]
        if self.with_nu:
            tail.append(math.log(nu))  # type: ignore[arg-type]
        if self.learn_spreads:
            tail += [math.log(priors.log_a_sd), math.log(priors.log_alpha_sd)]
            tail.append(math.log(priors.beta_sd))
        return np.concatenate([log_a, b, log_alpha, beta, tail])

    def _unpack(self, x: np.ndarray) -> tuple:
        n = self.d.n_items
        log_a, b, log_alpha, beta = (x[k * n : (k + 1) * n] for k in range(4))
        slope, resid_var = float(x[4 * n]), max(_capped_exp(x[4 * n + 1]), 1e-12)
        rest = list(x[4 * n + 2 :])
        nu = None
        if self.with_nu:
            nu = min(_NU_MAX, max(_NU_MIN, _capped_exp(rest.pop(0))))
        priors = self.base
        if self.learn_spreads:
            b0 = self.base
            sds = [
                min(s0, _capped_exp(v))
                for s0, v in zip((b0.log_a_sd, b0.log_alpha_sd, b0.beta_sd), rest, strict=True)
            ]
            priors = replace(b0, log_a_sd=sds[0], log_alpha_sd=sds[1], beta_sd=sds[2])
        return log_a, b, log_alpha, beta, slope, resid_var, nu, priors

    def moved(self, old: np.ndarray, new: np.ndarray) -> float:
        """The convergence measure: the largest change of an item or population parameter
        (the residual variance on its own scale)."""
        k = self.n_core
        change = np.abs(new[: k - 1] - old[: k - 1])
        resid = abs(_capped_exp(new[k - 1]) - _capped_exp(old[k - 1]))
        return float(max(change.max(initial=0.0), resid))

    def _e_step(self, items: tuple[np.ndarray, ...], slope: float, resid_var: float) -> _EStep:
        """The E-step at these items (log a, b, log alpha, beta) and population, with the
        persons found too narrow for the grid so far (``_e_step``)."""
        log_a, b, log_alpha, beta = items
        return _e_step(
            self.d,
            self.grid,
            self.log_w,
            np.exp(log_a),
            b,
            np.exp(log_alpha),
            beta,
            slope,
            resid_var,
            self.narrow,
        )

    def step(self, x: np.ndarray) -> np.ndarray:
        """One EM iteration from ``x``; sets ``objective`` to the log posterior at ``x``."""
        log_a, b, log_alpha, beta, slope, resid_var, nu, priors = self._unpack(x)
        d, grid = self.d, self.grid
        e = self._e_step((log_a, b, log_alpha, beta), slope, resid_var)
        self.narrow = e.narrow
        if nu is not None:
            nu, self.weights = _student_t_step(d, e, np.exp(log_alpha), beta, nu)
            d.weight_times(self.weights)
        # Prior centres (empirical Bayes): the mean of the current item estimates; for the
        # difficulties, the mean of the item's skill (shrunk towards the mean of all).
        b_centres = skill_centres(b, self.item_skill)
        centres = (log_a.mean(), b_centres, log_alpha.mean(), beta.mean())
        self.objective = _log_posterior(e.loglik, (log_a, b, log_alpha, beta), b_centres, priors)
        log_a, b, acc_var = _accuracy_m_step(d, e, grid, log_a, b, centres[:2], priors)
        log_alpha, beta, time_var = _time_m_step(d, e, log_alpha, beta, centres[2:], priors)
        slope, resid_var = _population_m_step(e, priors)
        priors = _learned_priors(
            priors, self.base, (log_a, log_alpha, beta), (acc_var[0], time_var[0], time_var[1])
        )
        new = self._pack(log_a, b, log_alpha, beta, slope, resid_var, nu, priors)
        self.steps += 1
        if not np.all(np.isfinite(new)):
            raise DegenerateFitError(
                f"EM produced non-finite parameters at iteration {self.steps}; the data do not "
                "identify the model"
            )
        self.last = (acc_var, time_var, priors)
        return new

    @staticmethod
    def step_length(r: np.ndarray, v: np.ndarray) -> float:
        """SQUAREM's extrapolation length ``|r| / |v|``, at least 1 (one plain EM cycle)."""
        norm_v = float(np.sqrt(v @ v))
        return max(float(np.sqrt(r @ r)) / norm_v, 1.0) if norm_v > 0 else 1.0

    def squarem(self, x: np.ndarray, max_iter: int, tol: float) -> tuple[np.ndarray, bool]:
        """SQUAREM cycles (S3): two EM steps give the path's first and second differences
        ``r`` and ``v``; the point ``x + 2 s r + s^2 v`` with ``s = |r| / |v|`` (bounded,
        see ``_SQUAREM_STEP_MAX``) is taken one EM step further. Returns the last point and
        whether an EM step from it moved less than ``tol``."""
        bound = _SQUAREM_STEP_MAX
        while self.steps + 4 <= max_iter:  # a cycle takes at most four steps
            x1 = self.step(x)
            start_objective = self.objective
            if self.moved(x, x1) < tol:
                return x1, True
            x2 = self.step(x1)
            if self.moved(x1, x2) < tol:
                return x2, True
            r, v = x1 - x, x2 - 2.0 * x1 + x
            s = min(self.step_length(r, v), bound)
            if s >= bound:
                bound *= _SQUAREM_STEP_GROWTH
            jump = x + 2.0 * s * r + s * s * v
            weights = self.weights
            try:
                with np.errstate(all="ignore"):  # a wild jump is judged by its objective
                    new = self.step(jump)
                ok = self.objective >= start_objective - _SQUAREM_SLACK  # False if NaN
            except (DegenerateFitError, FloatingPointError, OverflowError):
                ok = False
            if not ok:
                # The extrapolation overshot: fall back to the plain path.
                bound = max(_SQUAREM_STEP_MAX, bound / _SQUAREM_STEP_GROWTH)
                if weights is not None:  # the step from x2 uses the weights the plain EM would
                    self.d.weight_times(weights)
                new = self.step(x2)
                jump = x2
            if self.moved(jump, new) < tol:
                return new, True
            x = new
        return x, False

    def estimate(self, packed: PackedResponses, x: np.ndarray, converged: bool) -> LNIRTEstimate:
        """The estimate at ``x`` (the variances and learned spreads of the step that made it)."""
        if self.last is None:  # no step taken (max_iter 0): the start, with unit variances
            acc_var = time_var = np.ones((2, self.d.n_items))
            priors = self.base
        else:
            acc_var, time_var, priors = self.last
        log_a, b, log_alpha, beta, slope, resid_var, nu, _ = self._unpack(x)
        e = self._e_step((log_a, b, log_alpha, beta), slope, resid_var)
        est = _em_estimate(packed, e, (log_a, b, log_alpha, beta), (acc_var, time_var), priors)
        est.sigma_P = np.array([[1.0, slope], [slope, slope * slope + resid_var]])
        est.n_iter, est.converged, est.time_df = self.steps, converged, nu
        if self.base.item_strength is not None and packed.has_times:
            # The learned spreads of the time population; the accuracy part keeps the spread
            # of the fitted items (for log a, the learned spread shrank them to it).
            est.item_prior_sd[2:] = [priors.log_alpha_sd, priors.beta_sd]
        return est


def _em_estimate(
    packed: PackedResponses,
    e: _EStep,
    items: tuple[np.ndarray, ...],
    variances: tuple[np.ndarray, np.ndarray],
    priors: LNIRTPriors,
) -> LNIRTEstimate:
    """The estimate of a finished EM (``sigma_P``, ``n_iter``, ``converged`` and
    ``time_df`` are the caller's to set)."""
    log_a, b, log_alpha, beta = items
    acc_var, time_var = variances
    a, alpha = np.exp(log_a), np.exp(log_alpha)
    centres = np.array([log_a.mean(), b.mean(), log_alpha.mean(), beta.mean()])
    b_centres = skill_centres(b, packed.item_skill)
    objective = _log_posterior(e.loglik, items, b_centres, priors)
    person_cov = _person_covariances(
        np.maximum(e.mean_theta2 - e.mean_theta**2, 0.0),
        np.maximum(e.mean_tau2 - e.mean_tau**2, 0.0),
        e.mean_theta_tau - e.mean_theta * e.mean_tau,
    )
    return LNIRTEstimate(
        item_ids=packed.item_ids,
        user_ids=packed.user_ids,
        a=a,
        b=b,
        alpha=alpha,
        beta=beta,
        a_sd=a * np.sqrt(np.maximum(acc_var[0], 0.0)),
        b_sd=np.sqrt(np.maximum(acc_var[1], 0.0)),
        alpha_sd=alpha * np.sqrt(time_var[0]),
        beta_sd=np.sqrt(time_var[1]),
        sigma_P=np.eye(2),
        person_mean=np.column_stack([e.mean_theta, e.mean_tau]),
        person_cov=person_cov,
        person_n=_informative_counts(packed),
        item_prior_mean=centres,
        item_prior_sd=_item_spread(log_a, b, log_alpha, beta, priors),
        objective=float(objective),
        n_iter=0,
        converged=False,
        **_skill_summary(packed, b),
    )


def _skill_summary(packed: PackedResponses, b: np.ndarray) -> dict[str, object]:
    """The ``skill_*`` fields of an estimate from the fitted difficulties ``b``."""
    if packed.item_skill is None or packed.skill_ids is None:
        return {}
    centres = skill_centres(b, packed.item_skill)
    n_skills = len(packed.skill_ids)
    per_skill = np.full(n_skills + 1, float(b.mean()))
    per_skill[packed.item_skill] = centres
    spread = float(np.sqrt(np.mean((b - centres) ** 2))) if len(b) >= 3 else math.nan
    return {
        "skill_ids": packed.skill_ids,
        "skill_b_centre": per_skill[:n_skills],
        "skill_b_sd": spread if math.isfinite(spread) and spread > 0 else None,
        "item_skill": packed.item_skill,
    }


def _person_covariances(
    var_theta: np.ndarray, var_tau: np.ndarray, cov_theta_tau: np.ndarray
) -> np.ndarray:
    """Each person's 2x2 posterior covariance of (theta, tau), from its variances and the
    covariance."""
    person_cov = np.empty((len(var_theta), 2, 2))
    person_cov[:, 0, 0], person_cov[:, 1, 1] = var_theta, var_tau
    person_cov[:, 0, 1] = person_cov[:, 1, 0] = cov_theta_tau
    return person_cov


def _informative_counts(packed: PackedResponses) -> np.ndarray:
    """Responses per person that carried an outcome or a time (what the posterior used)."""
    informative = np.isfinite(packed.correct) | np.isfinite(packed.log_time)
    return np.bincount(packed.user[informative], minlength=packed.n_users).astype(np.int64)


def _item_spread(
    log_a: np.ndarray,
    b: np.ndarray,
    log_alpha: np.ndarray,
    beta: np.ndarray,
    priors: LNIRTPriors,
) -> np.ndarray:
    """Spread of the item population: the sd of the fitted items, or the prior sd if < 3
    items or where the items do not vary (the time parameters of an accuracy-only fit)."""
    prior = np.array([priors.log_a_sd, priors.b_sd, priors.log_alpha_sd, priors.beta_sd])
    if len(b) < 3:
        return prior
    spread = np.array([np.std(v, ddof=1) for v in (log_a, b, log_alpha, beta)])
    return np.where(spread > 0, spread, prior)


# ---------------------------------------------------------------------------------------
# Gibbs sampler (MCMC)
# ---------------------------------------------------------------------------------------


def _truncated_latent(
    rng: np.random.Generator, mean: np.ndarray, positive: np.ndarray
) -> np.ndarray:
    """Z ~ N(mean, 1) truncated to Z > 0 where ``positive`` else Z < 0 (inverse CDF).

    Written for the side that keeps mean + X on the right sign: X = -sgn Phi^-1(U Phi(sgn mean))
    stays accurate deep in the tails because Phi is taken in logs.
    """
    sgn = np.where(positive, 1.0, -1.0)
    log_u = np.log(rng.uniform(size=mean.shape))
    x = -ndtri(np.exp(log_u + log_ndtr(sgn * mean)))
    return mean + sgn * x


def _sample_positive_normal(
    rng: np.random.Generator, mean: np.ndarray, sd: np.ndarray
) -> np.ndarray:
    """Draws of N(mean, sd^2) truncated to positive values."""
    return sd * _truncated_latent(rng, mean / sd, np.ones(mean.shape, dtype=bool))


def fit_gibbs(
    packed: PackedResponses,
    *,
    priors: LNIRTPriors,
    n_samples: int = 1000,
    burn_in: int = 500,
    seed: int = 0,
    student_t: bool = False,
) -> LNIRTEstimate:
    """Posterior means and sds by Gibbs sampling (the scheme of the R package LNIRT).

    Priors (conjugate forms of the weak priors used by EM): ``a ~ N(1, (2 log_a_sd)^2)``
    truncated to ``a > 0``; ``b ~ N(m_b, b_sd^2)`` and ``beta ~ N(m_beta, beta_sd^2)`` with the
    centres ``m_b``, ``m_beta`` sampled under flat hyperpriors (hierarchical, like the EM's
    empirical Bayes centres); ``alpha^2 ~ Gamma(1, 1)``; ``Sigma_P ~ inverse-Wishart(4, I)``. After
    each sweep theta is rescaled to mean 0 and sd 1 and tau to mean 0 (items are transformed
    so that the likelihood is unchanged), which identifies the scale as in the EM.
    ``student_t``: Student-t log-time residuals as a scale mixture, with a Gamma step for
    each response's precision weight and a griddy-Gibbs step for nu under the prior of the
    EM (see ``_sample_time_weights``).
    """
    if n_samples < 10 or burn_in < 0:
        raise ValueError(f"need n_samples >= 10 and burn_in >= 0, got {n_samples}, {burn_in}")
    rng = np.random.default_rng(seed)
    data = _GibbsData(packed)
    state = _GibbsState.start(packed, data, priors)
    if student_t and packed.has_times:
        state.nu = _NU_START
    sums = _GibbsSums(packed.n_users, packed.n_items)
    for sweep in range(burn_in + n_samples):
        # 1. latent responses of the probit (Albert 1992)
        z = _truncated_latent(
            rng, state.a[data.ia] * (state.theta[data.ua] - state.b[data.ia]), data.positive
        )
        _sample_persons(rng, data, state, z)
        _sample_accuracy_items(rng, data, state, z, priors)
        _sample_time_items(rng, data, state, priors)
        _sample_time_weights(rng, data, state)
        state.identify()
        # 6. person covariance
        xs = np.column_stack([state.theta, state.tau])
        state.sigma = np.atleast_2d(
            stats.invwishart.rvs(
                df=_IW_DF + data.n_p, scale=np.eye(2) + xs.T @ xs, random_state=rng
            )
        )
        if sweep >= burn_in:
            sums.add(state)
    return sums.estimate(packed, priors, n_iter=burn_in + n_samples)


# Conjugate hyperparameters of the Gibbs sampler: inverse-Wishart(_IW_DF, I) for Sigma_P and
# Gamma(_GAMMA_SHAPE, _GAMMA_RATE) for alpha^2.
_IW_DF = 4.0
_GAMMA_SHAPE, _GAMMA_RATE = 1.0, 1.0


class _GibbsData:
    """The responses and log times of a Gibbs fit as flat (user, item, value) arrays."""

    def __init__(self, packed: PackedResponses) -> None:
        self.n_p, self.n_i = packed.n_users, packed.n_items
        acc = np.isfinite(packed.correct)
        self.ua, self.ia = packed.user[acc], packed.item[acc]
        self.positive = packed.correct[acc] > 0.5
        tim = np.isfinite(packed.log_time)
        self.ut, self.it, self.lt = packed.user[tim], packed.item[tim], packed.log_time[tim]
        self.n_acc_i = np.bincount(self.ia, minlength=self.n_i).astype(float)
        self.item_skill = packed.item_skill
        self.n_t_i = np.bincount(self.it, minlength=self.n_i).astype(float)


@dataclass
class _GibbsState:
    """The current draw of every parameter."""

    a: np.ndarray
    b: np.ndarray
    b_centre: np.ndarray  # per item: the centre of its skill
    alpha2: np.ndarray
    beta: np.ndarray
    beta_centre: float
    theta: np.ndarray
    tau: np.ndarray
    sigma: np.ndarray
    w: np.ndarray  # precision weight of every timed response (1: normal residuals)
    nu: float | None = None

    @classmethod
    def start(cls, packed: PackedResponses, data: _GibbsData, priors: LNIRTPriors) -> _GibbsState:
        """The EM's start values for the items, persons at 0, Sigma_P at the prior."""
        log_a0, b0, log_alpha0, beta = _start_values(_Design(packed))
        return cls(
            a=np.exp(log_a0),
            b=b0,
            b_centre=skill_centres(b0, packed.item_skill),
            alpha2=np.exp(2.0 * log_alpha0),
            beta=beta,
            beta_centre=float(beta.mean()),
            theta=np.zeros(data.n_p),
            tau=np.zeros(data.n_p),
            sigma=np.array([[1.0, 0.0], [0.0, priors.speed_sd**2]]),
            w=np.ones(len(data.lt)),
        )

    def identify(self) -> None:
        """5. identification: theta mean 0 / sd 1 and tau mean 0, likelihood unchanged."""
        mt, st = self.theta.mean(), self.theta.std()
        self.b = (self.b - mt) / st
        self.b_centre = (self.b_centre - mt) / st
        self.a = self.a * st
        self.theta = (self.theta - mt) / st
        mtau = self.tau.mean()
        self.tau = self.tau - mtau
        self.beta = self.beta - mtau
        self.beta_centre -= mtau


def _sample_persons(
    rng: np.random.Generator, data: _GibbsData, state: _GibbsState, z: np.ndarray
) -> None:
    """2. persons: bivariate normal given the latent responses and the log times."""
    a, b, n_p = state.a, state.b, data.n_p
    ua, ia, ut, it = data.ua, data.ia, data.ut, data.it
    sig_inv = np.linalg.inv(state.sigma)
    h_theta = np.bincount(ua, weights=a[ia] * (z + a[ia] * b[ia]), minlength=n_p)
    p_theta = np.bincount(ua, weights=a[ia] ** 2, minlength=n_p)
    prec_t = state.alpha2[it] * state.w
    h_tau = np.bincount(ut, weights=prec_t * (state.beta[it] - data.lt), minlength=n_p)
    p_tau = np.bincount(ut, weights=prec_t, minlength=n_p)
    q11, q12, q22 = sig_inv[0, 0] + p_theta, sig_inv[0, 1], sig_inv[1, 1] + p_tau
    det = q11 * q22 - q12 * q12
    c11, c12, c22 = q22 / det, -q12 / det, q11 / det
    m_theta = c11 * h_theta + c12 * h_tau
    m_tau = c12 * h_theta + c22 * h_tau
    l11 = np.sqrt(c11)
    l21 = c12 / l11
    l22 = np.sqrt(np.maximum(c22 - l21 * l21, 0.0))
    e1, e2 = rng.standard_normal(n_p), rng.standard_normal(n_p)
    state.theta = m_theta + l11 * e1
    state.tau = m_tau + l21 * e1 + l22 * e2


def _sample_accuracy_items(
    rng: np.random.Generator,
    data: _GibbsData,
    state: _GibbsState,
    z: np.ndarray,
    priors: LNIRTPriors,
) -> None:
    """3. accuracy items, Z = a (theta - b) + eps: a | b (truncated to a > 0), then b | a."""
    ia, n_i = data.ia, data.n_i
    prec_a = 1.0 / (2.0 * priors.log_a_sd) ** 2
    prec_b = 1.0 / priors.b_sd**2
    th = state.theta[data.ua]
    x = th - state.b[ia]
    s_xx = np.bincount(ia, weights=x * x, minlength=n_i) + prec_a
    s_xz = np.bincount(ia, weights=x * z, minlength=n_i) + prec_a * 1.0
    a = _sample_positive_normal(rng, s_xz / s_xx, 1.0 / np.sqrt(s_xx))
    # a b = a theta - Z + eps: b has precision n a^2 + 1/b_sd^2 around the centre b_centre.
    pb_ = a * a * data.n_acc_i + prec_b
    s_b = a * np.bincount(ia, weights=a[ia] * th - z, minlength=n_i)
    state.a = a
    state.b = (s_b + prec_b * state.b_centre) / pb_ + rng.standard_normal(n_i) / np.sqrt(pb_)
    state.b_centre = _sample_skill_centres(rng, state.b, data.item_skill, priors.b_sd)


def _sample_skill_centres(
    rng: np.random.Generator, b: np.ndarray, item_skill: np.ndarray | None, b_sd: float
) -> np.ndarray:
    """The skills' difficulty centres given the items' (per item): normal around
    ``skill_centres`` with the variance of a mean of its items and pseudo-items."""
    n_i = len(b)
    if item_skill is None:
        return np.full(n_i, b.mean() + rng.standard_normal() * b_sd / np.sqrt(n_i))
    counts = np.bincount(item_skill).astype(float)
    draws = rng.standard_normal(len(counts)) * b_sd / np.sqrt(counts + _SKILL_CENTRE_STRENGTH)
    return skill_centres(b, item_skill) + draws[item_skill]


def _sample_time_items(
    rng: np.random.Generator, data: _GibbsData, state: _GibbsState, priors: LNIRTPriors
) -> None:
    """4. time items: beta | alpha, then alpha^2 | beta (Gamma)."""
    it, ut, lt, n_i = data.it, data.ut, data.lt, data.n_i
    prec_beta = 1.0 / priors.beta_sd**2
    alpha2, w = state.alpha2, state.w
    s_lt = np.bincount(it, weights=w * (lt + state.tau[ut]), minlength=n_i)
    pb = alpha2 * np.bincount(it, weights=w, minlength=n_i) + prec_beta
    beta = (alpha2 * s_lt + prec_beta * state.beta_centre) / pb + rng.standard_normal(
        n_i
    ) / np.sqrt(pb)
    state.beta = beta
    state.beta_centre = beta.mean() + rng.standard_normal() * priors.beta_sd / np.sqrt(n_i)
    res = lt - beta[it] + state.tau[ut]
    ss = np.bincount(it, weights=w * res * res, minlength=n_i)
    state.alpha2 = rng.gamma(_GAMMA_SHAPE + 0.5 * data.n_t_i, 1.0 / (_GAMMA_RATE + 0.5 * ss))


_NU_GRID = np.geomspace(_NU_MIN, _NU_MAX, 80)


def _sample_time_weights(rng: np.random.Generator, data: _GibbsData, state: _GibbsState) -> None:
    """4b. Student-t residuals: ``w | . ~ Gamma((nu + 1) / 2, (nu + alpha^2 r^2) / 2)`` for
    each timed response, then nu from its full conditional on a log-spaced grid (griddy
    Gibbs) under the EM's Gamma(2, 0.1) prior. Nothing to do for normal residuals."""
    nu = state.nu
    if nu is None:
        return
    res = data.lt - state.beta[data.it] + state.tau[data.ut]
    rate = 0.5 * (nu + state.alpha2[data.it] * res * res)
    state.w = rng.gamma(0.5 * (nu + 1.0), 1.0 / rate)
    half = 0.5 * _NU_GRID
    n = len(state.w)
    log_post = (
        n * (half * np.log(half) - gammaln(half))
        + (half - 1.0) * float(np.sum(np.log(state.w)))
        - half * float(np.sum(state.w))
        + (_NU_PRIOR_SHAPE - 1.0) * np.log(_NU_GRID)
        - _NU_PRIOR_RATE * _NU_GRID
    )
    prob = np.exp(log_post - log_post.max())
    state.nu = float(rng.choice(_NU_GRID, p=prob / prob.sum()))


class _GibbsSums:
    """Running sums of the kept draws, turned into posterior means and sds at the end."""

    def __init__(self, n_p: int, n_i: int) -> None:
        self.keep = np.zeros((4, n_i))
        self.keep_sq = np.zeros((4, n_i))
        self.p_sum = np.zeros((n_p, 2))
        self.p_cross = np.zeros((n_p, 3))
        self.sig_sum = np.zeros((2, 2))
        self.nu_sum = 0.0
        self.n_kept = 0

    def add(self, state: _GibbsState) -> None:
        alpha = np.sqrt(state.alpha2)
        for k, v in enumerate((state.a, state.b, alpha, state.beta)):
            self.keep[k] += v
            self.keep_sq[k] += v * v
        theta, tau, sigma = state.theta, state.tau, state.sigma
        self.p_sum += np.column_stack([theta, tau])
        self.p_cross += np.column_stack([theta * theta, theta * tau, tau * tau])
        # Report the covariance on the identified scale Var(theta) = 1: theta is divided
        # by its sd, tau keeps its scale.
        sd_theta = np.sqrt(sigma[0, 0])
        self.sig_sum += np.array([[1.0, sigma[0, 1] / sd_theta], [0.0, sigma[1, 1]]])
        self.nu_sum += math.nan if state.nu is None else state.nu
        self.n_kept += 1

    def estimate(self, packed: PackedResponses, priors: LNIRTPriors, n_iter: int) -> LNIRTEstimate:
        n_kept = self.n_kept
        mean = self.keep / n_kept
        sd_items = np.sqrt(np.maximum(self.keep_sq / n_kept - mean * mean, 0.0))
        person_mean = self.p_sum / n_kept
        cross = self.p_cross / n_kept
        person_cov = _person_covariances(
            cross[:, 0] - person_mean[:, 0] ** 2,
            cross[:, 2] - person_mean[:, 1] ** 2,
            cross[:, 1] - person_mean[:, 0] * person_mean[:, 1],
        )
        sig = self.sig_sum / n_kept
        sigma_p = np.array([[1.0, sig[0, 1]], [sig[0, 1], sig[1, 1]]])
        a_hat, b_hat, alpha_hat, beta_hat = mean
        log_a, log_alpha = np.log(a_hat), np.log(alpha_hat)
        return LNIRTEstimate(
            item_ids=packed.item_ids,
            user_ids=packed.user_ids,
            a=a_hat,
            b=b_hat,
            alpha=alpha_hat,
            beta=beta_hat,
            a_sd=sd_items[0],
            b_sd=sd_items[1],
            alpha_sd=sd_items[2],
            beta_sd=sd_items[3],
            sigma_P=sigma_p,
            person_mean=person_mean,
            person_cov=person_cov,
            person_n=_informative_counts(packed),
            item_prior_mean=np.array(
                [log_a.mean(), b_hat.mean(), log_alpha.mean(), beta_hat.mean()]
            ),
            item_prior_sd=_item_spread(log_a, b_hat, log_alpha, beta_hat, priors),
            objective=float("nan"),
            n_iter=n_iter,
            converged=True,
            time_df=None if math.isnan(self.nu_sum) else self.nu_sum / n_kept,
            **_skill_summary(packed, b_hat),
        )
