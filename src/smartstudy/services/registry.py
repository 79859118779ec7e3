"""The model registry: validation before activation, versions, training runs, monitoring.

Validation. Once there are at least ``MIN_USERS_FOR_HOLDOUT`` students, every training holds
out the same students: a student is held out when the SHA-256 of their id falls in one fifth
of the hash space (or, while none does, the one with the smallest hash), so the assignment
does not change from one training to the next and no version is fitted on a held-out
student's tasks. A new version is scored one step ahead on the held-out students' tasks,
exactly as it would serve them, and so is the active version, on the same rows: only rows
that neither version was fitted on are scored (a held-out student's task counts if the
active version also held that student out or was trained before the task was done). The
new version becomes active only if its log loss is at most the active one's plus
``LOG_LOSS_TOLERANCE`` and, for models that predict time, its RMSE of log time is at most
the active one's plus ``LOG_TIME_TOLERANCE``. With fewer students, or no comparable rows,
nothing can be compared fairly, and a new version is activated if its predictions are
sound (finite probabilities).

Held-out students are still served by every model: their completions are replayed into a
loaded model's online state (``LearnerModel.update``), as for any new student.

Serving. After the families are trained, the version each one serves from now on is scored on
the same held-out rows (those every family answered and none was fitted on), split into cold
rows (a learner's first ``COLD_TASKS`` tasks in the topic) and warm ones, and its calibration
(``services.calibration``) is fitted on its held-out rows; a part of the calibration is kept
only where, fitted on one half of the held-out students and scored on the other, it did better
than none. The scores and calibrators are stored with the version (``metrics["serving"]``), with
the live scores of the newest completed tasks (``live_scores``). Per kind of request
(``ServingPolicy``), a family answers before the chain's last one only once it beat it live; a
family's probability calibration, one for every kind, is withheld once it did worse live than
none; and once a family has ``LIVE_MIN_ROWS`` timed live tasks, its 80% time ranges are
calibrated on them instead of on held-out students (split-conformal on the uncalibrated ranges
it served, ``_live_calibration``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select, update
from sqlalchemy.orm import Session, defer

from smartstudy.eval.metrics import (
    expected_calibration_error,
    interval_coverage,
    log_loss,
    rmse_log_time,
)
from smartstudy.models.base import PREDICTION_COLUMNS, ArtifactError, LearnerModel
from smartstudy.services.calibration import COVERAGE, Calibrator, fit_calibrator, fit_time
from smartstudy.services.errors import CannotPredictError, ConflictError, NotFoundError
from smartstudy.store.orm import Job, ModelVersion, PracticeTask, TrainingCounter, as_utc

log = logging.getLogger(__name__)

HOLDOUT_BUCKETS = 5
MIN_USERS_FOR_HOLDOUT = 10
LOG_LOSS_TOLERANCE = 1e-3
LOG_TIME_TOLERANCE = 5e-3
# Predictions this close to 0 or 1 count as saturated on the monitoring page.
SATURATION_LOW, SATURATION_HIGH = 0.02, 0.98
SATURATION_WARNING_SHARE = 0.05
TRAINING_COUNTER = "training"
#: A learner's first tasks in a topic are "cold" requests, the later ones "warm": the
#: families are ranked and calibrated for each kind separately. Counted per topic, not per
#: (topic, difficulty) cell, because every family's personal state is per topic (LNIRT's
#: (θ, τ), the neural model's skill history, the baseline's user offset is even global).
COLD_TASKS = 5
KINDS = ("cold", "warm")
#: A kind with fewer held-out rows than this is ranked like all held-out rows together.
MIN_KIND_ROWS = 30
TIME_COLUMNS = ("time_median_s", "time_p10_s", "time_p90_s")
#: Live ranking: the newest completed tasks whose every family's prediction was stored
#: (``practice_tasks.family_predictions``) that rank the families, at most this many.
LIVE_WINDOW = 5000
#: A family is ranked live for a kind once it answered this many of those tasks of that kind.
LIVE_MIN_ROWS = 100
#: How much lower a family's live log loss must be than the chain's last family's, on the
#: tasks it answered, for it to answer first: at least this, and at least ``LIVE_SE_FACTOR``
#: standard errors of the (paired) difference, so that a lucky streak does not promote it.
LIVE_MARGIN = 0.005
LIVE_SE_FACTOR = 2.0


# -- held-out students ------------------------------------------------------------------
def _user_hash(user_id: str) -> int:
    return int.from_bytes(hashlib.sha256(str(user_id).encode()).digest()[:8], "big")


def holdout_users(user_ids: Iterable[str]) -> set[str]:
    """The students whose tasks no model is fitted on (see the module docstring)."""
    users = sorted({str(u) for u in user_ids})
    if len(users) < MIN_USERS_FOR_HOLDOUT:
        return set()
    chosen = {u for u in users if _user_hash(u) % HOLDOUT_BUCKETS == 0}
    if not chosen and len(users) >= 2:
        chosen = {min(users, key=_user_hash)}
    return chosen


def split_for_validation(data: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, set[str]]:
    """(training rows, held-out rows, held-out student ids) of completed interactions."""
    held = holdout_users(data["user_id"].unique()) if len(data) else set()
    mask = data["user_id"].astype(str).isin(held).to_numpy() if len(data) else np.zeros(0, bool)
    return data.loc[~mask], data.loc[mask], held


# -- scoring ----------------------------------------------------------------------------
def predict_rows(model: LearnerModel, data: pd.DataFrame) -> pd.DataFrame:
    """One-step-ahead predictions, NaN where the model cannot answer (e.g. a topic that
    has no LNIRT yet) instead of failing the whole frame."""
    try:
        return model.predict(data)
    except CannotPredictError:
        pass
    skills = data["skill_id"].fillna(data["item_id"]).astype(str)
    parts = []
    for _skill, rows in data.groupby(skills, sort=False):
        try:
            parts.append(model.predict(rows))
        except CannotPredictError:
            continue
    columns = ["p_correct", "time_median_s", "time_p10_s", "time_p90_s"]
    out = pd.DataFrame(np.nan, index=data.index, columns=columns)
    for part in parts:
        out.loc[part.index, part.columns] = part.to_numpy(dtype=float)
    return out


class HeldOutMemo:
    """The held-out predictions of each family's version, kept between the trainings of one
    process, so that a training predicts again only the students with new held-out tasks.

    A student's one-step-ahead predictions depend on the version and on their own tasks
    only (no prediction depends on another student's rows: the model contract's
    ``no_cross_user_leak``), so they stay the same while both do. A training that refits
    nothing used to predict every held-out task of every family again (about a second of
    CPU at 100,000 tasks, taken from the requests on a shared machine)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: family -> (version id, {user: (their task ids in order, their predictions)})
        self._kept: dict[str, tuple[str, dict[str, tuple[tuple, np.ndarray]]]] = {}

    def predict(
        self, name: str, version_id: str, model: LearnerModel, holdout: pd.DataFrame
    ) -> pd.DataFrame:
        """``predict_rows(model, holdout)``, reusing what this memo kept of ``name``'s
        version ``version_id`` for the students whose held-out tasks are unchanged."""
        with self._lock:
            version, kept = self._kept.get(name, ("", {}))
        if version != version_id:
            kept = {}
        positions = holdout.groupby("user_id", sort=False).indices
        task_ids = holdout["task_id"].to_numpy()
        out = np.empty((len(holdout), len(PREDICTION_COLUMNS)))
        stale = []
        for user, where in positions.items():
            old = kept.get(user)
            if old is not None and old[0] == tuple(task_ids[where]):
                out[where] = old[1]
            else:
                stale.append(where)
        if stale:
            rows = np.concatenate(stale)
            out[rows] = predict_rows(model, holdout.iloc[rows]).to_numpy(dtype=float)
        pred = pd.DataFrame(out, index=holdout.index, columns=list(PREDICTION_COLUMNS))
        self.keep(name, version_id, holdout, pred)
        return pred

    def keep(self, name: str, version_id: str, holdout: pd.DataFrame, pred: pd.DataFrame) -> None:
        """Remember ``pred`` (``predict_rows`` of ``holdout``) as ``name``'s version
        ``version_id`` predicted it."""
        task_ids, values = holdout["task_id"].to_numpy(), pred.to_numpy(dtype=float)
        kept = {
            user: (tuple(task_ids[where]), values[where].copy())
            for user, where in holdout.groupby("user_id", sort=False).indices.items()
        }
        with self._lock:
            self._kept[name] = (version_id, kept)


