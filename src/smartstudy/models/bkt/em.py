"""Baum-Welch EM for Bayesian Knowledge Tracing, vectorised across sequences, skills and restarts.

Knowledge tracing (Corbett & Anderson 1995, "Knowledge tracing", UMUAI 4) is a two-state
hidden Markov model per skill; its parameters are fitted by the EM algorithm of Baum, Petrie,
Soules & Weiss (1970), "A maximization technique occurring in the statistical analysis of
probabilistic functions of Markov chains", Ann. Math. Statist. 41(1), as pyBKT does
(Badrinath, Wang & Pardos 2021, "pyBKT: An Accessible Python Library of Bayesian Knowledge
Tracing Models", EDM 2021) with a compiled E-step.

Why it is fast without compiled code
    Every (restart, skill, student) sequence is one row of a single batch. The sequences are
    sorted by length (longest first) and stored *time-major*: step ``t`` holds the ``t``-th
    attempt of every sequence longer than ``t``, and those sequences are a prefix of the
    sorted order. The forward and backward passes are one loop over time steps whose body is
    two or three NumPy operations on contiguous slices, so the number of Python-level
    iterations is the longest sequence's length, whatever the number of sequences, skills or
    restarts. Everything that is not a recursion (answer likelihoods, expected counts,
    log-likelihoods) is computed for all attempts at once, in buffers allocated once per
    batch, and summed per model with ``bincount``.

The two-state chain keeps both passes scalar. The forward pass runs on the odds of mastery,
``O = P(L) / P(not L)``: Bayes' rule multiplies them by the likelihood ratio of the answer,
and the learning transition is a multiply-add. Odds keep full relative precision at both
ends: a probability saturates at 1.0 after a few confident answers and then, without
forgetting, ignores every later wrong answer (1.0 is absorbing in floating point though not
in exact arithmetic), which costs thousands of log-likelihood units on real data. The
backward pass is the Rauch-Tung-Striebel form of the smoother, ``g_t = P(L_t | all answers)
= f_t ((1 - F) g_{t+1} / p_{t+1} + F (1 - g_{t+1}) / (1 - p_{t+1}))``, and the expected
transitions follow from the same ratios.

Each (restart, skill) is its own model: convergence is judged per model (converged models are
frozen, and dropped from the batch once they hold a large share of it), steps are
over-relaxed per model (adaptive over-relaxed EM, Salakhutdinov & Roweis 2003, ICML), the
best restart of each skill is kept, and the M-step clips each parameter to its bounds. The
expected complete-data log-likelihood separates into one concave Bernoulli term per
parameter, so the clipped update is the exact constrained maximiser and a plain EM step never
lowers the likelihood.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from smartstudy.models.bkt.core import DEFAULT_PARAMS, PARAM_NAMES, BKTParams

# Default bounds of each parameter. They keep every probability strictly inside (0, 1), so
# that the passes never divide by zero, and guess and slip at most one half: above that the
# two states swap meaning, the classic degenerate solution of BKT's EM.
DEFAULT_BOUNDS: dict[str, tuple[float, float]] = {
    "l0": (1e-4, 0.9999),
    "t": (1e-4, 0.9999),
    "s": (1e-4, 0.5),
    "g": (1e-4, 0.5),
    "f": (0.0, 0.5),
}
# Ranges of the random starting points of restarts after the first (intersected with the
# bounds): moderate values, as in pyBKT's random initialisation, from which EM reaches the
# sensible optimum rather than a degenerate one.
_INIT_RANGES: dict[str, tuple[float, float]] = {
    "l0": (0.05, 0.8),
    "t": (0.02, 0.4),
    "s": (0.02, 0.3),
    "g": (0.02, 0.4),
    "f": (0.0, 0.2),
}
# Converged models are dropped from the batch once they hold this share of its attempts:
# rebuilding the batch costs about one E-step, so it only pays when much work is saved.
_REPACK_SHARE = 0.4
# Odds of mastery are capped here (P(not learned) = 1e-200, certain mastery for every
# purpose) so that the arithmetic after the passes stays finite.
_MAX_ODDS = 1e200
# Over-relaxation: the step factor grows by this much after each accepted step, up to the
# maximum, and falls back to 1 (plain EM) after a step that lowered the likelihood.
_OMEGA_GROWTH = 1.5
_OMEGA_MAX = 8.0
# Expected counts below this are rounding noise, not evidence for an M-step estimate.
_MIN_COUNT = 1e-9
# Relative changes of a log-likelihood below this are rounding noise.
_NOISE = 1e-12


@dataclass(frozen=True)
class EMResult:
    """The outcome of fitting one skill.

    ``params`` come from the restart with the highest ``log_likelihood`` (the log of
    P(all answers | params), summed over the skill's sequences); ``n_iter`` counts that
    restart's E-steps; ``converged`` says whether it met ``tol`` before ``max_iter``.
    ``restart_log_likelihoods`` lists every restart's final log-likelihood.
    """

    params: BKTParams
    log_likelihood: float
    n_iter: int
    converged: bool
    n_obs: int
    n_sequences: int
    best_restart: int
    restart_log_likelihoods: tuple[float, ...] = field(default=())


def resolve_bounds(
    bounds: Mapping[str, Sequence[float]] | None = None, *, forgets: bool = False
) -> dict[str, tuple[float, float]]:
    """Complete ``bounds`` with :data:`DEFAULT_BOUNDS` and check them.

    Each entry is ``(min, max)``. ``l0, t, s, g`` must stay inside the open interval (0, 1)
    and ``f`` inside [0, 1); without ``forgets`` the forgetting bound is (0, 0).
    """
    out = dict(DEFAULT_BOUNDS)
    for name, pair in (bounds or {}).items():
        if name not in DEFAULT_BOUNDS:
            raise ValueError(f"unknown parameter {name!r} in bounds; expected {list(PARAM_NAMES)}")
        try:
            lo, hi = (float(v) for v in pair)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"bounds[{name!r}] must be a (min, max) pair, got {pair!r}") from exc
        out[name] = (lo, hi)
    for name, (lo, hi) in out.items():
        low_ok = lo >= 0.0 if name == "f" else lo > 0.0
        if not (np.isfinite(lo) and np.isfinite(hi) and low_ok and lo <= hi < 1.0):
            kind = "[0, 1)" if name == "f" else "(0, 1)"
            raise ValueError(f"bounds[{name!r}] = ({lo}, {hi}) must be ordered and lie in {kind}")
    if not forgets:
        out["f"] = (0.0, 0.0)
    return out


def _bounds_arrays(bounds: Mapping[str, tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    lo = np.array([bounds[n][0] for n in PARAM_NAMES])
    hi = np.array([bounds[n][1] for n in PARAM_NAMES])
    return lo, hi


def initial_params(
    n_skills: int,
    n_restarts: int,
    bounds: Mapping[str, tuple[float, float]],
    rng: np.random.Generator,
    first: BKTParams = DEFAULT_PARAMS,
) -> np.ndarray:
    """Starting points, shape ``(n_restarts * n_skills, 5)``, restart-major.

    Restart 0 starts every skill at ``first`` (the documented defaults): a sensible point that
    makes a single-restart fit independent of the random draw. The other restarts draw each
    parameter uniformly from a moderate range. All are clipped to the bounds.
    """
    lo, hi = _bounds_arrays(bounds)
    draws = np.empty((n_restarts, n_skills, len(PARAM_NAMES)))
    draws[0] = np.array([getattr(first, n) for n in PARAM_NAMES])
    for k, name in enumerate(PARAM_NAMES):
        a, b = _INIT_RANGES[name]
        draws[1:, :, k] = rng.uniform(a, b, size=(n_restarts - 1, n_skills))
    return np.clip(draws.reshape(n_restarts * n_skills, -1), lo, hi)


# -- the time-major layout -------------------------------------------------------------------------
@dataclass(frozen=True)
class TimeMajorBatch:
    """Sequences laid out time-major: attempt ``t`` of the ``j``-th longest sequence sits at
    slot ``offsets[t] + j``; the ``counts[t]`` sequences still running at step ``t`` are the
    first ``counts[t]`` ranks, so each step is one contiguous slice.

    ``position`` maps each input attempt (sequence-major order) to its slot:
    ``slots[position] = values`` reorders a per-attempt array, ``slots[position]`` restores
    it. ``seq_order`` lists the sequence ids by rank (longest first), ``seq_of`` gives each
    slot's sequence id and ``last_slot`` each sequence's (by id) last slot.
    """

    offsets: list[int]
    counts: list[int]
    position: np.ndarray
    seq_order: np.ndarray
    seq_of: np.ndarray
    last_slot: np.ndarray

    @property
    def n_steps(self) -> int:
        return len(self.counts)

    @property
    def n_slots(self) -> int:
        return len(self.position)


def time_major_batch(lengths: np.ndarray) -> TimeMajorBatch:
    """The layout of sequences with the given lengths (each >= 1), given sequence-major."""
    lengths = np.asarray(lengths, dtype=np.int64)
    n_seq = len(lengths)
    if n_seq == 0:
        empty = np.zeros(0, dtype=np.int64)
        return TimeMajorBatch([], [], empty, empty, empty, empty)
    if lengths.min() < 1:
        raise ValueError("every sequence needs at least one attempt")
    # Stable: equal lengths keep their input order, so the layout is deterministic.
    seq_order = np.argsort(-lengths, kind="stable")
    rank = np.empty(n_seq, dtype=np.int64)
    rank[seq_order] = np.arange(n_seq)
    max_len = int(lengths.max())
    # counts[t] = number of sequences longer than t.
    at_least = np.cumsum(np.bincount(lengths, minlength=max_len + 1)[::-1])[::-1]
    counts = at_least[1 : max_len + 1].astype(np.int64)
    offsets = np.zeros(max_len, dtype=np.int64)
    np.cumsum(counts[:-1], out=offsets[1:])
    ends = np.cumsum(lengths)
    seq_ids = np.repeat(np.arange(n_seq), lengths)
    step = np.arange(int(ends[-1]), dtype=np.int64) - (ends - lengths)[seq_ids]
    position = offsets[step] + rank[seq_ids]
    seq_of = np.empty(len(position), dtype=np.int64)
    seq_of[position] = seq_ids
    # Python ints: the loops index with them thousands of times per pass.
    return TimeMajorBatch(
        offsets.tolist(), counts.tolist(), position, seq_order, seq_of, position[ends - 1]
    )


# -- forward and backward passes -------------------------------------------------------------------
@dataclass(frozen=True)
class ForwardPass:
    """Per slot: ``pred`` = P(L_t | earlier answers) and ``pred_not`` = 1 - pred; ``filt`` =
    P(L_t | answers up to t) and ``filt_not`` = 1 - filt. The complements come from the odds,
    not from ``1 - p``, so that a tiny probability keeps its relative precision."""

    pred: np.ndarray
    pred_not: np.ndarray
    filt: np.ndarray
    filt_not: np.ndarray


def _probabilities(odds: np.ndarray, p: np.ndarray, not_p: np.ndarray) -> None:
    """``p = O / (1 + O)`` and ``not_p = 1 / (1 + O)`` into the given buffers (O <= _MAX_ODDS;
    ``p`` may be ``odds`` itself)."""
    np.add(odds, 1.0, out=not_p)
    np.divide(1.0, not_p, out=not_p)
    np.multiply(odds, not_p, out=p)


def _forward_odds(
    layout: TimeMajorBatch,
    odds: np.ndarray,
    post: np.ndarray,
    ratio: np.ndarray,
    learn: np.ndarray,
    forget: np.ndarray | None,
    *,
    per_rank: bool,
) -> None:
    """Predicted odds (``odds``, whose first step the caller has set) and filtered odds
    (``post``) of mastery for every slot, in place.

    Bayes' rule multiplies the odds by ``ratio`` = P(answer | L) / P(answer | not L); the
    transition maps them to ``(O (1 - F) + T) / (O F + 1 - T)``, without forgetting the
    multiply-add ``O a + b``. ``learn`` (T) and ``forget`` (F, None for no forgetting) are
    indexed by slot, or by sequence rank when ``per_rank`` (in EM they are constant along a
    sequence, which spares gathering them per slot).
    """
    if layout.n_steps == 0:
        return
    counts, offsets = layout.counts, layout.offsets
    if forget is None:
        a = 1.0 / (1.0 - learn)
        b = learn * a
    else:
        stay = 1.0 - forget
        not_learn = 1.0 - learn
    last = layout.n_steps - 1
    # Without forgetting the odds may overflow to inf (beyond 1e308: certain mastery); inf
    # stays inf under both steps and is capped to _MAX_ODDS afterwards.
    with np.errstate(over="ignore"):
        for t in range(layout.n_steps):
            o = offsets[t]
            e = o + counts[t]
            np.multiply(odds[o:e], ratio[o:e], out=post[o:e])
            if t == last:
                break
            c = counts[t + 1]
            # The running sequences are the first c of this step; their next slots follow.
            k = 0 if per_rank else o
            src = post[o : o + c]
            nxt = odds[e : e + c]
            if forget is None:
                np.multiply(src, a[k : k + c], out=nxt)
                nxt += b[k : k + c]
            else:
                # Capped first, so that O F stays finite (inf * 0 would be NaN).
                np.minimum(src, _MAX_ODDS, out=src)
                den = src * forget[k : k + c]
                den += not_learn[k : k + c]
                np.multiply(src, stay[k : k + c], out=nxt)
                nxt += learn[k : k + c]
                nxt /= den
    np.minimum(odds, _MAX_ODDS, out=odds)
    np.minimum(post, _MAX_ODDS, out=post)


def forward_filter(
    layout: TimeMajorBatch,
    p0: np.ndarray,
    e1: np.ndarray,
    e0: np.ndarray,
    learn: np.ndarray,
    forget: np.ndarray,
) -> ForwardPass:
    """The forward pass of knowledge tracing (Corbett & Anderson 1995) over a batch.

    ``p0``: each sequence's mastery before its first attempt, by sequence rank
    (``layout.seq_order`` order). Per slot: ``e1`` / ``e0`` the likelihood of the observed
    answer given learned / not learned (1 and 1 for an unknown answer), ``learn`` (T) and
    ``forget`` (F) the transition after the attempt (0 and 0 for none).
    """
    n = layout.n_slots
    p0 = np.clip(np.asarray(p0, dtype=float), 0.0, 1.0)
    odds = np.empty(n)
    post = np.empty(n)
    if layout.n_steps:
        with np.errstate(divide="ignore"):
            odds[: layout.counts[0]] = np.minimum(p0 / (1.0 - p0), _MAX_ODDS)
    use_forget = forget if bool(np.any(forget > 0.0)) else None
    _forward_odds(layout, odds, post, e1 / e0, learn, use_forget, per_rank=False)
    out = ForwardPass(np.empty(n), np.empty(n), np.empty(n), np.empty(n))
    _probabilities(odds, out.pred, out.pred_not)
    _probabilities(post, out.filt, out.filt_not)
    return out


def _backward(
    layout: TimeMajorBatch,
    fwd: ForwardPass,
    forget: np.ndarray | None,
    g: np.ndarray,
    r1: np.ndarray,
    r0: np.ndarray | None,
) -> None:
    """Smoothed mastery by the Rauch-Tung-Striebel recursion of the two-state chain.

    Fills ``g_t = P(L_t | all answers) = f_t ((1 - F) r1_t + F r0_t)`` with ``r1_t = g_{t+1} /
    p_{t+1}`` and ``r0_t = (1 - g_{t+1}) / (1 - p_{t+1})``; ``g_t = f_t`` at a sequence's last
    attempt, where ``r1`` and ``r0`` are 0. ``forget`` is by rank (None: no forgetting, and
    ``r0`` is not needed).
    """
    # Only the last slots keep these values; the loop writes every other slot.
    last = layout.last_slot
    g[last] = fwd.filt[last]
    r1[last] = 0.0
    if r0 is not None:
        r0[last] = 0.0
    counts, offsets = layout.counts, layout.offsets
    pred, pred_not, filt = fwd.pred, fwd.pred_not, fwd.filt
    for t in range(layout.n_steps - 2, -1, -1):
        o = offsets[t]
        c = counts[t + 1]
        on = offsets[t + 1]
        here = g[o : o + c]
        ones = r1[o : o + c]
        np.divide(g[on : on + c], pred[on : on + c], out=ones)
        if forget is None or r0 is None:
            np.multiply(filt[o : o + c], ones, out=here)
        else:
            zeros = r0[o : o + c]
            np.subtract(1.0, g[on : on + c], out=zeros)
            zeros /= pred_not[on : on + c]
            fg = forget[:c]
            np.multiply(ones, 1.0 - fg, out=here)
            here += zeros * fg
            here *= filt[o : o + c]


# -- EM over many models at once -------------------------------------------------------------------
@dataclass(frozen=True)
class _Batch:
    """The attempts of the models still being fitted, time-major, with their constants and
    views of the E-step's buffers."""

    layout: TimeMajorBatch
    model: np.ndarray  # model per slot
    table_index: np.ndarray  # 2 * model + answer: index into per-model answer tables
    rank_model: np.ndarray  # model per sequence rank
    seq_model: np.ndarray  # model per sequence id
    models: np.ndarray  # the models present
    n_obs: np.ndarray  # per model: attempts,
    n_correct: np.ndarray  # correct answers,
    n_seq: np.ndarray  # sequences,
    buffers: dict[str, np.ndarray]


_BUFFERS = ("pred", "pred_not", "filt", "filt_not", "g", "r1", "tmp")


def _workspace(n: int, forgets: bool) -> dict[str, np.ndarray]:
    """The E-step's buffers, allocated once per fit at the first (largest) batch's size and
    shared by the smaller batches after repacking: a fresh large array costs its first-touch
    page faults, which on a busy machine rival the arithmetic of a whole E-step."""
    return {k: np.empty(n) for k in (*_BUFFERS, "r0") if k != "r0" or forgets}


def _make_batch(
    y: np.ndarray,
    lengths: np.ndarray,
    seq_model: np.ndarray,
    counts: tuple[np.ndarray, np.ndarray, np.ndarray],
    work: dict[str, np.ndarray],
) -> _Batch:
    """The batch of the given sequences; ``counts`` = (attempts, correct answers, sequences)
    per model, which do not change when converged models are dropped."""
    layout = time_major_batch(lengths)
    n = layout.n_slots
    y_slot = np.empty(n, dtype=np.int64)
    y_slot[layout.position] = y
    model = seq_model[layout.seq_of]
    table_index = 2 * model
    table_index += y_slot
    return _Batch(
        layout=layout,
        model=model,
        table_index=table_index,
        rank_model=seq_model[layout.seq_order],
        seq_model=seq_model,
        models=np.unique(seq_model),
        n_obs=counts[0],
        n_correct=counts[1],
        n_seq=counts[2],
        buffers={k: v[:n] for k, v in work.items()},
    )


def _model_counts(
    y: np.ndarray, lengths: np.ndarray, seq_model: np.ndarray, n_models: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Attempts, correct answers and sequences per model."""
    starts = np.cumsum(lengths) - lengths
    correct = np.add.reduceat(y, starts) if len(y) else np.zeros(0)
    return (
        np.bincount(seq_model, weights=lengths, minlength=n_models),
        np.bincount(seq_model, weights=correct, minlength=n_models),
        np.bincount(seq_model, minlength=n_models).astype(float),
    )


def _e_step(batch: _Batch, params: np.ndarray, forgets: bool) -> tuple[np.ndarray, np.ndarray]:
    """Log-likelihood per model and the expected counts of the M-step (one row per model)."""
    n_models = len(params)
    l0, t, s, g, f = params.T
    layout = batch.layout
    buf = batch.buffers
    # P(answer | learned) and P(answer | not learned), by 2 * model + answer.
    e1 = np.column_stack([s, 1.0 - s]).ravel()[batch.table_index]
    e0 = np.column_stack([1.0 - g, g]).ravel()[batch.table_index]
    ratio = np.divide(e1, e0, out=buf["tmp"])
    # The odds are computed in the buffers of the probabilities, which replace them.
    odds, post = buf["pred"], buf["filt"]
    if layout.n_steps:
        first_models = batch.rank_model[: layout.counts[0]]
        odds[: layout.counts[0]] = (l0 / (1.0 - l0))[first_models]
    rank_f = f[batch.rank_model] if forgets else None
    _forward_odds(layout, odds, post, ratio, t[batch.rank_model], rank_f, per_rank=True)
    fwd = ForwardPass(buf["pred"], buf["pred_not"], buf["filt"], buf["filt_not"])
    _probabilities(odds, fwd.pred, fwd.pred_not)
    _probabilities(post, fwd.filt, fwd.filt_not)
    gam, r1, r0 = buf["g"], buf["r1"], buf.get("r0")
    _backward(layout, fwd, rank_f, gam, r1, r0)

    m = batch.model
    tmp = buf["tmp"]

    def per_model(weights: np.ndarray, idx: np.ndarray = m) -> np.ndarray:
        return np.bincount(idx, weights=weights, minlength=n_models)

    # log P(answer_t | earlier answers) = log(p e1 + (1 - p) e0); summed, the log-likelihood.
    np.multiply(fwd.pred, e1, out=tmp)
    e0 *= fwd.pred_not
    tmp += e0
    np.log(tmp, out=tmp)
    loglik = per_model(tmp)
    # Expected learned attempts, split by answer in one pass: bins 2 m (wrong), 2 m + 1 (right).
    by_answer = np.bincount(batch.table_index, weights=gam, minlength=2 * n_models)
    gam_y = by_answer[1::2]
    gam_sum = by_answer[0::2] + gam_y
    gam_last = per_model(gam[layout.last_slot], batch.seq_model)
    # E[# not learned -> learned] = sum_t P(not L_t | y<=t) T g_{t+1} / p_{t+1}: T is
    # constant per model, so it multiplies the per-model sum. Likewise F for forgetting.
    np.multiply(fwd.filt_not, r1, out=tmp)
    xi01 = t * per_model(tmp)
    if r0 is not None:
        np.multiply(fwd.filt, r0, out=tmp)
        xi10 = f * per_model(tmp)
    else:
        xi10 = np.zeros(n_models)
    first = layout.counts[0] if layout.n_steps else 0
    stats = np.column_stack(
        [
            per_model(gam[:first], batch.rank_model[:first]),  # E[learned at attempt 1]
            gam_sum,  # E[learned attempts]
            gam_y,  # E[learned and correct]
            xi01,
            gam_sum - gam_last,  # E[learned attempts followed by another]
            xi10,
        ]
    )
    return loglik, stats


def _m_step(
    params: np.ndarray,
    stats: np.ndarray,
    batch: _Batch,
    lo: np.ndarray,
    hi: np.ndarray,
    forgets: bool,
) -> np.ndarray:
    """Maximise the expected complete-data log-likelihood, each parameter within its bounds."""
    first, gam, gam_y, xi01, gam_next, xi10 = stats.T
    n_with_next = batch.n_obs - batch.n_seq
    not_next = n_with_next - gam_next
    # Each estimate needs evidence: sequences for l0, second attempts for t and f, attempts
    # in the state for s and g. Without it (e.g. t of a skill whose every student answered
    # once, where the denominator is 0 up to rounding noise) a parameter keeps its value.
    estimates = (
        (first, batch.n_seq, batch.n_seq > 0),
        (xi01, not_next, n_with_next > 0),
        (gam - gam_y, gam, batch.n_obs > 0),
        (batch.n_correct - gam_y, batch.n_obs - gam, batch.n_obs > 0),
        (xi10, gam_next, (n_with_next > 0) & forgets),
    )
    new = params.copy()
    for k, (num, den, has_evidence) in enumerate(estimates):
        ok = has_evidence & (den > _MIN_COUNT)
        new[ok, k] = num[ok] / den[ok]
    return np.clip(new, lo, hi)


def fit_em_batch(
    y: np.ndarray,
    lengths: np.ndarray,
    seq_skill: np.ndarray,
    n_skills: int,
    *,
    n_restarts: int = 1,
    max_iter: int = 100,
    tol: float = 1e-4,
    bounds: Mapping[str, Sequence[float]] | None = None,
    forgets: bool = False,
    seed: int | None = 0,
    first_params: BKTParams = DEFAULT_PARAMS,
) -> list[EMResult | None]:
    """Fit one BKT model per skill by EM, all skills and restarts in one vectorised batch.

    ``y`` holds the answers (0/1) of every sequence one after the other (sequence-major);
    ``lengths[j]`` is the number of attempts of sequence ``j`` (one student on one skill, in
    the order attempted) and ``seq_skill[j]`` its skill, in ``0..n_skills-1``. A restart has
    converged when an accepted step raises its log-likelihood by less than ``tol`` per
    attempt (after at least three E-steps); it stops there or after ``max_iter`` E-steps.
    Returns one :class:`EMResult` per skill, ``None`` for a skill without sequences.
    """
    y = np.asarray(y, dtype=float)
    lengths = np.asarray(lengths, dtype=np.int64)
    seq_skill = np.asarray(seq_skill, dtype=np.int64)
    _check_batch_inputs(y, lengths, seq_skill, n_skills, n_restarts, max_iter, tol)
    full_bounds = resolve_bounds(bounds, forgets=forgets)
    lo, hi = _bounds_arrays(full_bounds)
    rng = np.random.default_rng(seed)
    n_restarts, max_iter = int(n_restarts), int(max_iter)
    n_models = n_restarts * n_skills
    params = initial_params(n_skills, n_restarts, full_bounds, rng, first_params)

    # Restart r of skill k is model r * n_skills + k; its sequences are copies of skill k's.
    n_seq = len(lengths)
    batch_data = (
        np.tile(y.astype(np.int64), n_restarts),
        np.tile(lengths, n_restarts),
        np.arange(n_restarts).repeat(n_seq) * n_skills + np.tile(seq_skill, n_restarts),
    )
    counts = _model_counts(*batch_data, n_models)
    run = _OverRelaxedEM(params, counts[0].astype(np.int64))
    work = _workspace(len(batch_data[0]), forgets)
    batch = _make_batch(*batch_data, counts, work)
    batch_obs = int(run.n_obs.sum())
    for it in range(1, max_iter + 1):
        ll, stats = _e_step(batch, run.params, forgets)
        ok, rejected = run.judge(it, ll, batch.models, tol)
        if it == max_iter or not run.active.any():
            break
        run.step(ok, rejected, _m_step(run.params, stats, batch, lo, hi, forgets), lo, hi)
        active_obs = int(run.n_obs[run.active].sum())
        if active_obs < (1.0 - _REPACK_SHARE) * batch_obs:
            # Drop converged models' sequences: the passes then cover fewer attempts (and
            # fewer steps once the skills with the longest sequences are done).
            keep = run.active[batch_data[2]]
            batch_data = (
                batch_data[0][np.repeat(keep, batch_data[1])],
                batch_data[1][keep],
                batch_data[2][keep],
            )
            batch = _make_batch(*batch_data, counts, work)
            batch_obs = active_obs
    return run.best_per_skill(seq_skill, n_skills, n_restarts)


def _check_batch_inputs(
    y: np.ndarray,
    lengths: np.ndarray,
    seq_skill: np.ndarray,
    n_skills: int,
    n_restarts: int,
    max_iter: int,
    tol: float,
) -> None:
    """Raise ``ValueError`` naming the first bad argument of ``fit_em_batch``."""
    if int(n_restarts) != n_restarts or n_restarts < 1:
        raise ValueError(f"n_restarts must be a positive integer, got {n_restarts!r}")
    if int(max_iter) != max_iter or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    if not tol >= 0.0:
        raise ValueError(f"tol must be >= 0, got {tol!r}")
    if len(lengths) != len(seq_skill):
        raise ValueError("lengths and seq_skill must have one entry per sequence")
    if len(lengths) and (lengths.min() < 1 or int(lengths.sum()) != len(y)):
        raise ValueError("every sequence needs >= 1 attempt and lengths must add up to len(y)")
    if len(seq_skill) and (seq_skill.min() < 0 or seq_skill.max() >= n_skills):
        raise ValueError(f"seq_skill must lie in 0..{n_skills - 1}")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("y must hold 0/1 answers")


class _OverRelaxedEM:
    """The state of every model's adaptive over-relaxed EM (Salakhutdinov & Roweis 2003).

    The next point is accepted + omega (M(accepted) - accepted), omega growing while the
    likelihood rises. A point that lowers the likelihood is rejected for the plain EM step
    from the last accepted point, which cannot lower it, and omega restarts at 1. Where EM
    crawls (as BKT's often does near a bound) this saves many E-steps at no cost per step.
    """

    def __init__(self, params: np.ndarray, n_obs: np.ndarray) -> None:
        n_models = len(params)
        self.params = params
        self.n_obs = n_obs
        self.active = n_obs > 0
        self.accepted = params.copy()
        self.em_point = params.copy()
        self.omega = np.ones(n_models)
        self.loglik = np.full(n_models, -np.inf)
        self.n_iter = np.zeros(n_models, dtype=np.int64)
        self.converged = np.zeros(n_models, dtype=bool)

    def judge(
        self, it: int, ll: np.ndarray, models: np.ndarray, tol: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Accept or reject E-step ``it``'s log-likelihoods ``ll`` of the live models (those
        with sequences in the batch) and mark the converged ones; returns (ok, rejected)."""
        live = np.zeros(len(self.params), dtype=bool)
        live[models] = True
        live &= self.active
        self.n_iter[live] = it
        # A drop beyond rounding noise rejects the step; a smaller one means a flat
        # likelihood (e.g. a ridge of equally good parameters), which counts as converged.
        with np.errstate(invalid="ignore"):
            rejected = live & (ll < self.loglik - _NOISE * np.abs(self.loglik))
        gain = (ll - self.loglik) / np.maximum(self.n_obs, 1)
        done = live & ~rejected & (it >= 3) & (gain < tol)
        ok = live & ~rejected & (ll >= self.loglik)
        self.loglik[ok] = ll[ok]
        self.accepted[ok] = self.params[ok]
        self.converged |= done
        self.active &= ~done
        # Before the third E-step a small drop is treated like a rejection.
        rejected |= live & ~done & ~ok
        return ok, rejected

    def step(
        self,
        ok: np.ndarray,
        rejected: np.ndarray,
        m_step: np.ndarray,
        lo: np.ndarray,
        hi: np.ndarray,
    ) -> None:
        """Move the still active models: over-relaxed from an accepted point, plain EM from
        a rejected one."""
        step = ok & self.active
        self.em_point[step] = m_step[step]
        self.omega[step] = np.minimum(self.omega[step] * _OMEGA_GROWTH, _OMEGA_MAX)
        self.omega[rejected] = 1.0
        accepted, em_point = self.accepted, self.em_point
        self.params[step] = np.clip(
            accepted[step] + self.omega[step, None] * (em_point[step] - accepted[step]), lo, hi
        )
        self.params[rejected] = em_point[rejected]

    def best_per_skill(
        self, seq_skill: np.ndarray, n_skills: int, n_restarts: int
    ) -> list[EMResult | None]:
        """Each skill's best restart by log-likelihood (None for a skill without sequences)."""
        results: list[EMResult | None] = []
        seq_per_skill = np.bincount(seq_skill, minlength=n_skills)
        for k in range(n_skills):
            if seq_per_skill[k] == 0:
                results.append(None)
                continue
            ids = np.arange(n_restarts) * n_skills + k
            best = int(np.argmax(self.loglik[ids]))
            m = int(ids[best])
            results.append(
                EMResult(
                    params=BKTParams(*(float(v) for v in self.accepted[m])),
                    log_likelihood=float(self.loglik[m]),
                    n_iter=int(self.n_iter[m]),
                    converged=bool(self.converged[m]),
                    n_obs=int(self.n_obs[m]),
                    n_sequences=int(seq_per_skill[k]),
                    best_restart=best,
                    restart_log_likelihoods=tuple(float(v) for v in self.loglik[ids]),
                )
            )
        return results


def fit_em(
    sequences: Sequence[Sequence[int]],
    *,
    n_restarts: int = 1,
    max_iter: int = 100,
    tol: float = 1e-4,
    bounds: Mapping[str, Sequence[float]] | None = None,
    forgets: bool = False,
    seed: int | None = 0,
) -> EMResult:
    """Fit one skill from its students' answer sequences (each a list of 0/1, in order).

    A convenience wrapper of :func:`fit_em_batch` for a single skill.
    """
    seqs = [np.asarray(s, dtype=float) for s in sequences if len(s) > 0]
    if not seqs:
        raise ValueError("fit_em needs at least one non-empty sequence")
    result = fit_em_batch(
        np.concatenate(seqs),
        np.array([len(s) for s in seqs]),
        np.zeros(len(seqs), dtype=np.int64),
        1,
        n_restarts=n_restarts,
        max_iter=max_iter,
        tol=tol,
        bounds=bounds,
        forgets=forgets,
        seed=seed,
    )[0]
    if result is None:  # pragma: no cover - one skill with sequences always has a result
        raise RuntimeError("no result for a skill with sequences")
    return result


__all__ = [
    "DEFAULT_BOUNDS",
    "EMResult",
    "ForwardPass",
    "TimeMajorBatch",
    "fit_em",
    "fit_em_batch",
    "forward_filter",
    "initial_params",
    "resolve_bounds",
    "time_major_batch",
]
