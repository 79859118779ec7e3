"""Simulators that draw interactions frames from learner models with known parameters.

They serve parameter-recovery tests and benchmarks: the truth is returned next to the data,
so an estimator can be checked against it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

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
    _check_lnirt_args(n_persons, n_items, rho, sigma_tau, p_administered, n_skills)
    rng = np.random.default_rng(seed)
    items = _lnirt_items(rng, n_items, a_range, b_sd, alpha_range, beta_mean, beta_sd)
    theta, tau, sigma_p = _lnirt_persons(rng, n_persons, rho, sigma_tau)
    person, item = _administered(rng, n_persons, n_items, p_administered)
    correct, log_t, order = _lnirt_responses(rng, items, theta, tau, person, item)

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


def _check_lnirt_args(
    n_persons: int,
    n_items: int,
    rho: float,
    sigma_tau: float,
    p_administered: float,
    n_skills: int,
) -> None:
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


def _administered(
    rng: np.random.Generator, n_persons: int, n_items: int, p_administered: float
) -> tuple[np.ndarray, np.ndarray]:
    """(person, item) index pairs of the answered items: each with ``p_administered``."""
    given = rng.uniform(size=(n_persons, n_items)) < p_administered
    # Everyone answers at least one item, so every simulated person is in the data.
    empty = ~given.any(axis=1)
    given[np.flatnonzero(empty), rng.integers(0, n_items, size=int(empty.sum()))] = True
    person, item = np.nonzero(given)
    return person, item


def _lnirt_responses(
    rng: np.random.Generator,
    items: dict[str, np.ndarray],
    theta: np.ndarray,
    tau: np.ndarray,
    person: np.ndarray,
    item: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Outcomes (normal ogive), log times (lognormal) and a random order within each person."""
    eta = items["a"][item] * (theta[person] - items["b"][item])
    correct = (rng.standard_normal(len(person)) < eta).astype(np.int64)
    log_t = (
        items["beta"][item] - tau[person] + rng.standard_normal(len(person)) / items["alpha"][item]
    )
    # A random presentation order per person: rank of a uniform key within the person.
    key = rng.uniform(size=len(person))
    order = pd.Series(key).groupby(person).rank(method="first").to_numpy(dtype=np.int64)
    return correct, log_t, order


_BKT_KEYS = ("l0", "t", "s", "g", "f")


def _bkt_param_set(params: Any) -> dict[str, float]:
    """One skill's BKT parameters from a mapping or an object with attributes l0, t, s, g
    (and optionally f), e.g. ``smartstudy.models.bkt.BKTParams``."""
    get = params.get if isinstance(params, Mapping) else lambda k, d=None: getattr(params, k, d)
    values = {k: get(k, 0.0 if k == "f" else None) for k in _BKT_KEYS}
    missing = [k for k, v in values.items() if v is None]
    if missing:
        raise ValueError(f"BKT parameters need l0, t, s, g (f optional); missing {missing}")
    out = {k: float(v) for k, v in values.items()}
    for k, v in out.items():
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"BKT parameter {k} must lie in [0, 1], got {v!r}")
    return out


