"""Incremental per-user history features of :class:`~smartstudy.models.neural.NeuralPredictor`.

Design
    Every feature is a function of a handful of *counters* kept per user, per (user, skill) and
    per (user, item), plus two ring buffers of the user's last five attempts. One attempt adds
    one row of counters at three levels and pushes one value into each buffer, so the online
    ``update`` is O(1) and a prediction never rescans a user's history. Batch prediction and
    training compute exactly the same quantities with grouped exclusive prefix sums: the
    features of a row see the stored state plus the *earlier* rows of the same user, never the
    row's own outcome (one-step-ahead, as in Gervet et al. 2020, JEDM 12(3)).

Counters (``C, W, WC, WW, TN, TRES, TSUM, PTN``)
    ``C``/``W`` count correct / wrong attempts (the count features of Gervet et al.'s Best-LR,
    which we log-scale and cap). ``WC``/``WW`` weight each correct attempt by ``1 - p_ref``
    and each wrong one by ``p_ref``, where ``p_ref`` is the item's population success rate: a
    correct answer on a hard item counts more than one on an easy item (an Elo / PFA-style
    "surprise" count). ``TN`` counts timed attempts and ``TRES`` sums their log-time residuals
    ``log(rt) - mu_ref`` against the item's population log-time mean, so a user's speed is
    measured relative to the items they happened to do. ``PTN`` counts the timed attempts
    that entered the population time statistics (a user's first
    ``POP_ATTEMPTS_PER_USER_ITEM`` timed attempts at an item, see ``models.base``) and
    ``TSUM`` sums their (plausible, winsorised) log times: with ``C`` and ``W`` they are the
    user's own share of the population statistics, which the leave-user-out references
    (``refs``) subtract.

Recency
    Besides the last-5 window, exponential moving averages of the outcomes per user and per
    (user, skill) start at the population rate and move towards each new answer; they are
    O(1) state too, and computed in batch by a segmented scan of affine maps. Recency-weighted
    counts of correct and wrong answers (R-PFA, Galyardt & Goldin 2015; the windowed counts of
    DAS3H, Choffin et al. 2019, as soft windows in attempts, since not every data set has
    timestamps) are kept per user and per (user, skill) for several decay rates; a skill's
    counts fade with every answer the user gives elsewhere, so they also say how long ago the
    skill was practised. The current runs of correct and of wrong answers (the run-length view
    of the recent-pattern features of Schmucker, Wang, Hu & Mitchell 2022, JEDM 14(1)) are kept
    per user and per (user, skill). All are O(1) to update and to read, and computed in batch
    by the same scan (``grouped_affine``, ``grouped_decay``).

Monotonicity
    Every correctness feature goes up (or stays) after a correct answer and down (or stays)
    after a wrong one: counts of correct answers, *negated* counts of wrong answers, smoothed
    success rates (hierarchically shrunk towards the parent level, which itself moves in the
    same direction) and the smoothed last-5 rate. Fed into a network whose weights on them are
    non-negative, the predicted probability is monotone in the outcome history by construction.
    Time features are not monotone and feed the time head only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from smartstudy.models._arrays import compensated_grouped_sums, with_capacity

# Counter columns.
C, W, WC, WW, TN, TRES, TSUM, PTN = range(8)
N_COUNTERS = 8
# Length of the "recent" window (the original design's "last 5 tasks").
RECENT = 5
# Exponential moving averages of outcomes (weights of the newest answer): per user, and per
# (user, skill) a slow and a fast one (the fast one is close to "the last answer on this skill").
EMA_USER: tuple[float, ...] = (0.3,)
EMA_SKILL: tuple[float, ...] = (0.3, 0.7)
# Recency-weighted counts (``grouped_decay``): the weight of an answer shrinks by ``lam`` with
# each later answer of the user, so these are counts over soft windows of about
# ``1 / (1 - lam)`` attempts (R-PFA, Galyardt & Goldin 2015; DAS3H's windows, Choffin et al.
# 2019, in attempts), per user and per (user, skill); a skill's counts also fade while the
# user works on other skills.
DECAY_USER: tuple[float, ...] = (0.9, 0.98)
DECAY_SKILL: tuple[float, ...] = (0.8, 0.95, 0.99)

_LEVEL_FEATURES = ("log_correct", "neg_log_wrong", "rate", "log_wcorrect", "neg_log_wwrong", "adj")
_SUMMARY_FEATURES: tuple[str, ...] = (
    *(f"{level}_{name}" for level in ("user", "skill", "item") for name in _LEVEL_FEATURES),
    "recent_rate",
    *(f"user_ema{a}" for a in EMA_USER),
    *(f"skill_ema{a}" for a in EMA_SKILL),
)
# The time head sees these first correctness features (counts, rates, moving averages), not
# the recency-weighted counts and runs, which describe correctness only.
N_CORR_FOR_TIME = len(_SUMMARY_FEATURES)
CORRECTNESS_FEATURES: tuple[str, ...] = (
    *_SUMMARY_FEATURES,
    *(
        f"{level}_decay{lam}_{name}"
        for level, lams in (("user", DECAY_USER), ("skill", DECAY_SKILL))
        for lam in lams
        for name in ("log_correct", "neg_log_wrong", "rate")
    ),
    *(
        f"{level}_streak_{name}"
        for level in ("user", "skill")
        for name in ("log_correct", "neg_log_wrong")
    ),
)
TIME_FEATURES: tuple[str, ...] = (
    "user_log_timed",
    "skill_log_timed",
    "item_log_timed",
    "user_time_res",
    "skill_time_res",
    "item_time_res",
    "recent_time_res",
)
N_CORR = len(CORRECTNESS_FEATURES)
N_TIME = len(TIME_FEATURES)


@dataclass(frozen=True)
class Smoothing:
    """Pseudo-counts that keep rates away from 0/1 when a user has few attempts.

    ``prior_rate`` is the population success rate (the prior of a user's overall rate);
    skill-level rates shrink towards the user's overall rate and item-level rates towards the
    skill-level rate, each with ``k_rate`` pseudo-attempts. ``k_adj`` is in units of the
    surprise counts (one attempt adds about ``p(1 - p) <= 0.25`` to each). ``count_cap`` caps
    counts before the log (seed 002: capped counts keep one heavy user from dominating).
    """

    prior_rate: float
    k_rate: float = 4.0
    k_adj: float = 1.0
    k_recent: float = 2.0
    k_time: float = 3.0
    count_cap: float = 200.0


def row_contributions(
    y: np.ndarray, p_ref: np.ndarray, res_t: np.ndarray, lt: np.ndarray, pop: np.ndarray
) -> np.ndarray:
    """Counter increments of each row; rows without an outcome add nothing at all.

    ``res_t`` is ``log(rt) - mu_ref`` with NaN where the time is missing; ``lt`` is log(rt);
    ``pop`` marks the rows whose time enters the population statistics.
    """
    known = ~np.isnan(y)
    yk = np.where(known, y, 0.0)
    correct = known & (yk == 1.0)
    wrong = known & (yk == 0.0)
    timed = known & ~np.isnan(res_t)
    out = np.zeros((len(y), N_COUNTERS))
    out[:, C] = correct
    out[:, W] = wrong
    out[:, WC] = np.where(correct, 1.0 - p_ref, 0.0)
    out[:, WW] = np.where(wrong, p_ref, 0.0)
    out[:, TN] = timed
    out[:, TRES] = np.where(timed, res_t, 0.0)
    counted = timed & pop
    out[:, PTN] = counted
    out[:, TSUM] = np.where(counted, lt, 0.0)
    return out


def own_stats(counters: np.ndarray) -> np.ndarray:
    """A user's own share of the population statistics ``[n, successes, timed n, sum log t]``
    (the layout of ``refs``) from their counters."""
    return np.column_stack(
        [counters[:, C] + counters[:, W], counters[:, C], counters[:, PTN], counters[:, TSUM]]
    )


def own_stats_one(counters: np.ndarray) -> tuple[float, float, float, float]:
    """``own_stats`` of one row of counters, in floats."""
    c, w, ptn, tsum = (float(counters[k]) for k in (C, W, PTN, TSUM))
    return c + w, c, ptn, tsum


def _capped_log(x: np.ndarray, cap: float) -> np.ndarray:
    return np.log1p(np.minimum(x, cap))


def correctness_features(
    sm: Smoothing,
    u: np.ndarray,
    s: np.ndarray,
    i: np.ndarray,
    recent_sum: np.ndarray,
    recent_n: np.ndarray,
    user_ema: np.ndarray,
    skill_ema: np.ndarray,
    user_decay: np.ndarray,
    skill_decay: np.ndarray,
    streaks: np.ndarray,
) -> np.ndarray:
    """The monotone correctness features (``CORRECTNESS_FEATURES``) from counters.

    ``u``, ``s`` and ``i`` are (n, N_COUNTERS) counters of the user, the (user, skill) and the
    (user, item) before the attempt; ``recent_*`` the sum and count of the last outcomes;
    ``user_ema`` (n, len(EMA_USER)) and ``skill_ema`` (n, len(EMA_SKILL)) the moving averages;
    ``user_decay`` / ``skill_decay`` the recency-weighted counts read now (``grouped_decay``
    layout). Their rates shrink towards the user's overall smoothed rate, which moves the
    same way as they do, so every feature stays monotone. ``streaks`` (n, 4) are the current
    runs of correct and wrong answers of the user and of the (user, skill) (a correct answer
    lengthens the first and ends the second: the run-length view of the recent response
    pattern features of Schmucker et al. 2022, monotone as ``log1p(correct run)`` and
    ``-log1p(wrong run)``).
    """
    cap = sm.count_cap
    cols = []
    parent_rate = np.full(len(u), sm.prior_rate)
    parent_adj = np.full(len(u), 0.5)
    user_rate = None
    for level in (u, s, i):
        c, w, wc, ww = level[:, C], level[:, W], level[:, WC], level[:, WW]
        rate = (c + sm.k_rate * parent_rate) / (c + w + sm.k_rate)
        adj = (wc + sm.k_adj * parent_adj) / (wc + ww + sm.k_adj)
        cols += [
            _capped_log(c, cap),
            -_capped_log(w, cap),
            rate,
            _capped_log(wc, cap),
            -_capped_log(ww, cap),
            adj,
        ]
        if user_rate is None:
            user_rate = rate
        parent_rate, parent_adj = rate, adj
    cols.append((recent_sum + sm.k_recent * user_rate) / (recent_n + sm.k_recent))
    cols += [user_ema, skill_ema]
    for decay, lams in ((user_decay, DECAY_USER), (skill_decay, DECAY_SKILL)):
        k = len(lams)
        for j in range(k):
            c, w = decay[:, j], decay[:, k + j]
            cols += [np.log1p(c), -np.log1p(w), (c + sm.k_rate * user_rate) / (c + w + sm.k_rate)]
    for j in (0, 2):
        cols += [np.log1p(streaks[:, j]), -np.log1p(streaks[:, j + 1])]
    return np.column_stack(cols)


def time_features(
    sm: Smoothing,
    u: np.ndarray,
    s: np.ndarray,
    i: np.ndarray,
    recent_sum: np.ndarray,
    recent_n: np.ndarray,
) -> np.ndarray:
    """Time features (``TIME_FEATURES``): timed counts and shrunk mean log-time residuals."""
    cap = sm.count_cap
    kt = sm.k_time
    res_u = u[:, TRES] / (u[:, TN] + kt)
    res_s = (s[:, TRES] + kt * res_u) / (s[:, TN] + kt)
    res_i = (i[:, TRES] + kt * res_s) / (i[:, TN] + kt)
    recent = (recent_sum + sm.k_recent * res_u) / (recent_n + sm.k_recent)
    return np.column_stack(
        [
            _capped_log(u[:, TN], cap),
            _capped_log(s[:, TN], cap),
            _capped_log(i[:, TN], cap),
            res_u,
            res_s,
            res_i,
            recent,
        ]
    )


# -- batch computation ----------------------------------------------------------------------
def grouped_exclusive(codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per-row sums of ``values`` over the EARLIER rows of the same group (code -1: none).

    Rows are taken in array order; a row never sees its own values, and groups never see each
    other (each group's running sum is independent).
    """
    out = np.zeros_like(values)
    valid = codes >= 0
    if not valid.any():
        return out
    frame = pd.DataFrame(values[valid])
    g = codes[valid]
    running = frame.groupby(g, sort=False).cumsum()
    out[valid] = running.groupby(g, sort=False).shift(1, fill_value=0.0).to_numpy()
    return out


def grouped_ema(
    codes: np.ndarray,
    y: np.ndarray,
    start: np.ndarray,
    alphas: tuple[float, ...],
) -> tuple[np.ndarray, np.ndarray]:
    """Exponential moving averages of ``y`` per group, before each row and after all rows.

    ``codes`` (-1: no group) give each row's group; ``start`` (n_groups, len(alphas)) the
    value before the group's first row. A known outcome moves the average by
    ``ema <- (1 - a) * ema + a * y``; NaN outcomes leave it alone. Returns the value before
    each row (rows without a group get 0) and the final value of each group.
    """
    known = ~np.isnan(y)[:, None]
    alpha = np.asarray(alphas, dtype=float)[None, :]
    mul = np.where(known, 1.0 - alpha, 1.0)
    add = np.where(known, alpha * np.nan_to_num(y)[:, None], 0.0)
    return grouped_affine(codes, mul, add, start)


def grouped_streaks(
    codes: np.ndarray, y: np.ndarray, start: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Lengths of the current runs of correct and of wrong answers per group (columns), before
    each row and after all rows (``grouped_affine`` conventions). A correct answer extends the
    correct run and ends the wrong one, and vice versa; NaN outcomes change nothing."""
    known = ~np.isnan(y)
    yk = np.nan_to_num(y)
    hit = np.column_stack([yk, 1.0 - yk])
    mul = np.where(known[:, None], hit, 1.0)
    add = np.where(known[:, None], hit, 0.0)
    return grouped_affine(codes, mul, add, start)


def grouped_affine(
    codes: np.ndarray, mul: np.ndarray, add: np.ndarray, start: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``v <- mul[r] * v + add[r]`` per group over rows in array order.

    ``codes`` (-1: no group) give each row's group and ``start`` (n_groups, k) the value before
    the group's first row. Returns the value before each row (0 for rows without a group) and
    each group's final value. Evaluated as a segmented Hillis-Steele scan of the affine maps:
    O(n log(longest group)).
    """
    n, k = len(codes), start.shape[1]
    before = np.zeros((n, k))
    final = start.copy()
    valid = np.flatnonzero(codes >= 0)
    if len(valid) == 0:
        return before, final
    order = valid[np.argsort(codes[valid], kind="stable")]
    g = codes[order]
    first, pos_in_seg = _segments(g)
    m, a = _affine_scan(pos_in_seg, mul[order], add[order])
    after = m * start[g] + a
    before[order] = np.where(first[:, None], start[g], np.roll(after, 1, axis=0))
    last = np.r_[g[1:] != g[:-1], True]
    final[g[last]] = after[last]
    return before, final


def _segments(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first row of its segment?, position within the segment) of group-sorted codes."""
    first = np.r_[True, g[1:] != g[:-1]]
    seg_start = np.maximum.accumulate(np.where(first, np.arange(len(g)), 0))
    return first, np.arange(len(g)) - seg_start


def _affine_scan(
    pos_in_seg: np.ndarray, mul: np.ndarray, add: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Segmented inclusive scan of the affine maps ``v -> mul * v + add`` (rows in segment
    order): row r gets the composition of its segment's maps up to r (Hillis-Steele)."""
    mul = mul.copy()
    step = 1
    while len(pos_in_seg) and step <= int(pos_in_seg.max()):
        idx = np.flatnonzero(pos_in_seg >= step)
        prev = idx - step
        add_new = add.copy()
        add_new[idx] = mul[idx] * add[prev] + add[idx]
        mul[idx] = mul[idx] * mul[prev]
        add = add_new
        step *= 2
    return mul, add


def grouped_decay(
    codes: np.ndarray,
    y: np.ndarray,
    clock: np.ndarray,
    start: np.ndarray,
    start_clock: np.ndarray,
    lambdas: tuple[float, ...],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Recency-weighted counts of correct and wrong answers per group, before each row.

    ``clock`` is each row's count of the user's answered attempts before it (all skills). An
    answer given when the clock read ``t_j`` weighs ``lam ** (t - 1 - t_j)`` when read at clock
    ``t``: the user's latest answer weighs 1, and a group's counts fade with every answer the
    user gives elsewhere (in attempts, the "time since the last attempt on the skill"). Stored
    values are as of a group's clock (``start_clock``; its last answered row + 1), so reading
    them later multiplies by ``lam ** (t - clock)``. Columns: the correct counts for each
    ``lam``, then the wrong counts. NaN outcomes add nothing. Returns the counts before each
    row (0 for rows without a group), and each group's final counts and clock.
    """
    n, k = len(codes), len(lambdas)
    before = np.zeros((n, 2 * k))
    final, final_clock = start.copy(), start_clock.astype(float).copy()
    valid = np.flatnonzero(codes >= 0)
    if len(valid) == 0:
        return before, final, final_clock
    order = valid[np.argsort(codes[valid], kind="stable")]
    g, yy, t = codes[order], y[order], clock[order].astype(float)
    known = ~np.isnan(yy)
    first, pos_in_seg = _segments(g)
    row_clock = t + known  # a group's clock after the row
    prev_clock = np.where(first, start_clock[g], np.roll(row_clock, 1))
    lam = np.tile(np.asarray(lambdas, dtype=float), 2)[None, :]
    fade = lam ** (t - prev_clock)[:, None]
    step = np.where(known[:, None], lam, 1.0)
    yk = np.nan_to_num(yy)[:, None]
    add = np.where(known[:, None], np.hstack([np.repeat(yk, k, 1), np.repeat(1 - yk, k, 1)]), 0.0)
    mul, add = _affine_scan(pos_in_seg, step * fade, add)
    after = mul * start[g] + add
    before[order] = fade * np.where(first[:, None], start[g], np.roll(after, 1, axis=0))
    last = np.r_[g[1:] != g[:-1], True]
    final[g[last]] = after[last]
    final_clock[g[last]] = row_clock[last]
    return before, final, final_clock


def read_decay(
    stored: np.ndarray, stored_clock: np.ndarray, clock: np.ndarray, lambdas: tuple[float, ...]
) -> np.ndarray:
    """Stored recency-weighted counts (as of ``stored_clock``) read at ``clock``."""
    lam = np.tile(np.asarray(lambdas, dtype=float), 2)[None, :]
    return stored * lam ** (clock - stored_clock)[:, None]


def recent_window(
    user_codes: np.ndarray,
    mask: np.ndarray,
    values: np.ndarray,
    buffers: np.ndarray,
    buffer_n: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Sum and count of the last ``RECENT`` masked values of the same user before each row.

    ``user_codes`` are contiguous per user (rows sorted by user); ``buffers`` (one row per
    user code, right-aligned: newest last) and ``buffer_n`` hold what came before the frame.
    Values are added oldest first, the order in which ``HistoryStore`` sums its buffers.
    """
    n = len(user_codes)
    total = np.zeros(n)
    count = np.zeros(n)
    if n == 0:
        return total, count
    m = mask.astype(np.int64)
    cum = np.cumsum(m)
    before = cum - m  # masked rows before this row, all users
    first = np.r_[True, user_codes[1:] != user_codes[:-1]]
    start_of_user = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    k = before - before[start_of_user]  # masked rows of this user before this row
    masked_values = np.append(values[mask], 0.0)
    bn = buffer_n[user_codes]
    for d in range(RECENT, 0, -1):
        from_frame = k >= d
        j = d - k  # 1 = newest buffer entry
        from_buffer = ~from_frame & (j <= bn)
        frame_val = masked_values[np.clip(before - d, 0, len(masked_values) - 1)]
        buf_val = buffers[user_codes, np.clip(RECENT - j, 0, RECENT - 1)]
        ok = from_frame | from_buffer
        total += np.where(ok, np.where(from_frame, frame_val, buf_val), 0.0)
        count += ok
    return total, count


def last_values(
    user_codes: np.ndarray, mask: np.ndarray, values: np.ndarray, n_users: int
) -> tuple[np.ndarray, np.ndarray]:
    """Right-aligned buffers of the last ``RECENT`` masked values of each user code."""
    buffers = np.zeros((n_users, RECENT))
    counts = np.zeros(n_users, dtype=np.int64)
    idx = np.flatnonzero(mask)
    if len(idx) == 0:
        return buffers, counts
    codes = user_codes[idx]
    # Rank from the end within each user: 0 = newest.
    rev = pd.Series(np.arange(len(idx))).groupby(codes).cumcount(ascending=False).to_numpy()
    keep = rev < RECENT
    buffers[codes[keep], RECENT - 1 - rev[keep]] = values[idx[keep]]
    counts[:] = np.minimum(np.bincount(codes, minlength=n_users), RECENT)
    return buffers, counts


# -- the per-user store ---------------------------------------------------------------------
class HistoryStore:
    """Counters and recent-attempt buffers per user, (user, skill) and (user, item).

    Users are keyed by their id string; skill and item pairs by (user row, skill / item id).
    Tables grow by doubling, so adding a user or pair is amortised O(1). ``prior`` is where
    the moving averages of a new user or (user, skill) pair start (the population rate).
    """

    def __init__(self, prior: float = 0.5) -> None:
        self.prior = float(prior)
        self.user_index: dict[str, int] = {}
        self.user_cnt = np.zeros((8, N_COUNTERS))
        self.user_ema = np.full((8, len(EMA_USER)), self.prior)
        self.skill_ema = np.full((8, len(EMA_SKILL)), self.prior)
        self.user_dec = np.zeros((8, 2 * len(DECAY_USER)))
        self.skill_dec = np.zeros((8, 2 * len(DECAY_SKILL)))
        self.skill_clock = np.zeros(8)
        self.user_streak = np.zeros((8, 2))
        self.skill_streak = np.zeros((8, 2))
        self.recent_y = np.zeros((8, RECENT))
        self.recent_yn = np.zeros(8, dtype=np.int64)
        self.recent_t = np.zeros((8, RECENT))
        self.recent_tn = np.zeros(8, dtype=np.int64)
        self.skill_index: dict[tuple[int, str], int] = {}
        self.skill_cnt = np.zeros((8, N_COUNTERS))
        self.item_index: dict[tuple[int, str], int] = {}
        self.item_cnt = np.zeros((8, N_COUNTERS))

    # -- building -----------------------------------------------------------------------
    @classmethod
    def from_batch(
        cls,
        users: np.ndarray,
        skills: np.ndarray,
        items: np.ndarray,
        contrib: np.ndarray,
        y: np.ndarray,
        res_t: np.ndarray,
        prior: float,
    ) -> HistoryStore:
        """The store after learning every row (rows sorted by user, then order)."""
        store = cls(prior)
        ucodes, uniq = pd.factorize(users)
        n_u = len(uniq)
        store.user_index = {str(u): k for k, u in enumerate(uniq)}
        store.user_cnt = with_capacity(compensated_grouped_sums(ucodes, contrib, n_u))
        _, final = grouped_ema(ucodes, y, np.full((n_u, len(EMA_USER)), store.prior), EMA_USER)
        store.user_ema = with_capacity(final)
        clock = answered_before(ucodes, contrib)
        _, final, _ = grouped_decay(
            ucodes, y, clock, np.zeros((n_u, 2 * len(DECAY_USER))), np.zeros(n_u), DECAY_USER
        )
        store.user_dec = with_capacity(final)
        store.user_streak = with_capacity(grouped_streaks(ucodes, y, np.zeros((n_u, 2)))[1])
        known = ~np.isnan(y)
        timed = known & ~np.isnan(res_t)
        store.recent_y, store.recent_yn = last_values(ucodes, known, np.nan_to_num(y), n_u)
        store.recent_t, store.recent_tn = last_values(ucodes, timed, np.nan_to_num(res_t), n_u)
        for attr, keys in (("skill", skills), ("item", items)):
            has = np.array([k is not None for k in keys], dtype=bool)
            pairs = pd.MultiIndex.from_arrays([ucodes[has], keys[has].astype(object)])
            codes, uniq_pairs = pd.factorize(pairs)
            setattr(
                store, f"{attr}_index", {(int(a), str(b)): k for k, (a, b) in enumerate(uniq_pairs)}
            )
            setattr(
                store,
                f"{attr}_cnt",
                with_capacity(compensated_grouped_sums(codes, contrib[has], len(uniq_pairs))),
            )
            if attr == "skill":
                start = np.full((len(uniq_pairs), len(EMA_SKILL)), store.prior)
                _, final = grouped_ema(codes, y[has], start, EMA_SKILL)
                store.skill_ema = with_capacity(final)
                n_p = len(uniq_pairs)
                zeros = np.zeros((n_p, 2 * len(DECAY_SKILL)))
                _, final, fclock = grouped_decay(
                    codes, y[has], clock[has], zeros, np.zeros(n_p), DECAY_SKILL
                )
                store.skill_dec, store.skill_clock = with_capacity(final), with_capacity(fclock)
                _, final = grouped_streaks(codes, y[has], np.zeros((n_p, 2)))
                store.skill_streak = with_capacity(final)
        return store

    # -- look-ups ---------------------------------------------------------------------
    def user_rows(self, users: np.ndarray) -> np.ndarray:
        """Row of each user id in the tables (-1 = no history)."""
        get = self.user_index.get
        return np.fromiter((get(u, -1) for u in users), dtype=np.int64, count=len(users))

    def pair_rows(self, level: str, user_rows: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """Row of each (user row, key) pair of ``level`` ("skill"/"item"); -1 if none."""
        index: dict[tuple[int, str], int] = getattr(self, f"{level}_index")
        return np.fromiter(
            (
                index.get((int(u), k), -1) if (u >= 0 and k is not None) else -1
                for u, k in zip(user_rows, keys, strict=True)
            ),
            dtype=np.int64,
            count=len(keys),
        )

    def pair_table(self, level: str, rows: np.ndarray, table: str = "cnt") -> np.ndarray:
        """Stored counters (``table="cnt"``) or skill moving averages (``"ema"``) of pair rows;
        zeros / the prior where a row is -1."""
        data: np.ndarray = getattr(self, f"{level}_{table}")
        fill = self.prior if table == "ema" else 0.0
        return np.where((rows >= 0)[:, None], data[np.maximum(rows, 0)], fill)

    def user_start(self, user_rows: np.ndarray) -> tuple[np.ndarray, ...]:
        """(counters, recent_y, recent_yn, recent_t, recent_tn, ema, recency-weighted counts,
        runs) of user rows (-1: new)."""
        has = user_rows >= 0
        r = np.maximum(user_rows, 0)

        def pick(table: np.ndarray, fill: float = 0.0) -> np.ndarray:
            shape = (-1,) + (1,) * (table.ndim - 1)
            return np.where(has.reshape(shape), table[r], fill)

        return (
            pick(self.user_cnt).astype(float),
            pick(self.recent_y).astype(float),
            pick(self.recent_yn).astype(np.int64),
            pick(self.recent_t).astype(float),
            pick(self.recent_tn).astype(np.int64),
            pick(self.user_ema, self.prior).astype(float),
            pick(self.user_dec).astype(float),
            pick(self.user_streak).astype(float),
        )

    def single(self, user: str, skill: str | None, item: str) -> tuple[np.ndarray, ...]:
        """Everything the features of one (user, skill, item) need, as 1-row arrays:
        user / skill / item counters, recent outcome sum and count, recent time-residual sum
        and count, user and skill moving averages, user and skill recency-weighted counts,
        and the (1, 4) current runs of correct / wrong answers of the user and the skill."""
        r = self.user_index.get(user)
        zeros = np.zeros((1, N_COUNTERS))
        skill_ema = np.full((1, len(EMA_SKILL)), self.prior)
        skill_dec = np.zeros((1, 2 * len(DECAY_SKILL)))
        if r is None:
            nil = np.zeros(1)
            user_ema = np.full((1, len(EMA_USER)), self.prior)
            user_dec = np.zeros((1, 2 * len(DECAY_USER)))
            runs = np.zeros((1, 4))
            return (
                zeros,
                zeros,
                zeros,
                nil,
                nil,
                nil,
                nil,
                user_ema,
                skill_ema,
                user_dec,
                skill_dec,
                runs,
            )
        s = self.skill_index.get((r, skill)) if skill is not None else None
        i = self.item_index.get((r, item))
        yn = int(self.recent_yn[r])
        tn = int(self.recent_tn[r])
        if s is not None:
            clock = self.user_cnt[r : r + 1, C] + self.user_cnt[r : r + 1, W]
            skill_dec = read_decay(
                self.skill_dec[s : s + 1], self.skill_clock[s : s + 1], clock, DECAY_SKILL
            )
        return (
            self.user_cnt[r : r + 1],
            self.skill_cnt[s : s + 1] if s is not None else zeros,
            self.item_cnt[i : i + 1] if i is not None else zeros,
            np.array([_sum_oldest_first(self.recent_y[r], yn)]),
            np.array([float(yn)]),
            np.array([_sum_oldest_first(self.recent_t[r], tn)]),
            np.array([float(tn)]),
            self.user_ema[r : r + 1],
            self.skill_ema[s : s + 1] if s is not None else skill_ema,
            self.user_dec[r : r + 1],
            skill_dec,
            np.hstack(
                [
                    self.user_streak[r : r + 1],
                    self.skill_streak[s : s + 1] if s is not None else zeros[:, :2],
                ]
            ),
        )

    def batch_recency(
        self,
        codes: np.ndarray,
        user_start: tuple[np.ndarray, np.ndarray, np.ndarray],
        skill_codes: np.ndarray,
        skill_rows: np.ndarray,
        y: np.ndarray,
        u_cnt: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """User and skill recency-weighted counts and current runs (``correctness_features``
        layout) before each row of a frame sorted by user.

        ``codes`` are the rows' contiguous user codes, ``user_start`` the users' stored
        (counters, recency-weighted counts, runs), ``skill_codes`` the rows' (user, skill) codes
        (-1: none) with their stored rows ``skill_rows`` (-1: new), ``u_cnt`` each row's user
        counters before it (its ``C + W`` is the decay clock).
        """
        clock = u_cnt[:, C] + u_cnt[:, W]
        u0, udec0, ustreak0 = user_start
        user_dec, _, _ = grouped_decay(codes, y, clock, udec0, u0[:, C] + u0[:, W], DECAY_USER)
        n_pairs = int(skill_codes.max()) + 1 if len(skill_codes) else 0
        start = np.zeros((max(n_pairs, 0), 2 * len(DECAY_SKILL)))
        start_clock = np.zeros(max(n_pairs, 0))
        runs = np.zeros((max(n_pairs, 0), 2))
        stored = skill_rows >= 0
        start[skill_codes[stored]] = self.skill_dec[skill_rows[stored]]
        start_clock[skill_codes[stored]] = self.skill_clock[skill_rows[stored]]
        runs[skill_codes[stored]] = self.skill_streak[skill_rows[stored]]
        skill_dec, _, _ = grouped_decay(skill_codes, y, clock, start, start_clock, DECAY_SKILL)
        user_runs, _ = grouped_streaks(codes, y, ustreak0)
        skill_runs, _ = grouped_streaks(skill_codes, y, runs)
        return user_dec, skill_dec, np.hstack([user_runs, skill_runs])

    # -- online learning ----------------------------------------------------------------
    def add(
        self,
        user: str,
        skill: str | None,
        item: str,
        contrib: np.ndarray,
        y: float,
        res_t: float,
    ) -> None:
        """Learn one attempt with counter increments ``contrib`` (O(1))."""
        r = self._row(
            self.user_index,
            user,
            (
                "user_cnt",
                "recent_y",
                "recent_yn",
                "recent_t",
                "recent_tn",
                "user_ema",
                "user_dec",
                "user_streak",
            ),
            ("user_ema",),
        )
        clock = float(self.user_cnt[r, C] + self.user_cnt[r, W])
        self.user_cnt[r] += contrib
        _decay_step(self.user_dec, r, DECAY_USER, y, 0.0)
        _streak_step(self.user_streak, r, y)
        _push(self.recent_y, self.recent_yn, r, y)
        if not math.isnan(res_t):
            _push(self.recent_t, self.recent_tn, r, res_t)
        _ema_step(self.user_ema, r, EMA_USER, y)
        if skill is not None:
            s = self._row(
                self.skill_index,
                (r, skill),
                ("skill_cnt", "skill_ema", "skill_dec", "skill_clock", "skill_streak"),
                ("skill_ema",),
            )
            self.skill_cnt[s] += contrib
            _ema_step(self.skill_ema, s, EMA_SKILL, y)
            _decay_step(self.skill_dec, s, DECAY_SKILL, y, clock - self.skill_clock[s])
            self.skill_clock[s] = clock + 1.0
            _streak_step(self.skill_streak, s, y)
        i = self._row(self.item_index, (r, item), ("item_cnt",))
        self.item_cnt[i] += contrib

    def _row(
        self,
        index: dict[Any, int],
        key: Any,
        tables: tuple[str, ...],
        ema_tables: tuple[str, ...] = (),
    ) -> int:
        """Row of ``key``, appending one (tables grown by doubling) if it is new."""
        row = index.get(key)
        if row is None:
            row = len(index)
            index[key] = row
            for attr in tables:
                table = getattr(self, attr)
                if row >= len(table):
                    grown = np.zeros((2 * len(table), *table.shape[1:]), dtype=table.dtype)
                    grown[: len(table)] = table
                    setattr(self, attr, grown)
            for attr in ema_tables:
                getattr(self, attr)[row] = self.prior
        return row

    # -- persistence --------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """JSON values and arrays (id vocabularies as lists, pairs as integer codes)."""
        n_u = len(self.user_index)
        state: dict[str, Any] = {
            "hist_prior": self.prior,
            "hist_user_ids": list(self.user_index),
            "hist_user_cnt": self.user_cnt[:n_u].copy(),
            "hist_user_ema": self.user_ema[:n_u].copy(),
            "hist_user_dec": self.user_dec[:n_u].copy(),
            "hist_user_streak": self.user_streak[:n_u].copy(),
            "hist_recent_y": self.recent_y[:n_u].copy(),
            "hist_recent_yn": self.recent_yn[:n_u].copy(),
            "hist_recent_t": self.recent_t[:n_u].copy(),
            "hist_recent_tn": self.recent_tn[:n_u].copy(),
        }
        for level in ("skill", "item"):
            index: dict[tuple[int, str], int] = getattr(self, f"{level}_index")
            vocab: dict[str, int] = {}
            users = np.empty(len(index), dtype=np.int64)
            keys = np.empty(len(index), dtype=np.int64)
            for (u, k), row in index.items():
                users[row] = u
                keys[row] = vocab.setdefault(k, len(vocab))
            state[f"hist_{level}_vocab"] = list(vocab)
            state[f"hist_{level}_user"] = users
            state[f"hist_{level}_key"] = keys
            state[f"hist_{level}_cnt"] = getattr(self, f"{level}_cnt")[: len(index)].copy()
        n_s = len(self.skill_index)
        state["hist_skill_ema"] = self.skill_ema[:n_s].copy()
        state["hist_skill_dec"] = self.skill_dec[:n_s].copy()
        state["hist_skill_clock"] = self.skill_clock[:n_s].copy()
        state["hist_skill_streak"] = self.skill_streak[:n_s].copy()
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> HistoryStore:
        """Inverse of ``to_state``; raises ``ValueError`` on inconsistent shapes."""
        store = cls(float(state["hist_prior"]))
        users = [str(u) for u in state["hist_user_ids"]]
        n_u = len(users)
        if len(set(users)) != n_u:
            raise ValueError("duplicate user ids in the history state")
        store.user_index = {u: k for k, u in enumerate(users)}
        shapes = {
            "hist_user_cnt": (n_u, N_COUNTERS),
            "hist_recent_y": (n_u, RECENT),
            "hist_recent_yn": (n_u,),
            "hist_recent_t": (n_u, RECENT),
            "hist_recent_tn": (n_u,),
            "hist_user_ema": (n_u, len(EMA_USER)),
            "hist_user_dec": (n_u, 2 * len(DECAY_USER)),
            "hist_user_streak": (n_u, 2),
        }
        arrays = {}
        for key, shape in shapes.items():
            arr = np.asarray(state[key])
            if arr.shape != shape or not np.isfinite(arr).all():
                raise ValueError(f"{key} has shape {arr.shape}, expected {shape}")
            arrays[key] = arr
        store.user_cnt = with_capacity(arrays["hist_user_cnt"].astype(float))
        store.recent_y = with_capacity(arrays["hist_recent_y"].astype(float))
        store.recent_yn = with_capacity(arrays["hist_recent_yn"].astype(np.int64))
        store.recent_t = with_capacity(arrays["hist_recent_t"].astype(float))
        store.recent_tn = with_capacity(arrays["hist_recent_tn"].astype(np.int64))
        store.user_ema = with_capacity(arrays["hist_user_ema"].astype(float))
        store.user_dec = with_capacity(arrays["hist_user_dec"].astype(float))
        store.user_streak = with_capacity(arrays["hist_user_streak"].astype(float))
        if ((store.recent_yn < 0) | (store.recent_yn > RECENT)).any():
            raise ValueError("recent buffer counts out of range")
        for level in ("skill", "item"):
            vocab = [str(v) for v in state[f"hist_{level}_vocab"]]
            u = np.asarray(state[f"hist_{level}_user"], dtype=np.int64)
            k = np.asarray(state[f"hist_{level}_key"], dtype=np.int64)
            cnt = np.asarray(state[f"hist_{level}_cnt"], dtype=float).reshape(-1, N_COUNTERS)
            if not (len(u) == len(k) == len(cnt)) or not np.isfinite(cnt).all():
                raise ValueError(f"inconsistent {level} history arrays")
            if len(u) and (u.min() < 0 or u.max() >= n_u or k.min() < 0 or k.max() >= len(vocab)):
                raise ValueError(f"{level} history refers to unknown users or ids")
            index = {(int(a), vocab[b]): row for row, (a, b) in enumerate(zip(u, k, strict=True))}
            if len(index) != len(u):
                raise ValueError(f"duplicate {level} pairs in the history state")
            setattr(store, f"{level}_index", index)
            setattr(store, f"{level}_cnt", with_capacity(cnt))
        n_s = len(store.skill_index)
        for key, shape in (
            ("ema", (n_s, len(EMA_SKILL))),
            ("dec", (n_s, 2 * len(DECAY_SKILL))),
            ("clock", (n_s,)),
            ("streak", (n_s, 2)),
        ):
            arr = np.asarray(state[f"hist_skill_{key}"], dtype=float)
            if arr.shape != shape or not np.isfinite(arr).all():
                raise ValueError(f"hist_skill_{key} has shape {arr.shape}, expected {shape}")
            setattr(store, f"skill_{key}", with_capacity(arr))
        return store


def _sum_oldest_first(buffer: np.ndarray, n: int) -> float:
    total = 0.0
    for v in buffer[RECENT - n :].tolist() if n else ():
        total += v
    return total


def _ema_step(table: np.ndarray, row: int, alphas: tuple[float, ...], y: float) -> None:
    for k, a in enumerate(alphas):
        table[row, k] = (1.0 - a) * table[row, k] + a * y


def _decay_step(
    table: np.ndarray, row: int, lambdas: tuple[float, ...], y: float, gap: float
) -> None:
    """Fade a row's recency-weighted counts over ``gap`` answers elsewhere, then count ``y``."""
    k = len(lambdas)
    for j, lam in enumerate(lambdas):
        fade = lam**gap
        table[row, j] = lam * fade * table[row, j] + y
        table[row, k + j] = lam * fade * table[row, k + j] + (1.0 - y)


def _streak_step(table: np.ndarray, row: int, y: float) -> None:
    """Lengthen the run of ``y``'s kind and end the other (columns: correct, wrong)."""
    table[row, 0] = y * (table[row, 0] + 1.0)
    table[row, 1] = (1.0 - y) * (table[row, 1] + 1.0)


def answered_before(user_codes: np.ndarray, contrib: np.ndarray) -> np.ndarray:
    """Each row's count of the user's earlier answered rows in the frame (the decay clock)."""
    return grouped_exclusive(user_codes, contrib[:, [C, W]]).sum(axis=1)


def _push(buffers: np.ndarray, counts: np.ndarray, row: int, value: float) -> None:
    buffers[row, :-1] = buffers[row, 1:]
    buffers[row, -1] = value
    counts[row] = min(int(counts[row]) + 1, RECENT)
