"""Jobs on Celery + Redis (``SMARTSTUDY_JOBS=celery``): the API only sends job names and
JSON arguments; ``smartstudy worker`` processes run the same job functions.

The queue is not the source of truth, the ``jobs`` table is: a request stores its job row
(queued) in its own transaction and sends the message after the commit; the job function
claims queued rows. So a lost or duplicated message costs nothing lasting: a duplicate finds
nothing to claim, and a worker that starts hands every queued row to the queue again
(``durable.recover_and_wake``). Messages are acknowledged only after the job function
returned (``task_acks_late``) and given back when the process running them dies
(``task_reject_on_worker_lost``, and Redis's visibility timeout for a worker killed
outright); each worker process takes one message at a time (``worker_prefetch_multiplier``).
Failures that are outages (database down or busy) are retried with exponential backoff.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from celery import Celery, Task
from celery.signals import worker_process_init, worker_shutting_down
from sqlalchemy import exc as sa_exc

from smartstudy.config import Settings
from smartstudy.jobs import durable
from smartstudy.jobs.registry import check_job, run_job
from smartstudy.store.db import classify_outage

if TYPE_CHECKING:
    from smartstudy.services.context import AppContext

log = logging.getLogger(__name__)

TASK_NAME = "smartstudy.run_job"
#: Retries of a job that failed for an outage: 5 s, 10 s, 20 s, … up to 5 minutes apart.
MAX_TRANSIENT_RETRIES = 8
BACKOFF_SECONDS = 5
BACKOFF_MAX_SECONDS = 300
#: How long a message may stay unacknowledged before Redis hands it out again (the worker
#: that took it died without a trace). A live job whose message comes back is harmless:
#: the second delivery finds its row running and nothing to claim.
MIN_VISIBILITY_TIMEOUT = 300


class BrokerError(RuntimeError):
    """Celery is selected but its broker is not configured or not reachable."""


def redacted(url: str) -> str:
    """``url`` without its password (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def require_broker_url(settings: Settings) -> str:
    """The Redis URL, or ``BrokerError`` naming the setting to give."""
    if not settings.redis_url:
        raise BrokerError(
            "SMARTSTUDY_JOBS=celery needs SMARTSTUDY_REDIS_URL (e.g. redis://127.0.0.1:6379/0)"
        )
    if urlsplit(settings.redis_url).scheme not in ("redis", "rediss"):
        raise BrokerError(
            f"SMARTSTUDY_REDIS_URL must be a redis:// or rediss:// URL, "
            f"not {redacted(settings.redis_url)!r}"
        )
    return settings.redis_url


def broker_problem(settings: Settings, timeout: float = 3.0) -> str | None:
    """Why the broker cannot be used now (one line naming the setting), or None."""
    import redis

    try:
        url = require_broker_url(settings)
    except BrokerError as exc:
        return str(exc)
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        return f"cannot reach Redis at {redacted(url)} (SMARTSTUDY_REDIS_URL): {exc}"
    return None


def make_celery(settings: Settings) -> Celery:
    """The Celery app of SmartStudy's job queue (broker: ``SMARTSTUDY_REDIS_URL``)."""
    app = Celery("smartstudy", broker=require_broker_url(settings), set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_default_queue=settings.job_queue,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": max(
                MIN_VISIBILITY_TIMEOUT, int(4 * settings.job_heartbeat_timeout)
            )
        },
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
        enable_utc=True,
    )
    app.task(name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True)(_run_job_task)
    return app


class CeleryRunner:
    """Sends jobs to the Celery queue; this process never runs them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = make_celery(settings)

    def bind(self, context: AppContext) -> None:
        return None  # the worker runs jobs against its own context

    def submit(self, name: str, args: Mapping[str, Any] | None = None) -> None:
        """Send the job; if the broker is down, say so and go on: the job's row is stored
        and queued, and the next worker to start sends it again."""
        clean = check_job(name, args)
        try:
            self.app.send_task(
                TASK_NAME,
                args=[name, clean],
                queue=self.settings.job_queue,
                retry=True,
                retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
            )
        except Exception as exc:
            log.error(
                "could not send job %s to Redis at %s (SMARTSTUDY_REDIS_URL): %s; it stays "
                "queued until a worker starts",
                name,
                redacted(self.settings.redis_url or ""),
                exc,
            )

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Nothing runs or waits in this process (the workers' queue is theirs)."""
        return True

    def shutdown(self) -> None:
        self.app.close()


# -- the worker side ---------------------------------------------------------------------
_worker_context: AppContext | None = None
_stopping = threading.Event()


def _transient(exc: BaseException) -> bool:
    """A failure that may pass by itself: the database unreachable, busy or full."""
    if classify_outage(exc) is not None:
        return True
    return isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated


def _run_job_task(task: Task, name: str, args: dict[str, Any]) -> None:
    """The one Celery task: run the named job function in this worker process."""
    if _worker_context is None:
        raise RuntimeError("job task outside `smartstudy worker`: no app context")
    try:
        with durable.stop_when(_stopping):
            run_job(_worker_context, name, args)
    except Exception as exc:
        if not _transient(exc) or task.request.retries >= MAX_TRANSIENT_RETRIES:
            raise
        delay = min(BACKOFF_MAX_SECONDS, BACKOFF_SECONDS * 2**task.request.retries)
        log.warning("job %s hit an outage (%s); retrying in %s s", name, exc, delay)
        raise task.retry(exc=exc, countdown=delay, max_retries=MAX_TRANSIENT_RETRIES) from exc


@worker_shutting_down.connect
def _on_shutdown(**_kwargs: object) -> None:
    # A running job stops at its next safe point, is marked interrupted and queued again.
    _stopping.set()


@worker_process_init.connect
def _on_fork(**_kwargs: object) -> None:
    # A forked pool process must not share the parent's database connections.
    if _worker_context is not None:
        _worker_context.engine.dispose(close=False)


def run_worker(context: AppContext, concurrency: int = 1, loglevel: str = "INFO") -> int:
    """Run a Celery worker for ``context`` until it is stopped; its exit code.

    One process (``solo`` pool) for ``concurrency`` 1, else a pool of that many processes.
    Call ``durable.recover_and_wake`` first (the CLI does), so the jobs of a dead worker and
    the queued jobs whose message was lost are in the queue.
    """
    global _worker_context
    runner = context.runner
    if not isinstance(runner, CeleryRunner):
        raise BrokerError("`smartstudy worker` needs SMARTSTUDY_JOBS=celery")
    _worker_context = context
    _stopping.clear()
    worker = runner.app.Worker(
        hostname=f"smartstudy-{os.getpid()}@{socket.gethostname()}",
        concurrency=concurrency,
        pool="solo" if concurrency == 1 else "prefork",
        queues=[context.settings.job_queue],
        loglevel=loglevel,
        without_gossip=True,
        without_mingle=True,
        without_heartbeat=True,
    )
    worker.start()
    return int(worker.exitcode or 0)
