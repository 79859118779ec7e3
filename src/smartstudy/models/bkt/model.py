"""BKT: the per-concept mastery model behind the contract of ``LearnerModel``.

Bayesian Knowledge Tracing (Corbett & Anderson 1995, "Knowledge tracing: Modeling the
acquisition of procedural knowledge", User Modeling and User-Adapted Interaction 4, 253-278)
with one parameter set per skill, fitted by Baum-Welch EM (Baum et al. 1970; see
``smartstudy.models.bkt.em``) with random restarts and bounds, and optional forgetting as in
pyBKT (Badrinath, Wang & Pardos 2021, EDM 2021), whose ``fit`` / ``predict`` API this
follows (its ``crossvalidate`` is ``smartstudy.eval.crossval.crossvalidate``).

- The skill is the row's ``skill_id`` (the concept); a row without one uses its ``item_id``
  as its skill. Each (user, skill) pair is one sequence, in ``order``.
- ``predict`` is one-step-ahead: each row's P(correct) comes from the user's mastery of the
  skill before that row, which starts from the mastery left by training (or the skill's
  ``l0``) and is updated with the earlier rows of the same user and skill in the frame.
- ``update(row)`` is the live service's O(1) step: one Bayes update plus learning transition
  of one ``(user, skill)`` mastery in a dict, with plain floats (``core.update_mastery``).
- A skill without data, or whose best fit is degenerate (``core.check_degeneracy``), uses
  ``default_params``; the degenerate ones are listed in ``degenerate_skills_`` with reasons.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
import pandas as pd

from smartstudy.data.schema import id_string, sort_for_sequences, validate_interactions
from smartstudy.models.base import LearnerModel
from smartstudy.models.bkt.core import (
    DEFAULT_PARAMS,
    PARAM_NAMES,
    PROB_EPS,
    BKTParams,
    check_degeneracy,
    update_mastery,
    validate_params,
)
from smartstudy.models.bkt.em import (
    ForwardPass,
    TimeMajorBatch,
    fit_em_batch,
    forward_filter,
    resolve_bounds,
    time_major_batch,
)

# Status of each skill's parameters, as stored in ``skill_status_``.
FITTED, DEGENERATE, TOO_FEW = "fitted", "degenerate", "too_few_attempts"


class BKT(LearnerModel):
    """Bayesian Knowledge Tracing per skill (Corbett & Anderson 1995), EM-fitted.

    Parameters
    ----------
    n_restarts:
        EM runs per skill; the one with the highest log-likelihood wins. The first starts
        from ``default_params``, the others from random points drawn with ``seed``.
    max_iter:
        Most E-steps per restart.
    tol:
        A restart has converged when one EM iteration raises its log-likelihood by less than
        ``tol`` per attempt (scale-free, so small and large skills stop at the same relative
        precision).
    forgets:
        Learn a forgetting probability ``f`` per skill (pyBKT's ``forgets=True``); otherwise
        ``f = 0`` as in the original model.
    bounds:
        ``{name: [min, max]}`` for any of ``l0, t, s, g, f``; missing names use
        ``em.DEFAULT_BOUNDS`` (guess and slip at most 0.5, all probabilities inside (0, 1)).
    seed:
        Seed of the random restarts (the fit is deterministic for a given seed).
    default_params:
        ``{l0, t, s, g[, f]}`` for skills without usable fitted parameters (unknown skills,
        too few attempts, degenerate fits); ``None`` means the design's defaults
        ``l0=0.1, t=0.2, s=0.1, g=0.2``.
    min_attempts:
        A skill with fewer training attempts than this keeps ``default_params``: EM on a
        handful of answers lands on a bound rather than on an estimate (10 is the minimum
        of the original design).
    """

    name = "bkt"
    predicts_time = False

    def __init__(
        self,
        n_restarts: int = 1,
        max_iter: int = 100,
        tol: float = 1e-4,
        forgets: bool = False,
        bounds: Mapping[str, Sequence[float]] | None = None,
        seed: int | None = 0,
        default_params: Mapping[str, float] | None = None,
        min_attempts: int = 10,
    ) -> None:
        self.n_restarts = n_restarts
        self.max_iter = max_iter
        self.tol = tol
        self.forgets = forgets
        self.bounds = bounds
        self.seed = seed
        self.default_params = default_params
        self.min_attempts = min_attempts

    # -- hyperparameters -------------------------------------------------------------
    def _defaults(self) -> BKTParams:
        if self.default_params is None:
            return DEFAULT_PARAMS
        params = BKTParams.from_mapping(self.default_params)
        problems = validate_params(params) + check_degeneracy(params)
        if problems:
            raise ValueError(f"default_params are not usable: {'; '.join(problems)}")
        return params

    def _check_params(self) -> None:
        for name in ("n_restarts", "max_iter"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.min_attempts, numbers.Integral) or self.min_attempts < 0:
            raise ValueError(
                f"min_attempts must be a non-negative integer, got {self.min_attempts!r}"
            )
        if not (isinstance(self.tol, numbers.Real) and math.isfinite(self.tol) and self.tol >= 0):
            raise ValueError(f"tol must be a finite number >= 0, got {self.tol!r}")
        if not isinstance(self.forgets, bool):
            raise ValueError(f"forgets must be True or False, got {self.forgets!r}")
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral)
        ):
            raise ValueError(f"seed must be an integer or None, got {self.seed!r}")
        resolve_bounds(self.bounds, forgets=self.forgets)
        self._defaults()

    # -- fitting ---------------------------------------------------------------------
    def fit(self, df: pd.DataFrame) -> Self:
        """Fit every skill's parameters by EM (replacing any earlier state); return ``self``.

        Afterwards ``params_`` maps each skill to its :class:`BKTParams`, ``skill_status_``
        says where they came from, ``degenerate_skills_`` lists rejected fits with reasons,
        ``fit_report_`` holds each skill's EM diagnostics and ``log_likelihood_`` their
        total, and ``mastery_`` holds every training user's mastery of each skill after
        their last attempt.
        """
        self._check_params()
        data = validate_interactions(df)
        seqs = _sequences(data)
        skill_ids = seqs.skill_ids
        results = fit_em_batch(
            seqs.y,
            seqs.lengths,
            seqs.seq_skill,
            len(skill_ids),
            n_restarts=int(self.n_restarts),
            max_iter=int(self.max_iter),
            tol=float(self.tol),
            bounds=self.bounds,
            forgets=self.forgets,
            seed=self.seed,
            first_params=self._defaults(),
        )
        defaults = self._defaults()
        params: dict[str, BKTParams] = {}
        status: dict[str, str] = {}
        degenerate: dict[str, list[str]] = {}
        report: dict[str, dict[str, Any]] = {}
        for skill, res in zip(skill_ids, results, strict=True):
            assert res is not None  # every skill here has at least one sequence
            report[skill] = {
                "log_likelihood": res.log_likelihood,
                "n_iter": res.n_iter,
                "converged": res.converged,
                "n_obs": res.n_obs,
                "n_sequences": res.n_sequences,
                "best_restart": res.best_restart,
                "fitted": res.params.to_dict(),
            }
            problems = check_degeneracy(res.params)
            if res.n_obs < self.min_attempts:
                params[skill], status[skill] = defaults, TOO_FEW
            elif problems:
                # A degenerate fit is never used: its "mastery" would not mean mastery.
                params[skill], status[skill] = defaults, DEGENERATE
                degenerate[skill] = problems
            else:
                params[skill], status[skill] = res.params, FITTED
        self.params_ = params
        self.skill_status_ = status
        self.degenerate_skills_ = degenerate
        self.fit_report_ = report
        self.log_likelihood_ = float(sum(r["log_likelihood"] for r in report.values()))
        self.n_iter_ = max((r["n_iter"] for r in report.values()), default=0)
        self.converged_ = all(r["converged"] for r in report.values())
        self.mastery_ = self._final_mastery(seqs)
        self.fitted_ = True
        return self

    def _final_mastery(self, seqs: _Sequences) -> dict[tuple[str, str], float]:
        """Each training (user, skill)'s mastery before its next attempt, after the last one."""
        if len(seqs.lengths) == 0:
            return {}
        table = self._param_table(seqs.skill_ids)
        layout, skill_slot, y = seqs.time_major()
        p0 = table[seqs.seq_skill[layout.seq_order], 0]
        fwd = _filter(layout, table, skill_slot, y, p0)
        last = layout.position[np.cumsum(seqs.lengths) - 1]
        seq_skill = table[seqs.seq_skill]
        # The learning transition after the last attempt: mastery before the next one.
        t, f = seq_skill[:, 1], seq_skill[:, 4]
        final = fwd.filt[last] * (1.0 - f) + fwd.filt_not[last] * t
        final = np.clip(final, PROB_EPS, 1.0 - PROB_EPS)
        return {
            (u, seqs.skill_ids[k]): float(v)
            for u, k, v in zip(seqs.seq_user, seqs.seq_skill, final, strict=True)
        }

    def _param_table(self, skill_ids: Sequence[str]) -> np.ndarray:
        """Rows ``[l0, t, s, g, f]`` for the given skills (defaults for unknown ones)."""
        defaults = self._defaults()
        return np.array(
            [_as_row(self.params_.get(s, defaults)) for s in skill_ids], dtype=float
        ).reshape(len(skill_ids), len(PARAM_NAMES))

    # -- prediction ------------------------------------------------------------------
    def _predict_validated(self, data: pd.DataFrame) -> pd.DataFrame:
        out = np.empty(len(data))
        if len(data) == 0:
            return pd.DataFrame({"p_correct": out}, index=data.index)
        seqs = _sequences(data)
        table = self._param_table(seqs.skill_ids)
        layout, skill_slot, y = seqs.time_major()
        # Each sequence starts from the mastery training left, or from its skill's prior.
        start = np.array(
            [
                self.mastery_.get((u, seqs.skill_ids[k]), table[k, 0])
                for u, k in zip(seqs.seq_user, seqs.seq_skill, strict=True)
            ],
            dtype=float,
        ).reshape(-1)
        fwd = _filter(layout, table, skill_slot, y, start[layout.seq_order])
        s, g = table[skill_slot, 2], table[skill_slot, 3]
        p_correct = fwd.pred * (1.0 - s) + fwd.pred_not * g
        p_correct = np.clip(p_correct, PROB_EPS, 1.0 - PROB_EPS)
        # Batch slot -> sequence-major row -> the caller's row.
        out[seqs.rows] = p_correct[layout.position]
        return pd.DataFrame({"p_correct": out}, index=data.index)

    # -- online learning -------------------------------------------------------------
    def update(self, row: Mapping[str, Any]) -> None:
        """Learn from one attempt in O(1): Bayes' rule and the learning transition applied
        to the ``(user, skill)`` mastery (Corbett & Anderson 1995).

        ``row`` needs ``user_id``, ``correct`` (0/1 or a bool) and ``skill_id`` or, when the
        attempt has no skill, ``item_id``. A missing or bad field raises ``ValueError``
        naming it.
        """
        self._check_fitted()
        user, skill, correct = _parse_row(row)
        params = self.params_.get(skill)
        if params is None:
            params = self._defaults()
        key = (user, skill)
        p = self.mastery_.get(key)
        self.mastery_[key] = update_mastery(params.l0 if p is None else p, correct, params)

    def mastery(self, user_id: Any, skill_id: Any) -> float:
        """The user's current P(skill learned) before their next attempt."""
        self._check_fitted()
        skill = id_string(skill_id)
        p = self.mastery_.get((id_string(user_id), skill))
        if p is not None:
            return p
        return self.params_.get(skill, self._defaults()).l0

    # -- persistence -----------------------------------------------------------------
    def _get_state(self) -> dict[str, Any]:
        skills = list(self.params_)
        keys = list(self.mastery_)
        return {
            "skill_ids": skills,
            "params": self._param_table(skills),
            "skill_status": [self.skill_status_[s] for s in skills],
            "degenerate_skills": self.degenerate_skills_,
            "fit_report": self.fit_report_,
            "mastery_users": [u for u, _ in keys],
            "mastery_skills": [s for _, s in keys],
            "mastery": np.array([self.mastery_[k] for k in keys], dtype=float),
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self._check_params()
        skills = [str(s) for s in state["skill_ids"]]
        table = np.asarray(state["params"], dtype=float).reshape(-1, len(PARAM_NAMES))
        status = [str(s) for s in state["skill_status"]]
        if len(set(skills)) != len(skills) or not (len(skills) == len(table) == len(status)):
            raise ValueError("skill_ids, params and skill_status do not match")
        params = {
            s: BKTParams(*(float(v) for v in row)) for s, row in zip(skills, table, strict=True)
        }
        for s, p in params.items():
            problems = validate_params(p)
            if problems:
                raise ValueError(f"stored parameters of skill {s!r} are invalid: {problems}")
        users = [str(u) for u in state["mastery_users"]]
        m_skills = [str(s) for s in state["mastery_skills"]]
        values = np.asarray(state["mastery"], dtype=float).reshape(-1)
        if not (len(users) == len(m_skills) == len(values)):
            raise ValueError("mastery_users, mastery_skills and mastery do not match")
        if len(values) and not ((values > 0.0) & (values < 1.0)).all():
            raise ValueError("stored mastery values must lie strictly between 0 and 1")
        degenerate = state["degenerate_skills"]
        report = state["fit_report"]
        if not isinstance(degenerate, dict) or not isinstance(report, dict):
            raise ValueError("degenerate_skills and fit_report must be objects")
        self.params_ = params
        self.skill_status_ = dict(zip(skills, status, strict=True))
        self.degenerate_skills_ = {str(k): list(v) for k, v in degenerate.items()}
        self.fit_report_ = report
        self.log_likelihood_ = float(sum(r["log_likelihood"] for r in report.values()))
        self.n_iter_ = max((int(r["n_iter"]) for r in report.values()), default=0)
        self.converged_ = all(bool(r["converged"]) for r in report.values())
        self.mastery_ = {
            (u, s): float(v) for u, s, v in zip(users, m_skills, values.tolist(), strict=True)
        }


# -- helpers ---------------------------------------------------------------------------------------
class _Sequences:
    """Rows grouped into (user, skill) sequences, each in ``order``, sequence-major."""

    __slots__ = ("lengths", "rows", "seq_skill", "seq_user", "skill_ids", "y")

    def __init__(
        self,
        rows: np.ndarray,
        y: np.ndarray,
        lengths: np.ndarray,
        seq_skill: np.ndarray,
        seq_user: list[str],
        skill_ids: list[str],
    ) -> None:
        self.rows = rows  # positions in the frame, sequence-major
        self.y = y  # outcomes (NaN = unknown), sequence-major
        self.lengths = lengths
        self.seq_skill = seq_skill  # index into skill_ids per sequence
        self.seq_user = seq_user
        self.skill_ids = skill_ids

    def time_major(self) -> tuple[TimeMajorBatch, np.ndarray, np.ndarray]:
        """The time-major layout of the sequences, with each batch slot's skill (an index into
        ``skill_ids``) and outcome."""
        layout = time_major_batch(self.lengths)
        skill_slot = np.empty(len(self.y), dtype=np.int64)
        skill_slot[layout.position] = np.repeat(self.seq_skill, self.lengths)
        y = np.empty(len(self.y))
        y[layout.position] = self.y
        return layout, skill_slot, y


def _sequences(data: pd.DataFrame) -> _Sequences:
    """Group validated rows by (user, skill); a row without a skill uses its item as skill."""
    pos = sort_for_sequences(data)
    skill_col = data["skill_id"].to_numpy(dtype=object)
    item_col = data["item_id"].to_numpy(dtype=object)
    skill = np.where(pd.isna(skill_col), item_col, skill_col)[pos]
    user = data["user_id"].to_numpy(dtype=object)[pos]
    skill_codes, skill_ids = pd.factorize(skill)
    user_codes, _ = pd.factorize(user)
    # Rows are already in (user, order) order; a stable sort on the (user, skill) pair keeps
    # each pair's rows in that order and makes its rows contiguous.
    pair = user_codes.astype(np.int64) * max(len(skill_ids), 1) + skill_codes
    group = np.argsort(pair, kind="stable")
    rows = pos[group]
    pair = pair[group]
    starts = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]]) if len(pair) else np.zeros(0, int)
    lengths = np.diff(np.r_[starts, len(pair)]).astype(np.int64)
    seq_skill = skill_codes[group][starts].astype(np.int64)
    seq_user = [str(u) for u in user[group][starts]]
    y = data["correct"].to_numpy(dtype=float)[rows]
    return _Sequences(rows, y, lengths, seq_skill, seq_user, [str(s) for s in skill_ids])


