"""The API processes of `serve --workers N` share a table of their requests in flight, and a
process busier than another answers with `Connection: close` so that its client reconnects
(``smartstudy.api.balancing``)."""

from __future__ import annotations

import multiprocessing

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from smartstudy.api import balancing
from smartstudy.api.balancing import SLACK, LoadTable
from smartstudy.store.db import make_engine
from smartstudy.store.migrate import upgrade


def _table(*loads: int, index: int = 0) -> LoadTable:
    table = LoadTable.create(len(loads)).attach(index)
    for k, load in enumerate(loads):
        table.slots[k] = load
    return table


def test_a_process_is_overloaded_only_beyond_the_slack_over_the_least_busy():
    assert not _table(SLACK, 0).overloaded()
    assert _table(SLACK + 1, 0).overloaded()
    # Against the least busy of the others, not the average.
    assert _table(5, 9, 2).overloaded()
    assert not _table(5, 9, 4).overloaded()
    # A busier process is never asked to shed toward a process busier still.
    assert not _table(0, 9, index=0).overloaded()
    assert _table(0, 9, index=1).overloaded()
    # With many requests in flight the allowance grows to an eighth of the least busy.
    assert not _table(110, 100).overloaded()
    assert _table(113, 100).overloaded()
    # One process alone has nobody to shed to.
    assert not _table(50).overloaded()


def test_attach_starts_at_zero_and_refuses_a_slot_outside_the_table():
    shared = LoadTable.create(2)
    shared.slots[1] = 7  # left by a process that ended
    assert shared.attach(1).slots[1] == 0
    with pytest.raises(ValueError, match="outside a table of 2"):
        shared.attach(2)
    with pytest.raises(RuntimeError, match="not attached"):
        shared.enter()


def _shed_count() -> float:
    return REGISTRY.get_sample_value("smartstudy_connections_shed_total") or 0.0


def _app(table: LoadTable, seen: list[int]) -> FastAPI:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict:
        seen.append(table.slots[table.index])  # this request counts while it runs
        return {"ok": True}

    @app.get("/boom")
    async def boom() -> dict:
        raise RuntimeError("a bug")

    balancing.install(app, table)
    return app


def test_an_overloaded_process_asks_its_client_to_reconnect():
    # This process already has 3 other requests in flight, the other process none.
    table = _table(3, 0)
    seen: list[int] = []
    before = _shed_count()
    with TestClient(_app(table, seen)) as client:
        answer = client.get("/ping")
    assert answer.status_code == 200 and answer.json() == {"ok": True}
    assert answer.headers["connection"] == "close"
    assert seen == [4]
    assert table.slots[0] == 3  # counted while in flight, and no longer
    assert _shed_count() == before + 1


def test_a_balanced_process_keeps_its_connections():
    table = _table(3, 2)
    seen: list[int] = []
    before = _shed_count()
    with TestClient(_app(table, seen)) as client:
        answer = client.get("/ping")
    assert answer.status_code == 200
    assert "connection" not in answer.headers
    assert _shed_count() == before


def test_a_request_that_fails_still_leaves_the_count():
    table = _table(0, 0)
    with TestClient(_app(table, []), raise_server_exceptions=False) as client:
        assert client.get("/boom").status_code == 500
    assert table.slots[0] == 0


def _enter_from_another_process(table: LoadTable, index: int) -> None:
    mine = table.attach(index)
    mine.enter()
    mine.enter()


def test_the_table_is_shared_with_spawned_processes():
    """``serve --workers N`` spawns its API processes: each writes its own slot, and every
    process reads them all."""
    context = multiprocessing.get_context("spawn")
    table = LoadTable.create(2, context)
    child = context.Process(target=_enter_from_another_process, args=(table, 1))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    parent = table.attach(0)
    assert list(parent.slots) == [0, 2]
    assert not parent.overloaded()
    assert table.attach(1).slots[1] == 0  # a successor in that slot starts afresh


def test_a_serving_process_app_is_balanced_when_it_has_a_table(tmp_path, monkeypatch):
    """What ``api.processes`` starts: the app of a process that was given a slot counts its
    requests there and sheds when busier than another."""
    from smartstudy.api.app import serving_process_app

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)  # the parent of the processes migrates
    engine.dispose()
    monkeypatch.setenv("SMARTSTUDY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SMARTSTUDY_DATABASE_URL", url)
    monkeypatch.setenv("SMARTSTUDY_SECRET_KEY", "balancing-test-key-" + "x" * 32)
    table = _table(5, 0, index=1)
    monkeypatch.setattr(balancing, "_this_process", table)
    app = serving_process_app()
    with TestClient(app) as client:
        answer = client.get("/healthz")
        assert answer.status_code == 200
        assert "connection" not in answer.headers  # process 1 is the idle one
        table.slots[0], table.slots[1] = 0, 5
        assert client.get("/healthz").headers["connection"] == "close"
    assert table.slots[1] == 5
    monkeypatch.setattr(balancing, "_this_process", None)
    with TestClient(serving_process_app()) as client:  # one process alone: no balancer
        table.slots[0] = 0
        assert "connection" not in client.get("/healthz").headers
