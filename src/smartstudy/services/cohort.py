"""``smartstudy simulate cohort``: many simulated students with completed tasks, fast.

For load tests and demos a database needs hundreds of students with real-looking histories
(500 x 200 = 100,000 tasks) in minutes, so this does not go through a request per task:

- the learners are ``data.simulate.simulate_app_learners`` (ability and a personal offset per
  topic, difficulty effects, practice helps, log-normal times), in app terms: items are
  ``"<topic id>:<difficulty>"``, skills are topic ids, users are the new accounts' ids;
- every student's tasks are completed one after another over the past ``days`` days (a task
  starts after the previous one ended), and their accounts are created before the first;
- each task carries the prediction stored at its creation, as the app stores one: a Baseline
  (the served last resort of the chain) fitted on every task completed before the task's
  chunk (chunks of 25 tasks, doubling up to a batch), existing ones included, so
  predictions follow each student's history as it grows.
  ``model_version`` is ``"simulated"``: no stored model version made them;
- the rows go in by bulk insert, one transaction (with a progress report) per batch, each
  adding its completions to the training counter, so the counter's total always matches
  what is committed. The last batch leaves ``count`` below ``Settings.retrain_every`` (as
  if the trainings due during the simulated history had been claimed): starting the server
  on the result does not set off a training at the first completion.

Accounts are ``cohort-00001@example.com``, ``cohort-00002@example.com``... with one password
for all (hashed once: an Argon2 hash per account would take minutes). A second run never
duplicates anyone: its students are numbered after the highest cohort account present (a run
that another one overtook on the same numbers stops before writing anything).
An interrupted run leaves the batches committed so far, consistent; running again adds a
new cohort after it.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from smartstudy.data.simulate import simulate_app_learners
from smartstudy.models.baseline import Baseline
from smartstudy.services import accounts, catalogue, rules, tasks
from smartstudy.services.context import AppContext
from smartstudy.services.demo import CATALOGUE, seed_catalogue
from smartstudy.services.errors import ConflictError, InvalidInputError
from smartstudy.services.predictor import completed_interactions
from smartstudy.services.security import hash_password
from smartstudy.store.db import analyze, session_scope
from smartstudy.store.orm import PracticeTask, TrainingCounter, User, utcnow

EMAIL_PREFIX = "cohort-"
EMAIL_DOMAIN = "@example.com"
#: Digits of the account number in the e-mail (more when a cohort grows past them).
EMAIL_DIGITS = 5
#: Most students, tasks per student and tasks one run makes: the whole cohort is simulated
#: in memory before it is written (bigger cohorts: several runs).
MAX_STUDENTS = 100_000
MAX_TASKS_PER_STUDENT = 1_000
MAX_TASKS = 2_000_000
MODEL_NAME = "baseline"
MODEL_VERSION = "simulated"
#: Tasks predicted by the first Baseline fit (see ``_predict``).
FIRST_CHUNK = 25
#: The interactions columns a Baseline is fitted on.
_COLUMNS = ("user_id", "item_id", "skill_id", "correct", "rt_seconds", "order")
#: Seconds between creating a task and starting it (the page is read first).
_READ_SECONDS = 20.0

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class CohortResult:
    students: int
    tasks: int
    first_email: str
    last_email: str
    #: The password every account of this cohort has (None if the caller chose it).
    password: str | None
    seconds: float


def cohort_email(number: int) -> str:
    return f"{EMAIL_PREFIX}{number:0{EMAIL_DIGITS}d}{EMAIL_DOMAIN}"


def _check(students: int, tasks_per_student: int, days: float, batch_rows: int) -> None:
    if not 1 <= students <= MAX_STUDENTS:
        raise InvalidInputError("students", f"must be between 1 and {MAX_STUDENTS:,}")
    if not 1 <= tasks_per_student <= MAX_TASKS_PER_STUDENT:
        raise InvalidInputError("tasks", f"must be between 1 and {MAX_TASKS_PER_STUDENT:,}")
    if students * tasks_per_student > MAX_TASKS:
        raise InvalidInputError(
            "tasks",
            f"students x tasks is {students * tasks_per_student:,}, more than {MAX_TASKS:,} "
            "per run: split the cohort over several runs",
        )
    if not 0 < days <= 3650:
        raise InvalidInputError("days", "must be more than 0 and at most 3650")
    if batch_rows < 1:
        raise InvalidInputError("batch_rows", "must be at least 1")


def last_cohort_number(session: Session) -> int:
    """The highest account number of the cohort e-mails present (0 if none)."""
    emails = session.scalars(
        select(User.email).where(
            User.email.like(f"{EMAIL_PREFIX}%{EMAIL_DOMAIN}"),
        )
    ).all()
    numbers = [
        int(middle)
        for email in emails
        if (middle := email[len(EMAIL_PREFIX) : -len(EMAIL_DOMAIN)]).isdigit()
    ]
    return max(numbers, default=0)


def simulate_cohort(
    context: AppContext,
    students: int,
    tasks_per_student: int,
    *,
    seed: int = 0,
    days: float = 30.0,
    password: str | None = None,
    batch_rows: int = 5000,
    progress: Progress | None = None,
) -> CohortResult:
    """Add ``students`` simulated students with ``tasks_per_student`` completed tasks each.

    ``progress(done, total)`` is called after each committed batch of tasks.
    """
    _check(students, tasks_per_student, days, batch_rows)
    started = time.perf_counter()
    chosen = password is not None
    if password is None:
        password = secrets.token_urlsafe(12)
    accounts.check_password_rules(password)
    password_hash = hash_password(password)  # once, shared: each Argon2 hash is slow
    now = utcnow()
    topic_ids, first, history = _catalogue_and_history(context)
    # Simulated and predicted outside any transaction: a SQLite server stays writable.
    user_ids = [uuid.uuid4() for _ in range(students)]
    frame = _simulate(user_ids, topic_ids, tasks_per_student, days, now, seed, first)
    predicted = _predict(history, frame, batch_rows)
    _insert_accounts(context, user_ids, first, password_hash, frame)
    total = _insert_tasks(context, frame, predicted, batch_rows, progress)
    analyze(context.engine)  # the planner's statistics for the new rows
    return CohortResult(
        students=students,
        tasks=total,
        first_email=cohort_email(first),
        last_email=cohort_email(first + students - 1),
        password=None if chosen else password,
        seconds=time.perf_counter() - started,
    )


def _catalogue_and_history(context: AppContext) -> tuple[list[uuid.UUID], int, pd.DataFrame]:
    """The demo catalogue's topic ids (seeded if absent), the number of the first new cohort
    account, and every completed task so far (what the predictions start from)."""
    with session_scope(context.sessions) as session:
        seed_catalogue(session)
        topic_ids = [
            catalogue.ensure_topic(session, subject, topic).id
            for subject, topics in CATALOGUE.items()
            for topic in topics
        ]
        first = last_cohort_number(session) + 1
        history = completed_interactions(session)[list(_COLUMNS)]
    return topic_ids, first, history


def _insert_accounts(
    context: AppContext,
    user_ids: list[uuid.UUID],
    first: int,
    password_hash: str,
    frame: pd.DataFrame,
) -> None:
    """Create the students' accounts (one transaction), each an hour before its first task;
    ``ConflictError`` if another run took the same numbers meanwhile."""
    first_task = frame.groupby("user_id", sort=False)["created_at"].min()
    users = [
        {
            "id": user_id,
            "email": cohort_email(first + k),
            "display_name": f"Cohort {first + k:0{EMAIL_DIGITS}d}",
            "password_hash": password_hash,
            "role": "student",
            "is_active": True,
            "created_at": first_task[str(user_id)] - timedelta(hours=1),
            "token_version": 0,
        }
        for k, user_id in enumerate(user_ids)
    ]
    try:
        with session_scope(context.sessions) as session:
            session.execute(User.__table__.insert(), users)
    except IntegrityError:
        raise ConflictError(
            f"accounts {cohort_email(first)} .. {cohort_email(first + len(user_ids) - 1)} were "
            "created meanwhile (another cohort run?): nothing was added, run again"
        ) from None


def _insert_tasks(
    context: AppContext,
    frame: pd.DataFrame,
    predicted: pd.DataFrame,
    batch_rows: int,
    progress: Progress | None,
) -> int:
    """Insert the tasks in batches of ``batch_rows``, one transaction each that also counts
    them for training; the last settles the counter. Returns how many were inserted."""
    total = len(frame)
    done = 0
    for start in range(0, total, batch_rows):
        batch = frame.iloc[start : start + batch_rows]
        rows = _task_rows(batch, predicted.iloc[start : start + batch_rows])
        with session_scope(context.sessions) as session:
            # Core executemany: the ORM's per-row bookkeeping would double the time.
            session.execute(PracticeTask.__table__.insert(), rows)
            tasks.bump_training_counter(session, by=len(rows))
            if start + batch_rows >= total:
                _settle_counter(session, context.settings.retrain_every)
        done += len(rows)
        if progress is not None:
            progress(done, total)
    return total


def _simulate(
    user_ids: list[uuid.UUID],
    topic_ids: list[uuid.UUID],
    tasks_per_student: int,
    days: float,
    now: datetime,
    seed: int,
    first: int,
) -> pd.DataFrame:
    """The cohort's tasks, oldest first: the learner model's outcomes and times, and the
    moments each task was created, started and completed."""
    # The first account number enters the seed: a second cohort is not a copy of the first.
    rng_seed = int(np.random.SeedSequence([seed, first]).generate_state(1)[0])
    frame, _ = simulate_app_learners(
        [tasks_per_student] * len(user_ids),
        topics=[str(t) for t in topic_ids],
        user_ids=[str(u) for u in user_ids],
        seed=rng_seed,
    )
    frame["rt_seconds"] = frame["rt_seconds"].clip(0.1, float(rules.MAX_TASK_SECONDS))
    rng = np.random.default_rng(rng_seed + 1)
    span = days * 86400.0
    n = tasks_per_student
    seconds = frame["rt_seconds"].to_numpy().reshape(len(user_ids), n)
    # Each student's completions: uniform draws over the window, in order, pushed later
    # where needed so that a task starts only after the previous one ended.
    drawn = np.sort(rng.uniform(0.0, span, size=(len(user_ids), n)), axis=1)
    gaps = seconds + _READ_SECONDS
    steps = np.cumsum(gaps, axis=1)
    done = steps + np.maximum.accumulate(drawn - steps, axis=1)
    # Shift a student whose pushes ran past the window back, so everything is in the past.
    overshoot = np.maximum(done[:, -1] - (span - 60.0), 0.0)
    done -= overshoot[:, None]
    completed = pd.Timestamp(now - timedelta(seconds=span)) + pd.to_timedelta(
        done.reshape(-1), unit="s"
    )
    # Databases keep microseconds.
    frame["completed_at"] = completed.floor("us")
    started = frame["completed_at"] - pd.to_timedelta(frame["rt_seconds"], unit="s")
    frame["started_at"] = started.dt.floor("us")
    frame["created_at"] = frame["started_at"] - pd.Timedelta(seconds=_READ_SECONDS)
    frame["order"] = frame["completed_at"].map(pd.Timestamp.timestamp)
    frame = frame.sort_values(["completed_at", "user_id"], kind="stable", ignore_index=True)
    return frame


def _predict(history: pd.DataFrame, frame: pd.DataFrame, largest: int) -> pd.DataFrame:
    """Predictions for the tasks of ``frame`` (oldest first), each from a Baseline fitted on
    ``history`` and every task of ``frame`` completed before the task's chunk.

    The chunks double from ``FIRST_CHUNK`` tasks up to ``largest``: while there is little
    data, each new piece of it changes the predictions most (a real server learns from every
    completion; refitting per task would cost minutes).
    """
    parts = []
    start, size = 0, FIRST_CHUNK
    while start < len(frame):
        seen = pd.concat([history, frame.iloc[:start][list(_COLUMNS)]], ignore_index=True)
        chunk = frame.iloc[start : start + size]
        model = Baseline().fit(seen)
        query = chunk[["user_id", "item_id", "skill_id", "order"]].assign(
            correct=np.nan, rt_seconds=np.nan
        )
        parts.append(model.predict(query).reset_index(drop=True))
        start += len(chunk)
        size = min(2 * size, max(largest, FIRST_CHUNK))
    out = pd.concat(parts, ignore_index=True)
    values = out[["p_correct", "time_median_s", "time_p10_s", "time_p90_s"]].to_numpy()
    ordered = (out["time_p10_s"] > 0) & (out["time_p10_s"] <= out["time_median_s"])
    ordered &= out["time_median_s"] <= out["time_p90_s"]
    if not (np.isfinite(values).all() and out["p_correct"].between(0, 1).all() and ordered.all()):
        raise RuntimeError("the Baseline gave an invalid prediction for the simulated cohort")
    return out


def _task_rows(batch: pd.DataFrame, predicted: pd.DataFrame) -> list[dict]:
    """The ``practice_tasks`` rows of ``batch`` with their predictions (column names)."""
    ids: dict[str, uuid.UUID] = {}

    def as_uuid(text: str) -> uuid.UUID:
        if text not in ids:
            ids[text] = uuid.UUID(text)
        return ids[text]

    items = batch["item_id"].str.rsplit(":", n=1)
    columns = {
        "user_id": [as_uuid(u) for u in batch["user_id"]],
        "topic_id": [as_uuid(i[0]) for i in items],
        "difficulty": [i[1] for i in items],
        "created_at": batch["created_at"].dt.to_pydatetime(),
        "started_at": batch["started_at"].dt.to_pydatetime(),
        "completed_at": batch["completed_at"].dt.to_pydatetime(),
        "is_correct": batch["correct"].astype(bool).tolist(),
        "actual_time_seconds": batch["rt_seconds"].astype(float).tolist(),
        "predicted_correct": predicted["p_correct"].tolist(),
        "predicted_time_median_s": predicted["time_median_s"].tolist(),
        "predicted_time_p10_s": predicted["time_p10_s"].tolist(),
        "predicted_time_p90_s": predicted["time_p90_s"].tolist(),
    }
    fixed = {"model_name": MODEL_NAME, "model_version": MODEL_VERSION, "description": None}
    return [
        {"id": uuid.uuid4(), **dict(zip(columns, values, strict=True)), **fixed}
        for values in zip(*columns.values(), strict=True)
    ]


def _settle_counter(session: Session, every: int) -> None:
    """Leave fewer than ``every`` completions pending on the training counter."""
    counter = session.get(TrainingCounter, tasks.TRAINING_COUNTER, with_for_update=True)
    if counter is not None and counter.count >= every:
        session.execute(
            update(TrainingCounter)
            .where(TrainingCounter.name == tasks.TRAINING_COUNTER)
            .values(count=counter.count % every)
        )
