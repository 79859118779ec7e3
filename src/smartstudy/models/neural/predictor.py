"""NeuralPredictor: the embedding model ("V2") with monotone history features and a log-time head.

What it is
    A small feed-forward network over (a) embeddings of the user, the item and the skill (in
    the app: user, "topic:difficulty" and topic) and (b) history features kept incrementally
    per user (``features``): overall / per-skill / per-item counts of correct and wrong
    answers (log-scaled and capped), smoothed success rates, difficulty-weighted "surprise"
    counts, the smoothed last-5 success rate, moving averages of the outcomes per user and per
    skill, recency-weighted counts of correct and wrong answers per user and per skill (soft
    windows of about 5 to 100 attempts; a skill's counts fade while other skills are practised)
    and the current runs of correct and wrong answers, and, for the time head only, mean
    log-time residuals overall / per skill / per item / over the last five attempts. Two heads:

    - correctness: sigmoid output trained with binary cross-entropy. The history features enter
      with non-negative weights (a shared slope plus a per-skill offset, through a softplus)
      and through monotone units, and embeddings only shift biases and scale positive gains
      (``net``), so the probability never goes down after a correct answer and never up
      after a wrong one, whatever the weights learned;
    - time: mean and log-variance of the log response time around the item's population mean,
      trained with the Gaussian negative log-likelihood; the median is ``exp(mu)`` and the 80 %
      interval ``exp(mu ± Z80 · sigma)``. The interval width is recalibrated on the validation
      split (the factor that makes 80 % of held-out times fall inside).

Why these features
    Gervet, Koedinger, Schneider & Mitchell (2020), "When is deep learning the best approach to
    knowledge tracing?", JEDM 12(3), show that logistic regression on log(1 + count) of prior
    correct and wrong attempts overall / per skill / per item plus item and skill identity
    ("Best-LR") matches deep sequence models on ASSISTments-sized data. Our features contain
    those counts, with per-skill slopes like Best-LR's per-skill coefficients; the network adds
    smoothed rates and recency, interactions with the embeddings, and the item's shrunk
    population success rate as an offset (``p_ref``, ``refs``). ``p_ref`` leaves the
    user's own attempts out, so a training row never sees its own outcome and a heavy user's
    record is not counted twice (once as "the item is easy", once as their history). Item
    embeddings are L2-penalised per use: unpenalised, they memorise training answers on this
    kind of data within two epochs.

The dominant-user problem (seed 002)
    One user with 92 % of the rows saturated the original model. ``strategy`` selects the
    remedy, one small object each in ``strategies``: ``"inverse_frequency"`` (default; per-row
    weights ∝ 1 / rows_of_user ** power, normalised to mean 1), ``"l2"`` (10× stronger L2 on
    embeddings, half-size user embedding, counts capped at 50), ``"balanced"`` (each epoch
    samples at most ``max_per_user`` rows per user), ``"progressive"`` (pre-train on each
    user's ``max_per_user`` most recent rows, then fine-tune on all rows at
    ``finetune_lr_factor`` × the learning rate), ``"per_user_heads"``
    (a shared network without user embedding, then a per-user logit gain and bias and a time
    offset, fitted by penalised Newton steps that shrink towards the shared head; unknown users
    use the shared head), and ``"none"`` (plain training, for comparison).

Robust times (issue 10)
    Times follow the plausibility rule of ``models.base`` (below 1 s counts as 1 s). In ``fit``
    they are winsorised against their item's median and MAD; online (``update`` and the rows
    of ``predict``) against the row's reference ``mu_ref`` ± 2.5 ``time_scale_``. Only a user's
    first timed attempt at an item enters the population references and trains the time head
    (each such row with the same weight; every time counts for an item too few users have
    timed), and ``time_scale_`` comes from those rows too, so one student's repeated absurd
    times cannot move another student's predicted time much. Later attempts still shape the
    user's own time features.

Training and determinism
    PyTorch on the CPU, Adam, early stopping on a validation split by student (a random
    ``val_fraction`` of the users; with fewer than ``min_val_users`` users, the last
    ``val_fraction`` of each user's attempts instead). Validation users are left out of the user
    vocabulary, so they are scored through the learned cold-start vector exactly like new users.
    ``seed`` fixes the split, the initialisation, the batches and the cold-start masks; torch
    runs on ``n_threads`` threads during ``fit`` only (restored afterwards) with its global RNG
    forked, so a fit is deterministic.

Prediction needs no torch
    Weights are exported as NumPy arrays (float64 copies of the float32 weights) and the forward
    pass is plain NumPy, so ``predict``, ``predict_one`` (a fast path that builds no DataFrame),
    ``update`` and ``save``/``load`` work where torch is not installed. The saved state holds
    JSON values and arrays only: vocabularies as lists, history counters as arrays.
"""

from __future__ import annotations

import math
import numbers
import os
import time as _time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from smartstudy.data.schema import (
    id_string,
    parse_attempt,
    sort_for_sequences,
    validate_interactions,
)
from smartstudy.models._arrays import logit, lookup, row_group_totals, sigmoid
from smartstudy.models.base import (
    POP_ATTEMPTS_PER_USER_ITEM,
    PREDICTION_COLUMNS,
    Z80,
    LearnerModel,
    log_normal_predictions,
    plausible_log_times,
    population_weights,
    robust_seconds,
    shared_time_rows,
    winsorise,
    winsorise_one,
)
from smartstudy.models.neural.features import (
    EMA_SKILL,
    EMA_USER,
    N_CORR,
    N_CORR_FOR_TIME,
    N_COUNTERS,
    PTN,
    TN,
    TRES,
    TSUM,
    WC,
    WW,
    C,
    HistoryStore,
    Smoothing,
    W,
    correctness_features,
    grouped_ema,
    grouped_exclusive,
    own_stats,
    own_stats_one,
    recent_window,
    row_contributions,
    time_features,
)
from smartstudy.models.neural.net import NetShape, NumpyNet, param_names
from smartstudy.models.neural.refs import PopulationRefs, row_stats
from smartstudy.models.neural.strategies import (
    Effective,
    Stage,
    Strategy,
    TrainingRows,
    strategy,
)
from smartstudy.models.neural.train import TrainData

