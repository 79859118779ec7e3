"""Serving predictions for practice tasks: the model chain, versions and online learning.

In the app an item is a (topic, difficulty) pair and its skill is the topic. Each model
family in the chain is trained on every user's completed tasks and stored as a versioned
``model_versions`` row; the served copy in memory then learns online from each completion
(``LearnerModel.update``). Completions written by other processes are caught up from the
database before each prediction, so several API processes stay consistent.

Which family answers is decided by validation (``registry.ServingPolicy``): every training
scores each family's served version one step ahead on the same held-out students' tasks,
separately for cold requests (the learner's first ``registry.COLD_TASKS`` tasks in the topic)
and warm ones, and fits each family's calibration on those held-out rows. A request asks the
families best first for its kind and applies the answering family's calibration: one map of the
chance for every kind, increasing in p, so a family's direction guarantees hold when a learner's
requests turn from cold to warm too; the time part per kind. A family that cannot answer or
fails falls back to the next. Telling cold from warm is a dictionary look-up in per (user,
topic) counts kept up to date like the models. With nothing held out (fewer than
``registry.MIN_USERS_FOR_HOLDOUT`` students) the chain's last family answers first, uncalibrated.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import DateTime, String, case, cast, func, select, type_coerce, update
from sqlalchemy.orm import Session

from smartstudy.models.base import ArtifactError, LearnerModel
from smartstudy.models.lnirt import TopicLNIRT
from smartstudy.observability import metrics
from smartstudy.services import registry
from smartstudy.services.app_models import ITEM_LEVEL_SEP, app_baseline, app_neural
from smartstudy.services.calibration import Calibrator
from smartstudy.services.errors import CannotPredictError, ServiceError
from smartstudy.store.orm import ModelVersion, PracticeTask, TrainingCounter, utcnow

log = logging.getLogger(__name__)

ModelFactory = Callable[[], LearnerModel]

#: Model families the app can serve, by name.
APP_MODELS: dict[str, ModelFactory] = {
    "neural": app_neural,
    "lnirt": TopicLNIRT,
    "baseline": app_baseline,
}
#: The order in which the chain asks them when held-out students cannot decide (fewer than
#: ten students, or no held-out rows for a kind); the first that answers wins. The last one
#: must answer everything (it is rebuilt if its artifact breaks). LNIRT comes first: its
#: ability and speed are per student and topic, so it follows a student's own record even
#: when one student is nearly all the data, where an unvalidated network drifts towards the
#: population (seed 000's bulk user: LNIRT within 0.006 of every observed rate, the network
#: up to 0.19 off).
DEFAULT_CHAIN: tuple[str, ...] = ("lnirt", "neural", "baseline")
#: Families too slow to fit inside a request: until the background training job has made
#: a version of them, the chain falls back. The others are fitted on first use.
BACKGROUND_ONLY: frozenset[str] = frozenset({"neural"})
# Completions are caught up from this far before the newest one seen, so that a row
# committed late by another process (with an earlier timestamp) is not missed.
SYNC_WINDOW = timedelta(seconds=10)
#: With a follower thread (``PredictionService.follow``), a request reads the feed itself
#: only once the last read is this many ``sync_interval`` old: the follower died or stalls.
FOLLOWER_SLACK = 4
# Most syncs read only the newest part of that window, where nearly every new completion
# is; the whole window is read at most every ``SYNC_FULL_EVERY`` seconds (and by a forced
# sync), so a completion committed more than ``SYNC_RECENT`` late is learnt within that.
SYNC_RECENT = timedelta(seconds=2)
SYNC_FULL_EVERY = 2.0


class PredictionUnavailableError(ServiceError):
    """No model in the chain could answer."""


#: The columns of a completed task that make one interaction (``interactions_frame``,
#: ``_interaction_record``), in that order.
_INTERACTION_COLUMNS = (
    PracticeTask.id,
    PracticeTask.user_id,
    PracticeTask.topic_id,
    PracticeTask.difficulty,
    PracticeTask.is_correct,
    PracticeTask.actual_time_seconds,
    PracticeTask.completed_at,
)

#: The same columns as PostgreSQL reads them fastest: ids as text (``uuid::text`` is the
#: form ``str(uuid.UUID)`` writes, and sorts as the UUIDs do) and the time without
#: ``UTCDateTime``'s per-row conversion, done once in ``interactions_frame``. A training
#: reads every completed task: at 100,000 tasks this takes the read from 1.6 to 0.6 s of
#: CPU. Such a frame's ``task_id`` is text; ``_task_id`` makes it a UUID where a served
#: model remembers it.
_POSTGRES_INTERACTION_COLUMNS = (
    cast(PracticeTask.id, String),
    cast(PracticeTask.user_id, String),
    cast(PracticeTask.topic_id, String),
    PracticeTask.difficulty,
    PracticeTask.is_correct,
    PracticeTask.actual_time_seconds,
    type_coerce(PracticeTask.completed_at, DateTime(timezone=True)),
)


def item_key(topic_id: uuid.UUID | str, difficulty: str) -> str:
    """The model contract's item of a topic and a difficulty: ``<topic id>:<difficulty>``."""
    return f"{topic_id}{ITEM_LEVEL_SEP}{difficulty}"


