"""Database outages while the service runs: 503 (JSON with Retry-After for the API, an HTML
page for the web pages), /readyz telling the truth, and recovery on its own.

PostgreSQL goes away for real: the app talks to it through a small TCP proxy that the test
cuts and restores. A SQLite disk fills up for real as far as SQLite can tell: every connection
gets ``PRAGMA max_page_count`` at the database's current size, so a write that needs a new
page fails with SQLITE_FULL ("database or disk is full").
"""

from __future__ import annotations

import errno
import gc
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass

import pytest
import sqlalchemy
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select
from sqlalchemy.engine import make_url

from smartstudy.api.app import create_app
from smartstudy.services.context import AppContext
from smartstudy.services.predictor import PredictionService
from smartstudy.services.training import run_queued_trainings
from smartstudy.store.db import Outage, classify_outage, make_engine, make_session_factory
from smartstudy.store.orm import Job

from .demo_server import free_port
from .web.conftest import Web, make_admin

#: SQLite's default limit; any value this large means "no limit" for these tests.
NO_PAGE_LIMIT = 1073741823


class CuttableProxy:
    """A TCP proxy in front of PostgreSQL that can be cut (the database is gone: open
    connections drop, new ones are refused) and restored, on the same port."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def start(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))
        listener.settimeout(0.05)
        self._stopped = threading.Event()
        threading.Thread(target=self._accept, args=(listener, self._stopped), daemon=True).start()

    def _accept(self, listener: socket.socket, stopped: threading.Event) -> None:
        with listener:
            while not stopped.is_set():
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                client.settimeout(None)
                upstream = socket.create_connection(self.target)
                with self._lock:
                    self._sockets |= {client, upstream}
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with suppress(OSError):
            sink.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        # The listener closes within one accept timeout; wait until the port refuses.
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            except OSError:
                return
            threading.Event().wait(0.02)
        raise AssertionError("the proxy still accepts connections")


@dataclass
class Breakable:
    """An app context on the test database, whose database can be taken away (``cut``: the
    outage ``kind``) and given back (``restore``)."""

    context: AppContext
    kind: Outage
    cut: Callable[[], None]
    restore: Callable[[], None]


class RecordingRunner:
    """A job runner that only notes what it was given (the test runs the jobs itself)."""

    def __init__(self) -> None:
        self.kinds: list[str] = []

    def submit(self, kind: str, fn: object) -> None:
        self.kinds.append(kind)

    def wait_idle(self, timeout: float | None = None) -> bool:
        return True

    def shutdown(self) -> None:
        return None


def _app_context(context: AppContext, engine: sqlalchemy.Engine) -> AppContext:
    return AppContext(
        settings=context.settings,
        engine=engine,
        sessions=make_session_factory(engine),
        predictor=PredictionService(),
        runner=RecordingRunner(),
    )


def _postgres_outage(context: AppContext) -> Iterator[Breakable]:
    url = context.engine.url
    proxy = CuttableProxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.start()
    engine = make_engine(
        url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    )
    try:
        yield Breakable(_app_context(context, engine), Outage.UNREACHABLE, proxy.stop, proxy.start)
    finally:
        engine.dispose()
        proxy.stop()


def _sqlite_outage(context: AppContext) -> Iterator[Breakable]:
    engine = make_engine(context.engine.url.render_as_string(hide_password=False))
    limit = {"pages": NO_PAGE_LIMIT}

    @event.listens_for(engine, "checkout")
    def _page_limit(dbapi_conn, _record, _proxy) -> None:
        # A value below the current size sets the limit to the current size.
        dbapi_conn.execute(f"PRAGMA max_page_count = {limit['pages']}")

    def cut() -> None:
        raw = engine.raw_connection()
        try:
            raw.driver_connection.execute("VACUUM")  # no free pages left inside the file
        finally:
            raw.close()
        limit["pages"] = 1
        _fill_jobs_table(engine)

    def restore() -> None:
        limit["pages"] = NO_PAGE_LIMIT

    try:
        yield Breakable(_app_context(context, engine), Outage.FULL, cut, restore)
    finally:
        engine.dispose()


def _fill_jobs_table(engine: sqlalchemy.Engine) -> None:
    """Add finished jobs, each the size of a queued one, until the next one finds no room."""
    sessions = make_session_factory(engine)
    for _ in range(1000):
        try:
            with sessions.begin() as session:
                session.add(Job(kind="training", status="failed"))
        except sqlalchemy.exc.OperationalError as exc:
            assert classify_outage(exc) is Outage.FULL, exc
            return
    raise AssertionError("the database never filled up")


@pytest.fixture
def outage(context: AppContext) -> Iterator[Breakable]:
    if context.engine.dialect.name == "postgresql":
        yield from _postgres_outage(context)
    else:
        yield from _sqlite_outage(context)


def _queued_jobs(context: AppContext) -> int:
    with context.sessions() as session:
        return session.scalar(select(func.count()).select_from(Job).where(Job.status == "queued"))


def _assert_json_503(response, kind: Outage) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["retry-after"]) > 0
    body = response.json()
    assert body["reason"] == kind and "try again" in body["detail"].lower()


def test_outage_answers_503_and_the_service_recovers(context: AppContext, outage: Breakable):
    make_admin(context)
    app = create_app(context=outage.context)
    with TestClient(app) as client:
        login = {"email": "admin@example.com", "password": "correct horse 1"}
        token = client.post("/v1/auth/login", json=login).json()["access_token"]
        admin = {"Authorization": f"Bearer {token}"}
        web = Web(client)
        web.login("admin@example.com")
        assert web.get("/admin/models").status_code == 200  # also the form's CSRF token
        assert client.get("/readyz").status_code == 200

        outage.cut()
        ready = client.get("/readyz")
        _assert_json_503(ready, outage.kind)
        assert ready.json()["status"] == "unavailable"
        # A training request either stores its job or fails: never 202 with nothing stored.
        _assert_json_503(client.post("/v1/models/train", headers=admin), outage.kind)
        page = web.post("/admin/models/train")
        assert page.status_code == 503
        assert page.headers["content-type"].startswith("text/html")
        assert "Temporarily unavailable" in page.text and "try again" in page.text
        assert int(page.headers["retry-after"]) > 0
        if outage.kind is Outage.UNREACHABLE:
            _assert_json_503(client.get("/v1/models", headers=admin), outage.kind)
            assert web.get("/admin/models").status_code == 503
        assert _queued_jobs(context) == 0
        assert outage.context.runner.kinds == []

        outage.restore()
        assert client.get("/readyz").json() == {"status": "ok"}
        assert client.get("/v1/models", headers=admin).status_code == 200
        assert client.post("/v1/models/train", headers=admin).status_code == 202
        assert _queued_jobs(context) == 1  # stored before the answer
        assert outage.context.runner.kinds == ["training"]
        # The runner's job function runs the stored job.
        assert run_queued_trainings(outage.context) == 1
        assert _queued_jobs(context) == 0
        with context.sessions() as session:
            job = session.scalars(select(Job).where(Job.started_at.is_not(None))).one()
            assert job.finished_at is not None and job.status in ("succeeded", "failed")


def test_training_requests_share_the_job_that_has_not_started(context: AppContext, client, admin):
    """Requests made while a training job waits are served by that job (one row, one run)."""
    context.runner = RecordingRunner()  # the client's app uses this very context
    for _ in range(3):
        assert client.post("/v1/models/train", headers=admin).status_code == 202
    assert _queued_jobs(context) == 1
    assert run_queued_trainings(context) == 1
    assert client.post("/v1/models/train", headers=admin).status_code == 202
    assert _queued_jobs(context) == 1  # the first one ran: a new one waits


def test_readyz_checks_free_disk_space_of_the_data_folder(context: AppContext, client):
    context.settings.data_dir.mkdir(parents=True)
    assert client.get("/readyz").status_code == 200
    context.settings.min_free_disk_mb = 10**9  # more than any disk has
    _assert_json_503(client.get("/readyz"), Outage.FULL)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), Outage.FULL),
        (OSError(errno.EROFS, "Read-only file system"), Outage.READ_ONLY),
        (FileNotFoundError(errno.ENOENT, "No such file"), None),
        (ValueError("a bug"), None),
    ],
)
def test_classify_outage_of_system_errors(exc: BaseException, kind: Outage | None):
    assert classify_outage(exc) is kind


def test_a_closed_port_is_an_unreachable_database():
    url = make_url("postgresql+psycopg://postgres@127.0.0.1/postgres").set(port=free_port())
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        with pytest.raises(sqlalchemy.exc.OperationalError) as caught:
            engine.connect()
        assert classify_outage(caught.value) is Outage.UNREACHABLE
    finally:
        engine.dispose()


def test_readyz_waits_for_the_models_to_warm_up(context: AppContext, monkeypatch):
    """A server process is not ready until its warm-up has loaded the models: a balancer
    sends it no request that would have to load them."""
    release = threading.Event()
    warm_up = context.predictor.warm_up

    def slow_warm_up(sessions) -> None:
        release.wait(10)
        warm_up(sessions)

    monkeypatch.setattr(context.predictor, "warm_up", slow_warm_up)
    with TestClient(create_app(context=context, warm_up=True)) as client:
        r = client.get("/readyz")
        assert (r.status_code, r.json()) == (503, {"status": "warming up"})
        release.set()
        _wait_warm(context)
        assert client.get("/readyz").status_code == 200


def test_a_server_freezes_its_heap_after_the_warm_up(context: AppContext):
    """A serving process hides what is alive after its warm-up (modules, the app, the loaded
    models) from the garbage collector, so that a full collection no longer walks them while
    every request waits; a test app (``freeze`` off) leaves the heap alone."""
    gc.unfreeze()
    try:
        with TestClient(create_app(context=context, warm_up=True)) as client:
            _wait_warm(context)
            assert client.get("/readyz").status_code == 200
            assert gc.get_freeze_count() == 0
        with TestClient(create_app(context=context, warm_up=True, freeze=True)) as client:
            _wait_warm(context)
            deadline = time.monotonic() + 10
            while gc.get_freeze_count() == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert gc.get_freeze_count() > 10_000
            assert client.get("/readyz").status_code == 200
    finally:
        gc.unfreeze()


def _wait_warm(context: AppContext) -> None:
    deadline = time.monotonic() + 10
    while context.predictor.warming_up and time.monotonic() < deadline:
        time.sleep(0.01)
