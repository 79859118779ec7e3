"""Metrics for correctness probabilities and response-time predictions (NumPy/SciPy only).

Correctness: AUC, accuracy, log loss, RMSE and expected calibration error (ECE; Naeini,
Cooper & Hauskrecht 2015, "Obtaining well calibrated probabilities using Bayesian
binning", AAAI), the set reported in knowledge-tracing comparisons such as Gervet et al.
(2020), JEDM 12(3). Time: mean absolute error of the predicted median in seconds, RMSE on
the log scale (the scale of the lognormal time model of van der Linden 2007) and the
coverage of the predicted 80% interval. Time metrics ignore rows whose actual time is NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import binom, rankdata


def _as_1d(values: ArrayLike, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`{name}` must hold numbers: {exc}") from exc
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must be one-dimensional, got shape {arr.shape}")
    return arr


def _same_length(**arrays: np.ndarray) -> None:
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"`{k}` has {n}" for k, n in lengths.items())
        raise ValueError(f"inputs must have the same length: {listed}")


def _first_bad(arr: np.ndarray, bad: np.ndarray) -> str:
    pos = int(np.flatnonzero(bad)[0])
    return f"{arr[pos].item()!r} at position {pos}"


def _check_outcomes(y: ArrayLike, p: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate binary outcomes ``y`` and probabilities ``p``; return float arrays."""
    y_arr = _as_1d(y, "y")
    p_arr = _as_1d(p, "p")
    _same_length(y=y_arr, p=p_arr)
    if len(y_arr) == 0:
        raise ValueError("cannot compute a metric on empty inputs")
    bad = ~np.isin(y_arr, (0.0, 1.0))
    if bad.any():
        raise ValueError(f"`y` must hold 0/1 outcomes, got {_first_bad(y_arr, bad)}")
    bad = ~np.isfinite(p_arr)
    if bad.any():
        raise ValueError(f"`p` must be finite probabilities, got {_first_bad(p_arr, bad)}")
    bad = (p_arr < 0.0) | (p_arr > 1.0)
    if bad.any():
        raise ValueError(f"`p` must lie in [0, 1], got {_first_bad(p_arr, bad)}")
    return y_arr, p_arr