def completed_interactions(
    session: Session,
    since: datetime | None = None,
    until: datetime | None = None,
    users: Sequence[uuid.UUID] | None = None,
) -> pd.DataFrame:
    """Completed tasks in the interactions schema (plus ``task_id`` and ``completed_at``),
    optionally completed within [since, until] and only of ``users``."""
    columns = _INTERACTION_COLUMNS
    if session.get_bind().dialect.name == "postgresql":
        columns = _POSTGRES_INTERACTION_COLUMNS
    stmt = select(*columns).where(PracticeTask.completed_at.is_not(None))
    if since is not None:
        stmt = stmt.where(PracticeTask.completed_at >= since)
    if until is not None:
        stmt = stmt.where(PracticeTask.completed_at <= until)
    if users is not None:
        stmt = stmt.where(PracticeTask.user_id.in_(users))
    # Through the session's connection: plain rows, without the ORM's per-row work (a
    # training reads every completed task).
    order = stmt.order_by(PracticeTask.completed_at, PracticeTask.id)
    return interactions_frame(session.connection().execute(order).all())


def interactions_frame(rows: Sequence[tuple]) -> pd.DataFrame:
    """The interactions of ``rows`` of ``_INTERACTION_COLUMNS`` (or of
    ``_POSTGRES_INTERACTION_COLUMNS``: ids as text, times in the connection's time zone)."""
    columns = ["task_id", "user_id", "item_id", "skill_id", "correct", "rt_seconds", "order"]
    if not rows:
        frame = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
        frame["completed_at"] = pd.Series(dtype=object)
        return frame
    task_id, user_id, topic_id, difficulty, correct, rt, completed = zip(*rows, strict=True)
    if isinstance(user_id[0], str):
        completed = tuple(c if c.tzinfo is UTC else c.astimezone(UTC) for c in completed)
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


#: One family's answer: (p, median, p10, p90).
Values = tuple[float, float, float, float]


@dataclass(frozen=True)
class Prediction:
    p_correct: float
    time_median_s: float
    time_p10_s: float
    time_p90_s: float
    model_name: str
    model_version: str
    #: The request's kind ("cold" or "warm", see ``registry.COLD_TASKS``).
    kind: str = "warm"
    #: With ``predict(..., candidates=True)``: what every family that could answer would
    #: have served (calibrated as it would be), ``{name: (p, median, p10, p90)}``.
    candidates: dict[str, Values] | None = None
    #: For each family asked whose fitted or served calibration is not the identity: its
    #: prediction uncalibrated and with the whole fitted calibration, ``{name: (raw,
    #: calibrated)}``, whichever parts were served, so that the calibration is scored and
    #: the time ranges refitted live (``registry.live_scores``).
    variants: dict[str, tuple[Values, Values]] = field(default_factory=dict)

    def family_predictions(self) -> dict[str, Any] | None:
        """The ``practice_tasks.family_predictions`` value of this prediction (None without
        candidates)."""
        if self.candidates is None:
            return None
        stored: dict[str, Any] = {"kind": self.kind, "families": _rounded(self.candidates)}
        if self.variants:
            stored["uncalibrated"] = _rounded({n: v[0] for n, v in self.variants.items()})
            stored["calibrated"] = _rounded({n: v[1] for n, v in self.variants.items()})
        return stored


def _rounded(values: dict[str, Values]) -> dict[str, list[float]]:
    return {n: [round(float(v), 6) for v in c] for n, c in values.items()}


@dataclass(kw_only=True)
class _Stream:
    """Completions taken in, each once: those within the catch-up window are remembered by
    task id, everything older than the watermark minus the window counts as taken."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    seen: dict[uuid.UUID, datetime] = field(default_factory=dict)
    watermark: datetime | None = None
    #: ``seen`` in the order it was filled, so that forgetting what fell out of the window
    #: costs what is forgotten, not the whole window (completions come nearly in order; one
    #: that came late is forgotten a little late, which only keeps it a little longer).
    _order: deque[tuple[datetime, uuid.UUID]] = field(default_factory=deque)

    def _mark(self, task_id: uuid.UUID, completed_at: datetime) -> None:
        self._remember(task_id, completed_at)
        if self.watermark is None or completed_at > self.watermark:
            self.watermark = completed_at
            horizon = completed_at - SYNC_WINDOW
            order, seen = self._order, self.seen
            while order and order[0][0] < horizon:
                at, old = order.popleft()
                if seen.get(old) == at:
                    del seen[old]

    def _remember(self, task_id: uuid.UUID, completed_at: datetime) -> None:
        self.seen[task_id] = completed_at
        self._order.append((completed_at, task_id))


@dataclass
class _Served(_Stream):
    name: str
    version_id: uuid.UUID
    version: int
    model: LearnerModel
    #: When (``time.monotonic``) the active version of the family was last looked up.
    checked_at: float = -math.inf

    def learn(self, task_id: uuid.UUID, row: dict, completed_at: datetime) -> None:
        if task_id in self.seen:
            return
        self.model.update(row)
        self._mark(task_id, completed_at)


def standing_of(cells: Iterable[tuple[int, int, int, int]]) -> tuple[int, int, float]:
    """(tasks, correct, expected correct) of a student over cells given as (their tasks,
    their correct, others' tasks, others' correct): the cells others have practised too,
    each expected at the others' rate."""
    n = correct = 0
    expected = 0.0
    for mine_n, mine_correct, others_n, others_correct in cells:
        if others_n > 0:
            n, correct = n + mine_n, correct + mine_correct
            expected += mine_n * others_correct / others_n
    return n, correct, expected


def _others(
    users: dict[str, list[int]], total: Sequence[int], user_id: str
) -> tuple[int, int, int]:
    """(tasks, correct, students) of a tally by user and its total, without ``user_id``."""
    n, correct = total
    mine_n, mine_correct = users.get(user_id, (0, 0))
    return n - mine_n, correct - mine_correct, len(users) - (user_id in users)


