"""The scalar BKT math (Corbett & Anderson 1995) against hand-computed values and properties."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from smartstudy.models.bkt.core import (
    DEFAULT_PARAMS,
    MIN_DISCRIMINATION,
    PROB_EPS,
    T_EPSILON,
    BKTParams,
    check_degeneracy,
    clamp_probability,
    learning_transition,
    posterior_given_correct,
    posterior_given_wrong,
    predict_correct,
    update_mastery,
    validate_params,
)

PARAMS = BKTParams(l0=0.1, t=0.2, s=0.1, g=0.2)


# -- hand-computed values --------------------------------------------------------------------------
def test_defaults_are_the_designs() -> None:
    expected = BKTParams(l0=0.1, t=0.2, s=0.1, g=0.2, f=0.0)
    assert expected == DEFAULT_PARAMS


def test_predict_correct() -> None:
    # 0.4 * (1 - 0.1) + 0.6 * 0.2 = 0.36 + 0.12 = 0.48
    assert predict_correct(0.4, 0.1, 0.2) == pytest.approx(0.48, abs=1e-15)
    # Prior of the defaults: 0.1 * 0.9 + 0.9 * 0.2 = 0.09 + 0.18 = 0.27
    assert predict_correct(0.1, 0.1, 0.2) == pytest.approx(0.27, abs=1e-15)
    # Certain mastery answers right unless it slips: 1 - s (up to the clamp of p_l).
    assert predict_correct(1.0, 0.1, 0.2) == pytest.approx(0.9, abs=1e-8)


def test_posterior_given_correct() -> None:
    # 0.4 * 0.9 / (0.4 * 0.9 + 0.6 * 0.2) = 0.36 / 0.48 = 0.75
    assert posterior_given_correct(0.4, 0.1, 0.2) == pytest.approx(0.75, abs=1e-15)
    # 0.1 * 0.9 / (0.09 + 0.9 * 0.2) = 0.09 / 0.27 = 1/3
    assert posterior_given_correct(0.1, 0.1, 0.2) == pytest.approx(1 / 3, abs=1e-15)


def test_posterior_given_wrong() -> None:
    # 0.4 * 0.1 / (0.4 * 0.1 + 0.6 * 0.8) = 0.04 / 0.52 = 1/13
    assert posterior_given_wrong(0.4, 0.1, 0.2) == pytest.approx(1 / 13, abs=1e-15)
    # 0.1 * 0.1 / (0.01 + 0.9 * 0.8) = 0.01 / 0.73
    assert posterior_given_wrong(0.1, 0.1, 0.2) == pytest.approx(0.01 / 0.73, abs=1e-15)


def test_learning_transition() -> None:
    # 0.75 + 0.25 * 0.2 = 0.8
    assert learning_transition(0.75, 0.2) == pytest.approx(0.8, abs=1e-15)
    # With forgetting: 0.75 * (1 - 0.1) + 0.25 * 0.2 = 0.675 + 0.05 = 0.725
    assert learning_transition(0.75, 0.2, 0.1) == pytest.approx(0.725, abs=1e-15)
    # Nothing known: only learning, 0 + 1 * 0.2 (up to the clamp of p_l).
    assert learning_transition(0.0, 0.2) == pytest.approx(0.2, abs=1e-8)


def test_update_mastery_is_posterior_then_transition() -> None:
    # Correct from 0.4: posterior 0.75, then 0.75 + 0.25 * 0.2 = 0.8
    assert update_mastery(0.4, 1, PARAMS) == pytest.approx(0.8, abs=1e-15)
    # Wrong from 0.4: posterior 1/13, then 1/13 + (12/13) * 0.2 = 3.4 / 13
    assert update_mastery(0.4, 0, PARAMS) == pytest.approx(3.4 / 13, abs=1e-15)
    # From the prior 0.1, correct: 1/3 + (2/3) * 0.2 = 7/15
    assert update_mastery(0.1, True, PARAMS) == pytest.approx(7 / 15, abs=1e-15)
    # With forgetting 0.05, correct from 0.4: 0.75 * 0.95 + 0.25 * 0.2 = 0.7625
    forgetful = dataclasses.replace(PARAMS, f=0.05)
    assert update_mastery(0.4, 1, forgetful) == pytest.approx(0.7625, abs=1e-15)
    # Two steps: 0.1 -> 7/15 (correct) -> wrong: posterior (7/15 * 0.1) / (7/150 + 8/15 * 0.8)
    # = (7/150) / (7/150 + 64/150) = 7/71, then 7/71 + (64/71) * 0.2 = 19.8/71
    p = update_mastery(update_mastery(0.1, 1, PARAMS), 0, PARAMS)
    assert p == pytest.approx(19.8 / 71, abs=1e-15)


def test_update_mastery_matches_the_helpers() -> None:
    for p in (0.0, 0.03, 0.5, 0.97, 1.0):
        for correct in (0, 1):
            post = (posterior_given_correct if correct else posterior_given_wrong)(p, 0.1, 0.2)
            expected = learning_transition(post, 0.2)
            assert update_mastery(p, correct, PARAMS) == pytest.approx(expected, abs=1e-15)


def test_clamp_probability() -> None:
    assert clamp_probability(0.3) == 0.3
    assert clamp_probability(-0.5) == PROB_EPS
    assert clamp_probability(0.0) == PROB_EPS
    assert clamp_probability(1.5) == 1.0 - PROB_EPS
    assert clamp_probability(float("nan")) == PROB_EPS
    assert clamp_probability(2.0, eps=0.01) == 0.99


def test_degenerate_denominators_do_not_divide_by_zero() -> None:
    # s = 1 and g = 0: a correct answer is impossible; the estimate is left as it was.
    assert posterior_given_correct(0.4, 1.0, 0.0) == pytest.approx(0.4)
    # s = 0 and g = 1: a wrong answer is impossible.
    assert posterior_given_wrong(0.4, 0.0, 1.0) == pytest.approx(0.4)


def test_params_are_a_small_frozen_record() -> None:
    p = BKTParams.from_mapping({"l0": 0.2, "t": 0.1, "s": 0.05, "g": 0.3})
    assert p == BKTParams(0.2, 0.1, 0.05, 0.3, 0.0)
    assert p.to_dict() == {"l0": 0.2, "t": 0.1, "s": 0.05, "g": 0.3, "f": 0.0}
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.l0 = 0.5  # type: ignore[misc]
    with pytest.raises(ValueError, match="missing"):
        BKTParams.from_mapping({"l0": 0.2, "t": 0.1, "s": 0.05})
    with pytest.raises(ValueError, match="unknown"):
        BKTParams.from_mapping({"l0": 0.2, "t": 0.1, "s": 0.05, "g": 0.3, "x": 1})


# -- validation and degeneracy ---------------------------------------------------------------------
def test_valid_params_pass() -> None:
    assert validate_params(DEFAULT_PARAMS) == []
    assert validate_params({"l0": 0.5, "t": 0.01, "s": 0.3, "g": 0.3, "f": 0.2}) == []
    assert check_degeneracy(DEFAULT_PARAMS) == []


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"l0": 0.0}, "l0 must lie strictly between 0 and 1"),
        ({"l0": 1.0}, "l0 must lie strictly between 0 and 1"),
        ({"t": -0.1}, "t must lie strictly between 0 and 1"),
        ({"s": 1.2}, "s must lie strictly between 0 and 1"),
        ({"g": 0.0}, "g must lie strictly between 0 and 1"),
        ({"f": 1.0}, "f must lie in [0, 1)"),
        ({"f": -0.1}, "f must lie in [0, 1)"),
        ({"g": float("nan")}, "g must be a finite number"),
        ({"s": 0.6, "g": 0.5}, "s + g must be < 1"),
        ({"s": 0.5, "g": 0.5}, "s + g must be < 1"),
        ({"t": T_EPSILON / 2}, "t must exceed"),
    ],
)
def test_invalid_params_are_named(changes: dict[str, float], needle: str) -> None:
    params = dataclasses.replace(DEFAULT_PARAMS, **changes)
    problems = validate_params(params)
    assert len(problems) == 1, problems
    assert needle in problems[0]
    # Invalid parameters are degenerate too.
    assert check_degeneracy(params) == problems


def test_several_problems_are_all_reported() -> None:
    problems = validate_params(BKTParams(l0=-1.0, t=2.0, s=0.1, g=0.2))
    assert len(problems) == 2
    assert problems[0].startswith("l0") and problems[1].startswith("t")


@pytest.mark.parametrize(
    ("s", "g", "needle"),
    [
        (0.1, 0.6, "guess"),  # 1 - s = 0.9 > g = 0.6: valid, but unlearned students succeed
        (0.6, 0.1, "slip"),  # learned students mostly fail
        (0.48, 0.49, "not distinguishable"),  # (1 - 0.48) - 0.49 = 0.03 < 0.05
    ],
)
def test_degeneracy_rules(s: float, g: float, needle: str) -> None:
    params = BKTParams(l0=0.3, t=0.1, s=s, g=g)
    assert validate_params(params) == []
    problems = check_degeneracy(params)
    assert len(problems) == 1 and needle in problems[0], problems


def test_a_healthy_gap_is_not_degenerate() -> None:
    # (1 - 0.4) - 0.45 = 0.15 > MIN_DISCRIMINATION = 0.05: usable.
    assert MIN_DISCRIMINATION < 0.15
    assert check_degeneracy(BKTParams(0.3, 0.1, 0.4, 0.45)) == []


# -- properties ------------------------------------------------------------------------------------
probability = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
small = st.floats(min_value=1e-4, max_value=0.49, allow_nan=False)
learn = st.floats(min_value=1e-4, max_value=0.9, allow_nan=False)
forget = st.floats(min_value=0.0, max_value=0.5, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(
    p=probability,
    t=learn,
    s=small,
    g=small,
    f=forget,
    answers=st.lists(st.booleans(), min_size=1, max_size=60),
)
def test_mastery_stays_a_probability(
    p: float, t: float, s: float, g: float, f: float, answers: list[bool]
) -> None:
    params = BKTParams(0.5, t, s, g, f)
    for correct in answers:
        p = update_mastery(p, correct, params)
        assert 0.0 <= p <= 1.0
        assert math.isfinite(predict_correct(p, s, g))
        assert 0.0 <= predict_correct(p, s, g) <= 1.0


@settings(max_examples=300, deadline=None)
@given(p=probability, t=learn, s=small, g=small, f=forget)
def test_a_correct_answer_raises_mastery_more_than_a_wrong_one(
    p: float, t: float, s: float, g: float, f: float
) -> None:
    # With t + f < 1 the transition preserves order (a larger posterior stays larger).
    assume(t + f < 0.99)
    params = BKTParams(0.5, t, s, g, f)
    assert posterior_given_correct(p, s, g) > posterior_given_wrong(p, s, g)
    # At certain mastery both answers may end at the clamp 1 - PROB_EPS: never lower.
    assert update_mastery(p, 1, params) >= update_mastery(p, 0, params)


@settings(max_examples=300, deadline=None)
@given(
    p=st.floats(min_value=0.01, max_value=0.99),
    t=learn,
    s=small,
    g=small,
    f=forget,
)
def test_a_correct_answer_raises_mastery_strictly_away_from_the_clamps(
    p: float, t: float, s: float, g: float, f: float
) -> None:
    assume(t + f < 0.99)
    params = BKTParams(0.5, t, s, g, f)
    assert update_mastery(p, 1, params) > update_mastery(p, 0, params)


@settings(max_examples=200, deadline=None)
@given(p=probability, t=st.floats(min_value=0.05, max_value=0.9), s=small, g=small)
def test_mastery_converges_to_one_under_correct_answers(
    p: float, t: float, s: float, g: float
) -> None:
    params = BKTParams(0.5, t, s, g)
    history = [clamp_probability(p)]
    for _ in range(200):
        history.append(update_mastery(history[-1], 1, params))
    # Non-decreasing at every step (Bayes factor (1 - s) / g > 1, then learning) ...
    assert all(b >= a for a, b in itertools.pairwise(history))
    # ... and at least as fast as learning alone: 1 - p_n <= (1 - t)^n.
    assert 1.0 - history[-1] <= max((1.0 - t) ** 200, 2 * PROB_EPS)
    assert history[-1] > 0.999
