"""Durable jobs: who runs a job, whether it is still alive, and what happens when it died.

Every job run is a row of the ``jobs`` table. The process that runs it writes its identity
(``host:pid``) into the row and refreshes ``heartbeat_at`` from a small thread while the work
runs. A running row is *dead* when its process is gone (same host, no such pid, or this very
process just starting) or when its heartbeat is older than ``Settings.job_heartbeat_timeout``
(the only test that works across hosts). ``recover`` marks a dead row ``failed``, with the
reason, and queues its work again as a new row (same kind and arguments, ``attempts`` one
more, ``retry_of`` the dead row) until ``Settings.job_max_attempts``: the table keeps one row
per attempt, so it shows what died and what was retried. Serve and worker start-up, and every
job function before it claims work, call it. A job stopped by a shutdown is handled the same
way (``interrupt``): failed, "interrupted by shutdown", and queued again.

Every write to a running row is conditional on it still being running and still owned by
this process, so a run declared dead that wakes up after all can never overwrite its retry.
"""

from __future__ import annotations

import contextvars
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from smartstudy.store.db import session_scope
from smartstudy.store.orm import Job, utcnow

if TYPE_CHECKING:
    from smartstudy.services.context import AppContext

log = logging.getLogger(__name__)

SHUTDOWN_REASON = "interrupted by shutdown"

#: The event that says "stop at the next safe point" for the job running in this context
#: (set by the runner that runs it; a job run without one never stops early).
_stop_event: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar(
    "smartstudy_job_stop", default=None
)


class JobInterrupted(BaseException):
    """Raised by a job at a safe point after its runner asked it to stop. A BaseException,
    so the ``except Exception`` that records one failed step does not swallow it."""


def worker_id() -> str:
    """This process as a job owner: ``host:pid`` (read at each call: a fork has a new pid)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(worker: str | None) -> bool | None:
    """Whether the process ``worker`` names still exists: None when it is on another host
    (or unknown), where only its heartbeat can tell."""
    if not worker:
        return None
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


@contextmanager
def stop_when(event: threading.Event) -> Iterator[None]:
    """Jobs run inside this block stop at their next safe point once ``event`` is set."""
    token = _stop_event.set(event)
    try:
        yield
    finally:
        _stop_event.reset(token)


def should_stop() -> bool:
    """True when the runner of the job running here wants it to stop (a shutdown)."""
    event = _stop_event.get()
    return event is not None and event.is_set()


def pause(seconds: float) -> bool:
    """Wait ``seconds`` unless the runner of the job running here asks it to stop first;
    True when it did (at once, without waiting, if it already had)."""
    event = _stop_event.get()
    if event is None:
        time.sleep(max(seconds, 0.0))
        return False
    return event.wait(seconds) if seconds > 0 else event.is_set()


def check_stop() -> None:
    """Raise ``JobInterrupted`` at a safe point if the job should stop."""
    if should_stop():
        raise JobInterrupted(SHUTDOWN_REASON)


def enqueue(session: Session, kind: str, args: dict[str, Any] | None = None) -> Job:
    """A new queued job row in ``session`` (not committed)."""
    job = Job(kind=kind, status="queued", args=dict(args or {}))
    session.add(job)
    session.flush()
    return job


def start(session: Session, kind: str, args: dict[str, Any] | None = None) -> Job:
    """A new job row already running in this process (work that did not wait in a queue)."""
    now = utcnow()
    job = Job(
        kind=kind,
        status="running",
        args=dict(args or {}),
        started_at=now,
        heartbeat_at=now,
        worker=worker_id(),
    )
    session.add(job)
    session.flush()
    return job


def claim(session: Session, job_id: uuid.UUID) -> bool:
    """Take the queued job ``job_id`` for this process; False if another took it first."""
    now = utcnow()
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "queued")
        .values(status="running", started_at=now, heartbeat_at=now, worker=worker_id())
    )
    return result.rowcount == 1


def _mine(job_id: uuid.UUID) -> ColumnElement[bool]:
    return (Job.id == job_id) & (Job.status == "running") & (Job.worker == worker_id())


def finish(
    context: AppContext,
    job_id: uuid.UUID,
    *,
    error: str | None = None,
    summary: dict[str, Any] | None = None,
) -> bool:
    """Mark this process's running job succeeded (no ``error``) or failed; False if it is
    no longer this process's (declared dead meanwhile): then nothing is written."""
    values: dict[str, Any] = {
        "status": "failed" if error else "succeeded",
        "error": error,
        "finished_at": utcnow(),
    }
    if summary is not None:
        values["summary"] = summary
    with session_scope(context.sessions) as session:
        done = session.execute(update(Job).where(_mine(job_id)).values(**values)).rowcount == 1
    if not done:
        log.warning("job %s was taken from this process; its result is dropped", job_id)
    return done


def interrupt(context: AppContext, job_id: uuid.UUID, reason: str = SHUTDOWN_REASON) -> Job | None:
    """Fail this process's running job with ``reason`` and queue its work again; the new
    row, or None (not ours any more, or out of attempts)."""
    with session_scope(context.sessions) as session:
        job = session.get(Job, job_id)
        if job is None or job.status != "running" or job.worker != worker_id():
            return None
        return _fail_and_retry(session, job, reason, context.settings.job_max_attempts)


def interrupt_all(context: AppContext, reason: str = SHUTDOWN_REASON) -> list[Job]:
    """``interrupt`` every job this process is running (a shutdown that cannot wait)."""
    with session_scope(context.sessions) as session:
        ids = session.scalars(
            select(Job.id).where(Job.status == "running", Job.worker == worker_id())
        ).all()
    retries = []
    for job_id in ids:
        if (retry := interrupt(context, job_id, reason)) is not None:
            retries.append(retry)
    return retries


