"""The scalar mathematics of Bayesian Knowledge Tracing, as pure functions of plain floats.

Knowledge tracing (Corbett & Anderson 1995, "Knowledge tracing: Modeling the acquisition of
procedural knowledge", User Modeling and User-Adapted Interaction 4, 253-278) models one
skill of one student as a hidden two-state Markov chain, *learned* or *not learned*, with

- ``l0`` = P(L_1): the probability that the skill is known before the first attempt;
- ``t``  = P(L_{n+1} | not L_n): the probability of learning it at an opportunity;
- ``s``  = P(wrong | L_n): the slip probability of a student who knows the skill;
- ``g``  = P(correct | not L_n): the guess probability of a student who does not;
- ``f``  = P(not L_{n+1} | L_n): the forgetting probability (0 in the original model; the
  extension follows pyBKT, Badrinath, Wang & Pardos 2021, "pyBKT: An Accessible Python
  Library of Bayesian Knowledge Tracing Models", EDM 2021).

One observed attempt updates the mastery estimate ``p_l = P(L_n | earlier answers)`` in two
steps: Bayes' rule with the answer (:func:`posterior_given_correct`,
:func:`posterior_given_wrong`), then the learning transition (:func:`learning_transition`).
This module is the live service's online step, so it uses plain Python floats: one
:func:`update_mastery` costs about a microsecond, where NumPy's per-call overhead on scalars
would cost more than the arithmetic. The vectorised batch versions live in
``smartstudy.models.bkt.em``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

# Probabilities are kept this far inside (0, 1): a mastery of exactly 0 or 1 could never be
# revised by later evidence, and a zero denominator in Bayes' rule would divide by zero.
PROB_EPS = 1e-9
# The smallest learning rate that counts as "learning at all" (the seed's T > epsilon rule):
# below it the chain never leaves "not learned" within any realistic number of attempts.
T_EPSILON = 1e-6
# A guess or slip above one half means that an answer is more likely to contradict the
# student's state than to reflect it.
MAX_GUESS = 0.5
MAX_SLIP = 0.5
# (1 - s) - g: how much more often a learned student answers correctly than an unlearned one.
# Below this gap the two states predict almost the same answers, so mastery is unidentifiable.
MIN_DISCRIMINATION = 0.05

PARAM_NAMES: tuple[str, ...] = ("l0", "t", "s", "g", "f")


@dataclass(frozen=True, slots=True)
class BKTParams:
    """The parameters of one skill: prior ``l0``, learn ``t``, slip ``s``, guess ``g``, forget
    ``f`` (Corbett & Anderson 1995; ``f`` as in pyBKT). Construction does not validate: use
    :func:`validate_params` and :func:`check_degeneracy`."""

    l0: float
    t: float
    s: float
    g: float
    f: float = 0.0

    def to_dict(self) -> dict[str, float]:
        """The five parameters as a ``{name: float}`` dict (JSON-ready)."""
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> BKTParams:
        """Build from a mapping with keys ``l0, t, s, g`` and optionally ``f``."""
        missing = [k for k in ("l0", "t", "s", "g") if k not in values]
        if missing:
            raise ValueError(
                f"BKT parameters need keys l0, t, s, g (f optional); missing {missing}"
            )
        unknown = sorted(set(values) - set(PARAM_NAMES))
        if unknown:
            raise ValueError(f"unknown BKT parameter(s) {unknown}; expected {list(PARAM_NAMES)}")
        return cls(**{k: float(values[k]) for k in values})


# The defaults of the original design (seed 003): used for skills without (usable) data.
DEFAULT_PARAMS = BKTParams(l0=0.1, t=0.2, s=0.1, g=0.2, f=0.0)


def clamp_probability(p: float, eps: float = PROB_EPS) -> float:
    """``p`` limited to ``[eps, 1 - eps]``; NaN becomes ``eps`` (no evidence of mastery)."""
    if p != p:  # NaN: the only float not equal to itself
        return eps
    if p < eps:
        return eps
    if p > 1.0 - eps:
        return 1.0 - eps
    return p


def predict_correct(p_l: float, s: float, g: float) -> float:
    """P(correct) = p_l (1 - s) + (1 - p_l) g: a learned student slips with probability ``s``,
    an unlearned one guesses right with probability ``g`` (Corbett & Anderson 1995, eq. 1)."""
    p_l = clamp_probability(p_l)
    return clamp_probability(p_l * (1.0 - s) + (1.0 - p_l) * g)


def posterior_given_correct(p_l: float, s: float, g: float) -> float:
    """P(L | correct) = p_l (1 - s) / (p_l (1 - s) + (1 - p_l) g), by Bayes' rule."""
    p_l = clamp_probability(p_l)
    num = p_l * (1.0 - s)
    den = num + (1.0 - p_l) * g
    # den is 0 only for s = 1 and g = 0 (a correct answer is impossible): nothing to learn.
    return clamp_probability(num / den) if den > 0.0 else p_l


def posterior_given_wrong(p_l: float, s: float, g: float) -> float:
    """P(L | wrong) = p_l s / (p_l s + (1 - p_l)(1 - g)), by Bayes' rule."""
    p_l = clamp_probability(p_l)
    num = p_l * s
    den = num + (1.0 - p_l) * (1.0 - g)
    return clamp_probability(num / den) if den > 0.0 else p_l


def learning_transition(p_l: float, t: float, f: float = 0.0) -> float:
    """P(L_{n+1}) = p_l (1 - f) + (1 - p_l) t: keep (or forget) what is known, learn the rest."""
    p_l = clamp_probability(p_l)
    return clamp_probability(p_l * (1.0 - f) + (1.0 - p_l) * t)