def score(data: pd.DataFrame, pred: pd.DataFrame, predicts_time: bool) -> dict[str, Any]:
    """Log loss (and time metrics) of ``pred`` against the outcomes in ``data``."""
    p = pred["p_correct"].to_numpy(dtype=float)
    y = data["correct"].to_numpy(dtype=float)
    out: dict[str, Any] = {"rows": len(y)}
    if len(y) == 0:
        return out
    if not np.all(np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("predictions are not probabilities")
    out["log_loss"] = round(log_loss(y, p), 6)
    if predicts_time and "rt_seconds" in data:
        rt = data["rt_seconds"].to_numpy(dtype=float)
        has = np.isfinite(rt) & (rt > 0)
        if has.any():
            med = pred["time_median_s"].to_numpy(dtype=float)[has]
            out["rmse_log_time"] = round(rmse_log_time(rt[has], med), 6)
            out["coverage_80"] = round(
                interval_coverage(
                    rt[has],
                    pred["time_p10_s"].to_numpy(dtype=float)[has],
                    pred["time_p90_s"].to_numpy(dtype=float)[has],
                ),
                4,
            )
    return out


@dataclass
class Decision:
    """The outcome of validating a new version against the active one.

    ``candidate_pred`` and ``active_pred`` are the two versions' held-out predictions (None
    when not computed); they are kept for the serving evaluation, never stored."""

    activate: bool
    reason: str
    metrics: dict[str, Any] = field(default_factory=dict)
    candidate_pred: pd.DataFrame | None = field(default=None, repr=False)
    active_pred: pd.DataFrame | None = field(default=None, repr=False)


def validate(
    candidate: LearnerModel,
    active: LearnerModel | None,
    holdout: pd.DataFrame,
    train: pd.DataFrame,
    comparable: np.ndarray | None = None,
) -> Decision:
    """Decide whether ``candidate`` may replace ``active`` (see the module docstring).

    ``holdout`` holds the held-out students' whole histories (they are the one-step-ahead
    context); ``comparable`` marks the rows of it that may be scored for both versions
    (default: all of them).
    """
    predicts_time = bool(getattr(candidate, "predicts_time", False))
    if holdout.empty and train.empty:
        # The first version of a family on an empty system: its priors, until data arrive.
        return Decision(
            True, "no completed tasks yet: the family's prior, until the first training"
        )
    if holdout.empty:
        # Nothing held out: check the new model on what it learnt from, so at least a
        # broken model (non-finite or out-of-range output) is never activated.
        sample = train.tail(2000)
        pred = predict_rows(candidate, sample)
        answered = pred["p_correct"].notna().to_numpy()
        metrics = {"training": score(sample[answered], pred[answered], predicts_time)}
        return Decision(True, "no held-out students; training predictions are sound", metrics)
    cand_pred = predict_rows(candidate, holdout)
    answered = cand_pred["p_correct"].notna().to_numpy()
    own = {"validation": score(holdout[answered], cand_pred[answered], predicts_time)}
    if active is None:
        return Decision(True, "no active version to compare with", own, cand_pred)
    try:
        act_pred = predict_rows(active, holdout)
    except Exception as exc:  # the active artifact misbehaves: anything sound beats it
        reason = f"the active version failed on validation data: {exc}"
        return Decision(True, reason, own, cand_pred)
    both = answered & act_pred["p_correct"].notna().to_numpy()
    if comparable is not None:
        both &= comparable
    if not both.any():
        reason = "no held-out rows that neither version was fitted on"
        return Decision(True, reason, own, cand_pred, act_pred)
    new = score(holdout[both], cand_pred[both], predicts_time)
    old = score(holdout[both], act_pred[both], predicts_time)
    metrics = {**own, "compared": new, "active_compared": old}
    worse = []
    if new["log_loss"] > old["log_loss"] + LOG_LOSS_TOLERANCE:
        worse.append(f"log loss {new['log_loss']:.4f} > active {old['log_loss']:.4f}")
    if (
        "rmse_log_time" in new
        and "rmse_log_time" in old
        and new["rmse_log_time"] > old["rmse_log_time"] + LOG_TIME_TOLERANCE
    ):
        worse.append(
            f"RMSE log time {new['rmse_log_time']:.4f} > active {old['rmse_log_time']:.4f}"
        )
    if worse:
        reason = "validates worse than the active version: " + "; ".join(worse)
        return Decision(False, reason, metrics, cand_pred, act_pred)
    reason = f"validates at least as well as the active version on {new['rows']} rows"
    return Decision(True, reason, metrics, cand_pred, act_pred)


def comparable_rows(
    holdout: pd.DataFrame, active_holdout: Iterable[str], active_trained_until: datetime | None
) -> np.ndarray:
    """Rows of ``holdout`` that the active version was not fitted on."""
    mask = holdout["user_id"].astype(str).isin(set(active_holdout)).to_numpy()
    if active_trained_until is None:
        return np.ones(len(holdout), dtype=bool)
    if "order" in holdout:
        # ``order`` is ``completed_at`` as a POSIX timestamp (``interactions_frame``): one
        # vectorised comparison instead of one per row of datetimes.
        cut = as_utc(active_trained_until).timestamp()
        later = holdout["order"].to_numpy(dtype=float) > cut
    else:
        later = np.array([at > active_trained_until for at in holdout["completed_at"]], dtype=bool)
    return mask | later


# -- serving: which family answers, and calibrated how ----------------------------------
@dataclass
class HeldOutPredictions:
    """One family's served version and its one-step-ahead predictions of the held-out rows;
    ``usable`` marks the rows it answered and was not fitted on."""

    name: str
    version_id: str
    predicts_time: bool
    pred: pd.DataFrame
    usable: np.ndarray


def cold_rows(data: pd.DataFrame) -> np.ndarray:
    """True for a row among its learner's first ``COLD_TASKS`` completed tasks in its topic
    (``data`` in completion order, as ``completed_interactions`` returns it)."""
    if data.empty:
        return np.zeros(0, dtype=bool)
    skills = data["skill_id"].fillna(data["item_id"]).astype(str)
    position = data.groupby([data["user_id"].astype(str), skills], sort=False).cumcount()
    return position.to_numpy() < COLD_TASKS


def _fit_kinds(
    family: HeldOutPredictions, data: pd.DataFrame, rows: np.ndarray, cold: np.ndarray
) -> dict[str, Calibrator]:
    """Calibrators fitted on ``rows``. The chance has one calibration for every kind, fitted
    on all the rows: a student's chance must not jump when their requests turn from cold to
    warm (after a wrong answer, a warm map above the cold one would raise it). The time part
    of the cold and warm calibrations is fitted on their own rows, shrunk towards the pooled
    one."""
    y = data["correct"].to_numpy(dtype=float)
    rt = data["rt_seconds"].to_numpy(dtype=float)
    p = family.pred["p_correct"].to_numpy(dtype=float)
    t = (
        [family.pred[c].to_numpy(dtype=float) for c in TIME_COLUMNS]
        if family.predicts_time
        else None
    )

    def fit(mask: np.ndarray, prior: Calibrator | None = None) -> Calibrator:
        times = None if t is None else (t[0][mask], t[1][mask], t[2][mask])
        return fit_calibrator(p[mask], y[mask], rt[mask], times, prior, chance=prior is None)

    pooled = fit(rows)
    return {"all": pooled, "cold": fit(rows & cold, pooled), "warm": fit(rows & ~cold, pooled)}


def _calibrated(
    family: HeldOutPredictions, calibrators: dict[str, Calibrator], cold: np.ndarray
) -> pd.DataFrame:
    """``family``'s predictions with each row's kind of calibration applied."""
    out = family.pred.copy()
    for kind, mask in (("cold", cold), ("warm", ~cold)):
        cal = calibrators[kind]
        part = out.loc[mask]
        out.loc[mask, "p_correct"] = cal.probability(part["p_correct"].to_numpy(dtype=float))
        if family.predicts_time:
            med, low, high = cal.times(
                *(
                    part[c].to_numpy(dtype=float)
                    for c in ("time_median_s", "time_p10_s", "time_p90_s")
                )
            )
            out.loc[mask, "time_median_s"], out.loc[mask, "time_p10_s"] = med, low
            out.loc[mask, "time_p90_s"] = high
    return out


def _cross_fitted(
    family: HeldOutPredictions, data: pd.DataFrame, cold: np.ndarray, fold: np.ndarray
) -> pd.DataFrame:
    """Calibrated predictions of each held-out student from a calibration fitted on the
    other half of the held-out students, so calibrated scores are honest too."""
    out = family.pred.copy()
    for k in (0, 1):
        calibrators = _fit_kinds(family, data, family.usable & (fold != k), cold)
        out.loc[fold == k] = _calibrated(family, calibrators, cold).loc[fold == k]
    return out


def _kind_scores(
    data: pd.DataFrame, pred: pd.DataFrame, mask: np.ndarray, predicts_time: bool
) -> dict[str, Any]:
    out = score(data[mask], pred[mask], predicts_time)
    if mask.any():
        y = data["correct"].to_numpy(dtype=float)[mask]
        p = pred["p_correct"].to_numpy(dtype=float)[mask]
        out["ece"] = round(expected_calibration_error(y, p), 6)
    return out


def _worth_it(raw: dict[str, Any], calibrated: dict[str, Any]) -> tuple[bool, bool]:
    """Whether the calibration of p, and of time, validated better than none (cross-fitted
    scores on the same rows): p by log loss; time by 80% coverage closer to 80% without an
    RMSE of log time worse by more than ``LOG_TIME_TOLERANCE``."""
    if "log_loss" not in raw:
        return False, False
    use_p = calibrated["log_loss"] < raw["log_loss"]
    use_time = "coverage_80" in raw and (
        abs(calibrated["coverage_80"] - COVERAGE) < abs(raw["coverage_80"] - COVERAGE)
        and calibrated["rmse_log_time"] <= raw["rmse_log_time"] + LOG_TIME_TOLERANCE
    )
    return use_p, use_time


def _serving_block(
    family: HeldOutPredictions,
    data: pd.DataFrame,
    common: np.ndarray,
    fold: np.ndarray,
    cold: np.ndarray,
) -> dict[str, Any]:
    """One family's held-out scores (raw, and calibrated where calibration validated
    better) per kind, and the calibrators it serves with (``cold``: ``cold_rows``)."""
    honest = _cross_fitted(family, data, cold, fold)
    calibrators = _fit_kinds(family, data, family.usable, cold)
    masks = {"all": common, "cold": common & cold, "warm": common & ~cold}
    t = family.predicts_time
    raw = {k: _kind_scores(data, family.pred, m, t) for k, m in masks.items()}
    full = {k: _kind_scores(data, honest, m, t) for k, m in masks.items()}
    # The chance's one calibration is kept or dropped for every kind at once.
    use_p = _worth_it(raw["all"], full["all"])[0]
    kinds = {}
    for kind, mask in masks.items():
        # A kind with few rows follows the decision taken on all rows.
        basis = kind if raw[kind]["rows"] >= MIN_KIND_ROWS else "all"
        use_time = _worth_it(raw[basis], full[basis])[1]
        calibrators[kind] = calibrators[kind].restricted(use_p, use_time)
        chosen = honest.copy()
        if not use_p:
            chosen["p_correct"] = family.pred["p_correct"]
        if not use_time:
            chosen[list(TIME_COLUMNS)] = family.pred[list(TIME_COLUMNS)]
        kinds[kind] = {"raw": raw[kind], "calibrated": _kind_scores(data, chosen, mask, t)}
    return {
        "version_id": family.version_id,
        "cold_tasks": COLD_TASKS,
        "kinds": kinds,
        "calibration": {k: c.to_dict() for k, c in calibrators.items()},
    }


def evaluate_serving(
    holdout: pd.DataFrame, families: list[HeldOutPredictions], evaluation: str
) -> dict[str, dict[str, Any]]:
    """The serving block of each family: its held-out scores on the rows every family
    answered (cold and warm, raw and calibrated), and its calibrators fitted on the held-out
    rows it may be scored on. ``evaluation`` names this run (the training job)."""
    if not families or holdout.empty:
        return {}
    # A family that answers almost none of the held-out rows (e.g. LNIRT before its topics
    # have enough data) would leave no common rows: it is scored but not ranked.
    ranked = {f.name for f in families if f.usable.sum() >= MIN_KIND_ROWS} or {
        f.name for f in families
    }
    common = np.logical_and.reduce([f.usable for f in families if f.name in ranked])
    users, codes = np.unique(holdout["user_id"].astype(str).to_numpy(), return_inverse=True)
    fold = np.array([(_user_hash(u) // HOLDOUT_BUCKETS) % 2 for u in users])[codes.ravel()]
    at = datetime.now(UTC).isoformat(timespec="seconds")
    cold = cold_rows(holdout)
    return {
        f.name: {
            "evaluation": evaluation,
            "evaluated_at": at,
            "ranked": f.name in ranked,
            **_serving_block(f, holdout, common & f.usable, fold, cold),
        }
        for f in families
    }


def live_scores(
    session: Session, chain: tuple[str, ...], window: int = LIVE_WINDOW
) -> dict[str, Any]:
    """Each family's live log loss against the chain's last family, per kind of request.

    The newest ``window`` completed tasks that stored every family's prediction (made before
    the outcome existed, by the versions then serving, calibrated as they would have been
    served: ``Prediction.candidates``) are scored one step ahead, as they happened. Each
    family is compared with the last family of the chain on the tasks both answered: the
    last one answers everything, so this is exactly what serving the family first would
    have changed. ``{"tasks": n, "families": {name: {kind: {"rows", "log_loss",
    "last_log_loss", "advantage"}}}, "calibration": {name: {kind: ...}}}`` for kinds "all",
    "cold" and "warm"; "calibration" compares each family's fitted calibration with none
    (``_live_calibration``)."""
    last = chain[-1]
    rows = session.execute(
        select(
            PracticeTask.family_predictions,
            PracticeTask.is_correct,
            PracticeTask.actual_time_seconds,
        )
        .where(
            PracticeTask.completed_at.is_not(None),
            PracticeTask.family_predictions.is_not(None),
        )
        .order_by(PracticeTask.completed_at.desc(), PracticeTask.id)
        .limit(window)
    ).all()
    kept = [
        r
        for r in rows
        if isinstance(r[0], dict)
        and isinstance(r[0].get("families"), dict)
        and _live_p(r[0]["families"].get(last)) is not None
    ]
    y = np.array([float(bool(r[1])) for r in kept], dtype=float)
    kind = np.array([r[0].get("kind") for r in kept], dtype=object)
    preds = {n: [_live_p(r[0]["families"].get(n)) for r in kept] for n in chain}
    base = np.array(preds[last], dtype=float)
    out: dict[str, Any] = {
        "tasks": len(y),
        "families": {},
        "calibration": _live_calibration(kept, chain, y, kind),
    }
    for name in chain[:-1]:
        p = np.array([np.nan if v is None else v for v in preds[name]], dtype=float)
        answered = np.isfinite(p)
        parts = {}
        for part, mask in (("all", answered), ("cold", answered & (kind == "cold"))):
            parts[part] = _live_part(y, p, base, mask)
        parts["warm"] = _live_part(y, p, base, answered & (kind == "warm"))
        out["families"][name] = parts
    return out


def _live_calibration(
    rows: Sequence[Any], chain: tuple[str, ...], y: np.ndarray, kind: np.ndarray
) -> dict[str, Any]:
    """How each family's calibration did live, per kind, and its time ranges refitted live.

    - ``p_gain``: the mean drop in log loss of the fitted probability calibration over the
      uncalibrated predictions (positive: it helped), with its standard error, on the tasks
      that stored both (``Prediction.variants``) and where the two differ.
    - ``coverage_raw``, ``coverage_served``: the share of the actual times within the 80%
      ranges without calibration and as served, on the ``live_time_rows`` timed tasks.
    - ``live_time_shift``, ``live_interval_scale``: the time calibration
      (``calibration.fit_time``: the median shift and the split-conformal scale) fitted on
      the live times against the uncalibrated ranges. Held-out students are scored by
      versions fitted on later rows too, so their ranges are too narrow live (the replay
      held 76% of cognitive_tutor's times in its 80% ranges with them); live ranges were
      made before each outcome existed, by the versions then serving.
    """
    rt = np.array([np.nan if r[2] is None else float(r[2]) for r in rows], dtype=float)
    out: dict[str, Any] = {}
    for name in chain:
        served = _live_values(rows, "families", name)
        raw = _live_values(rows, "uncalibrated", name)
        cal = _live_values(rows, "calibrated", name)
        # A task stores the uncalibrated prediction whenever what it served differs from it.
        stored = np.isfinite(raw).all(axis=1)
        raw[~stored] = served[~stored]
        has = stored & np.isfinite(cal).all(axis=1)
        timed = np.isfinite(raw).all(axis=1) & np.isfinite(rt) & (rt > 0)
        if not (has.any() or timed.any()):
            continue
        p_gain = np.where(has, _row_losses(y, raw[:, 0]) - _row_losses(y, cal[:, 0]), np.nan)
        p_gain[raw[:, 0] == cal[:, 0]] = np.nan
        out[name] = {
            part: {
                **_mean_se(p_gain, mask, "p_gain"),
                **_live_time(rt, raw, served, timed & mask),
            }
            for part, mask in (
                ("all", np.ones(len(rows), dtype=bool)),
                ("cold", kind == "cold"),
                ("warm", kind == "warm"),
            )
        }
    return out


def _live_time(rt: np.ndarray, raw: np.ndarray, served: np.ndarray, mask: np.ndarray) -> dict:
    """The time calibration fitted on the timed tasks of ``mask`` against the uncalibrated
    ranges ``raw``, and the share of those times within the uncalibrated and the served
    ranges."""
    n = int(mask.sum())
    if n == 0:
        return {"live_time_rows": 0}
    t = rt[mask]
    shift, scale = fit_time(t, raw[mask, 1], raw[mask, 2], raw[mask, 3])
    raw_share, served_share = (
        float(np.mean((t >= v[mask, 2]) & (t <= v[mask, 3]))) for v in (raw, served)
    )
    return {
        "live_time_rows": n,
        "live_time_shift": round(shift, 6),
        "live_interval_scale": round(scale, 6),
        "coverage_raw": round(raw_share, 6),
        "coverage_served": round(served_share, 6),
    }


def _live_values(rows: Sequence[Any], key: str, name: str) -> np.ndarray:
    """One stored variant of ``name`` per row as (p, median, p10, p90); NaN where absent."""
    out = np.full((len(rows), 4), np.nan)
    for i, r in enumerate(rows):
        values = (r[0].get(key) or {}).get(name)
        if isinstance(values, list) and len(values) == 4:
            with contextlib.suppress(TypeError, ValueError):
                out[i] = [float(v) for v in values]
    valid = (out[:, 0] >= 0) & (out[:, 0] <= 1) & (out[:, 1:] > 0).all(axis=1)
    out[~valid] = np.nan
    return out


def _mean_se(values: np.ndarray, mask: np.ndarray, name: str) -> dict[str, Any]:
    """``{name_rows, name, name_se}`` over the finite values of ``mask``."""
    kept = values[mask & np.isfinite(values)]
    n = len(kept)
    mean = round(float(kept.mean()), 6) if n else None
    se = round(float(kept.std(ddof=1) / math.sqrt(n)), 6) if n > 1 else None
    return {f"{name}_rows": n, name: mean, f"{name}_se": se}


def _live_p(values: Any) -> float | None:
    """The probability of one stored candidate, or None when absent or unusable."""
    if not isinstance(values, list | tuple) or not values:
        return None
    try:
        p = float(values[0])
    except (TypeError, ValueError):
        return None
    return p if math.isfinite(p) and 0.0 <= p <= 1.0 else None


def _live_part(y: np.ndarray, p: np.ndarray, base: np.ndarray, mask: np.ndarray) -> dict:
    """Log loss of ``p`` and of ``base`` on the rows of ``mask``, their difference and the
    standard error of that difference (the rows are paired: the same tasks)."""
    n = int(mask.sum())
    if n == 0:
        return {"rows": 0}
    own, last = _row_losses(y[mask], p[mask]), _row_losses(y[mask], base[mask])
    diff = last - own
    se = float(diff.std(ddof=1) / math.sqrt(n)) if n > 1 else math.inf
    return {
        "rows": n,
        "log_loss": round(float(own.mean()), 6),
        "last_log_loss": round(float(last.mean()), 6),
        "advantage": round(float(diff.mean()), 6),
        "advantage_se": round(se, 6) if math.isfinite(se) else None,
    }


def _row_losses(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-15, 1 - 1e-15)
    return -(y * np.log(q) + (1 - y) * np.log1p(-q))


@dataclass(frozen=True)
class ServingPolicy:
    """Which family answers first, per kind of request, and each family's calibration, as
    decided by the newest held-out evaluation of the active versions (``serving`` blocks
    in their metrics). Families without a block from that evaluation follow the ranked ones
    in the chain's default order; without any block the chain's last family answers first."""

    blocks: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: ``live_scores`` as of the newest training (None: not measured).
    live: dict[str, Any] | None = None

    @property
    def evaluation(self) -> str | None:
        newest = max(self.blocks.values(), key=lambda b: b.get("evaluated_at", ""), default=None)
        return None if newest is None else newest.get("evaluation")

    def _current(self) -> dict[str, dict[str, Any]]:
        """The ranked blocks of the newest evaluation."""
        evaluation = self.evaluation
        return {
            n: b
            for n, b in self.blocks.items()
            if b.get("evaluation") == evaluation and b.get("ranked", True)
        }

    def live_basis(self, chain: tuple[str, ...], kind: str) -> str | None:
        """The live rows the order of ``kind`` rests on: ``kind`` itself when some family
        answered ``LIVE_MIN_ROWS`` live tasks of that kind, else all live tasks when some
        family answered that many; None when no family has (the held-out ranking decides)."""
        families = (self.live or {}).get("families") or {}
        for part in (kind, "all"):
            if any(
                ((families.get(n) or {}).get(part) or {}).get("rows", 0) >= LIVE_MIN_ROWS
                for n in chain[:-1]
            ):
                return part
        return None

    def order(self, chain: tuple[str, ...], kind: str) -> tuple[str, ...]:
        """``chain`` reordered for a request of ``kind`` ("cold" or "warm").

        Once a family has answered ``LIVE_MIN_ROWS`` live tasks (``live_scores``), the
        families whose live log loss beats the chain's last family's on the tasks they
        answered, by ``LIVE_MARGIN`` and by ``LIVE_SE_FACTOR`` standard errors, answer first,
        best first; the last family answers everything else, and the others come after it
        (they are still asked, for the record). Before that the last family answers first.
        With held-out students, the held-out ranking is shown and calibrates, but does not
        promote a family, because held-out students are scored by versions fitted on every
        training student's rows, later ones included, which flatters the richer families
        (the replay showed families ranked first that way doing worse live). With nothing
        validated at all (fewer than ``MIN_USERS_FOR_HOLDOUT`` students) no family has shown
        that it predicts better than the last one either: in replays of classes of 3 and 6
        learners the chain's default order served worse chances and swung more than the last
        family alone (README, "A small class")."""
        live = self.live_basis(chain, kind)
        if live is not None:
            families = (self.live or {}).get("families") or {}

            def advantage(name: str) -> float:
                part = (families.get(name) or {}).get(live) or {}
                if part.get("rows", 0) < LIVE_MIN_ROWS or part.get("advantage") is None:
                    return -math.inf
                return float(part["advantage"])

            def proven(name: str) -> bool:
                part = (families.get(name) or {}).get(live) or {}
                se = part.get("advantage_se")
                noise = LIVE_SE_FACTOR * float(se) if se is not None else math.inf
                return advantage(name) > max(LIVE_MARGIN, noise)

            ahead = sorted(
                (n for n in chain[:-1] if proven(n)),
                key=lambda n: (-advantage(n), chain.index(n)),
            )
            return (*ahead, chain[-1], *(n for n in chain[:-1] if n not in ahead))
        return (chain[-1], *chain[:-1])

    def calibrator(self, name: str, version_id: Any, kind: str) -> Calibrator:
        """The calibration served for ``name``'s version ``version_id`` and ``kind``
        (``calibrators``)."""
        return self.calibrators(name, version_id, kind)[1]

    def calibrators(self, name: str, version_id: Any, kind: str) -> tuple[Calibrator, Calibrator]:
        """(fitted, served): the calibration fitted on held-out students for ``name``'s
        version ``version_id`` and ``kind`` (``fitted_calibrator``), and the one served. The
        served one lacks the probability part where that did worse live than none
        (``probability_holds_live``), and takes its time part from the live tasks once
        there are enough of them (``live_time``)."""
        fitted = self.fitted_calibrator(name, version_id, kind)
        served = fitted
        if not fitted.is_identity and not self.probability_holds_live(name):
            served = fitted.restricted(probability=False, times=True)
        live = self.live_time(name, kind)
        if live is not None:
            served = replace(served, time_shift=live[0], interval_scale=live[1])
        return fitted, served

    def live_time(self, name: str, kind: str) -> tuple[float, float] | None:
        """(median shift, interval scale) of ``name``'s time ranges fitted on its timed live
        tasks of ``kind`` (``_live_calibration``) once there are ``LIVE_MIN_ROWS`` of them,
        else on all its timed live tasks once there are that many; None before (the
        held-out calibration serves)."""
        record = ((self.live or {}).get("calibration") or {}).get(name) or {}
        for part in (kind, "all"):
            fit = record.get(part) or {}
            if fit.get("live_time_rows", 0) < LIVE_MIN_ROWS:
                continue
            try:
                shift, scale = float(fit["live_time_shift"]), float(fit["live_interval_scale"])
            except (KeyError, TypeError, ValueError):
                continue
            if math.isfinite(shift) and math.isfinite(scale) and scale > 0:
                return shift, scale
        return None

    def fitted_calibrator(self, name: str, version_id: Any, kind: str) -> Calibrator:
        """The calibration fitted on held-out students for ``name``'s version
        ``version_id`` and ``kind`` (identity when that version has none). Its chance part
        is the pooled one ("all") for every kind, also for a block stored before the chance
        had one calibration, so a request turning from cold to warm never changes it."""
        block = self.blocks.get(name)
        if block is None or str(block.get("version_id")) != str(version_id):
            return Calibrator()
        stored = block.get("calibration") or {}
        own = Calibrator.from_dict(stored.get(kind))
        if "all" not in stored:
            return own
        pooled = Calibrator.from_dict(stored["all"])
        return replace(own, slope=pooled.slope, intercept=pooled.intercept)

    def probability_holds_live(self, name: str) -> bool:
        """Whether the probability part of ``name``'s fitted calibration is served (for
        every kind alike: the chance has one calibration, ``_fit_kinds``). Held-out
        students are scored by versions fitted on every training student's rows, later ones
        included, so a calibration fitted there can miss what students see. It is withheld
        once it did worse live than the uncalibrated probabilities (``live_scores``: mean
        log-loss gain below 0) on ``LIVE_MIN_ROWS`` tasks of all kinds; with fewer, it serves
        as fitted. (The time part is not chosen this way, between two ranges by their live
        coverage, which a few hundred tasks measure too noisily: it is refitted on the live
        times, ``live_time``.)"""
        record = ((self.live or {}).get("calibration") or {}).get(name) or {}
        scored = record.get("all") or {}
        if scored.get("p_gain_rows", 0) >= LIVE_MIN_ROWS and scored.get("p_gain") is not None:
            return float(scored["p_gain"]) >= 0.0
        return True


def _calibrated_metric(block: dict[str, Any], kind: str, metric: str) -> float | None:
    value = ((block.get("kinds") or {}).get(kind) or {}).get("calibrated", {}).get(metric)
    return None if value is None else float(value)


def serving_policy(session: Session, chain: Iterable[str]) -> ServingPolicy:
    """The policy of the active versions of ``chain``'s families."""
    rows = session.execute(
        select(ModelVersion.model_name, ModelVersion.id, ModelVersion.metrics).where(
            ModelVersion.model_name.in_(list(chain)), ModelVersion.is_active.is_(True)
        )
    ).all()
    blocks = {}
    for name, version_id, metrics in rows:
        block = (metrics or {}).get("serving")
        if isinstance(block, dict) and str(block.get("version_id")) == str(version_id):
            blocks[name] = block
    policy = ServingPolicy(blocks)
    # The live scores are stored with every block of a training; the newest training's.
    current = policy._current() or blocks
    lives = [b["live"] for b in current.values() if isinstance(b.get("live"), dict)]
    return ServingPolicy(blocks, lives[0] if lives else None)


def describe_policy(policy: ServingPolicy, chain: tuple[str, ...]) -> dict[str, Any]:
    """The decision and the held-out metrics behind it, for the admin page and the API."""
    order = {kind: list(policy.order(chain, kind)) for kind in KINDS}
    if policy.evaluation is None:
        reason = (
            f"nothing held out yet (held-out students are chosen from {MIN_USERS_FOR_HOLDOUT} "
            f"students on): {chain[-1]} answers first, the others after it for the record, and "
            "predictions are not calibrated"
        )
    else:
        reason = "; ".join(
            _live_text(kind, live, chain)
            if (live := policy.live_basis(chain, kind)) is not None
            else _basis_text(kind, chain)
            for kind in KINDS
        )
    families = [
        {
            "model_name": name,
            "version_id": str(block.get("version_id")),
            "evaluated_at": block.get("evaluated_at"),
            "ranked": bool(block.get("ranked", True)),
            "kinds": block.get("kinds") or {},
            "calibration": block.get("calibration") or {},
            "probability_calibration_served": {
                kind: policy.probability_holds_live(name) for kind in KINDS
            },
        }
        for name in chain
        if (block := policy.blocks.get(name)) is not None
        and block.get("evaluation") == policy.evaluation
    ]
    return {
        "held_out": policy.evaluation is not None,
        "evaluation": policy.evaluation,
        "cold_tasks": COLD_TASKS,
        "reason": reason,
        "order": order,
        "families": families,
        "live": policy.live,
    }


def _live_text(kind: str, basis: str, chain: tuple[str, ...]) -> str:
    rows = f"{kind} tasks" if basis == kind else f"all tasks (few {kind} ones)"
    return (
        f"{kind} requests ranked by live log loss against {chain[-1]} on the {rows} each "
        f"family answered (first only if better by {LIVE_MARGIN} and by {LIVE_SE_FACTOR:g} "
        "standard errors)"
    )


def _basis_text(kind: str, chain: tuple[str, ...]) -> str:
    return (
        f"{kind} requests: no family has answered {LIVE_MIN_ROWS} live tasks yet, so "
        f"{chain[-1]} answers first (the held-out scores calibrate, they do not promote)"
    )


# -- versions ---------------------------------------------------------------------------
def list_versions(session: Session, model_name: str | None = None) -> list[ModelVersion]:
    """Model versions, newest first (artifacts are not loaded)."""
    stmt = select(ModelVersion).options(defer(ModelVersion.artifact))
    if model_name is not None:
        stmt = stmt.where(ModelVersion.model_name == model_name)
    return list(
        session.scalars(stmt.order_by(ModelVersion.created_at.desc(), ModelVersion.version.desc()))
    )


def get_version(session: Session, version_id: uuid.UUID) -> ModelVersion:
    row = session.get(ModelVersion, version_id)
    if row is None:
        raise NotFoundError("model version not found")
    return row


def activate_version(context: Any, session: Session, version_id: uuid.UUID) -> ModelVersion:
    """Make a stored version the active one of its family (an admin's decision).

    The artifact is loaded first: a version that cannot be loaded is marked ``corrupt`` and
    refused, so a broken file is never served.
    """
    row = get_version(session, version_id)
    # Two activations of one family at once must not both end up active: lock the family's
    # rows (PostgreSQL; SQLite already runs one writer at a time), then re-read this one.
    # Every activation locks them in the same order (by id), so two cannot deadlock.
    session.execute(
        select(ModelVersion.id)
        .where(ModelVersion.model_name == row.model_name)
        .order_by(ModelVersion.id)
        .with_for_update()
    )
    session.refresh(row)
    if row.status == "corrupt":
        raise ConflictError(f"{row.model_name} version {row.version} is corrupt")
    factory = context.predictor.factories.get(row.model_name)
    if factory is None:
        raise ConflictError(f"the app does not serve model family {row.model_name!r}")
    try:
        if row.artifact is None:
            raise ArtifactError("no artifact stored")
        type(factory()).from_bytes(row.artifact)
    except ArtifactError as exc:
        row.status = "corrupt"
        row.is_active = False
        session.flush()
        session.commit()
        raise ConflictError(
            f"{row.model_name} version {row.version} cannot be loaded: {exc}"
        ) from None
    if not row.is_active:
        session.execute(
            update(ModelVersion)
            .where(ModelVersion.model_name == row.model_name, ModelVersion.is_active.is_(True))
            .values(is_active=False, status="retired")
        )
        row.is_active = True
        row.status = "active"
        session.flush()
    return row


def training_runs(session: Session, limit: int = 20) -> list[Job]:
    """Training jobs, newest first."""
    return list(
        session.scalars(
            select(Job).where(Job.kind == "training").order_by(Job.created_at.desc()).limit(limit)
        )
    )


def training_counter(session: Session) -> TrainingCounter | None:
    return session.get(TrainingCounter, TRAINING_COUNTER)


# -- monitoring -------------------------------------------------------------------------
def _distribution(p: np.ndarray) -> dict[str, Any]:
    edges = np.linspace(0.0, 1.0, 11)
    counts, _ = np.histogram(np.clip(p, 0, 1), bins=edges)
    saturated = float(np.mean((p < SATURATION_LOW) | (p > SATURATION_HIGH))) if len(p) else 0.0
    return {
        "n": len(p),
        "distinct": len(np.unique(np.round(p, 2))),
        "saturated_share": round(saturated, 4),
        "mean": round(float(p.mean()), 4) if len(p) else None,
        "std": round(float(p.std()), 4) if len(p) else None,
        "histogram": {"edges": [round(e, 2) for e in edges], "counts": counts.tolist()},
    }


def prediction_frame(session: Session, since: datetime | None = None) -> pd.DataFrame:
    """Stored task predictions: model, user, topic, difficulty, p, and outcome if done."""
    stmt = select(
        PracticeTask.model_name,
        PracticeTask.model_version,
        PracticeTask.user_id,
        PracticeTask.topic_id,
        PracticeTask.difficulty,
        PracticeTask.predicted_correct,
        PracticeTask.predicted_time_median_s,
        PracticeTask.is_correct,
    ).where(PracticeTask.predicted_correct.is_not(None))
    if since is not None:
        stmt = stmt.where(PracticeTask.created_at >= since)
    rows = session.execute(stmt).all()
    columns = [
        "model_name",
        "model_version",
        "user_id",
        "topic_id",
        "difficulty",
        "p_correct",
        "time_median_s",
        "is_correct",
    ]
    frame = pd.DataFrame(rows, columns=columns)
    for col in ("user_id", "topic_id"):
        frame[col] = frame[col].astype(str)
    return frame


def prediction_distribution(session: Session, since: datetime | None = None) -> list[dict]:
    """Per model family: how its stored predictions are distributed, with a warning when
    too many of them are saturated (the dominant-user failure of seed 002)."""
    frame = prediction_frame(session, since)
    out = []
    for name, rows in frame.groupby("model_name", sort=True):
        info = {"model_name": name, **_distribution(rows["p_correct"].to_numpy(dtype=float))}
        info["warning"] = (
            f"{info['saturated_share']:.0%} of predictions are below {SATURATION_LOW} or "
            f"above {SATURATION_HIGH}"
            if info["saturated_share"] > SATURATION_WARNING_SHARE
            else None
        )
        out.append(info)
    return out


def analyze_predictions(session: Session, since: datetime | None = None) -> dict[str, Any]:
    """The diversity analysis of seed 004: per model, and per user, topic and difficulty,
    how many distinct values the stored predictions take, how many are saturated, and how
    widely they spread (standard deviation and range of p, spread of predicted time)."""
    frame = prediction_frame(session, since)

    def group(by: str) -> list[dict[str, Any]]:
        rows = []
        for key, part in frame.groupby(by, sort=True):
            p = part["p_correct"].to_numpy(dtype=float)
            t = part["time_median_s"].to_numpy(dtype=float)
            t = t[np.isfinite(t)]
            rows.append(
                {
                    by: key,
                    "n": len(p),
                    "distinct_p": len(np.unique(np.round(p, 2))),
                    "distinct_time": len(np.unique(np.round(t))) if len(t) else 0,
                    "saturated_share": round(
                        float(np.mean((p < SATURATION_LOW) | (p > SATURATION_HIGH))), 4
                    ),
                    "p_min": round(float(p.min()), 4),
                    "p_max": round(float(p.max()), 4),
                    "p_std": round(float(p.std()), 4),
                    "time_std_s": round(float(t.std()), 1) if len(t) else None,
                }
            )
        return rows

    return {
        "predictions": len(frame),
        "by_model": prediction_distribution(session, since),
        "by_user": group("user_id"),
        "by_topic": group("topic_id"),
        "by_difficulty": group("difficulty"),
    }
