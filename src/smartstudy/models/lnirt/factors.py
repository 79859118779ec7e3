"""Person-by-item factors learned on top of LNIRT's ability and speed.

LNIRT explains an answer by one ability and a log time by one speed:
``P(right) = Phi(a_i (theta_p - b_i))`` and ``log T = beta_i - tau_p + e / alpha_i``. Real
persons are not equally able, nor equally fast, on every item: a test has content areas, and
one person reads long stems slowly but computes fast. Those patterns are left in the
residuals, where they repeat from item to item. This module models them as a few latent
factors per part, a low-rank person-by-item interaction (multidimensional IRT, Reckase 2009,
"Multidimensional item response theory"; factor models of response times, Klein Entink, Fox &
van der Linden 2009, Psychometrika 74(1); the matrix factorisation of collaborative
filtering, Koren, Bell & Volinsky 2009)::

    P(right) = Phi(a_i (theta_p - b_i) + mu_i . zeta_p)
    log T    = beta_i - tau_p + lambda_i . eta_p + e / alpha_i

- The loadings ``mu_i`` and ``lambda_i`` (K values per item) are fitted once, by alternating
  regressions (ALS) on the training persons given their fitted ability and speed: ridge
  regressions of the standardised log-time residuals ``alpha_i (log t - beta_i + tau_p)``
  (``fit_loadings``), and ridge probit regressions by Fisher scoring with offset
  ``a_i (theta_p - b_i)`` (``fit_response_loadings``). The factors are scaled to unit variance.
- ``zeta_p`` and ``eta_p`` have the population priors ``N(0, Sigma)`` and, like ``(theta,
  tau)``, a Gaussian posterior per person, updated online after every answer in constant
  time: an answer moves ``zeta`` by the same assumed-density step as ``theta`` (one probit
  in both), a time moves ``eta`` by the conjugate (Kalman) step for normal residuals and by
  assumed-density filtering against the t for Student-t residuals.
- Predictions add ``mu_i . E[zeta_p]`` to the probit's argument and ``mu_i' Cov(zeta_p) mu_i``
  to its variance; the log time's centre and variance move by the same terms of ``eta``.

How many factors of each part (0 to ``MAX_RANK``) is decided by the data: ``LNIRT.fit`` fits
the loadings on most training persons and replays the others one step ahead as new persons,
and keeps a rank only when it predicts them better (log loss of the answers, squared error
of the log times). Few items, few persons per item, or no person-specific patterns give rank
0: plain LNIRT.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr

# Ranks tried, and what a rank must gain (relative) on the replay's mean squared log-time
# error and on its log loss of the answers.
MAX_RANK = 3
MIN_GAIN = 0.005
MIN_RESPONSE_GAIN = 0.001
# A factor needs items to load on and persons to estimate the loadings from.
MIN_ITEMS = 10
MIN_PERSONS = 50
# Ridge penalty of the ALS (in units of the standardised residual's variance): a loading
# seen in n answers is shrunk by n / (n + RIDGE).
RIDGE = 1.0
ALS_SWEEPS = 12
# The residual variance left once the factors are modelled is the fitted one less the
# factors' share, but never below this fraction of it.
MIN_RESIDUAL_SHARE = 0.25
# Standardised residuals are winsorised here before the loadings are fitted.
RESIDUAL_CLIP = 4.0


def _normal_equations(
    rows: np.ndarray, other: np.ndarray, z: np.ndarray, n: int, weight: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per group ``g``: ``sum w other other'`` (n, K, K) and ``sum w other z`` (n, K) over the
    rows whose group is ``rows`` (``w`` = ``weight``, or 1)."""
    k = other.shape[1]
    if weight is not None:
        z = weight * z
        other_w = other * weight[:, None]
    else:
        other_w = other
    gram = np.empty((n, k, k))
    for a in range(k):
        for b in range(a, k):
            gram[:, a, b] = gram[:, b, a] = np.bincount(
                rows, weights=other_w[:, a] * other[:, b], minlength=n
            )
    rhs = np.column_stack(
        [np.bincount(rows, weights=other[:, a] * z, minlength=n) for a in range(k)]
    )
    return gram, rhs


