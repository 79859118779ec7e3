"""Keeps the API processes of ``smartstudy serve --workers N`` equally busy.

Each process listens on the port with ``SO_REUSEPORT`` (``api.processes``), and the kernel
hands every new connection to one of them by a hash of its addresses. A keep-alive
connection then stays with that process for as long as the client keeps it open, so a few
long-lived connections (a reverse proxy's upstream pool, a load generator, a busy browser)
split unevenly and stay split: the load benchmark's 32 clients once sat 21 on one process
and 11 on the other, and the 21 waited twice as long for every answer.

So the processes share a table of their requests in flight: one integer per process in
shared memory, each written only by its own process (on its event loop, so without a lock)
and read by all. A process whose requests in flight exceed the least busy process's by more
than ``SLACK`` (or an eighth of that process's, when that is more) answers the request it is
finishing with ``Connection: close``. The client opens a new connection for its next
request, and the kernel places that one afresh; a connection that lands on the busy process
again may be closed again after its next answer.
Nothing is lost: the answer is complete, and HTTP clients reconnect by themselves. The
connections settle within ``SLACK`` of even, and a balanced server closes none.
"""

from __future__ import annotations

import ctypes
import multiprocessing
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smartstudy.api.security_headers import HTTPMiddleware, wrap_outermost
from smartstudy.observability import metrics

#: How many more requests in flight than the least busy process a process may have before it
#: closes connections. One or two is the jitter of requests arriving and leaving; more is a
#: lasting imbalance of connections. With many connections the jitter grows, and so does the
#: allowance: an eighth of the least busy process's requests (``SLACK_FRACTION``).
SLACK = 2
SLACK_FRACTION = 1 / 8

_CLOSE = (b"connection", b"close")


class LoadTable:
    """The requests in flight of each API process, in memory shared between them.

    ``LoadTable.create(n)`` in the parent before the processes start; each process gets it
    with its own ``index`` (``attach``)."""

    def __init__(self, slots: Any, index: int | None = None) -> None:
        self.slots = slots
        self.index = index

    @classmethod
    def create(cls, processes: int, context: Any = multiprocessing) -> LoadTable:
        # A raw array: each slot has one writer, and a stale read only delays a decision.
        return cls(context.RawArray(ctypes.c_int, processes))

    def attach(self, index: int) -> LoadTable:
        """This table as seen by process ``index``. Its slot starts at zero: what a process
        that ended had in flight ended with it."""
        if not 0 <= index < len(self.slots):
            raise ValueError(f"process index {index} outside a table of {len(self.slots)}")
        self.slots[index] = 0
        return LoadTable(self.slots, index)

    def _own(self) -> int:
        if self.index is None:
            raise RuntimeError("this table is not attached to a process (LoadTable.attach)")
        return self.index

    def enter(self) -> None:
        self.slots[self._own()] += 1

    def leave(self) -> None:
        self.slots[self._own()] -= 1

    def overloaded(self) -> bool:
        """True when this process has more requests in flight than the least busy of the
        others, beyond the allowance (``SLACK``; a table of one process never is)."""
        own = self._own()
        loads = list(self.slots)
        others = loads[:own] + loads[own + 1 :]
        if not others:
            return False
        least = min(others)
        return loads[own] - least > max(SLACK, int(least * SLACK_FRACTION))


class ConnectionBalancer(HTTPMiddleware):
    """Count this process's requests in flight in the shared table, and ask the client of a
    request answered while the process is overloaded to reconnect (``Connection: close``)."""

    def __init__(self, app: ASGIApp, table: LoadTable) -> None:
        super().__init__(app)
        self.table = table

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        table = self.table

        async def send_maybe_closing(message: Message) -> None:
            if message["type"] == "http.response.start" and table.overloaded():
                message["headers"] = [*message.get("headers", ()), _CLOSE]
                metrics.connection_shed()
            await send(message)

        table.enter()
        try:
            await self.app(scope, receive, send_maybe_closing)
        finally:
            table.leave()


#: The table of this process, set by ``api.processes`` before the app is built.
_this_process: LoadTable | None = None


def share(table: LoadTable | None) -> None:
    """Make ``table`` (attached to this process) the one ``install`` uses."""
    global _this_process
    _this_process = table


def this_process() -> LoadTable | None:
    return _this_process


def install(app: FastAPI, table: LoadTable) -> None:
    """Put the balancer outside everything else of ``app``, so that every answer counts."""
    wrap_outermost(app, lambda inner: ConnectionBalancer(inner, table))
