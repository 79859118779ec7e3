"""LNIRT's cross-fitted recalibration of its chances (``models/lnirt/calibration.py``)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from smartstudy.data.simulate import simulate_lnirt
from smartstudy.eval.metrics import log_loss
from smartstudy.models.base import ArtifactError
from smartstudy.models.lnirt import LNIRT, TopicLNIRT
from smartstudy.models.lnirt import model as lnirt_model
from smartstudy.models.lnirt.calibration import (
    CALIBRATION_MIN_USERS,
    IDENTITY,
    SLOPE_BOUNDS,
    apply_logit_map,
    apply_logit_map_one,
    fit_logit_map,
    for_whole_fit,
    is_calibration,
    user_halves,
)
from tests.artifacts import rewrite_meta


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# -- the map ----------------------------------------------------------------------------------
def test_the_map_recovers_a_known_miscalibration() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0.03, 0.97, 40_000)
    y = (rng.random(len(p)) < _sigmoid(0.3 + 0.6 * np.log(p / (1 - p)))).astype(float)
    c0, c1 = fit_logit_map(y, p)
    assert c0 == pytest.approx(0.3, abs=0.04)
    assert c1 == pytest.approx(0.6, abs=0.04)


def test_calibrated_chances_get_about_the_identity() -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(0.03, 0.97, 40_000)
    y = (rng.random(len(p)) < p).astype(float)
    c0, c1 = fit_logit_map(y, p)
    assert abs(c0) < 0.04 and abs(c1 - 1.0) < 0.04


def test_the_slope_stays_within_its_bounds_and_no_data_is_the_identity() -> None:
    rng = np.random.default_rng(2)
    p = rng.uniform(0.03, 0.97, 5_000)
    unrelated = (rng.random(len(p)) < 0.5).astype(float)
    assert fit_logit_map(unrelated, p)[1] == SLOPE_BOUNDS[0]
    assert fit_logit_map(np.zeros(0), np.zeros(0)) == IDENTITY


def test_the_whole_fit_takes_half_of_the_halves_correction() -> None:
    assert for_whole_fit((0.4, 0.6)) == pytest.approx((0.2, 0.8))
    assert for_whole_fit(IDENTITY) == IDENTITY


def test_applying_the_map_is_increasing_and_the_identity_changes_nothing() -> None:
    p = np.linspace(0.001, 0.999, 999)
    q = apply_logit_map(p, (0.2, 0.7))
    assert np.all(np.diff(q) > 0)
    assert apply_logit_map(p, IDENTITY) is p
    assert [apply_logit_map_one(float(v), (0.2, 0.7)) for v in p[::97]] == pytest.approx(q[::97])


def test_stored_maps_are_checked() -> None:
    assert is_calibration([0.1, 0.9]) and is_calibration(IDENTITY)
    for bad in ([0.1, 0.0], [0.1, 5.0], [math.nan, 1.0], [1.0], "ab", None):
        assert not is_calibration(bad)


def test_users_fall_into_halves_the_same_way_every_time() -> None:
    ids = [f"user-{k}" for k in range(2000)]
    halves = user_halves(ids)
    assert set(halves.tolist()) == {0, 1}
    assert 0.45 < halves.mean() < 0.55
    np.testing.assert_array_equal(halves, user_halves(ids))


# -- in LNIRT ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sparse_items() -> tuple[pd.DataFrame, pd.DataFrame, LNIRT, LNIRT]:
    """500 simulated persons answering 4% of 600 items (about 15 training answers an item):
    a correctly specified LNIRT whose items are estimated from few persons. 100 persons are
    held out."""
    df, _ = simulate_lnirt(500, 600, seed=3, p_administered=0.04)
    held = set(df["user_id"].unique()[:100])
    train, test = df[~df["user_id"].isin(held)], df[df["user_id"].isin(held)]
    return train, test, LNIRT().fit(train), LNIRT(learn_calibration=False).fit(train)


def test_a_fit_on_sparse_items_flattens_its_chances_and_predicts_new_persons_better(
    sparse_items,
) -> None:
    train, test, calibrated, plain = sparse_items
    assert train["user_id"].nunique() >= CALIBRATION_MIN_USERS
    _, c1 = calibrated.calibration_
    assert c1 < 0.95  # plug-in items from ~15 answers each make the probit over-confident
    assert plain.calibration_ == IDENTITY
    y = test["correct"].to_numpy(dtype=float)
    with_map = log_loss(y, calibrated.predict(test)["p_correct"].to_numpy())
    without = log_loss(y, plain.predict(test)["p_correct"].to_numpy())
    assert with_map < without - 0.002


def test_the_map_keeps_the_direction_guarantee_and_one_step_ahead_batches(sparse_items) -> None:
    _, test, model, _ = sparse_items
    assert model.calibration_ != IDENTITY
    item = model.item_ids_[0]
    for answer in (1, 0, 0, 1, 1, 0):
        before = model.predict_one("newcomer", item)["p_correct"]
        model.update(
            {"user_id": "newcomer", "item_id": item, "correct": answer, "rt_seconds": 50.0}
        )
        after = model.predict_one("newcomer", item)["p_correct"]
        assert after >= before if answer else after <= before
    # predict on a new person's rows equals predict_one then update, row by row.
    person = test[test["user_id"] == test["user_id"].iloc[0]].assign(user_id="someone-new")
    batch = model.predict(person)["p_correct"].to_numpy()
    loop = []
    for row in person.to_dict("records"):
        loop.append(model.predict_one(row["user_id"], row["item_id"])["p_correct"])
        model.update(row)
    np.testing.assert_allclose(batch, loop, rtol=1e-9)


def test_few_persons_get_no_map(sparse_items) -> None:
    train, _, _, _ = sparse_items
    few = train[train["user_id"].isin(train["user_id"].unique()[: CALIBRATION_MIN_USERS - 1])]
    model = LNIRT().fit(few)
    assert model.calibration_ == IDENTITY


def test_the_map_is_saved_old_artifacts_have_none_and_bad_ones_are_refused(
    sparse_items,
) -> None:
    _, test, model, _ = sparse_items
    blob = model.to_bytes()
    same = LNIRT.from_bytes(blob)
    assert same.calibration_ == pytest.approx(model.calibration_)
    rows = test.head(50)
    np.testing.assert_allclose(same.predict(rows), model.predict(rows))
    old = LNIRT.from_bytes(rewrite_meta(blob, lambda meta: meta["state"].pop("calibration_")))
    assert old.calibration_ == IDENTITY
    with pytest.raises(ArtifactError, match="calibration_"):
        LNIRT.from_bytes(
            rewrite_meta(blob, lambda meta: meta["state"].update(calibration_=[0, -1]))
        )


def test_a_warm_started_fit_reuses_the_map(sparse_items, monkeypatch) -> None:
    train, _, model, _ = sparse_items
    again = LNIRT()
    assert again.warm_start(model)

    def refuse(self, df):
        raise AssertionError("a warm-started fit must not cross-fit again")

    monkeypatch.setattr(lnirt_model.LNIRT, "_fit_calibration", refuse)
    again.fit(train)
    assert again.calibration_ == pytest.approx(model.calibration_)


def test_the_apps_topic_models_leave_calibration_to_the_service(sparse_items) -> None:
    train, _, _, _ = sparse_items
    topics = TopicLNIRT().fit(train.assign(skill_id="one topic"))
    (inner,) = topics.models_.values()
    assert inner.learn_calibration is False
    assert inner.calibration_ == IDENTITY
    asked = TopicLNIRT(lnirt_params={"learn_calibration": True}).fit(
        train.assign(skill_id="one topic")
    )
    assert next(iter(asked.models_.values())).learn_calibration is True
