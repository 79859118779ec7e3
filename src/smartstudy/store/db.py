"""Engine and session factory; SQLite gets WAL, foreign keys and a busy timeout.

Also what tells an outage from a bug: ``classify_outage`` names the database or disk failure
an exception stands for (unreachable, full, read-only, busy), and the storage checks behind
``/readyz`` and the command line's start-up check say, in plain words, what cannot be used.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from smartstudy.config import private_dir, tighten

log = logging.getLogger(__name__)

MIB = 1024 * 1024
#: Seconds a PostgreSQL connection attempt may take: a dead host must not hang a probe.
CONNECT_TIMEOUT_S = 10
#: Threads a server process runs its blocking request handlers on. Fewer would make each
#: request faster under load (they share one GIL: `benchmarks/load.py` gave a p99 of
#: 281-337 ms with 4-8 threads against 386 ms with 20), but a request that holds a lock (a
#: row, SQLite's write lock) needs a thread again to serialise its answer and to commit: if
#: every thread is taken by requests waiting for that lock, none is left to release it
#: (`test_races`: ten registrations of one e-mail with 8 threads waited out SQLite's 30 s).
REQUEST_THREADS = 20
#: Connections a process keeps open to a database server: one per request thread and some
#: for the background threads (warm-up, version loads, the feed follower, jobs), so that
#: none is opened and closed per request (a pool of 10 for 20 threads did that about 25
#: times a second under load, each a new PostgreSQL backend); beyond them it may open
#: ``POOL_OVERFLOW`` more.
POOL_SIZE, POOL_OVERFLOW = REQUEST_THREADS + 4, 8
#: Below this much room to grow (``PRAGMA max_page_count``), a SQLite database counts as full.
MIN_DATABASE_ROOM = MIB


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; a SQLite file is created readable by its owner only."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not parsed.query.get("uri"):
            _prepare_sqlite_file(Path(database).expanduser())
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT and
        # write locking; take control of BEGIN ourselves (SQLAlchemy's documented recipe).
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        kwargs.setdefault("connect_args", {"connect_timeout": CONNECT_TIMEOUT_S})
    kwargs.setdefault("pool_size", POOL_SIZE)
    kwargs.setdefault("max_overflow", POOL_OVERFLOW)
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        event.listen(engine.pool, "checkin", _note_idle)
        event.listen(engine.pool, "checkout", _ping_if_idle)
    return engine


#: A pooled connection unused for longer than this is pinged before it is handed out, and
#: replaced if the server dropped it (restart, outage). Pinging every checkout, as
#: ``pool_pre_ping`` does, costs a round trip per request; a connection that served a
#: request a moment ago is taken as alive, and if the server died since, that request fails
#: and the pool replaces every connection (SQLAlchemy's disconnect handling).
PING_IDLE_S = 1.0


def _note_idle(_dbapi_conn: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
    since = record.info.get("idle_since")
    if since is None or time.monotonic() - since < PING_IDLE_S:
        return
    try:
        with dbapi_conn.cursor() as cursor:
            cursor.execute("SELECT 1")
        dbapi_conn.rollback()
    except Exception as exc:
        raise sa_exc.DisconnectionError(f"pooled connection is dead: {exc}") from exc


def _prepare_sqlite_file(path: Path) -> None:
    """Create the database file 0600 (in a 0700 folder if the folder is new) before SQLite
    opens it, and tighten an existing one: SQLite would make it 0644, and gives the -wal and
    -shm files the database file's mode."""
    if not path.parent.exists():
        private_dir(path.parent)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        tighten(file)


def _sqlite_begin(conn: Connection) -> None:
    """BEGIN IMMEDIATE for a transaction; nothing for an autocommit connection (each of
    its statements commits by itself)."""
    if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


