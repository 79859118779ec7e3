"""Metrics against values worked out by hand, plus input validation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from smartstudy.eval import metrics as metrics_module
from smartstudy.eval.metrics import (
    accuracy,
    auc,
    calibrated_ece,
    correctness_metrics,
    expected_calibration_error,
    interval_coverage,
    log_loss,
    mae_seconds,
    rmse,
    rmse_log_time,
    time_metrics,
)


# -- AUC -------------------------------------------------------------------------------
def test_auc_with_a_tie_counts_half():
    # Positive/negative pairs: (0.4, 0.1) won, (0.4, 0.4) tie = 1/2, (0.8, 0.1) and
    # (0.8, 0.4) won: 3.5 of 4 pairs.
    assert auc([0, 0, 1, 1], [0.1, 0.4, 0.4, 0.8]) == pytest.approx(0.875)


def test_auc_extremes_and_all_ties():
    assert auc([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8]) == pytest.approx(1.0)
    assert auc([1, 0, 1, 0], [0.1, 0.9, 0.2, 0.8]) == pytest.approx(0.0)
    assert auc([0, 1, 1, 0, 1], [0.3] * 5) == pytest.approx(0.5)


def test_auc_is_nan_with_one_class():
    assert math.isnan(auc([1, 1, 1], [0.2, 0.5, 0.9]))
    assert math.isnan(auc([0, 0], [0.2, 0.5]))


def test_auc_matches_pair_counting_on_random_data_with_ties():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    p = np.round(rng.random(200), 1)  # one decimal: many ties
    pos, neg = p[y == 1], p[y == 0]
    diff = pos[:, None] - neg[None, :]
    expected = (np.sum(diff > 0) + 0.5 * np.sum(diff == 0)) / diff.size
    assert auc(y, p) == pytest.approx(expected)
    assert auc(pd.Series(y), pd.Series(p)) == pytest.approx(expected)


# -- accuracy, log loss, RMSE ----------------------------------------------------------
def test_accuracy_threshold_is_inclusive():
    y = [1, 0, 1, 0]
    p = [0.5, 0.49, 0.2, 0.9]
    assert accuracy(y, p) == pytest.approx(0.5)  # rows 0 and 1 right
    assert accuracy(y, p, threshold=0.15) == pytest.approx(0.5)  # rows 0 and 2 right
    with pytest.raises(ValueError, match="threshold"):
        accuracy(y, p, threshold=1.5)


def test_log_loss_by_hand_and_clipping():
    expected = -(math.log(0.8) + math.log(0.6)) / 2
    assert log_loss([1, 0], [0.8, 0.4]) == pytest.approx(expected)
    # A confident miss is clipped to eps, not infinite.
    assert log_loss([1], [0.0]) == pytest.approx(-math.log(1e-15))
    assert log_loss([1], [0.0], eps=1e-3) == pytest.approx(-math.log(1e-3))


def test_rmse_by_hand():
    assert rmse([1, 0], [0.8, 0.4]) == pytest.approx(math.sqrt((0.04 + 0.16) / 2))


# -- ECE -------------------------------------------------------------------------------
def test_ece_two_bins_by_hand():
    # Bin [0, 0.5): p = 0.2, 0.2 and y = 0, 1 -> |0.5 - 0.2| = 0.3, weight 2/4.
    # Bin [0.5, 1]: p = 0.8, 0.8 and y = 1, 1 -> |1.0 - 0.8| = 0.2, weight 2/4.
    assert expected_calibration_error([0, 1, 1, 1], [0.2, 0.2, 0.8, 0.8], n_bins=2) == (
        pytest.approx(0.25)
    )


def test_ece_unequal_bins_are_weighted_by_size():
    # Bin 0: three rows p=0.25, one correct -> |1/3 - 0.25| * 3/4; bin 1: one row p=1, y=1.
    value = expected_calibration_error([0, 0, 1, 1], [0.25, 0.25, 0.25, 1.0], n_bins=2)
    assert value == pytest.approx(abs(1 / 3 - 0.25) * 3 / 4)


def test_ece_zero_when_calibrated_and_validates_bins():
    assert expected_calibration_error([0, 1, 0, 1], [0.5] * 4) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="n_bins"):
        expected_calibration_error([0, 1], [0.5, 0.5], n_bins=0)


def test_calibrated_ece_is_the_sampling_noise_of_a_calibrated_model():
    # Certain predictions draw their own outcomes: no noise at all.
    assert calibrated_ece([0.0, 1.0, 1.0, 0.0]) == (0.0, 0.0)
    # One bin at p = 0.5: the ECE is |mean(y) - 0.5|, whose mean is sqrt(0.25 / n) sqrt(2 / pi).
    for n in (100, 2500):
        mean, p95 = calibrated_ece(np.full(n, 0.5), draws=4000)
        assert mean == pytest.approx(0.5 * math.sqrt(2 / (math.pi * n)), rel=0.08)
        assert p95 > mean
    # Spread predictions: the noise shrinks with the number of tasks, about as 1/sqrt(n).
    rng = np.random.default_rng(1)
    small, _ = calibrated_ece(rng.uniform(0.1, 0.9, 400))
    large, _ = calibrated_ece(rng.uniform(0.1, 0.9, 10_000))
    assert small / large == pytest.approx(5.0, rel=0.25)
    # The same seed gives the same answer; a miscalibrated model's ECE is far above it.
    p = rng.uniform(0.1, 0.9, 2000)
    assert calibrated_ece(p, seed=3) == calibrated_ece(p, seed=3)
    y = (rng.uniform(size=2000) < np.clip(p + 0.1, 0, 1)).astype(float)
    assert expected_calibration_error(y, p) > calibrated_ece(p)[1]


@pytest.mark.parametrize("block", [1, 7 * 300, 1 << 20])
def test_calibrated_ece_in_blocks_is_one_draw_at_a_time(monkeypatch, block: int):
    """Draws taken in blocks (one matrix product each) give exactly what one outcome vector
    at a time gave: the same uniform stream, the same sums."""
    p = np.random.default_rng(5).uniform(0.0, 1.0, 300)
    rng = np.random.default_rng(2)
    bins = np.minimum((p * 10).astype(int), 9)
    sum_p = np.bincount(bins, weights=p, minlength=10)
    values = []
    for _ in range(50):
        outcomes = (rng.uniform(size=len(p)) < p).astype(float)
        values.append(np.abs(np.bincount(bins, weights=outcomes, minlength=10) - sum_p).sum())
    expected = (float(np.mean(values) / len(p)), float(np.quantile(values, 0.95) / len(p)))
    monkeypatch.setattr(metrics_module, "_OUTCOMES_PER_BLOCK", block)
    assert calibrated_ece(p, draws=50, seed=2) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("p", "kwargs", "message"),
    [([], {}, "non-empty"), ([0.5, 1.2], {}, "in \\[0, 1\\]"), ([0.5], {"draws": 0}, "draws")],
)
def test_calibrated_ece_rejects_bad_input(p, kwargs, message):
    with pytest.raises(ValueError, match=message):
        calibrated_ece(p, **kwargs)


# -- time metrics ----------------------------------------------------------------------
def test_time_errors_by_hand_ignore_missing_actuals():
    actual = [10.0, 20.0, np.nan]
    median = [12.0, 15.0, 100.0]
    assert mae_seconds(actual, median) == pytest.approx(3.5)
    expected = math.sqrt((math.log(10 / 12) ** 2 + math.log(20 / 15) ** 2) / 2)
    assert rmse_log_time(actual, median) == pytest.approx(expected)


def test_interval_coverage_includes_the_ends():
    actual = [10.0, 20.0, 30.0, np.nan]
    low = [5.0, 21.0, 10.0, 1.0]
    high = [15.0, 25.0, 30.0, 2.0]
    assert interval_coverage(actual, low, high) == pytest.approx(2 / 3)


def test_time_metrics_are_nan_without_any_actual_time():
    actual = [np.nan, np.nan]
    assert math.isnan(mae_seconds(actual, [1.0, 2.0]))
    assert math.isnan(rmse_log_time(actual, [1.0, 2.0]))
    assert math.isnan(interval_coverage(actual, [1.0, 1.0], [2.0, 2.0]))


def test_predictions_may_be_missing_where_the_actual_time_is():
    assert mae_seconds([np.nan, 4.0], [np.nan, 5.0]) == pytest.approx(1.0)


# -- bundles ---------------------------------------------------------------------------
def test_correctness_metrics_bundle():
    out = correctness_metrics([0, 0, 1, 1], [0.1, 0.4, 0.4, 0.8])
    assert set(out) == {"auc", "accuracy", "log_loss", "rmse", "ece", "n"}
    assert out["auc"] == pytest.approx(0.875)
    assert out["n"] == 4


def test_time_metrics_bundle():
    out = time_metrics(
        [10.0, 20.0, np.nan], [12.0, 15.0, 9.0], [8.0, 16.0, 5.0], [14.0, 18.0, 20.0]
    )
    assert out["mae_seconds"] == pytest.approx(3.5)
    assert out["coverage80"] == pytest.approx(0.5)
    assert out["n"] == 2


# -- validation ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("y", "p", "message"),
    [
        ([0, 1], [0.5], r"same length: `y` has 2, `p` has 1"),
        ([0, 1], [0.5, 1.2], r"\[0, 1\], got 1\.2 at position 1"),
        ([0, 1], [0.5, -0.1], r"\[0, 1\]"),
        ([0, 1], [np.nan, 0.5], r"finite probabilities, got nan at position 0"),
        ([0, 1], [np.inf, 0.5], r"finite"),
        ([0, 2], [0.5, 0.5], r"0/1 outcomes, got 2\.0 at position 1"),
        ([0, np.nan], [0.5, 0.5], r"0/1 outcomes"),
        ([], [], r"empty"),
        ([[0, 1]], [[0.5, 0.5]], r"one-dimensional"),
        (["a", "b"], [0.5, 0.5], r"must hold numbers"),
    ],
)
def test_correctness_inputs_are_validated(y, p, message):
    for metric in (auc, accuracy, log_loss, rmse, expected_calibration_error):
        with pytest.raises(ValueError, match=message):
            metric(y, p)


def test_time_inputs_are_validated():
    with pytest.raises(ValueError, match=r"same length: `actual_s` has 2, `median_s` has 1"):
        mae_seconds([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match=r"`actual_s` must hold positive seconds"):
        mae_seconds([0.0, 2.0], [1.0, 1.0])
    with pytest.raises(ValueError, match=r"`median_s` must hold positive finite seconds"):
        rmse_log_time([1.0, 2.0], [1.0, np.nan])
    with pytest.raises(ValueError, match=r"`median_s` must hold positive finite seconds"):
        rmse_log_time([1.0, 2.0], [1.0, -3.0])
    with pytest.raises(ValueError, match=r"`low_s` must not exceed `high_s`: 6\.0 > 4\.0"):
        interval_coverage([5.0], [6.0], [4.0])
    # Positions refer to the caller's arrays, not to the rows left after dropping NaN times.
    with pytest.raises(ValueError, match=r"got 0\.0 at position 2"):
        mae_seconds([np.nan, 1.0, 2.0], [np.nan, 1.0, 0.0])
