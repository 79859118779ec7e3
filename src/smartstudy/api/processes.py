"""``smartstudy serve --workers N``: N API processes, each with its own listening socket.

uvicorn's own ``--workers`` shares one listening socket between its processes. Whichever
process is awake accepts, so long-lived keep-alive connections pile up on one of them: the
load benchmark found all 32 client connections on one process while the other sat idle.
Here every process binds the port itself with ``SO_REUSEPORT`` and the kernel spreads new
connections over the sockets by their addresses, so the processes share the work.

The parent only supervises: it starts the processes, starts a new one if one dies, and on
SIGTERM or SIGINT asks each to stop (uvicorn's graceful shutdown, 3 s for open requests)
and kills any that is still there after ``STOP_SECONDS``. A process that dies within
``MIN_UPTIME_SECONDS`` of its start (the port is taken, the settings are wrong) stops the
whole server instead of being restarted in a loop. Where the platform has no
``SO_REUSEPORT``, uvicorn's shared socket is used.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import time
from multiprocessing.process import BaseProcess
from types import FrameType

from smartstudy.api import balancing
from smartstudy.api.balancing import LoadTable

log = logging.getLogger(__name__)

APP_FACTORY = "smartstudy.api.app:serving_process_app"
#: A process that ends sooner than this after its start is a failure to start.
MIN_UPTIME_SECONDS = 5.0
#: How long the processes get to stop after SIGTERM before they are killed.
STOP_SECONDS = 8.0
_POLL_SECONDS = 0.25


def has_reuse_port() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def _run_process(host: str, port: int, log_level: str, table: LoadTable, index: int) -> None:
    """One API process: its own socket on the shared port, the app from the environment,
    and its slot ``index`` in the processes' shared ``table`` of requests in flight."""
    import uvicorn

    balancing.share(table.attach(index))

    sock = _listening_socket(host, port)
    config = uvicorn.Config(
        APP_FACTORY,
        factory=True,
        log_level=log_level,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=3,
    )
    uvicorn.Server(config).run(sockets=[sock])


class Supervisor:
    """Starts ``workers`` API processes and keeps them running until told to stop."""

    def __init__(self, host: str, port: int, workers: int, log_level: str) -> None:
        self.args = (host, port, log_level)
        self.workers = workers
        self.context = multiprocessing.get_context("spawn")
        self.table = LoadTable.create(workers, self.context)
        self.processes: list[tuple[BaseProcess, float]] = []
        self.stopping = False
        self.failed: str | None = None

    def _start_one(self, index: int) -> tuple[BaseProcess, float]:
        process = self.context.Process(
            target=_run_process, args=(*self.args, self.table, index), name="smartstudy-api"
        )
        process.start()
        return process, time.monotonic()

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def _check(self) -> None:
        for i, (process, started) in enumerate(self.processes):
            if process.is_alive():
                continue
            if time.monotonic() - started < MIN_UPTIME_SECONDS:
                self.failed = (
                    f"an API process stopped {time.monotonic() - started:.1f} s after its "
                    f"start (exit code {process.exitcode}); see the log above"
                )
                self.stopping = True
                return
            log.warning(
                "API process %s ended (exit code %s); starting a new one",
                process.pid,
                process.exitcode,
            )
            self.processes[i] = self._start_one(i)

    def _shutdown(self) -> None:
        for process, _ in self.processes:
            if process.is_alive() and process.pid is not None:
                process.terminate()
        deadline = time.monotonic() + STOP_SECONDS
        for process, _ in self.processes:
            process.join(max(deadline - time.monotonic(), 0.0))
        for process, _ in self.processes:
            if process.is_alive():
                log.warning("API process %s did not stop in time; killing it", process.pid)
                process.kill()
                process.join(2.0)

    def run(self) -> str | None:
        """Serve until SIGTERM/SIGINT; the reason it failed, or None after a clean stop."""
        previous = {s: signal.signal(s, self._stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.processes = [self._start_one(i) for i in range(self.workers)]
            while not self.stopping:
                time.sleep(_POLL_SECONDS)
                self._check()
        finally:
            self._shutdown()
            for s, handler in previous.items():
                signal.signal(s, handler)
        return self.failed
