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
    O(1) state too, and computed in batch by a segmented scan of affine maps.

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

_LEVEL_FEATURES = ("log_correct", "neg_log_wrong", "rate", "log_wcorrect", "neg_log_wwrong", "adj")
CORRECTNESS_FEATURES: tuple[str, ...] = (
    *(f"{level}_{name}" for level in ("user", "skill", "item") for name in _LEVEL_FEATURES),
    "recent_rate",
    *(f"user_ema{a}" for a in EMA_USER),
    *(f"skill_ema{a}" for a in EMA_SKILL),
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
) -> np.ndarray:
    """The monotone correctness features (``CORRECTNESS_FEATURES``) from counters.

    ``u``, ``s`` and ``i`` are (n, N_COUNTERS) counters of the user, the (user, skill) and the
    (user, item) before the attempt; ``recent_*`` the sum and count of the last outcomes;
    ``user_ema`` (n, len(EMA_USER)) and ``skill_ema`` (n, len(EMA_SKILL)) the moving averages.
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
    return np.column_stack([*cols, user_ema, skill_ema])


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
    each row (rows without a group get 0) and the final value of each group. The recurrence is
    evaluated as a segmented Hillis-Steele scan of affine maps: O(n log(longest group)).
    """
    n, k = len(codes), len(alphas)
    before = np.zeros((n, k))
    final = start.copy()
    valid = np.flatnonzero(codes >= 0)
    if len(valid) == 0:
        return before, final
    order = valid[np.argsort(codes[valid], kind="stable")]
    g = codes[order]
    yy = y[order]
    known = ~np.isnan(yy)
    first = np.r_[True, g[1:] != g[:-1]]
    seg_start = np.maximum.accumulate(np.where(first, np.arange(len(g)), 0))
    pos_in_seg = np.arange(len(g)) - seg_start
    alpha = np.asarray(alphas, dtype=float)[None, :]
    mul = np.where(known[:, None], 1.0 - alpha, 1.0)
    add = np.where(known[:, None], alpha * np.nan_to_num(yy)[:, None], 0.0)
    step = 1
    while step <= int(pos_in_seg.max()):
        ok = pos_in_seg >= step
        idx = np.flatnonzero(ok)
        prev = idx - step
        add_new = add.copy()
        add_new[idx] = mul[idx] * add[prev] + add[idx]
        mul[idx] = mul[idx] * mul[prev]
        add = add_new
        step *= 2
    after = mul * start[g] + add
    prior = np.where(first[:, None], start[g], np.roll(after, 1, axis=0))
    before[order] = prior
    last = np.r_[g[1:] != g[:-1], True]
    final[g[last]] = after[last]
    return before, final


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
        """(counters, recent_y, recent_yn, recent_t, recent_tn, ema) of user rows (-1: new)."""
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
        )

    def single(self, user: str, skill: str | None, item: str) -> tuple[np.ndarray, ...]:
        """Everything the features of one (user, skill, item) need, as 1-row arrays:
        user / skill / item counters, recent outcome sum and count, recent time-residual sum
        and count, user and skill moving averages."""
        r = self.user_index.get(user)
        zeros = np.zeros((1, N_COUNTERS))
        skill_ema = np.full((1, len(EMA_SKILL)), self.prior)
        if r is None:
            nil = np.zeros(1)
            user_ema = np.full((1, len(EMA_USER)), self.prior)
            return zeros, zeros, zeros, nil, nil, nil, nil, user_ema, skill_ema
        s = self.skill_index.get((r, skill)) if skill is not None else None
        i = self.item_index.get((r, item))
        yn = int(self.recent_yn[r])
        tn = int(self.recent_tn[r])
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
        )

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
            ("user_cnt", "recent_y", "recent_yn", "recent_t", "recent_tn", "user_ema"),
            ("user_ema",),
        )
        self.user_cnt[r] += contrib
        _push(self.recent_y, self.recent_yn, r, y)
        if not math.isnan(res_t):
            _push(self.recent_t, self.recent_tn, r, res_t)
        _ema_step(self.user_ema, r, EMA_USER, y)
        if skill is not None:
            s = self._row(self.skill_index, (r, skill), ("skill_cnt", "skill_ema"), ("skill_ema",))
            self.skill_cnt[s] += contrib
            _ema_step(self.skill_ema, s, EMA_SKILL, y)
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
        state["hist_skill_ema"] = self.skill_ema[: len(self.skill_index)].copy()
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
        ema = np.asarray(state["hist_skill_ema"], dtype=float)
        if ema.shape != (len(store.skill_index), len(EMA_SKILL)) or not np.isfinite(ema).all():
            raise ValueError(f"hist_skill_ema has shape {ema.shape}")
        store.skill_ema = with_capacity(ema)
        return store


def _sum_oldest_first(buffer: np.ndarray, n: int) -> float:
    total = 0.0
    for v in buffer[RECENT - n :].tolist() if n else ():
        total += v
    return total


def _ema_step(table: np.ndarray, row: int, alphas: tuple[float, ...], y: float) -> None:
    for k, a in enumerate(alphas):
        table[row, k] = (1.0 - a) * table[row, k] + a * y


def _push(buffers: np.ndarray, counts: np.ndarray, row: int, value: float) -> None:
    buffers[row, :-1] = buffers[row, 1:]
    buffers[row, -1] = value
    counts[row] = min(int(counts[row]) + 1, RECENT)
