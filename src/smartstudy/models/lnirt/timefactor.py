"""Person-by-item factors of response time, learned on top of LNIRT's speed.

LNIRT explains a log time by the item's intensity and the person's speed:
``log T = beta_i - tau_p + e / alpha_i``. Real persons are not equally fast on every item: one
reads long stems slowly but computes fast, another the reverse. Those patterns are left in
the residual, where they repeat from item to item. This module models them as a few latent
factors (a low-rank person-by-item interaction, as in the factor models of response times
of Klein Entink, Fox & van der Linden 2009, "A multivariate multilevel approach to the
modeling of accuracy and speed of test takers", Psychometrika 74(1), and in the matrix
factorisation of collaborative filtering, Koren, Bell & Volinsky 2009)::

    log T = beta_i - tau_p + lambda_i . eta_p + e / alpha_i

- ``lambda_i`` (K values per item, log seconds per unit of factor) are fitted once, by
  alternating ridge regressions (ALS) on the standardised residuals ``alpha_i (log t -
  beta_i + tau_p)`` of the training persons, with ``eta`` scaled to unit variance.
- ``eta_p`` (K values per person) has the population prior ``N(0, Sigma_eta)`` and, like
  ``(theta, tau)``, a Gaussian posterior per person, updated online after every timed answer
  in constant time: the conjugate (Kalman) step for normal residuals, assumed-density
  filtering against the t for Student-t residuals (the same step as ``time_update``).
- A person's predicted log time moves by ``lambda_i . E[eta_p]``, and its variance grows by
  ``lambda_i' Cov(eta_p) lambda_i``.

How many factors (0 to ``MAX_RANK``) is decided by the data: ``LNIRT.fit`` fits the loadings
on most training persons and replays the others one step ahead as new persons, and keeps a
rank only when it predicts their log times better (``choose_rank``). Few items, few persons
per item, or times without person-specific patterns give rank 0: plain LNIRT.
"""

from __future__ import annotations

import numpy as np

# Ranks tried, and what a rank must gain on the replay's mean squared log-time error.
MAX_RANK = 3
MIN_GAIN = 0.005
# A factor needs items to load on and persons to estimate the loadings from.
MIN_ITEMS = 10
MIN_PERSONS = 50
# Ridge penalty of the ALS (in units of the standardised residual's variance): a loading
# seen in n answers is shrunk by n / (n + RIDGE).
RIDGE = 1.0
ALS_SWEEPS = 25
# The residual variance left once the factors are modelled is the fitted one less the
# factors' share, but never below this fraction of it.
MIN_RESIDUAL_SHARE = 0.25
# Standardised residuals are winsorised here before the loadings are fitted.
RESIDUAL_CLIP = 4.0


def _normal_equations(
    rows: np.ndarray, other: np.ndarray, z: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per group ``g``: ``sum other other'`` (n, K, K) and ``sum other z`` (n, K) over the rows
    whose group is ``rows``."""
    k = other.shape[1]
    gram = np.empty((n, k, k))
    for a in range(k):
        for b in range(a, k):
            gram[:, a, b] = gram[:, b, a] = np.bincount(
                rows, weights=other[:, a] * other[:, b], minlength=n
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