def _fail_and_retry(session: Session, job: Job, reason: str, max_attempts: int) -> Job | None:
    """Mark the running ``job`` failed (only if it is still as read) and queue a retry."""
    seen = (Job.worker == job.worker) if job.worker else Job.worker.is_(None)
    beat = (
        (Job.heartbeat_at == job.heartbeat_at) if job.heartbeat_at else Job.heartbeat_at.is_(None)
    )
    retry_note = "" if job.attempts < max_attempts else f"; not retried after {job.attempts}"
    marked = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.status == "running", seen, beat)
        .values(
            status="failed",
            error=f"attempt {job.attempts}: {reason}{retry_note}",
            finished_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    if marked.rowcount != 1:
        return None  # someone else recovered it, or it moved on
    log.warning("job %s (%s) failed: %s%s", job.id, job.kind, reason, retry_note)
    if job.attempts >= max_attempts:
        return None
    retry = Job(
        kind=job.kind,
        status="queued",
        args=dict(job.args or {}),
        attempts=job.attempts + 1,
        retry_of=job.id,
    )
    session.add(retry)
    session.flush()
    return retry


def dead_reason(job: Job, timeout: float, *, starting: bool = False) -> str | None:
    """Why the running ``job`` counts as dead, or None while it may be alive.

    ``starting``: the caller is a process that runs nothing yet, so a row naming this very
    process belongs to an earlier process that had the same pid (a restarted container).
    """
    if starting and job.worker == worker_id():
        return f"its process {job.worker} ended (this process reuses its pid)"
    if owner_alive(job.worker) is False:
        return f"its process {job.worker} is gone"
    beat = job.heartbeat_at or job.started_at or job.created_at
    silent = (utcnow() - beat).total_seconds() if beat else float("inf")
    if silent > timeout:
        return (
            f"no heartbeat from {job.worker or 'its process'} for {silent:.0f} s "
            f"(SMARTSTUDY_JOB_HEARTBEAT_TIMEOUT={timeout:g})"
        )
    return None


def recover(
    context: AppContext, kinds: Sequence[str] | None = None, *, starting: bool = False
) -> list[Job]:
    """Fail every dead running job (of ``kinds``, or all) and queue its retry; the retries."""
    timeout = context.settings.job_heartbeat_timeout
    retries = []
    with session_scope(context.sessions) as session:
        query = select(Job).where(Job.status == "running")
        if kinds is not None:
            query = query.where(Job.kind.in_(list(kinds)))
        for job in session.scalars(query.order_by(Job.created_at)).all():
            reason = dead_reason(job, timeout, starting=starting)
            if reason is None:
                continue
            retry = _fail_and_retry(session, job, reason, context.settings.job_max_attempts)
            if retry is not None:
                retries.append(retry)
    return retries


def queued(context: AppContext) -> list[tuple[str, uuid.UUID]]:
    """Every queued job, oldest first, as (kind, id)."""
    with session_scope(context.sessions) as session:
        rows = session.execute(
            select(Job.kind, Job.id).where(Job.status == "queued").order_by(Job.created_at)
        ).all()
    return [(kind, job_id) for kind, job_id in rows]


def recover_and_wake(context: AppContext) -> list[Job]:
    """At start-up: recover dead jobs, then hand every queued job to the runner (jobs
    queued before a crash, a shutdown or a lost broker message run now); the retries."""
    retries = recover(context, starting=True)
    for kind, job_id in queued(context):
        try:
            context.runner.submit(kind, {"job_id": str(job_id)})
        except Exception:
            log.exception("could not hand queued job %s (%s) to the runner", job_id, kind)
    return retries


class Heartbeat:
    """Refresh a running job's ``heartbeat_at`` every ``interval`` seconds from a thread."""

    def __init__(self, context: AppContext, job_id: uuid.UUID, interval: float | None = None):
        self._context = context
        self._job_id = job_id
        timeout = context.settings.job_heartbeat_timeout
        self._interval = interval if interval is not None else max(0.5, min(30.0, timeout / 4))
        self._stop = threading.Event()
        self._worker = worker_id()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{job_id}", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                with session_scope(self._context.sessions) as session:
                    session.execute(
                        update(Job)
                        .where(
                            Job.id == self._job_id,
                            Job.status == "running",
                            Job.worker == self._worker,
                        )
                        .values(heartbeat_at=utcnow())
                    )
            except Exception:
                log.warning("heartbeat of job %s failed", self._job_id, exc_info=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def run_recorded(
    context: AppContext,
    kind: str,
    args: dict[str, Any],
    work: Callable[[dict[str, Any]], dict[str, Any]],
    job_id: str | None = None,
) -> Job | None:
    """Run ``work(args)`` as one recorded job of ``kind``: the queued row ``job_id`` (with the
    arguments stored in it), or a new running row; heartbeat while it runs; succeeded with
    the summary it returns, failed with its exception, or interrupted and queued again.
    None when the queued row was taken by another process first."""
    with session_scope(context.sessions) as session:
        if job_id is not None:
            row_id = uuid.UUID(job_id)
            if not claim(session, row_id):
                return None
            row = session.get(Job, row_id)
            assert row is not None
            args = dict(row.args or {})
        else:
            row_id = start(session, kind, args).id
    with Heartbeat(context, row_id):
        try:
            summary = work(args)
        except JobInterrupted as exc:
            interrupt(context, row_id, str(exc))
        except Exception as exc:
            log.exception("job %s (%s) failed", row_id, kind)
            finish(context, row_id, error=f"{type(exc).__name__}: {exc}")
        else:
            finish(context, row_id, summary=summary)
    with session_scope(context.sessions) as session:
        return session.get(Job, row_id)