@dataclass
class _TopicCounts(_Stream):
    """Completed tasks per (user, topic), and tasks and successes per (cell, user), kept up
    to date like a served model: telling a cold request from a warm one, and the other
    students' record in a cell (an explanation), each cost a dictionary look-up."""

    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    #: item key (topic:difficulty) -> user id -> [tasks, correct]
    cells: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    #: item key -> [tasks, correct] of everyone, so that ``others`` is a subtraction
    totals: dict[str, list[int]] = field(default_factory=dict)
    #: difficulty -> user id -> [tasks, correct], over every topic
    levels: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    #: difficulty -> [tasks, correct] of everyone
    level_totals: dict[str, list[int]] = field(default_factory=dict)
    #: user id -> the item keys (cells) they have completed tasks in
    user_items: dict[str, set[str]] = field(default_factory=dict)
    loaded: bool = False

    def learn(
        self, task_id: uuid.UUID, user_id: str, item: str, correct: bool, at: datetime
    ) -> None:
        if task_id in self.seen:
            return
        self._add(user_id, item, 1, int(correct))
        self._mark(task_id, at)

    def _add(self, user_id: str, item: str, n: int, correct: int) -> None:
        topic, _, level = item.partition(ITEM_LEVEL_SEP)
        key = (user_id, topic)
        self.counts[key] = self.counts.get(key, 0) + n
        self.user_items.setdefault(user_id, set()).add(item)
        for tally in (
            self.cells.setdefault(item, {}).setdefault(user_id, [0, 0]),
            self.totals.setdefault(item, [0, 0]),
            self.levels.setdefault(level, {}).setdefault(user_id, [0, 0]),
            self.level_totals.setdefault(level, [0, 0]),
        ):
            tally[0] += n
            tally[1] += correct

    def others(self, user_id: str, item: str) -> tuple[int, int, int]:
        """(tasks, correct, students) of everyone but ``user_id`` in cell ``item``."""
        return _others(self.cells.get(item, {}), self.totals.get(item, (0, 0)), user_id)

    def others_at_level(self, user_id: str, level: str) -> tuple[int, int, int]:
        """(tasks, correct, students) of everyone but ``user_id`` at difficulty ``level``,
        in every topic."""
        return _others(self.levels.get(level, {}), self.level_totals.get(level, (0, 0)), user_id)

    def standing(self, user_id: str) -> tuple[int, int, float]:
        """(tasks, correct, expected correct) of ``user_id`` over the cells where others
        have tasks too: expected at the other students' rate in each cell."""
        return standing_of(
            (*self.cells[item][user_id], *self.others(user_id, item)[:2])
            for item in self.user_items.get(user_id, ())
        )

    def load(self, session: Session) -> None:
        """Count everything completed before the catch-up window of the newest completion
        in one grouped query; the window itself is caught up row by row. The reads happen
        before the lock is taken (see ``PredictionService.sync``)."""
        newest = session.scalar(select(func.max(PracticeTask.completed_at)))
        rows = []
        if newest is not None:
            rows = session.execute(
                select(
                    PracticeTask.user_id,
                    PracticeTask.topic_id,
                    PracticeTask.difficulty,
                    func.count(),
                    func.sum(case((PracticeTask.is_correct.is_(True), 1), else_=0)),
                )
                .where(PracticeTask.completed_at < newest - SYNC_WINDOW)
                .group_by(PracticeTask.user_id, PracticeTask.topic_id, PracticeTask.difficulty)
            ).all()
        window = self._window(session, newest)
        with self.lock:
            if self.loaded:
                return
            self.counts, self.cells, self.totals = {}, {}, {}
            self.levels, self.level_totals, self.user_items = {}, {}, {}
            for user_id, topic_id, difficulty, n, correct in rows:
                self._add(str(user_id), item_key(topic_id, difficulty), int(n), int(correct or 0))
            self.watermark = newest
            self.loaded = True
            self._learn_rows(window)

    def catch_up(self, session: Session) -> None:
        """Learn every completion since the watermark minus the window (read, then counted
        under the lock)."""
        rows = self._window(session, self.watermark)
        with self.lock:
            self._learn_rows(rows)

    def _learn_rows(self, rows: Sequence[tuple]) -> None:
        for task_id, user_id, topic_id, difficulty, correct, at in rows:
            self.learn(task_id, str(user_id), item_key(topic_id, difficulty), bool(correct), at)

    @staticmethod
    def _window(session: Session, watermark: datetime | None) -> Sequence[tuple]:
        stmt = select(
            PracticeTask.id,
            PracticeTask.user_id,
            PracticeTask.topic_id,
            PracticeTask.difficulty,
            PracticeTask.is_correct,
            PracticeTask.completed_at,
        ).where(PracticeTask.completed_at.is_not(None))
        if watermark is not None:
            stmt = stmt.where(PracticeTask.completed_at >= watermark - SYNC_WINDOW)
        return session.execute(stmt).all()


