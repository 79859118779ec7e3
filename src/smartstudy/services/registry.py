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
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select, update
from sqlalchemy.orm import Session, defer

from smartstudy.eval.metrics import interval_coverage, log_loss, rmse_log_time
from smartstudy.models.base import ArtifactError, LearnerModel
from smartstudy.services.errors import CannotPredictError, ConflictError, NotFoundError
from smartstudy.store.orm import Job, ModelVersion, PracticeTask, TrainingCounter

log = logging.getLogger(__name__)

HOLDOUT_BUCKETS = 5
MIN_USERS_FOR_HOLDOUT = 10
LOG_LOSS_TOLERANCE = 1e-3
LOG_TIME_TOLERANCE = 5e-3
# Predictions this close to 0 or 1 count as saturated on the monitoring page.
SATURATION_LOW, SATURATION_HIGH = 0.02, 0.98
SATURATION_WARNING_SHARE = 0.05
TRAINING_COUNTER = "training"


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
    held = holdout_users(data["user_id"]) if len(data) else set()
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
    """The outcome of validating a new version against the active one."""

    activate: bool
    reason: str
    metrics: dict[str, Any] = field(default_factory=dict)


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
        return Decision(True, "no active version to compare with", own)
    try:
        act_pred = predict_rows(active, holdout)
    except Exception as exc:  # the active artifact misbehaves: anything sound beats it
        return Decision(True, f"the active version failed on validation data: {exc}", own)
    both = answered & act_pred["p_correct"].notna().to_numpy()
    if comparable is not None:
        both &= comparable
    if not both.any():
        return Decision(True, "no held-out rows that neither version was fitted on", own)
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
        return Decision(False, reason, metrics)
    return Decision(
        True, f"validates at least as well as the active version on {new['rows']} rows", metrics
    )


def comparable_rows(
    holdout: pd.DataFrame, active_holdout: Iterable[str], active_trained_until: datetime | None
) -> np.ndarray:
    """Rows of ``holdout`` that the active version was not fitted on."""
    mask = holdout["user_id"].astype(str).isin(set(active_holdout)).to_numpy()
    if active_trained_until is None:
        return np.ones(len(holdout), dtype=bool)
    later = np.array([at > active_trained_until for at in holdout["completed_at"]], dtype=bool)
    return mask | later


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
    session.execute(
        select(ModelVersion.id).where(ModelVersion.model_name == row.model_name).with_for_update()
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
