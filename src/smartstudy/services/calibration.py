"""Calibration of a model family's predictions, fitted on held-out students only.

Two corrections, both O(1) at prediction time and both stored as four numbers per family
and kind of request (cold or warm, see ``services.registry``):

- **Probability**: Platt scaling in logit space, ``logit p' = slope · logit p + intercept``
  (Platt 1999; with ``intercept`` alone it is temperature scaling's shift, with ``slope``
  alone its 1/T). ``slope`` is kept positive, so the map is strictly increasing in p: a
  model's direction guarantee (a correct answer never lowers the next prediction) survives
  calibration. The fit maximises the held-out likelihood plus a Gaussian prior centred on
  the identity, so a handful of rows moves it little and many rows move it freely. The
  registry fits it once for every kind of request (``registry._fit_kinds``): a map that
  changed when a learner's requests turn from cold to warm would make the chance jump
  then, and, after a wrong answer, could raise it.
- **Time**: per kind of request (shrunk towards the pooled fit), a median shift (the held-out
  median of ``log t − log median``, shrunk towards 0 with few rows) and a conformal scale of the
  80% interval: the scale is the split-conformal quantile (Vovk et al. 2005; Lei et al. 2018) of
  each held-out row's normalised residual, the residual divided by the interval's half-width on
  its side, so that the scaled intervals hold 80% of the held-out times. The scale is shrunk
  towards 1 in log space with few rows.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from smartstudy.models._arrays import platt_fit

#: The level of the served time interval (p10 to p90).
COVERAGE = 0.8
#: Prior precision of the Platt parameters around their centre; in rows at p ≈ 0.5 it is
#: worth about 40 held-out rows (each carries a Fisher information of 0.25 per logit).
PLATT_PRIOR_PRECISION = 10.0
#: Pseudo-rows of the median shift and of the log interval scale towards no change.
TIME_PRIOR_ROWS = 20.0
# The slope stays in this range: positive (monotone) and never so steep or so flat that
# a bad held-out sample could saturate or flatten every prediction.
SLOPE_RANGE = (0.2, 3.0)
SCALE_RANGE = (0.25, 4.0)
_P_EPS = 1e-6
_NEWTON_STEPS = 25


@dataclass(frozen=True)
class Calibrator:
    """One family's correction for one kind of request (identity by default)."""

    slope: float = 1.0
    intercept: float = 0.0
    time_shift: float = 0.0
    interval_scale: float = 1.0
    rows: int = 0
    time_rows: int = 0

    @property
    def is_identity(self) -> bool:
        return (self.slope, self.intercept, self.time_shift, self.interval_scale) == (
            1.0,
            0.0,
            0.0,
            1.0,
        )

    def probability(self, p: float | np.ndarray) -> float | np.ndarray:
        """The calibrated chance; strictly increasing in ``p``."""
        if self.slope == 1.0 and self.intercept == 0.0:
            return p
        z = _logit(np.clip(p, _P_EPS, 1 - _P_EPS))
        out = _sigmoid(self.slope * z + self.intercept)
        return float(out) if np.ndim(out) == 0 else out

    def times(
        self, median: float | np.ndarray, p10: float | np.ndarray, p90: float | np.ndarray
    ) -> tuple[Any, Any, Any]:
        """The calibrated (median, p10, p90): the median shifted and each side of the
        interval scaled in log space, so p10 ≤ median ≤ p90 still holds."""
        if self.time_shift == 0.0 and self.interval_scale == 1.0:
            return median, p10, p90
        log_med = np.log(median)
        low = np.maximum(log_med - np.log(p10), 0.0) * self.interval_scale
        high = np.maximum(np.log(p90) - log_med, 0.0) * self.interval_scale
        shifted = log_med + self.time_shift
        out = (np.exp(shifted), np.exp(shifted - low), np.exp(shifted + high))
        if np.ndim(median) == 0:
            return tuple(float(v) for v in out)
        return out

    def restricted(self, probability: bool, times: bool) -> Calibrator:
        """This calibrator with the probability part, the time part, or both replaced by
        the identity (a part that did not validate better than none)."""
        identity = Calibrator()
        return replace(
            self,
            slope=self.slope if probability else identity.slope,
            intercept=self.intercept if probability else identity.intercept,
            time_shift=self.time_shift if times else identity.time_shift,
            interval_scale=self.interval_scale if times else identity.interval_scale,
        )

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Calibrator:
        """A stored calibrator; identity for anything missing or out of range."""
        if not data:
            return cls()
        try:
            slope = float(data.get("slope", 1.0))
            scale = float(data.get("interval_scale", 1.0))
            values = (slope, float(data.get("intercept", 0.0)), float(data.get("time_shift", 0.0)))
            if not all(math.isfinite(v) for v in (*values, scale)) or slope <= 0 or scale <= 0:
                return cls()
            return cls(
                slope=values[0],
                intercept=values[1],
                time_shift=values[2],
                interval_scale=scale,
                rows=int(data.get("rows", 0)),
                time_rows=int(data.get("time_rows", 0)),
            )
        except (TypeError, ValueError):
            return cls()