def simulate_bkt(
    n_students: int,
    n_attempts: int,
    params: Any,
    *,
    n_skills: int = 1,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Draw answers from Bayesian Knowledge Tracing (Corbett & Anderson 1995, UMUAI 4).

    Per student and skill, the hidden state starts learned with probability ``l0``; at each
    attempt the answer is correct with probability ``1 - s`` if learned and ``g`` if not;
    after it an unlearned student learns with probability ``t`` and a learned one forgets
    with probability ``f`` (0 unless given, as in pyBKT's forgetting model).

    ``params`` is one parameter set (a mapping or an object with ``l0, t, s, g`` and
    optionally ``f``) used for every skill, or a sequence of ``n_skills`` of them. Every
    student makes ``n_attempts`` attempts at each skill; a student's skills are interleaved
    in a random order given by ``order``. ``item_id`` equals ``skill_id`` (BKT has no items).

    Returns the interactions frame (``user_id, item_id, skill_id, correct, rt_seconds,
    order``; no times) and the truth: ``params`` (``{skill_id: {l0, t, s, g, f}}``),
    ``learned`` (the hidden state at each row of the frame, 0/1) and ``skill_ids``.
    """
    if n_students < 1 or n_attempts < 1 or n_skills < 1:
        raise ValueError(
            f"need n_students, n_attempts and n_skills >= 1, got {n_students}, {n_attempts}, "
            f"{n_skills}"
        )
    if isinstance(params, Mapping) or not isinstance(params, Sequence):
        sets = [_bkt_param_set(params)] * n_skills
    else:
        if len(params) != n_skills:
            raise ValueError(f"got {len(params)} parameter sets for n_skills={n_skills}")
        sets = [_bkt_param_set(p) for p in params]
    rng = np.random.default_rng(seed)
    table = np.array([[p[k] for k in _BKT_KEYS] for p in sets])  # (n_skills, 5)
    l0, t, s, g, f = (table[:, k][None, :] for k in range(5))

    # State and answers for all (student, skill) chains at once, one attempt at a time.
    learned = np.empty((n_students, n_skills, n_attempts), dtype=np.int64)
    correct = np.empty_like(learned)
    state = rng.uniform(size=(n_students, n_skills)) < l0
    for k in range(n_attempts):
        p_correct = np.where(state, 1.0 - s, g)
        learned[:, :, k] = state
        correct[:, :, k] = rng.uniform(size=state.shape) < p_correct
        u = rng.uniform(size=state.shape)
        state = np.where(state, u >= f, u < t)

    student, skill, _ = np.indices(learned.shape).reshape(3, -1)
    # Interleave each student's skills: a random permutation of the student's attempt slots,
    # sorted within each skill so that a skill's attempts keep their sequence.
    n_slots = n_skills * n_attempts
    slots = np.argsort(rng.uniform(size=(n_students, n_slots)), axis=1)
    order = np.sort(slots.reshape(n_students, n_skills, n_attempts), axis=2).reshape(-1)

    width_s, width_k = len(str(n_students - 1)), len(str(n_skills - 1))
    user_ids = np.array([f"s{k:0{width_s}d}" for k in range(n_students)])
    skill_ids = np.array([f"k{k:0{width_k}d}" for k in range(n_skills)])
    frame = pd.DataFrame(
        {
            "user_id": user_ids[student],
            "item_id": skill_ids[skill],
            "skill_id": skill_ids[skill],
            "correct": correct.reshape(-1),
            "rt_seconds": np.nan,
            "order": order,
        }
    )
    states = learned.reshape(-1)
    sort = frame.sort_values(["user_id", "order"], kind="stable").index.to_numpy()
    frame = frame.loc[sort].reset_index(drop=True)
    truth: dict[str, Any] = {
        "params": {str(k): dict(p) for k, p in zip(skill_ids, sets, strict=True)},
        "learned": states[sort],
        "skill_ids": skill_ids,
    }
    return frame, truth


APP_DIFFICULTIES: tuple[str, ...] = ("easy", "medium", "hard")
APP_TOPICS: tuple[str, ...] = ("Calculus", "Microeconomics", "Mechanics", "Waves")
# Logit shift and time multiplier of each difficulty level; the times follow seed 000's bulk
# user (easy about a minute, medium about 3.7x, hard about 7.5x as long).
_APP_DIFFICULTY_LOGIT = {"easy": 1.3, "medium": 0.0, "hard": -1.3}
_APP_DIFFICULTY_TIME = {"easy": 1.0, "medium": 3.7, "hard": 7.5}


def simulate_app_learners(
    task_counts: Sequence[int],
    *,
    topics: Sequence[str] = APP_TOPICS,
    user_ids: Sequence[str] | None = None,
    seed: int = 0,
    learning_rate: float = 0.25,
    time_log_sd: float = 0.35,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Practice tasks in app terms: items are "topic:difficulty", skills are topics.

    User ``u`` does ``task_counts[u]`` tasks, one after another (``order`` 0, 1, ...), each on
    a topic and difficulty drawn from the user's own preferences (Dirichlet draws, so some
    users stick to a few topics). The answer is correct with probability::

        sigmoid(theta_u + delta_ut - b_t + d_difficulty + learning_rate * log1p(n_ut))

    with ability ``theta_u ~ N(0, 0.8^2)``, a personal topic offset ``delta_ut ~ N(0, 0.5^2)``,
    topic difficulty ``b_t ~ N(0, 0.3^2)``, ``d`` = +1.3 / 0 / -1.3 for easy / medium / hard,
    and ``n_ut`` the user's earlier tasks on the topic (practice helps). The time in seconds
    is log-normal: median ``base_t * m_difficulty * exp(-tau_u) * (1 + n_ut) ** -0.05`` with
    ``base_t ~ U(50, 90)`` s, ``m`` = 1 / 3.7 / 7.5, speed ``tau_u ~ N(0, 0.3^2)`` and log-sd
    ``time_log_sd``, rounded to 0.1 s.

    Returns the interactions frame (``user_id, item_id, skill_id, correct, rt_seconds,
    order``, sorted by user then order) and the truth: ``theta``, ``tau`` and ``user_ids`` per
    user, ``topic_difficulty`` per topic and ``p_correct`` per row of the frame.
    """
    counts = [int(c) for c in task_counts]
    user_ids = _check_app_args(counts, task_counts, topics, user_ids)
    rng = np.random.default_rng(seed)
    n_users, n_topics = len(counts), len(topics)
    population = _AppPopulation(
        theta=rng.normal(0.0, 0.8, n_users),
        tau=rng.normal(0.0, 0.3, n_users),
        offset=rng.normal(0.0, 0.5, (n_users, n_topics)),
        b=rng.normal(0.0, 0.3, n_topics),
        base=rng.uniform(50.0, 90.0, n_topics),
    )
    rows = []
    for u, n_tasks in enumerate(counts):
        rows += _app_learner_tasks(
            rng, population, u, str(user_ids[u]), n_tasks, topics, learning_rate, time_log_sd
        )
    frame = pd.DataFrame(rows)
    frame["rt_seconds"] = frame["rt_seconds"].clip(lower=0.1)
    frame = frame.sort_values(["user_id", "order"], kind="stable", ignore_index=True)
    truth: dict[str, Any] = {
        "theta": population.theta,
        "tau": population.tau,
        "user_ids": np.asarray(user_ids, dtype=object),
        "topic_difficulty": dict(zip(topics, population.b.tolist(), strict=True)),
        "p_correct": frame.pop("_p").to_numpy(),
    }
    return frame, truth


class _AppPopulation(NamedTuple):
    """The true parameters of ``simulate_app_learners``: per user ``theta``, ``tau`` and
    ``offset`` (per topic), per topic ``b`` and ``base`` (seconds)."""

    theta: np.ndarray
    tau: np.ndarray
    offset: np.ndarray
    b: np.ndarray
    base: np.ndarray


def _check_app_args(
    counts: list[int],
    task_counts: Sequence[int],
    topics: Sequence[str],
    user_ids: Sequence[str] | None,
) -> Sequence[str]:
    """The user ids (``learner0``, ... by default) after checking the arguments."""
    if not counts or min(counts) < 1:
        raise ValueError(f"task_counts must be positive integers, got {list(task_counts)!r}")
    if not topics:
        raise ValueError("topics is empty")
    if user_ids is None:
        user_ids = [f"learner{k}" for k in range(len(counts))]
    if len(user_ids) != len(counts) or len(set(user_ids)) != len(user_ids):
        raise ValueError("user_ids must be distinct, one per entry of task_counts")
    return user_ids


def _app_learner_tasks(
    rng: np.random.Generator,
    population: _AppPopulation,
    u: int,
    user_id: str,
    n_tasks: int,
    topics: Sequence[str],
    learning_rate: float,
    time_log_sd: float,
) -> list[dict[str, Any]]:
    """User ``u``'s tasks in order, each with its true chance ``_p`` (see
    ``simulate_app_learners`` for the model)."""
    n_topics = len(topics)
    topic_pref = rng.dirichlet(np.full(n_topics, 0.8))
    diff_pref = rng.dirichlet(np.full(len(APP_DIFFICULTIES), 2.0))
    practised = np.zeros(n_topics)
    rows = []
    for step in range(n_tasks):
        t = int(rng.choice(n_topics, p=topic_pref))
        d = APP_DIFFICULTIES[int(rng.choice(len(APP_DIFFICULTIES), p=diff_pref))]
        eta = (
            population.theta[u]
            + population.offset[u, t]
            - population.b[t]
            + _APP_DIFFICULTY_LOGIT[d]
            + learning_rate * np.log1p(practised[t])
        )
        p = 1.0 / (1.0 + np.exp(-eta))
        median = (
            population.base[t]
            * _APP_DIFFICULTY_TIME[d]
            * np.exp(-population.tau[u])
            * (1.0 + practised[t]) ** -0.05
        )
        rows.append(
            {
                "user_id": user_id,
                "item_id": f"{topics[t]}:{d}",
                "skill_id": str(topics[t]),
                "correct": int(rng.random() < p),
                "rt_seconds": round(float(median * np.exp(rng.normal(0.0, time_log_sd))), 1),
                "order": step,
                "_p": p,
            }
        )
        practised[t] += 1
    return rows


__all__ = ["simulate_app_learners", "simulate_bkt", "simulate_lnirt"]
