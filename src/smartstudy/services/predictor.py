"""Serving predictions for practice tasks: the model chain, versions and online learning.

In the app an item is a (topic, difficulty) pair and its skill is the topic. Each model
family in the chain is trained on every user's completed tasks and stored as a versioned
``model_versions`` row; the served copy in memory then learns online from each completion
(``LearnerModel.update``). Completions written by other processes are caught up from the
database before each prediction, so several API processes stay consistent.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from smartstudy.models.base import ArtifactError, LearnerModel
from smartstudy.models.baseline import Baseline
from smartstudy.services import registry
from smartstudy.services.app_models import TopicLNIRT, app_neural
from smartstudy.services.errors import CannotPredictError, ServiceError
from smartstudy.store.orm import ModelVersion, PracticeTask, utcnow

log = logging.getLogger(__name__)

ModelFactory = Callable[[], LearnerModel]

#: Model families the app can serve, by name.
APP_MODELS: dict[str, ModelFactory] = {
    "neural": app_neural,
    "lnirt": TopicLNIRT,
    "baseline": Baseline,
}
#: The order in which the chain asks them; the first that answers wins. The last one must
#: answer everything (it is rebuilt if its artifact breaks).
DEFAULT_CHAIN: tuple[str, ...] = ("neural", "lnirt", "baseline")
#: Families too slow to fit inside a request: until the background training job has made
#: a version of them, the chain falls back. The others are fitted on first use.
BACKGROUND_ONLY: frozenset[str] = frozenset({"neural"})
# Completions are caught up from this far before the newest one seen, so that a row
# committed late by another process (with an earlier timestamp) is not missed.
SYNC_WINDOW = timedelta(seconds=10)
# Replaying more completions than this on load costs more than fitting afresh.
MAX_REPLAY = 2000


class PredictionUnavailableError(ServiceError):
    """No model in the chain could answer."""


def item_key(topic_id: uuid.UUID | str, difficulty: str) -> str:
    return f"{topic_id}:{difficulty}"


def completed_interactions(
    session: Session,
    since: datetime | None = None,
    until: datetime | None = None,
    users: Sequence[uuid.UUID] | None = None,
) -> pd.DataFrame:
    """Completed tasks in the interactions schema (plus ``task_id`` and ``completed_at``),
    optionally completed within [since, until] and only of ``users``."""
    stmt = select(
        PracticeTask.id,
        PracticeTask.user_id,
        PracticeTask.topic_id,
        PracticeTask.difficulty,
        PracticeTask.is_correct,
        PracticeTask.actual_time_seconds,
        PracticeTask.completed_at,
    ).where(PracticeTask.completed_at.is_not(None))
    if since is not None:
        stmt = stmt.where(PracticeTask.completed_at >= since)
    if until is not None:
        stmt = stmt.where(PracticeTask.completed_at <= until)
    if users is not None:
        stmt = stmt.where(PracticeTask.user_id.in_(users))
    rows = session.execute(stmt.order_by(PracticeTask.completed_at, PracticeTask.id)).all()
    return interactions_frame(rows)


def interactions_frame(rows: Sequence[tuple]) -> pd.DataFrame:
    columns = ["task_id", "user_id", "item_id", "skill_id", "correct", "rt_seconds", "order"]
    if not rows:
        frame = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
        frame["completed_at"] = pd.Series(dtype=object)
        return frame
    task_id, user_id, topic_id, difficulty, correct, rt, completed = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "task_id": list(task_id),
            "user_id": [str(u) for u in user_id],
            "item_id": [item_key(t, d) for t, d in zip(topic_id, difficulty, strict=True)],
            "skill_id": [str(t) for t in topic_id],
            "correct": np.array([float(c) for c in correct]),
            "rt_seconds": np.array([np.nan if r is None else float(r) for r in rt]),
            "order": np.array([c.timestamp() for c in completed]),
            "completed_at": list(completed),
        }
    )


@dataclass(frozen=True)
class Prediction:
    p_correct: float
    time_median_s: float
    time_p10_s: float
    time_p90_s: float
    model_name: str
    model_version: str


@dataclass
class _Served:
    name: str
    version_id: uuid.UUID
    version: int
    model: LearnerModel
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Completions already learnt from, by task id, within the catch-up window.
    seen: dict[uuid.UUID, datetime] = field(default_factory=dict)
    watermark: datetime | None = None

    def learn(self, task_id: uuid.UUID, row: dict, completed_at: datetime) -> None:
        if task_id in self.seen:
            return
        self.model.update(row)
        self.seen[task_id] = completed_at
        if self.watermark is None or completed_at > self.watermark:
            self.watermark = completed_at
            horizon = completed_at - SYNC_WINDOW
            self.seen = {k: v for k, v in self.seen.items() if v >= horizon}


class PredictionService:
    """Answers "how likely, how long?" for a user, topic and difficulty."""

    def __init__(
        self,
        chain: Sequence[str] = DEFAULT_CHAIN,
        factories: dict[str, ModelFactory] | None = None,
    ) -> None:
        self.factories = dict(APP_MODELS if factories is None else factories)
        unknown = [n for n in chain if n not in self.factories]
        if unknown:
            raise ValueError(f"unknown model(s) in chain: {', '.join(unknown)}")
        self.chain = tuple(chain)
        self._served: dict[str, _Served] = {}
        self._load_lock = threading.Lock()
        #: The latest fallbacks (a family that failed or could not answer), newest last,
        #: for the admin page: (when, family, what happened).
        self.fallbacks: deque[tuple[datetime, str, str]] = deque(maxlen=50)

    # -- prediction --------------------------------------------------------------------
    def predict(
        self, session: Session, user_id: uuid.UUID, topic_id: uuid.UUID, difficulty: str
    ) -> Prediction:
        errors: list[str] = []
        for name in self.chain:
            try:
                served = self._ready(session, name)
                with served.lock:
                    out = served.model.predict_one(
                        str(user_id), item_key(topic_id, difficulty), str(topic_id)
                    )
                prediction = Prediction(
                    p_correct=out["p_correct"],
                    time_median_s=out["time_median_s"],
                    time_p10_s=out["time_p10_s"],
                    time_p90_s=out["time_p90_s"],
                    model_name=name,
                    model_version=str(served.version),
                )
                _check_prediction(prediction)
                return prediction
            except CannotPredictError as exc:
                log.debug("model %s cannot answer: %s", name, exc)
                errors.append(f"{name}: {exc}")
            except Exception as exc:  # any model failure falls back
                log.exception("model %s failed to predict; falling back", name)
                errors.append(f"{name}: {exc}")
                self.fallbacks.append((utcnow(), name, f"{type(exc).__name__}: {exc}"))
        raise PredictionUnavailableError("no model could predict: " + "; ".join(errors))

    def observe(self, task: PracticeTask) -> None:
        """Learn online from a task whose completion has been committed."""
        if task.completed_at is None:
            return
        row = _task_row(task)
        for served in list(self._served.values()):
            try:
                with served.lock:
                    served.learn(task.id, row, task.completed_at)
            except Exception:  # learning must never break a completion
                log.exception("model %s failed to learn from task %s", served.name, task.id)

    def served_model(self, session: Session, name: str) -> LearnerModel:
        """The live model of family ``name`` (loaded and caught up), e.g. to read a
        user's personal state. Do not mutate it."""
        return self._ready(session, name).model

    def forget(self) -> None:
        """Drop every served model from memory (they reload from the database)."""
        with self._load_lock:
            self._served.clear()

    # -- training and versions ---------------------------------------------------------
    def train(self, session: Session, name: str) -> ModelVersion:
        """Fit ``name`` on every completed task of the training students and store it as
        the active version (used when a family has no version at all yet)."""
        data = completed_interactions(session)
        train, holdout, held = registry.split_for_validation(data)
        model, seconds = self.fit_model(name, train)
        decision = registry.validate(model, None, holdout, train)
        return self.store_version(
            session, name, model, train, seconds, decision=decision, holdout_users=held
        )

    def fit_model(self, name: str, data: pd.DataFrame) -> tuple[LearnerModel, float]:
        """A new model of family ``name`` fitted on ``data``, and the seconds it took."""
        model = self.factories[name]()
        started = time.perf_counter()
        model.fit(data)
        return model, time.perf_counter() - started

    def load_active(
        self, session: Session, name: str
    ) -> tuple[LearnerModel | None, ModelVersion | None]:
        """A fresh copy of the active version of ``name`` as stored (no online state) and
        its row; the model is None when there is none or it cannot be loaded."""
        row = session.scalar(
            select(ModelVersion).where(
                ModelVersion.model_name == name, ModelVersion.is_active.is_(True)
            )
        )
        if row is None or row.artifact is None:
            return None, row
        try:
            return type(self.factories[name]()).from_bytes(row.artifact), row
        except ArtifactError as exc:
            log.error("active %s version %s is unusable: %s", name, row.version, exc)
            return None, row

    def store_version(
        self,
        session: Session,
        name: str,
        model: LearnerModel,
        data: pd.DataFrame,
        fit_seconds: float,
        decision: registry.Decision | None = None,
        holdout_users: set[str] | None = None,
    ) -> ModelVersion:
        """Store a fitted model as the next version of ``name``; it becomes the active one
        when ``decision`` says so (or when no decision is given)."""
        activate = decision is None or decision.activate
        latest = session.scalar(
            select(func.max(ModelVersion.version)).where(ModelVersion.model_name == name)
        )
        if activate:
            session.execute(
                update(ModelVersion)
                .where(ModelVersion.model_name == name, ModelVersion.is_active.is_(True))
                .values(is_active=False, status="retired")
            )
        summary: dict = {
            "rows": len(data),
            "users": int(data["user_id"].nunique()) if len(data) else 0,
            "items": int(data["item_id"].nunique()) if len(data) else 0,
            "fit_seconds": round(fit_seconds, 4),
            "params": model.get_params(),
            "holdout_users": sorted(holdout_users or ()),
        }
        if decision is not None:
            summary["decision"] = decision.reason
        skipped = getattr(model, "skipped_", None)
        if skipped:
            summary["skipped"] = skipped
        row = ModelVersion(
            model_name=name,
            version=(latest or 0) + 1,
            status="active" if activate else "rejected",
            is_active=activate,
            trained_until=data["completed_at"].max() if len(data) else None,
            n_training_rows=len(data),
            metrics=decision.metrics if decision is not None else {},
            training_summary=summary,
            artifact=model.to_bytes(),
        )
        session.add(row)
        session.flush()
        log.info(
            "stored %s version %s (%d rows): %s",
            name,
            row.version,
            len(data),
            "active" if activate else f"rejected, {decision.reason if decision else ''}",
        )
        return row

    def _ready(self, session: Session, name: str) -> _Served:
        """The served model, loaded or trained if needed and caught up with the database."""
        active = session.execute(
            select(ModelVersion.id, ModelVersion.version).where(
                ModelVersion.model_name == name, ModelVersion.is_active.is_(True)
            )
        ).first()
        with self._load_lock:
            served = self._served.get(name)
            if served is None or active is None or served.version_id != active.id:
                served = self._load(session, name)
                self._served[name] = served
        self._catch_up(session, served)
        return served

    def _load(self, session: Session, name: str) -> _Served:
        row = session.scalar(
            select(ModelVersion).where(
                ModelVersion.model_name == name, ModelVersion.is_active.is_(True)
            )
        )
        factory = self.factories[name]
        on_demand = name not in BACKGROUND_ONLY or name == self.chain[-1]
        if row is not None and on_demand:
            since = [PracticeTask.completed_at.is_not(None)]
            if row.trained_until is not None:
                since.append(PracticeTask.completed_at > row.trained_until)
            pending = session.scalar(select(func.count()).select_from(PracticeTask).where(*since))
            if (pending or 0) > MAX_REPLAY:
                row = None
        if row is None:
            if not on_demand:
                raise CannotPredictError(f"no trained {name} version yet")
            row = self.train(session, name)
        cls = type(factory())
        try:
            if row.artifact is None:
                raise ArtifactError("no artifact stored")
            model = cls.from_bytes(row.artifact)
        except ArtifactError as exc:
            # Never serve a broken artifact: retire it, and rebuild it if this family is the
            # last resort of the chain (the others fall back to the next family instead).
            log.error("model %s version %s is unusable: %s", name, row.version, exc)
            self.fallbacks.append((utcnow(), name, f"version {row.version} unusable: {exc}"))
            row.is_active = False
            row.status = "corrupt"
            session.flush()
            if name != self.chain[-1]:
                raise
            row = self.train(session, name)
            model = cls.from_bytes(row.artifact or b"")
        served = _Served(name=name, version_id=row.id, version=row.version, model=model)
        served.watermark = row.trained_until
        if row.trained_until is not None:
            held = set((row.training_summary or {}).get("holdout_users") or ())
            if held:
                # Held-out students' tasks were not fitted on: learn them online, in order,
                # as the model would have if it had served them.
                past = completed_interactions(
                    session,
                    until=row.trained_until,
                    users=[uuid.UUID(u) for u in held],
                )
                for rec in past.to_dict("records"):
                    served.learn(rec["task_id"], _record_row(rec), rec["completed_at"])
            # Rows inside the window at the end of training were learnt by fit already.
            done = session.execute(
                select(PracticeTask.id, PracticeTask.completed_at).where(
                    PracticeTask.completed_at >= row.trained_until - SYNC_WINDOW,
                    PracticeTask.completed_at <= row.trained_until,
                )
            ).all()
            served.seen.update({task_id: at for task_id, at in done})
        return served

    def _catch_up(self, session: Session, served: _Served) -> None:
        since = None if served.watermark is None else served.watermark - SYNC_WINDOW
        new = completed_interactions(session, since=since)
        if new.empty:
            return
        with served.lock:
            for rec in new.to_dict("records"):
                served.learn(rec["task_id"], _record_row(rec), rec["completed_at"])


def _record_row(rec: dict) -> dict:
    return {k: rec[k] for k in ("user_id", "item_id", "skill_id", "correct", "rt_seconds")}


def _task_row(task: PracticeTask) -> dict:
    return {
        "user_id": str(task.user_id),
        "item_id": item_key(task.topic_id, task.difficulty),
        "skill_id": str(task.topic_id),
        "correct": float(bool(task.is_correct)),
        "rt_seconds": np.nan if task.actual_time_seconds is None else task.actual_time_seconds,
    }


def _check_prediction(p: Prediction) -> None:
    values = (p.p_correct, p.time_median_s, p.time_p10_s, p.time_p90_s)
    if not all(np.isfinite(v) for v in values):
        raise ValueError(f"non-finite prediction {values}")
    if not 0.0 <= p.p_correct <= 1.0:
        raise ValueError(f"probability out of range: {p.p_correct}")
    if not 0 < p.time_p10_s <= p.time_median_s <= p.time_p90_s:
        raise ValueError(f"time interval out of order: {values[1:]}")