def auc(y: ArrayLike, p: ArrayLike) -> float:
    """Area under the ROC curve via the Mann-Whitney rank statistic (ties get average ranks).

    NaN when ``y`` holds only one class, because the curve is then undefined.
    """
    y_arr, p_arr = _check_outcomes(y, p)
    n_pos = int(y_arr.sum())
    n_neg = len(y_arr) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(p_arr, method="average")
    rank_sum = float(ranks[y_arr == 1.0].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def accuracy(y: ArrayLike, p: ArrayLike, threshold: float = 0.5) -> float:
    """Share of rows where ``p >= threshold`` agrees with the outcome."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"`threshold` must lie in [0, 1], got {threshold!r}")
    y_arr, p_arr = _check_outcomes(y, p)
    return float(np.mean((p_arr >= threshold) == (y_arr == 1.0)))


def log_loss(y: ArrayLike, p: ArrayLike, eps: float = 1e-15) -> float:
    """Mean binary cross-entropy; ``p`` is clipped to ``[eps, 1 - eps]`` so 0 and 1 stay finite."""
    if not 0.0 < eps < 0.5:
        raise ValueError(f"`eps` must lie in (0, 0.5), got {eps!r}")
    y_arr, p_arr = _check_outcomes(y, p)
    q = np.clip(p_arr, eps, 1.0 - eps)
    return float(-np.mean(y_arr * np.log(q) + (1.0 - y_arr) * np.log1p(-q)))


def rmse(y: ArrayLike, p: ArrayLike) -> float:
    """Root mean squared error between outcomes and probabilities (the Brier score's root)."""
    y_arr, p_arr = _check_outcomes(y, p)
    return float(np.sqrt(np.mean((y_arr - p_arr) ** 2)))


def _check_n_bins(n_bins: int) -> int:
    if int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"`n_bins` must be a positive integer, got {n_bins!r}")
    return int(n_bins)


def _calibration_bins(p_arr: np.ndarray, n_bins: int) -> np.ndarray:
    """The bin of each prediction: ``k/n <= p < (k+1)/n``, ``p == 1`` in the last bin."""
    return np.minimum((p_arr * n_bins).astype(np.int64), n_bins - 1)


def expected_calibration_error(y: ArrayLike, p: ArrayLike, n_bins: int = 10) -> float:
    """ECE over ``n_bins`` equal-width bins of ``p`` on [0, 1], weighted by bin size.

    A bin holds ``k/n <= p < (k+1)/n``; ``p == 1`` goes into the last bin. Empty bins add
    nothing.
    """
    n_bins = _check_n_bins(n_bins)
    y_arr, p_arr = _check_outcomes(y, p)
    bins = _calibration_bins(p_arr, n_bins)
    sum_p = np.bincount(bins, weights=p_arr, minlength=n_bins)
    sum_y = np.bincount(bins, weights=y_arr, minlength=n_bins)
    # |mean(y) - mean(p)| weighted by n_b / N equals |sum y - sum p| / N per bin.
    return float(np.sum(np.abs(sum_y - sum_p)) / len(y_arr))


_OUTCOMES_PER_BLOCK = 1 << 20


def calibrated_ece(
    p: ArrayLike, n_bins: int = 10, draws: int = 500, seed: int = 0
) -> tuple[float, float]:
    """The ECE a perfectly calibrated model would show on these predictions: mean and 95th
    percentile over ``draws`` outcome vectors drawn from ``p`` itself (each outcome 1 with
    its own predicted chance).

    ECE is never 0 on finite data: with a few thousand predictions its sampling noise alone
    is about 0.02. An observed ECE near this mean is noise; one above the percentile is
    miscalibration.
    """
    p_arr = _as_1d(p, "p")
    if len(p_arr) == 0 or np.any(~np.isfinite(p_arr) | (p_arr < 0) | (p_arr > 1)):
        raise ValueError("`p` must be a non-empty array of probabilities in [0, 1]")
    if int(draws) != draws or draws < 1:
        raise ValueError(f"`draws` must be a positive integer, got {draws!r}")
    n_bins = _check_n_bins(n_bins)
    # The bins and their sums of p are the same in every draw: only the outcomes change.
    bins = _calibration_bins(p_arr, n_bins)
    sum_p = np.bincount(bins, weights=p_arr, minlength=n_bins)
    in_bin = np.zeros((len(p_arr), n_bins))
    in_bin[np.arange(len(p_arr)), bins] = 1.0
    rng = np.random.default_rng(seed)
    values = np.empty(int(draws))
    # Draws in blocks of about a million outcomes: one matrix product per block sums each
    # draw's outcomes per bin (the same uniform stream, and exact sums of zeros and ones,
    # as one draw at a time).
    block = max(1, _OUTCOMES_PER_BLOCK // len(p_arr))
    for start in range(0, int(draws), block):
        k = min(block, int(draws) - start)
        outcomes = (rng.uniform(size=(k, len(p_arr))) < p_arr).astype(float)
        values[start : start + k] = np.abs(outcomes @ in_bin - sum_p).sum(axis=1) / len(p_arr)
    return float(values.mean()), float(np.quantile(values, 0.95))


def _check_times(actual_s: ArrayLike, **predicted: ArrayLike) -> tuple[np.ndarray, ...]:
    """Validate times; return the rows with a known actual time (actual first).

    Predictions are only checked where the actual time is known, so a model may leave
    them NaN elsewhere. Errors give positions in the caller's arrays.
    """
    actual = _as_1d(actual_s, "actual_s")
    preds = {k: _as_1d(v, k) for k, v in predicted.items()}
    _same_length(actual_s=actual, **preds)
    bad = ~np.isnan(actual) & ~(np.isfinite(actual) & (actual > 0))
    if bad.any():
        raise ValueError(
            f"`actual_s` must hold positive seconds (NaN = missing), got {_first_bad(actual, bad)}"
        )
    known = ~np.isnan(actual)
    for key, arr in preds.items():
        with np.errstate(invalid="ignore"):
            bad = known & ~(np.isfinite(arr) & (arr > 0))
        if bad.any():
            raise ValueError(
                f"`{key}` must hold positive finite seconds where the actual time is known, "
                f"got {_first_bad(arr, bad)}"
            )
    if "low_s" in preds and "high_s" in preds:
        bad = known & (preds["low_s"] > preds["high_s"])
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"`low_s` must not exceed `high_s`: {preds['low_s'][pos].item()!r} > "
                f"{preds['high_s'][pos].item()!r} at position {pos}"
            )
    return (actual[known], *(arr[known] for arr in preds.values()))


def mae_seconds(actual_s: ArrayLike, median_s: ArrayLike) -> float:
    """Mean absolute error in seconds of the predicted median; NaN if no time is known."""
    actual, median = _check_times(actual_s, median_s=median_s)
    if len(actual) == 0:
        return float("nan")
    return float(np.mean(np.abs(actual - median)))


def rmse_log_time(actual_s: ArrayLike, median_s: ArrayLike) -> float:
    """RMSE of log seconds: the error scale of a lognormal model; NaN if no time is known."""
    actual, median = _check_times(actual_s, median_s=median_s)
    if len(actual) == 0:
        return float("nan")
    return float(np.sqrt(np.mean((np.log(actual) - np.log(median)) ** 2)))


def interval_coverage(actual_s: ArrayLike, low_s: ArrayLike, high_s: ArrayLike) -> float:
    """Share of known times inside ``[low_s, high_s]`` (ends included); NaN if none known."""
    actual, low, high = _check_times(actual_s, low_s=low_s, high_s=high_s)
    if len(actual) == 0:
        return float("nan")
    return float(np.mean((actual >= low) & (actual <= high)))


def coverage_by_chance(n: int, nominal: float = 0.8, level: float = 0.95) -> tuple[float, float]:
    """The range of the coverage that intervals holding exactly ``nominal`` of the times show
    on ``n`` times in ``level`` of cases (binomial quantiles, as shares of ``n``): on 40 times
    an 80% interval covers 67.5% to 92.5% of them by chance alone."""
    if int(n) != n or n < 1:
        raise ValueError(f"`n` must be a positive integer, got {n!r}")
    if not (0.0 < nominal < 1.0 and 0.0 < level < 1.0):
        raise ValueError("`nominal` and `level` must be in (0, 1)")
    tail = (1.0 - level) / 2.0
    low, high = binom.ppf([tail, 1.0 - tail], int(n), nominal)
    return float(low) / n, float(high) / n


def correctness_metrics(y: ArrayLike, p: ArrayLike) -> dict[str, Any]:
    """AUC, accuracy, log loss, RMSE and ECE (10 bins) plus the row count ``n``."""
    y_arr, p_arr = _check_outcomes(y, p)
    return {
        "auc": auc(y_arr, p_arr),
        "accuracy": accuracy(y_arr, p_arr),
        "log_loss": log_loss(y_arr, p_arr),
        "rmse": rmse(y_arr, p_arr),
        "ece": expected_calibration_error(y_arr, p_arr),
        "n": len(y_arr),
    }


def time_metrics(
    actual_s: ArrayLike, median_s: ArrayLike, p10_s: ArrayLike, p90_s: ArrayLike
) -> dict[str, Any]:
    """MAE (s), RMSE of log time and 80% interval coverage, plus ``n`` rows with a time."""
    actual = _as_1d(actual_s, "actual_s")
    return {
        "mae_seconds": mae_seconds(actual, median_s),
        "rmse_log_time": rmse_log_time(actual, median_s),
        "coverage80": interval_coverage(actual, p10_s, p90_s),
        "n": int(np.count_nonzero(~np.isnan(actual))),
    }


def prediction_swings(groups: ArrayLike, p: ArrayLike) -> np.ndarray:
    """How much the prediction for the same thing moved between consecutive predictions.

    ``groups`` labels each prediction (e.g. a learner's topic and difficulty) and ``p`` holds
    the predictions in time order; the result holds ``|p_k - p_(k-1)|`` for every pair of
    consecutive predictions of the same group, ordered by group (first appearance), then
    time. A group with one prediction adds nothing.
    """
    labels = np.asarray(groups, dtype=object)
    p_arr = _as_1d(p, "p")
    if labels.ndim != 1:
        raise ValueError(f"`groups` must be one-dimensional, got shape {labels.shape}")
    _same_length(groups=labels, p=p_arr)
    if len(p_arr) == 0:
        return np.zeros(0)
    _, first, codes = np.unique(labels, return_index=True, return_inverse=True)
    # Order by the group's first appearance, then by time (a stable sort keeps time order).
    order = np.argsort(np.argsort(first)[codes], kind="stable")
    same = codes[order][1:] == codes[order][:-1]
    return np.abs(np.diff(p_arr[order]))[same]


__all__ = [
    "accuracy",
    "auc",
    "correctness_metrics",
    "expected_calibration_error",
    "interval_coverage",
    "log_loss",
    "mae_seconds",
    "prediction_swings",
    "rmse",
    "rmse_log_time",
    "time_metrics",
]