def fit_platt(
    p: np.ndarray, y: np.ndarray, centre: tuple[float, float] = (1.0, 0.0)
) -> tuple[float, float]:
    """(slope, intercept) maximising the log-likelihood of ``y`` under the recalibrated
    ``p`` plus a Gaussian prior of precision ``PLATT_PRIOR_PRECISION`` around ``centre``
    (``models._arrays.platt_fit``, slope kept in ``SLOPE_RANGE``)."""
    return platt_fit(p, y, centre, PLATT_PRIOR_PRECISION, SLOPE_RANGE, _NEWTON_STEPS, _P_EPS)


def fit_time(
    rt: np.ndarray,
    median: np.ndarray,
    p10: np.ndarray,
    p90: np.ndarray,
    centre: tuple[float, float] = (0.0, 1.0),
) -> tuple[float, float]:
    """(median shift in log seconds, interval scale) from held-out times; rows without a
    positive time are ignored. With few rows both stay near ``centre``."""
    rt = np.asarray(rt, dtype=float)
    ok = np.isfinite(rt) & (rt > 0)
    n = int(ok.sum())
    shift0, scale0 = centre
    if n == 0:
        return shift0, scale0
    log_med = np.log(np.asarray(median, dtype=float)[ok])
    resid = np.log(rt[ok]) - log_med
    weight = n / (n + TIME_PRIOR_ROWS)
    shift = float(shift0 + weight * (np.median(resid) - shift0))
    low = np.maximum(log_med - np.log(np.asarray(p10, dtype=float)[ok]), 1e-6)
    high = np.maximum(np.log(np.asarray(p90, dtype=float)[ok]) - log_med, 1e-6)
    centred = resid - shift
    score = np.maximum(centred / high, -centred / low)
    # The split-conformal quantile: the ceil((n + 1) · 80%)-th smallest score.
    rank = min(n, math.ceil((n + 1) * COVERAGE))
    raw = float(np.clip(np.partition(score, rank - 1)[rank - 1], *SCALE_RANGE))
    scale = math.exp(math.log(scale0) + weight * (math.log(raw) - math.log(scale0)))
    return shift, float(np.clip(scale, *SCALE_RANGE))


def fit_calibrator(
    p: np.ndarray,
    y: np.ndarray,
    rt: np.ndarray,
    times: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    prior: Calibrator | None = None,
    *,
    chance: bool = True,
) -> Calibrator:
    """A calibrator fitted on held-out predictions ``p`` (and ``times`` = (median, p10,
    p90), None for a family without times) against outcomes ``y`` and times ``rt``,
    shrunk towards ``prior`` (the identity by default). ``chance=False``: the chance's
    map is ``prior``'s, only the time part is fitted."""
    prior = prior or Calibrator()
    slope, intercept = prior.slope, prior.intercept
    if chance:
        slope, intercept = fit_platt(p, y, (slope, intercept))
    shift, scale, time_rows = prior.time_shift, prior.interval_scale, 0
    if times is not None:
        shift, scale = fit_time(rt, *times, centre=(prior.time_shift, prior.interval_scale))
        time_rows = int(np.sum(np.isfinite(rt) & (np.asarray(rt, dtype=float) > 0)))
    return Calibrator(
        slope=round(slope, 6),
        intercept=round(intercept, 6),
        time_shift=round(shift, 6),
        interval_scale=round(scale, 6),
        rows=len(p),
        time_rows=time_rows,
    )


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))
