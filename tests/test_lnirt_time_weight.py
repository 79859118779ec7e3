"""How far a response time moves LNIRT's ability (``time_weight_``, ``_ability_from_time``):
learned where times tell about ability and left at 0 where they do not; never against the
answer for the answered item, whatever the time; kept through save and load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from smartstudy.data.simulate import simulate_lnirt
from smartstudy.eval.metrics import log_loss
from smartstudy.models.lnirt import LNIRT
from tests.test_lnirt_floor import (
    assert_answers_never_move_their_item_against_them,
    assert_learned_number_persists,
)


@pytest.fixture(scope="module")
def correlated() -> tuple[LNIRT, LNIRT, pd.DataFrame]:
    """LNIRT data where ability and speed correlate strongly (rho 0.7): models that learn the
    weight and that keep it at 0, fitted on 500 persons; 200 more are new to both."""
    df, _ = simulate_lnirt(700, 20, rho=0.7, seed=4)
    users = df["user_id"].unique()
    train = df[df["user_id"].isin(users[:500])]
    test = df[df["user_id"].isin(users[500:])].assign(user_id=lambda d: "new-" + d["user_id"])
    return LNIRT().fit(train), LNIRT(learn_time_weight=False).fit(train), test


def test_times_that_tell_about_ability_get_a_weight_and_predict_better(correlated) -> None:
    learned, speed_only, test = correlated
    assert learned.time_weight_ > 0.0
    assert speed_only.time_weight_ == 0.0
    y = test["correct"]
    better = log_loss(y, learned.predict(test)["p_correct"])
    assert better < log_loss(y, speed_only.predict(test)["p_correct"]) - 0.002


def test_times_unrelated_to_ability_get_no_weight() -> None:
    df, _ = simulate_lnirt(500, 20, rho=0.0, seed=5)
    rng = np.random.default_rng(5)
    # Times drawn apart from everything a person does: they say nothing about ability.
    shuffled = df.assign(rt_seconds=rng.permutation(df["rt_seconds"].to_numpy()))
    assert LNIRT(learn_factors=False).fit(shuffled).time_weight_ == 0.0


def test_an_answer_never_moves_its_own_item_against_it_whatever_the_time(correlated) -> None:
    model = LNIRT.from_bytes(correlated[0].to_bytes())
    users = [*list(model.user_index_)[:10], *(f"probe-{k}" for k in range(10))]

    def seconds(rng: np.random.Generator) -> float:
        return float(np.exp(rng.uniform(0.0, 8.0)))  # 1 s to about 50 minutes

    assert_answers_never_move_their_item_against_them(model, users, 400, seed=9, seconds=seconds)


def test_the_weight_survives_save_and_load_and_old_artifacts_have_none(correlated) -> None:
    model, _, test = correlated
    assert_learned_number_persists(model, test, "time_weight_", 1.5)


def test_a_fixed_weight_is_checked_and_kept() -> None:
    df, _ = simulate_lnirt(60, 10, rho=0.5, seed=6)
    fitted = LNIRT(time_weight=0.5, learn_time_weight=False, learn_factors=False).fit(df)
    assert fitted.time_weight_ == 0.5
    with pytest.raises(ValueError, match="time_weight"):
        LNIRT(time_weight=2.0).fit(df)
