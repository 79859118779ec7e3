"""The completed tasks a training reads, kept between the trainings of one process.

Every training starts from every completed task (``predictor.completed_interactions``). At
100,000 tasks reading them takes most of a training that refits nothing, and the cost grows
with the history on every training. ``TrainingHistory`` keeps the last frame read and reads
only what was completed since, from ``LATE`` before the newest completion it holds (a row
committed late by another process, with an earlier time, is still read, as the served
models' feed does).

Completed tasks do not change, but they can go (an account deleted) or come with an old
time (a CSV import). So after each read the frame's length is checked against the number
of completed tasks in the database; when they differ, everything is read again, as it is
at least every ``FULL_EVERY``. The frame handed out is always what a whole read would give
(``tests/test_training_history.py``).
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

import pandas as pd
from sqlalchemy.orm import Session

from smartstudy.services.predictor import SYNC_WINDOW, completed_interactions
from smartstudy.store.repositories import tasks as tasks_repo

#: How late a completion may be committed after its recorded time and still be read.
LATE = SYNC_WINDOW
#: Seconds after which a read takes everything again, whatever the count says.
FULL_EVERY = 300.0


class TrainingHistory:
    """``read`` returns the same frame as ``completed_interactions(session)``, reading only
    what is new where it can (one process's trainings, one at a time or not)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frame: pd.DataFrame | None = None
        self._full_at = 0.0
        #: How the last read went: "full" or "new rows only" (for the job's summary).
        self.last_read = ""

    def read(self, session: Session) -> pd.DataFrame:
        """Every completed task, in completion order (a copy: the caller may change it).

        The new rows and the count they are checked against must come from one snapshot of
        the database: on PostgreSQL (read committed: each statement sees what is committed
        when it starts) a completion committed between the two made the count larger than
        the frame, and under load nearly every training read everything again. A fresh
        ``session`` therefore reads in a repeatable-read transaction there (read-only, so it
        never fails to serialise). SQLite's transactions (``BEGIN IMMEDIATE``) already see
        one state."""
        if session.get_bind().dialect.name == "postgresql" and not session.in_transaction():
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        with self._lock:
            frame = self._frame
            if frame is None or frame.empty or time.monotonic() - self._full_at >= FULL_EVERY:
                frame = self._read_all(session)
            else:
                frame = _with_new(frame, session)
                if len(frame) != tasks_repo.completed_count(session):
                    frame = self._read_all(session)  # rows went, or came with old times
                else:
                    self.last_read = "new rows only"
            self._frame = frame
            return frame.copy()

    def _read_all(self, session: Session) -> pd.DataFrame:
        self._full_at = time.monotonic()
        self.last_read = "full"
        return completed_interactions(session)


def _with_new(frame: pd.DataFrame, session: Session) -> pd.DataFrame:
    """``frame`` (a whole read, in completion order) with the rows completed since its
    newest row minus ``LATE`` that it lacks, in the order a whole read gives them."""
    newest: datetime = frame["completed_at"].iloc[-1]
    cut = newest - LATE
    fresh = completed_interactions(session, since=cut)
    at = cut.timestamp()
    # ``order`` is ``completed_at`` as a timestamp: the head ends before the cut, every
    # fresh row is at or after it.
    split = int((frame["order"].to_numpy() < at).sum())
    head, tail = frame.iloc[:split], frame.iloc[split:]
    fresh = fresh[~fresh["task_id"].isin(set(tail["task_id"]))]
    if fresh.empty:
        return frame
    merged = pd.concat([tail, fresh], ignore_index=True)
    merged = merged.sort_values(["order", "task_id"], kind="stable")
    return pd.concat([head, merged], ignore_index=True)
