"""Job runners: they decide *when and where* a job function runs, never what it does.

Job functions live in ``services`` and take no arguments; a runner only schedules them. The
in-process runner keeps at most one job of a kind running; a submission while one runs
schedules exactly one follow-up run, so work asked for during a run (e.g. completions that
arrive while a model trains) is never ignored, and a burst of requests costs one extra run,
not one per request.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

JobFunction = Callable[[], object]


class JobRunner(Protocol):
    def submit(self, kind: str, fn: JobFunction) -> None:
        """Run ``fn`` as a job of ``kind`` (now, or after the one of that kind running)."""

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no job runs or waits; False if ``timeout`` passed first."""

    def shutdown(self) -> None:
        """Stop accepting jobs and wait for the running ones."""


class SyncRunner:
    """Runs each job at once in the caller's thread (CLI batch work, tests)."""

    def submit(self, kind: str, fn: JobFunction) -> None:
        try:
            fn()
        except Exception:
            log.exception("job %s failed", kind)

    def wait_idle(self, timeout: float | None = None) -> bool:
        return True

    def shutdown(self) -> None:
        return None


class InProcessRunner:
    """One daemon thread per running kind of job, with coalescing follow-ups."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._running: set[str] = set()
        self._pending: dict[str, JobFunction] = {}
        self._threads: set[threading.Thread] = set()
        self._closed = False

    def submit(self, kind: str, fn: JobFunction) -> None:
        with self._lock:
            if self._closed:
                log.warning("job runner is shut down; job %s not run", kind)
                return
            if kind in self._running:
                self._pending[kind] = fn  # the newest request replaces a waiting one
                return
            self._running.add(kind)
            thread = threading.Thread(
                target=self._loop, args=(kind, fn), name=f"job-{kind}", daemon=True
            )
            self._threads.add(thread)
        thread.start()

    def _loop(self, kind: str, fn: JobFunction) -> None:
        while True:
            try:
                fn()
            except Exception:
                log.exception("job %s failed", kind)
            with self._lock:
                follow_up = self._pending.pop(kind, None)
                if follow_up is None:
                    self._running.discard(kind)
                    self._threads.discard(threading.current_thread())
                    self._lock.notify_all()
                    return
            fn = follow_up

    def wait_idle(self, timeout: float | None = None) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: not self._running, timeout=timeout)

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
        self.wait_idle(timeout=60)
