"""Small array helpers shared by the model families (private to ``smartstudy.models``).

Id look-ups into vocabularies, tables with spare rows for O(1) online appends, grouped sums
and the logistic link. Two grouped-sum algorithms live here on purpose: ``grouped_sums``
adds in row order (``np.bincount``), ``compensated_grouped_sums`` and ``row_group_totals``
use pandas' compensated (Kahan) summation. Each model keeps the one it was fitted with, so
that a refit reproduces its saved numbers to the last bit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Fewest rows of a table with spare capacity.
MIN_CAPACITY = 8


def lookup(index: dict[str, int], ids: np.ndarray, missing: int = -1) -> np.ndarray:
    """Position of each id in ``index``; ``missing`` for unknown ids and None."""
    get = index.get
    return np.fromiter(
        (get(v, missing) if v is not None else missing for v in ids),
        dtype=np.int64,
        count=len(ids),
    )


def with_capacity(values: np.ndarray, n: int | None = None, fill: float = 0.0) -> np.ndarray:
    """A copy of the first ``n`` rows of ``values`` (default: all) in a table with spare rows
    (twice ``n``, at least ``MIN_CAPACITY``) filled with ``fill``, so that an online update
    appends a row in amortised O(1)."""
    n = len(values) if n is None else n
    out = np.full((max(MIN_CAPACITY, 2 * n), *values.shape[1:]), fill, dtype=values.dtype)
    out[:n] = values[:n]
    return out


def grouped_sums(codes: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """Column-wise sums of the rows of ``values`` (n, k) per group code 0..n_groups-1, added
    in row order; rows with a negative code belong to no group. Shape (n_groups, k)."""
    ok = codes >= 0
    columns = [
        np.bincount(codes[ok], weights=values[ok, j], minlength=n_groups)
        for j in range(values.shape[1])
    ]
    if n_groups == 0 or not columns:
        return np.zeros((n_groups, values.shape[1]))
    return np.column_stack(columns).reshape(n_groups, values.shape[1]).astype(float)


def compensated_grouped_sums(codes: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """``grouped_sums`` by pandas' compensated summation (codes 0..n_groups-1, all rows)."""
    out = np.zeros((n_groups, values.shape[1]))
    if n_groups:
        sums = pd.DataFrame(values).groupby(codes, sort=False).sum()
        out[sums.index.to_numpy()] = sums.to_numpy()
    return out


def row_group_totals(codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each row's group total of ``values`` (zeros where the code is negative), by pandas'
    compensated summation."""
    out = np.zeros_like(values)
    ok = codes >= 0
    if ok.any():
        out[ok] = (
            pd.DataFrame(values[ok]).groupby(codes[ok], sort=False).transform("sum").to_numpy()
        )
    return out


def logit(p: np.ndarray, clip: float = 0.0) -> np.ndarray:
    """log(p / (1 - p)), with ``p`` first clipped to [clip, 1 - clip] when ``clip`` > 0."""
    if clip > 0:
        p = np.clip(p, clip, 1.0 - clip)
    return np.log(p) - np.log1p(-p)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function, through tanh (no overflow warning for large |x|)."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def platt_fit(
    p: np.ndarray,
    y: np.ndarray,
    centre: tuple[float, float],
    precision: float,
    slope_range: tuple[float, float],
    steps: int = 25,
    p_clip: float = 1e-6,
) -> tuple[float, float]:
    """(slope, intercept) of Platt scaling in logit space, ``logit p' = slope · logit p +
    intercept`` (Platt 1999): the log-likelihood of answers ``y`` (0/1) plus a Gaussian prior
    of ``precision`` around ``centre``, maximised by Newton's method (the objective is
    concave), the slope kept in ``slope_range``. ``centre`` for no data."""
    a0, b0 = centre
    if len(p) == 0:
        return a0, b0
    z = logit(np.asarray(p, dtype=float), clip=p_clip)
    y = np.asarray(y, dtype=float)
    a, b = a0, b0
    for _ in range(steps):
        q = sigmoid(a * z + b)
        r = q - y
        w = q * (1 - q)
        grad = np.array([r @ z + precision * (a - a0), r.sum() + precision * (b - b0)])
        hess = np.array(
            [[w @ (z * z) + precision, w @ z], [w @ z, w.sum() + precision]],
        )
        step = np.linalg.solve(hess, grad)
        a = float(np.clip(a - step[0], *slope_range))
        b = float(b - step[1])
        if np.max(np.abs(step)) < 1e-9:
            break
    return a, b
