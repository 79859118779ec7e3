"""LNIRT's guessing floor (module docstring of ``models.lnirt.model``): learned where weak
persons still answer right by luck, left at 0 where they do not; it keeps a new person's
population rate, moves the person's own record less far down, stays one step ahead and monotone
in the answers, and survives save and load."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from smartstudy.data.simulate import simulate_lnirt
from smartstudy.eval.metrics import log_loss
from smartstudy.models.base import ArtifactError
from smartstudy.models.lnirt import LNIRT
from smartstudy.models.lnirt.model import accuracy_update


def _with_guessing(n_persons: int, seed: int, floor: float = 0.25) -> pd.DataFrame:
    """LNIRT data whose answers are right with chance ``floor + (1 - floor) Phi(a (theta -
    b))``: four-option items that a weak person still solves by luck."""
    df, truth = simulate_lnirt(n_persons, 30, rho=-0.4, seed=seed)
    person = pd.Index(truth["user_ids"]).get_indexer(df["user_id"])
    item = df["item_id"].str[1:].astype(int).to_numpy()
    chance = floor + (1.0 - floor) * norm.cdf(
        truth["a"][item] * (truth["theta"][person] - truth["b"][item])
    )
    rng = np.random.default_rng(seed + 300)
    return df.assign(correct=(rng.random(len(df)) < chance).astype(float))


def fit_with_and_without(
    df: pd.DataFrame, common: dict[str, object] | None = None, **without: object
) -> tuple[LNIRT, LNIRT, pd.DataFrame]:
    """LNIRT (with the settings ``common``) fitted on the first 600 persons of ``df`` as it
    is and with ``without`` (the learned number switched off), and the other persons' rows
    as new persons."""
    users = df["user_id"].unique()
    train = df[df["user_id"].isin(users[:600])]
    test = df[df["user_id"].isin(users[600:])].assign(user_id=lambda d: "new-" + d["user_id"])
    common = common or {}
    return LNIRT(**common).fit(train), LNIRT(**common, **without).fit(train), test


@pytest.fixture(scope="module")
def guessing() -> tuple[LNIRT, LNIRT, pd.DataFrame]:
    """Models with and without the floor fitted on 600 persons; 200 more are new to both."""
    return fit_with_and_without(_with_guessing(800, seed=2), learn_guess_floor=False)


def test_a_floor_is_learned_and_predicts_new_persons_better(guessing) -> None:
    floored, plain, test = guessing
    assert 0.05 <= floored.guess_floor_ <= 0.3
    assert plain.guess_floor_ == 0.0
    # The gain is small: the probit's fitted slopes already absorb part of the guessing (on
    # MaRs-IB the floor takes LNIRT's log loss from 0.5797 to 0.5789, README).
    y = test["correct"]
    better = log_loss(y, floored.predict(test)["p_correct"])
    assert better < log_loss(y, plain.predict(test)["p_correct"])


def test_data_without_guessing_get_no_floor() -> None:
    df, _ = simulate_lnirt(600, 30, rho=-0.4, seed=2)
    assert LNIRT(learn_factors=False).fit(df).guess_floor_ == 0.0


def test_few_persons_learn_no_floor() -> None:
    df = _with_guessing(30, seed=3)
    assert LNIRT(learn_factors=False).fit(df).guess_floor_ == 0.0


def test_the_floor_keeps_the_population_rate_and_holds_up_a_weak_record(guessing) -> None:
    floored, _, _ = guessing
    same = LNIRT.from_bytes(floored.to_bytes())
    same.guess_floor_, same._items_cache = 0.0, None
    for item in (*floored.item_ids_[:10], "unknown-item"):
        new = floored.predict_one("nobody", item)["p_correct"]
        assert new == pytest.approx(same.predict_one("nobody", item)["p_correct"], abs=1e-9)
    # Twenty wrong answers: the plain probit drives the chance of a hard item towards 0, the
    # floor keeps it at or above its floor.
    hard = floored.item_ids_[int(np.argmax(floored.b_))]
    for model in (floored, same):
        for k in range(20):
            item = floored.item_ids_[k % len(floored.item_ids_)]
            model.update({"user_id": "weak", "item_id": item, "correct": 0, "rt_seconds": 60.0})
    low, lower = floored.predict_one("weak", hard)["p_correct"], same.predict_one("weak", hard)
    c = floored._item_table()[floored.item_index_[hard], 6]
    assert c > 0.0
    assert low >= c
    assert low > lower["p_correct"] + 0.02


def test_floored_predictions_are_one_step_ahead_monotone_and_match_updates(guessing) -> None:
    model, _, test = guessing
    online = assert_one_step_ahead_and_like_updates(model, test)
    assert_answers_never_move_their_item_against_them(
        online, [f"probe-{k}" for k in range(20)], 300, seed=5
    )


def assert_one_step_ahead_and_like_updates(model: LNIRT, test: pd.DataFrame) -> LNIRT:
    """Three new persons of ``test``: a row's own answer does not change its prediction, and
    ``predict`` equals ``predict_one`` then ``update`` row by row; returns the updated copy."""
    rows = test[test["user_id"].isin(test["user_id"].unique()[:3])]
    pred = model.predict(rows)
    flipped = rows.copy()
    target = rows.index[4]
    flipped.loc[target, "correct"] = 1.0 - flipped.loc[target, "correct"]
    pd.testing.assert_series_equal(pred.loc[target], model.predict(flipped).loc[target])
    online = LNIRT.from_bytes(model.to_bytes())
    for _, row in rows.sort_values(["user_id", "order"]).iterrows():
        one = online.predict_one(row["user_id"], row["item_id"])
        assert pred.loc[row.name, "p_correct"] == pytest.approx(one["p_correct"], rel=1e-10)
        online.update(row.to_dict())
    return online


def test_a_correct_answer_above_a_floor_takes_the_mixtures_moments() -> None:
    # P(correct) = c + (1 - c) Phi(a (theta - b)): the step is the exact mean and covariance of
    # prior x likelihood wherever that does not widen the prior (checked by brute force).
    mean = np.array([[0.3, -0.2]])
    cov = np.array([[[0.8, -0.15], [-0.15, 0.09]]])
    a, b, c = np.array([1.7]), np.array([-0.4]), 0.2
    new_mean, new_cov = accuracy_update(mean, cov, np.array([1.0]), a, b, floor=c)
    draws = np.random.default_rng(0).multivariate_normal(mean[0], cov[0], size=400_000)
    w = c + (1.0 - c) * norm.cdf(a[0] * (draws[:, 0] - b[0]))
    np.testing.assert_allclose(new_mean[0], np.average(draws, axis=0, weights=w), atol=5e-3)
    np.testing.assert_allclose(new_cov[0], np.cov(draws.T, aweights=w), atol=5e-3)
    assert new_cov[0, 0, 0] <= cov[0, 0, 0]
    # A wrong answer has the probit's likelihood up to a constant: the floor changes nothing.
    wrong = accuracy_update(mean, cov, np.array([0.0]), a, b, floor=c)
    plain = accuracy_update(mean, cov, np.array([0.0]), a, b)
    np.testing.assert_array_equal(wrong[0], plain[0])
    np.testing.assert_array_equal(wrong[1], plain[1])


def assert_answers_never_move_their_item_against_them(
    model: LNIRT,
    users: list[str],
    probes: int,
    seed: int,
    seconds: Callable[[np.random.Generator], float] = lambda rng: 30.0,
) -> None:
    """``probes`` random answers (users in turn, random items and outcomes, times from
    ``seconds``) update ``model``; none moves the next prediction of its own item against it."""
    rng = np.random.default_rng(seed)
    for k in range(probes):
        user = users[k % len(users)]
        item = model.item_ids_[rng.integers(len(model.item_ids_))]
        before = model.predict_one(user, item)["p_correct"]
        y = int(rng.integers(2))
        t = seconds(rng)
        model.update({"user_id": user, "item_id": item, "correct": y, "rt_seconds": t})
        after = model.predict_one(user, item)["p_correct"]
        assert after >= before if y else after <= before, (k, y, t, before, after)


def assert_learned_number_persists(
    model: LNIRT, test: pd.DataFrame, key: str, invalid: float
) -> None:
    """``model``'s learned number ``key`` survives save and load (and so do its
    predictions of ``test``), an artifact written before it existed loads with 0, and an
    artifact holding ``invalid`` is refused."""
    loaded = LNIRT.from_bytes(model.to_bytes())
    assert getattr(loaded, key) == getattr(model, key)
    pd.testing.assert_frame_equal(loaded.predict(test), model.predict(test))
    state = model._get_state()
    state.pop(key)
    old = LNIRT(**model.get_params())
    old._set_state(state)
    assert getattr(old, key) == 0.0
    bad = LNIRT.from_bytes(model.to_bytes())
    setattr(bad, key, invalid)
    with pytest.raises(ArtifactError, match=key):
        LNIRT.from_bytes(bad.to_bytes())


def test_the_floor_survives_save_and_load_and_old_artifacts_have_none(guessing) -> None:
    model, _, test = guessing
    assert_learned_number_persists(model, test, "guess_floor_", 0.7)


def test_a_fixed_floor_is_checked_and_kept() -> None:
    df = _with_guessing(60, seed=4)
    assert LNIRT(guess_floor=0.2, learn_guess_floor=False).fit(df).guess_floor_ == 0.2
    with pytest.raises(ValueError, match="guess_floor"):
        LNIRT(guess_floor=0.5).fit(df)
