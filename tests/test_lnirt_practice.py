"""LNIRT's success gain (``LNIRT._fit_success_gain``): persons who learn while they practise
get a gain in ability per correct answer, persons who do not get none; the gain keeps the
predictions one step ahead and monotone in the answers, and survives save and load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from smartstudy.data.simulate import simulate_lnirt
from smartstudy.eval.metrics import log_loss
from smartstudy.models.lnirt import LNIRT
from tests.test_lnirt_floor import (
    assert_answers_never_move_their_item_against_them,
    assert_learned_number_persists,
    assert_one_step_ahead_and_like_updates,
    fit_with_and_without,
)


def _with_practice(n_persons: int, seed: int, gain: float = 0.06) -> pd.DataFrame:
    """LNIRT data whose persons gain ``gain`` ability with every task they solve: the answer
    at each step is drawn from ``Phi(a (theta + gain * solved so far - b))``."""
    df, truth = simulate_lnirt(n_persons, 30, rho=-0.4, seed=seed)
    df = df.sort_values(["user_id", "order"]).reset_index(drop=True)
    person = pd.Index(truth["user_ids"]).get_indexer(df["user_id"])
    item = df["item_id"].str[1:].astype(int).to_numpy()
    rng = np.random.default_rng(seed + 500)
    correct = np.empty(len(df))
    solved, last = 0, -1
    for k in range(len(df)):
        if person[k] != last:
            solved, last = 0, person[k]
        theta = truth["theta"][person[k]] + gain * solved
        correct[k] = float(
            rng.random() < norm.cdf(truth["a"][item[k]] * (theta - truth["b"][item[k]]))
        )
        solved += int(correct[k])
    return df.assign(correct=correct)


@pytest.fixture(scope="module")
def practice() -> tuple[LNIRT, LNIRT, pd.DataFrame]:
    """Models with and without the gain fitted on 600 learning persons; 200 more are new."""
    return fit_with_and_without(_with_practice(800, seed=6), learn_success_gain=False)


def test_a_gain_is_learned_and_predicts_learners_better(practice) -> None:
    learning, static, test = practice
    assert 0.01 <= learning.success_gain_ <= 0.04
    assert static.success_gain_ == 0.0
    y = test["correct"]
    p_learning = learning.predict(test)["p_correct"]
    p_static = static.predict(test)["p_correct"]
    assert log_loss(y, p_learning) < log_loss(y, p_static)
    # A static ability predicts the later answers of learners too low; the gain less so.
    late = test["order"] >= 20
    assert abs(p_learning[late].mean() - y[late].mean()) < abs(
        p_static[late].mean() - y[late].mean()
    )


def test_persons_who_do_not_learn_get_no_gain() -> None:
    df, _ = simulate_lnirt(600, 30, rho=-0.4, seed=2)
    assert LNIRT(learn_factors=False).fit(df).success_gain_ == 0.0


def test_the_gain_keeps_predictions_one_step_ahead_and_monotone(practice) -> None:
    model, _, test = practice
    assert model.success_gain_ > 0.0
    assert_one_step_ahead_and_like_updates(model, test)
    # A large fixed gain: a correct answer still never lowers its item's next prediction,
    # and a wrong one (which gains nothing) never raises it.
    big = LNIRT.from_bytes(model.to_bytes())
    big.success_gain_ = 0.5
    assert_answers_never_move_their_item_against_them(
        big, [f"probe-{k}" for k in range(20)], 300, seed=7
    )


def test_the_gain_survives_save_and_load_and_old_artifacts_have_none(practice) -> None:
    model, _, test = practice
    assert_learned_number_persists(model, test, "success_gain_", 1.5)


def test_a_fixed_gain_is_checked_and_kept() -> None:
    df = _with_practice(60, seed=4)
    model = LNIRT(success_gain=0.03, learn_success_gain=False).fit(df)
    assert model.success_gain_ == 0.03
    with pytest.raises(ValueError, match="success_gain"):
        LNIRT(success_gain=-0.1).fit(df)
