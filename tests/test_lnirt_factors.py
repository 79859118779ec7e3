"""LNIRT's person-by-item factors (``models.lnirt.factors``): learned where persons are fast
on some items and slow on others, or able on some items and not on others; left out where the
data hold no such pattern; one step ahead, monotone in the answers, and kept consistent
between ``predict``, ``predict_one``/``update`` and a saved artifact."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from smartstudy.data.simulate import simulate_lnirt
from smartstudy.eval.metrics import auc, interval_coverage, log_loss, rmse_log_time
from smartstudy.models.base import ArtifactError
from smartstudy.models.lnirt import LNIRT, factors
from tests.learn_many import refused_alike
from tests.test_lnirt_floor import assert_answers_never_move_their_item_against_them


def _with_factors(n_persons: int, seed: int, time_rank: int = 2) -> pd.DataFrame:
    """LNIRT data whose log times also carry ``time_rank`` person-by-item factors (each
    person's own pattern of fast and slow items, half as large as the residual noise) and
    whose answers a second ability that only half of the items measure."""
    df, truth = simulate_lnirt(n_persons, 40, rho=-0.4, seed=seed)
    rng = np.random.default_rng(seed + 100)
    loadings = rng.normal(0.0, 0.3, (40, time_rank))
    eta = rng.normal(0.0, 1.0, (n_persons, time_rank))
    person = pd.Index(truth["user_ids"]).get_indexer(df["user_id"])
    item = df["item_id"].str[1:].astype(int).to_numpy()
    shift = np.einsum("nk,nk->n", eta[person], loadings[item])
    second = np.where(np.arange(40) % 2 == 0, 1.0, -1.0)[item]
    zeta = np.random.default_rng(seed + 200).normal(0.0, 1.0, n_persons)[person]
    arg = truth["a"][item] * (truth["theta"][person] - truth["b"][item]) + second * zeta
    correct = (rng.random(len(df)) < norm.cdf(arg)).astype(float)
    return df.assign(rt_seconds=df["rt_seconds"] * np.exp(shift), correct=correct)


@pytest.fixture(scope="module")
def factored() -> tuple[LNIRT, LNIRT, pd.DataFrame]:
    """Models with and without factors fitted on 600 persons; 150 more persons (of the same
    items and loadings) are new to both."""
    df = _with_factors(750, seed=1)
    users = df["user_id"].unique()
    train = df[df["user_id"].isin(users[:600])]
    test = df[df["user_id"].isin(users[600:])].assign(user_id=lambda d: "new-" + d["user_id"])
    return LNIRT().fit(train), LNIRT(learn_factors=False).fit(train), test


def test_factors_are_learned_and_predict_new_persons_times_better(factored) -> None:
    with_factors, without, test = factored
    assert with_factors.time_loadings_.shape[1] >= 1
    assert without.time_loadings_.shape == (len(without.item_ids_), 0)
    pred, plain = with_factors.predict(test), without.predict(test)
    better = rmse_log_time(test["rt_seconds"], pred["time_median_s"])
    worse = rmse_log_time(test["rt_seconds"], plain["time_median_s"])
    assert better < worse - 0.01
    coverage = interval_coverage(test["rt_seconds"], pred["time_p10_s"], pred["time_p90_s"])
    assert 0.75 <= coverage <= 0.86
    assert with_factors.response_loadings_.shape[1] >= 1
    y = test["correct"]
    assert auc(y, pred["p_correct"]) > auc(y, plain["p_correct"]) + 0.01
    assert log_loss(y, pred["p_correct"]) < log_loss(y, plain["p_correct"]) - 0.01


def test_a_correct_answer_never_lowers_the_next_prediction_of_its_item(factored) -> None:
    model = LNIRT.from_bytes(factored[0].to_bytes())
    assert_answers_never_move_their_item_against_them(
        model, [f"probe-{k}" for k in range(20)], 200, seed=5
    )


def test_data_without_such_patterns_get_no_factors() -> None:
    df, _ = simulate_lnirt(600, 40, rho=-0.4, seed=3)
    model = LNIRT().fit(df)
    assert model.time_loadings_.shape == model.response_loadings_.shape == (40, 0)


def test_too_few_items_get_no_factors() -> None:
    df = _with_factors(600, seed=4)
    items = np.sort(df["item_id"].unique())[: factors.MIN_ITEMS - 1]
    few = df[df["item_id"].isin(items)]
    model = LNIRT().fit(few)
    assert model.time_loadings_.shape[1] == model.response_loadings_.shape[1] == 0


def test_factor_predictions_are_one_step_ahead_and_match_updates(factored) -> None:
    model, _, test = factored
    rows = test[test["user_id"].isin(test["user_id"].unique()[:2])]
    pred = model.predict(rows)
    # Changing a row's own outcome changes no prediction of that row, and does change the next.
    ordered = rows.sort_values("order")
    user_rows = ordered.index[ordered["user_id"] == rows["user_id"].iloc[0]]
    target, later = user_rows[5], user_rows[6]
    slowed = rows.copy()
    slowed.loc[target, "rt_seconds"] *= 8.0
    slowed.loc[target, "correct"] = 1.0 - slowed.loc[target, "correct"]
    pred2 = model.predict(slowed)
    pd.testing.assert_series_equal(pred.loc[target], pred2.loc[target])
    assert pred2.loc[later, "time_median_s"] != pred.loc[later, "time_median_s"]
    assert pred2.loc[later, "p_correct"] != pred.loc[later, "p_correct"]
    # The online path gives the same numbers.
    online = LNIRT.from_bytes(model.to_bytes())
    for _, row in rows.sort_values(["user_id", "order"]).iterrows():
        one = online.predict_one(row["user_id"], row["item_id"])
        for col, value in one.items():
            assert pred.loc[row.name, col] == pytest.approx(value, rel=1e-10)
        online.update(row.to_dict())


def test_training_persons_keep_their_factors_through_save_and_load(factored, tmp_path) -> None:
    model, _, test = factored
    known = next(iter(model.user_index_))
    model = LNIRT.from_bytes(model.to_bytes())
    model.update({"user_id": "fresh", "item_id": "i3", "correct": 1, "rt_seconds": 200.0})
    path = tmp_path / "lnirt.zip"
    model.save(path)
    loaded = LNIRT.load(path)
    np.testing.assert_array_equal(loaded.time_loadings_, model.time_loadings_)
    np.testing.assert_array_equal(loaded.response_loadings_, model.response_loadings_)
    for user in (known, "fresh", "nobody"):
        for item in ("i0", "i7", "unknown-item"):
            assert loaded.predict_one(user, item) == model.predict_one(user, item)
    pd.testing.assert_frame_equal(loaded.predict(test), model.predict(test))


def test_an_artifact_without_factors_still_loads(factored) -> None:
    model, _, _ = factored
    state = model._get_state()
    for part in ("time", "response"):
        for key in (f"{part}_loadings_", f"{part}_factor_cov_"):
            state.pop(key)
        for key in (f"person_{part}_factor_mean_", f"person_{part}_factor_cov_"):
            state.pop(key)
    old = LNIRT(**model.get_params())
    old._set_state(state)
    old.fitted_ = True
    assert old.time_loadings_.shape[1] == 0
    assert np.isfinite(list(old.predict_one("p1", "i1").values())).all()


def test_a_tampered_factor_state_is_refused(factored) -> None:
    model, _, _ = factored
    model = LNIRT.from_bytes(model.to_bytes())
    model._parts["time"].loadings[:] = np.nan
    with pytest.raises(ArtifactError, match="time factors"):
        LNIRT.from_bytes(model.to_bytes())


def _states(model: LNIRT) -> list[np.ndarray]:
    n = len(model._user_ids)
    parts = [model._parts[name] for name in ("time", "response")]
    return [
        model._pmean[:n],
        model._pcov[:n],
        model._pn[:n],
        *(array[:n] for part in parts for array in (part.mean, part.cov)),
    ]


def test_learn_many_is_update_row_by_row(factored) -> None:
    """``learn_many`` (all persons at once) leaves the state ``update`` row by row leaves:
    known persons and new ones (added in the same order), answers with and without times."""
    model, _, test = factored
    known = test.assign(user_id=test["user_id"].str.removeprefix("new-"))
    rows = pd.concat([test.iloc[:3000], known.iloc[:500]]).sample(frac=1.0, random_state=3)
    rows.loc[rows.index[::7], "rt_seconds"] = np.nan
    one_by_one, at_once = (LNIRT.from_bytes(model.to_bytes()) for _ in range(2))
    for row in rows.to_dict("records"):
        one_by_one.update(row)
    at_once.learn_many(rows)
    assert at_once._user_ids == one_by_one._user_ids
    for mine, theirs in zip(_states(at_once), _states(one_by_one), strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-14)


def test_learn_many_refuses_what_update_refuses_after_learning_the_rows_before(factored) -> None:
    model, _, test = factored
    rows = test.iloc[:40].copy()
    rows["correct"] = rows["correct"].astype(object)
    rows.iloc[25, rows.columns.get_loc("correct")] = 2
    at_once, one_by_one = refused_alike(model, rows, "correct")
    for mine, theirs in zip(_states(at_once), _states(one_by_one), strict=True):
        np.testing.assert_array_equal(mine, theirs)
