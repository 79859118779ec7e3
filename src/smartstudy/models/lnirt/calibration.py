"""LNIRT's calibration of its chances on persons it was not fitted on.

Why
    An LNIRT fit's items are estimated from the training persons' own answers. Replayed one
    step ahead, those persons are predicted well (on assistments09's training students a log
    loss of 0.466), but new persons are not (0.548 on its test students): with about a dozen
    answers per item, a difficulty holds much of its few answerers' luck (and, likely,
    students learn within a problem set, which a static ability does not follow). The
    chances for new persons
    came out too extreme and too low: a logistic recalibration of the test predictions had a
    slope of 0.75 and an intercept of +0.22, and chances of 5% came true 14% of the time.
    The in-sample replays that choose the guessing floor and the other searched values
    cannot see this, since they predict the persons the items were fitted on.

How
    Cross-fitting: the training persons are split in two halves by a hash of their id; an
    LNIRT with the same settings and the same searched values is fitted on each half and
    predicts the other half's persons one step ahead, as new persons. A logistic map of the
    logit, ``p' = sigmoid(c0 + c1 logit(p))``, is fitted to those out-of-fold predictions by
    maximum likelihood (Platt 1999; on the logit, as in the recalibration of Cox 1958), and
    ``predict`` applies it to every chance. The map is increasing (``c1 > 0``), so an answer
    moves the next chance in the same direction as before: the direction guarantee holds.
    Each half's items are estimated from half the persons, so their noise has twice the
    variance of the whole fit's, and the halves' map corrects for too much: on
    cognitive_tutor (about 235 persons a half) it took the test ECE from 0.025 to 0.031. To
    first order the correction a fit needs grows with its items' noise variance, so the map
    that is used is taken halfway from the identity to the halves' (``for_whole_fit``). On
    assistments09's test predictions, in a trial with fully converged halves, the halves'
    own map gave a log loss of 0.5410 and an ECE of 0.018, the halfway map 0.5408 and 0.014;
    as implemented (halves stopped at ``HALF_FIT_TOL``) the fit gets 0.5415 and 0.018,
    against 0.5483 and 0.041 without a map.

Only fits with at least ``CALIBRATION_MIN_USERS`` persons calibrate; below that the map is the
identity (each half would hold too few persons to say anything).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable

import numpy as np

from smartstudy.models._arrays import logit, platt_fit

#: Fewest training persons for which ``LNIRT.fit`` learns a calibration (two halves of 100).
CALIBRATION_MIN_USERS = 200
#: EM tolerance of the two half fits (``LNIRT.tol`` if that is looser).
HALF_FIT_TOL = 1e-3
#: The map's identity: ``(c0, c1)`` of ``sigmoid(c0 + c1 logit(p))``.
IDENTITY = (0.0, 1.0)
#: Bounds of the learned slope: a map that flattens or steepens more than this is not
#: a calibration but a sign that something else is wrong.
SLOPE_BOUNDS = (0.25, 2.0)
_P_EDGE = 1e-6
#: Weight, in pseudo-rows, of a ridge pulling the map towards the identity (numerical safety
#: for near-separable or tiny data; irrelevant with hundreds of persons).
_RIDGE = 1.0


def user_halves(users: Iterable[object]) -> np.ndarray:
    """0 or 1 for each user id, from a CRC-32 of its text: the same on every machine and run."""
    return np.array([zlib.crc32(str(u).encode()) & 1 for u in users], dtype=np.int8)


def fit_logit_map(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """``(c0, c1)`` maximising the likelihood of answers ``y`` (0/1) under
    ``sigmoid(c0 + c1 logit(p))``, with a light ridge towards the identity; the slope is kept
    within ``SLOPE_BOUNDS`` (Platt scaling, ``models._arrays.platt_fit``)."""
    c1, c0 = platt_fit(p, y, (1.0, 0.0), _RIDGE, SLOPE_BOUNDS, steps=50, p_clip=_P_EDGE)
    if not (math.isfinite(c0) and math.isfinite(c1)):
        return IDENTITY
    return c0, c1


def for_whole_fit(halves: tuple[float, float]) -> tuple[float, float]:
    """The map for a fit on all persons from the map ``halves`` learned on fits on half of
    them: halfway from the identity (item noise variance is inversely proportional to the
    number of persons, and the correction grows with it)."""
    c0, c1 = halves
    return c0 / 2.0, 1.0 + (c1 - 1.0) / 2.0


def apply_logit_map(p: np.ndarray, calibration: tuple[float, float]) -> np.ndarray:
    """``sigmoid(c0 + c1 logit(p))`` of every chance ``p``; ``p`` itself for the identity."""
    c0, c1 = calibration
    if (c0, c1) == IDENTITY:
        return p
    return 1.0 / (1.0 + np.exp(-(c0 + c1 * logit(np.asarray(p, dtype=float), clip=_P_EDGE))))


def apply_logit_map_one(p: float, calibration: tuple[float, float]) -> float:
    """``apply_logit_map`` of one chance, in floats."""
    c0, c1 = calibration
    if (c0, c1) == IDENTITY:
        return p
    q = min(max(p, _P_EDGE), 1.0 - _P_EDGE)
    return 1.0 / (1.0 + math.exp(-(c0 + c1 * (math.log(q) - math.log1p(-q)))))


def is_calibration(value: object) -> bool:
    """A stored map: two finite numbers with a slope within ``SLOPE_BOUNDS``."""
    try:
        c0, c1 = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return False
    return math.isfinite(c0) and SLOPE_BOUNDS[0] <= c1 <= SLOPE_BOUNDS[1]