# Time prediction without usable training times: log-sd 1 around the shrunk mean log time
# (whose prior is one minute, see refs), as Baseline does.
DEFAULT_LOG_TIME_SD = 1.0
# Small data: batches shrink (to no fewer than MIN_BATCH rows) so that an epoch still makes
# MIN_STEPS_PER_EPOCH optimiser steps; otherwise a few hundred rows would get one step an epoch.
MIN_STEPS_PER_EPOCH = 20
MIN_BATCH = 16
# Population references are clipped to [P_CLIP, 1 - P_CLIP] before their logit enters the net.
P_CLIP = 1e-6
# Bounds of the interval recalibration factor, and the fewest held-out rows for calibrating.
CALIBRATION_BOUNDS = (0.5, 3.0)
MIN_CALIBRATION_ROWS = 20


class NeuralPredictor(LearnerModel):
    """Embedding network with monotone history features, correctness and log-time heads.

    Parameters
    ----------
    strategy:
        Remedy against one dominant user (see the module docstring): "inverse_frequency"
        (default), "l2", "balanced", "progressive", "per_user_heads" or "none".
    d_user, d_item, d_skill:
        Embedding sizes (user embeddings small on purpose: seed 002).
    hidden, time_hidden:
        Units of the monotone correctness layer and of the time head's two layers.
    epochs, batch_size, lr, patience:
        Adam training: at most ``epochs`` passes, stopped after ``patience`` epochs without
        validation improvement (each such epoch halves the learning rate). ``batch_size`` is
        an upper bound: on small data batches shrink so an epoch makes at least 20 steps.
    val_fraction, min_val_users:
        Share of users held out for early stopping (and interval calibration); with fewer
        than ``min_val_users`` users the last ``val_fraction`` of each user's rows instead.
    frequency_power:
        "inverse_frequency" weights rows by ``1 / rows_of_user ** frequency_power``; 1 makes
        every user count equally, 0 is plain training. 0.5 halves the dominance on the log
        scale without letting a three-row user's noise weigh hundreds of times more per row.
    max_per_user:
        Rows per user per epoch for "balanced" and in the pre-training of "progressive".
    l2_embedding:
        Weight of the mean squared norm of the batch's embedding rows (user, item and skill
        vectors, item biases) added to the mean loss: a row is penalised each time it is used,
        which keeps rare items near the cold-start row (×10 for "l2"). Without it the item
        embeddings memorise training answers within two epochs.
    cold_user_rate, cold_item_rate:
        Share of users / items mapped to the cold-start row in each epoch.
    finetune_lr_factor:
        Learning-rate factor of the fine-tuning stage of "progressive".
    head_shrinkage:
        Prior precision of the per-user heads of "per_user_heads" (pseudo-attempts for the time
        offset): larger keeps users closer to the shared head.
    count_cap:
        Counts are capped at this value before ``log1p``.
    min_time_rows:
        Fewest timed training rows to train the time head; with fewer, times come from the
        shrunk per-user mean log time (default one minute, log-sd 1), as Baseline does.
    seed, n_threads:
        Seed of everything random; torch threads during ``fit``.
    """

    name: ClassVar[str] = "neural"
    predicts_time: ClassVar[bool] = True

    def __init__(
        self,
        strategy: str = "inverse_frequency",
        d_user: int = 4,
        d_item: int = 16,
        d_skill: int = 8,
        hidden: int = 32,
        time_hidden: int = 32,
        epochs: int = 30,
        batch_size: int = 1024,
        lr: float = 3e-3,
        patience: int = 3,
        val_fraction: float = 0.1,
        min_val_users: int = 10,
        frequency_power: float = 0.5,
        max_per_user: int = 150,
        l2_embedding: float = 3.0,
        cold_user_rate: float = 0.5,
        cold_item_rate: float = 0.05,
        finetune_lr_factor: float = 0.1,
        head_shrinkage: float = 10.0,
        count_cap: float = 200.0,
        min_time_rows: int = 30,
        seed: int = 0,
        n_threads: int = 1,
    ) -> None:
        self.strategy = strategy
        self.d_user = d_user
        self.d_item = d_item
        self.d_skill = d_skill
        self.hidden = hidden
        self.time_hidden = time_hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.val_fraction = val_fraction
        self.min_val_users = min_val_users
        self.frequency_power = frequency_power
        self.max_per_user = max_per_user
        self.l2_embedding = l2_embedding
        self.cold_user_rate = cold_user_rate
        self.cold_item_rate = cold_item_rate
        self.finetune_lr_factor = finetune_lr_factor
        self.head_shrinkage = head_shrinkage
        self.count_cap = count_cap
        self.min_time_rows = min_time_rows
        self.seed = seed
        self.n_threads = n_threads

    # -- hyperparameters -------------------------------------------------------------
    def _check_params(self) -> None:
        strategy(self.strategy)  # raises on an unknown name
        for name in ("d_item", "d_skill", "hidden", "time_hidden", "epochs", "batch_size"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("d_user", "patience", "min_val_users", "max_per_user", "min_time_rows"):
            value = getattr(self, name)
            if not _is_int(value) or value < (1 if name == "max_per_user" else 0):
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if not _is_int(self.seed) or not _is_int(self.n_threads) or self.n_threads < 1:
            raise ValueError(
                f"seed must be an integer and n_threads >= 1, got {self.seed!r}, {self.n_threads!r}"
            )
        for name in ("lr", "count_cap", "head_shrinkage", "finetune_lr_factor"):
            value = getattr(self, name)
            if not _is_real(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        for name in ("l2_embedding", "frequency_power"):
            value = getattr(self, name)
            if not _is_real(value) or value < 0:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
        for name in ("val_fraction", "cold_user_rate", "cold_item_rate"):
            value = getattr(self, name)
            if not _is_real(value) or not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must lie in [0, 1), got {value!r}")

    # -- fitting ---------------------------------------------------------------------
    def fit(self, df: pd.DataFrame) -> Self:
        """Train on ``df`` (replacing any earlier state); return ``self``."""
        self._check_params()
        data = validate_interactions(df)
        if len(data) == 0:
            raise ValueError("cannot fit NeuralPredictor on an empty frame")
        started = _time.perf_counter()
        strat = strategy(self.strategy)
        eff = strat.adjust(self.d_user, self.l2_embedding, float(self.count_cap))
        rows = _training_rows(data)
        ucodes = pd.factorize(rows.users)[0]
        val = self._validation_mask(rows.users, ucodes)
        fit_rows = ~val
        idx = self._fit_vocabularies(rows, fit_rows, eff)
        seq, timed_res = self._fit_history(rows, ucodes, eff)
        n_timed = int(rows.has_t.sum())
        with_time = n_timed >= max(self.min_time_rows, 2)
        net_in = self._network_inputs(rows, seq, fit_rows, idx, eff, with_time)
        weights = self._row_weights(ucodes, fit_rows)
        train_data = TrainData(
            *idx,
            net_in["xcn"],
            net_in["z"],
            net_in["logit_ref"],
            rows.y,
            net_in["t_norm"],
            _time_loss_weights(weights, rows.users, rows.items, rows.has_t),
            weights,
        )
        params, info = self._train(strat, train_data, ucodes, fit_rows, val, eff.l2)
        self.net_ = NumpyNet(self.shape_, params)
        self.net_params_ = params
        self._fit_user_heads(strat, rows, idx, net_in, fit_rows, with_time)
        self.with_time_ = with_time
        self._calibrate_intervals(rows, idx, net_in, val, timed_res)
        self.train_info_ = {
            **info,
            "n_rows": len(rows.y),
            "n_validation_rows": int(val.sum()),
            "n_timed_rows": n_timed,
            "fit_seconds": _time.perf_counter() - started,
        }
        self.fitted_ = True
        return self

    def _fit_vocabularies(
        self, rows: _TrainingRows, fit_rows: np.ndarray, eff: Effective
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Embedding vocabularies (row 0 = cold start) from the rows the network trains on;
        returns the rows' (user, item, skill) embedding rows."""
        users, items, skills = rows.users, rows.items, rows.skills
        self.user_vocab_ = _vocab(users[fit_rows]) if eff.d_user else {}
        self.item_vocab_ = _vocab(items[fit_rows])
        self.skill_vocab_ = _vocab(
            np.array([s for s in skills[fit_rows] if s is not None], dtype=object)
        )
        return (
            lookup(self.user_vocab_, users, missing=0),
            lookup(self.item_vocab_, items, missing=0),
            lookup(self.skill_vocab_, skills, missing=0),
        )

    def _fit_history(
        self, rows: _TrainingRows, ucodes: np.ndarray, eff: Effective
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Population references, history features and the time unit of the training rows.

        References are leave-user-out: every training row sees the statistics minus its
        user's whole training record (see ``refs``). Only a user's first timed attempts at an
        item count in the shared time statistics. Returns the sequence features and the
        residuals of the rows that set the time unit.
        """
        users, items, skills, y, lt, has_t = rows.columns()
        stats = row_stats(y, has_t & (population_weights(users, items, has_t) > 0), lt)
        self.refs_ = PopulationRefs.from_rows(items, skills, stats)
        self.p_global_ = self.refs_.p_global
        self.mu_global_ = self.refs_.mu_global
        own = tuple(row_group_totals(codes, stats) for codes in _user_groups(ucodes, skills, items))
        self.smoothing_ = Smoothing(prior_rate=self.p_global_, count_cap=eff.count_cap)
        seq = self._sequence_features(
            users, skills, items, y, has_t, lt, HistoryStore(self.p_global_), own
        )
        # The time unit comes from the rows that may shape shared parameters, so one user's
        # many repeated (even winsorised) times cannot stretch everyone's scale.
        timed_res = seq["res_t"][shared_time_rows(users, items, has_t)]
        self.time_scale_ = (
            float(max(np.sqrt(np.mean(timed_res**2)), 0.05)) if len(timed_res) > 1 else 1.0
        )
        self.history_ = HistoryStore.from_batch(
            users, skills, items, seq["contrib"], y, seq["res_t"], self.p_global_
        )
        self.item_skill_ = rows.item_skill
        return seq, timed_res

    def _network_inputs(
        self,
        rows: _TrainingRows,
        seq: dict[str, np.ndarray],
        fit_rows: np.ndarray,
        idx: tuple[np.ndarray, np.ndarray, np.ndarray],
        eff: Effective,
        with_time: bool,
    ) -> dict[str, np.ndarray]:
        """Standardised features (positive scales keep the monotone features monotone), the
        time head's inputs and targets, and the network's shape."""
        xc, xt = seq["xc"], seq["xt"]
        self.corr_mean_, self.corr_sd_ = _standardiser(xc[fit_rows])
        self.time_mean_, self.time_sd_ = _standardiser(xt[fit_rows])
        xcn = (xc - self.corr_mean_) / self.corr_sd_
        z = self._time_inputs(xcn, xt, seq["mu_ref"])
        self.shape_ = NetShape(
            n_users=len(self.user_vocab_) + 1,
            n_items=len(self.item_vocab_) + 1,
            n_skills=len(self.skill_vocab_) + 1,
            d_user=eff.d_user,
            d_item=self.d_item,
            d_skill=self.d_skill,
            n_corr=N_CORR,
            n_time_in=z.shape[1],
            hidden=self.hidden,
            time_hidden=self.time_hidden,
            with_time=with_time,
        )
        return {
            "xcn": xcn,
            "z": z,
            "logit_ref": logit(seq["p_ref"], clip=P_CLIP),
            "t_norm": np.where(rows.has_t, seq["res_t"] / self.time_scale_, 0.0),
        }

    def _fit_user_heads(
        self,
        strat: Strategy,
        rows: _TrainingRows,
        idx: tuple[np.ndarray, np.ndarray, np.ndarray],
        net_in: dict[str, np.ndarray],
        fit_rows: np.ndarray,
        with_time: bool,
    ) -> None:
        """Per-user heads (strategy "per_user_heads"), shrunk towards the shared head (0);
        empty for the other strategies."""
        self.head_b_ = np.zeros(0)
        self.head_g_ = np.zeros(0)
        self.head_t_ = np.zeros(0)
        self.head_users_ = {}
        if not strat.user_heads:
            return
        uidx, iidx, sidx = idx
        self.head_users_ = _vocab(rows.users[fit_rows])
        n_users_vocab = len(self.head_users_) + 1
        hidx = lookup(self.head_users_, rows.users, missing=0)
        base_logit = self.net_.correctness(uidx, iidx, sidx, net_in["xcn"], net_in["logit_ref"])
        self.head_b_, self.head_g_ = _fit_affine_logits(
            hidx[fit_rows],
            base_logit[fit_rows],
            rows.y[fit_rows],
            np.ones(int(fit_rows.sum())),
            n_users_vocab,
            self.head_shrinkage,
            keep_zero=True,
        )
        if not with_time:
            self.head_t_ = np.zeros(n_users_vocab)
            return
        t_norm = net_in["t_norm"]
        mu_n, _ = self.net_.time(uidx, iidx, sidx, net_in["z"])
        tr = fit_rows & rows.has_t
        sums = np.bincount(hidx[tr], weights=t_norm[tr] - mu_n[tr], minlength=n_users_vocab)
        cnt = np.bincount(hidx[tr], minlength=n_users_vocab)
        self.head_t_ = sums / (cnt + self.head_shrinkage)
        self.head_t_[0] = 0.0

    def _calibrate_intervals(
        self,
        rows: _TrainingRows,
        idx: tuple[np.ndarray, np.ndarray, np.ndarray],
        net_in: dict[str, np.ndarray],
        val: np.ndarray,
        timed_res: np.ndarray,
    ) -> None:
        """Interval calibration on held-out times, and the no-time-head fallback spread."""
        self.time_calibration_ = 1.0
        # Without a time head: the residual spread, shrunk towards DEFAULT_LOG_TIME_SD by one
        # pseudo-attempt (exactly the default when training had no times, as in Baseline).
        self.fallback_sigma_ = float(
            np.sqrt((np.sum(timed_res**2) + DEFAULT_LOG_TIME_SD**2) / (len(timed_res) + 1.0))
        )
        cal = val & rows.has_t
        if not self.with_time_ or cal.sum() < MIN_CALIBRATION_ROWS:
            return
        uidx, iidx, sidx = (k[cal] for k in idx)
        mu_n, logvar = self.net_.time(uidx, iidx, sidx, net_in["z"][cal])
        if len(self.head_t_):
            mu_n = mu_n + self.head_t_[lookup(self.head_users_, rows.users[cal], missing=0)]
        zabs = np.abs(net_in["t_norm"][cal] - mu_n) / np.exp(0.5 * logvar)
        factor = float(np.quantile(zabs, 0.8)) / Z80
        self.time_calibration_ = float(np.clip(factor, *CALIBRATION_BOUNDS))

    def _row_weights(self, ucodes: np.ndarray, fit_rows: np.ndarray) -> np.ndarray:
        """Per-row training weights of the strategy (mean 1 over the fit rows)."""
        return strategy(self.strategy).row_weights(ucodes, fit_rows, self.frequency_power)

    def _validation_mask(self, users: np.ndarray, ucodes: np.ndarray) -> np.ndarray:
        """Held-out rows: whole users when there are enough of them, else each user's latest."""
        n_users = int(ucodes.max()) + 1 if len(ucodes) else 0
        val = np.zeros(len(users), dtype=bool)
        if self.val_fraction <= 0 or n_users == 0:
            return val
        rng = np.random.default_rng(self.seed)
        if n_users >= max(self.min_val_users, 2):
            names = np.sort(pd.unique(users).astype(str))
            n_val = min(max(round(self.val_fraction * n_users), 1), n_users - 1)
            chosen = set(names[rng.permutation(n_users)[:n_val]].tolist())
            return np.fromiter((u in chosen for u in users), dtype=bool, count=len(users))
        counts = np.bincount(ucodes)
        from_end = (
            pd.Series(np.arange(len(users))).groupby(ucodes).cumcount(ascending=False).to_numpy()
        )
        n_hold = np.floor(self.val_fraction * counts).astype(np.int64)
        return from_end < n_hold[ucodes]

    # -- features --------------------------------------------------------------------
    def _sequence_features(
        self,
        users: np.ndarray,
        skills: np.ndarray,
        items: np.ndarray,
        y: np.ndarray,
        has_t: np.ndarray,
        lt: np.ndarray,
        store: HistoryStore,
        own: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        band: float | None = None,
    ) -> dict[str, np.ndarray]:
        """Features of rows sorted by user then order, one step ahead.

        Each row sees ``store``'s state plus the user's earlier rows, never its own outcome.
        ``own`` (the user's own statistics per row: overall, skill, item) defaults to the
        stored counters; ``fit`` passes the users' whole training records instead. ``band``
        (predict) winsorises each log time against its reference ``mu_ref`` ± ``ROBUST_Z`` ·
        ``band``, as ``update`` does; ``fit`` passes times already made robust. Returns
        ``xc``, ``xt``, ``u_cnt`` (user counters), ``p_ref``, ``mu_ref``, ``res_t`` and
        ``contrib`` (the rows' counter increments).
        """
        n = len(y)
        first = np.r_[True, users[1:] != users[:-1]] if n else np.zeros(0, dtype=bool)
        codes = np.cumsum(first) - 1  # contiguous user codes 0..k-1 in row order
        hist_rows = store.user_rows(users[first])
        u0, ry, ryn, rt_, rtn, uema0, udec0, urun0 = store.user_start(hist_rows)
        row_hist = hist_rows[codes]
        pair_rows = {
            lv: store.pair_rows(lv, row_hist, k) for lv, k in (("skill", skills), ("item", items))
        }
        starts = {lv: store.pair_table(lv, r) for lv, r in pair_rows.items()}
        if own is None:
            own = (own_stats(u0[codes]), own_stats(starts["skill"]), own_stats(starts["item"]))
        p_ref, mu_ref = self.refs_.references(items, skills, *own)
        known = ~np.isnan(y)
        timed = known & has_t
        if band is not None:
            lt = winsorise(lt, mu_ref, band)
        res_t = np.where(timed, lt - mu_ref, np.nan)
        pair_codes = {
            lv: _pair_codes(codes, keys) for lv, keys in (("skill", skills), ("item", items))
        }
        # A row's time enters the population statistics if the user had fewer than the cap of
        # timed attempts at the item before it (stored ones plus earlier rows here).
        timed_before = (
            starts["item"][:, TN]
            + grouped_exclusive(pair_codes["item"], timed.astype(float)[:, None])[:, 0]
        )
        pop = timed_before < POP_ATTEMPTS_PER_USER_ITEM
        contrib = row_contributions(y, p_ref, res_t, lt, pop)

        u_cnt = u0[codes] + grouped_exclusive(codes, contrib)
        user_ema, _ = grouped_ema(codes, y, uema0, EMA_USER)
        levels = {}
        skill_ema = np.full((n, len(EMA_SKILL)), store.prior)
        for level, pc in pair_codes.items():
            levels[level] = starts[level] + grouped_exclusive(pc, contrib)
            has = pc >= 0
            if level == "skill" and has.any():
                start = np.full((int(pc.max()) + 1, len(EMA_SKILL)), store.prior)
                start[pc[has]] = store.pair_table(level, pair_rows[level][has], "ema")
                before, _ = grouped_ema(pc, y, start, EMA_SKILL)
                skill_ema[has] = before[has]
        recency = store.batch_recency(
            codes, (u0, udec0, urun0), pair_codes["skill"], pair_rows["skill"], y, u_cnt
        )
        ys, yn = recent_window(codes, known, np.nan_to_num(y), ry, ryn)
        ts, tn = recent_window(codes, timed, np.nan_to_num(res_t), rt_, rtn)
        sm = self.smoothing_
        sk, it = levels["skill"], levels["item"]
        return {
            "xc": correctness_features(sm, u_cnt, sk, it, ys, yn, user_ema, skill_ema, *recency),
            "xt": time_features(sm, u_cnt, sk, it, ts, tn),
            "u_cnt": u_cnt,
            "p_ref": p_ref,
            "mu_ref": mu_ref,
            "res_t": res_t,
            "contrib": contrib,
        }

    def _time_inputs(self, xcn: np.ndarray, xt: np.ndarray, mu_ref: np.ndarray) -> np.ndarray:
        ref = ((mu_ref - self.mu_global_) / self.time_scale_)[:, None]
        summary = xcn[:, :N_CORR_FOR_TIME]
        return np.concatenate([(xt - self.time_mean_) / self.time_sd_, summary, ref], axis=1)

    # -- training --------------------------------------------------------------------
    def _train(
        self,
        strat: Strategy,
        data: TrainData,
        ucodes: np.ndarray,
        fit_rows: np.ndarray,
        val: np.ndarray,
        l2: float,
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Train the network through the strategy's stages (torch on ``n_threads`` threads,
        its global RNG forked, so a fit is deterministic); returns its weights and a summary."""
        import torch

        from smartstudy.models.neural.net import build_module, export_params
        from smartstudy.models.neural.train import train_stage

        val_rows = np.flatnonzero(val)
        stages = strat.stages(
            TrainingRows(ucodes, fit_rows, self.max_per_user), self.finetune_lr_factor
        )
        previous_threads = torch.get_num_threads()
        torch.set_num_threads(max(1, min(int(self.n_threads), os.cpu_count() or 1)))
        info: dict[str, Any] = {"strategy": self.strategy}
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(self.seed))
                gen = torch.Generator().manual_seed(int(self.seed))
                module = build_module(self.shape_)
                for stage in stages:
                    cfg = self._stage_config(stage, len(val_rows), l2, info)
                    result = train_stage(
                        module, data, val_rows, cfg, gen, self.shape_.n_users, self.shape_.n_items
                    )
                    if len(stages) > 1:
                        info[f"{stage.name}_epochs"] = result.epochs_run
                params = export_params(module)
        finally:
            torch.set_num_threads(previous_threads)
        info.update(
            epochs_run=result.epochs_run,
            best_epoch_correct=result.best_epoch_correct,
            best_epoch_time=result.best_epoch_time,
            best_val_correct=_finite_or_none(result.best_val_correct),
            best_val_time=_finite_or_none(result.best_val_time),
        )
        return params, info

    def _stage_config(self, stage: Stage, n_val: int, l2: float, info: dict[str, Any]) -> Any:
        """The ``TrainConfig`` of one stage; its batch size goes into ``info``. Batches
        shrink on small data so that an epoch still makes ``MIN_STEPS_PER_EPOCH`` steps."""
        import torch

        from smartstudy.models.neural.train import TrainConfig

        n_rows = len(stage.rows(0, torch.Generator().manual_seed(0)))
        batch = min(int(self.batch_size), max(MIN_BATCH, math.ceil(n_rows / MIN_STEPS_PER_EPOCH)))
        info.setdefault("batch_sizes", []).append(batch)
        return TrainConfig(
            lr=self.lr * stage.lr_factor,
            epochs=self.epochs,
            patience=self.patience if n_val else self.epochs,
            batch_size=batch,
            l2=l2,
            cold_user_rate=self.cold_user_rate,
            cold_item_rate=self.cold_item_rate,
            rows=stage.rows,
            with_time=self.shape_.with_time,
        )

    # -- prediction ------------------------------------------------------------------
    def _logits(
        self,
        users: np.ndarray,
        uidx: np.ndarray,
        iidx: np.ndarray,
        sidx: np.ndarray,
        xcn: np.ndarray,
        logit_ref: np.ndarray,
    ) -> np.ndarray:
        """The network's logit, through the user's head when the strategy has them."""
        logit = self.net_.correctness(uidx, iidx, sidx, xcn, logit_ref)
        if len(self.head_b_):
            hidx = lookup(self.head_users_, users, missing=0)
            logit = np.exp(self.head_g_[hidx]) * logit + self.head_b_[hidx]
        return logit

    def _resolve_skills(self, items: np.ndarray, skills: np.ndarray) -> np.ndarray:
        get = self.item_skill_.get
        return np.array(
            [s if s is not None else get(i) for i, s in zip(items, skills, strict=True)],
            dtype=object,
        )

    def _outputs(
        self,
        users: np.ndarray,
        items: np.ndarray,
        skills: np.ndarray,
        xc: np.ndarray,
        xt: np.ndarray,
        u_cnt: np.ndarray,
        p_ref: np.ndarray,
        mu_ref: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(p, mu, sigma) of the log time for rows with their features."""
        uidx = (
            lookup(self.user_vocab_, users, missing=0)
            if self.shape_.d_user
            else np.zeros(len(users), dtype=np.int64)
        )
        iidx = lookup(self.item_vocab_, items, missing=0)
        sidx = lookup(self.skill_vocab_, skills, missing=0)
        xcn = (xc - self.corr_mean_) / self.corr_sd_
        z_logit = self._logits(users, uidx, iidx, sidx, xcn, logit(p_ref, clip=P_CLIP))
        hidx = lookup(self.head_users_, users, missing=0) if len(self.head_b_) else None
        p = sigmoid(z_logit)
        if self.with_time_:
            z = self._time_inputs(xcn, xt, mu_ref)
            mu_n, logvar = self.net_.time(uidx, iidx, sidx, z)
            if hidx is not None and len(self.head_t_):
                mu_n = mu_n + self.head_t_[hidx]
            mu = mu_ref + self.time_scale_ * mu_n
            sigma = self.time_scale_ * self.time_calibration_ * np.exp(0.5 * logvar)
        else:
            kt = self.smoothing_.k_time
            mu = mu_ref + u_cnt[:, TRES] / (u_cnt[:, TN] + kt)
            sigma = np.full(len(p), self.fallback_sigma_)
        return p, mu, sigma

    def _predict_validated(self, data: pd.DataFrame) -> pd.DataFrame:
        m = len(data)
        if m == 0:
            return pd.DataFrame({c: np.empty(0) for c in PREDICTION_COLUMNS}, index=data.index)
        pos = sort_for_sequences(data)
        users = data["user_id"].to_numpy(dtype=object)[pos]
        items = data["item_id"].to_numpy(dtype=object)[pos]
        skills = self._resolve_skills(items, data["skill_id"].to_numpy(dtype=object)[pos])
        y = data["correct"].to_numpy(dtype=float)[pos]
        lt, has_t = plausible_log_times(data["rt_seconds"].to_numpy(dtype=float)[pos])
        seq = self._sequence_features(
            users, skills, items, y, has_t, lt, self.history_, band=self.time_scale_
        )
        p, mu, sigma = self._outputs(
            users, items, skills, seq["xc"], seq["xt"], seq["u_cnt"], seq["p_ref"], seq["mu_ref"]
        )
        return log_normal_predictions(p, mu, sigma, pos, data.index)

    def predict_one(self, user_id: Any, item_id: Any, skill_id: Any = None) -> dict[str, float]:
        """Fast single prediction from the current state (no DataFrame, NumPy forward pass)."""
        self._check_fitted()
        if _missing(user_id) or _missing(item_id):
            raise ValueError(
                f"predict_one needs a user_id and an item_id, got {user_id!r}, {item_id!r}"
            )
        user, item = id_string(user_id), id_string(item_id)
        skill = None if _missing(skill_id) else id_string(skill_id)
        if skill is None:
            skill = self.item_skill_.get(item)
        hist = self.history_.single(user, skill, item)
        u_cnt, s_cnt, i_cnt, ys, yn, ts, tn = hist[:7]
        users = np.array([user], dtype=object)
        items = np.array([item], dtype=object)
        skills = np.array([skill], dtype=object)
        own = (own_stats_one(u_cnt[0]), own_stats_one(s_cnt[0]), own_stats_one(i_cnt[0]))
        p_one, mu_one = self.refs_.reference_one(item, skill, own)
        p_ref, mu_ref = np.array([p_one]), np.array([mu_one])
        xc = correctness_features(self.smoothing_, u_cnt, s_cnt, i_cnt, ys, yn, *hist[7:])
        xt = time_features(self.smoothing_, u_cnt, s_cnt, i_cnt, ts, tn)
        p, mu, sigma = self._outputs(users, items, skills, xc, xt, u_cnt, p_ref, mu_ref)
        m, sd = float(mu[0]), float(sigma[0])
        return {
            "p_correct": float(p[0]),
            "time_median_s": math.exp(m),
            "time_p10_s": math.exp(m - Z80 * sd),
            "time_p90_s": math.exp(m + Z80 * sd),
        }

    # -- online learning -------------------------------------------------------------
    def update(self, row: Mapping[str, Any]) -> None:
        """Learn one attempt in O(1): the user's history counters and recent buffers.

        ``row`` needs ``user_id``, ``item_id`` and ``correct`` (0/1); ``skill_id`` and
        ``rt_seconds`` (positive seconds; None / NaN = unknown) are optional. Network weights
        stay fixed until the next ``fit``.
        """
        self._check_fitted()
        user, item, raw_skill, y, rt = parse_attempt(row)
        skill = raw_skill if raw_skill is not None else self.item_skill_.get(item)
        u_cnt, s_cnt, i_cnt = self.history_.single(user, skill, item)[:3]
        # One row in floats: ``references``, ``winsorise``, ``row_contributions`` and
        # ``row_stats`` for n = 1 (this runs for every completion in every serving process).
        own = (own_stats_one(u_cnt[0]), own_stats_one(s_cnt[0]), own_stats_one(i_cnt[0]))
        p_ref, mu_ref = self.refs_.reference_one(item, skill, own)
        lt_row, timed_row = plausible_log_times(np.array([rt]))
        has_t = bool(timed_row[0])
        lt = winsorise_one(float(lt_row[0]), mu_ref, self.time_scale_)
        res = lt - mu_ref if has_t else math.nan
        # The time enters the population statistics only for the user's first attempts.
        pop = has_t and float(i_cnt[0, TN]) < POP_ATTEMPTS_PER_USER_ITEM
        contrib = np.zeros(N_COUNTERS)
        if y == 1.0:
            contrib[C], contrib[WC] = 1.0, 1.0 - p_ref
        else:
            contrib[W], contrib[WW] = 1.0, p_ref
        if has_t:
            contrib[TN], contrib[TRES] = 1.0, res
        if pop:
            contrib[PTN], contrib[TSUM] = 1.0, lt
        self.history_.add(user, skill, item, contrib, y, res)
        self.refs_.add(item, skill, np.array([1.0, y, 1.0, lt] if pop else [1.0, y, 0.0, 0.0]))
        if raw_skill is not None:
            self.item_skill_[item] = raw_skill

    # -- persistence -----------------------------------------------------------------
    _ARRAY_FIELDS: ClassVar[tuple[str, ...]] = (
        "corr_mean_",
        "corr_sd_",
        "time_mean_",
        "time_sd_",
        "head_b_",
        "head_g_",
        "head_t_",
    )
    _SCALAR_FIELDS: ClassVar[tuple[str, ...]] = (
        "p_global_",
        "mu_global_",
        "time_scale_",
        "time_calibration_",
        "fallback_sigma_",
    )

    def _get_state(self) -> dict[str, Any]:
        sh = self.shape_
        state: dict[str, Any] = {
            k[:-1]: np.asarray(getattr(self, k), dtype=float).copy() for k in self._ARRAY_FIELDS
        }
        state.update({k[:-1]: float(getattr(self, k)) for k in self._SCALAR_FIELDS})
        state.update(
            {
                "shape": {
                    "n_users": sh.n_users,
                    "n_items": sh.n_items,
                    "n_skills": sh.n_skills,
                    "d_user": sh.d_user,
                    "d_item": sh.d_item,
                    "d_skill": sh.d_skill,
                    "n_corr": sh.n_corr,
                    "n_time_in": sh.n_time_in,
                    "hidden": sh.hidden,
                    "time_hidden": sh.time_hidden,
                    "with_time": sh.with_time,
                },
                "with_time": bool(self.with_time_),
                "smoothing": {
                    k: float(getattr(self.smoothing_, k)) for k in Smoothing.__dataclass_fields__
                },
                "user_vocab": list(self.user_vocab_),
                "item_vocab": list(self.item_vocab_),
                "skill_vocab": list(self.skill_vocab_),
                "head_users": list(self.head_users_),
                "item_skill_items": list(self.item_skill_),
                "item_skill_skills": list(self.item_skill_.values()),
                "train_info": dict(self.train_info_),
            }
        )
        for k, v in self.net_params_.items():
            state[k] = v.copy()
        state.update(self.history_.to_state())
        state.update(self.refs_.to_state())
        return state

    def _set_state(self, state: dict[str, Any]) -> None:
        self._check_params()
        shape = NetShape(
            **{k: (bool(v) if k == "with_time" else int(v)) for k, v in state["shape"].items()}
        )
        params = {k: np.asarray(state[k], dtype=float) for k in param_names(shape)}
        for k, v in params.items():
            if not np.isfinite(v).all():
                raise ValueError(f"non-finite network weights in {k}")
        if params["net_c_item__weight"].shape != (shape.n_items, shape.d_item) or params[
            "net_c_Wm"
        ].shape != (shape.n_corr, shape.hidden):
            raise ValueError("network weights do not match the stored shape")
        user_vocab = _ids_to_index(state["user_vocab"], 1)
        item_vocab = _ids_to_index(state["item_vocab"], 1)
        skill_vocab = _ids_to_index(state["skill_vocab"], 1)
        if (
            (shape.d_user and len(user_vocab) + 1 != shape.n_users)
            or len(item_vocab) + 1 != shape.n_items
            or len(skill_vocab) + 1 != shape.n_skills
            or shape.n_corr != N_CORR
        ):
            raise ValueError("vocabularies do not match the network shape")
        arrays = {k: np.asarray(state[k[:-1]], dtype=float) for k in self._ARRAY_FIELDS}
        for name in ("corr_mean_", "corr_sd_"):
            if arrays[name].shape != (N_CORR,):
                raise ValueError(f"{name} has shape {arrays[name].shape}, expected ({N_CORR},)")
        for k, v in arrays.items():
            if not np.isfinite(v).all():
                raise ValueError(f"non-finite values in {k}")
        items = [str(v) for v in state["item_skill_items"]]
        skills = [str(v) for v in state["item_skill_skills"]]
        if len(items) != len(skills):
            raise ValueError("item_skill lists differ in length")
        self.shape_ = shape
        self.net_params_ = params
        self.net_ = NumpyNet(shape, params)
        self.user_vocab_, self.item_vocab_, self.skill_vocab_ = user_vocab, item_vocab, skill_vocab
        self.head_users_ = _ids_to_index(state["head_users"], 1)
        if len(arrays["head_b_"]) and len(arrays["head_b_"]) != len(self.head_users_) + 1:
            raise ValueError("per-user heads do not match their users")
        for k, v in arrays.items():
            setattr(self, k, v)
        for k in self._SCALAR_FIELDS:
            setattr(self, k, float(state[k[:-1]]))
        self.with_time_ = bool(state["with_time"])
        self.smoothing_ = Smoothing(**{k: float(v) for k, v in state["smoothing"].items()})
        self.item_skill_ = dict(zip(items, skills, strict=True))
        self.train_info_ = dict(state["train_info"])
        self.history_ = HistoryStore.from_state(state)
        self.refs_ = PopulationRefs.from_state(state)


# -- helpers ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _TrainingRows:
    """Training rows sorted by user, then order, with robust log times (``lt``, 0 where
    ``has_t`` is False) and each item's skill (the last one named for it)."""

    users: np.ndarray
    items: np.ndarray
    skills: np.ndarray
    y: np.ndarray
    lt: np.ndarray
    has_t: np.ndarray
    item_skill: dict[str, str]

    def columns(self) -> tuple[np.ndarray, ...]:
        """(users, items, skills, y, lt, has_t)."""
        return self.users, self.items, self.skills, self.y, self.lt, self.has_t


def _training_rows(data: pd.DataFrame) -> _TrainingRows:
    """The validated frame's rows in sequence order, with plausible times winsorised against
    their item's robust band (``models.base``), so that absurd times neither train the time
    head nor move the population references."""
    pos = sort_for_sequences(data)
    items = data["item_id"].to_numpy(dtype=object)[pos]
    raw_skills = data["skill_id"].to_numpy(dtype=object)[pos]
    robust = robust_seconds(data)[pos]
    has_t = ~np.isnan(robust)
    # An item's skill is the last one named for it (update() overwrites the same way).
    item_skill: dict[str, str] = {}
    for it, sk in zip(items, raw_skills, strict=True):
        if sk is not None:
            item_skill[it] = sk
    skills = np.array(
        [
            sk if sk is not None else item_skill.get(it)
            for it, sk in zip(items, raw_skills, strict=True)
        ],
        dtype=object,
    )
    return _TrainingRows(
        users=data["user_id"].to_numpy(dtype=object)[pos],
        items=items,
        skills=skills,
        y=data["correct"].to_numpy(dtype=float)[pos],
        lt=np.log(np.where(has_t, robust, 1.0)),
        has_t=has_t,
        item_skill=item_skill,
    )


def _time_loss_weights(
    weights: np.ndarray, users: np.ndarray, items: np.ndarray, has_t: np.ndarray
) -> np.ndarray:
    """Per-row factors of the time loss (it weighs a row by ``weights * factor``).

    Only ``shared_time_rows`` train the time head (a user's first timed attempt(s) at an item,
    or every time of an item too few users have timed), each with the same weight: a student
    who repeats one item with absurd or unusual times counts there like any other student,
    however few rows they have elsewhere (inverse-frequency weights would favour such a light
    user). Later attempts still shape the user's own time features.
    """
    counted = shared_time_rows(users, items, has_t)
    return np.where(counted, 1.0 / np.maximum(weights, 1e-12), 0.0)


def _pair_codes(user_codes: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Codes 0..k-1 of the (user, key) pairs of rows; -1 where the key is None."""
    key_codes, _ = pd.factorize(keys, use_na_sentinel=True)
    pair = np.where(key_codes >= 0, user_codes * (int(key_codes.max()) + 2) + key_codes, -1)
    return np.where(pair >= 0, pd.factorize(pair)[0], -1)


def _user_groups(
    ucodes: np.ndarray, skills: np.ndarray, items: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group codes of user, (user, skill) (-1 without a skill) and (user, item) per row."""
    out = [ucodes]
    for keys in (skills, items):
        k, _ = pd.factorize(keys, use_na_sentinel=True)
        pair = np.where(k >= 0, ucodes * (int(k.max()) + 2) + k, -1)
        out.append(np.where(pair >= 0, pd.factorize(pair)[0], -1))
    return out[0], out[1], out[2]


def _vocab(ids: np.ndarray) -> dict[str, int]:
    """Index 1.. of each distinct id in order of first appearance (0 is the cold-start row)."""
    return {str(v): k + 1 for k, v in enumerate(pd.unique(np.asarray(ids, dtype=object)))}


def _ids_to_index(ids: list[Any], offset: int) -> dict[str, int]:
    out = {str(v): k + offset for k, v in enumerate(ids)}
    if len(out) != len(ids):
        raise ValueError("duplicate ids in a vocabulary")
    return out


def _standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0) if len(x) else np.zeros(x.shape[1])
    sd = x.std(axis=0) if len(x) else np.ones(x.shape[1])
    return mean, np.where(sd > 1e-6, sd, 1.0)


def _fit_affine_logits(
    groups: np.ndarray,
    base: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    n_groups: int,
    shrinkage: float,
    keep_zero: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-group (bias b, log-gain g) of ``exp(g) * logit + b`` by penalised Gauss-Newton.

    Minimises each group's weighted cross-entropy plus ``shrinkage / 2 * (b^2 + g^2)``, so a
    group with little data stays at the identity (b = g = 0). The gain is positive, so the
    map keeps the logit monotone. With ``keep_zero`` group 0 (unknown users) stays at 0.
    """
    b = np.zeros(n_groups)
    g = np.zeros(n_groups)
    for _ in range(25):
        x = np.exp(g[groups]) * base
        q = sigmoid(x + b[groups])
        r = weights * (q - y)
        h = weights * q * (1.0 - q)
        gb = np.bincount(groups, weights=r, minlength=n_groups) + shrinkage * b
        gg = np.bincount(groups, weights=r * x, minlength=n_groups) + shrinkage * g
        hbb = np.bincount(groups, weights=h, minlength=n_groups) + shrinkage
        hbg = np.bincount(groups, weights=h * x, minlength=n_groups)
        hgg = np.bincount(groups, weights=h * x * x, minlength=n_groups) + shrinkage
        det = hbb * hgg - hbg * hbg
        db = (hgg * gb - hbg * gg) / det
        dg = (hbb * gg - hbg * gb) / det
        b = b - np.clip(db, -1.0, 1.0)
        g = np.clip(g - np.clip(dg, -0.5, 0.5), -2.0, 2.0)
    if keep_zero:
        b[0] = 0.0
        g[0] = 0.0
    return b, g


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
