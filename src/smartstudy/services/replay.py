"""Replay evaluation: stream a real data set through the service path and score what was served.

``smartstudy evaluate --replay DATASET`` measures the numbers a student actually sees. Each
attempt of the data set becomes a practice task created with ``services.tasks.create_task``
(which stores the prediction before the outcome exists), then completed with
``services.tasks.complete_task``, the use case behind ``POST /tasks/{id}/complete``:
the served models learn online, the completion bumps the training counter, and every
``retrain_every`` completions (the setting ``SMARTSTUDY_RETRAIN_EVERY`` of a server) a training
job is queued. The replay's counter setting defaults to ``DEFAULT_RETRAIN_EVERY`` (100), not the
server's 5: every training fits every family of the chain on all data so far, and at 5 a
run on one data set would take hours; ``retrain_every`` (``--retrain-every``) sets it. The
job runner is a ``SyncRunner``: the queued job runs inline, through the same job
function the server's runner calls (``training.run_queued_trainings``), at the completion that
triggered it, so a run is deterministic and bounded. Scores are computed afterwards on the
predictions as stored in the database.

Mapping of a data set to the app (documented in the report as well):

- one subject per data set; topic = the data set's skill or block (``replay_data``): the KC
  for ``cognitive_tutor`` and the one exam for ``credential_form1`` (the ``skill_id`` of
  ``data.loaders``); for ``mars_ib`` the item's dimension (2 to 8, MaRs-IB's blocks of
  difficulty, from ``item_features.csv``) rather than its template: a learner solves 16
  puzzles of 64 templates and would almost never meet the same template twice, so no
  learner would have a history in any cell;
- difficulty = the tertile of the item's success rate within its topic (lowest third "hard",
  highest "easy"). The success rates use the outcomes of the whole data set: this uses
  outcomes for the mapping only, never for a prediction;
- one app user per learner; ``learners`` of them are sampled with ``seed``, each keeps their
  own order, capped at ``max_attempts`` attempts (the CLI's default is
  ``DEFAULT_MAX_ATTEMPTS``, reported with the results); attempts without a usable time (missing, or
  beyond the 24 h the API accepts) are left out, since a task cannot be completed without one;
- learners work in parallel: their attempts are interleaved in a seeded random order that
  keeps each learner's own order (none of the data sets has a usable clock time). Completion
  times follow a virtual clock, one minute per attempt.

Every configuration replays the same stream on its own fresh scratch database: the served
chain (``PredictionService()``), each family alone, and a prequential reference that needs no
database (the running mean of the cell, see ``reference_predictions``). A scratch database
starts empty, as a new installation does; with ``history`` it starts as a system already in
use: that many other learners of the data set have completed their tasks and the models are
trained on them before the first streamed task (``build_stream``, ``_complete_history``),
and the reference counts their attempts too. A family alone is the
chain (family, "baseline") because the last family of a chain must answer everything; it is
scored only on the tasks that family answered, and the reference is scored on the same tasks
for comparison. "baseline" alone answers every task.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from smartstudy.config import Settings
from smartstudy.data.loaders import datasets_dir, load_dataset
from smartstudy.eval import metrics
from smartstudy.jobs.runner import SyncRunner
from smartstudy.services import tasks, training
from smartstudy.services.catalogue import create_subject, create_topic
from smartstudy.services.context import AppContext
from smartstudy.services.predictor import PredictionService
from smartstudy.store.db import make_engine, make_session_factory, session_scope, unit_of_work
from smartstudy.store.migrate import upgrade
from smartstudy.store.orm import Job, PracticeTask, User
from smartstudy.store.repositories.reports import STORED_PREDICTION

#: The shared data sets with response times.
REPLAY_DATASETS: tuple[str, ...] = ("cognitive_tutor", "credential_form1", "mars_ib")
#: Defaults that keep one data set's run within minutes on a laptop: every configuration
#: fits every family of its chain at each training, and a request costs tens of ms.
DEFAULT_MAX_ATTEMPTS = 30
DEFAULT_RETRAIN_EVERY = 100
#: A learner's first tasks in a (topic, difficulty) cell count as "cold", the rest "warm".
COLD_TASKS = 5
#: Families that can be served alone; each is chained with "baseline" for what it cannot answer.
FAMILIES: tuple[str, ...] = ("baseline", "lnirt", "neural")
SERVED = "served"
REFERENCE = "reference"
# Difficulty by tertile of success rate, from the lowest third up.
_TERTILES = ("hard", "medium", "easy")
_LEARNER_IDS = uuid.UUID("6f1d7a52-3c0e-4b8e-9a51-2d7f0c1e9b44")
_CLOCK_START = datetime(2025, 1, 1, tzinfo=UTC)
_CLOCK_STEP = timedelta(minutes=1)
_PREDICTION_COLUMNS = ["p_correct", "time_median_s", "time_p10_s", "time_p90_s", "model_name"]
_HISTORY_COLUMNS = ("user_id", "topic", "difficulty", "correct", "rt_seconds")


# -- the data --------------------------------------------------------------------------------
def replay_data(name: str, root: str | None = None) -> pd.DataFrame:
    """The data set ``name`` with ``skill_id`` set to the topic the replay uses."""
    data = load_dataset(name, root)
    if name == "mars_ib":
        features = pd.read_csv(
            datasets_dir(root) / name / "item_features.csv",
            usecols=["item_id", "dimension"],
            dtype={"item_id": str, "dimension": int},
        )
        dimension = data["item_id"].map(features.set_index("item_id")["dimension"])
        if dimension.isna().any():
            raise ValueError("mars_ib: item_features.csv lacks some items of the responses")
        data = data.assign(skill_id="dimension " + dimension.astype(int).astype(str))
    return data


# -- the stream ------------------------------------------------------------------------------
def map_difficulty(data: pd.DataFrame) -> pd.Series:
    """Each row's difficulty: the tertile of its item's success rate within its topic.

    Items are ranked by success rate (ties by item id) within their topic; rank ``r`` of
    ``k`` items falls in tertile ``floor(3 (r + 1/2) / k)``, so a lone item is "medium".
    """
    rates = data.groupby(["skill_id", "item_id"], sort=True)["correct"].mean().reset_index()
    rates = rates.sort_values(["skill_id", "correct", "item_id"], kind="stable")
    rank = rates.groupby("skill_id").cumcount().to_numpy()
    size = rates.groupby("skill_id")["item_id"].transform("size").to_numpy()
    tertile = np.floor(3 * (rank + 0.5) / size).astype(int)
    rates["difficulty"] = [_TERTILES[t] for t in tertile]
    lookup = rates.set_index(["skill_id", "item_id"])["difficulty"]
    keys = pd.MultiIndex.from_arrays([data["skill_id"], data["item_id"]])
    return pd.Series(lookup.reindex(keys).to_numpy(), index=data.index, name="difficulty")


@dataclass(frozen=True)
class Stream:
    """The attempts to replay, in replay order (``position`` 0, 1, ...), and how they were
    chosen."""

    rows: pd.DataFrame
    notes: dict[str, Any]
    #: Other learners' attempts, completed before the stream starts (``build_stream``'s
    #: ``history``): one learner after another, each in their own order; not scored.
    history: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=_HISTORY_COLUMNS))


def build_stream(
    data: pd.DataFrame,
    learners: int = 100,
    seed: int = 0,
    max_attempts: int | None = None,
    history: int = 0,
) -> Stream:
    """Sample ``learners``, keep their first ``max_attempts`` timed attempts each, map them
    to (topic, difficulty) and interleave the learners in a seeded random order.

    ``history`` more learners, none of them in the stream, are sampled (with their own
    seeded draw, so the stream is the same with or without them) as the history of a
    system already in use: their attempts, capped the same way, are completed before the
    stream starts (``Stream.history``)."""
    if learners < 1:
        raise ValueError("learners must be at least 1")
    if history < 0:
        raise ValueError("history must be at least 0")
    frame = data.assign(difficulty=map_difficulty(data))
    timed = frame["rt_seconds"].notna() & (frame["rt_seconds"] > 0)
    timed &= frame["rt_seconds"] <= tasks.MAX_TASK_SECONDS
    frame = frame.loc[timed]
    rng = np.random.default_rng(seed)
    everyone = np.array(sorted(frame["user_id"].unique()), dtype=object)
    chosen = rng.choice(everyone, size=min(learners, len(everyone)), replace=False)
    streamed = set(chosen)
    others = np.array([u for u in everyone if u not in streamed], dtype=object)
    earlier = np.random.default_rng([seed, 1]).choice(
        others, size=min(history, len(others)), replace=False
    )
    past = frame[frame["user_id"].isin(set(earlier))].sort_values(["user_id", "order"])
    if max_attempts is not None:
        past = past.loc[past.groupby("user_id").cumcount() < max_attempts]
    past = past.reset_index(drop=True).rename(columns={"skill_id": "topic"})
    frame = frame[frame["user_id"].isin(streamed)]
    frame = frame.sort_values(["user_id", "order"], kind="stable")
    step = frame.groupby("user_id").cumcount()
    capped = 0
    if max_attempts is not None:
        capped = int((step >= max_attempts).sum())
        frame = frame.loc[step < max_attempts]
        step = step.loc[frame.index]
    # A random permutation of the learners' labels, one per attempt: the k-th time learner
    # u's label comes up, u does their k-th attempt. Each learner keeps their own order.
    labels = frame["user_id"].to_numpy(dtype=object).copy()
    rng.shuffle(labels)
    turn = pd.Series(labels).groupby(labels).cumcount().to_numpy()
    index = pd.MultiIndex.from_arrays([frame["user_id"], step.to_numpy()])
    order = pd.Series(np.arange(len(frame)), index=index)
    rows = frame.iloc[order.loc[list(zip(labels, turn, strict=True))].to_numpy()]
    rows = rows.reset_index(drop=True).rename(columns={"skill_id": "topic"})
    rows["position"] = np.arange(len(rows))
    rows["cell_index"] = rows.groupby(["user_id", "topic", "difficulty"]).cumcount()
    notes = {
        "learners": int(rows["user_id"].nunique()),
        "attempts": len(rows),
        "topics": int(rows["topic"].nunique()),
        "rows_without_time_in_data_set": int((~timed).sum()),
        "attempts_over_cap_left_out": capped,
        "max_attempts_per_learner": max_attempts,
        "seed": seed,
        "history_learners": int(past["user_id"].nunique()),
        "history_attempts": len(past),
    }
    return Stream(
        rows[["position", "user_id", "topic", "difficulty", "correct", "rt_seconds", "cell_index"]],
        notes,
        past[list(_HISTORY_COLUMNS)],
    )


# -- scratch databases -----------------------------------------------------------------------
@contextlib.contextmanager
def scratch_database(server_url: str | None = None) -> Iterator[str]:
    """The URL of a fresh, migrated database, removed afterwards: a temporary SQLite file,
    or a temporary database created on the PostgreSQL server of ``server_url``."""
    if server_url is None or make_url(server_url).get_backend_name() == "sqlite":
        with tempfile.TemporaryDirectory(prefix="smartstudy-replay-") as folder:
            url = f"sqlite:///{Path(folder) / 'replay.db'}"
            _migrate(url)
            yield url
        return
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"smartstudy_replay_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
        _migrate(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _migrate(url: str) -> None:
    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


# -- replaying through the services ----------------------------------------------------------
@dataclass
class ServedRun:
    """The stored predictions of one configuration, by stream position, and its trainings."""

    predictions: pd.DataFrame
    trainings: int
    seconds: float


def replay_chain(
    stream: Stream,
    chain: Sequence[str] | None,
    database_url: str,
    retrain_every: int,
    subject: str = "Replay",
) -> ServedRun:
    """Replay ``stream`` through the services on the (fresh) database at ``database_url``
    with ``PredictionService(chain)`` (the default chain when ``chain`` is None)."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="smartstudy-replay-data-") as folder:
        settings = Settings(
            data_dir=Path(folder),
            database_url=database_url,
            retrain_every=retrain_every,
            # The stream runs in its own clock: every training the counter asks for runs
            # at once, never after a wall-clock pause.
            training_pause=0.0,
            auto_migrate=False,
        )
        engine = make_engine(database_url)
        context = AppContext(
            settings=settings,
            engine=engine,
            sessions=make_session_factory(engine),
            # A family alone answers first wherever it can, whatever the serving policy.
            predictor=PredictionService()
            if chain is None
            else PredictionService(chain=chain, fixed_order=True),
            runner=SyncRunner(),
        )
        try:
            users, topics = _catalogue(context, pd.concat([stream.history, stream.rows]), subject)
            if len(stream.history):
                _complete_history(context, stream.history, users, topics)
            task_ids = [
                _attempt(context, users[rec.user_id], topics[rec.topic], rec)
                for rec in stream.rows.itertuples(index=False)
            ]
            predictions = _stored_predictions(context, task_ids)
            with session_scope(context.sessions) as session:
                trainings = len(
                    session.scalars(
                        select(Job.id).where(
                            Job.kind == training.TRAINING_JOB, Job.status == "succeeded"
                        )
                    ).all()
                )
        finally:
            context.close()
    return ServedRun(predictions, trainings, time.perf_counter() - started)


