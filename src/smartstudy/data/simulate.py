"""Simulators that draw interactions frames from learner models with known parameters.

They serve parameter-recovery tests and benchmarks: the truth is returned next to the data,
so an estimator can be checked against it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def _lnirt_items(
    rng: np.random.Generator,
    n_items: int,
    a_range: tuple[float, float],
    b_sd: float,
    alpha_range: tuple[float, float],
    beta_mean: float,
    beta_sd: float,
) -> dict[str, np.ndarray]:
    return {
        "a": rng.uniform(*a_range, size=n_items),
        "b": rng.normal(0.0, b_sd, size=n_items),
        "alpha": rng.uniform(*alpha_range, size=n_items),
        "beta": rng.normal(beta_mean, beta_sd, size=n_items),
    }


def _lnirt_persons(
    rng: np.random.Generator, n_persons: int, rho: float, sigma_tau: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cov = np.array([[1.0, rho * sigma_tau], [rho * sigma_tau, sigma_tau**2]])
    draws = rng.multivariate_normal(np.zeros(2), cov, size=n_persons)
    return draws[:, 0], draws[:, 1], cov


def simulate_lnirt(
    n_persons: int,
    n_items: int,
    *,
    rho: float = -0.4,
    seed: int = 0,
    sigma_tau: float = 0.4,
    a_range: tuple[float, float] = (0.6, 1.8),
    b_sd: float = 1.0,
    alpha_range: tuple[float, float] = (1.5, 2.5),
    beta_mean: float = 4.0,
    beta_sd: float = 0.5,
    p_administered: float = 1.0,
    n_skills: int = 1,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Draw responses and response times from van der Linden's (2007) hierarchical model.

    The model of "A hierarchical framework for modeling speed and accuracy on test items",
    Psychometrika 72(3), as in the R package LNIRT (Fox, Klotzke & Klein Entink)::

        (theta_p, tau_p) ~ N(0, [[1, rho sigma_tau], [rho sigma_tau, sigma_tau^2]])
        P(correct_pi = 1) = Phi(a_i (theta_p - b_i))
        log T_pi ~ N(beta_i - tau_p, 1 / alpha_i^2)

    Items: ``a ~ U(a_range)``, ``b ~ N(0, b_sd^2)``, ``alpha ~ U(alpha_range)``,
    ``beta ~ N(beta_mean, beta_sd^2)`` (``beta_mean = 4`` is a median of about 55 s).
    Each person answers each item with probability ``p_administered`` (at least one item), in
    a random order given by ``order``; item ``i`` belongs to skill ``i mod n_skills``.

    Returns the interactions frame (``user_id, item_id, skill_id, correct, rt_seconds,
    order``) and the truth: ``theta``, ``tau`` (per person, in ``user_ids`` order), ``a``,
    ``b``, ``alpha``, ``beta`` (per item, in ``item_ids`` order), ``sigma_P``, ``rho``,
    ``sigma_tau``, ``user_ids`` and ``item_ids``.
    """
    if n_persons < 1 or n_items < 1:
        raise ValueError(f"need n_persons >= 1 and n_items >= 1, got {n_persons}, {n_items}")
    if not -1.0 < rho < 1.0:
        raise ValueError(f"rho must lie in (-1, 1), got {rho!r}")
    if not sigma_tau > 0:
        raise ValueError(f"sigma_tau must be > 0, got {sigma_tau!r}")
    if not 0.0 < p_administered <= 1.0:
        raise ValueError(f"p_administered must lie in (0, 1], got {p_administered!r}")
    if n_skills < 1:
        raise ValueError(f"n_skills must be >= 1, got {n_skills!r}")
    rng = np.random.default_rng(seed)
    items = _lnirt_items(rng, n_items, a_range, b_sd, alpha_range, beta_mean, beta_sd)
    theta, tau, sigma_p = _lnirt_persons(rng, n_persons, rho, sigma_tau)

    given = rng.uniform(size=(n_persons, n_items)) < p_administered
    # Everyone answers at least one item, so every simulated person is in the data.
    empty = ~given.any(axis=1)
    given[np.flatnonzero(empty), rng.integers(0, n_items, size=int(empty.sum()))] = True
    person, item = np.nonzero(given)

    eta = items["a"][item] * (theta[person] - items["b"][item])
    correct = (rng.standard_normal(len(person)) < eta).astype(np.int64)
    log_t = (
        items["beta"][item] - tau[person] + rng.standard_normal(len(person)) / items["alpha"][item]
    )
    # A random presentation order per person: rank of a uniform key within the person.
    key = rng.uniform(size=len(person))
    order = pd.Series(key).groupby(person).rank(method="first").to_numpy(dtype=np.int64)

    width_p, width_i = len(str(n_persons - 1)), len(str(n_items - 1))
    user_ids = np.array([f"p{k:0{width_p}d}" for k in range(n_persons)])
    item_ids = np.array([f"i{k:0{width_i}d}" for k in range(n_items)])
    frame = pd.DataFrame(
        {
            "user_id": user_ids[person],
            "item_id": item_ids[item],
            "skill_id": [f"s{k}" for k in item % n_skills],
            "correct": correct,
            "rt_seconds": np.exp(log_t),
            "order": order,
        }
    )
    frame = frame.sort_values(["user_id", "order"], kind="stable", ignore_index=True)
    truth: dict[str, Any] = {
        "theta": theta,
        "tau": tau,
        **items,
        "sigma_P": sigma_p,
        "rho": float(rho),
        "sigma_tau": float(sigma_tau),
        "user_ids": user_ids,
        "item_ids": item_ids,
    }
    return frame, truth


__all__ = ["simulate_lnirt"]