def _filter(
    layout: TimeMajorBatch,
    table: np.ndarray,
    skill_slot: np.ndarray,
    y: np.ndarray,
    p0: np.ndarray,
) -> ForwardPass:
    """Forward pass with per-skill parameters; an unknown outcome (NaN) teaches nothing:
    no evidence (likelihood 1 in both states) and no learning transition."""
    s, g, t, f = (table[skill_slot, k] for k in (2, 3, 1, 4))
    known = ~np.isnan(y)
    right = y == 1.0
    e1 = np.where(known, np.where(right, 1.0 - s, s), 1.0)
    e0 = np.where(known, np.where(right, g, 1.0 - g), 1.0)
    return forward_filter(layout, p0, e1, e0, np.where(known, t, 0.0), np.where(known, f, 0.0))


def _as_row(p: BKTParams) -> list[float]:
    return [p.l0, p.t, p.s, p.g, p.f]


def _parse_row(row: Mapping[str, Any]) -> tuple[str, str, bool]:
    if not isinstance(row, Mapping):
        raise ValueError(
            f"expected a mapping with user_id, item_id/skill_id and correct, got {row!r}"
        )
    user = row.get("user_id")
    if user is None or (isinstance(user, float) and math.isnan(user)):
        raise ValueError("update needs `user_id`; got a missing value")
    if "correct" not in row:
        raise ValueError("update needs `correct` (0 or 1); it is missing")
    value = row["correct"]
    if isinstance(value, bool | np.bool_):
        correct = bool(value)
    elif isinstance(value, numbers.Real) and value in (0, 1):
        correct = value == 1
    else:
        raise ValueError(f"expected `correct` to be 0 or 1, got {value!r}")
    skill = row.get("skill_id")
    if skill is None or (isinstance(skill, float) and math.isnan(skill)):
        skill = row.get("item_id")
        if skill is None or (isinstance(skill, float) and math.isnan(skill)):
            raise ValueError("update needs `skill_id` or `item_id`; both are missing")
    return id_string(user), id_string(skill), correct


__all__ = ["BKT"]