def _catalogue(
    context: AppContext, rows: pd.DataFrame, subject: str
) -> tuple[dict[str, uuid.UUID], dict[str, uuid.UUID]]:
    """One subject, a topic per skill and an account per learner. Accounts are created
    directly (no password hashing: signing in is not what is measured); they cannot log in."""
    with session_scope(context.sessions) as session:
        subject_row = create_subject(session, subject)
        topics = {
            name: create_topic(session, subject_row.id, f"{k + 1:03d} {name}"[:120]).id
            for k, name in enumerate(sorted(rows["topic"].unique()))
        }
        users = {}
        for k, learner in enumerate(sorted(rows["user_id"].unique())):
            user = User(
                # The same id in every configuration and run: the held-out students of
                # validation (a hash of the id) are then the same everywhere.
                id=uuid.uuid5(_LEARNER_IDS, f"{subject}/{learner}"),
                email=f"learner{k}@replay.invalid",
                password_hash="!",
                display_name=f"learner {learner}"[:120],
            )
            session.add(user)
            users[learner] = user
        session.flush()
        return {k: u.id for k, u in users.items()}, topics


def _complete_history(
    context: AppContext,
    history: pd.DataFrame,
    users: dict[str, uuid.UUID],
    topics: dict[str, uuid.UUID],
) -> None:
    """The history as completed tasks, on the clock before the stream, without stored
    predictions (none is scored), then one training on them: a system already in use has
    models fitted on its past. The rows go in by one bulk insert; the training counter is
    left at zero, as if the trainings due during the history had run."""
    end = _CLOCK_START - _CLOCK_STEP * len(history)
    at = [end + k * _CLOCK_STEP for k in range(len(history))]
    rows = [
        {
            "id": uuid.uuid4(),
            "user_id": users[rec.user_id],
            "topic_id": topics[rec.topic],
            "difficulty": rec.difficulty,
            "created_at": when,
            "started_at": when,
            "completed_at": when + _CLOCK_STEP / 2,
            "is_correct": bool(rec.correct),
            "actual_time_seconds": float(rec.rt_seconds),
        }
        for rec, when in zip(history.itertuples(index=False), at, strict=True)
    ]
    with session_scope(context.sessions) as session:
        session.execute(PracticeTask.__table__.insert(), rows)
    training.run_training(context)