def update_mastery(p_l: float, correct: bool | int | float, params: BKTParams) -> float:
    """Mastery before the next attempt, given ``p_l`` before this one and its outcome.

    The posterior given the answer, then the learning transition (Corbett & Anderson 1995,
    eqs. 2-3). ``correct`` is truthy for a correct answer. Written out inline (the same
    arithmetic as the helper functions) because this is the live service's hot path.
    """
    s, g = params.s, params.g
    p = clamp_probability(p_l)
    if correct:
        num = p * (1.0 - s)
        den = num + (1.0 - p) * g
    else:
        num = p * s
        den = num + (1.0 - p) * (1.0 - g)
    post = clamp_probability(num / den) if den > 0.0 else p
    return clamp_probability(post * (1.0 - params.f) + (1.0 - post) * params.t)


def shown_mastery_update(
    shown: float, n_before: int, correct: bool | int | float, params: BKTParams
) -> float:
    """The mastery shown to a student after one more answer: monotone in that answer.

    ``shown`` is the estimate after ``n_before`` answers (``l0`` when there are none). The
    step is BKT's forward filter written on the posterior: the learning transition carries
    ``shown`` to the next opportunity (none before the first answer, since ``l0`` already is
    P(L_1)), then Bayes' rule takes in the answer. Plain BKT can raise mastery after a wrong
    answer, because the learning it expects from practice can outweigh the evidence (with the
    defaults, 0 of 2 correct takes P(L) from 0.10 to 0.23), and no function of the BKT state
    alone avoids that. So the step never moves against the answer: after a wrong answer the
    estimate is at most ``shown``, after a correct one at least ``shown``; when the
    transition would win, the estimate holds still, i.e. no learning is credited for that
    attempt. Without such a hold the value is exactly P(L_n | answers 1..n).
    """
    prior = clamp_probability(shown)
    if n_before > 0:
        prior = learning_transition(prior, params.t, params.f)
    # Compared with ``shown`` itself, not its clamp: the guarantee holds for stored values.
    if correct:
        return max(shown, posterior_given_correct(prior, params.s, params.g))
    return min(shown, posterior_given_wrong(prior, params.s, params.g))


def next_attempt_mastery(shown: float, n_before: int, params: BKTParams) -> float:
    """P(L) at the next attempt from the shown estimate: ``shown`` itself before any answer,
    else after the learning transition (the predictive state that :func:`update_mastery`
    returns, and what :func:`predict_correct` takes)."""
    if n_before <= 0:
        return clamp_probability(shown)
    return learning_transition(shown, params.t, params.f)


def _as_params(params: BKTParams | Mapping[str, Any]) -> BKTParams:
    return params if isinstance(params, BKTParams) else BKTParams.from_mapping(params)


def validate_params(params: BKTParams | Mapping[str, Any]) -> list[str]:
    """Hard rules that every usable parameter set obeys; one message per violation.

    ``l0, t, s, g`` lie strictly inside (0, 1) and ``f`` in [0, 1); ``s + g < 1``, which is the
    same inequality as ``1 - s > g`` (a learned student answers correctly more often than an
    unlearned one; otherwise the states swap meaning); ``t > T_EPSILON`` (some learning
    happens). An empty list means valid.
    """
    p = _as_params(params)
    problems: list[str] = []
    values = p.to_dict()
    for name in PARAM_NAMES:
        value = values[name]
        if not math.isfinite(value):
            problems.append(f"{name} must be a finite number, got {value!r}")
            continue
        if name == "f":
            if not 0.0 <= value < 1.0:
                problems.append(f"f must lie in [0, 1), got {value!r}")
        elif not 0.0 < value < 1.0:
            problems.append(f"{name} must lie strictly between 0 and 1, got {value!r}")
    if problems:
        return problems
    if not p.s + p.g < 1.0:
        problems.append(
            f"s + g must be < 1 (1 - s > g: a learned student must answer correctly more often "
            f"than an unlearned one), got s={p.s!r}, g={p.g!r}"
        )
    if not p.t > T_EPSILON:
        problems.append(f"t must exceed {T_EPSILON} (some learning must happen), got {p.t!r}")
    return problems


def check_degeneracy(params: BKTParams | Mapping[str, Any]) -> list[str]:
    """Soft rules: valid parameters that still make mastery meaningless; one message each.

    The classic degenerate EM solutions of knowledge tracing (Baker, Corbett & Aleven 2008):
    a guess above one half, a slip above one half, or learned and unlearned states whose
    answer probabilities differ by less than ``MIN_DISCRIMINATION``. Parameters that fail
    :func:`validate_params` are reported with those messages too.
    """
    p = _as_params(params)
    problems = validate_params(p)
    if problems:
        return problems
    if p.g > MAX_GUESS:
        problems.append(f"guess g={p.g:.3f} > {MAX_GUESS}: unlearned students mostly succeed")
    if p.s > MAX_SLIP:
        problems.append(f"slip s={p.s:.3f} > {MAX_SLIP}: learned students mostly fail")
    gap = (1.0 - p.s) - p.g
    if gap < MIN_DISCRIMINATION:
        problems.append(
            f"learned state not distinguishable: (1 - s) - g = {gap:.3f} < {MIN_DISCRIMINATION}"
        )
    return problems


__all__ = [
    "DEFAULT_PARAMS",
    "MAX_GUESS",
    "MAX_SLIP",
    "MIN_DISCRIMINATION",
    "PARAM_NAMES",
    "PROB_EPS",
    "T_EPSILON",
    "BKTParams",
    "check_degeneracy",
    "clamp_probability",
    "learning_transition",
    "next_attempt_mastery",
    "posterior_given_correct",
    "posterior_given_wrong",
    "predict_correct",
    "shown_mastery_update",
    "update_mastery",
    "validate_params",
]
