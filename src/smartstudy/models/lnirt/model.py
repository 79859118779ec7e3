"""LNIRT: joint model of accuracy and response time with online personalisation.

Implements the hierarchical framework of van der Linden (2007), "A hierarchical framework for
modeling speed and accuracy on test items", Psychometrika 72(3), 287-308, in the form of the
R package LNIRT (Fox, Klotzke & Klein Entink; see also Fox, Klein Entink & van der Linden 2007,
"Modeling of responses and response times with the package cirt", JSS 20(7)):

- accuracy (two-parameter normal ogive, "difficulty" parameterisation)::

      P(correct_pi = 1) = Phi(a_i * (theta_p - b_i)),   a_i > 0

  (the R package writes ``Phi(a_i theta_p - b_i)``; its intercept is our ``a_i * b_i``);
- time (lognormal, or log-t with heavy tails)::

      log T_pi = beta_i - tau_p + e_pi / alpha_i,   alpha_i > 0

  ``beta_i`` is the item's time intensity, ``alpha_i`` its time discrimination (the scale of
  the residual is item-specific) and ``tau_p`` the person's speed: a negative ``tau`` means
  slower than average. It is never forced positive. By default (``time_model="t"``) the
  residual ``e`` is Student-t with ``time_df_`` degrees of freedom learned by the fit (ECME,
  Liu & Rubin 1994; Lange, Little & Taylor 1989): real times have heavier tails than the
  lognormal, and a t lets one absurd time count for less in the items, in the persons and
  in 80% intervals that are right. ``time_model="normal"`` is van der Linden's
  ``e ~ N(0, 1)``; real data that are close to normal get a large ``time_df_``;
- persons: ``(theta_p, tau_p) ~ N(mu_P, Sigma_P)``, identified by ``mu_P = (0, 0)`` and
  ``Var(theta) = 1``; ``Cov(theta, tau)`` and ``Var(tau)`` are learned, so is their correlation
  ``rho_``.

Fitting (``fit``) is marginal MAP by EM by default, or Gibbs sampling with
``method="gibbs"``. Every fitted parameter is validated; a degenerate fit raises
:class:`DegenerateFitError`.

Personalisation keeps, per user, a bivariate normal posterior of ``(theta, tau)`` (mean
2-vector and 2x2 covariance). After every response it is updated in constant time: the probit
likelihood by assumed-density filtering (exact moment matching of a Gaussian against a probit,
as in expectation propagation), the log time by the conjugate Gaussian (Kalman) step under
normal residuals and by assumed-density filtering against the t under Student-t residuals
(``time_update``: a redescending, robust step). Because theta and tau are correlated, an answer
moves both. A time moves tau, and ability's mean only by the share ``time_weight_`` of the
joint step, never so far that the answer's own item moves against the answer (``speed_only``,
``_ability_from_time``): a correct but slow answer never lowers the next P(correct) of its item
(the direction guarantee of every served model). ``fit`` learns the share (0, 1/2 or 1) by the
log loss of a replay of training persons: on MaRs-IB times say much about ability, on the
tutor data they mislead. After each response
the person's speed takes a random-walk step of variance ``drift_[1]`` (learned by the
prediction-error likelihood of a replay of training persons, ``_fit_drift``; zero where persons
are static), so that a learner who gets faster is followed. Ability does not drift
(``drift_[0]`` is 0): a random walk on theta widens its uncertainty after every answer, which
pulls every prediction towards 1/2, so a correct answer could lower the next prediction,
against the direction guarantee. Users seen in training start from their fitted posterior,
unknown users from the population ``N(mu_P, Sigma_P)``.

Every chance is mapped by a logistic recalibration learned by cross-fitting halves of the
training persons (``calibration``, ``calibration_``): plug-in items estimated from few answers
make the probit over-confident for persons the items were not fitted on.

Predictions integrate the person's and the item's uncertainty: ``b_sd_`` and ``beta_sd_``
widen the probit and the time predictive, ``alpha_sd_`` the residual variance (see
``_item_table``). Unknown items use the population of items: the prior centres of
``log a``, ``b``, ``log alpha`` and ``beta`` fitted by empirical Bayes, with the population
spreads added the same way. The spreads of the priors on the discriminations and the time
parameters are learned too (empirical Bayes, ``prior_item_strength``), so sparsely seen
items' slopes and times are pulled towards the population with a learned strength; the
difficulties keep their given spread (see ``fit._learned_priors`` for why). A difficulty's
prior is centred on its skill (``skill_id``): on the mean difficulty of the skill's items,
itself shrunk towards the mean of all items (``fit.skill_centres``), so a sparsely seen item
is pulled towards its topic, and an item unknown to the fit but of a known skill starts from
its skill's centre, with the items' spread around their skills (``skill_b_centre_``,
``skill_b_sd_``). Under Student-t residuals the 80% interval is the exact 10%-90% range of
the normal-t convolution (``t_interval_halfwidth``). The service fits one LNIRT per topic,
whose items (difficulty levels) then share one skill.

Times follow the plausibility rule of ``models.base`` everywhere (below 1 s counts as 1 s).
``fit`` estimates the shared item parameters from robust times: winsorised against their
item's median and MAD, and only each user's first timed attempt at an item (unless too few
users have timed it), so one student's absurd times cannot drag an item's time intensity.
The online ``update`` moves only the user's own posterior, so it cannot affect others.

Accuracy-only (2PL) mode: fitted on a frame where no row has a response time, ``fit`` learns
the response part alone (the two-parameter normal ogive; the estimators' time terms vanish)
instead of failing. Such a model has ``times_fitted_ = False``: it predicts ``p_correct`` as
usual and NaN for the three time columns, and it ignores the times of later rows (``update``,
``predict``), since it has no time parameters to judge them by. The class attribute
``predicts_time`` stays True (the class predicts times when it was given some): a caller
that needs times checks ``times_fitted_`` of the instance.

Guessing floor: on multiple-choice items a weak student still answers right by luck, so the
probit's chance falls too low for them (MaRs-IB's four-option puzzles: predictions of 0.07 came
true 0.16 of the time, offline). The person's part is therefore applied above a floor, as in
Baseline (3PL's lower asymptote, Birnbaum 1968, as one number ``guess_floor_``)::

    P = c_i + (1 - c_i) Phi(a_i (theta_p - b'_i)),   c_i = min(c, P_i / 2)

where ``P_i`` is the item's chance for a new person (the population prior integrated) and
``b'_i`` is set so that a new person's chance stays ``P_i``: the floor changes how far a
person's own record moves the prediction, never the population rate, and the fitted items are
kept. A wrong answer then has the probit's likelihood (up to a constant); a correct one is a
mixture of a lucky guess, which says nothing, and a solution, whose probit step is taken with
the mixture's weight (``probit_step``). ``fit`` learns ``c`` from ``baseline.FLOOR_GRID`` by
the log loss of a one-step-ahead replay of up to ``_FLOOR_PERSONS`` training persons as new
persons; data without guessing get 0, and then nothing changes.

Person fit: ``person_fit(df)`` scores every user's rows against the fitted items with the lZ
statistic of response times (Fox & Marianti 2017) and the lz statistic of responses
(Drasgow, Levine & Williams 1985); see ``personfit``. Under Student-t residuals it keeps the
normal-scale standardisation ``alpha_i (log T - beta_i + tau)`` with ``alpha_`` the t's scale
(the spread of typical times): lZ is then chi-square only for normal residuals, and a person
whose times are heavy-tailed is flagged more often, which is what person fit is for. The
person's speed in it is learned with the robust step.

Skill abilities: a person may be stronger on some skills than their ability says. With
``skill_sd_`` > 0 the probit's argument gains a per-(person, skill) term ``delta ~ N(0,
skill_sd_^2)`` that only answers on that skill move (``skills``; testlet and bifactor models);
``fit`` learns ``skill_sd_`` by the same replay as the floor, and 0 with fewer than two skills.

Artifacts written before the Student-t model, the drift, the guessing floor, the success gain
and the skill abilities load as the normal model with static persons, no floor, no gain and
one ability for every skill (``time_df_`` None, ``drift_``, ``guess_floor_``,
``success_gain_`` and ``skill_sd_`` zero).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from scipy.special import (
    gammaln,
    log_ndtr,
    ndtr,
    ndtri,
    roots_hermitenorm,
    roots_legendre,
    stdtr,
    stdtrit,
)

from smartstudy.data.schema import (
    id_string,
    sort_for_sequences,
    usable_seconds,
    validate_interactions,
)
from smartstudy.models.base import (
    Z80,
    LearnerModel,
    plain_attempts,
    plausible_log_times,
    population_seconds,
    robust_seconds,
)
from smartstudy.models.baseline import (
    FLOOR_GRID,
    fast_path_ids,
    floored_rate,
    is_guess_floor,
    is_share,
    one_row_predictions,
)
from smartstudy.models.lnirt.calibration import (
    CALIBRATION_MIN_USERS,
    HALF_FIT_TOL,
    IDENTITY,
    apply_logit_map,
    apply_logit_map_one,
    fit_logit_map,
    for_whole_fit,
    is_calibration,
    user_halves,
)
from smartstudy.models.lnirt.factors import (
    MAX_RANK,
    MIN_GAIN,
    MIN_ITEMS,
    MIN_PERSONS,
    MIN_RESIDUAL_SHARE,
    MIN_RESPONSE_GAIN,
    FactorPart,
    factor_update,
    fit_loadings,
    fit_response_loadings,
    posterior,
    response_posterior,
    shift,
)
from smartstudy.models.lnirt.fit import (
    DegenerateFitError,
    LNIRTEstimate,
    LNIRTPriors,
    fit_em,
    fit_gibbs,
    pack_responses,
)
from smartstudy.models.lnirt.personfit import (
    NothingToScoreError,
    PersonFitParts,
    check_level,
    person_fit_parts,
    summarise_person_fit,
)
from smartstudy.models.lnirt.skills import SkillPart, SkillState, skill_shift, skill_update

log = logging.getLogger(__name__)

__all__ = [
    "LNIRT",
    "DegenerateFitError",
    "accuracy_update",
    "check_lnirt_parameters",
    "predictive_moments",
    "time_update",
]

METHODS: tuple[str, ...] = ("em", "gibbs")
# |rho| this close to 1 means ability and speed collapsed onto one dimension: the fit is not
# usable, even though it is formally inside (-1, 1).
MAX_ABS_RHO = 0.999
# A time discrimination above this is a residual log-time sd under 0.05: a person's times
# within 5% of what their speed predicts. Human response times are never that regular (the
# fits on the shared data sets stay below 4.5); such a fit has put the residual spread into
# the persons' speeds, as with too few repeated answers per person, and predicts absurd times.
MAX_ALPHA = 20.0
_MIN_VARIANCE = 1e-10
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
# LNIRT fits each item's residual time spread (alpha), which a 2.5 sd winsorisation of
# heavy-tailed real times shrinks (80% intervals then cover too little); a wider band still
# stops absurd times, and the per-user cap and person speed absorb the rest.
LNIRT_ROBUST_Z = 3.5
TIME_MODELS: tuple[str, ...] = ("t", "normal")
# Person drift: the grid of drift variances (as multiples of the population variances) and
# how many training persons are replayed to choose them.
_DRIFT_GRID: tuple[float, ...] = (0.0, 0.003, 0.01, 0.03, 0.1)
_DRIFT_PERSONS = 200
# How many training persons are replayed to choose the guessing floor: a log loss needs more
# answers than the drift's time likelihood to tell floors 0.05 apart.
_FLOOR_PERSONS = 1000
# Fewer training persons than this learn no floor (a replay of a handful of persons is noise).
_FLOOR_MIN_PERSONS = 50
# Ability gained by each correct answer, in units of the population's ability sd
# (``_fit_success_gain``).
_SUCCESS_GAIN_GRID: tuple[float, ...] = (0.0, 0.005, 0.01, 0.02, 0.04)
# The spreads of the persons' skill abilities tried (``_fit_skill_sd``), in units of the
# population sd of theta (1).
_SKILL_SD_GRID: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
# The shares of a time's joint step that ability may take (``_fit_time_weight``).
_TIME_WEIGHT_GRID: tuple[float, ...] = (0.0, 0.5, 1.0)
# The t-plus-normal interval table (``_halfwidth_table``): Newton converges in five or six
# steps from its start; 257 points interpolate the half-width to 1e-4 relative (nu 1.5) or
# better (1e-5 from nu 7), a hundredth of a second on a p90 of five minutes. Every version
# of a model builds a table per topic when it is loaded, in each serving process, while it
# serves requests: 8 ms each, a quarter of what 513 points and 12 steps cost.
_NEWTON_STEPS = 8
_TABLE_POINTS = 257
_LEGENDRE_POINTS = 128


# ---------------------------------------------------------------------------------------
# Online posterior updates and predictive distributions (vectorised over users)
# ---------------------------------------------------------------------------------------


# A part's factor states in the online steps: the persons' means and covariances and the
# loadings of each row (``LNIRT._factor_states``).
_Factors = tuple[np.ndarray, np.ndarray, np.ndarray]


def probit_step(
    state: tuple[np.ndarray, np.ndarray],
    correct: np.ndarray,
    item: tuple[np.ndarray, np.ndarray, np.ndarray | float],
    extra: tuple[np.ndarray | float, np.ndarray | float] = (0.0, 0.0),
    floor: np.ndarray | float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """The assumed-density step of one probit response per user, as the derivatives of the
    log evidence in the probit's argument ``v = a (theta - b) + extra``: ``score = sign
    lambda(z) / s`` and ``curvature = -lambda (lambda + z) / s^2`` (``accuracy_update``).
    ``state`` is the users' ``(mean, cov)`` of (theta, tau), ``item`` the rows' ``(a, b,
    var_b)``; ``extra`` is the mean and variance of a further Gaussian term of ``v`` (the
    response factors' part), independent of ``(theta, tau)``.

    With a guessing ``floor`` ``c`` (``P = c + (1 - c) Phi(v)``), a wrong answer's likelihood
    is the probit's times ``1 - c``: the same step. A correct one is the mixture of a guess
    (the state unchanged) and a solution (the probit step) with the solution's posterior
    weight ``w = (1 - c) Phi(z) / (c + (1 - c) Phi(z))``; its mean moves ``w`` times as far,
    and its covariance by ``w curvature + w (1 - w) score^2``, kept at or below 0 so that an
    answer never makes the person less certain."""
    (mean, cov), (a, b, var_b) = state, item
    sign = 2.0 * np.asarray(correct, dtype=float) - 1.0
    s2 = 1.0 + a * a * (cov[:, 0, 0] + var_b) + extra[1]
    s = np.sqrt(s2)
    z = sign * (a * (mean[:, 0] - b) + extra[0]) / s
    lam = np.exp(-0.5 * z * z - _HALF_LOG_2PI - log_ndtr(z))
    # lambda (lambda + z) lies in (0, 1); clipping guards the rounding of lambda + z in the
    # far tail, which keeps the covariance positive definite.
    delta = np.clip(lam * (lam + z), 0.0, 1.0 - 1e-12)
    score, curvature = sign * lam / s, -delta / s2
    if np.any(np.asarray(floor) > 0.0):
        solved = (1.0 - floor) * ndtr(z)
        w = np.where(sign > 0.0, solved / (floor + solved), 1.0)
        curvature = np.minimum(w * curvature + w * (1.0 - w) * score * score, 0.0)
        score = w * score
    return score, curvature


def accuracy_update(
    mean: np.ndarray,
    cov: np.ndarray,
    correct: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    var_b: np.ndarray | float = 0.0,
    extra: tuple[np.ndarray | float, np.ndarray | float] = (0.0, 0.0),
    floor: np.ndarray | float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Assumed-density filtering step for one probit response per user.

    ``mean`` (n, 2) and ``cov`` (n, 2, 2) describe N((theta, tau)); the likelihood is
    ``Phi(a (theta - b))`` for a correct and ``Phi(-a (theta - b))`` for a wrong answer, with
    ``b ~ N(b, var_b)`` for an uncertain (unknown) item. The new Gaussian has the exact mean and
    covariance of prior x likelihood: with ``v = a (theta - b) + eps``, ``s^2 = Var v`` and
    ``z = sign * E[v] / s``, the mean moves by ``sign * lambda(z) / s * Cov(x, v)`` and the
    covariance shrinks by ``lambda (lambda + z) / s^2 * Cov(x, v) Cov(x, v)^T`` where
    ``lambda = phi / Phi``. ``extra`` adds a Gaussian term to ``v``, and ``floor`` is a
    guessing floor (both ``probit_step``). Returns new arrays.
    """
    score, curvature = probit_step((mean, cov), correct, (a, b, var_b), extra, floor)
    k = a[:, None] * cov[:, :, 0]
    new_mean = mean + score[:, None] * k
    new_cov = cov + curvature[:, None, None] * (k[:, :, None] * k[:, None, :])
    return new_mean, new_cov


def time_update(
    mean: np.ndarray,
    cov: np.ndarray,
    log_time: np.ndarray,
    alpha: np.ndarray,
    beta: np.ndarray,
    var_beta: np.ndarray | float = 0.0,
    nu: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One log time per user: ``beta - log t`` observes ``tau`` with residual noise of scale
    ``1/alpha`` (plus ``var_beta`` for an uncertain item); theta moves through its covariance
    with tau (the joint step; ``LNIRT`` keeps only tau's part, see ``speed_only``). Returns
    new arrays.

    Normal residuals (``nu`` None): the conjugate (Kalman) step. Student-t residuals with
    ``nu`` degrees of freedom: assumed-density filtering, the exact mean and covariance of
    the Gaussian prior times the t likelihood (as ``accuracy_update`` does for the probit).
    With ``d`` the innovation and ``f`` the predictive density of ``d`` (see
    ``_t_predictive_derivatives``), the mean moves by ``-f'/f * Cov(x, tau)`` and the
    covariance by ``h * Cov(x, tau) Cov(x, tau)^T`` with ``h = f''/f - (f'/f)^2``. The score
    ``-f'/f`` redescends: a typical time moves the person about as the Kalman step does, an
    absurd one much less, always in the direction of the residual. ``h`` is kept in
    ``(-1/sigma_tau^2, 0]``: an observation never makes the person less certain.
    """
    k = cov[:, :, 1]
    innovation = (beta - log_time) - mean[:, 1]
    if nu is None:
        r2 = cov[:, 1, 1] + 1.0 / (alpha * alpha) + var_beta
        score, curvature = innovation / r2, -1.0 / r2
    else:
        score, curvature = _t_predictive_derivatives(innovation, cov[:, 1, 1] + var_beta, alpha, nu)
        curvature = np.clip(curvature, -(1.0 - 1e-12) / cov[:, 1, 1], 0.0)
    new_mean = mean + score[:, None] * k
    new_cov = cov + curvature[:, None, None] * (k[:, :, None] * k[:, None, :])
    return new_mean, new_cov


def speed_only(
    before: tuple[np.ndarray, np.ndarray], after: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """A time's update ``after`` (of ``time_update``) with theta's mean and variance put back
    to ``before``: the time's own effect on ability is left to ``_ability_from_time``.

    The joint step moves theta through its covariance with tau, so a correct but slow answer
    could lower the next P(correct): on cognitive_tutor, one correct answer taking 20 s
    lowered the next prediction in 46% of (person, item) checks, against the direction
    guarantee of every served model. ``LNIRT`` then moves theta's mean by the learned share
    of the joint step, bounded by the answer (``_ability_from_time``); theta's variance stays
    the answer's. The result is a valid covariance: the time step shrinks
    ``Cov(theta, tau)`` by the factor ``1 + h Var(tau)`` in (0, 1] and ``Var(tau)`` by the
    same factor, so the determinant stays positive.
    """
    mean, cov = after[0].copy(), after[1].copy()
    mean[:, 0] = before[0][:, 0]
    cov[:, 0, 0] = before[1][:, 0, 0]
    return mean, cov


def _ability_from_time(
    answered: np.ndarray,
    moved: np.ndarray,
    correct: np.ndarray,
    z_before: np.ndarray,
    now: tuple[np.ndarray, ...],
) -> np.ndarray:
    """Ability's mean after a time, from its mean after the answer ``answered`` and the mean
    the time's joint step would give it, ``moved`` (``time_weight_`` of the way).

    Through the correlation of ability and speed a time moves ability too, and a correct but
    slow answer could then lower the next P(correct) of its own item, against the direction
    guarantee. So the step stops where that item's chance is back at what it was before the
    answer: ``z_before`` is the item's probit argument then, ``now = (a, b, e, s)`` its pieces
    after the answer, and the bound solves ``(a (mu - b) + e) / s = z_before``. A correct
    answer's mean never goes below the bound (nor is pushed up to it: the answer's own step
    already cleared it), a wrong answer's never above; a time without an answer leaves
    ability alone. The variance stays the answer's (``speed_only``), so the item's chance
    moves only with the mean, monotonically, and the guarantee holds for that item.
    """
    a, b, e, s = now
    bound = b + (z_before * s - e) / a
    # A margin of 1e-9 (in ability's units) keeps rounding from crossing the bound.
    up = np.maximum(moved, np.minimum(bound + 1e-9, answered))
    down = np.minimum(moved, np.maximum(bound - 1e-9, answered))
    return np.where(correct == 1.0, up, np.where(correct == 0.0, down, answered))


def _state_number(state: Mapping[str, Any], key: str, valid: Callable[[Any], bool]) -> float:
    """The number ``state[key]`` (0 when an older artifact has none), checked by ``valid``."""
    value = state.get(key, 0.0)
    if not valid(value):
        raise ValueError(f"LNIRT state has an invalid {key}: {value!r}")
    return float(value)


def _t_predictive_derivatives(
    d: np.ndarray, var: np.ndarray, alpha: np.ndarray, nu: float
) -> tuple[np.ndarray, np.ndarray]:
    """``-f'/f`` and ``f''/f - (f'/f)^2`` at ``d`` for the density ``f`` of ``X + T / alpha``.

    ``X ~ N(0, var)`` and ``T ~ t_nu``; ``f(d) = E_X[alpha g(alpha (d - X))]`` with ``g`` the
    t density, by Gauss-Hermite quadrature over ``X`` (as ``t_interval_halfwidth``). With
    ``psi(z) = -(nu + 1) z / (nu + z^2)`` the log-density slope of the t, ``g' = g psi`` and
    ``g'' = g (psi^2 + psi')``.
    """
    z = alpha[:, None] * (d[:, None] - np.sqrt(var)[:, None] * _HERMITE_X[None, :])
    q = nu + z * z
    # t densities up to a constant factor, which cancels in the ratios below.
    g = np.exp(-0.5 * (nu + 1.0) * np.log(q / nu))
    psi = -(nu + 1.0) * z / q
    dpsi = -(nu + 1.0) * (nu - z * z) / (q * q)
    f0 = g @ _HERMITE_W
    f1 = alpha * ((g * psi) @ _HERMITE_W) / f0
    f2 = alpha * alpha * ((g * (psi * psi + dpsi)) @ _HERMITE_W) / f0
    return -f1, f2 - f1 * f1


def predictive_moments(
    mean: np.ndarray,
    cov: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    alpha: np.ndarray,
    beta: np.ndarray,
    var_b: np.ndarray | float = 0.0,
    var_beta: np.ndarray | float = 0.0,
    nu: float | None = None,
    extra: tuple[np.ndarray | float, np.ndarray | float] = (0.0, 0.0),
    floor: np.ndarray | float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior-predictive P(correct) and the centre and interval scale of log time.

    ``P = Phi(a (mu_theta - b) / sqrt(1 + a^2 (sigma_theta^2 + var_b)))`` integrates the probit
    over the person's (and an uncertain item's) uncertainty. Log time is ``beta - tau`` plus
    residual noise: ``N(beta - mu_tau, 1/alpha^2 + sigma_tau^2 + var_beta)`` for normal
    residuals, whose sd is returned. For Student-t residuals (``nu``) the predictive is the
    convolution of ``N(0, sigma_tau^2 + var_beta)`` with the t of scale ``1/alpha``, symmetric
    about ``beta - mu_tau``; the third value is then its central 80% half-width over ``Z80``
    (see ``t_interval_halfwidth``), so that ``centre -+ Z80 * scale`` are its exact 10% and 90%
    quantiles and ``exp(centre)`` its median. ``extra`` (mean, variance) is a further
    Gaussian term of the probit's argument (the response factors' part); with a guessing
    ``floor`` ``c`` the chance is ``c + (1 - c) P``.
    """
    spread = 1.0 + a * a * (cov[:, 0, 0] + var_b) + extra[1]
    p = ndtr((a * (mean[:, 0] - b) + extra[0]) / np.sqrt(spread))
    p = floor + (1.0 - floor) * p
    mu = beta - mean[:, 1]
    if nu is None:
        sd = np.sqrt(1.0 / (alpha * alpha) + cov[:, 1, 1] + var_beta)
    else:
        sd = t_interval_halfwidth(cov[:, 1, 1] + var_beta, alpha, nu) / Z80
    return p, mu, sd


# Gauss-Hermite nodes for the normal part of a t-plus-normal predictive: accurate to about
# 1e-3 in probability while the normal sd is below three t scales (tested).
_HERMITE_X, _HERMITE_W = roots_hermitenorm(32)
_HERMITE_W = _HERMITE_W / _HERMITE_W.sum()
# Row and user 0 of a one-row state (``predict_one``).
_ZERO = np.zeros(1, dtype=np.int64)


def t_interval_halfwidth(var: np.ndarray, alpha: np.ndarray, nu: float) -> np.ndarray:
    """Half-width ``q`` of the central 80% interval of ``X + T / alpha``.

    ``X ~ N(0, var)`` (person and item uncertainty) and ``T ~ t_nu`` (the residual).
    ``alpha q`` depends only on ``rho = alpha sqrt(var)``: it is read off a table of
    ``_standard_halfwidth`` over ``rho`` built once per ``nu`` (linear interpolation of the
    ratio to ``sqrt((Z80 rho)^2 + t_0.9^2)``, which is 1 at both ends and smooth between;
    error below 1e-4 relative), so that predicting is as fast as for normal residuals.
    Vectorised over rows.
    """
    grid, ratio, t90 = _halfwidth_table(float(nu))
    rho = np.sqrt(var) * alpha
    base = np.sqrt((Z80 * rho) ** 2 + t90 * t90)
    return np.interp(rho / (1.0 + rho), grid, ratio) * base / alpha


@lru_cache(maxsize=256)
def _halfwidth_table(nu: float) -> tuple[np.ndarray, np.ndarray, float]:
    """The table of ``t_interval_halfwidth`` on ``u = rho / (1 + rho)`` in [0, 1]."""
    u = np.linspace(0.0, 1.0, _TABLE_POINTS)
    rho = u[:-1] / (1.0 - u[:-1])
    t90 = float(stdtrit(nu, 0.9))
    exact = _standard_halfwidth(rho, nu)
    ratio = np.r_[exact / np.sqrt((Z80 * rho) ** 2 + t90 * t90), 1.0]
    return u, ratio, t90


def _standard_halfwidth(rho: np.ndarray, nu: float) -> np.ndarray:
    """The 90% quantile ``q`` of ``N(0, rho^2) + t_nu`` by Newton's method (it converges
    monotonically: the CDF is concave for ``q > 0``). The CDF is a Gauss-Hermite sum over the
    normal, ``E_X F_nu(q - X)``, where ``rho <= 2``, and a Gauss-Legendre sum over the t's
    quantiles, ``E_T Phi((q - T) / rho)``, where the normal is the wider part."""
    log_c = gammaln(0.5 * (nu + 1.0)) - gammaln(0.5 * nu) - 0.5 * math.log(nu * math.pi)
    u, w = roots_legendre(_LEGENDRE_POINTS)
    t_nodes, w = stdtrit(nu, 0.5 * (u + 1.0)), 0.5 * w
    narrow = rho <= 2.0
    sx = rho[narrow, None] * _HERMITE_X[None, :]
    wide = rho[~narrow, None]
    q = np.sqrt((Z80 * rho) ** 2 + float(stdtrit(nu, 0.9)) ** 2)
    for _ in range(_NEWTON_STEPS):
        z = q[narrow, None] - sx
        cdf, pdf = np.empty_like(q), np.empty_like(q)
        cdf[narrow] = stdtr(nu, z) @ _HERMITE_W
        pdf[narrow] = np.exp(log_c - 0.5 * (nu + 1.0) * np.log1p(z * z / nu)) @ _HERMITE_W
        y = (q[~narrow, None] - t_nodes[None, :]) / wide
        cdf[~narrow] = ndtr(y) @ w
        pdf[~narrow] = (np.exp(-0.5 * y * y - _HALF_LOG_2PI) / wide) @ w
        q = q - (cdf - 0.9) / pdf
    return q


# ---------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------


def check_lnirt_parameters(
    a: np.ndarray,
    b: np.ndarray,
    alpha: np.ndarray,
    beta: np.ndarray,
    sigma_P: np.ndarray,
    person_mean: np.ndarray | None = None,
    person_cov: np.ndarray | None = None,
) -> None:
    """Raise :class:`DegenerateFitError` naming the first parameter that must not be used.

    Checks: all finite; ``a > 0``; ``0 < alpha <= MAX_ALPHA``; ``Sigma_P`` symmetric with positive
    variances and ``|rho| < MAX_ABS_RHO``; person covariances positive definite.
    """
    named = {"a": a, "b": b, "alpha": alpha, "beta": beta, "sigma_P": sigma_P}
    if person_mean is not None:
        named["person_mean"] = person_mean
    if person_cov is not None:
        named["person_cov"] = person_cov
    for name, values in named.items():
        arr = np.asarray(values, dtype=float)
        bad = ~np.isfinite(arr)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise DegenerateFitError(f"{name} is not finite: {arr[idx]!r} at index {idx}")
    for name, values in (("a", a), ("alpha", alpha)):
        arr = np.asarray(values, dtype=float)
        bad = arr <= 0
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DegenerateFitError(f"{name} must be > 0, got {arr[i]!r} for item {i}")
    sharpness = np.asarray(alpha, dtype=float)
    if (sharpness > MAX_ALPHA).any():
        i = int(np.flatnonzero(sharpness > MAX_ALPHA)[0])
        raise DegenerateFitError(
            f"alpha={float(sharpness[i])!r} for item {i} is above {MAX_ALPHA}: a "
            "residual log-time sd that small means the times' spread went into the speeds"
        )
    sig = np.asarray(sigma_P, dtype=float)
    if sig.shape != (2, 2) or abs(sig[0, 1] - sig[1, 0]) > 1e-9 * (1 + abs(sig[0, 1])):
        raise DegenerateFitError(f"sigma_P must be a symmetric 2x2 matrix, got {sig.tolist()}")
    if sig[0, 0] <= _MIN_VARIANCE or sig[1, 1] <= _MIN_VARIANCE:
        raise DegenerateFitError(
            f"person variances must be positive, got Var(theta)={sig[0, 0]!r}, "
            f"Var(tau)={sig[1, 1]!r}"
        )
    rho = sig[0, 1] / math.sqrt(sig[0, 0] * sig[1, 1])
    if not abs(rho) < MAX_ABS_RHO:
        raise DegenerateFitError(
            f"person correlation rho={rho!r} is degenerate (|rho| must be < {MAX_ABS_RHO})"
        )
    if person_cov is not None:
        cov = np.asarray(person_cov, dtype=float)
        det = cov[:, 0, 0] * cov[:, 1, 1] - cov[:, 0, 1] * cov[:, 1, 0]
        bad = (cov[:, 0, 0] <= 0) | (cov[:, 1, 1] <= 0) | (det <= 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DegenerateFitError(
                f"person covariance {i} is not positive definite: {cov[i].tolist()}"
            )


# ---------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------


def _steps(group: np.ndarray) -> list[np.ndarray]:
    """For rows sorted by user (``group`` numbers the users from 0): the rows of every user's
    first row, then of every user's second row, and so on, so that all users can advance one
    row at a time, each step one vectorised update."""
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    rank = np.arange(len(group)) - starts[group]
    by_rank = np.argsort(rank, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(rank))]
    return [by_rank[bounds[k] : bounds[k + 1]] for k in range(len(bounds) - 1)]


def _response_extra(
    rf: _Factors | None, sf: SkillState | None, g: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray | float, np.ndarray | float]:
    """The mean and variance of the probit's argument beyond ``a (theta - b)``: the response
    factors' part and the skill ability's part, for users ``g`` at rows ``rows``."""
    mean: np.ndarray | float = 0.0
    var: np.ndarray | float = 0.0
    if rf is not None:
        mean, var = shift(rf[0][g], rf[1][g], rf[2][rows])
    if sf is not None:
        m, v = skill_shift(sf, rows)
        mean, var = mean + m, var + v
    return mean, var


def _user_groups(users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows sorted by user: the mask of each user's first row and the user's number."""
    first = np.r_[True, users[1:] != users[:-1]][: len(users)]
    return first, np.cumsum(first) - 1


def _row_value(row: Mapping[str, Any], key: str) -> float:
    value = row.get(key)
    if value is None:
        return math.nan
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`{key}` must be a number, got {value!r}") from exc
    return out


def _state_calibration(state: Mapping[str, Any]) -> tuple[float, float]:
    """The stored map of the chances (``calibration``); the identity for artifacts from
    before it."""
    calibration = state.get("calibration_", IDENTITY)
    if not is_calibration(calibration):
        raise ValueError(f"LNIRT state has an invalid calibration_: {calibration!r}")
    return float(calibration[0]), float(calibration[1])


def _checked_time_df(value: Any) -> float | None:
    """The degrees of freedom of a stored state: None (normal residuals) or a number > 0."""
    if value is None:
        return None
    try:
        nu = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"LNIRT state has an invalid time_df_: {value!r}") from exc
    if not (math.isfinite(nu) and nu > 0):
        raise ValueError(f"LNIRT state has an invalid time_df_: {value!r}")
    return nu


@dataclass(frozen=True)
class _Searched:
    """The values an LNIRT fit chooses by replay (``LNIRT.warm_start``)."""

    drift: np.ndarray
    guess_floor: float
    time_weight: float
    times_fitted: bool
    success_gain: float = 0.0
    skill_sd: float = 0.0
    calibration: tuple[float, float] | None = None


class LNIRT(LearnerModel):
    """van der Linden's (2007) hierarchical speed-accuracy model (R package LNIRT).

    Hyperparameters:
        method: ``"em"`` (deterministic marginal MAP, the default) or ``"gibbs"`` (MCMC
            posterior means, as the R package).
        max_iter, tol: EM iterations and the largest parameter change that stops them.
        n_quadrature: grid points for ability in the EM (uniform on [-6, 6]).
        seed: random seed of the Gibbs sampler (EM does not draw random numbers).
        prior_log_a_sd, prior_b_sd, prior_log_alpha_sd, prior_beta_sd: spreads of the weak
            normal item priors on ``log a``, ``b``, ``log alpha`` and ``beta`` (centres are
            fitted by empirical Bayes).
        prior_person_strength, prior_speed_sd: weak prior on the person covariance, worth
            this many pseudo-persons with no ability-speed correlation and a speed sd of
            ``prior_speed_sd`` (log seconds); it only matters with very few persons.
        n_samples, burn_in: kept and discarded Gibbs sweeps.
        time_model: ``"t"`` (Student-t log-time residuals with learned degrees of freedom,
            the default) or ``"normal"`` (van der Linden's lognormal).
        prior_item_strength: weight, in pseudo-items, of the given ``prior_log_a_sd``,
            ``prior_log_alpha_sd`` and ``prior_beta_sd`` as a hyperprior when the EM learns
            the spreads of those item priors by empirical Bayes; None keeps the given
            spreads fixed.
        learn_drift: learn the persons' random-walk variances ``drift_`` (False: static).
        learn_factors: learn person-by-item factors of answers and of response times where
            the data support them (``factors``; False: none).
        guess_floor: the guessing floor in [0, 0.5) when it is not learned (see "Guessing
            floor" in the module docstring; 0: the plain probit).
        learn_guess_floor: learn the floor from the training persons (``_fit_floor``).
        time_weight: the share in [0, 1] of a time's joint step that moves ability when it is
            not learned (0: times teach speed only; see ``_ability_from_time``).
        learn_time_weight: learn that share from the training persons (``_fit_time_weight``).
        success_gain: ability gained with each correct answer when it is not learned (see
            ``_fit_success_gain``; 0: persons do not learn while they work).
        learn_success_gain: learn that gain from the training persons.
        skill_sd: the spread of the persons' skill abilities when it is not learned (see
            ``skills``; 0: one ability for every skill).
        learn_skill_sd: learn that spread from the training persons (``_fit_skill_sd``).
        learn_calibration: map the chances for new persons through a logistic recalibration
            learned by cross-fitting halves of the training persons (``calibration``; needs
            ``CALIBRATION_MIN_USERS`` persons, else the identity). False: the probit's own
            chances.

    Learned state: ``a_``, ``b_``, ``alpha_``, ``beta_`` (and ``*_sd_``), ``mu_P_``,
    ``sigma_P_``, ``rho_``, ``item_index_``, ``user_index_``, ``person_mean_``,
    ``person_cov_``, ``person_n_``, ``item_prior_mean_``/``item_prior_sd_`` (on
    ``log a, b, log alpha, beta``), ``skill_ids_``/``skill_b_centre_``/``skill_b_sd_`` (the
    skills' difficulty centres and the items' spread around them; empty and None without
    skills), ``time_df_`` (None: normal residuals), ``guess_floor_``, ``time_weight_``,
    ``success_gain_``, ``skill_sd_`` (the spread of the skill abilities; 0: none),
    ``calibration_`` (``(c0, c1)`` of the map ``sigmoid(c0 + c1 logit(p))``), ``drift_``
    (per-response variances of theta and tau), ``response_loadings_``/``time_loadings_`` (the
    items' loadings on the factors of answers and of times, shape (items, rank); rank 0
    without factors), ``n_iter_``, ``converged_``, ``objective_`` and
    ``times_fitted_`` (False for an accuracy-only fit on data without times: time columns of
    its predictions are NaN, see the module docstring).
    """

    name: ClassVar[str] = "lnirt"
    predicts_time: ClassVar[bool] = True

    def __init__(
        self,
        method: str = "em",
        max_iter: int = 500,
        tol: float = 1e-4,
        n_quadrature: int = 121,
        seed: int = 0,
        prior_log_a_sd: float = 0.5,
        prior_b_sd: float = 2.0,
        prior_log_alpha_sd: float = 0.5,
        prior_beta_sd: float = 1.0,
        prior_person_strength: float = 2.0,
        prior_speed_sd: float = 0.5,
        n_samples: int = 1000,
        burn_in: int = 500,
        time_model: str = "t",
        prior_item_strength: float | None = 2.0,
        learn_drift: bool = True,
        learn_factors: bool = True,
        guess_floor: float = 0.0,
        learn_guess_floor: bool = True,
        time_weight: float = 0.0,
        learn_time_weight: bool = True,
        success_gain: float = 0.0,
        learn_success_gain: bool = True,
        skill_sd: float = 0.0,
        learn_skill_sd: bool = True,
        learn_calibration: bool = True,
    ) -> None:
        self.method = method
        self.max_iter = max_iter
        self.tol = tol
        self.n_quadrature = n_quadrature
        self.seed = seed
        self.prior_log_a_sd = prior_log_a_sd
        self.prior_b_sd = prior_b_sd
        self.prior_log_alpha_sd = prior_log_alpha_sd
        self.prior_beta_sd = prior_beta_sd
        self.prior_person_strength = prior_person_strength
        self.prior_speed_sd = prior_speed_sd
        self.n_samples = n_samples
        self.burn_in = burn_in
        self.time_model = time_model
        self.prior_item_strength = prior_item_strength
        self.learn_drift = learn_drift
        self.learn_factors = learn_factors
        self.guess_floor = guess_floor
        self.learn_guess_floor = learn_guess_floor
        self.time_weight = time_weight
        self.learn_time_weight = learn_time_weight
        self.success_gain = success_gain
        self.learn_success_gain = learn_success_gain
        self.skill_sd = skill_sd
        self.learn_skill_sd = learn_skill_sd
        self.learn_calibration = learn_calibration

    # -- fitting ---------------------------------------------------------------------
    def _priors(self) -> LNIRTPriors:
        values = {
            "prior_log_a_sd": self.prior_log_a_sd,
            "prior_b_sd": self.prior_b_sd,
            "prior_log_alpha_sd": self.prior_log_alpha_sd,
            "prior_beta_sd": self.prior_beta_sd,
            "prior_speed_sd": self.prior_speed_sd,
        }
        for key, value in values.items():
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{key} must be a positive number, got {value!r}")
        strengths = {
            "prior_person_strength": self.prior_person_strength,
            "prior_item_strength": 0.0
            if self.prior_item_strength is None
            else self.prior_item_strength,
        }
        for key, strength in strengths.items():
            if not (
                isinstance(strength, int | float) and math.isfinite(strength) and strength >= 0
            ):
                raise ValueError(f"{key} must be >= 0 (or None), got {strength!r}")
        item_strength = self.prior_item_strength
        return LNIRTPriors(
            log_a_sd=float(self.prior_log_a_sd),
            b_sd=float(self.prior_b_sd),
            log_alpha_sd=float(self.prior_log_alpha_sd),
            beta_sd=float(self.prior_beta_sd),
            person_strength=float(self.prior_person_strength),
            speed_sd=float(self.prior_speed_sd),
            item_strength=None if item_strength is None else float(item_strength),
        )

    def fit(self, df: pd.DataFrame) -> Self:
        """Fit items and the person population on ``df``; every training user keeps a posterior.

        Rows with a missing ``correct`` teach only time, rows with a missing ``rt_seconds`` only
        accuracy; when no row has a time, only the response part (2PL) is fitted and
        ``times_fitted_`` is False. Raises :class:`DegenerateFitError` when the fitted
        parameters are unusable.
        """
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.time_model not in TIME_MODELS:
            raise ValueError(f"time_model must be one of {TIME_MODELS}, got {self.time_model!r}")
        priors = self._priors()
        if not is_guess_floor(self.guess_floor):
            raise ValueError(f"guess_floor must be a number in [0, 0.5), got {self.guess_floor!r}")
        if not is_share(self.time_weight):
            raise ValueError(f"time_weight must be a number in [0, 1], got {self.time_weight!r}")
        if not is_share(self.success_gain):  # ability sds per correct answer, at most 1
            raise ValueError(f"success_gain must be a number in [0, 1], got {self.success_gain!r}")
        if not is_share(self.skill_sd):  # in sds of theta, at most 1
            raise ValueError(f"skill_sd must be a number in [0, 1], got {self.skill_sd!r}")
        data = validate_interactions(df, allow_missing_outcome=True)
        # Item time parameters are shared by everyone: absurd times are floored and pulled
        # into their item's robust band first, and only a user's first few times at an item
        # are used, so one user's rows cannot drag them (see models.base).
        robust = robust_seconds(data, LNIRT_ROBUST_Z)
        data["rt_seconds"] = population_seconds(data, LNIRT_ROBUST_Z)
        packed = pack_responses(data)
        if self.method == "em":
            est = fit_em(
                packed,
                priors=priors,
                max_iter=int(self.max_iter),
                tol=float(self.tol),
                n_quadrature=int(self.n_quadrature),
                student_t=self.time_model == "t",
            )
        else:
            est = fit_gibbs(
                packed,
                priors=priors,
                n_samples=int(self.n_samples),
                burn_in=int(self.burn_in),
                seed=int(self.seed),
                student_t=self.time_model == "t",
            )
        check_lnirt_parameters(
            est.a, est.b, est.alpha, est.beta, est.sigma_P, est.person_mean, est.person_cov
        )
        self._adopt(est)
        self.guess_floor_ = 0.0 if self.learn_guess_floor else float(self.guess_floor)
        self.time_weight_ = 0.0 if self.learn_time_weight else float(self.time_weight)
        self.success_gain_ = 0.0 if self.learn_success_gain else float(self.success_gain)
        self._use_skill_sd(0.0 if self.learn_skill_sd else float(self.skill_sd))
        self.times_fitted_ = packed.has_times
        # The times left out of the item fit still belong to their user: absorbed into the
        # user's posterior as online updates would (items stay fixed).
        held_back = np.isnan(data["rt_seconds"].to_numpy()) & ~np.isnan(robust)
        self.drift_ = np.zeros(2)
        self._absorb_times(data[held_back].assign(rt_seconds=robust[held_back]))
        warm_calibration = getattr(self.__dict__.get("_warm"), "calibration", None)
        self._learn_by_replay(data, robust)
        self._absorb_skills(data)
        self.calibration_ = IDENTITY
        if self.learn_calibration:
            self.calibration_ = warm_calibration or self._fit_calibration(df)
        self.fitted_ = True
        return self

    def _fit_calibration(self, df: pd.DataFrame) -> tuple[float, float]:
        """The map of the chances learned by cross-fitting (see ``calibration``): each half
        of the training persons is predicted, one step ahead and as new persons, by an LNIRT
        with these settings and searched values fitted on the other half. The identity with
        fewer than ``CALIBRATION_MIN_USERS`` persons, or when a half cannot be fitted."""
        users = df["user_id"].to_numpy()
        if len(pd.unique(users)) < CALIBRATION_MIN_USERS:
            return IDENTITY
        half_of = user_halves(users)
        answers, chances = [], []
        for half in (0, 1):
            # A coarse map needs no tight fit: the halves stop at a looser tolerance.
            model = LNIRT(**{**self.get_params(), "tol": max(float(self.tol), HALF_FIT_TOL)})
            model.learn_calibration = False
            model._warm = self._searched()
            try:
                model.fit(df[half_of != half])
            except DegenerateFitError as exc:
                log.warning("LNIRT calibration skipped: a half could not be fitted: %s", exc)
                return IDENTITY
            held = df[half_of == half]
            known = held["correct"].notna().to_numpy()
            answers.append(held["correct"].to_numpy(dtype=float)[known])
            chances.append(model.predict(held)["p_correct"].to_numpy(dtype=float)[known])
        return for_whole_fit(fit_logit_map(np.concatenate(answers), np.concatenate(chances)))

    def _learn_by_replay(self, data: pd.DataFrame, robust: np.ndarray) -> None:
        """The fit's learned numbers that replays of training persons choose (or that
        ``warm_start`` handed over), and the response and time factors; ``robust`` are the
        rows' robust times."""
        warm = self.__dict__.pop("_warm", None)
        if warm is not None and warm.times_fitted != self.times_fitted_:
            warm = None  # chosen without times (or with): search again
        if self.learn_drift:
            self.drift_ = warm.drift if warm else self._fit_drift(data.assign(rt_seconds=robust))
        if self.learn_factors:
            for name in ("time", "response") if self.times_fitted_ else ("response",):
                self._fit_factors(data.assign(rt_seconds=robust), name)
        if self.learn_skill_sd:
            self._use_skill_sd(warm.skill_sd if warm else self._fit_skill_sd(data))
        if self.learn_guess_floor:
            self.guess_floor_ = warm.guess_floor if warm else self._fit_floor(data)
            self._items_cache = None
        if self.learn_success_gain:
            self.success_gain_ = warm.success_gain if warm else self._fit_success_gain(data)
        if self.learn_time_weight and self.times_fitted_:
            self.time_weight_ = (
                warm.time_weight if warm else self._fit_time_weight(data.assign(rt_seconds=robust))
            )

    def warm_start(self, previous: LearnerModel) -> bool:
        """Take over the drift, guessing floor, success gain, skill spread and time weight that
        ``previous`` (a fitted LNIRT with the same settings) chose by replay; this model's
        next ``fit`` uses them instead of replaying again (about two thirds of a fit's time).
        Only the values this model would learn are taken; the items and persons are fitted
        anew."""
        if not isinstance(previous, LNIRT) or not getattr(previous, "fitted_", False):
            return False
        if previous.get_params() != self.get_params():
            return False
        self._warm = previous._searched(calibration=True)
        return True

    def _searched(self, calibration: bool = False) -> _Searched:
        """This fitted model's searched values (``warm_start``), with its calibration if
        ``calibration``."""
        return _Searched(
            drift=np.array(self.drift_, dtype=float),
            guess_floor=float(self.guess_floor_),
            time_weight=float(self.time_weight_),
            times_fitted=bool(self.times_fitted_),
            success_gain=float(self.success_gain_),
            skill_sd=float(self.skill_sd_),
            calibration=tuple(self.calibration_) if calibration else None,
        )

    def _fit_drift(self, data: pd.DataFrame) -> np.ndarray:
        """Learn ``drift_`` by replaying training persons.

        The persons of a state-space model may change while they work (practice, fatigue):
        ``tau`` takes a random-walk step of variance ``drift_[1]`` after every response, which
        keeps the person's speed from becoming too certain and lets it follow a trend. The
        variance is chosen on a grid (multiples ``_DRIFT_GRID`` of the population variance of
        tau) by the prediction-error decomposition of the likelihood (Harvey 1989,
        "Forecasting, structural time series models and the Kalman filter"): up to
        ``_DRIFT_PERSONS`` training persons are replayed from the population prior one step
        ahead and scored by the log-likelihood of their log times. Static persons (0) win
        where they fit. Theta does not drift: its random walk would pull every prediction
        towards 1/2 after each answer, so that a correct answer could lower the next
        prediction (seen on cognitive_tutor for a third of (person, item) checks), which the
        direction guarantee of the served predictions forbids. The replay reuses the
        items fitted on those persons, so the drift found is, if anything, a little small.
        (Calibrating the interval width on the same replay was tried and dropped: with
        sparsely seen items the in-sample residuals are too small, and on cognitive_tutor it
        narrowed the intervals of new students from 78% to 75% coverage.)
        """
        replay_users, item_ids, correct, log_t = self._replay_rows(data, _DRIFT_PERSONS)
        tim = np.isfinite(log_t)
        scale = np.array([0.0, self.sigma_P_[1, 1]])

        def replay(drift: np.ndarray) -> np.ndarray:
            self.drift_ = drift
            return self._one_step_ahead(replay_users, item_ids, correct, log_t)

        def score(steps: np.ndarray) -> float:
            d = log_t[tim] - steps[tim, 1]
            return float(np.sum(self._time_log_density(d, steps[tim, 2], steps[tim, 3])))

        best, top = np.zeros(2), -math.inf
        # The likelihood is taken as unimodal in the drift: the search stops at the first
        # grid value that fits worse than the one before.
        for f in _DRIFT_GRID if tim.any() else ():
            trial = f * scale
            value = score(replay(trial))
            if value <= top:
                break
            top, best = value, trial
        return best

    def _replay_rows(
        self, data: pd.DataFrame, persons: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Up to ``persons`` training persons (evenly spaced by id), sorted for
        ``_one_step_ahead`` as new persons: their ids, items, answers and plausible log times
        (NaN where missing, unanswered or not fitted)."""
        users = np.sort(data["user_id"].unique().astype(str))
        take = users[np.unique(np.linspace(0, len(users) - 1, persons).astype(int))]
        rows = data[data["user_id"].astype(str).isin(take)]
        pos = sort_for_sequences(rows)
        # Replayed as new users: their ids must not match stored posteriors.
        replay_users = "replay:" + rows["user_id"].astype(str).to_numpy()[pos]
        item_ids = rows["item_id"].to_numpy()[pos]
        correct = rows["correct"].to_numpy(dtype=float)[pos]
        log_t, has_t = plausible_log_times(rows["rt_seconds"].to_numpy(dtype=float)[pos])
        log_t[~has_t | np.isnan(correct) | (not self.times_fitted_)] = np.nan
        return replay_users, item_ids, correct, log_t

    def _fit_floor(self, data: pd.DataFrame) -> float:
        """The guessing floor (``FLOOR_GRID``) whose one-step-ahead replay of up to
        ``_FLOOR_PERSONS`` training persons, as new persons, has the lowest log loss (0 with
        fewer than ``_FLOOR_MIN_PERSONS`` persons).

        The log loss is taken as unimodal in the floor: the search stops at the first floor
        that predicts worse than the one before. As for the drift, the replayed persons'
        items were fitted on them too, which makes the floor found small: on mars_ib the
        replay chooses 0.05 where 0.10 predicts new persons best (log loss 0.5789 against
        0.5785 over five split seeds; the replay itself scores 0.557, new persons 0.579).
        """

        def use(floor: float) -> None:
            self.guess_floor_, self._items_cache = floor, None

        # The time weight is still 0 here, so times would not move ability: answers decide.
        return self._choose_by_replay(data, FLOOR_GRID, use, with_times=False)

    def _fit_success_gain(self, data: pd.DataFrame) -> float:
        """The ability gained with each correct answer (``_SUCCESS_GAIN_GRID``) whose
        replay of training persons, as for ``_fit_floor``, has the lowest log loss.

        Students learn while they practise; a static ability then predicts their later
        answers too low (cognitive_tutor, before: 0.576 for the 21st to 50th answers of new
        students, who solved 0.604). The gain is the performance-factors idea (Pavlik, Cen &
        Koedinger 2009, "Performance factors analysis") on the person's ability, with
        successes only: a wrong answer that also taught something could raise the next
        prediction, which the direction guarantee forbids. Data where persons do not learn
        (a test) take 0, and then nothing changes.
        """

        def use(gain: float) -> None:
            self.success_gain_ = gain

        return self._choose_by_replay(data, _SUCCESS_GAIN_GRID, use, with_times=False)

    def _fit_time_weight(self, data: pd.DataFrame) -> float:
        """The share of a time's joint step that moves ability (``_TIME_WEIGHT_GRID``, see
        ``_ability_from_time``) whose replay of training persons, as for ``_fit_floor``, has
        the lowest log loss of the answers.

        Under the model a person's times say something about their ability, through the
        correlation of ability and speed, and a one-step-ahead prediction should use it. Real
        times also vary for reasons the model does not know (on the tutor data, hints and
        pauses), so the replay decides. Measured over five split seeds of each data set
        (README): mars_ib takes 1 (log loss 0.5789 -> 0.5767), cognitive_tutor would lose
        (0.5295 -> 0.5338 with 1) and takes 0.
        """

        def use(weight: float) -> None:
            self.time_weight_ = weight

        return self._choose_by_replay(data, _TIME_WEIGHT_GRID, use, with_times=True)

    def _fit_skill_sd(self, data: pd.DataFrame) -> float:
        """The spread of the persons' skill abilities (``_SKILL_SD_GRID``, see ``skills``)
        whose replay of training persons, as for ``_fit_floor``, has the lowest log loss; 0
        when the items have fewer than two skills.

        Over five split seeds (README): cognitive_tutor's 12 skills take 0.5 (log loss of new
        students 0.5293 -> 0.5233), mars_ib's 64 puzzle dimensions 0.
        """
        if len(np.unique(self._item_skill[self._item_skill >= 0])) < 2:
            return 0.0
        return self._choose_by_replay(data, _SKILL_SD_GRID, self._use_skill_sd, with_times=False)

    def _use_skill_sd(self, sd: float) -> None:
        """Set the spread of the skill abilities; every person's then hold the prior."""
        self._skills = SkillPart(sd, self._item_skill, len(self.skill_ids_))
        self._items_cache = None

    @property
    def skill_sd_(self) -> float:
        """The spread of the persons' skill abilities (0: one ability for every skill)."""
        return self._skills.sd if self._skills.active else 0.0

    def skill_abilities(self) -> pd.DataFrame:
        """Every stored (user, skill) ability that answers have moved from the prior: columns
        ``user_id``, ``skill_id``, ``mean`` and ``sd`` of ``delta`` (on the probit scale, beyond
        the user's ability); other pairs hold the prior ``N(0, skill_sd_^2)``. Empty without
        skill abilities."""
        pairs, values = self._skills.table()
        return pd.DataFrame(
            {
                "user_id": np.asarray(self._user_ids, dtype=object)[pairs[:, 0]],
                "skill_id": self.skill_ids_[pairs[:, 1]] if len(pairs) else [],
                "mean": values[:, 0],
                "sd": np.sqrt(values[:, 1]),
            }
        )

    def _absorb_skills(self, data: pd.DataFrame) -> None:
        """The training persons' skill abilities from their answers, in each person's order:
        assumed-density steps of ``delta`` alone, at the person's fitted ability (which the
        fit learned from the same answers, so it does not move again)."""
        rows = data[data["correct"].notna()]
        if not self._skills.active or len(rows) == 0:
            return
        pos = sort_for_sequences(rows)
        users = rows["user_id"].astype(str).to_numpy()[pos]
        item_ids = rows["item_id"].to_numpy()[pos]
        correct = rows["correct"].to_numpy(dtype=float)[pos]
        first, group = _user_groups(users)
        stored = pd.Index(self._user_ids, dtype=object).get_indexer(users[first])
        a, b, var_b, *_, floor = self._item_arrays(item_ids)
        positions = self._item_lookup.get_indexer(item_ids)
        skills = self._skill_columns(positions, None)
        _, rf, sf = self._factor_states(stored, positions, skills, group)
        if sf is None:  # for the type checker: the part is active
            return
        mean, cov = self._pmean[stored], self._pcov[stored]
        for step in _steps(group):
            g = group[step]
            extra = _response_extra(rf, sf, g, step)
            item, state = (a[step], b[step], var_b[step]), (mean[g], cov[g])
            score, curvature = probit_step(state, correct[step], item, extra, floor[step])
            skill_update(sf, step, score, curvature)
        self._skills.keep(stored, sf)

    def _choose_by_replay(
        self,
        data: pd.DataFrame,
        grid: tuple[float, ...],
        use: Callable[[float], None],
        *,
        with_times: bool,
    ) -> float:
        """The value of ``grid`` (set by ``use``) whose one-step-ahead replay of up to
        ``_FLOOR_PERSONS`` training persons, as new persons, has the lowest log loss of the
        answers; ``grid[0]`` with fewer than ``_FLOOR_MIN_PERSONS`` persons or no answer. The
        log loss is taken as unimodal along the grid: the search stops at the first value
        that predicts worse than the one before. The chosen value is left set."""
        best, best_value = math.inf, grid[0]
        if data["user_id"].nunique() >= _FLOOR_MIN_PERSONS:
            replay_users, item_ids, correct, log_t = self._replay_rows(data, _FLOOR_PERSONS)
            if not with_times:
                log_t[:] = np.nan
            answered = np.isfinite(correct)
            y = correct[answered]
            for value in grid if answered.any() else ():
                use(value)
                p = self._one_step_ahead(replay_users, item_ids, correct, log_t)[answered, 0]
                p = np.clip(p, 1e-12, 1.0 - 1e-12)
                loss = -float(np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))
                if loss >= best:
                    break
                best, best_value = loss, value
        use(best_value)
        return best_value

    def _fit_factors(self, data: pd.DataFrame, name: str) -> None:
        """Learn one part's person-by-item factors (``"time"`` or ``"response"``, see
        ``factors``) when they predict better.

        Time: the standardised residuals ``alpha_i (log t - beta_i + tau_p)`` of the training
        persons (robust times, posterior speeds) are factorised. Responses: the answers are
        regressed on the factors by probit with the offset ``a_i (theta_p - b_i)`` (posterior
        abilities). The rank is chosen by replay: the loadings are fitted on four fifths of
        the persons, the other fifth is replayed one step ahead as new persons (ability,
        speed and factors learned online from the population prior), and a rank is kept
        only if its mean squared log-time error (time) or log loss (responses) is
        ``MIN_GAIN`` or ``MIN_RESPONSE_GAIN`` (relative) below that of the rank before. The
        kept rank is then refitted on every person, whose posteriors start the training
        persons' online states.
        """
        users = pd.Index(self._user_ids, dtype=object).get_indexer(data["user_id"].astype(str))
        items = self._item_lookup.get_indexer(data["item_id"].astype(str))
        correct = data["correct"].to_numpy(dtype=float)
        keep = (users >= 0) & (items >= 0) & np.isfinite(correct)
        if name == "time":
            log_t, has_t = plausible_log_times(data["rt_seconds"].to_numpy(dtype=float))
            keep &= has_t
            target = self.alpha_[items] * (log_t - self.beta_[items] + self._pmean[users, 1])
        else:
            target = correct
        users, items, target = users[keep], items[keep], target[keep]
        persons = np.unique(users)
        if len(self.item_ids_) < MIN_ITEMS or len(persons) < MIN_PERSONS:
            return
        rank = self._choose_rank(data[keep], users, items, target, persons, name)
        if rank:
            self._parts[name] = self._fitted_part(name, users, items, target, rank, True)
            self._items_cache = None

    def _fitted_part(
        self,
        name: str,
        users: np.ndarray,
        items: np.ndarray,
        target: np.ndarray,
        rank: int,
        posteriors: bool,
    ) -> FactorPart:
        """Factors of rank ``rank`` fitted on the given answers; with ``posteriors``, the
        fitted persons' posteriors too (else every person holds the prior)."""
        n_users, n_items = len(self._user_ids), len(self.item_ids_)
        seen = np.unique(users)
        if name == "time":
            u, v = fit_loadings(users, items, target, n_users, n_items, rank, self.seed)
            loadings = v / self.alpha_[:, None]
        else:
            offset = self.a_[items] * (self._pmean[users, 0] - self.b_[items])
            u, v = fit_response_loadings(
                users, items, offset, target, n_users, n_items, rank, self.seed
            )
            loadings = v
        prior = np.atleast_2d(np.cov(u[seen].T)) + 1e-9 * np.eye(rank)
        part = FactorPart(loadings, prior, len(self._pn))
        if posteriors:
            if name == "time":
                mean, cov = posterior(users, v[items], target, n_users, prior)
            else:
                mean, cov = response_posterior(users, v[items], offset, u, prior)
            part.mean[:n_users], part.cov[:n_users] = mean, cov
        return part

    def _choose_rank(
        self,
        data: pd.DataFrame,
        users: np.ndarray,
        items: np.ndarray,
        target: np.ndarray,
        persons: np.ndarray,
        name: str,
    ) -> int:
        """The number of factors of part ``name`` (0 to ``MAX_RANK``) that best predicts
        held-out persons one step ahead (see ``_fit_factors``)."""
        rng = np.random.default_rng(self.seed)
        held = np.zeros(len(self._user_ids), dtype=bool)
        held[rng.choice(persons, size=max(1, len(persons) // 5), replace=False)] = True
        fit_rows, test = ~held[users], data[held[users]]
        pos = sort_for_sequences(test)
        replay_users = "replay:" + test["user_id"].astype(str).to_numpy()[pos]
        item_ids = test["item_id"].to_numpy()[pos]
        correct = test["correct"].to_numpy(dtype=float)[pos]
        log_t = plausible_log_times(test["rt_seconds"].to_numpy(dtype=float)[pos])[0]
        if not self.times_fitted_:
            log_t[:] = np.nan
        gain = MIN_GAIN if name == "time" else MIN_RESPONSE_GAIN
        kept = self._parts[name]
        best, best_rank = math.inf, 0
        for rank in range(MAX_RANK + 1):
            if rank:
                fitted = (users[fit_rows], items[fit_rows], target[fit_rows])
                self._parts[name] = self._fitted_part(name, *fitted, rank, False)
                self._items_cache = None
            steps = self._one_step_ahead(replay_users, item_ids, correct, log_t)
            if name == "time":
                loss = float(np.mean((log_t - steps[:, 1]) ** 2))
            else:
                p = np.clip(steps[:, 0], 1e-12, 1.0 - 1e-12)
                loss = -float(np.mean(correct * np.log(p) + (1.0 - correct) * np.log1p(-p)))
            if loss >= best * (1.0 - gain):
                break
            best, best_rank = loss, rank
        self._parts[name] = kept
        self._items_cache = None
        return best_rank

    @property
    def time_loadings_(self) -> np.ndarray:
        """The items' loadings on the time factors, (items, rank); rank 0 without them."""
        return self._parts["time"].loadings

    @property
    def response_loadings_(self) -> np.ndarray:
        """The items' loadings on the response factors, (items, rank); rank 0 without them."""
        return self._parts["response"].loadings

    def _time_log_density(self, d: np.ndarray, var: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """Log predictive density of log time at ``d`` from its centre: the normal with
        variance ``var + 1/alpha^2``, or ``N(0, var)`` convolved with the t of scale
        ``1/alpha`` (Gauss-Hermite over the normal, as ``t_interval_halfwidth``)."""
        nu = self.time_df_
        if nu is None:
            total = var + 1.0 / (alpha * alpha)
            return -0.5 * (np.log(2.0 * math.pi * total) + d * d / total)
        log_c = gammaln(0.5 * (nu + 1.0)) - gammaln(0.5 * nu) - 0.5 * math.log(nu * math.pi)
        z = alpha[:, None] * (d[:, None] - np.sqrt(var)[:, None] * _HERMITE_X[None, :])
        dens = np.exp(-0.5 * (nu + 1.0) * np.log1p(z * z / nu)) @ _HERMITE_W
        return log_c + np.log(alpha * dens)

    def _absorb_times(self, rows: pd.DataFrame) -> None:
        """Update the stored posteriors of known users with the times of ``rows`` (in each
        user's order; accuracy is not counted again), all users one step at a time."""
        if len(rows) == 0:
            return
        pos = sort_for_sequences(rows)
        users = rows["user_id"].to_numpy()[pos]
        items = self._item_arrays(rows["item_id"].to_numpy()[pos])
        log_t = np.log(rows["rt_seconds"].to_numpy(dtype=float)[pos])
        first, group = _user_groups(users)
        stored = pd.Index(self._user_ids, dtype=object).get_indexer(users[first])
        mean, cov = self._pmean[stored].copy(), self._pcov[stored].copy()
        nan = np.full(len(users), np.nan)
        self._learn_in_order(mean, cov, group, nan, log_t, items)
        self._pmean[stored], self._pcov[stored] = mean, cov

    def _learn_in_order(
        self,
        mean: np.ndarray,
        cov: np.ndarray,
        group: np.ndarray,
        correct: np.ndarray,
        log_t: np.ndarray,
        items: tuple[np.ndarray, ...],
    ) -> None:
        """Update ``mean``/``cov`` of every user in place with all their rows, in row order.

        Rows must be sorted by user and order; ``group`` numbers the users from 0. All users
        advance one step at a time, so each step is one vectorised update.
        """
        for step in _steps(group):
            self._learn(mean, cov, group[step], step, correct, log_t, *items)

    def _adopt(self, est: LNIRTEstimate) -> None:
        self.a_, self.b_ = est.a.copy(), est.b.copy()
        self.alpha_, self.beta_ = est.alpha.copy(), est.beta.copy()
        self.a_sd_, self.b_sd_ = est.a_sd.copy(), est.b_sd.copy()
        self.alpha_sd_, self.beta_sd_ = est.alpha_sd.copy(), est.beta_sd.copy()
        self.mu_P_ = np.zeros(2)
        self.sigma_P_ = np.array(est.sigma_P, dtype=float)
        self.item_prior_mean_ = np.array(est.item_prior_mean, dtype=float)
        self.item_prior_sd_ = np.array(est.item_prior_sd, dtype=float)
        self.time_df_ = None if est.time_df is None else float(est.time_df)
        if self.time_df_ is not None:
            _halfwidth_table(self.time_df_)  # built now, not on the first request served
        self.n_iter_ = int(est.n_iter)
        self.converged_ = bool(est.converged)
        self.objective_ = float(est.objective)
        self._set_items(np.asarray(est.item_ids, dtype=str))
        self._set_skills(est.skill_ids, est.skill_b_centre, est.skill_b_sd)
        codes = est.item_skill
        n_skills = len(self.skill_ids_)
        self._item_skill = (
            np.full(len(self.item_ids_), -1, dtype=np.int64)
            if codes is None
            else np.where(np.asarray(codes) < n_skills, codes, -1).astype(np.int64)
        )
        self._set_persons(
            np.asarray(est.user_ids, dtype=str), est.person_mean, est.person_cov, est.person_n
        )

    def _set_items(self, item_ids: np.ndarray) -> None:
        self._items_cache = None
        self.item_ids_ = item_ids
        self.item_index_ = {item: i for i, item in enumerate(item_ids.tolist())}
        self._item_lookup = pd.Index(item_ids)

    def _set_skills(self, skill_ids: Any, centres: np.ndarray | None, spread: float | None) -> None:
        """The skills' difficulty centres (``skill_b_centre_``, per ``skill_ids_``) and the
        items' spread around them (``skill_b_sd_``); empty when the items had no skills."""
        self._items_cache = None
        if skill_ids is None or centres is None or len(skill_ids) == 0:
            self.skill_ids_ = np.array([], dtype=str)
            self.skill_b_centre_ = np.array([], dtype=float)
            self.skill_b_sd_ = None
        else:
            self.skill_ids_ = np.asarray(skill_ids, dtype=str)
            self.skill_b_centre_ = np.asarray(centres, dtype=float)
            self.skill_b_sd_ = None if spread is None else float(spread)
        self._skill_row = {
            skill: len(self.item_ids_) + 1 + k for k, skill in enumerate(self.skill_ids_.tolist())
        }
        self._skill_col = {skill: k for k, skill in enumerate(self.skill_ids_.tolist())}

    def _set_persons(
        self, user_ids: np.ndarray, mean: np.ndarray, cov: np.ndarray, n: np.ndarray
    ) -> None:
        # Buffers grow by doubling, so that adding a new user in update() is amortised O(1).
        size = len(user_ids)
        cap = max(16, 2 * size)
        self._pmean = np.zeros((cap, 2))
        self._pcov = np.zeros((cap, 2, 2))
        self._pn = np.zeros(cap, dtype=np.int64)
        self._pmean[:size], self._pcov[:size], self._pn[:size] = mean, cov, n
        self._user_ids: list[str] = user_ids.tolist()
        self.user_index_ = {u: i for i, u in enumerate(self._user_ids)}
        self._parts = {
            name: FactorPart.none(len(self.item_ids_), cap) for name in ("time", "response")
        }
        self._skills = SkillPart(0.0, np.full(len(self.item_ids_), -1), 0)
        self._items_cache = None

    @property
    def rho_(self) -> float:
        """Correlation of ability and speed in the person population."""
        s = self.sigma_P_
        return float(s[0, 1] / math.sqrt(s[0, 0] * s[1, 1]))

    @property
    def person_mean_(self) -> np.ndarray:
        """Posterior means of (theta, tau), one row per user in ``user_index_`` order."""
        return self._pmean[: len(self._user_ids)]

    @property
    def person_cov_(self) -> np.ndarray:
        """Posterior 2x2 covariances of (theta, tau), one per user."""
        return self._pcov[: len(self._user_ids)]

    @property
    def person_n_(self) -> np.ndarray:
        """Number of responses that informed each user's posterior."""
        return self._pn[: len(self._user_ids)]

    # -- item and person look-ups ------------------------------------------------------
    def _item_table(self) -> np.ndarray:
        """Rows ``(a, b, var_b, alpha, beta, var_beta, floor)`` of every fitted item, then of the
        item population (for unknown items), then one per skill (for unknown items of a
        known skill: the population's row with the skill's difficulty centre and the items'
        spread around their skills), as ``predict`` and ``update`` use them.

        The item's own uncertainty enters: ``var_b = b_sd_^2``, ``var_beta = beta_sd_^2`` and,
        since the residual variance ``1/alpha^2`` is uncertain too,
        ``E[1/alpha^2] = 1/(alpha exp(-s^2))^2`` for ``log alpha ~ N(log alpha_, s^2)`` with
        ``s = alpha_sd_ / alpha_`` (delta method); the population uses ``item_prior_sd_``.
        With a guessing floor, ``b`` is the floored difficulty ``b'`` (``_floored``).
        """
        table = getattr(self, "_items_cache", None)
        if table is None:
            m, sd = self.item_prior_mean_, self.item_prior_sd_
            s2 = (self.alpha_sd_ / self.alpha_) ** 2
            items = np.column_stack(
                [
                    self.a_,
                    self.b_,
                    self.b_sd_**2,
                    self._net_of_factors(self.alpha_ * np.exp(-s2)),
                    self.beta_,
                    self.beta_sd_**2,
                ]
            )
            population = [math.exp(m[0]), m[1], sd[1] ** 2, math.exp(m[2] - sd[2] ** 2), m[3]]
            population.append(sd[3] ** 2)
            skills = np.tile(population, (len(self.skill_ids_), 1))
            skills[:, 1] = self.skill_b_centre_
            if self.skill_b_sd_ is not None:
                skills[:, 2] = self.skill_b_sd_**2
            table = np.vstack([items, population, skills])
            table = np.column_stack([table, np.zeros(len(table))])
            if self.guess_floor_ > 0.0:
                table[:, 1], table[:, 6] = self._floored(table)
            self._items_cache = table
        return table

    def _net_of_factors(self, alpha: np.ndarray) -> np.ndarray:
        """Items' residual time discriminations once the time factors are modelled apart.

        The fitted ``alpha_`` measures all of a log time's spread around ``beta - tau``,
        the factors' part included. With factors, the residual keeps only what they leave:
        its variance less the factors' population variance ``lambda' Sigma_eta lambda``
        (in the t's variance ``nu / (nu - 2) / alpha^2`` for Student-t residuals), never
        below ``factors.MIN_RESIDUAL_SHARE`` of it. A new person's predictive spread is
        then what it was without factors, and it narrows as their factors are learned.
        """
        time = self._parts["time"]
        if time.rank == 0:
            return alpha
        lam = time.loadings
        part = np.einsum("ik,kl,il->i", lam, time.prior_cov, lam)
        nu = self.time_df_
        c = 1.0 if nu is None or nu <= 2.0 else nu / (nu - 2.0)
        total = c / (alpha * alpha)
        return np.sqrt(c / np.maximum(total - part, MIN_RESIDUAL_SHARE * total))

    def _floored(self, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row of ``_item_table``: the difficulty ``b'`` and the floor ``c_i`` of the
        guessing floor (module docstring).

        ``P_i`` is the chance of a new person (the population prior, the item's uncertainty
        and, for a fitted item, its response factors' prior variance integrated), ``c_i =
        min(c, P_i / 2)``, and ``b'`` solves ``Phi(a (mu - b') / s) = (P_i - c_i) / (1 -
        c_i)`` with the same spread ``s``, so that ``c_i + (1 - c_i) Phi(...)`` is ``P_i``
        again for a new person.
        """
        a, b = table[:, 0], table[:, 1]
        spread = 1.0 + a * a * (self.sigma_P_[0, 0] + table[:, 2])
        response = self._parts["response"]
        if response.rank:
            lam = response.loadings
            n = len(lam)
            spread[:n] += np.einsum("ik,kl,il->i", lam, response.prior_cov, lam)
        if self._skills.active:
            n_skills = len(self.skill_ids_)
            table_skill = np.r_[self._item_skill, -1, np.arange(n_skills)]
            spread[table_skill >= 0] += self._skills.sd**2
        s = np.sqrt(spread)
        rate = ndtr(a * (self.mu_P_[0] - b) / s)
        c, q = floored_rate(rate, self.guess_floor_)
        floored = c > 0.0
        b_new = b.copy()
        b_new[floored] = self.mu_P_[0] - ndtri(q[floored]) * s[floored] / a[floored]
        return b_new, c

    def _item_arrays(
        self, item_ids: np.ndarray, skill_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, ...]:
        """(a, b, var_b, alpha, beta, var_beta, floor) per row; unknown items get their skill's row
        (``skill_ids``, the rows' skills) or, without a known skill, the population's."""
        idx = self._item_lookup.get_indexer(item_ids)
        unknown = idx < 0
        idx[unknown] = len(self.item_ids_)
        if skill_ids is not None and unknown.any() and self._skill_row:
            idx[unknown] = [self._skill_row.get(s, len(self.item_ids_)) for s in skill_ids[unknown]]
        rows = self._item_table()[idx]
        return tuple(np.ascontiguousarray(rows[:, k]) for k in range(7))

    def _skill_columns(self, positions: np.ndarray, skill_ids: np.ndarray | None) -> np.ndarray:
        """Each row's skill column of the skill abilities: its item's skill for an item the fit
        knows (``positions`` >= 0), else the row's skill (``skill_ids``) if the fit knows it,
        else -1 (no skill ability)."""
        cols = np.full(len(positions), -1, dtype=np.int64)
        known = positions >= 0
        cols[known] = self._item_skill[positions[known]]
        if skill_ids is not None and not known.all():
            cols[~known] = [self._skill_col.get(s, -1) for s in skill_ids[~known]]
        return cols

    def _item_one(self, item: str, skill: str | None = None) -> tuple[np.ndarray, ...]:
        """``_item_arrays`` of one item id by a dictionary look-up (length-1 arrays)."""
        j = self.item_index_.get(item)
        if j is None:
            j = self._skill_row.get(skill, len(self.item_ids_))  # type: ignore[arg-type]
        row = self._item_table()[j]
        return tuple(row[k : k + 1] for k in range(7))

    def person_state(self, user_id: Any) -> dict[str, Any]:
        """The user's current (theta, tau) posterior.

        Returns ``mean`` (2,), ``cov`` (2, 2), ``n`` (responses learned from) and
        ``is_personalized`` (False for a user with no data, who gets the population prior).
        """
        self._check_fitted()
        i = self.user_index_.get(id_string(user_id))
        if i is None or self._pn[i] == 0:
            return {
                "mean": self.mu_P_.copy(),
                "cov": self.sigma_P_.copy(),
                "n": 0,
                "is_personalized": False,
            }
        return {
            "mean": self._pmean[i].copy(),
            "cov": self._pcov[i].copy(),
            "n": int(self._pn[i]),
            "is_personalized": True,
        }

    # -- person fit ------------------------------------------------------------------
    def person_fit(self, df: pd.DataFrame, level: float = 0.05) -> pd.DataFrame:
        """Person-fit statistics of every user in ``df`` (see ``personfit``).

        Each user's (theta, tau) is estimated afresh from their rows of ``df``, starting from
        the population and learning every row as ``update`` does (the fitted items stay
        fixed); times count as given (only the 1 s plausibility floor applies, no
        winsorising, since outlying times are what is looked for). Rows of items the model
        was not fitted on are left out. One row per user, sorted by ``user_id``, with the
        columns ``user_id`` and ``personfit.PERSON_FIT_COLUMNS``: ``lz_time``/``p_time`` (lZ
        of the times, chi-square with ``df_time`` degrees of freedom), ``mean_resid`` (mean
        standardised log-time residual against the user's median speed: < 0 faster, > 0
        slower), ``lz_resp``/``p_resp`` (lz of the answers), ``flag_time`` (``p_time <
        level``), ``flag_resp`` (``p_resp < level``) and ``kind``: "rapid" or "slow" for a
        flagged time pattern, else "erratic responses" for flagged answers, else "". The time
        columns are NaN for an accuracy-only model. Raises ``personfit.NothingToScoreError`` (a
        ``ValueError``) when ``df`` has no row of a fitted item.
        """
        level = check_level(level)
        parts = self.person_fit_parts(df)
        if len(parts.ids) == 0:
            raise NothingToScoreError(
                "person_fit found no row of an item this LNIRT was fitted on "
                f"({len(df)} rows given)"
            )
        return summarise_person_fit(parts.frame(), ["user_id"], level)

    def person_fit_parts(self, df: pd.DataFrame) -> PersonFitParts:
        """The additive sums behind ``person_fit`` (no users when no row has a fitted item),
        so that a wrapper holding one LNIRT per topic can combine a user's topics exactly."""
        self._check_fitted()
        data = validate_interactions(df, allow_missing_outcome=True)
        data = data[self._item_lookup.get_indexer(data["item_id"]) >= 0]
        pos = sort_for_sequences(data)
        users = data["user_id"].to_numpy()[pos]
        item_ids = data["item_id"].to_numpy()[pos]
        items = self._item_arrays(item_ids)
        correct = data["correct"].to_numpy(dtype=float)[pos]
        log_t, has_t = plausible_log_times(data["rt_seconds"].to_numpy(dtype=float)[pos])
        log_t[~has_t | (not self.times_fitted_)] = np.nan
        first, group = _user_groups(users)
        n_users = int(first.sum())
        mean = np.tile(self.mu_P_, (n_users, 1))
        cov = np.tile(self.sigma_P_, (n_users, 1, 1))
        self._learn_in_order(mean, cov, group, correct, log_t, items)
        # The statistics standardise by the fitted items themselves (for Student-t residuals
        # alpha_ is the t's scale: the normal-scale standardisation, see the class docstring).
        j = self._item_lookup.get_indexer(item_ids)
        return person_fit_parts(
            pd.DataFrame({"user_id": users[first]}),
            group,
            correct,
            log_t,
            (self.a_[j], self.b_[j], self.alpha_[j], self.beta_[j]),
            mean[:, 0],
            mean[:, 1],
        )

    # -- prediction ------------------------------------------------------------------
    def _predict_validated(self, data: pd.DataFrame) -> pd.DataFrame:
        n = len(data)
        out = {c: np.empty(n) for c in ("p_correct", "time_median_s", "time_p10_s", "time_p90_s")}
        if n == 0:
            return pd.DataFrame(out, index=data.index)
        pos = sort_for_sequences(data)
        correct = data["correct"].to_numpy(dtype=float)[pos]
        log_t, has_t = plausible_log_times(data["rt_seconds"].to_numpy(dtype=float)[pos])
        log_t[~has_t] = np.nan
        # The contract: a row whose outcome is unknown (not attempted yet) teaches nothing,
        # whatever else it carries. An accuracy-only model has nothing to judge a time by.
        log_t[np.isnan(correct) | (not self.times_fitted_)] = np.nan
        users = data["user_id"].to_numpy()[pos]
        skills = data["skill_id"].to_numpy()[pos] if "skill_id" in data.columns else None
        steps = self._one_step_ahead(users, data["item_id"].to_numpy()[pos], correct, log_t, skills)
        p_out, mu_out, var, alpha = steps.T
        scale = self._time_scale(var, alpha)
        result = np.empty((n, 4))
        result[pos, 0] = apply_logit_map(p_out, self.calibration_)
        result[pos, 1] = np.exp(mu_out)
        result[pos, 2] = np.exp(mu_out - Z80 * scale)
        result[pos, 3] = np.exp(mu_out + Z80 * scale)
        if not self.times_fitted_:
            result[:, 1:] = np.nan
        return pd.DataFrame(
            result,
            columns=["p_correct", "time_median_s", "time_p10_s", "time_p90_s"],
            index=data.index,
        )

    def _time_scale(self, var: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """The interval scale of ``predictive_moments`` from the variance of ``beta - tau``
        and the item's (effective) alpha."""
        if self.time_df_ is None:
            return np.sqrt(1.0 / (alpha * alpha) + var)
        return t_interval_halfwidth(var, alpha, self.time_df_) / Z80

    def _one_step_ahead(
        self,
        users: np.ndarray,
        item_ids: np.ndarray,
        correct: np.ndarray,
        log_t: np.ndarray,
        skill_ids: np.ndarray | None = None,
        final: dict[str, Any] | None = None,
    ) -> np.ndarray:
        """Per row (sorted by user and order): P(correct), the centre of log time, the
        variance of ``beta - tau`` and the item's alpha, each from the user's state before
        the row; the row then updates a private copy of the state (the model is unchanged).
        ``final``, if given, receives the copies after the last row (``learn_many``)."""
        n = len(users)
        a, b, var_b, alpha, beta, var_beta, floor = self._item_arrays(item_ids, skill_ids)
        # Rows of one user are contiguous after sorting.
        first, group = _user_groups(users)
        uniq = users[first]
        stored = pd.Index(self._user_ids, dtype=object).get_indexer(uniq)
        has = stored >= 0
        mean = np.tile(self.mu_P_, (len(uniq), 1))
        cov = np.tile(self.sigma_P_, (len(uniq), 1, 1))
        mean[has] = self._pmean[stored[has]]
        cov[has] = self._pcov[stored[has]]
        out = np.empty((n, 4))
        out[:, 3] = alpha
        positions = self._item_lookup.get_indexer(item_ids)
        skills = self._skill_columns(positions, skill_ids)
        factors = self._factor_states(stored, positions, skills, group)
        tf, rf, sf = factors
        # All users advance one step at a time, so each step is one vectorised update.
        for rows in _steps(group):
            g = group[rows]
            extra = _response_extra(rf, sf, g, rows)
            out[rows, 0], out[rows, 1], _ = predictive_moments(
                *(mean[g], cov[g], a[rows], b[rows], alpha[rows], beta[rows], var_b[rows]),
                extra=extra,
                floor=floor[rows],
            )
            out[rows, 2] = cov[g, 1, 1] + var_beta[rows]
            if tf is not None:
                centre, spread = shift(tf[0][g], tf[1][g], tf[2][rows])
                out[rows, 1] += centre
                out[rows, 2] += spread
            # Only after predicting does the row's own outcome update the user's copy.
            items = (a, b, var_b, alpha, beta, var_beta, floor)
            self._learn(mean, cov, g, rows, correct, log_t, *items, factors=factors)
        if final is not None:
            final.update(users=uniq, mean=mean, cov=cov, factors=factors, rows=np.bincount(group))
        return out

    def predict_one(self, user_id: Any, item_id: Any, skill_id: Any = None) -> dict[str, float]:
        """``LearnerModel.predict_one`` without a DataFrame: the same numbers as ``predict``
        on the one-row frame, i.e. the posterior-predictive moments of the user's current
        (theta, tau) state (the population prior for a user not seen yet) at the item's
        parameters (for an unknown item, its skill's centre or the item population). Like
        ``Baseline.predict_one``, it takes the DataFrame path where ``fast_path_ids`` says so.
        """
        self._check_fitted()
        ids = fast_path_ids(self, LNIRT, user_id, item_id, skill_id)
        if ids is None:
            return super().predict_one(user_id, item_id, skill_id)
        user, item, skill = ids
        i = self.user_index_.get(user)
        if i is None:
            mean, cov = self.mu_P_[None, :], self.sigma_P_[None, :, :]
        else:
            mean, cov = self._pmean[i : i + 1], self._pcov[i : i + 1]
        a, b, var_b, alpha, beta, var_beta, floor = self._item_one(item, skill)
        centre = 0.0
        tf, rf, sf = self._one_factor_states(i, item, skill)
        if tf is not None:
            c, spread = shift(*tf)
            centre, var_beta = float(c[0]), var_beta + spread
        extra = _response_extra(rf, sf, _ZERO, _ZERO)
        p, mu, sd = predictive_moments(
            mean, cov, a, b, alpha, beta, var_b, var_beta, self.time_df_, extra, floor
        )
        p = np.array([apply_logit_map_one(float(p[0]), self.calibration_)])
        out = one_row_predictions(p, mu + centre, sd)
        if not self.times_fitted_:
            out.update(time_median_s=math.nan, time_p10_s=math.nan, time_p90_s=math.nan)
        return out

    def _learn(
        self,
        mean: np.ndarray,
        cov: np.ndarray,
        g: np.ndarray,
        rows: np.ndarray,
        correct: np.ndarray,
        log_t: np.ndarray,
        a: np.ndarray,
        b: np.ndarray,
        var_b: np.ndarray,
        alpha: np.ndarray,
        beta: np.ndarray,
        var_beta: np.ndarray,
        floor: np.ndarray,
        factors: tuple[_Factors | None, _Factors | None, SkillState | None] = (None, None, None),
    ) -> None:
        """Update ``mean``/``cov`` of users ``g`` in place with their rows ``rows``.

        ``factors`` are the time and response factors and the skill abilities
        (``_factor_states``: the users' means and covariances, indexed like ``mean``, and the
        loadings or skill columns per row; None without), updated in place too. An answer
        moves ability, the response factors and the skill ability by one assumed-density
        step of their common probit (above the rows' guessing ``floor``). A
        time first moves the time factors by its innovation against the full prediction,
        then the speed by the time less the factors' part (both from the state before the
        time), and ability's mean by ``time_weight_`` of the joint step, bounded by the
        answer (``_ability_from_time``).
        """
        tf, rf, sf = factors
        # Each row's item as it stood before the answer (``_ability_from_time``).
        z0 = (
            self._item_z((mean[g], cov[g]), g, rows, (a, b, var_b), (rf, sf))
            if self.time_weight_
            else 0
        )
        acc = np.isfinite(correct[rows])
        if acc.any():
            gi, ri = g[acc], rows[acc]
            extra = _response_extra(rf, sf, gi, ri)
            if rf is not None or sf is not None:
                item = (a[ri], b[ri], var_b[ri])
                state = (mean[gi], cov[gi])
                score, curvature = probit_step(state, correct[ri], item, extra, floor[ri])
                if rf is not None:
                    rf[0][gi], rf[1][gi] = factor_update(
                        rf[0][gi], rf[1][gi], rf[2][ri], score, curvature
                    )
                if sf is not None:
                    skill_update(sf, ri, score, curvature)
            mean[gi], cov[gi] = accuracy_update(
                mean[gi], cov[gi], correct[ri], a[ri], b[ri], var_b[ri], extra, floor[ri]
            )
            if self.success_gain_:  # practice: a solved task adds ability (``_fit_success_gain``)
                mean[gi[correct[ri] == 1.0], 0] += self.success_gain_
        tim = np.isfinite(log_t[rows])
        if tim.any():
            gi, ri = g[tim], rows[tim]
            before = (mean[gi], cov[gi])
            nu = self.time_df_
            lt, vb = log_t[ri], var_beta[ri]
            if tf is not None:
                lt, vb = self._learn_factors(before, tf, gi, ri, lt, alpha[ri], beta[ri], vb)
            after = time_update(*before, lt, alpha[ri], beta[ri], vb, nu)
            mean[gi], cov[gi] = speed_only(before, after)
            if self.time_weight_:
                moved = before[0][:, 0] + self.time_weight_ * (after[0][:, 0] - before[0][:, 0])
                now = self._item_z(before, gi, ri, (a, b, var_b), (rf, sf), parts=True)
                mean[gi, 0] = _ability_from_time(before[0][:, 0], moved, correct[ri], z0[tim], now)
        # The persons' random walk between responses (see ``_fit_drift``).
        cov[g, 0, 0] += self.drift_[0]
        cov[g, 1, 1] += self.drift_[1]

    def _item_z(
        self,
        state: tuple[np.ndarray, np.ndarray],
        g: np.ndarray,
        rows: np.ndarray,
        item: tuple[np.ndarray, np.ndarray, np.ndarray],
        extra: tuple[_Factors | None, SkillState | None],
        *,
        parts: bool = False,
    ) -> Any:
        """The probit's argument of each row's own item for the users' ``state`` (indexed by
        ``g``), response factors and skill abilities ``extra``: ``(a (mu - b) + e) / s``
        (``predictive_moments``). With ``parts``, the pieces ``(a, b, e, s)`` instead, to
        solve for ``mu``."""
        (mean, cov), (a, b, var_b) = state, item
        a, b, var_b = a[rows], b[rows], var_b[rows]
        e0, e1 = _response_extra(*extra, g, rows)
        s = np.sqrt(1.0 + a * a * (cov[:, 0, 0] + var_b) + e1)
        if parts:
            return a, b, e0, s
        return (a * (mean[:, 0] - b) + e0) / s

    def _learn_factors(
        self,
        before: tuple[np.ndarray, np.ndarray],
        factors: _Factors,
        gi: np.ndarray,
        ri: np.ndarray,
        log_t: np.ndarray,
        alpha: np.ndarray,
        beta: np.ndarray,
        var_beta: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The time-factor step of ``_learn`` (in place on ``factors``). Returns the log times
        and item variances the speed's step then uses: less the factors' part, plus its
        variance."""
        fmean, fcov, lam_all = factors
        lam = lam_all[ri]
        centre, spread = shift(fmean[gi], fcov[gi], lam)
        d = log_t - centre - (beta - before[0][:, 1])
        gauss = spread + before[1][:, 1, 1] + var_beta
        if self.time_df_ is None:
            r2 = gauss + 1.0 / (alpha * alpha)
            score, curvature = d / r2, -1.0 / r2
        else:
            score, curvature = _t_predictive_derivatives(d, gauss, alpha, self.time_df_)
        fmean[gi], fcov[gi] = factor_update(fmean[gi], fcov[gi], lam, score, curvature)
        return log_t - centre, var_beta + spread

    def _factor_states(
        self, stored: np.ndarray, positions: np.ndarray, skills: np.ndarray, group: np.ndarray
    ) -> tuple[_Factors | None, _Factors | None, SkillState | None]:
        """Per part (time, responses): copies of the factor posteriors of the stored persons
        ``stored`` (index < 0: the prior) and the loadings of the rows' items ``positions``
        (< 0: an item the fit did not see, which loads on nothing); None for a part without
        factors. Then the copies of the skill abilities of the rows' users ``group`` (indices
        into ``stored``) at their skill columns ``skills`` (``_skill_columns``); None without
        skill abilities."""
        states: list[Any] = [None, None, None]
        for k, name in enumerate(("time", "response")):
            part = self._parts[name]
            if part.rank:
                states[k] = (*part.of(stored), part.rows(positions))
        if self._skills.active:
            states[2] = self._skills.of(stored, group, skills)
        return states[0], states[1], states[2]

    def _one_factor_states(
        self, i: int | None, item: str, skill: str | None
    ) -> tuple[_Factors | None, _Factors | None, SkillState | None]:
        """``_factor_states`` of one stored person ``i`` (None: a new one) at one item."""
        position = np.array([self.item_index_.get(item, -1)])
        skills = self._skill_columns(position, np.array([skill], dtype=object))
        return self._factor_states(np.array([-1 if i is None else i]), position, skills, _ZERO)

    def _keep_states(self, i: int, factors: tuple[Any, Any, Any], k: int) -> None:
        """Store row ``k`` of the factor states ``factors`` as person ``i``'s (the skill
        abilities are stored for all users at once: ``SkillPart.keep``)."""
        for name, state in zip(("time", "response"), factors[:2], strict=True):
            if state is not None:
                self._parts[name].mean[i], self._parts[name].cov[i] = state[0][k], state[1][k]

    # -- online learning ---------------------------------------------------------------
    def update(self, row: Mapping[str, Any]) -> None:
        """Learn from one attempt: move the user's (theta, tau) posterior, items stay fixed.

        ``row`` needs ``user_id``, ``item_id`` and ``correct`` (0/1) and may hold
        ``rt_seconds`` (> 0; missing, or a zero or negative time, teaches nothing about
        time). Constant time.
        """
        self._check_fitted()
        for key in ("user_id", "item_id"):
            if row.get(key) is None:
                raise ValueError(f"update needs `{key}`, got {row.get(key)!r}")
        y = _row_value(row, "correct")
        if y not in (0.0, 1.0):
            raise ValueError(f"update needs `correct` 0 or 1, got {row.get('correct')!r}")
        rt = usable_seconds(row.get("rt_seconds"), "update")
        user = id_string(row["user_id"])
        i = self.user_index_.get(user)
        if i is None:
            i = self._add_user(user)
        skill = row.get("skill_id")
        item = id_string(row["item_id"])
        skill = None if skill is None or pd.isna(skill) else id_string(skill)
        items = self._item_one(item, skill)
        mean, cov = self._pmean[i : i + 1].copy(), self._pcov[i : i + 1].copy()
        factors = self._one_factor_states(i, item, skill)
        self._learn(
            mean,
            cov,
            np.zeros(1, dtype=np.int64),
            np.zeros(1, dtype=np.int64),
            np.array([y]),
            plausible_log_times(np.array([rt]))[0]
            if rt > 0 and self.times_fitted_
            else np.array([math.nan]),
            *items,
            factors=factors,
        )
        self._pmean[i], self._pcov[i] = mean[0], cov[0]
        self._keep_states(i, factors, 0)
        if factors[2] is not None:
            self._skills.keep(np.array([i]), factors[2])
        self._pn[i] += 1

    def learn_many(self, rows: pd.DataFrame) -> None:
        """``update`` with each row in turn, in one pass: a person's state moves only with
        their own answers (the items stay fixed), so all persons advance one answer at a
        time together, as in ``predict`` (the same arithmetic as ``update``, element by
        element). A training replays its held-out students this way (``served_state``).
        Rows ``update`` would question go through it one by one, for its errors."""
        self._check_fitted()
        plain = plain_attempts(rows)
        if plain is None:
            super().learn_many(rows)
            return
        self.learn_attempts(*plain)

    def learn_attempts(
        self,
        users: np.ndarray,
        items: np.ndarray,
        skills: np.ndarray | None,
        correct: np.ndarray,
        rt: np.ndarray,
    ) -> None:
        """``learn_many`` of rows already read by ``base.plain_attempts``."""
        if not len(users):
            return
        log_t = np.full(len(rt), np.nan)
        if self.times_fitted_:
            lt, has_t = plausible_log_times(rt)
            log_t[has_t] = lt[has_t]
        # Each person's rows together, in their given order.
        pos = np.argsort(pd.factorize(users)[0], kind="stable")
        final: dict[str, Any] = {}
        skill_ids = None if skills is None else skills[pos]
        self._one_step_ahead(users[pos], items[pos], correct[pos], log_t[pos], skill_ids, final)
        persons = np.empty(len(final["users"]), dtype=np.int64)
        for k, user in enumerate(final["users"]):
            i = self.user_index_.get(user)
            if i is None:
                i = self._add_user(user)
            persons[k] = i
            self._pmean[i], self._pcov[i] = final["mean"][k], final["cov"][k]
            self._keep_states(i, final["factors"], k)
            self._pn[i] += final["rows"][k]
        if final["factors"][2] is not None:
            self._skills.keep(persons, final["factors"][2])

    def _add_user(self, user: str) -> int:
        i = len(self._user_ids)
        if i == len(self._pn):
            cap = 2 * len(self._pn)
            self._pmean = np.resize(self._pmean, (cap, 2))
            self._pcov = np.resize(self._pcov, (cap, 2, 2))
            self._pn = np.resize(self._pn, cap)
            for part in self._parts.values():
                part.grow(cap)
        self._pmean[i] = self.mu_P_
        self._pcov[i] = self.sigma_P_
        self._pn[i] = 0
        self._user_ids.append(user)
        self.user_index_[user] = i
        return i

    # -- persistence -----------------------------------------------------------------
    _ARRAYS: ClassVar[tuple[str, ...]] = (
        "a_",
        "b_",
        "alpha_",
        "beta_",
        "a_sd_",
        "b_sd_",
        "alpha_sd_",
        "beta_sd_",
        "mu_P_",
        "sigma_P_",
        "item_prior_mean_",
        "item_prior_sd_",
    )

    def _get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {k: np.asarray(getattr(self, k)) for k in self._ARRAYS}
        state["item_ids_"] = np.asarray(self.item_ids_, dtype=str)
        state["user_ids_"] = np.asarray(self._user_ids, dtype=str)
        state["person_mean_"] = self.person_mean_.copy()
        state["person_cov_"] = self.person_cov_.copy()
        state["person_n_"] = self.person_n_.copy()
        state["n_iter_"] = self.n_iter_
        state["converged_"] = self.converged_
        state["times_fitted_"] = self.times_fitted_
        state["time_df_"] = self.time_df_
        state["drift_"] = [float(v) for v in self.drift_]
        state["guess_floor_"] = self.guess_floor_
        state["time_weight_"] = self.time_weight_
        state["success_gain_"] = self.success_gain_
        state["calibration_"] = [float(v) for v in self.calibration_]
        state["skill_ids_"] = self.skill_ids_.tolist()
        state["skill_b_centre_"] = self.skill_b_centre_.tolist()
        state["skill_b_sd_"] = self.skill_b_sd_
        size = len(self._user_ids)
        for name, part in self._parts.items():
            state.update(part.state(name, size))
        state.update(self._skills.state())
        # JSON has no NaN: the Gibbs sampler has no objective.
        state["objective_"] = self.objective_ if math.isfinite(self.objective_) else None
        return state

    def _set_state(self, state: dict[str, Any]) -> None:
        arrays = {k: np.asarray(state[k], dtype=float) for k in self._ARRAYS}
        item_ids = np.asarray(state["item_ids_"], dtype=str)
        user_ids = np.asarray(state["user_ids_"], dtype=str)
        n_i, n_u = len(item_ids), len(user_ids)
        mean = np.asarray(state["person_mean_"], dtype=float).reshape(-1, 2)
        cov = np.asarray(state["person_cov_"], dtype=float).reshape(-1, 2, 2)
        n = np.asarray(state["person_n_"], dtype=np.int64)
        shapes_ok = (
            all(arrays[k].shape == (n_i,) for k in self._ARRAYS[:8])
            and arrays["mu_P_"].shape == (2,)
            and arrays["sigma_P_"].shape == (2, 2)
            and arrays["item_prior_mean_"].shape == (4,)
            and arrays["item_prior_sd_"].shape == (4,)
            and mean.shape == (n_u, 2)
            and cov.shape == (n_u, 2, 2)
            and n.shape == (n_u,)
        )
        if not shapes_ok:
            raise ValueError("LNIRT state arrays have inconsistent shapes")
        try:
            check_lnirt_parameters(
                arrays["a_"],
                arrays["b_"],
                arrays["alpha_"],
                arrays["beta_"],
                arrays["sigma_P_"],
                mean,
                cov,
            )
        except DegenerateFitError as exc:
            raise ValueError(f"LNIRT state is invalid: {exc}") from exc
        if not np.all(np.isfinite(arrays["item_prior_mean_"])) or not np.all(
            arrays["item_prior_sd_"] > 0
        ):
            raise ValueError("LNIRT state has an invalid item population")
        for k, v in arrays.items():
            setattr(self, k, v)
        self._set_items(item_ids)
        self._set_persons(user_ids, mean, cov, n)
        self.n_iter_ = int(state["n_iter_"])
        self.converged_ = bool(state["converged_"])
        # Artifacts written before the accuracy-only mode always had times.
        self.times_fitted_ = bool(state.get("times_fitted_", True))
        # Artifacts written before the Student-t time model had normal residuals.
        self.time_df_ = _checked_time_df(state.get("time_df_"))
        if self.time_df_ is not None:
            # Built now, as a fit does: a served version is loaded off the request path,
            # and a request that built it held its model's lock for tens of milliseconds
            # of CPU, while every other request for that model waited.
            _halfwidth_table(self.time_df_)
        # ... and static persons.
        drift = np.asarray(state.get("drift_", [0.0, 0.0]), dtype=float)
        if drift.shape != (2,) or not np.all(np.isfinite(drift) & (drift >= 0)):
            raise ValueError(f"LNIRT state has an invalid drift_: {drift.tolist()}")
        self.drift_ = drift
        # ... and no guessing floor, and times that taught speed only.
        self.guess_floor_ = _state_number(state, "guess_floor_", is_guess_floor)
        self.time_weight_ = _state_number(state, "time_weight_", is_share)
        # ... and persons who did not learn while they worked.
        self.success_gain_ = _state_number(state, "success_gain_", is_share)
        # ... and chances that were not recalibrated.
        self.calibration_ = _state_calibration(state)
        # ... and no skill centres (unknown items used the population).
        skill_ids = np.asarray(state.get("skill_ids_", []), dtype=str)
        centres = np.asarray(state.get("skill_b_centre_", []), dtype=float)
        spread = state.get("skill_b_sd_")
        if centres.shape != skill_ids.shape or not np.all(np.isfinite(centres)):
            raise ValueError("LNIRT state has invalid skill centres")
        if spread is not None and not (math.isfinite(float(spread)) and float(spread) > 0):
            raise ValueError(f"LNIRT state has an invalid skill_b_sd_: {spread!r}")
        self._set_skills(skill_ids, centres, None if spread is None else float(spread))
        for name in ("time", "response"):
            self._parts[name] = FactorPart.from_state(state, name, n_i, n_u, len(self._pn))
        # ... and one ability for every skill.
        self._skills = SkillPart.from_state(state, n_i, len(self.skill_ids_), n_u)
        self._item_skill = self._skills.item_skill
        self._items_cache = None
        obj = state["objective_"]
        self.objective_ = math.nan if obj is None else float(obj)