def _attempt(context: AppContext, user_id: uuid.UUID, topic_id: uuid.UUID, rec: Any) -> uuid.UUID:
    """One attempt as two requests: create the task (prediction stored), then complete it."""
    with session_scope(context.sessions) as session:
        user = session.get(User, user_id)
        task = tasks.create_task(session, context.predictor, user, topic_id, rec.difficulty)
        task_id = task.id
    with unit_of_work(context.sessions) as uow:
        user = uow.session.get(User, user_id)
        tasks.complete_task(
            context,
            uow,
            user,
            task_id,
            bool(rec.correct),
            float(rec.rt_seconds),
            completed_at=_CLOCK_START + rec.position * _CLOCK_STEP,
        )
    return task_id


def _stored_predictions(context: AppContext, task_ids: list[uuid.UUID]) -> pd.DataFrame:
    with session_scope(context.sessions) as session:
        rows = session.execute(select(PracticeTask.id, *STORED_PREDICTION)).all()
    by_id = {r[0]: r[1:] for r in rows}
    return pd.DataFrame([by_id[t] for t in task_ids], columns=_PREDICTION_COLUMNS)


# -- the prequential reference ---------------------------------------------------------------
def reference_predictions(rows: pd.DataFrame, history: pd.DataFrame | None = None) -> pd.DataFrame:
    """The running mean of the cell, one step ahead, in stream order: p = (s + 1) / (n + 2)
    over every learner's earlier attempts in the (topic, difficulty) cell, the ``history``
    (``Stream.history``) first, and the median, 10th and 90th percentiles of their log
    times (NaN before the cell has a time)."""
    past = 0 if history is None else len(history)
    both = rows if not past else pd.concat([history, rows], ignore_index=True)
    out = np.full((len(both), 4), np.nan)
    for _, cell in both.groupby(["topic", "difficulty"], sort=False):
        positions = cell.index.to_numpy()
        correct = cell["correct"].to_numpy(dtype=float)
        logs = np.log(cell["rt_seconds"].to_numpy(dtype=float))
        earlier = np.concatenate([[0.0], np.cumsum(correct)[:-1]])
        out[positions, 0] = (earlier + 1.0) / (np.arange(len(cell)) + 2.0)
        for k in range(max(1, int((positions < past).sum())), len(cell)):
            out[positions[k], 1:] = np.exp(np.quantile(logs[:k], [0.5, 0.1, 0.9]))
    frame = pd.DataFrame(out[past:], columns=_PREDICTION_COLUMNS[:4], index=rows.index)
    frame["model_name"] = REFERENCE
    return frame