class PredictionService:
    """Answers "how likely, how long?" for a user, topic and difficulty."""

    def __init__(
        self,
        chain: Sequence[str] = DEFAULT_CHAIN,
        factories: dict[str, ModelFactory] | None = None,
        *,
        load_in_background: bool = False,
        sync_interval: float = 0.0,
        fixed_order: bool = False,
    ) -> None:
        """``load_in_background``: when another version of a family becomes active, keep
        serving the loaded one while a thread loads the new one, then swap (a server);
        otherwise the request that notices it loads it (tests, batch work).

        ``sync_interval``: how many seconds a prediction may rest on what this process last
        read of the database (other processes' completions, the active versions, the serving
        policy) before reading it again; 0 reads before every prediction. A process always
        learns its own completions at once (``observe``).

        ``fixed_order``: always ask the families in the chain's order (the replay's "family
        alone" configurations); otherwise the serving policy orders them."""
        self.factories = dict(APP_MODELS if factories is None else factories)
        self.load_in_background = load_in_background
        self.sync_interval = sync_interval
        self.fixed_order = fixed_order
        # Completions of every process, read once per sync and handed to every served model
        # and the counts; the time of the last sync and of the last policy look-up.
        self._feed = _Stream()
        self._sync_lock = threading.Lock()
        self._handout_lock = threading.Lock()
        self._synced_at = -math.inf
        self._full_sync_at = -math.inf
        self._policy_checked_at = -math.inf
        self._loading: set[str] = set()
        self._follower: threading.Thread | None = None
        self._stop_following = threading.Event()
        self._follow_lock = threading.Lock()
        #: True while ``warm_up`` runs: the process is not ready for traffic yet.
        self.warming_up = False
        unknown = [n for n in chain if n not in self.factories]
        if unknown:
            raise ValueError(f"unknown model(s) in chain: {', '.join(unknown)}")
        self.chain = tuple(chain)
        self._served: dict[str, _Served] = {}
        self._load_lock = threading.Lock()
        self._counts = _TopicCounts()
        # The serving policy and what it was read for: (last training, active version ids).
        self._policy_cache: tuple[tuple, registry.ServingPolicy] | None = None
        #: The latest fallbacks (a family that failed or could not answer), newest last,
        #: for the admin page: (when, family, what happened).
        self.fallbacks: deque[tuple[datetime, str, str]] = deque(maxlen=50)

    # -- prediction --------------------------------------------------------------------
    def predict(
        self,
        session: Session,
        user_id: uuid.UUID,
        topic_id: uuid.UUID,
        difficulty: str,
        *,
        candidates: bool = False,
    ) -> Prediction:
        """The first answer of the families in the order the serving policy gives for this
        request's kind (cold or warm), calibrated for that family and kind; a family that
        cannot answer or fails falls back to the next.

        ``candidates``: also ask the families after the one that answered, and return what
        each would have served (``Prediction.candidates``). A task stores them, so that the
        families can be ranked on their live predictions (``registry.live_scores``); a
        family asked only for this never counts as a fallback."""
        self.sync(session)
        return self._predict_synced(session, user_id, topic_id, difficulty, candidates=candidates)

    def predict_cells(
        self, session: Session, user_id: uuid.UUID, cells: Iterable[tuple[uuid.UUID, str]]
    ) -> list[Prediction]:
        """``predict`` for several (topic, difficulty) cells of one user after a single
        sync: what a recommendation or an exam plan asks for at once."""
        self.sync(session)
        return [self._predict_synced(session, user_id, t, d) for t, d in cells]

    def _predict_synced(
        self,
        session: Session,
        user_id: uuid.UUID,
        topic_id: uuid.UUID,
        difficulty: str,
        *,
        candidates: bool = False,
    ) -> Prediction:
        errors: list[str] = []
        policy = self.policy(session)
        kind = self._kind(session, user_id, topic_id) if policy.evaluation else "warm"
        answer: Prediction | None = None
        others: dict[str, Values] = {}
        variants: dict[str, tuple[Values, Values]] = {}
        order = self.chain if self.fixed_order else policy.order(self.chain, kind)
        for name in order:
            if answer is not None and not candidates:
                break
            try:
                prediction = self._family_prediction(
                    session, name, policy, kind, user_id, topic_id, difficulty
                )
            except CannotPredictError as exc:
                if answer is None:
                    log.debug("model %s cannot answer: %s", name, exc)
                    errors.append(f"{name}: {exc}")
                    metrics.prediction_fallback(name, "unavailable")
                continue
            except Exception as exc:  # any model failure falls back
                if answer is None:
                    log.exception("model %s failed to predict; falling back", name)
                    errors.append(f"{name}: {exc}")
                    metrics.prediction_fallback(name, "error")
                    self.fallbacks.append((utcnow(), name, f"{type(exc).__name__}: {exc}"))
                else:
                    log.warning("model %s failed to predict a candidate: %s", name, exc)
                continue
            others[name] = (
                prediction.p_correct,
                prediction.time_median_s,
                prediction.time_p10_s,
                prediction.time_p90_s,
            )
            variants.update(prediction.variants)
            if answer is None:
                answer = prediction
                metrics.prediction_served(name)
        if answer is None:
            raise PredictionUnavailableError("no model could predict: " + "; ".join(errors))
        if not candidates:
            return replace(answer, kind=kind, candidates=None, variants={})
        return replace(answer, kind=kind, candidates=others, variants=variants)

    def _family_prediction(
        self,
        session: Session,
        name: str,
        policy: registry.ServingPolicy,
        kind: str,
        user_id: uuid.UUID,
        topic_id: uuid.UUID,
        difficulty: str,
    ) -> Prediction:
        """What family ``name`` serves for this request, calibrated for its kind."""
        served = self._ready(session, name)
        with served.lock:
            out = served.model.predict_one(
                str(user_id), item_key(topic_id, difficulty), str(topic_id)
            )
        raw: Values = (
            out["p_correct"],
            out["time_median_s"],
            out["time_p10_s"],
            out["time_p90_s"],
        )
        fitted, serving = policy.calibrators(name, served.version_id, kind)
        p, median, p10, p90 = _calibrated(serving, raw)
        variants: dict[str, tuple[Values, Values]] = {}
        if not (fitted.is_identity and serving.is_identity):
            as_fitted = (p, median, p10, p90) if serving is fitted else _calibrated(fitted, raw)
            variants[name] = (raw, as_fitted)
        prediction = Prediction(
            p_correct=p,
            time_median_s=median,
            time_p10_s=p10,
            time_p90_s=p90,
            model_name=name,
            model_version=str(served.version),
            kind=kind,
            variants=variants,
        )
        _check_prediction(prediction)
        return prediction

    def policy(self, session: Session) -> registry.ServingPolicy:
        """The serving policy of the active versions (``registry.ServingPolicy``), read
        again only when a training has finished or another version became active (looked
        up at most every ``sync_interval`` seconds)."""
        now = time.monotonic()
        cached = self._policy_cache
        if cached is not None and now - self._policy_checked_at < self.sync_interval:
            return cached[1]
        self._policy_checked_at = now
        key = (
            session.scalar(
                select(TrainingCounter.last_trained_at).where(
                    TrainingCounter.name == registry.TRAINING_COUNTER
                )
            ),
            tuple(
                session.execute(
                    select(ModelVersion.model_name, ModelVersion.id)
                    .where(
                        ModelVersion.model_name.in_(self.chain), ModelVersion.is_active.is_(True)
                    )
                    .order_by(ModelVersion.model_name)
                ).all()
            ),
        )
        cached = self._policy_cache
        if cached is None or cached[0] != key:
            cached = (key, registry.serving_policy(session, self.chain))
            self._policy_cache = cached
        return cached[1]

    def request_kind(self, session: Session, user_id: uuid.UUID, topic_id: uuid.UUID) -> str:
        """ "cold" while the user has completed fewer than ``registry.COLD_TASKS`` tasks in
        the topic, else "warm" (a look-up in counts kept up to date incrementally)."""
        self.sync(session)
        return self._kind(session, user_id, topic_id)

    def others_in_cell(
        self, session: Session, user_id: uuid.UUID, topic_id: uuid.UUID, difficulty: str
    ) -> tuple[int, int, int]:
        """(completed tasks, correct, students) of the other students in the cell, as of
        the last sync (the caller has just predicted, which syncs): what an explanation says
        of them, without an aggregate over the cell's history."""
        counts = self._loaded_counts(session)
        with counts.lock:
            return counts.others(str(user_id), item_key(topic_id, difficulty))

    def others_at_level(
        self, session: Session, user_id: uuid.UUID, difficulty: str
    ) -> tuple[int, int, int]:
        """(completed tasks, correct, students) of the other students at ``difficulty`` in
        every topic, as of the last sync: what a level means where a cell has little data
        (Baseline's levels)."""
        counts = self._loaded_counts(session)
        with counts.lock:
            return counts.others_at_level(str(user_id), difficulty)

    def own_in_cell(
        self, session: Session, user_id: uuid.UUID, topic_id: uuid.UUID, difficulty: str
    ) -> int:
        """How many tasks ``user_id`` has completed in the cell, as of the last sync."""
        counts = self._loaded_counts(session)
        with counts.lock:
            mine = counts.cells.get(item_key(topic_id, difficulty), {}).get(str(user_id))
            return mine[0] if mine else 0

    def standing(self, session: Session, user_id: uuid.UUID) -> tuple[int, int, float]:
        """(completed tasks, correct, expected correct) of ``user_id`` in the cells other
        students have practised too, expected at their rate in each cell, as of the last
        sync: how the student compares, which their offset in the models carries."""
        counts = self._loaded_counts(session)
        with counts.lock:
            return counts.standing(str(user_id))

    def _kind(self, session: Session, user_id: uuid.UUID, topic_id: uuid.UUID) -> str:
        counts = self._loaded_counts(session)
        with counts.lock:
            done = counts.counts.get((str(user_id), str(topic_id)), 0)
        return "cold" if done < registry.COLD_TASKS else "warm"

    def _loaded_counts(self, session: Session) -> _TopicCounts:
        counts = self._counts
        if not counts.loaded:
            counts.load(session)
        return counts

    def sync(self, session: Session, *, force: bool = False, follower: bool = False) -> None:
        """Learn the completions other processes stored since the last sync: one read for
        every served model and the counts, at most every ``sync_interval`` seconds (unless
        ``force``). Its cost follows what is new: the catch-up window is read as task ids,
        and only the tasks not taken in yet are read whole. While a follower thread does
        this (``follow``), a request does it only if the follower is
        ``FOLLOWER_SLACK`` intervals late.

        No database read happens while one of the service's locks is held: on SQLite a
        request's transaction holds the database's write lock, so a thread waiting for the
        database while holding a lock that such a request waits for would deadlock."""
        now = time.monotonic()
        interval = self.sync_interval
        if not follower and self._follower is not None and self._follower.is_alive():
            interval *= FOLLOWER_SLACK
        if not force and now - self._synced_at < interval:
            return
        feed = self._feed
        with self._sync_lock:
            watermark, seen = feed.watermark, dict(feed.seen)
        if watermark is None:
            watermark = session.scalar(select(func.max(PracticeTask.completed_at))) or utcnow()
        whole = force or now - self._full_sync_at >= SYNC_FULL_EVERY
        since = watermark - (SYNC_WINDOW if whole else SYNC_RECENT)
        read = _unseen_completions(session, seen, since)
        behind: list[_Served] = []
        with self._sync_lock:
            if not force and now - self._synced_at < interval:
                return  # another thread synced meanwhile
            self._synced_at = now
            if whole:
                self._full_sync_at = now
            if feed.watermark is None:
                feed.watermark = watermark
            fresh = [rec for rec in read if rec["task_id"] not in feed.seen]
            for rec in fresh:
                feed._mark(rec["task_id"], rec["completed_at"])
            # Hand-outs run one at a time in the order of their reads (the hand-out lock is
            # taken before the sync lock is let go), so every model learns in completion
            # order, while ``observe`` waits only for the marking above.
            self._handout_lock.acquire()
        try:
            # A model or count whose own catch-up ended before this read's window (just
            # loaded) catches up by itself instead, after the hand-out.
            counts = self._counts
            counts_behind = not self._counts_learn(counts, fresh, since)
            for served in list(self._served.values()):
                if not self._served_learn(served, fresh, since):
                    behind.append(served)
        finally:
            self._handout_lock.release()
        if counts_behind:
            counts.catch_up(session)
        for served in behind:
            self._catch_up(session, served)

    def follow(self, sessions: Callable[[], Session]) -> None:
        """Learn other processes' completions in a thread every ``sync_interval`` seconds
        (a server with several processes or writers), instead of in the first request after
        each interval: that request paid for the reads and for every family learning what
        the others completed meanwhile (under load, 70 ms at p99). Nothing to follow with a
        ``sync_interval`` of 0 (every prediction reads first). ``stop_following`` ends it
        for good."""

        def run() -> None:
            failing = False
            while not self._stop_following.wait(self.sync_interval):
                try:
                    with sessions() as session:
                        self.sync(session, follower=True)
                    failing = False
                except Exception:
                    # Requests read the feed themselves meanwhile (the follower is late).
                    if not failing:
                        log.exception("reading other processes' completions failed; retrying")
                    failing = True

        # The warm-up thread starts it while the server may already be stopping: under the
        # lock, a stop that came first leaves nothing started, and one that comes next finds
        # the thread started.
        with self._follow_lock:
            following = self._follower is not None and self._follower.is_alive()
            if self.sync_interval <= 0 or following or self._stop_following.is_set():
                return
            self._follower = threading.Thread(target=run, name="feed-follower", daemon=True)
            self._follower.start()

    def stop_following(self, timeout: float = 2.0) -> None:
        """End the ``follow`` thread (at shutdown), and any ``follow`` after it."""
        with self._follow_lock:
            self._stop_following.set()
            follower, self._follower = self._follower, None
        if follower is not None:
            follower.join(timeout)

    @staticmethod
    def _counts_learn(counts: _TopicCounts, fresh: list[dict], since: datetime) -> bool:
        """Hand the fresh completions to the topic counts; False when the counts are loaded
        but their catch-up ended before ``since`` (they must catch up by themselves)."""
        with counts.lock:
            if not counts.loaded:
                return True
            if counts.watermark is None or counts.watermark < since:
                return False
            for rec in fresh:
                counts.learn(
                    rec["task_id"],
                    rec["user_id"],
                    rec["item_id"],
                    rec["correct"] == 1.0,
                    rec["completed_at"],
                )
        return True

    @staticmethod
    def _served_learn(served: _Served, fresh: list[dict], since: datetime) -> bool:
        """Hand the fresh completions to one served model; False when its catch-up ended
        before ``since`` (it must catch up by itself)."""
        if served.watermark is None or served.watermark < since:
            return False
        for rec in fresh:
            # Locked per completion: a prediction waits for one update, not for the batch.
            with served.lock:
                served.learn(rec["task_id"], _record_row(rec), rec["completed_at"])
        return True

    def observe(self, task: PracticeTask) -> None:
        """Learn online from a task whose completion has been committed."""
        if task.completed_at is None:
            return
        with self._sync_lock:
            if self._feed.watermark is not None:  # the next sync need not read it again
                self._feed._mark(task.id, task.completed_at)
        with self._counts.lock:
            if self._counts.loaded:
                self._counts.learn(
                    task.id,
                    str(task.user_id),
                    item_key(task.topic_id, task.difficulty),
                    bool(task.is_correct),
                    task.completed_at,
                )
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
        self.sync(session)
        return self._ready(session, name).model

    def forget(self) -> None:
        """Drop every served model from memory (they reload from the database)."""
        with self._load_lock:
            self._served.clear()
            self._counts = _TopicCounts()
            self._policy_cache = None
        with self._sync_lock:
            self._feed = _Stream()
            self._synced_at = -math.inf
            self._full_sync_at = -math.inf

    # -- training and versions ---------------------------------------------------------
    def train(self, session: Session, name: str) -> ModelVersion:
        """Fit ``name`` on every completed task of the training students and store it as
        the active version (used when a family has no version at all yet)."""
        data = completed_interactions(session)
        train, holdout, held = registry.split_for_validation(data)
        model, seconds = self.fit_model(name, train)
        decision = registry.validate(model, None, holdout, train)
        return self.store_version(
            session,
            name,
            model,
            train,
            seconds,
            decision=decision,
            holdout_users=held,
            served_artifact=served_state(model, train, holdout),
        )

    def fit_model(
        self, name: str, data: pd.DataFrame, warm: LearnerModel | None = None
    ) -> tuple[LearnerModel, float]:
        """A new model of family ``name`` fitted on ``data``, and the seconds it took;
        ``warm``: a fitted model of the family whose searched hyperparameters it reuses
        (``LearnerModel.warm_start``)."""
        model = self.factories[name]()
        if warm is not None:
            model.warm_start(warm)
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
        served_artifact: bytes | None = None,
    ) -> ModelVersion:
        """Store a fitted model as the next version of ``name``; it becomes the active one
        when ``decision`` says so (or when no decision is given). ``served_artifact`` is its
        served state (``served_state``), kept with an active version so that loading it
        costs no replay."""
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
        trained_until = data["completed_at"].max() if len(data) else None
        row = ModelVersion(
            model_name=name,
            version=(latest or 0) + 1,
            status="active" if activate else "rejected",
            is_active=activate,
            trained_until=trained_until,
            served_artifact=served_artifact if activate else None,
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
        """The served model, loaded or trained if needed; a model loaded here is caught up
        with the database, a loaded one is kept up to date by ``sync``. The active version is
        looked up at most every ``sync_interval`` seconds."""
        now = time.monotonic()
        current = self._served.get(name)
        if current is not None and now - current.checked_at < self.sync_interval:
            return current
        active = session.execute(
            select(ModelVersion.id, ModelVersion.version).where(
                ModelVersion.model_name == name, ModelVersion.is_active.is_(True)
            )
        ).first()
        with self._load_lock:
            served = self._served.get(name)
            # A loaded model with no active version in sight keeps serving: it may be the
            # first version, just trained by a request of this process whose transaction
            # has not committed it yet. Training another one here would store the same
            # version number and wait for that request's commit (PostgreSQL), while that
            # request waits for this lock: a deadlock of the first concurrent requests.
            stale = served is None or (active is not None and served.version_id != active.id)
            if stale and served is not None and active is not None and self.load_in_background:
                self._load_later(session, name)
            elif stale:
                # Caught up before it is published: another request must never find it
                # loaded but not yet caught up.
                served = self._load(session, name)
                self._catch_up(session, served, published=False)
                self._served[name] = served
        assert served is not None
        served.checked_at = now
        return served

    def _load_later(self, session: Session, name: str) -> None:
        """Load the active version of ``name`` in a thread and swap it in when it is ready;
        until then the loaded version answers. Called with the load lock held."""
        if name in self._loading:
            return
        self._loading.add(name)
        bind = session.get_bind()

        def load() -> None:
            try:
                with Session(bind) as own:
                    fresh = self._load(own, name)
                    self._catch_up(own, fresh, published=False)
                    own.commit()
                with self._load_lock:
                    self._served[name] = fresh
                    self._policy_cache = None
                # What the other models learnt from the feed between this model's catch-up
                # and the swap (a model learns each task once).
                with Session(bind) as own:
                    self._catch_up(own, fresh)
            except Exception:
                log.exception("loading the new %s version failed; the loaded one serves", name)
            finally:
                with self._load_lock:
                    self._loading.discard(name)

        threading.Thread(target=load, name=f"load-{name}", daemon=True).start()

    def warm_up(self, sessions: Callable[[], Session]) -> None:
        """Load what the first request would otherwise load: the per-topic counts and every
        family's active version, caught up (``serve`` runs this in a thread at start, and
        ``/readyz`` answers 503 until it is done: ``warming_up``)."""
        self.warming_up = True
        try:
            with sessions() as session:
                if not self._counts.loaded:
                    self._counts.load(session)
                self.policy(session)
            for name in self.chain:
                # Only stored versions: a family without one is trained by a job or, for
                # the last resort, by the first request, as without a warm-up.
                with sessions() as session:
                    stored = session.scalar(
                        select(ModelVersion.id).where(
                            ModelVersion.model_name == name, ModelVersion.is_active.is_(True)
                        )
                    )
                    if stored is None:
                        continue
                    try:
                        self._ready(session, name)
                    except CannotPredictError:
                        continue
                    session.commit()
        except Exception:
            log.exception("warming up the models failed; the first requests load them")
        finally:
            self.warming_up = False

    def wait_loaded(self, timeout: float = 30.0) -> bool:
        """Block until no version is being loaded in the background (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._load_lock:
                if not self._loading:
                    return True
            time.sleep(0.01)
        return False

    def _load(self, session: Session, name: str) -> _Served:
        row = session.scalar(
            select(ModelVersion).where(
                ModelVersion.model_name == name, ModelVersion.is_active.is_(True)
            )
        )
        factory = self.factories[name]
        on_demand = name not in BACKGROUND_ONLY or name == self.chain[-1]
        # A stored version is loaded and catches up by replaying what was completed since it
        # was fitted, however much that is: a serving process never fits a family that has a
        # version (the training job does, in the background or on a worker). Only a family
        # with no version at all is fitted here, if it is cheap enough.
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
        held = set((row.training_summary or {}).get("holdout_users") or ())
        if held and row.trained_until is not None and row.served_artifact is not None:
            try:  # the state the training job stored: held-out students already learnt
                model = cls.from_bytes(row.served_artifact)
                held = set()
            except ArtifactError as exc:
                log.error("served state of %s version %s is unusable: %s", name, row.version, exc)
        served = _Served(name=name, version_id=row.id, version=row.version, model=model)
        served.watermark = row.trained_until
        if row.trained_until is not None:
            if held:
                # Held-out students' tasks were not fitted on: learn them online, in order,
                # as the model would have if it had served them.
                past = completed_interactions(
                    session,
                    until=row.trained_until,
                    users=[uuid.UUID(u) for u in held],
                )
                _learn_at_once(served, past)
            # Rows inside the window at the end of training were learnt by fit already.
            done = session.execute(
                select(PracticeTask.id, PracticeTask.completed_at).where(
                    PracticeTask.completed_at >= row.trained_until - SYNC_WINDOW,
                    PracticeTask.completed_at <= row.trained_until,
                )
            ).all()
            for task_id, at in done:
                served._remember(task_id, at)
        return served

    def _catch_up(self, session: Session, served: _Served, *, published: bool = True) -> None:
        """Learn what was completed since ``served``'s watermark (less the window) and is
        not learnt yet. A model that serves (``published``) learns one completion per lock:
        a request waits for one update, not for the batch, which can take a busy process's
        interpreter seconds. One not yet published learns them at once
        (``LearnerModel.learn_many``)."""
        since = None if served.watermark is None else served.watermark - SYNC_WINDOW
        new = completed_interactions(session, since=since)
        if new.empty:
            return
        if not published:
            _learn_at_once(served, new)
            return
        for rec in new.to_dict("records"):
            task_id = _task_id(rec)
            if task_id in served.seen:
                continue  # learnt already (most of the window): no lock to wait for
            with served.lock:
                served.learn(task_id, _record_row(rec), rec["completed_at"])


def _learn_at_once(served: _Served, new: pd.DataFrame) -> None:
    """``served.learn`` of each row of ``new`` (interactions in completion order) in one
    ``LearnerModel.learn_many``: for a model that does not serve yet."""
    records = new.to_dict("records")
    ids = [_task_id(rec) for rec in records]
    unseen = [k for k, task_id in enumerate(ids) if task_id not in served.seen]
    with served.lock:
        served.model.learn_many(new.iloc[unseen][list(_ROW_KEYS)])
        for k in unseen:
            served._mark(ids[k], records[k]["completed_at"])


def _unseen_completions(
    session: Session, seen: dict[uuid.UUID, datetime], since: datetime
) -> list[dict[str, Any]]:
    """The tasks completed since ``since`` that are not in ``seen``, as interaction records
    in completion order. The window is read as (id, time) pairs; only unseen tasks are read
    whole, so the cost follows what is new."""
    connection = session.connection()  # plain rows: this runs several times a second
    window = connection.execute(
        select(PracticeTask.id).where(PracticeTask.completed_at >= since)
    ).all()
    unseen = [task_id for (task_id,) in window if task_id not in seen]
    records: list[dict[str, Any]] = []
    for start in range(0, len(unseen), 500):
        chunk = unseen[start : start + 500]
        rows = connection.execute(
            select(*_INTERACTION_COLUMNS).where(
                PracticeTask.id.in_(chunk), PracticeTask.completed_at.is_not(None)
            )
        ).all()
        records.extend(_interaction_record(row) for row in rows)
    records.sort(key=lambda r: (r["completed_at"], str(r["task_id"])))
    return records


def _interaction_record(row: tuple) -> dict[str, Any]:
    """One completed task as ``completed_interactions`` gives it, without a DataFrame."""
    task_id, user_id, topic_id, difficulty, correct, rt, completed = row
    return {
        "task_id": task_id,
        "user_id": str(user_id),
        "item_id": item_key(topic_id, difficulty),
        "skill_id": str(topic_id),
        "correct": float(correct),
        "rt_seconds": np.nan if rt is None else float(rt),
        "completed_at": completed,
    }


def served_state(model: LearnerModel, train: pd.DataFrame, holdout: pd.DataFrame) -> bytes | None:
    """The artifact of ``model`` (fitted on ``train``) as a process serves it: after learning,
    online and in completion order, the held-out students' tasks completed up to the end of
    ``train``, as it would have had it served them (a fit never sees them). Later tasks are
    caught up by the serving process. None when nothing is held out."""
    if not len(train) or not len(holdout):
        return None
    until = train["completed_at"].max()
    past = holdout[holdout["completed_at"] <= until].sort_values(
        ["completed_at", "task_id"], kind="stable"
    )
    copy = type(model).from_bytes(model.to_bytes())
    copy.learn_many(past[list(_ROW_KEYS)])
    return copy.to_bytes()


def _task_id(rec: dict) -> uuid.UUID:
    """The task id of an interaction record as a UUID, as the feed and ``observe`` give it
    (PostgreSQL's ``completed_interactions`` reads it as text)."""
    task_id = rec["task_id"]
    return task_id if isinstance(task_id, uuid.UUID) else uuid.UUID(task_id)


#: What a served model learns of a completed task (``LearnerModel.update``).
_ROW_KEYS = ("user_id", "item_id", "skill_id", "correct", "rt_seconds")


def _record_row(rec: dict) -> dict:
    return {k: rec[k] for k in _ROW_KEYS}


def _task_row(task: PracticeTask) -> dict:
    return {
        "user_id": str(task.user_id),
        "item_id": item_key(task.topic_id, task.difficulty),
        "skill_id": str(task.topic_id),
        "correct": float(bool(task.is_correct)),
        "rt_seconds": np.nan if task.actual_time_seconds is None else task.actual_time_seconds,
    }


def _calibrated(calibration: Calibrator, raw: Values) -> Values:
    """``raw`` = (p, median, p10, p90) through ``calibration``."""
    median, p10, p90 = calibration.times(*raw[1:])
    return float(calibration.probability(raw[0])), float(median), float(p10), float(p90)


def _check_prediction(p: Prediction) -> None:
    values = (p.p_correct, p.time_median_s, p.time_p10_s, p.time_p90_s)
    if not all(np.isfinite(v) for v in values):
        raise ValueError(f"non-finite prediction {values}")
    if not 0.0 <= p.p_correct <= 1.0:
        raise ValueError(f"probability out of range: {p.p_correct}")
    if not 0 < p.time_p10_s <= p.time_median_s <= p.time_p90_s:
        raise ValueError(f"time interval out of order: {values[1:]}")