def fit_loadings(
    users: np.ndarray,
    items: np.ndarray,
    z: np.ndarray,
    n_users: int,
    n_items: int,
    rank: int,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Rank-``rank`` factorisation ``z[r] ~ U[users[r]] . V[items[r]]`` by ridge ALS.

    ``z`` are standardised residuals (one per answer, indexed by ``users`` and ``items``).
    Returns ``(U, V)`` with each column of ``U`` (the persons' factors) scaled to unit
    variance over the persons, ``V`` (the items' loadings) scaled to match. Deterministic for a
    given ``seed``.
    """
    rng = np.random.default_rng(seed)
    z = np.clip(z, -RESIDUAL_CLIP, RESIDUAL_CLIP)
    v = rng.normal(0.0, 0.1, (n_items, rank))
    u = np.zeros((n_users, rank))
    ridge = RIDGE * np.eye(rank)
    for _ in range(ALS_SWEEPS):
        gram, rhs = _normal_equations(users, v[items], z, n_users)
        u = np.linalg.solve(gram + ridge, rhs[:, :, None])[:, :, 0]
        scale = u.std(axis=0)
        scale[scale == 0] = 1.0
        u /= scale
        gram, rhs = _normal_equations(items, u[users], z, n_items)
        v = np.linalg.solve(gram + ridge, rhs[:, :, None])[:, :, 0]
    return u, v


def _probit_parts(
    eta: np.ndarray, y: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Fisher-scoring weights ``phi^2 / (P (1 - P))`` and, given answers ``y``, working
    residuals ``(y - P) / phi`` of a probit at ``eta``, clipped to +-8 (where every factor is
    still a normal float)."""
    eta = np.clip(eta, -8.0, 8.0)
    phi = np.exp(-0.5 * eta * eta) / math.sqrt(2.0 * math.pi)
    p, q = ndtr(eta), ndtr(-eta)
    resid = None if y is None else np.where(y > 0.5, q, -p) / phi
    return phi * phi / (p * q), resid


def fit_response_loadings(
    users: np.ndarray,
    items: np.ndarray,
    offset: np.ndarray,
    y: np.ndarray,
    n_users: int,
    n_items: int,
    rank: int,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Rank-``rank`` probit factors: ``P(y[r] = 1) = Phi(offset[r] + U[users[r]] . V[items[r]])``.

    Alternating ridge probit regressions, each one Fisher-scoring step (iteratively
    reweighted least squares) per sweep. Returns ``(U, V)`` with each column of ``U`` scaled
    to unit variance over the persons, as ``fit_loadings``. Deterministic for a ``seed``.
    """
    rng = np.random.default_rng(seed)
    v = rng.normal(0.0, 0.1, (n_items, rank))
    u = np.zeros((n_users, rank))
    ridge = RIDGE * np.eye(rank)
    for _ in range(ALS_SWEEPS):
        for by_user in (True, False):
            inner = np.einsum("nk,nk->n", u[users], v[items])
            weight, resid = _probit_parts(offset + inner, y)
            rows, other, n = (users, v[items], n_users) if by_user else (items, u[users], n_items)
            gram, rhs = _normal_equations(rows, other, inner + resid, n, weight)
            solved = np.linalg.solve(gram + ridge, rhs[:, :, None])[:, :, 0]
            if by_user:
                scale = solved.std(axis=0)
                scale[scale == 0] = 1.0
                u = solved / scale
            else:
                v = solved
    return u, v


def response_posterior(
    users: np.ndarray,
    loadings: np.ndarray,
    offset: np.ndarray,
    u: np.ndarray,
    prior_cov: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Laplace approximation of each person's ``zeta`` posterior at its fitted value ``u``:
    mean ``u`` and covariance ``(Sigma^-1 + sum w mu mu')^-1`` with the probit's Fisher
    weights ``w`` at the fitted argument (per-answer ``loadings`` and ``offset``)."""
    weight, _ = _probit_parts(offset + np.einsum("nk,nk->n", u[users], loadings))
    gram, _ = _normal_equations(users, loadings, np.zeros(len(users)), len(u), weight)
    cov = np.linalg.inv(gram + np.linalg.inv(prior_cov)[None, :, :])
    return u.copy(), 0.5 * (cov + np.swapaxes(cov, 1, 2))


def posterior(
    users: np.ndarray,
    loadings: np.ndarray,
    z: np.ndarray,
    n_users: int,
    prior_cov: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Each person's Gaussian posterior of ``eta`` given their standardised residuals ``z``
    (unit noise variance) at per-answer ``loadings``: mean (n, K) and covariance (n, K, K)."""
    gram, rhs = _normal_equations(users, loadings, z, n_users)
    precision = gram + np.linalg.inv(prior_cov)[None, :, :]
    cov = np.linalg.inv(precision)
    cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))
    return np.einsum("nij,nj->ni", cov, rhs), cov


def row_loadings(loadings: np.ndarray, item_rows: np.ndarray) -> np.ndarray:
    """Loadings per answer from item positions; an unknown item (position < 0 or past the
    fitted items) loads on nothing."""
    n_items = len(loadings)
    known = (item_rows >= 0) & (item_rows < n_items)
    out = np.zeros((len(item_rows), loadings.shape[1]))
    out[known] = loadings[item_rows[known]]
    return out


def shift(mean: np.ndarray, cov: np.ndarray, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The factors' part of each answer's log time: its mean ``lambda . E[eta]`` and its
    variance ``lambda' Cov(eta) lambda`` (one per row of ``mean``/``cov``/``lam``)."""
    centre = np.einsum("nk,nk->n", mean, lam)
    spread = np.einsum("nk,nkl,nl->n", lam, cov, lam)
    return centre, spread


def factor_update(
    mean: np.ndarray,
    cov: np.ndarray,
    lam: np.ndarray,
    score: np.ndarray,
    curvature: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Move ``eta``'s posterior by an observation of ``v = lambda . eta``: the mean by ``score
    * Cov(eta, v)``, the covariance by ``curvature * Cov(eta, v) Cov(eta, v)'``, where ``score``
    and ``curvature`` are the first two derivatives of the log predictive density of the
    innovation (``-d / r2`` and ``-1 / r2`` for a normal; see ``time_update`` for the t).
    ``curvature`` is kept above ``-1 / Var(v)``: an observation never makes eta less
    certain, and the covariance stays positive definite."""
    k = np.einsum("nkl,nl->nk", cov, lam)
    var_v = np.einsum("nk,nk->n", lam, k)
    safe = np.where(var_v > 0, var_v, 1.0)
    curvature = np.where(var_v > 0, np.clip(curvature, -(1.0 - 1e-12) / safe, 0.0), 0.0)
    new_mean = mean + score[:, None] * k
    new_cov = cov + curvature[:, None, None] * (k[:, :, None] * k[:, None, :])
    return new_mean, new_cov


class FactorPart:
    """One part's factors (``"time"`` or ``"response"``): the items' loadings (items x rank),
    the factors' population covariance, and every person's posterior mean and covariance in
    buffers that grow by doubling (rows past the persons hold the prior). Rank 0: no factors.
    """

    def __init__(self, loadings: np.ndarray, prior_cov: np.ndarray, capacity: int) -> None:
        self.loadings = np.asarray(loadings, dtype=float)
        self.prior_cov = np.asarray(prior_cov, dtype=float)
        self.mean = np.zeros((capacity, self.rank))
        self.cov = np.tile(self.prior_cov, (capacity, 1, 1))

    @classmethod
    def none(cls, n_items: int, capacity: int) -> FactorPart:
        return cls(np.zeros((n_items, 0)), np.zeros((0, 0)), capacity)

    @property
    def rank(self) -> int:
        return int(self.prior_cov.shape[0])

    def grow(self, capacity: int) -> None:
        """Make room for ``capacity`` persons (new rows hold the prior)."""
        old = len(self.mean)
        mean = np.zeros((capacity, self.rank))
        cov = np.tile(self.prior_cov, (capacity, 1, 1))
        mean[:old], cov[:old] = self.mean, self.cov
        self.mean, self.cov = mean, cov

    def of(self, stored: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the posteriors of stored persons (index < 0: the prior)."""
        mean = np.zeros((len(stored), self.rank))
        cov = np.tile(self.prior_cov, (len(stored), 1, 1))
        has = stored >= 0
        mean[has], cov[has] = self.mean[stored[has]], self.cov[stored[has]]
        return mean, cov

    def rows(self, positions: np.ndarray) -> np.ndarray:
        """Loadings per answer from its item's position (none for an unknown item)."""
        return row_loadings(self.loadings, positions)

    def state(self, name: str, size: int) -> dict[str, np.ndarray]:
        """The part as artifact arrays, keyed by ``name``."""
        return {
            f"{name}_loadings_": self.loadings.copy(),
            f"{name}_factor_cov_": self.prior_cov.copy(),
            f"person_{name}_factor_mean_": self.mean[:size].copy(),
            f"person_{name}_factor_cov_": self.cov[:size].copy(),
        }

    @classmethod
    def from_state(
        cls, state: dict, name: str, n_items: int, n_persons: int, capacity: int
    ) -> FactorPart:
        """The part stored by ``state`` (none when the artifact predates it). Raises
        ``ValueError`` for arrays of the wrong shape or with non-finite values."""
        if f"{name}_loadings_" not in state:
            return cls.none(n_items, capacity)
        try:
            loadings = np.asarray(state[f"{name}_loadings_"], dtype=float)
            rank = loadings.shape[1] if loadings.ndim == 2 else -1
            prior = np.asarray(state[f"{name}_factor_cov_"], dtype=float).reshape(rank, rank)
            mean = np.asarray(state[f"person_{name}_factor_mean_"], dtype=float)
            cov = np.asarray(state[f"person_{name}_factor_cov_"], dtype=float)
            mean, cov = mean.reshape(n_persons, rank), cov.reshape(n_persons, rank, rank)
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"LNIRT state has invalid {name} factors: {exc}") from exc
        values = (loadings, prior, mean, cov)
        if loadings.shape != (n_items, rank) or not all(np.all(np.isfinite(v)) for v in values):
            raise ValueError(f"LNIRT state has invalid {name} factors")
        part = cls(loadings, prior, capacity)
        part.mean[:n_persons], part.cov[:n_persons] = mean, cov
        return part