# -- scoring ---------------------------------------------------------------------------------
def score(rows: pd.DataFrame, pred: pd.DataFrame, mask: np.ndarray | None = None) -> dict:
    """Metrics of ``pred`` on the rows of ``mask``: all, cold and warm, and the swing."""
    mask = np.ones(len(rows), bool) if mask is None else np.asarray(mask, bool)
    cold = rows["cell_index"].to_numpy() < COLD_TASKS
    out: dict[str, Any] = {"answered": int(mask.sum()), "share": float(mask.mean())}
    for part, keep in (("all", mask), ("cold", mask & cold), ("warm", mask & ~cold)):
        out[part] = _metrics(rows.loc[keep], pred.loc[keep])
    cells = rows["user_id"].astype(str) + "|" + rows["topic"].astype(str) + "|" + rows["difficulty"]
    swings = metrics.prediction_swings(cells.to_numpy()[mask], pred["p_correct"].to_numpy()[mask])
    out["swing_p95"] = float(np.quantile(swings, 0.95)) if len(swings) else float("nan")
    out["swing_max"] = float(swings.max()) if len(swings) else float("nan")
    out["swing_n"] = len(swings)
    return out


def _metrics(rows: pd.DataFrame, pred: pd.DataFrame) -> dict[str, Any]:
    nan = float("nan")
    if rows.empty:
        return {
            "n": 0,
            "log_loss": nan,
            "auc": nan,
            "ece": nan,
            "ece_calibrated": nan,
            "ece_calibrated_p95": nan,
            "rmse_log_time": nan,
            "coverage80": nan,
        }
    y = rows["correct"].to_numpy(dtype=float)
    p = pred["p_correct"].to_numpy(dtype=float)
    # Only rows with a predicted time are scored for time (the reference's first row of a
    # cell has none); ``time_n`` says how many.
    timed = np.isfinite(pred["time_median_s"].to_numpy(dtype=float))
    actual = np.where(timed, rows["rt_seconds"].to_numpy(dtype=float), np.nan)
    med, p10, p90 = (
        np.where(timed, pred[c].to_numpy(dtype=float), 1.0)
        for c in ("time_median_s", "time_p10_s", "time_p90_s")
    )
    # What a calibrated model's ECE would be on these predictions (sampling noise alone).
    noise, noise_p95 = metrics.calibrated_ece(p)
    return {
        "n": len(y),
        "log_loss": metrics.log_loss(y, p),
        "auc": metrics.auc(y, p),
        "ece": metrics.expected_calibration_error(y, p),
        "ece_calibrated": noise,
        "ece_calibrated_p95": noise_p95,
        "rmse_log_time": metrics.rmse_log_time(actual, med),
        "coverage80": metrics.interval_coverage(actual, p10, p90),
        "time_n": int(timed.sum()),
    }


