"""Baseline learner model: shrunken item / skill / global means plus small per-user offsets.

What it is
    Correctness is the item's success rate shrunk towards its skill's rate, which is shrunk
    towards the global rate (a beta-binomial / empirical-Bayes hierarchy with pseudo-counts
    ``k_item`` and ``k_skill``; the item rates' pseudo-count is learned, ``_learn_item_rates``).
    A per-user offset in logit space makes predictions follow
    the user's own history: a Laplace filter from a zero-mean prior, one Newton step on the
    posterior per answer, taken at the current offset (``_offset_filter``), so an answer
    always moves it in the answer's direction. Response time
    uses the same hierarchy for the mean and the residual variance of ``log(rt_seconds)``,
    plus a shrunken per-user log-time offset; the user's own times on the item pull that
    towards their mean there (a student much faster at easy tasks than at hard ones), and
    their own scatter there narrows or widens the range (``k_pair_var``). The median is
    ``exp(mu)`` and the 80 % interval ``exp(mu ± Z80 · sigma)``.

Why
    It is the transparent reference point that every other model (LNIRT, BKT, neural) must
    beat, and the last link of the serving chain: it has no iterative fitting that can fail,
    fits ~300k rows in under two seconds, keeps a constant-size state per user, item
    and skill (``update`` is O(1)), and always answers, for unknown users and items too.

Everything is a sufficient statistic (counts and sums), so ``fit`` is a handful of
``bincount`` calls and ``update(row)`` adds one row to a few counters, in the same order
``fit`` would, so fitting on ``n`` rows and updating with row ``n + 1`` gives exactly the
item / skill / global statistics of fitting on all ``n + 1`` rows (for plausible times, which
no winsorisation touches).

Guessing floor
    On multiple-choice items even a weak student answers right by luck, so a logit offset
    that pushes a weak student's chance towards 0 overshoots. The user offset is therefore
    applied above a floor ``c``: ``p = c_i + (1 - c_i) · sigmoid(logit(q) + delta)`` with
    ``q = (p_item - c_i) / (1 - c_i)`` and ``c_i = min(c, p_item / 2)`` (an item solved
    less than twice as often as the floor caps it at half its rate). With no offset
    (``delta = 0``) this is ``p_item`` itself: the floor changes how far a student's own
    record moves the prediction, never the population rate. ``fit`` learns ``c`` from
    ``FLOOR_GRID`` by the same one-step-ahead replay of the training users as the prior
    strength (3PL's lower asymptote, Birnbaum 1968, as one global number): MaRs-IB's
    four-option puzzles get about 0.2, step-by-step tutor data 0.

Robust time statistics
    Times follow the plausibility rule of ``models.base`` (below 1 s counts as 1 s). Each log
    time is winsorised against its item's centre and spread before it is added (in ``fit`` the
    item's median and MAD, in ``update`` the current shrunk mean and sd), and only a user's
    first ``POP_ATTEMPTS_PER_USER_ITEM`` timed attempts at an item enter the shared item /
    skill / global time sums. So ten absurd completions by one student move another student's
    predicted median by a bounded, small amount; the student's own time offset and their
    times on the item (``k_pair_time``) still learn from every attempt. So a student who is
    nearly all of an item's data is predicted from their own times on it, not from the one
    attempt the shared sums keep.

Levels
    In SmartStudy an item is a (topic, difficulty) pair, and a difficulty means the same
    thing in every topic. With ``item_level_sep`` an item's level is read from its id, and an
    item with little data is shrunk towards its skill *at its level*: the skill's rate (and
    log-time mean) with the level's effect, in the logit (and in log time), put in. A level's
    effect is the level's own rate (and log-time mean) against the global one, shrunk with a
    strength learned from how far the levels lie apart beyond their noise (empirical Bayes,
    ``_level_strengths``): only a student's first time at an item is shared, so a small
    class has few shared times per level, and a fixed prior would drown clear differences.
    A skill's rate mixes its levels in the proportions practised, so that mix of effects is
    taken out first (and the skill is shrunk towards the global rate moved by it). So a topic
    nobody has practised is predicted at the levels' rates, harder and slower at "hard", and
    one practised only at "easy" does not make its "hard" look easy. Counts per level and
    per (skill, level) are sums like the others, so ``update`` stays O(1).
    How much of a level's effect on the rate holds within a skill is learned too
    (``level_transfer_``, ``_learn_item_rates``): where a difficulty label means the same in
    every topic it is about 1; where one topic's "hard" is much like its "easy" (a label
    made from few outcomes, say), the data choose less, so a cell with little data is not
    pushed further from its topic than such cells turn out to lie.

Interval scale
    Real times have heavier tails than a log-normal, so ``exp(mu ± Z80 · sigma)`` can hold
    fewer than 80 % of them. ``fit`` therefore replays every timed training row one step
    ahead, as ``predict`` would have served it: item level from the rows before it, user
    offset from the user's earlier rows only. It divides each residual by its predicted sd
    and takes the 80 % quantile of the absolute values. That quantile over Z80 is the
    factor on sigma that makes the interval hold 80 % of the training times (conformal
    prediction on one-step-ahead residuals). The factor is shrunk towards 1 (20 pseudo-rows)
    and kept in [0.5, 3]. Only the width changes; the median stays ``exp(mu)``. With too
    little data the factor is 1, and ``update`` leaves it alone.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Self

import numpy as np
import pandas as pd

from smartstudy.data.schema import (
    id_string,
    parse_attempt,
    sort_for_sequences,
    validate_interactions,
)
from smartstudy.models._arrays import grouped_sums, logit, lookup, sigmoid, with_capacity
from smartstudy.models.base import (
    POP_ATTEMPTS_PER_USER_ITEM,
    PREDICTION_COLUMNS,
    Z80,
    LearnerModel,
    log_normal_predictions,
    plain_attempts,
    plausible_log_times,
    population_weights,
    winsorise,
    winsorise_one,
)

# Time prediction when training held no usable time at all: a minute, and a log-sd of 1
# (80 % interval ≈ 17 s .. 216 s), wide enough not to pretend knowledge we do not have.
DEFAULT_TIME_MEDIAN_S = 60.0
DEFAULT_LOG_TIME_SD = 1.0
# Pseudo-attempts of the global level at those defaults (and at p = 0.5 for correctness).
GLOBAL_PRIOR_WEIGHT = 1.0
# Probabilities are kept away from 0 and 1 so that log loss stays finite and logits exist.
P_CLIP = 1e-4
# Floor on a log-time variance: integer-second data can make an item's times all equal.
MIN_LOG_TIME_VAR = 1e-4

# Candidate prior strengths (precision of the logit offset; pseudo-count of the log-time
# offset) that ``fit`` chooses from: 1/8 to 32 in steps of a fourth of a doubling, fine
# enough that refits on growing data move the choice gradually, not in jumps of 2x.
PRIOR_GRID: tuple[float, ...] = tuple(float(2.0 ** (k / 4)) for k in range(-12, 21))
# Candidate pseudo-counts of the (user, item) log-time offset: the same grid, or none at all
# (inf: the offset is off) where a user's times on one item say nothing beyond their others.
PAIR_TIME_GRID: tuple[float, ...] = (*PRIOR_GRID, math.inf)
# Candidate pseudo-attempts of the prior on a user's own scatter of log times at an item
# (``k_pair_var``): the same grid, or inf (the model's scatter, whatever the user's own).
PAIR_VAR_GRID: tuple[float, ...] = (*PRIOR_GRID, math.inf)
# Candidate guessing floors (``fit`` keeps the one whose replay predicts best); 0 = none.
FLOOR_GRID: tuple[float, ...] = tuple(k / 20 for k in range(8))
# Candidate shares of a level's effect on the rate that hold within a skill (``fit`` keeps
# the one whose item-level predictions of the training rows are best; see "Levels").
LEVEL_TRANSFER_GRID: tuple[float, ...] = tuple(k / 10 for k in range(11))
# Candidate pseudo-attempts with which an item's rate is shrunk towards its parent (``fit``
# keeps the one whose item-level predictions of the training rows are best): 1 to 256 in
# steps of a fourth of a doubling.
ITEM_RATE_GRID: tuple[float, ...] = tuple(float(2.0 ** (k / 4)) for k in range(33))
PRIOR_MIN_USERS = 20
PRIOR_MIN_ROWS = 200
# The learned interval scale: pseudo-rows of its zero-log prior and the range it may take.
# The log of an 80 % quantile of |z| estimated from n normal residuals has a sampling sd
# of about sqrt(0.8 · 0.2 / n) / (2 φ(Z80)) / Z80 ≈ 0.89 / sqrt(n), a variance of 0.8 / n.
# With a prior sd of 0.2 on log s (a scale between 0.67 and 1.5 at two sd), empirical Bayes
# gives log s the weight n / (n + 0.8 / 0.04), i.e. 20 pseudo-rows.
SCALE_PRIOR_ROWS = 20.0
SCALE_BOUNDS = (0.5, 3.0)

# Columns of the item / skill / global statistics: attempts, successes, attempts with a
# time, sum of log-times, sum of squared log-times.
_N, _S, _TN, _TSUM, _TSQ = range(5)
_N_STATS = 5
# Columns of the per-user statistics: the logit offset and the Fisher information gathered
# about it (``_offset_filter``), the sum of log-time residuals, attempts with a time.
_U_OFFSET, _U_INFO, _U_TRES, _U_TN = range(4)
_N_USER_STATS = 4
# Columns of a (user, item) pair's time sums (``pair_time_``): sum of log times, timed
# attempts, sum of squared log times.
_N_PAIR_STATS = 3
# How stored user statistics hold the correctness offset. Versions stored before the filter
# held the sums of the score and information at zero (``_user_contributions``), from which
# ``_set_state`` derives the offset.
_OFFSET_FORM = "filter"
# Columns of ``_user_contributions``: score and information at a zero offset, log-time
# residual, timed.
_C_SCORE, _C_INFO = 0, 1
# Key of a (user, item) pair in ``pair_timed_`` and ``pair_time_`` (the pair's sum of log
# times and timed attempts): user index * _PAIR_BASE + item index.
_PAIR_BASE = 1 << 32
# The smallest positive float: a floor that keeps a probability out of a division by zero.
_TINY = float(np.finfo(float).tiny)
# fit()'s fixed-point winsorisation converges geometrically (each pass shrinks the change
# about tenfold on real data); it stops once no log time moves by more than rounding.
_MAX_WINSOR_PASSES = 50
_WINSOR_TOLERANCE = 1e-12
# The strength of a level that has no effect: pseudo-attempts enough to drown any data.
_NO_EFFECT = 1e12


class Baseline(LearnerModel):
    """Hierarchical shrunken means for correctness and log-time with per-user offsets.

    Parameters
    ----------
    k_item:
        Pseudo-count pulling an item's rate (and log-time mean / variance) towards its
        skill. 8 is what a beta prior gives when item success rates scatter with a standard
        deviation of about 0.15 around 0.7 (``m(1-m)/v - 1 = 0.21/0.0225 - 1 ≈ 8``), typical
        of test and tutor data: an item's own data dominate after about eight attempts.
        With ``learn_user_prior`` the pseudo-count of the item's *rate* is learned
        (``ITEM_RATE_GRID``, by the one-step-ahead log-likelihood of the training rows at the
        item level, under a hyperprior centred on ``k_item`` with an sd of one doubling);
        the log-time mean and variance keep ``k_item``.
    k_skill:
        Pseudo-count pulling a skill's statistics towards the global ones. Skills differ
        less from each other than items do and usually have many attempts, so a slightly
        stronger 10 only matters for rare skills.
    user_prior_precision:
        Precision of the zero-mean prior on a user's logit offset (1.0 = prior standard
        deviation of one logit, the usual spread of abilities in IRT). ``None`` disables
        user offsets (for correctness and for time). With ``learn_user_prior`` it is only
        the starting value, used while the training data are too few to learn from.
    k_user_time:
        Pseudo-count of a user's log-time offset: the offset is the mean residual of the
        user's log-times shrunk by ``n / (n + k_user_time)``. 5 fits the usual ratio of
        within-person to between-person log-time variance (about 4–6). ``None`` disables
        time offsets only.
    k_pair_time:
        Pseudo-attempts with which a user's own log-time mean on one item is shrunk towards
        the prediction from the item level and the user's overall offset:
        ``(sum + k mu) / (n + k)`` over the user's ``n`` timed attempts there. Only a
        user's first timed attempt at an item enters the item's shared time statistics
        (robust learning), so without it a student with a hundred tasks at one item would
        be predicted the population's time there. ``None`` disables it. With
        ``learn_user_prior`` it is learned like ``k_user_time`` (``PAIR_TIME_GRID``, where
        ``inf`` turns it off); the default, the same 5, serves until there are enough users
        to learn it from (a class of a few students, whose items' shared time statistics
        hold one attempt per student).
    k_pair_var:
        Pseudo-attempts of the prior on how widely a user's own log times scatter at one
        item. The model's own scatter there (the item's, less the differences between
        users) is the prior; after ``n`` timed attempts with a sum of squared deviations
        ``ss`` from their own mean, the scatter is ``(k · model + ss) / (k + n - 1)``, and the
        interval's variance is scaled by its ratio to the model's. So a student whose times
        at an item are steady gets a range as narrow as their times, and an erratic one a
        wider range. ``None`` disables it. With ``learn_user_prior`` it is learned
        (``PAIR_VAR_GRID``, where ``inf`` turns it off) by the predictive likelihood of the
        training times, one step ahead; the default 5 serves until there are enough.
    learn_user_prior:
        Learn the strength of both user priors from the training data (empirical Bayes):
        ``fit`` replays each training user's history one step ahead and keeps the prior
        precision (from ``PRIOR_GRID``) with the best predictive log-likelihood, and the
        time pseudo-count with the smallest squared log-time error. The precision and the
        floor are first scored with the offset's closed form from sums at a zero offset
        (fast for every pair), then the precision is re-chosen near that one by replaying
        the filter that serves (``_filtered_precision``). So how far a new
        student's first answers move their prediction is what the population's own spread
        of abilities justifies, not a hand-set constant. The same flag learns how strongly an
        item's rate is shrunk (``k_item``) and, with levels, how much of a level's effect
        holds within a skill (``item_level_sep``). Needs ``PRIOR_MIN_USERS`` users and
        ``PRIOR_MIN_ROWS`` rows; below that the constructor's values are kept.
    guess_floor:
        Lower asymptote of a student's chance on an item, in [0, 0.5) (see "Guessing floor"
        in the module docstring); 0 is a plain logit offset. With ``learn_guess_floor`` it is
        only the starting value, kept while the data are too few to learn from.
    learn_guess_floor:
        Learn the floor from the training data with the user priors (``FLOOR_GRID``); needs
        the same data as ``learn_user_prior``, and user offsets (``user_prior_precision``).
    learn_interval_scale:
        Widen or narrow the 80 % time interval by a factor learned in ``fit`` from the
        one-step-ahead residuals of the training rows, so that it holds 80 % of them (see
        the module docstring). Needs as much data as ``learn_user_prior``; below that, or
        when False, the factor is 1.
    item_level_sep:
        Items whose id ends in this separator and a label (SmartStudy's items are
        ``topic:difficulty``, and the app sets ``":"``) share that label's level: an item
        with little data is shrunk towards its skill *at its level* (see "Levels" in the
        module docstring), so a topic nobody has practised yet is predicted harder at
        "hard" than at "easy". ``None`` (the default): no levels.
    """

    name = "baseline"
    predicts_time = True

    def __init__(
        self,
        k_item: float = 8.0,
        k_skill: float = 10.0,
        user_prior_precision: float | None = 1.0,
        k_user_time: float | None = 5.0,
        learn_user_prior: bool = True,
        learn_interval_scale: bool = True,
        guess_floor: float = 0.0,
        learn_guess_floor: bool = True,
        k_pair_time: float | None = 5.0,
        k_pair_var: float | None = 5.0,
        item_level_sep: str | None = None,
    ) -> None:
        self.k_item = k_item
        self.k_skill = k_skill
        self.user_prior_precision = user_prior_precision
        self.k_user_time = k_user_time
        self.learn_user_prior = learn_user_prior
        self.learn_interval_scale = learn_interval_scale
        self.guess_floor = guess_floor
        self.learn_guess_floor = learn_guess_floor
        self.k_pair_time = k_pair_time
        self.k_pair_var = k_pair_var
        self.item_level_sep = item_level_sep

    # -- hyperparameters -------------------------------------------------------------
    def _check_params(self) -> None:
        for name in ("learn_user_prior", "learn_interval_scale", "learn_guess_floor"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be True or False, got {value!r}")
        for name in ("k_item", "k_skill"):
            value = getattr(self, name)
            if not _is_positive_number(value):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        for name in ("user_prior_precision", "k_user_time", "k_pair_time", "k_pair_var"):
            value = getattr(self, name)
            if value is not None and not _is_positive_number(value):
                raise ValueError(f"{name} must be None or a positive finite number, got {value!r}")
        if not is_guess_floor(self.guess_floor):
            raise ValueError(f"guess_floor must be a number in [0, 0.5), got {self.guess_floor!r}")
        sep = self.item_level_sep
        if sep is not None and not (isinstance(sep, str) and sep):
            raise ValueError(f"item_level_sep must be None or a non-empty string, got {sep!r}")

    # -- fitting ---------------------------------------------------------------------
    def fit(self, df: pd.DataFrame) -> Self:
        """Learn all statistics from ``df`` (replacing any earlier state); return ``self``."""
        self._check_params()
        data = validate_interactions(df)
        y = data["correct"].to_numpy(dtype=float)
        lt, has_t = _log_times(data["rt_seconds"].to_numpy(dtype=float))

        item_codes, item_ids = pd.factorize(data["item_id"].to_numpy(dtype=object))
        skill_codes, skill_ids = pd.factorize(data["skill_id"].to_numpy(dtype=object))
        user_codes, user_ids = pd.factorize(data["user_id"].to_numpy(dtype=object))
        n_items, n_skills, n_users = len(item_ids), len(skill_ids), len(user_ids)
        has_skill = skill_codes >= 0
        # Absurd times are pulled into their item's band (median ± 2.5 robust sd), and only a
        # user's first few timed attempts at an item count in the shared time sums.
        pop_w = population_weights(user_codes, item_codes, has_t)
        lt = self._sequential_winsorise(lt, has_t, pop_w, item_codes)
        # Per-row contributions; bincount adds them in row order, exactly as update() would.
        contrib = _population_contributions(y, pop_w, has_t, lt)
        item_stats = grouped_sums(item_codes, contrib, n_items)
        skill_stats = grouped_sums(skill_codes[has_skill], contrib[has_skill], n_skills)
        global_stats = grouped_sums(np.zeros(len(y), dtype=np.int64), contrib, 1)[0]

        # An item's skill is the last one named for it (update() overwrites the same way).
        item_skill = (
            pd.Series(np.where(has_skill, skill_codes, np.nan))
            .groupby(item_codes)
            .last()
            .reindex(range(n_items))
            .fillna(-1)
            .to_numpy(dtype=np.int64)
        )

        self.item_index_ = {str(v): i for i, v in enumerate(item_ids)}
        self.skill_index_ = {str(v): i for i, v in enumerate(skill_ids)}
        self.user_index_ = {str(v): i for i, v in enumerate(user_ids)}
        self.item_stats_ = with_capacity(item_stats, n_items)
        self.item_skill_ = with_capacity(item_skill, n_items, fill=-1)
        self.skill_stats_ = with_capacity(skill_stats, n_skills)
        self.global_stats_ = np.asarray(global_stats, dtype=float)
        self.pair_timed_ = _pair_counts(user_codes, item_codes, has_t)

        # User offsets. Each training row's residual is taken against the item-level
        # prediction made from the rows before it, exactly as update() takes it, so that a
        # refit leaves every user's offset where online learning had put it: a new version
        # does not make a student's predictions jump.
        before = contrib.copy()
        before_item = pd.DataFrame(contrib).groupby(item_codes).cumsum().to_numpy() - before
        before_skill = np.zeros_like(contrib)
        if has_skill.any():
            before_skill[has_skill] = (
                pd.DataFrame(contrib[has_skill]).groupby(skill_codes[has_skill]).cumsum().to_numpy()
                - contrib[has_skill]
            )
        before_global = np.cumsum(contrib, axis=0) - contrib
        known = np.ones(len(y), dtype=bool)  # every training row's item is known
        levels = self._fit_levels(item_ids, item_codes, skill_codes, contrib)
        args = (before_global, before_skill, has_skill, before_item, known, levels)
        enough = n_users >= PRIOR_MIN_USERS and len(y) >= PRIOR_MIN_ROWS
        p_loo, mu_loo, var_loo = self._fit_item_rates(y, args, enough)
        user_contrib = self._fit_users(data, y, p_loo, user_codes, enough, (lt, has_t, mu_loo))
        pos = sort_for_sequences(data)
        earlier = np.empty_like(user_contrib)
        earlier[pos] = _exclusive_sums(user_codes[pos], user_contrib[pos])
        user_shift = self._user_time_shift(earlier)  # the user's offset before each row
        pair_codes = user_codes.astype(np.int64) * _PAIR_BASE + item_codes
        timed = user_contrib[:, _U_TN] > 0
        mu_pair, pair_earlier = self._fit_pairs(
            pos, pair_codes, (lt, timed), mu_loo + user_shift, enough
        )
        var_user = self._user_time_var(var_loo, earlier)
        factor = self._fit_pair_var(lt, timed, mu_pair, var_user, var_loo, pair_earlier, enough)
        self.interval_scale_ = 1.0
        if (
            self.learn_interval_scale
            and enough
            and int(user_contrib[:, _U_TN].sum()) >= PRIOR_MIN_ROWS
        ):
            self.interval_scale_ = self._learn_interval_scale(lt, mu_pair, var_user * factor, timed)
        self.fitted_ = True
        return self

    def _fit_item_rates(
        self, y: np.ndarray, args: tuple[Any, ...], enough: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Learn how the item rates are shrunk (with ``learn_user_prior`` and ``enough``
        data; else ``k_item`` and the whole level effect) and return ``_levels(*args)``
        with it: each training row's item level from the rows before it."""
        self.item_rate_k_, self.level_transfer_ = self.k_item, 1.0
        if self.learn_user_prior and enough:
            self._learn_item_rates(y, args)
        return self._levels(*args)

    def _learn_item_rates(self, y: np.ndarray, args: tuple[Any, ...]) -> None:
        """Empirical Bayes for how an item's rate is shrunk: the pseudo-attempts at its
        parent (``ITEM_RATE_GRID``) and, with levels, how much of a level's effect holds
        within a skill (``LEVEL_TRANSFER_GRID``). Each training row is predicted at the item
        level from the rows before it (``args``: ``_levels``' arguments for them), and the
        pair with the best log-likelihood is kept, under hyperpriors centred on ``k_item``
        (sd: one doubling) and on a whole level effect (sd 0.5: a difficulty means the same
        in every topic until the data say otherwise), which keep the choice steady while the
        data are few. The two are chosen in turn (transfer, strength, transfer)."""
        g, sk, has_sk, it, has_it, levels = args
        # The parent's logit is the skill's plus the transfer times the level's effect
        # against the skill's mix (``_level_parents``): two evaluations give both parts.
        self.level_transfer_ = 0.0
        base = logit(self._parents(g, sk, has_sk, levels)[0])
        self.level_transfer_ = 1.0
        effect = logit(self._parents(g, sk, has_sk, levels)[0]) - base if levels else 0.0
        n, s = it[:, _N], it[:, _S]

        def log_post(k: float, transfer: float) -> float:
            parent = sigmoid(base + transfer * effect)
            p = np.where(has_it, (s + k * parent) / (n + k), parent)
            p = np.clip(p, P_CLIP, 1.0 - P_CLIP)
            log_lik = float(np.sum(np.log(np.where(y > 0, p, 1.0 - p))))
            shift = math.log2(k / self.k_item)
            return log_lik - 0.5 * shift * shift - 2.0 * (transfer - 1.0) ** 2

        k, transfer = self.k_item, 1.0
        steps = (True, False, True) if levels else (False,)
        for choose_transfer in steps:
            if choose_transfer:
                transfer = max(LEVEL_TRANSFER_GRID, key=lambda t: log_post(k, t))
            else:
                k = max(ITEM_RATE_GRID, key=lambda c: log_post(c, transfer))
        self.item_rate_k_, self.level_transfer_ = float(k), float(transfer)

    def _fit_levels(
        self,
        item_ids: np.ndarray,
        item_codes: np.ndarray,
        skill_codes: np.ndarray,
        contrib: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Learn the levels' statistics (an item's level is the label its id ends in,
        ``item_level_sep``) and each skill's counts per level. Returns ``_levels``' level
        arguments for each training row as it stood before the row (None without levels)."""
        labels = [level_label(str(v), self.item_level_sep) for v in item_ids]
        item_level, level_ids = pd.factorize(np.array(labels, dtype=object))
        n_levels, n_skills = len(level_ids), len(self.skill_index_)
        row_level = item_level[item_codes] if len(item_ids) else np.zeros(0, dtype=np.int64)
        mix_rows = _mix_contributions(contrib, row_level, skill_codes, n_levels)
        has_skill = skill_codes >= 0
        skill_mix = np.zeros((n_skills, 2, n_levels))
        np.add.at(skill_mix, skill_codes[has_skill], mix_rows[has_skill])
        self.level_index_ = {str(v): i for i, v in enumerate(level_ids)}
        self.level_stats_ = grouped_sums(row_level, contrib, n_levels)
        self.item_level_ = with_capacity(item_level.astype(np.int64), len(item_ids), fill=-1)
        self.skill_mix_ = with_capacity(skill_mix, n_skills)
        if not n_levels:
            return None
        by_level = np.zeros((len(contrib), n_levels, _N_STATS))
        leveled = np.flatnonzero(row_level >= 0)
        by_level[leveled, row_level[leveled]] = contrib[leveled]
        before_mix = np.zeros_like(mix_rows)
        if has_skill.any():
            flat = mix_rows[has_skill].reshape(int(has_skill.sum()), -1)
            running = pd.DataFrame(flat).groupby(skill_codes[has_skill]).cumsum().to_numpy()
            before_mix[has_skill] = (running - flat).reshape(-1, 2, n_levels)
        return np.cumsum(by_level, axis=0) - by_level, before_mix, row_level

    def _user_time_shift(self, state: np.ndarray) -> np.ndarray:
        """The user's log-time offset of rows with user statistics ``state`` (0 where time
        offsets are off)."""
        precision, time_k = self._user_priors()
        if time_k is None or precision is None:
            return np.zeros(len(state))
        return state[:, _U_TRES] / (state[:, _U_TN] + time_k)

    def _user_time_var(self, var_item: np.ndarray, state: np.ndarray) -> np.ndarray:
        """The log-time variance of rows with item-level variance ``var_item`` once the user's
        offset is known from the timed attempts in ``state`` (``_personalise``)."""
        precision, time_k = self._user_priors()
        if time_k is None or precision is None:
            return var_item
        return var_item * time_k / (1.0 + time_k) * (1.0 + 1.0 / (state[:, _U_TN] + time_k))

    def _within_var(self, var_item: np.ndarray) -> np.ndarray:
        """The model's scatter of one user's log times at an item: the item's variance less
        the differences between users (``k_user_time`` is their ratio)."""
        time_k = self._user_priors()[1]
        return var_item if time_k is None else var_item * time_k / (1.0 + time_k)

    def _pair_nu(self) -> float | None:
        """The pseudo-attempts of the (user, item) scatter prior in use; None when off."""
        precision, time_k = self._user_priors()
        if time_k is None or precision is None:
            return None
        return getattr(self, "pair_var_nu_", None)

    def _fit_pair_var(
        self,
        lt: np.ndarray,
        timed: np.ndarray,
        mu: np.ndarray,
        var_user: np.ndarray,
        var_item: np.ndarray,
        pair_earlier: np.ndarray,
        enough: bool,
    ) -> np.ndarray:
        """Learn ``k_pair_var`` and return each training row's variance factor (1 = none).

        Each timed row is predicted one step ahead (``mu``; variance ``var_user`` times the
        factor of its pair's earlier rows, ``pair_earlier``: sums, counts and sums of
        squares). The pseudo-count kept is the one whose Gaussian predictive likelihood is
        highest once a common scale is fitted (the interval scale learned next), so the
        choice is about which rows get wider or narrower ranges, not how wide all are."""
        self.pair_var_nu_ = self.k_pair_var
        if self._user_priors()[1] is None or self._user_priors()[0] is None:
            self.pair_var_nu_ = None
        elif self.k_pair_var is not None and self.learn_user_prior and enough:
            # Only a row after two timed attempts at its item has a scatter to learn from.
            again = timed & (pair_earlier[:, 1] >= 2)
            if int(again.sum()) >= PRIOR_MIN_ROWS:
                within = self._within_var(var_item)[timed]
                sq_err = (lt[timed] - mu[timed]) ** 2
                state = pair_earlier[timed]

                def profile(nu: float) -> float:
                    v = var_user[timed] * _pair_var_factor(state, within, nu)
                    return float(np.mean(np.log(v)) + math.log(np.mean(sq_err / v)))

                nu = min(PAIR_VAR_GRID, key=profile)
                self.pair_var_nu_ = None if math.isinf(nu) else nu
        nu = self._pair_nu()
        if nu is None:
            return np.ones(len(lt))
        return _pair_var_factor(pair_earlier, self._within_var(var_item), nu)

    def _pair_k(self) -> float | None:
        """The (user, item) time pseudo-count in use; None when that offset is off (also
        whenever the user's own time offset is)."""
        precision, time_k = self._user_priors()
        if time_k is None or precision is None:
            return None
        return getattr(self, "pair_time_k_", None)

    def _fit_pairs(
        self,
        pos: np.ndarray,
        pair_codes: np.ndarray,
        times: tuple[np.ndarray, np.ndarray],
        mu_user: np.ndarray,
        enough: bool,
    ) -> np.ndarray:
        """The (user, item) time statistics: each pair's sum of log times and its number of
        timed attempts (``times``: the rows' log times and whether each is timed), and the
        pseudo-count that shrinks the pair's mean towards the user's prediction
        (``_pair_mean``), learned (``PAIR_TIME_GRID``) by replaying every pair's rows in the
        users' order (``pos``; ``mu_user``: the item level plus the user's offset before
        each row) with the smallest squared error, as ``k_user_time`` is. Returns each row's
        log-time mean with the pair's earlier rows, and those rows' sums (``_pair_rows``)."""
        lt, timed = times
        sums = _pair_rows(lt, timed)
        earlier = np.empty_like(sums)
        earlier[pos] = _exclusive_sums(pd.factorize(pair_codes[pos])[0], sums[pos])
        self.pair_time_k_ = self.k_pair_time
        if self._user_priors()[1] is None or self._user_priors()[0] is None:
            self.pair_time_k_ = None
        elif self.k_pair_time is not None and self.learn_user_prior and enough:
            # Only a row after another timed attempt at its item says anything about k; with
            # too few of them (say each student met each item once) the default stays.
            again = timed & (earlier[:, 1] > 0)
            if int(again.sum()) < PRIOR_MIN_ROWS:
                return self._pair_totals(pair_codes, sums, earlier, mu_user)
            own, n, base = earlier[again, 0], earlier[again, 1], mu_user[again]
            errors = [
                float(np.mean((lt[again] - _pair_mean(own, n, base, k)) ** 2))
                for k in PAIR_TIME_GRID
            ]
            k = PAIR_TIME_GRID[int(np.argmin(errors))]
            self.pair_time_k_ = None if math.isinf(k) else k
        return self._pair_totals(pair_codes, sums, earlier, mu_user)

    def _pair_totals(
        self, pair_codes: np.ndarray, sums: np.ndarray, earlier: np.ndarray, mu_user: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Store every pair's sums (``_fit_pairs``) and return each row's log-time mean with
        the pair's ``earlier`` rows, and ``earlier``."""
        codes, keys = pd.factorize(pair_codes)
        totals = grouped_sums(codes, sums, len(keys))
        # Every pair seen, timed or not (as ``pair_timed_``), so later updates add no keys.
        self.pair_time_ = {
            int(key): [float(v) for v in t]
            for key, t in zip(keys.tolist(), totals.tolist(), strict=True)
        }
        k = self._pair_k()
        mu = mu_user if k is None else _pair_mean(earlier[:, 0], earlier[:, 1], mu_user, k)
        return mu, earlier

    def _fit_users(
        self,
        data: pd.DataFrame,
        y: np.ndarray,
        p_loo: np.ndarray,
        user_codes: np.ndarray,
        enough: bool,
        times: tuple[np.ndarray, np.ndarray, np.ndarray],
    ) -> np.ndarray:
        """The user priors (learned when ``enough`` data) and every user's statistics, from
        the rows' item-level rates before them (``p_loo``); ``times`` are the rows' log
        times, whether each row has one, and the item-level log-time means. Returns each
        row's user contributions (``_user_contributions``)."""
        lt, has_t, mu_loo = times
        self.user_precision_ = self.user_prior_precision
        self.user_time_k_ = self.k_user_time
        self.guess_floor_ = float(self.guess_floor)
        if (self.learn_user_prior or self.learn_guess_floor) and enough:
            self._learn_user_priors(
                data, y, p_loo, lambda c: _user_contributions(y, p_loo, lt, has_t, mu_loo, c)
            )
        user_contrib = _user_contributions(y, p_loo, lt, has_t, mu_loo, self.guess_floor_)
        user_stats = grouped_sums(user_codes, user_contrib, int(user_codes.max(initial=-1)) + 1)
        # The correctness offsets: each user's rows through the filter, in the user's order.
        pos = sort_for_sequences(data)
        user_stats[:, [_U_OFFSET, _U_INFO]] = 0.0
        self._filter_offsets(user_codes[pos], p_loo[pos], y[pos], user_stats)
        self.user_stats_ = with_capacity(user_stats, len(user_stats))
        return user_contrib

    def _learn_user_priors(
        self,
        data: pd.DataFrame,
        y: np.ndarray,
        p_item: np.ndarray,
        contributions: Callable[[float], np.ndarray],
    ) -> None:
        """Empirical Bayes for the two user priors and the guessing floor: replay every
        training user's rows in their own order, each predicted from the user's earlier rows
        only (against leave-one-out item levels; ``contributions(floor)`` gives each row's
        user statistics), and keep the values that predict best (those that
        ``learn_user_prior`` and ``learn_guess_floor`` let it learn)."""
        # Users' rows in their own order, each user's rows together.
        pos = sort_for_sequences(data)
        users = data["user_id"].to_numpy(dtype=object)[pos]
        first = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
        starts = np.repeat(first, np.diff(np.r_[first, len(users)]))
        y, base = y[pos], p_item[pos]

        def replayed(floor: float) -> tuple[np.ndarray, np.ndarray]:
            """Each row's statistics and the sums of the same user's earlier rows."""
            rows = contributions(floor)[pos]
            before = np.cumsum(rows, axis=0) - rows
            return rows, before - before[starts]

        contrib, earlier = replayed(self.guess_floor_)
        if self.user_prior_precision is not None:
            start = self.user_prior_precision

            def strength_scores(floor: float, earlier: np.ndarray) -> Callable[[float], float]:
                """The replay's log-likelihood as a function of the prior strength, at
                ``floor`` with the users' sums ``earlier``, plus a hyperprior centred on
                the starting value (sd: one doubling) that keeps the choice steady while
                the training users have only a few answers each."""
                c, q = floored_rate(base, floor)
                z = logit(q)
                res, info = earlier[:, _C_SCORE], earlier[:, _C_INFO]

                def log_post(precision: float) -> float:
                    p = c + (1.0 - c) * sigmoid(z + res / (info + precision))
                    p = np.clip(p, P_CLIP, 1.0 - P_CLIP)
                    log_lik = float(np.sum(np.log(np.where(y > 0, p, 1.0 - p))))
                    shift = math.log2(precision / start)
                    return log_lik - 0.5 * shift * shift

                return log_post

            precisions = PRIOR_GRID if self.learn_user_prior else (start,)
            # Every floor with its best strength: the two trade off (a floor lets answers
            # move a student further), so choosing one at a time can miss the best pair.
            candidates = [(self.guess_floor_, earlier)]
            if self.learn_guess_floor:
                # The starting floor's sums are already there; only the others are replayed.
                candidates = [
                    (c, earlier if c == self.guess_floor_ else replayed(c)[1]) for c in FLOOR_GRID
                ]
            _, precision, floor = max(
                (*_grid_argmax(precisions, strength_scores(c, sums)), c) for c, sums in candidates
            )
            self.user_precision_, self.guess_floor_ = precision, float(floor)
            if self.learn_user_prior:
                codes = pd.factorize(users)[0]
                self.user_precision_ = self._filtered_precision(codes, y, base, start)
        if not self.learn_user_prior:
            return
        timed = contrib[:, _U_TN] > 0
        if self.k_user_time is not None and self.user_prior_precision is not None and timed.any():
            residual = contrib[:, _U_TRES][timed]
            sums, counts = earlier[timed, _U_TRES], earlier[timed, _U_TN]
            errors = [float(np.mean((residual - sums / (counts + k)) ** 2)) for k in PRIOR_GRID]
            self.user_time_k_ = PRIOR_GRID[int(np.argmin(errors))]

    def _filtered_precision(
        self, codes: np.ndarray, y: np.ndarray, base: np.ndarray, start: float
    ) -> float:
        """The prior strength re-chosen for the offset filter that serves: the grid's values
        within three steps of the one the sums' replay chose (which is fast to score for every
        floor and strength, and close), each scored by replaying the filter over the users'
        rows (``codes`` grouped by user, answers ``y``, item-level rates ``base``) with the
        same hyperprior around ``start``."""
        c, q = floored_rate(base, self.guess_floor_)
        z = logit(q)

        def log_post(precision: float) -> float:
            state = np.zeros((int(codes.max()) + 1, 2))
            offset = _offset_filter(codes, z, c, y, precision, state)[:, 0]
            p = np.clip(c + (1.0 - c) * sigmoid(z + offset), P_CLIP, 1.0 - P_CLIP)
            shift = math.log2(precision / start)
            return float(np.sum(np.log(np.where(y > 0, p, 1.0 - p)))) - 0.5 * shift * shift

        i = PRIOR_GRID.index(self.user_precision_)
        return max(PRIOR_GRID[max(i - 3, 0) : i + 4], key=log_post)

    def _learn_interval_scale(
        self, lt: np.ndarray, mu: np.ndarray, var: np.ndarray, timed: np.ndarray
    ) -> float:
        """The factor on sigma that makes the 80 % interval hold 80 % of the training times.

        Every timed training row is predicted as ``_predict_validated`` would have predicted
        it one step ahead: ``mu``, the item level from the rows before it plus the user's
        time offsets (overall and on the item) from the user's earlier rows only, and
        ``var``, the item level's variance narrowed by what the user's earlier rows say
        (``_user_time_var`` and the pair's scatter). The factor is the 80 % quantile of the
        standardised residuals |z| over Z80 (conformal prediction, Vovk, Gammerman & Shafer
        2005, "Algorithmic Learning in a Random World", on prequential residuals, Dawid
        1984, "Statistical theory: the prequential approach"), shrunk towards 1 in log
        space and kept in ``SCALE_BOUNDS``.
        """
        z = np.abs(lt[timed] - mu[timed]) / np.sqrt(var[timed])
        n = len(z)
        # All-equal times (integer seconds, one item) can leave no residual at all.
        quantile = max(float(np.quantile(z, 0.8)), np.finfo(float).tiny)
        log_scale = math.log(quantile / Z80)
        log_scale *= n / (n + SCALE_PRIOR_ROWS)
        return float(np.clip(math.exp(log_scale), *SCALE_BOUNDS))

    # -- the hierarchy ---------------------------------------------------------------
    def _levels(
        self,
        g: np.ndarray,
        sk: np.ndarray,
        has_sk: np.ndarray,
        it: np.ndarray,
        has_it: np.ndarray,
        levels: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Item-level p, log-time mean and predictive log-time variance for each row.

        ``g``, ``sk`` and ``it`` hold one row of statistics per prediction (``g`` may be a
        single row); a missing skill or item falls back exactly to its parent's values.
        ``levels``: the statistics of every level (rows, or one row, of levels × stats),
        each row's skill's counts per level (rows × 2 × levels: attempts, timed attempts)
        and each row's level (-1: none); an item's parent is then its skill at its level
        (``_level_parents``). None, or no levels: the plain hierarchy.
        """
        p_s, mu_s, var_s = self._parents(g, sk, has_sk, levels)
        # The rate is shrunk with its learned pseudo-count, the times with ``k_item``.
        p_i, mu_i, var_i = _shrink(it, self.k_item, p_s, mu_s, var_s, self._item_rate_k())
        # The item mean is itself estimated; its variance (var / effective n) widens the
        # interval for rarely timed items.
        var_pred_i = var_i * (1.0 + 1.0 / (it[:, _TN] + self.k_item))
        p = np.where(has_it, p_i, p_s)
        mu = np.where(has_it, mu_i, mu_s)
        var = np.where(has_it, var_pred_i, var_s * (1.0 + 1.0 / self.k_item))
        return np.clip(p, P_CLIP, 1.0 - P_CLIP), mu, np.maximum(var, MIN_LOG_TIME_VAR)

    def _parents(
        self,
        g: np.ndarray,
        sk: np.ndarray,
        has_sk: np.ndarray,
        levels: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The parent (rate, log-time mean, variance) towards which each row's item is
        shrunk: its skill (at its level, with ``levels``), else the global level
        (``_levels``' arguments)."""
        g = np.atleast_2d(g)
        # The global level is itself shrunk towards the documented defaults with a single
        # pseudo-attempt, so that a model fitted on a handful of rows (or none, as when the
        # service starts empty) never claims certainty or zero time spread; with thousands
        # of attempts that weight is nil.
        p_g, mu_g, var_g = _shrink(
            g, GLOBAL_PRIOR_WEIGHT, 0.5, math.log(DEFAULT_TIME_MEDIAN_S), DEFAULT_LOG_TIME_SD**2
        )

        if levels is None or not levels[0].shape[-2]:
            p_s, mu_s, var_s = _shrink(sk, self.k_skill, p_g, mu_g, var_g)
            p_s = np.where(has_sk, p_s, p_g)
            mu_s = np.where(has_sk, mu_s, mu_g)
            var_s = np.where(has_sk, var_s, var_g)
        else:
            p_s, mu_s, var_s = self._level_parents(p_g, mu_g, var_g, sk, has_sk, levels)
        return p_s, mu_s, var_s

    def _level_effects(
        self, stats: np.ndarray, p_g: np.ndarray, mu_g: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each level's effect on the logit of the rate and on the log-time mean, against
        the global level (``p_g``, ``mu_g``: one per row of ``stats``, rows × levels ×
        stats): the level's statistics shrunk towards the global ones with the strengths
        of ``_level_strengths``, so a level without data has no effect."""
        k_p, k_t = _level_strengths(stats, p_g, mu_g)
        p_l = (stats[..., _S] + k_p[:, None] * p_g[:, None]) / (stats[..., _N] + k_p[:, None])
        mu_l = (stats[..., _TSUM] + k_t[:, None] * mu_g[:, None]) / (stats[..., _TN] + k_t[:, None])
        return logit(p_l) - logit(p_g)[:, None], mu_l - mu_g[:, None]

    def _level_parents(
        self,
        p_g: np.ndarray,
        mu_g: np.ndarray,
        var_g: np.ndarray,
        sk: np.ndarray,
        has_sk: np.ndarray,
        levels: tuple[np.ndarray, np.ndarray, np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The parent (rate, log-time mean, variance) of each row's item: its skill at its
        level. A skill's rate mixes its levels in the proportions practised, so its
        shrinkage target is the global level moved by that mix of level effects, and the
        mix is taken out again before the item's own level effect is put in (additive in
        the logit and in log time). A row without a level gets the skill itself."""
        stats, mix, row_level = levels
        e, d = self._level_effects(stats, p_g, mu_g)
        n_s, tn_s = sk[:, _N], sk[:, _TN]
        m = np.where(n_s > 0, (mix[:, 0, :] * e).sum(axis=1) / np.maximum(n_s, 1.0), 0.0)
        dm = np.where(tn_s > 0, (mix[:, 1, :] * d).sum(axis=1) / np.maximum(tn_s, 1.0), 0.0)
        m, dm = np.where(has_sk, m, 0.0), np.where(has_sk, dm, 0.0)
        lg = logit(p_g)
        p_s, mu_s, var_s = _shrink(sk, self.k_skill, sigmoid(lg + m), mu_g + dm, var_g)
        p_s = np.where(has_sk, p_s, p_g)
        mu_s = np.where(has_sk, mu_s, mu_g)
        var_s = np.where(has_sk, var_s, var_g)
        leveled = row_level >= 0
        at = np.maximum(row_level, 0)[:, None]
        e_row = np.take_along_axis(np.broadcast_to(e, (len(at), e.shape[1])), at, 1)[:, 0]
        d_row = np.take_along_axis(np.broadcast_to(d, (len(at), d.shape[1])), at, 1)[:, 0]
        transfer = self._level_transfer()
        p_par = np.where(leveled, sigmoid(logit(p_s) + transfer * (e_row - m)), p_s)
        mu_par = np.where(leveled, mu_s - dm + d_row, mu_s)
        return p_par, mu_par, var_s

    def _band(self, it: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Centre and spread (log seconds) against which a new time is winsorised: the item's
        time statistics shrunk towards the global ones (rows of ``it`` and ``g``)."""
        _, mu_g, var_g = _shrink(
            np.atleast_2d(g),
            GLOBAL_PRIOR_WEIGHT,
            0.5,
            math.log(DEFAULT_TIME_MEDIAN_S),
            DEFAULT_LOG_TIME_SD**2,
        )
        _, mu, var = _shrink(np.atleast_2d(it), self.k_item, 0.5, mu_g, var_g)
        return mu, np.sqrt(var)

    def _sequential_winsorise(
        self, lt: np.ndarray, has_t: np.ndarray, weight: np.ndarray, item_codes: np.ndarray
    ) -> np.ndarray:
        """``update``'s winsorisation replayed over the rows of ``fit`` in row order.

        Each time is clipped to the band of the (already clipped, capped) time statistics of
        the rows before it, which makes fit-then-update equal to a refit (to rounding). The
        clipped values solve a triangular system; fixed-point iteration from the raw values
        converges to it in a dozen or so vectorised passes.
        """
        x = lt
        stats = np.zeros((len(lt), _N_STATS))
        for _ in range(_MAX_WINSOR_PASSES):
            stats[:] = _population_contributions(np.zeros_like(x), weight, has_t, x)
            before_global = np.cumsum(stats, axis=0) - stats
            before_item = pd.DataFrame(stats).groupby(item_codes).cumsum().to_numpy() - stats
            clipped = np.where(has_t, winsorise(lt, *self._band(before_item, before_global)), lt)
            settled = len(x) == 0 or np.max(np.abs(clipped - x)) <= _WINSOR_TOLERANCE
            x = clipped
            if settled:
                break
        return x

    def _levels_for(
        self, item_idx: np.ndarray, skill_idx: np.ndarray, row_level: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``_levels`` for item / skill / level indices into the fitted tables (-1 =
        unknown)."""
        has_it, has_sk = item_idx >= 0, skill_idx >= 0
        it = np.where(has_it[:, None], self.item_stats_[np.maximum(item_idx, 0)], 0.0)
        sk = np.where(has_sk[:, None], self.skill_stats_[np.maximum(skill_idx, 0)], 0.0)
        levels = None
        if self.level_index_:
            mix = self.skill_mix_[np.maximum(skill_idx, 0)] * has_sk[:, None, None]
            levels = (self.level_stats_[None], mix, row_level)
        return self._levels(self.global_stats_, sk, has_sk, it, has_it, levels)

    def _row_levels(self, items: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """The level of each row's item (-1: none): a known item's, else its id's."""
        out = np.where(item_idx >= 0, self.item_level_[np.maximum(item_idx, 0)], -1)
        if self.level_index_:
            for i in np.flatnonzero(item_idx < 0):
                out[i] = self._level_code(str(items[i]), -1)
        return out

    def _level_code(self, item: str, item_i: int) -> int:
        """The level of item ``item`` (row ``item_i``; -1: new) among the known levels."""
        if item_i >= 0:
            return int(self.item_level_[item_i])
        label = level_label(item, self.item_level_sep)
        return -1 if label is None else self.level_index_.get(label, -1)

    def _level_one(
        self, item_i: int, skill: str | None, level_i: int = -1
    ) -> tuple[float, float, float, tuple[float, float, float]]:
        """``_levels_for`` of one row in floats: the item-level p, log-time mean and
        predictive log-time variance of item row ``item_i`` (-1: unknown) at level
        ``level_i`` (-1: none) under the row's skill ``skill`` (else the item's last one, as
        ``_parent_skill``), and the global level's (p, mean, variance)."""
        skill_i = self.skill_index_.get(skill, -1) if skill is not None else -1
        if skill_i < 0 and item_i >= 0:
            skill_i = int(self.item_skill_[item_i])
        top = _shrink_one(
            self.global_stats_,
            GLOBAL_PRIOR_WEIGHT,
            (0.5, math.log(DEFAULT_TIME_MEDIAN_S), DEFAULT_LOG_TIME_SD**2),
        )
        if level_i >= 0:
            parent = self._level_parent_one(top, skill_i, level_i)
        elif skill_i < 0:
            parent = top
        else:
            parent = _shrink_one(self.skill_stats_[skill_i], self.k_skill, top)
        if item_i < 0:
            p, mu, var = parent[0], parent[1], parent[2] * (1.0 + 1.0 / self.k_item)
        else:
            row = self.item_stats_[item_i]
            p, mu, var = _shrink_one(row, self.k_item, parent, self._item_rate_k())
            var *= 1.0 + 1.0 / (float(row[_TN]) + self.k_item)
        return min(max(p, P_CLIP), 1.0 - P_CLIP), mu, max(var, MIN_LOG_TIME_VAR), top

    def _level_parent_one(
        self, top: tuple[float, float, float], skill_i: int, level_i: int
    ) -> tuple[float, float, float]:
        """``_level_parents`` of one row in floats: the skill ``skill_i`` (-1: none) at
        level ``level_i``, under the global level ``top``."""
        p_g, mu_g, var_g = top
        lg = _logit_one(p_g)
        rows = self.level_stats_.tolist()
        k_p, k_t = _level_strengths_one(rows, p_g, mu_g)
        effects = [
            (
                _logit_one((s + k_p * p_g) / (n + k_p)) - lg,
                (tsum + k_t * mu_g) / (tn + k_t) - mu_g,
            )
            for n, s, tn, tsum, _ in rows
        ]
        m = dm = 0.0
        skill = top
        if skill_i >= 0:
            row = self.skill_stats_[skill_i]
            counts, timed = self.skill_mix_[skill_i].tolist()
            if row[_N] > 0:
                m = sum(c * e for c, (e, _) in zip(counts, effects, strict=True)) / row[_N]
            if row[_TN] > 0:
                dm = sum(c * d for c, (_, d) in zip(timed, effects, strict=True)) / row[_TN]
            skill = _shrink_one(row, self.k_skill, (_sigmoid_one(lg + m), mu_g + dm, var_g))
        e, d = effects[level_i]
        p = _sigmoid_one(_logit_one(skill[0]) + self._level_transfer() * (e - m))
        return p, skill[1] - dm + d, skill[2]

    def _parent_skill(self, item_idx: np.ndarray, row_skill_idx: np.ndarray) -> np.ndarray:
        # The row's own (known) skill wins; otherwise the skill the item was last seen with.
        item_skill = np.where(item_idx >= 0, self.item_skill_[np.maximum(item_idx, 0)], -1)
        return np.where(row_skill_idx >= 0, row_skill_idx, item_skill)

    # -- prediction ------------------------------------------------------------------
    def _predict_validated(self, data: pd.DataFrame) -> pd.DataFrame:
        pos = sort_for_sequences(data)
        users = data["user_id"].to_numpy(dtype=object)[pos]
        item_idx = lookup(self.item_index_, data["item_id"].to_numpy(dtype=object)[pos])
        skill_idx = lookup(self.skill_index_, data["skill_id"].to_numpy(dtype=object)[pos])
        y = data["correct"].to_numpy(dtype=float)[pos]
        lt, has_t = _log_times(data["rt_seconds"].to_numpy(dtype=float)[pos])

        parent = self._parent_skill(item_idx, skill_idx)
        row_level = self._row_levels(data["item_id"].to_numpy(dtype=object)[pos], item_idx)
        p_item, mu_item, var = self._levels_for(item_idx, parent, row_level)

        # Each user's offset state = fitted state + that user's EARLIER rows in `data`. The
        # exclusive running sums come from a per-user cumsum shifted by one row, so a row's
        # own outcome never reaches its prediction and users never touch each other's sums.
        contrib = _user_contributions(y, p_item, lt, has_t, mu_item, self._guess_floor())
        codes = pd.factorize(users)[0]
        running = pd.DataFrame(contrib).groupby(codes, sort=False).cumsum()
        earlier = running.groupby(codes, sort=False).shift(1, fill_value=0.0).to_numpy()
        user_idx = lookup(self.user_index_, users)
        fitted = np.where((user_idx >= 0)[:, None], self.user_stats_[np.maximum(user_idx, 0)], 0.0)
        state = fitted + earlier
        # The offsets are not sums: the filter runs on from each user's fitted state.
        start = np.zeros((len(codes) and codes.max() + 1, _N_USER_STATS))
        start[codes] = fitted
        state[:, [_U_OFFSET, _U_INFO]] = self._filter_offsets(codes, p_item, y, start)
        p, mu, sigma = self._personalise(p_item, mu_item, var, state)
        k, nu = self._pair_k(), self._pair_nu()
        if k is not None or nu is not None:
            # The user's own times on the item (the fitted pair sums plus the pair's earlier
            # rows here) pull the prediction towards their mean, and their scatter there
            # narrows or widens the range.
            items = data["item_id"].to_numpy(dtype=object)[pos]
            sums = _pair_rows(lt, contrib[:, _U_TN] > 0)
            pairs = pd.factorize(pd.MultiIndex.from_arrays([codes, items]))[0]
            empty = (0.0,) * _N_PAIR_STATS
            fitted_pairs = np.array(
                [
                    self.pair_time_.get(u * _PAIR_BASE + i, empty) if u >= 0 and i >= 0 else empty
                    for u, i in zip(user_idx.tolist(), item_idx.tolist(), strict=True)
                ],
                dtype=float,
            ).reshape(-1, _N_PAIR_STATS)
            pair_state = fitted_pairs + _exclusive_sums(pairs, sums)
            if k is not None:
                mu = _pair_mean(pair_state[:, 0], pair_state[:, 1], mu, k)
            if nu is not None:
                sigma = sigma * np.sqrt(_pair_var_factor(pair_state, self._within_var(var), nu))
        return log_normal_predictions(p, mu, sigma, pos, data.index)

    def _personalise(
        self, p_item: np.ndarray, mu_item: np.ndarray, var: np.ndarray, state: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """P(correct), log-time mean and log-time sd of rows with item-level values
        ``p_item``, ``mu_item``, ``var`` and user statistics ``state`` (one row each)."""
        p = p_item
        precision, time_k = self._user_priors()
        if precision is not None:
            p = _above_floor(p_item, state[:, _U_OFFSET], self._guess_floor())
        p = np.clip(p, P_CLIP, 1.0 - P_CLIP)
        mu = mu_item
        if time_k is not None and precision is not None:
            mu = mu_item + state[:, _U_TRES] / (state[:, _U_TN] + time_k)
            # The item's spread holds both the differences between users and each user's own
            # scatter; ``time_k`` is their ratio (within / between). Once the user's offset is
            # known from n timed attempts only the user's own scatter and the offset's
            # remaining uncertainty are left: var · k/(1 + k) · (1 + 1/(n + k)), which is the
            # item's whole variance at n = 0.
            var = var * time_k / (1.0 + time_k) * (1.0 + 1.0 / (state[:, _U_TN] + time_k))
        # Only the width is rescaled; the median exp(mu) stays where it is.
        sigma = np.sqrt(var) * self._interval_scale()
        return p, mu, sigma

    def _filter_offsets(
        self, codes: np.ndarray, p_item: np.ndarray, y: np.ndarray, stats: np.ndarray
    ) -> np.ndarray:
        """Run the offset filter (``_offset_filter``) over rows grouped by user (``codes``,
        each user's rows together and in order) with item-level rates ``p_item`` and
        answers ``y``, from the users' statistics ``stats`` (indexed by code; their offset
        and information columns end at each user's last row). Returns each row's offset and
        information before its own answer; all zero without user offsets."""
        precision = self._user_priors()[0]
        if precision is None:
            return np.zeros((len(codes), 2))
        c, q = floored_rate(p_item, self._guess_floor())
        state = stats[:, [_U_OFFSET, _U_INFO]]
        before = _offset_filter(codes, logit(q), c, y, precision, state)
        stats[:, [_U_OFFSET, _U_INFO]] = state
        return before

    def predict_one(self, user_id: Any, item_id: Any, skill_id: Any = None) -> dict[str, float]:
        """``LearnerModel.predict_one`` without a DataFrame: the same numbers as ``predict``
        on the one-row frame (an attempt not made yet, so no earlier rows of the user), from
        dictionary look-ups and the formulas of ``_predict_validated`` for one row in floats
        (equal to rounding: ``math`` and NumPy may differ in the last bit of a log or exp).

        Ids the fast path cannot read exactly as ``validate_interactions`` does (a missing user
        or item id, bytes, ...) go through the DataFrame path, which also raises its errors;
        so does a subclass that changes ``predict`` (``fast_path_applies``).
        """
        self._check_fitted()
        ids = fast_path_ids(self, Baseline, user_id, item_id, skill_id)
        if ids is None:
            return super().predict_one(user_id, item_id, skill_id)
        user, item, skill = ids
        item_i = self.item_index_.get(item, -1)
        p, mu, var, _ = self._level_one(item_i, skill, self._level_code(item, item_i))
        # A user the model has not seen has zero statistics (as ``predict`` adds the, here
        # empty, earlier rows of the user to them); ``_personalise`` for one row in floats.
        user_i = self.user_index_.get(user)
        offset, _, tres, tn = (
            self.user_stats_[user_i].tolist() if user_i is not None else [0.0] * _N_USER_STATS
        )
        precision, time_k = self._user_priors()
        if precision is not None:
            floor = self._guess_floor()
            if floor == 0.0:
                p = _sigmoid_one(_logit_one(p) + offset)
            else:
                c, q = _floored_one(p, floor)
                p = c + (1.0 - c) * _sigmoid_one(_logit_one(q) + offset)
        p = min(max(p, P_CLIP), 1.0 - P_CLIP)
        if time_k is not None and precision is not None:
            mu += tres / (tn + time_k)
            var_item = var
            within = var_item * time_k / (1.0 + time_k)
            var = within * (1.0 + 1.0 / (tn + time_k))
            k, nu = self._pair_k(), self._pair_nu()
            if user_i is not None and item_i >= 0 and (k is not None or nu is not None):
                own, n, sq = self.pair_time_.get(user_i * _PAIR_BASE + item_i, (0.0, 0.0, 0.0))
                if k is not None:
                    mu = (own + k * mu) / (n + k)
                if nu is not None:
                    var *= _pair_var_factor_one(own, n, sq, within, nu)
        sigma = math.sqrt(var) * self._interval_scale()
        return {
            "p_correct": p,
            "time_median_s": math.exp(mu),
            "time_p10_s": math.exp(mu - Z80 * sigma),
            "time_p90_s": math.exp(mu + Z80 * sigma),
        }

    def _user_priors(self) -> tuple[float | None, float | None]:
        """The prior strengths in use: learned by ``fit`` (or restored), else the
        constructor's."""
        return (
            getattr(self, "user_precision_", self.user_prior_precision),
            getattr(self, "user_time_k_", self.k_user_time),
        )

    def _guess_floor(self) -> float:
        """The guessing floor in use: learned by ``fit`` (or restored), else the
        constructor's."""
        return float(getattr(self, "guess_floor_", self.guess_floor))

    def _item_rate_k(self) -> float:
        """The pseudo-attempts at its parent with which an item's rate is shrunk, learned by
        ``fit`` (``k_item`` before any was learned)."""
        return float(getattr(self, "item_rate_k_", self.k_item))

    def _level_transfer(self) -> float:
        """The share of a level's effect on the rate that holds within a skill, learned by
        ``fit`` (1 before any was learned: the whole effect)."""
        return float(getattr(self, "level_transfer_", 1.0))

    def _interval_scale(self) -> float:
        """The learned factor on the log-time sd (1 before any was learned)."""
        return float(getattr(self, "interval_scale_", 1.0))

    # -- online learning -------------------------------------------------------------
    def update(self, row: Mapping[str, Any]) -> None:
        """Learn from one attempt in O(1): item / skill / global counters and user offsets.

        ``row`` needs ``user_id``, ``item_id`` and ``correct`` (the number 0 or 1);
        ``skill_id`` and ``rt_seconds`` (positive seconds; None / NaN = unknown) are
        optional. A bad field raises ``ValueError`` naming it. The user's residual is taken against
        the prediction the model would have made just before the attempt.
        """
        self._check_fitted()
        self._learn_one(*parse_attempt(row))

    def learn_many(self, rows: pd.DataFrame) -> None:
        """``update`` row by row, with the rows checked and their ids read once for all
        (``plain_attempts``) instead of once per row: the same state. The population
        counts move with every row, so the rows are still learnt one at a time. A subclass
        that changes ``update`` learns through it."""
        self._check_fitted()
        plain = plain_attempts(rows) if type(self).update is Baseline.update else None
        if plain is None:
            super().learn_many(rows)
            return
        users, items, skills, correct, rt = plain
        if skills is None:
            skills = np.full(len(users), None, dtype=object)
        for args in zip(users, items, skills, correct.tolist(), rt.tolist(), strict=True):
            self._learn_one(*args)

    def _learn_one(self, user: str, item: str, skill: str | None, y: float, rt: float) -> None:
        """``update`` of one attempt already read by ``parse_attempt``."""
        lt_row, timed_row = _log_times(np.array([rt]))
        has_t, lt = bool(timed_row[0]), float(lt_row[0])

        # One row in plain floats (``_level_one``), as ``_band``, ``_user_contributions``
        # and ``_offset_filter`` compute it for n = 1, without the cost of length-1 arrays:
        # this runs for every completion in every serving process.
        item_i = self.item_index_.get(item, -1)
        if item_i >= 0:
            level_i = int(self.item_level_[item_i])
        else:
            label = level_label(item, self.item_level_sep)
            level_i = -1 if label is None else self.level_index_.get(label, -1)
            if label is not None and level_i < 0:
                level_i = self._add_level(label)  # a new level: no effect until it has data
        p_item, mu_item, _, top = self._level_one(item_i, skill, level_i)
        if has_t:
            item_row = self.item_stats_[item_i] if item_i >= 0 else np.zeros(_N_STATS)
            _, centre, var = _shrink_one(item_row, self.k_item, (0.5, top[1], top[2]))
            lt = winsorise_one(lt, centre, math.sqrt(var))

        user_i = self._slot("user_index_", (("user_stats_", 0.0),), user)
        item_arrays = (("item_stats_", 0.0), ("item_skill_", -1), ("item_level_", -1))
        item_i = self._slot("item_index_", item_arrays, item)
        pair = user_i * _PAIR_BASE + item_i
        seen = self.pair_timed_.get(pair, 0)
        weight = 1.0 if has_t and seen < POP_ATTEMPTS_PER_USER_ITEM else 0.0
        self.pair_timed_[pair] = seen + int(weight)

        # Same row order of additions as the bincounts in fit(), so the sums agree exactly.
        w = weight if has_t else 0.0
        contrib = np.array([1.0, y, w, w * lt, w * lt * lt])
        self.global_stats_ += contrib
        self.item_stats_[item_i] += contrib
        if level_i >= 0:
            self.level_stats_[level_i] += contrib
            self.item_level_[item_i] = level_i
        if skill is not None:
            skill_arrays = (("skill_stats_", 0.0), ("skill_mix_", 0.0))
            skill_i = self._slot("skill_index_", skill_arrays, skill)
            self.skill_stats_[skill_i] += contrib
            self.item_skill_[item_i] = skill_i
            if level_i >= 0:
                self.skill_mix_[skill_i, :, level_i] += (1.0, w)
        stats = self.user_stats_[user_i]
        if has_t:
            sums = self.pair_time_.setdefault(pair, [0.0] * _N_PAIR_STATS)
            sums[0] += lt
            sums[1] += 1.0
            sums[2] += lt * lt
            stats[_U_TRES] += lt - mu_item
            stats[_U_TN] += 1.0
        # The offset moves from where it is, by the answer's evidence at that point.
        precision = self._user_priors()[0]
        if precision is not None:
            c, q = _floored_one(p_item, self._guess_floor())
            offset, info = float(stats[_U_OFFSET]), float(stats[_U_INFO])
            s = _sigmoid_one(_logit_one(q) + offset)
            p = max(c + (1.0 - c) * s, _TINY)
            score = (1.0 - c) * s * (1.0 - s) / p if y > 0.5 else -s
            gained = (1.0 - c) * s * s * (1.0 - s) / p
            stats[_U_OFFSET] = offset + score / (precision + info + gained)
            stats[_U_INFO] = info + gained

    def _add_level(self, label: str) -> int:
        """Index of a new level ``label``, with empty statistics."""
        i = len(self.level_index_)
        self.level_index_[label] = i
        self.level_stats_ = np.vstack([self.level_stats_, np.zeros((1, _N_STATS))])
        grown = np.zeros((*self.skill_mix_.shape[:2], i + 1))
        grown[:, :, :i] = self.skill_mix_
        self.skill_mix_ = grown
        return i

    def _slot(self, index_attr: str, arrays: tuple[tuple[str, float], ...], key: str) -> int:
        """Row of ``key`` in a table, appending one (doubling capacity when full) if new."""
        index: dict[str, int] = getattr(self, index_attr)
        i = index.get(key)
        if i is None:
            i = len(index)
            index[key] = i
            for attr, fill in arrays:
                table = getattr(self, attr)
                if i >= len(table):
                    # Doubling keeps appends amortised O(1).
                    grown = np.full((2 * len(table), *table.shape[1:]), fill, dtype=table.dtype)
                    grown[: len(table)] = table
                    setattr(self, attr, grown)
        return i

    # -- persistence -----------------------------------------------------------------
    def _get_state(self) -> dict[str, Any]:
        n_items, n_skills, n_users = (
            len(self.item_index_),
            len(self.skill_index_),
            len(self.user_index_),
        )
        return {
            "item_ids": list(self.item_index_),
            "skill_ids": list(self.skill_index_),
            "user_ids": list(self.user_index_),
            "item_stats": self.item_stats_[:n_items].copy(),
            "item_skill": self.item_skill_[:n_items].astype(np.int64),
            "skill_stats": self.skill_stats_[:n_skills].copy(),
            "level_ids": list(self.level_index_),
            "level_stats": self.level_stats_.copy(),
            "item_level": self.item_level_[:n_items].astype(np.int64),
            "skill_mix": self.skill_mix_[:n_skills].copy(),
            "user_stats": self.user_stats_[:n_users].copy(),
            "global_stats": self.global_stats_.copy(),
            "pair_keys": np.fromiter(self.pair_timed_, dtype=np.int64, count=len(self.pair_timed_)),
            "pair_counts": np.fromiter(
                self.pair_timed_.values(), dtype=np.int64, count=len(self.pair_timed_)
            ),
            "user_priors": list(self._user_priors()),
            "pair_time_keys": np.fromiter(
                self.pair_time_, dtype=np.int64, count=len(self.pair_time_)
            ),
            "pair_time_sums": np.array(list(self.pair_time_.values()), dtype=float).reshape(
                -1, _N_PAIR_STATS
            ),
            "pair_time_k": getattr(self, "pair_time_k_", None),
            "pair_var_nu": getattr(self, "pair_var_nu_", None),
            "interval_scale": self._interval_scale(),
            "guess_floor": self._guess_floor(),
            "level_transfer": self._level_transfer(),
            "item_rate_k": self._item_rate_k(),
            "user_offsets": _OFFSET_FORM,
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self._check_params()
        tables = {}
        for kind, width in (("item", _N_STATS), ("skill", _N_STATS), ("user", _N_USER_STATS)):
            ids = [str(v) for v in state[f"{kind}_ids"]]
            if len(set(ids)) != len(ids):
                raise ValueError(f"duplicate {kind} ids in state")
            stats = np.asarray(state[f"{kind}_stats"], dtype=float)
            if stats.shape != (len(ids), width):
                raise ValueError(
                    f"{kind}_stats has shape {stats.shape}, expected {(len(ids), width)}"
                )
            tables[kind] = (ids, stats)
        item_skill = np.asarray(state["item_skill"], dtype=np.int64)
        n_items, n_skills = len(tables["item"][0]), len(tables["skill"][0])
        if item_skill.shape != (n_items,) or (
            n_items and (item_skill.min() < -1 or item_skill.max() >= n_skills)
        ):
            raise ValueError("item_skill does not match the item and skill ids")
        global_stats = np.asarray(state["global_stats"], dtype=float)
        if global_stats.shape != (_N_STATS,):
            raise ValueError(f"global_stats has shape {global_stats.shape}, expected (5,)")
        if (
            not all(np.isfinite(t[1]).all() for t in tables.values())
            or not np.isfinite(global_stats).all()
        ):
            raise ValueError("non-finite statistics in state")

        self.item_index_ = {v: i for i, v in enumerate(tables["item"][0])}
        self.skill_index_ = {v: i for i, v in enumerate(tables["skill"][0])}
        self.user_index_ = {v: i for i, v in enumerate(tables["user"][0])}
        self.item_stats_ = with_capacity(tables["item"][1], n_items)
        self.item_skill_ = with_capacity(item_skill, n_items, fill=-1)
        self.skill_stats_ = with_capacity(tables["skill"][1], n_skills)
        self.user_stats_ = with_capacity(tables["user"][1], len(tables["user"][0]))
        self.global_stats_ = global_stats
        self._read_levels(state, n_items, n_skills)
        keys = np.asarray(state.get("pair_keys", np.zeros(0)), dtype=np.int64)
        counts = np.asarray(state.get("pair_counts", np.zeros(0)), dtype=np.int64)
        if keys.shape != counts.shape:
            raise ValueError("pair_keys and pair_counts differ in length")
        self.pair_timed_ = dict(zip(keys.tolist(), counts.tolist(), strict=True))
        self._read_pair_times(state)
        # Versions stored before the priors were learned use the constructor's values.
        precision, time_k = state.get("user_priors", (self.user_prior_precision, self.k_user_time))
        for name, value in (("user_priors[0]", precision), ("user_priors[1]", time_k)):
            if value is not None and not _is_positive_number(value):
                raise ValueError(f"{name} must be None or a positive finite number")
        self.user_precision_ = None if precision is None else float(precision)
        self.user_time_k_ = None if time_k is None else float(time_k)
        self._read_offsets(state.get("user_offsets"))
        # Versions stored before the interval scale was learned serve the plain interval.
        scale = state.get("interval_scale", 1.0)
        if not _is_positive_number(scale):
            raise ValueError(f"interval_scale must be a positive finite number, got {scale!r}")
        self.interval_scale_ = float(scale)
        # Versions stored before the floor was learned have none.
        floor = state.get("guess_floor", 0.0)
        if not is_guess_floor(floor):
            raise ValueError(f"guess_floor must be a number in [0, 0.5), got {floor!r}")
        self.guess_floor_ = float(floor)
        # Versions stored before the transfer was learned apply the whole level effect.
        transfer = state.get("level_transfer", 1.0)
        if not is_share(transfer):
            raise ValueError(f"level_transfer must be a number in [0, 1], got {transfer!r}")
        self.level_transfer_ = float(transfer)
        # Versions stored before the item rates' strength was learned used ``k_item``.
        k_rate = state.get("item_rate_k", self.k_item)
        if not _is_positive_number(k_rate):
            raise ValueError(f"item_rate_k must be a positive finite number, got {k_rate!r}")
        self.item_rate_k_ = float(k_rate)

    def _read_levels(self, state: dict[str, Any], n_items: int, n_skills: int) -> None:
        """The levels' statistics; a version stored before levels has none."""
        ids = [str(v) for v in state.get("level_ids", [])]
        n = len(ids)
        stats = np.asarray(state.get("level_stats", np.zeros((n, _N_STATS))), dtype=float)
        item_level = np.asarray(state.get("item_level", np.full(n_items, -1)), dtype=np.int64)
        mix = np.asarray(state.get("skill_mix", np.zeros((n_skills, 2, n))), dtype=float)
        if len(set(ids)) != n:
            raise ValueError("duplicate level ids in state")
        if stats.shape != (n, _N_STATS) or mix.shape != (n_skills, 2, n):
            raise ValueError("level_stats or skill_mix do not match the level and skill ids")
        if item_level.shape != (n_items,) or (
            n_items and (item_level.min() < -1 or item_level.max() >= n)
        ):
            raise ValueError("item_level does not match the item and level ids")
        if not (np.isfinite(stats).all() and np.isfinite(mix).all()):
            raise ValueError("non-finite level statistics in state")
        self.level_index_ = {v: i for i, v in enumerate(ids)}
        self.level_stats_ = stats
        self.item_level_ = with_capacity(item_level, n_items, fill=-1)
        self.skill_mix_ = with_capacity(mix, n_skills)

    def _read_pair_times(self, state: dict[str, Any]) -> None:
        """The (user, item) time sums and pseudo-counts; a version stored before them has
        none, and serves without that offset, as it did. A version stored before the sums of
        squares (two columns) serves without the pair's scatter."""
        keys = np.asarray(state.get("pair_time_keys", np.zeros(0)), dtype=np.int64)
        sums = np.asarray(state.get("pair_time_sums", np.zeros((0, _N_PAIR_STATS))), dtype=float)
        old = sums.ndim == 2 and sums.shape[1] == 2 and "pair_var_nu" not in state
        if sums.shape != (len(keys), 2 if old else _N_PAIR_STATS):
            expected = (len(keys), _N_PAIR_STATS)
            raise ValueError(f"pair_time_sums has shape {sums.shape}, expected {expected}")
        if not np.isfinite(sums).all() or (sums[:, 1] < 0).any() or (sums[:, 2:] < 0).any():
            raise ValueError("non-finite or negative pair_time_sums in state")
        if old:
            # No scatter was kept: the squares of a pair's mean (no spread), never used.
            mean_sq = np.where(sums[:, 1] > 0, sums[:, 0] ** 2 / np.maximum(sums[:, 1], 1), 0.0)
            sums = np.column_stack([sums, mean_sq])
        self.pair_time_ = {
            int(key): [float(v) for v in row]
            for key, row in zip(keys.tolist(), sums.tolist(), strict=True)
        }
        for name in ("pair_time_k", "pair_var_nu"):
            k = state.get(name)
            if k is not None and not _is_positive_number(k):
                raise ValueError(f"{name} must be None or a positive finite number, got {k!r}")
            setattr(self, f"{name}_", None if k is None else float(k))

    def _read_offsets(self, form: Any) -> None:
        """Check the stored users' offset columns. A version stored before the offset filter
        (no ``form``) holds the sums of score and information at a zero offset; its offset is
        the one that version served, score / (information + precision)."""
        stats = self.user_stats_[: len(self.user_index_)]
        if form is None:
            precision = self.user_precision_
            offsets = 0.0 if precision is None else stats[:, 0] / (stats[:, 1] + precision)
            stats[:, _U_OFFSET] = offsets
        elif form != _OFFSET_FORM:
            raise ValueError(f"user_offsets must be {_OFFSET_FORM!r}, got {form!r}")
        if (stats[:, _U_INFO] < 0).any() or (stats[:, _U_TN] < 0).any():
            raise ValueError("negative information or timed counts in user_stats")


# -- helpers -------------------------------------------------------------------------
# Float types whose one-value column ``validate_interactions`` reads with ``id_string``.
_FLOAT_TYPES = (float, np.float64)


def fast_path_applies(model: LearnerModel, cls: type[LearnerModel]) -> bool:
    """Whether ``cls.predict_one``'s fast path serves what ``model.predict`` would: not for a
    subclass that changes ``predict`` or ``_predict_validated`` (say, to adjust or wrap every
    prediction), whose ``predict_one`` must then go through them."""
    kind = type(model)
    return kind.predict is LearnerModel.predict and (
        kind._predict_validated is cls._predict_validated
    )


def fast_path_ids(
    model: LearnerModel, cls: type[LearnerModel], user_id: Any, item_id: Any, skill_id: Any
) -> tuple[str, str, str | None] | None:
    """``one_row_ids`` when ``cls.predict_one``'s fast path may serve ``model``
    (``fast_path_applies``), else None: the caller then takes the DataFrame path."""
    ids = one_row_ids(user_id, item_id, skill_id)
    return ids if ids is not None and fast_path_applies(model, cls) else None


def one_row_ids(user_id: Any, item_id: Any, skill_id: Any) -> tuple[str, str, str | None] | None:
    """(user, item, skill or None) of ``predict_one``'s arguments, as ``validate_interactions``
    reads the one-row frame that ``LearnerModel.predict_one`` builds from them; ``None`` when
    only that frame can say (a missing user or item id, which it reports as an error, or a
    type that pandas converts its own way, such as bytes or float32).

    One value makes a column of its own dtype: a float column's ids go through ``id_string``
    (``2.0`` is ``"2"``), integer and bool columns through ``str``, a missing skill is None.
    """
    user, item = _one_id(user_id), _one_id(item_id)
    if user is None or item is None:
        return None
    if skill_id is None or (type(skill_id) in _FLOAT_TYPES and math.isnan(skill_id)):
        return user, item, None
    skill = _one_id(skill_id)
    return None if skill is None else (user, item, skill)


def _one_id(value: Any) -> str | None:
    """The id string of a str, int or float (see ``one_row_ids``); None for anything else
    and for NaN."""
    kind = type(value)
    if kind is str or kind is np.str_:
        return value
    if kind is int or kind is bool or isinstance(value, np.integer):
        return str(value)
    if kind in _FLOAT_TYPES:
        return None if math.isnan(value) else id_string(value)
    return None


def one_row_predictions(p: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> dict[str, float]:
    """``predict_one``'s dict from length-1 arrays of P(correct) and the mean and sd of log
    seconds, computed as ``log_normal_predictions`` computes each row."""
    cols = (p, np.exp(mu), np.exp(mu - Z80 * sigma), np.exp(mu + Z80 * sigma))
    return {name: float(v[0]) for name, v in zip(PREDICTION_COLUMNS, cols, strict=True)}


def _log_times(rt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log(rt) under the shared plausibility rule (0 where missing), and the timed mask."""
    return plausible_log_times(rt)


def _population_contributions(
    y: np.ndarray, weight: np.ndarray, has_t: np.ndarray, lt: np.ndarray
) -> np.ndarray:
    """Rows of the item / skill / global statistics; the time columns count with ``weight``
    (0 or 1: whether the time enters shared statistics), correctness always counts."""
    w = np.where(has_t, weight, 0.0)
    return np.column_stack([np.ones_like(y), y, w, w * lt, w * lt * lt])


def _pair_mean(own: np.ndarray, n: np.ndarray, mu_user: np.ndarray, k: float) -> np.ndarray:
    """A user's log-time mean on an item: the mean of their ``n`` log times there (sum
    ``own``) shrunk towards ``mu_user`` (the item level plus the user's overall offset) with
    ``k`` pseudo-attempts; ``mu_user`` itself when ``k`` is infinite. So a hundred attempts at
    an item predict their own mean there, whatever the item level was when they were made."""
    if math.isinf(k):
        return mu_user
    return (own + k * mu_user) / (n + k)


def _pair_rows(lt: np.ndarray, timed: np.ndarray) -> np.ndarray:
    """Rows of the (user, item) time sums: log time, timed, squared log time (0 untimed)."""
    t = np.where(timed, lt, 0.0)
    return np.column_stack([t, timed.astype(float), t * t])


def _pair_var_factor(state: np.ndarray, within: np.ndarray, nu: float) -> np.ndarray:
    """The factor on a row's log-time variance from its pair's earlier times (``state``:
    sums, counts and sums of squares, ``_pair_rows``): the pair's scatter, its ``n`` times'
    squared deviations from their mean with ``nu`` pseudo-attempts of the model's scatter
    ``within``, over ``within``. 1 for a pair with fewer than two times, and for an
    infinite ``nu`` (the model's scatter whatever the pair's)."""
    if math.isinf(nu):
        return np.ones(len(state))
    own, n, sq = state[:, 0], state[:, 1], state[:, 2]
    ss = np.maximum(sq - np.where(n > 0, own * own / np.maximum(n, 1.0), 0.0), 0.0)
    within = np.maximum(within, MIN_LOG_TIME_VAR)
    dof = np.maximum(n - 1.0, 0.0)
    return (nu + ss / within) / (nu + dof)


def _pair_var_factor_one(own: float, n: float, sq: float, within: float, nu: float) -> float:
    """``_pair_var_factor`` of one pair in floats."""
    ss = max(sq - (own * own / n if n > 0 else 0.0), 0.0)
    dof = max(n - 1.0, 0.0)
    return (nu + ss / max(within, MIN_LOG_TIME_VAR)) / (nu + dof)


def level_label(item: str, sep: str | None) -> str | None:
    """The level an item id names after its last ``sep`` (``"<topic>:hard"`` → ``"hard"``),
    or None (no separator given, or none in the id, or nothing on either side of it)."""
    if sep is None:
        return None
    head, found, label = item.rpartition(sep)
    return label if found and head and label else None


def _level_strengths(
    stats: np.ndarray, p_g: np.ndarray, mu_g: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pseudo-attempts with which each level's rate and log-time mean are shrunk towards the
    global ones (``stats``: rows × levels × stats; ``p_g``, ``mu_g``: one per row), learned
    from how far the levels lie apart (empirical Bayes, by the method of moments).

    The spread of the levels around the global value, less what their sampling noise alone
    gives, estimates the variance ``tau2`` of a level's true effect: in the logit for the
    rate (a level of n attempts has a sampling variance of about 1 / (n p (1 - p))) and in
    log time (the pooled within-level variance over the timed attempts). The strength is
    the noise of one attempt over ``tau2``. Levels that differ clearly keep nearly their own
    values even on a few attempts (a topic's first "hard" task is predicted slow at once);
    levels that do not differ beyond noise, or fewer than two levels with data, have no
    effect (an infinite strength, ``_NO_EFFECT``)."""
    n, s = stats[..., _N], stats[..., _S]
    tn, tsum, tsq = stats[..., _TN], stats[..., _TSUM], stats[..., _TSQ]
    p_g, mu_g = np.broadcast_to(p_g, n.shape[:1]), np.broadcast_to(mu_g, n.shape[:1])
    has, has_t = n > 0, tn > 0
    q = (s + 0.5) / (n + 1.0)
    spread = np.where(
        has, (logit(q) - logit(p_g)[:, None]) ** 2 - 1.0 / ((n + 1.0) * q * (1.0 - q)), 0.0
    )
    count = has.sum(axis=1)
    tau2 = np.where(count >= 2, spread.sum(axis=1) / np.maximum(count, 1), 0.0)
    pq = p_g * (1.0 - p_g)
    k_p = np.where(tau2 > 0, 1.0 / (pq * np.maximum(tau2, 1.0 / _NO_EFFECT)), _NO_EFFECT)
    mean = tsum / np.maximum(tn, 1.0)
    ss = np.maximum(tsq - tsum * mean, 0.0).sum(axis=1)
    within = (ss + DEFAULT_LOG_TIME_SD**2) / (np.maximum(tn - 1.0, 0.0).sum(axis=1) + 1.0)
    spread_t = np.where(
        has_t, (mean - mu_g[:, None]) ** 2 - within[:, None] / np.maximum(tn, 1.0), 0.0
    )
    count_t = has_t.sum(axis=1)
    tau2_t = np.where(count_t >= 2, spread_t.sum(axis=1) / np.maximum(count_t, 1), 0.0)
    k_t = np.where(tau2_t > 0, within / np.maximum(tau2_t, 1.0 / _NO_EFFECT), _NO_EFFECT)
    return np.minimum(k_p, _NO_EFFECT), np.minimum(k_t, _NO_EFFECT)


def _level_strengths_one(rows: list[list[float]], p_g: float, mu_g: float) -> tuple[float, float]:
    """``_level_strengths`` of one set of level statistics, in floats."""
    lg = _logit_one(p_g)
    spread = spread_t = ss = dof = 0.0
    count = count_t = 0
    for n, s, tn, tsum, tsq in rows:
        if n > 0:
            q = (s + 0.5) / (n + 1.0)
            spread += (_logit_one(q) - lg) ** 2 - 1.0 / ((n + 1.0) * q * (1.0 - q))
            count += 1
        if tn > 0:
            ss += max(tsq - tsum * (tsum / tn), 0.0)
            dof += max(tn - 1.0, 0.0)
    within = (ss + DEFAULT_LOG_TIME_SD**2) / (dof + 1.0)
    for _, _, tn, tsum, _ in rows:
        if tn > 0:
            spread_t += (tsum / tn - mu_g) ** 2 - within / tn
            count_t += 1
    tau2 = spread / count if count >= 2 else 0.0
    tau2_t = spread_t / count_t if count_t >= 2 else 0.0
    k_p = 1.0 / (p_g * (1.0 - p_g) * max(tau2, 1.0 / _NO_EFFECT)) if tau2 > 0 else _NO_EFFECT
    k_t = within / max(tau2_t, 1.0 / _NO_EFFECT) if tau2_t > 0 else _NO_EFFECT
    return min(k_p, _NO_EFFECT), min(k_t, _NO_EFFECT)


def _mix_contributions(
    contrib: np.ndarray, row_level: np.ndarray, skill_codes: np.ndarray, n_levels: int
) -> np.ndarray:
    """Each row's addition to its skill's counts per level (rows × 2 × levels: attempts,
    timed attempts that entered the population sums), zero for a row without a level or a
    skill."""
    out = np.zeros((len(row_level), 2, n_levels))
    rows = np.flatnonzero((row_level >= 0) & (skill_codes >= 0))
    out[rows, 0, row_level[rows]] = contrib[rows, _N]
    out[rows, 1, row_level[rows]] = contrib[rows, _TN]
    return out


def _exclusive_sums(codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each row's column sums of the earlier rows of its group (``codes``; rows in order):
    a running sum per group, shifted by one row, so a row never counts itself."""
    running = pd.DataFrame(values).groupby(codes, sort=False).cumsum()
    return running.groupby(codes, sort=False).shift(1, fill_value=0.0).to_numpy()


def _pair_counts(
    user_codes: np.ndarray, item_codes: np.ndarray, has_t: np.ndarray
) -> dict[int, int]:
    """Timed attempts per (user, item) that counted in the shared time sums (at most the
    cap), for every pair seen (0 when it has no time), so later updates never add keys."""
    keys = user_codes.astype(np.int64) * _PAIR_BASE + item_codes
    frame = pd.DataFrame({"k": keys, "t": has_t.astype(np.int64)})
    counts = frame.groupby("k")["t"].sum().clip(upper=POP_ATTEMPTS_PER_USER_ITEM)
    return dict(zip(counts.index.tolist(), counts.tolist(), strict=True))


def _shrink(
    stats: np.ndarray,
    k: float,
    p_parent: np.ndarray,
    mu_parent: np.ndarray,
    var_parent: np.ndarray,
    k_rate: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rate, log-time mean and log-time variance of a level shrunk towards its parent.

    ``k`` acts as pseudo-attempts at the parent's values: ``(s + k p) / (n + k)`` for the
    rate and mean, and ``(SS + k var) / (n - 1 + k)`` for the variance (SS has n - 1 degrees
    of freedom, so one timed attempt gives exactly the parent's variance). ``k_rate``, if
    given, replaces ``k`` for the rate (an item's learned ``item_rate_k_``).
    """
    n, s = stats[:, _N], stats[:, _S]
    tn, tsum, tsq = stats[:, _TN], stats[:, _TSUM], stats[:, _TSQ]
    kr = k if k_rate is None else k_rate
    p = (s + kr * p_parent) / (n + kr)
    mu = (tsum + k * mu_parent) / (tn + k)
    ss = np.maximum(tsq - tsum * tsum / np.maximum(tn, 1.0), 0.0)
    var = (ss + k * var_parent) / (np.maximum(tn - 1.0, 0.0) + k)
    return p, mu, var


def _shrink_one(
    stats: np.ndarray, k: float, parent: tuple[float, float, float], k_rate: float | None = None
) -> tuple[float, float, float]:
    """``_shrink`` of one row of statistics, in floats: (rate, log-time mean, variance)."""
    n, s, tn, tsum, tsq = stats.tolist()
    p_parent, mu_parent, var_parent = parent
    ss = max(tsq - tsum * tsum / max(tn, 1.0), 0.0)
    kr = k if k_rate is None else k_rate
    return (
        (s + kr * p_parent) / (n + kr),
        (tsum + k * mu_parent) / (tn + k),
        (ss + k * var_parent) / (max(tn - 1.0, 0.0) + k),
    )


def _floored_one(p_item: float, floor: float) -> tuple[float, float]:
    """``floored_rate`` of one rate, in floats."""
    c = min(floor, p_item / 2.0)
    return c, (p_item - c) / (1.0 - c)


def _logit_one(p: float) -> float:
    """``logit`` of one probability, in floats."""
    return math.log(p) - math.log1p(-p)


def _sigmoid_one(x: float) -> float:
    """``sigmoid`` of one number, in floats."""
    return 0.5 * (1.0 + math.tanh(0.5 * x))


def _user_contributions(
    y: np.ndarray, p: np.ndarray, lt: np.ndarray, has_t: np.ndarray, mu: np.ndarray, floor: float
) -> np.ndarray:
    """Per-row additions to the user statistics; rows without an outcome add nothing.

    The correctness columns are the score and the Fisher information of the user's logit
    offset at 0 under the guessing floor (``_above_floor``): with ``c = min(floor, p / 2)``,
    ``q = (p - c) / (1 - c)`` and the slope ``s = (1 - c) q (1 - q)`` of p in the offset,
    the score is ``s (y - p) / (p (1 - p))`` and the information ``s² / (p (1 - p))``; with
    no floor these are ``y - p`` and ``p (1 - p)``."""
    known = ~np.isnan(y)
    timed = known & has_t
    if floor == 0.0:
        score, info = y - p, p * (1.0 - p)
    else:
        c, q = floored_rate(p, floor)
        slope = (1.0 - c) * q * (1.0 - q)
        var = p * (1.0 - p)
        score, info = slope * (y - p) / var, slope * slope / var
    return np.column_stack(
        [
            np.where(known, score, 0.0),
            np.where(known, info, 0.0),
            np.where(timed, lt - mu, 0.0),
            timed.astype(float),
        ]
    )


def _offset_step(
    y: np.ndarray, z: np.ndarray, c: np.ndarray, offset: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Score and Fisher information of the logit offset at ``offset`` for answers ``y``
    (NaN: no answer, both 0) to rows with floor ``c`` and logit ``z`` of the rate above it
    (``floored_rate``), where p = c + (1 - c) s and s = sigmoid(z + offset).

    The general score (1 - c) s (1 - s) (y - p) / (p (1 - p)) simplifies to
    (1 - c) s (1 - s) / p for a correct answer and to -s for a wrong one, and the
    information (1 - c)² s² (1 - s)² / (p (1 - p)) to (1 - c) s² (1 - s) / p: finite for
    every s, and the score's sign is the answer's."""
    s = sigmoid(z + offset)
    p = np.maximum(c + (1.0 - c) * s, np.finfo(float).tiny)
    known = ~np.isnan(y)
    score = np.where(y > 0.5, (1.0 - c) * s * (1.0 - s) / p, -s)
    info = (1.0 - c) * s * s * (1.0 - s) / p
    return np.where(known, score, 0.0), np.where(known, info, 0.0)


def _offset_filter(
    codes: np.ndarray,
    z: np.ndarray,
    c: np.ndarray,
    y: np.ndarray,
    precision: float,
    state: np.ndarray,
) -> np.ndarray:
    """A Laplace filter of each user's logit offset over their answers, in order.

    ``codes`` name each row's user (each user's rows together, in the user's order); ``z``,
    ``c`` and ``y`` are as in ``_offset_step``. ``state`` holds, per code, the offset and
    the information gathered so far (the prior's precision not included) and is moved to
    each user's state after their last row. Each answer takes one Newton step on the
    posterior at the current offset: offset += score / (precision + information + info),
    then information += info. The step has the answer's sign, so a correct answer never
    lowers the offset and a wrong one never raises it (a step of the sums' estimate
    score_0 / (precision + information_0), taken at a zero offset, could: a correct answer to
    an easy item lowered a strong student's offset). Returns each row's (offset,
    information) before its own answer. Rows are processed one position per user at a
    time, so the loop runs as many times as the longest user has rows."""
    n = len(codes)
    before = np.zeros((n, 2))
    if n == 0:
        return before
    index = np.arange(n)
    starts = np.maximum.accumulate(np.where(np.r_[True, codes[1:] != codes[:-1]], index, 0))
    step = index - starts
    order = np.argsort(step, kind="stable")
    bounds = np.r_[0, np.flatnonzero(np.diff(step[order])) + 1, n]
    for a, b in itertools.pairwise(bounds):
        rows = order[a:b]
        users = codes[rows]
        offset, info = state[users, 0], state[users, 1]
        before[rows, 0], before[rows, 1] = offset, info
        score, gained = _offset_step(y[rows], z[rows], c[rows], offset)
        state[users, 0] = offset + score / (precision + info + gained)
        state[users, 1] = info + gained
    return before


def _grid_argmax(grid: Sequence[float], score: Callable[[float], float]) -> tuple[float, float]:
    """(best score, its value) over the ascending ``grid`` for a ``score`` with one peak:
    every fourth value first, then the values within three of the best of those."""
    scores: dict[int, float] = {}

    def at(i: int) -> float:
        if i not in scores:
            scores[i] = score(grid[i])
        return scores[i]

    last = len(grid) - 1
    best = max([*range(0, last, 4), last], key=at)
    best = max(range(max(best - 3, 0), min(best + 4, last + 1)), key=at)
    return scores[best], grid[best]


def _above_floor(p_item: np.ndarray, delta: np.ndarray, floor: float) -> np.ndarray:
    """``sigmoid(logit(p_item) + delta)`` applied above the guessing floor ``floor`` (the
    module docstring): equal to ``p_item`` where ``delta`` is 0, increasing in ``delta``."""
    if floor == 0.0:
        return sigmoid(logit(p_item) + delta)
    c, q = floored_rate(p_item, floor)
    return c + (1.0 - c) * sigmoid(logit(q) + delta)


def floored_rate(p_item: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """(c', q): each row's floor ``min(floor, p_item / 2)`` and its chance above the floor,
    ``(p_item - c') / (1 - c')``."""
    c = np.minimum(floor, p_item / 2.0)
    return c, (p_item - c) / (1.0 - c)


def _is_finite_real(value: Any) -> bool:
    """A finite real number, not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def is_guess_floor(value: Any) -> bool:
    return _is_finite_real(value) and 0.0 <= value < 0.5


def is_share(value: Any) -> bool:
    """A finite real number in [0, 1] (not a bool)."""
    return _is_finite_real(value) and 0.0 <= value <= 1.0


def _is_positive_number(value: Any) -> bool:
    return _is_finite_real(value) and value > 0