class UnitOfWork:
    """The one owner of a transaction: its session, its commit, and what must wait for it.

    A request gets one from its dependency (API and web alike) and a command or a job opens
    one with ``unit_of_work``; it commits once at the end. Routes never commit: a service
    that must store its work before going on (the completion use case stores the outcome
    before the served models learn from it) calls ``commit`` here, and work that must only
    follow stored data (online learning, waking the job runner) is registered with
    ``after_commit``, so a rolled-back transaction never triggers it.

    ``hold=True`` keeps one transaction for the whole unit (a seeding that must be all or
    nothing, like the demo's): ``commit`` then only flushes and runs the callbacks at once,
    except those registered with ``stored=True``, which wait for the data to be stored when
    the unit ends (waking a job that reads it, say).
    """

    def __init__(self, session: Session, *, hold: bool = False) -> None:
        self.session = session
        self.hold = hold
        self._after: list[Callable[[], None]] = []
        self._stored: list[Callable[[], None]] = []

    def after_commit(self, callback: Callable[[], None], *, stored: bool = False) -> None:
        """Run ``callback`` after the next commit (dropped if the work is rolled back);
        ``stored``: not before the data is in the database (only differs with ``hold``)."""
        (self._stored if stored else self._after).append(callback)

    def commit(self) -> None:
        """Store the work so far, then run the after-commit callbacks in order; one that
        fails is logged, not raised: what was committed stays committed and answered."""
        if self.hold:
            self.session.flush()
            callbacks, self._after = self._after, []
        else:
            self.session.commit()
            callbacks, self._after, self._stored = self._after + self._stored, [], []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                log.exception("after-commit step %r failed; the commit stands", callback)

    def rollback(self) -> None:
        """Discard the work since the last commit (with ``hold``: all of it) and its pending
        callbacks."""
        self._after.clear()
        self._stored.clear()
        self.session.rollback()


@contextmanager
def unit_of_work(factory: sessionmaker[Session], *, hold: bool = False) -> Iterator[UnitOfWork]:
    """A unit of work that commits on success and rolls back on any error."""
    session = factory()
    uow = UnitOfWork(session, hold=hold)
    try:
        yield uow
        uow.hold = False
        uow.commit()
    except BaseException:
        uow.rollback()
        raise
    finally:
        session.close()


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error (a unit of work whose
    callers need only its session)."""
    with unit_of_work(factory) as uow:
        yield uow.session


def analyze(engine: Engine) -> None:
    """Refresh the query planner's statistics after a bulk load (``ANALYZE``). Without them
    PostgreSQL may scan a whole table for a query an index answers: with autovacuum off,
    or before it runs, the catch-up read of recent completions scanned all 100,000 tasks of
    a simulated cohort (23 ms) instead of using its index (under 0.1 ms)."""
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()


def ping(engine: Engine) -> None:
    """Raise if the database cannot answer ``SELECT 1``."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


class Outage(StrEnum):
    """Why the database or the disk under it cannot be used right now."""

    UNREACHABLE = "unreachable"
    FULL = "full"
    READ_ONLY = "read_only"
    BUSY = "busy"


# Primary SQLite result codes (https://sqlite.org/rescode.html).
_SQLITE_CODES = {
    5: Outage.BUSY,  # SQLITE_BUSY: another writer held the lock past the busy timeout
    6: Outage.BUSY,  # SQLITE_LOCKED
    8: Outage.READ_ONLY,  # SQLITE_READONLY
    10: Outage.UNREACHABLE,  # SQLITE_IOERR: the disk failed to read or write
    13: Outage.FULL,  # SQLITE_FULL: disk full, or the database at its max_page_count
    14: Outage.UNREACHABLE,  # SQLITE_CANTOPEN
}
_SQLITE_MESSAGES = {
    "locked": Outage.BUSY,
    "readonly database": Outage.READ_ONLY,
    "disk i/o error": Outage.UNREACHABLE,
    "disk is full": Outage.FULL,
    "unable to open database": Outage.UNREACHABLE,
}
# PostgreSQL SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html).
_PG_STATES = {
    "53100": Outage.FULL,  # disk_full
    "53200": Outage.BUSY,  # out_of_memory
    "53300": Outage.BUSY,  # too_many_connections
    "57P01": Outage.UNREACHABLE,  # admin_shutdown
    "57P02": Outage.UNREACHABLE,  # crash_shutdown
    "57P03": Outage.UNREACHABLE,  # cannot_connect_now (starting up)
    "25006": Outage.READ_ONLY,  # read_only_sql_transaction (a standby after fail-over)
}
_OS_ERRORS = {errno.ENOSPC: Outage.FULL, errno.EDQUOT: Outage.FULL, errno.EROFS: Outage.READ_ONLY}


def classify_outage(exc: BaseException) -> Outage | None:
    """The outage ``exc`` stands for, or None when it is not one (a bug, a constraint)."""
    if isinstance(exc, sa_exc.TimeoutError):  # every pooled connection stayed busy
        return Outage.BUSY
    if isinstance(exc, OSError):
        return _OS_ERRORS.get(exc.errno or 0)
    if not isinstance(exc, sa_exc.DBAPIError):
        return None
    if exc.connection_invalidated:
        return Outage.UNREACHABLE
    orig = exc.orig
    if isinstance(orig, sqlite3.Error):
        code = getattr(orig, "sqlite_errorcode", None)
        if code is not None:
            return _SQLITE_CODES.get(code & 0xFF)
        message = str(orig).lower()
        return next((kind for part, kind in _SQLITE_MESSAGES.items() if part in message), None)
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate:
        return Outage.UNREACHABLE if sqlstate.startswith("08") else _PG_STATES.get(sqlstate)
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
        # No SQLSTATE: the server never answered (refused, timed out, connection lost).
        return Outage.UNREACHABLE
    return None