# -- the whole evaluation --------------------------------------------------------------------
MAPPING = (
    "topic = the data set's skill (mars_ib: the item's dimension); difficulty = tertile of "
    "the item's success rate within its topic (computed on the whole data set, used for the "
    "mapping only); one subject per data set, one user per learner"
)
RUNNER = (
    "SyncRunner: each training queued by the completion counter runs inline, at the "
    "completion that triggered it, through training.run_queued_trainings (the server's job)"
)


@dataclass
class ReplayReport:
    """What ``run_replay`` measured, per configuration."""

    dataset: str
    notes: dict[str, Any]
    configurations: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: NaN (undefined, e.g. no warm task) becomes None."""
        return _plain(
            {
                "dataset": self.dataset,
                "mapping": MAPPING,
                "runner": RUNNER,
                "cold": f"a learner's first {COLD_TASKS} tasks in a (topic, difficulty) cell",
                **self.notes,
                "configurations": self.configurations,
            }
        )

    def to_table(self) -> Any:
        """A Rich table: one row per configuration and part (all, cold, warm)."""
        from rich.table import Table

        n = self.notes
        cap = n.get("max_attempts_per_learner")
        table = Table(
            title=f"Replay of {self.dataset}: {n['learners']} learners, {n['attempts']} tasks"
            + (f" (at most {cap} per learner)" if cap else "")
            + (
                f", after {n['history_attempts']} tasks of {n['history_learners']} earlier learners"
                if n.get("history_learners")
                else ""
            )
            + f", retraining every {n['retrain_every']} completions",
            caption=f"{MAPPING}. {RUNNER}. A family alone is scored where it answered; "
            "'ref. same' is the reference's log loss on those tasks; 'ECE if calibrated' is "
            "the mean ECE of outcomes drawn from the predictions themselves (noise alone).",
        )
        for column in (
            "configuration",
            "part",
            "tasks",
            "log loss",
            "ref. same",
            "AUC",
            "ECE",
            "ECE if calibrated",
            "RMSE log t",
            "cov. 80%",
            "swing p95",
            "swing max",
            "trainings",
            "seconds",
        ):
            table.add_column(
                column, justify="left" if column in ("configuration", "part") else "right"
            )
        for name, result in self.configurations.items():
            for part in ("all", "cold", "warm"):
                m = result[part]
                first = part == "all"
                table.add_row(
                    name if first else "",
                    part,
                    str(m["n"]),
                    _fmt(m["log_loss"]),
                    _fmt(result["reference_log_loss_same_rows"][part]),
                    _fmt(m["auc"]),
                    _fmt(m["ece"]),
                    _fmt(m["ece_calibrated"]),
                    _fmt(m["rmse_log_time"]),
                    _fmt(m["coverage80"]),
                    _fmt(result["swing_p95"]) if first else "",
                    _fmt(result["swing_max"]) if first else "",
                    str(result.get("trainings", "")) if first else "",
                    _fmt(result.get("seconds", float("nan")), 1) if first else "",
                )
        return table


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _fmt(value: float, digits: int = 3) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def run_replay(
    data: pd.DataFrame,
    dataset: str,
    *,
    learners: int = 100,
    seed: int = 0,
    max_attempts: int | None = None,
    retrain_every: int | None = None,
    database_url: str | None = None,
    families: Sequence[str] = FAMILIES,
    progress: Any = None,
    history: int = 0,
) -> ReplayReport:
    """Replay ``data`` (an interactions frame with times) through the served chain and each
    of ``families`` alone, each on its own scratch database, and score them and the
    prequential reference. ``database_url`` is a PostgreSQL server on which a temporary
    database is created per configuration (default: temporary SQLite files). With
    ``history`` learners, every configuration starts from a system already in use: those
    learners' tasks completed and trained on (``build_stream``)."""
    stream = build_stream(
        data, learners=learners, seed=seed, max_attempts=max_attempts, history=history
    )
    every = retrain_every or DEFAULT_RETRAIN_EVERY
    report = ReplayReport(dataset, {**stream.notes, "retrain_every": every})
    rows = stream.rows
    reference = reference_predictions(rows, stream.history)
    configurations: list[tuple[str, tuple[str, ...] | None]] = [(SERVED, None)]
    configurations += [
        (f"{f} alone", (f,) if f == "baseline" else (f, "baseline")) for f in families
    ]
    for name, chain in configurations:
        if progress is not None:
            progress(name)
        with scratch_database(database_url) as url:
            run = replay_chain(stream, chain, url, every, subject=f"Replay {dataset}")
        answered = None
        if chain is not None and len(chain) > 1:
            answered = (run.predictions["model_name"] == chain[0]).to_numpy()
        result = score(rows, run.predictions, answered)
        result["reference_log_loss_same_rows"] = _reference_same_rows(rows, reference, answered)
        result["chain"] = list(chain) if chain else list(PredictionService().chain)
        result["served_by"] = run.predictions["model_name"].value_counts().to_dict()
        result.update(trainings=run.trainings, seconds=round(run.seconds, 1))
        report.configurations[name] = result
    report.configurations[REFERENCE] = score(rows, reference)
    report.configurations[REFERENCE]["reference_log_loss_same_rows"] = _reference_same_rows(
        rows, reference, None
    )
    return report


def _reference_same_rows(
    rows: pd.DataFrame, reference: pd.DataFrame, mask: np.ndarray | None
) -> dict[str, float]:
    scored = score(rows, reference, mask)
    return {part: scored[part]["log_loss"] for part in ("all", "cold", "warm")}
