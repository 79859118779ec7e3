"""Job runners: they decide *when and where* a named job runs, never what it does.

A job is a name and JSON keyword arguments (``jobs.registry``); a runner only schedules the
call ``fn(context, **args)`` against the app context that holds it (``bind``). The in-process
runner keeps at most one job of a name running; a submission while one runs schedules exactly
one follow-up run (the newest arguments), so work asked for during a run (e.g. completions
that arrive while a model trains) is never ignored, and a burst of requests costs one extra
run, not one per request. ``jobs.celery_app.CeleryRunner`` sends the same name and arguments
to ``smartstudy worker`` processes instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from smartstudy.jobs import durable
from smartstudy.jobs.registry import check_job, run_job

if TYPE_CHECKING:
    from smartstudy.services.context import AppContext

log = logging.getLogger(__name__)

#: How long a shutdown waits for a running job to reach a point where it can stop.
SHUTDOWN_GRACE_SECONDS = 3.0


class JobRunner(Protocol):
    def submit(self, name: str, args: Mapping[str, Any] | None = None) -> None:
        """Run the job ``name`` with ``args`` (now, or after the one of that name running);
        ``registry.JobError`` if the name is unknown or the arguments are not JSON."""

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no job runs or waits; False if ``timeout`` passed first."""

    def shutdown(self) -> None:
        """Stop accepting jobs, ask running ones to stop, and wait (briefly) for them."""


class _Bound:
    """A runner that calls job functions in this process, against one app context."""

    _context: AppContext | None = None

    def bind(self, context: AppContext) -> None:
        """Run jobs against ``context`` (``AppContext`` calls this when it gets the runner)."""
        self._context = context

    def _run(self, name: str, args: dict[str, Any]) -> None:
        if self._context is None:
            raise RuntimeError("job runner not bound to an app context")
        try:
            run_job(self._context, name, args)
        except durable.JobInterrupted:
            log.warning("job %s stopped by a shutdown", name)
        except Exception:
            log.exception("job %s failed", name)


class SyncRunner(_Bound):
    """Runs each job at once in the caller's thread (CLI batch work, replay, tests)."""

    def submit(self, name: str, args: Mapping[str, Any] | None = None) -> None:
        self._run(name, check_job(name, args))

    def wait_idle(self, timeout: float | None = None) -> bool:
        return True

    def shutdown(self) -> None:
        return None


class InProcessRunner(_Bound):
    """One daemon thread per running job name, with coalescing follow-ups.

    ``shutdown`` asks the running jobs to stop at their next safe point and waits at most
    ``grace`` seconds; a job still running then is marked failed ("interrupted by
    shutdown") and queued again, so the process can exit now and the work runs at the next
    start. Follow-ups not started yet are dropped: their job rows stay queued.
    """

    def __init__(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        self.grace = grace
        self._lock = threading.Condition()
        self._running: set[str] = set()
        self._pending: dict[str, dict[str, Any]] = {}
        self._threads: set[threading.Thread] = set()
        self._closed = False
        self._stopping = threading.Event()

    def submit(self, name: str, args: Mapping[str, Any] | None = None) -> None:
        clean = check_job(name, args)
        with self._lock:
            if self._closed:
                log.warning("job runner is shut down; job %s not run", name)
                return
            if name in self._running:
                self._pending[name] = clean  # the newest request replaces a waiting one
                return
            self._running.add(name)
            thread = threading.Thread(
                target=self._loop, args=(name, clean), name=f"job-{name}", daemon=True
            )
            self._threads.add(thread)
        thread.start()

    def _loop(self, name: str, args: dict[str, Any]) -> None:
        with durable.stop_when(self._stopping):
            while True:
                self._run(name, args)
                with self._lock:
                    follow_up = self._pending.pop(name, None)
                    if follow_up is None or self._closed:
                        self._running.discard(name)
                        self._threads.discard(threading.current_thread())
                        self._lock.notify_all()
                        return
                args = follow_up

    def wait_idle(self, timeout: float | None = None) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: not self._running, timeout=timeout)

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            self._pending.clear()
        self._stopping.set()
        if self.wait_idle(timeout=self.grace) or self._context is None:
            return
        # A job busy inside one long step: give its work back now, rather than block exit.
        try:
            for retry in durable.interrupt_all(self._context):
                log.warning("job %s queued again after the shutdown", retry.retry_of)
        except Exception:
            log.exception("could not mark the interrupted jobs")