def error_reason(exc: BaseException) -> str:
    """The driver's or system's own words for ``exc``, short: "connection refused"."""
    if isinstance(exc, OSError) and exc.strerror:
        reason = exc.strerror
    else:
        orig = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
        lines = str(orig).strip().splitlines() or [type(orig).__name__]
        # psycopg: 'connection failed: connection to server at "h", port 5999 failed: X'
        reason = lines[0].rsplit(": ", 1)[-1].strip()
    return reason[:1].lower() + reason[1:]


def safe_url(url: str) -> str:
    """``url`` with its password hidden, fit for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


@dataclass(frozen=True)
class StorageProblem:
    """What cannot be used (``where``: a database URL or a path), why, and its kind."""

    kind: Outage
    where: str
    reason: str

    def describe(self, setting: str | None = None) -> str:
        """One line: "cannot reach the database at URL (SETTING): connection refused"."""
        lead = {
            Outage.UNREACHABLE: "cannot reach the database at",
            Outage.FULL: "no space left for",
            Outage.READ_ONLY: "cannot write to",
            Outage.BUSY: "the database is too busy at",
        }[self.kind]
        named = f" ({setting})" if setting else ""
        return f"{lead} {self.where}{named}: {self.reason}"


def sqlite_file(engine: Engine) -> Path | None:
    """The database file of a SQLite engine, or None (PostgreSQL, in-memory)."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).expanduser()


def database_problem(engine: Engine) -> StorageProblem | None:
    """Why the database cannot be used (no answer; a SQLite file that may not grow), or None."""
    where = engine.url.render_as_string(hide_password=True)
    path = sqlite_file(engine)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            room = _sqlite_room(conn) if path is not None else None
    except (sa_exc.DBAPIError, sa_exc.TimeoutError) as exc:
        return StorageProblem(classify_outage(exc) or Outage.UNREACHABLE, where, error_reason(exc))
    if room is not None and room < MIN_DATABASE_ROOM:
        return StorageProblem(Outage.FULL, str(path), "the database file may not grow any more")
    if path is not None:
        try:  # open for writing, write nothing: a read-only file or mount shows here
            os.close(os.open(path, os.O_RDWR))
        except OSError as exc:
            return StorageProblem(_os_kind(exc), str(path), error_reason(exc))
    return None


def _sqlite_room(conn: Connection) -> int:
    """Bytes a SQLite database may still take: free pages inside it and growth up to
    ``PRAGMA max_page_count``."""
    size, count, limit, free = (
        int(conn.exec_driver_sql(f"PRAGMA {name}").scalar() or 0)
        for name in ("page_size", "page_count", "max_page_count", "freelist_count")
    )
    return (max(limit - count, 0) + free) * size


def folder_problem(folder: Path, min_free_bytes: int) -> StorageProblem | None:
    """Why ``folder`` cannot take new data (missing, too little free space, not writable)."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        return StorageProblem(Outage.UNREACHABLE, str(folder), error_reason(exc))
    if free < min_free_bytes:
        return StorageProblem(
            Outage.FULL,
            str(folder),
            f"only {free // MIB} MiB free on its disk, at least {min_free_bytes // MIB} MiB needed",
        )
    try:  # a real write, beside the database rather than into it
        fd, probe = tempfile.mkstemp(prefix=".smartstudy-probe-", dir=folder)
        try:
            os.write(fd, bytes(4096))
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        return StorageProblem(_os_kind(exc), str(folder), error_reason(exc))
    return None


def _os_kind(exc: OSError) -> Outage:
    return Outage.FULL if exc.errno in (errno.ENOSPC, errno.EDQUOT) else Outage.READ_ONLY


def storage_problem(engine: Engine, data_dir: Path, min_free_bytes: int) -> StorageProblem | None:
    """The first reason the service cannot work: the database does not answer or may not
    grow, or the SQLite database's folder or the data folder (when there is one) cannot
    take a write."""
    problem = database_problem(engine)
    if problem is not None:
        return problem
    path = sqlite_file(engine)
    folders = [path.parent] if path is not None else []
    if data_dir.is_dir() and data_dir not in folders:
        folders.append(data_dir)
    for folder in folders:
        problem = folder_problem(folder, min_free_bytes)
        if problem is not None:
            return problem
    return None
