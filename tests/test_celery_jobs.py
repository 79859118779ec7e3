"""Jobs across processes: ``SMARTSTUDY_JOBS=celery`` against the machine's Redis and
PostgreSQL (a training asked for through the API runs in a ``smartstudy worker``; without a
worker it waits, queued; a worker killed mid-training leaves it retried, and it succeeds when
a worker starts again), start-up errors of the Celery settings, and ``smartstudy serve``
recovering a dead in-process training at start and stopping promptly on SIGTERM during one.

The subprocesses that must be caught mid-training run the real command with one change made
before it starts: the first model fit signals that it started (a file) and then blocks, like
a fit far longer than the test. Everything else, the retried run included, is the real code.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import exc as sa_exc
from sqlalchemy import select
from typer.testing import CliRunner

from smartstudy.api.app import create_app
from smartstudy.cli import app as cli_app
from smartstudy.config import Settings
from smartstudy.jobs import durable
from smartstudy.services.accounts import create_user
from smartstudy.services.context import AppContext
from smartstudy.store.db import make_engine, make_session_factory, session_scope
from smartstudy.store.migrate import upgrade
from smartstudy.store.orm import Job, ModelVersion
from tests.conftest import IN_CI, _postgres_database

REDIS_URL = os.environ.get("SMARTSTUDY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET = "test-secret-key-" + "x" * 32

#: Run a smartstudy command whose first model fit touches argv[1] and then never returns.
BLOCKED_FIT = """
import pathlib, sys, time
from smartstudy.services.predictor import PredictionService
started = pathlib.Path(sys.argv[1])
def blocked_fit(self, name, data, warm=None):
    started.touch()
    time.sleep(3600)
PredictionService.fit_model = blocked_fit
from smartstudy.cli import main
sys.argv = ["smartstudy", *sys.argv[2:]]
main()
"""


def _redis_url() -> str:
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
        client.close()
    except Exception as exc:
        reason = f"Redis not reachable at {REDIS_URL}: {exc}"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: Redis tests must run)")
        pytest.skip(reason + " (set SMARTSTUDY_TEST_REDIS_URL)")
    return REDIS_URL


@pytest.fixture
def queue() -> Iterator[str]:
    """A queue of this test only on the shared Redis, removed afterwards (with the
    unacknowledged message a killed worker leaves)."""
    import redis

    url = _redis_url()
    name = f"smartstudy-test-{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(match=f"*{name}*"):
            client.delete(key)
        for tag, payload in client.hgetall("unacked").items():
            if name.encode() in payload:
                client.hdel("unacked", tag)
                client.zrem("unacked_index", tag)
    finally:
        client.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A migrated PostgreSQL database that several processes can share."""
    for url in _postgres_database():
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url


def _env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTSTUDY_")}
    env.update({f"SMARTSTUDY_{k.upper()}": v for k, v in settings.items()})
    return env


def _until(what: str, check: Callable[[], bool], procs=(), timeout: float = 60) -> None:
    """Wait for ``check()``; fail with the subprocesses' output if one exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        for proc, log in procs:
            if proc.poll() is not None:
                pytest.fail(f"{what}: process exited {proc.returncode}:\n{log.read_text()}")
        time.sleep(0.1)
    logs = "\n".join(log.read_text() for _proc, log in procs)
    pytest.fail(f"{what}: not within {timeout} s\n{logs}")


def _start(args: list[str], env: dict[str, str], log: Path) -> tuple[subprocess.Popen, Path]:
    with log.open("w") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    return proc, log


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _jobs(context: AppContext) -> list[Job]:
    with context.sessions() as session:
        return list(session.scalars(select(Job).order_by(Job.created_at)))


def test_celery_training_runs_in_a_worker_and_survives_a_killed_worker(
    postgres_url: str, queue: str, tmp_path: Path
):
    settings = dict(
        data_dir=str(tmp_path / "data"),
        database_url=postgres_url,
        secret_key=SECRET,
        jobs="celery",
        redis_url=REDIS_URL,
        job_queue=queue,
    )
    context = AppContext.from_settings(Settings(**settings, auto_migrate=False))
    with session_scope(context.sessions) as session:
        create_user(session, "admin@example.com", "admin password 1", "Admin", role="admin")
    procs = []
    try:
        with TestClient(create_app(context=context)) as client:
            login = client.post(
                "/v1/auth/login",
                json={"email": "admin@example.com", "password": "admin password 1"},
            )
            token = login.json()["access_token"]
            r = client.post("/v1/models/train", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 202, r.text
            # No worker: the API process sent the job and does not run it; it waits, queued.
            time.sleep(1.0)
            (job,) = _jobs(context)
            assert (job.kind, job.status, job.worker, job.attempts) == (
                "training",
                "queued",
                None,
                1,
            )

            env = _env(**settings)
            started = tmp_path / "fit-started"
            first = _start(
                [sys.executable, "-c", BLOCKED_FIT, str(started), "worker"],
                env,
                tmp_path / "worker-1.log",
            )
            procs.append(first)
            _until("the worker starts the training", started.exists, [first])
            (job,) = _jobs(context)
            host = socket.gethostname()
            assert job.status == "running" and job.worker == f"{host}:{first[0].pid}"
            assert job.worker != durable.worker_id()  # not the API (test) process
            # The worker runs at a lower CPU priority than the API (`--nice`, 10 by default),
            # in every thread: the numerical libraries' own threads too.
            for task in Path(f"/proc/{first[0].pid}/task").iterdir():
                stat = (task / "stat").read_text().rsplit(")", 1)[1].split()
                assert int(stat[16]) == min(19, os.nice(0) + 10), f"thread {task.name}"

            first[0].send_signal(signal.SIGKILL)  # killed in the middle of the training
            first[0].wait(10)
            second = _start(
                [sys.executable, "-m", "smartstudy.cli", "worker"], env, tmp_path / "worker-2.log"
            )
            procs.append(second)

            def retried() -> bool:
                return any(j.status == "succeeded" for j in _jobs(context))

            _until("the retried training succeeds", retried, [second])
            dead, retry = _jobs(context)
            assert dead.id == job.id and dead.status == "failed"
            assert dead.error == f"attempt 1: its process {host}:{first[0].pid} is gone"
            assert (retry.status, retry.attempts, retry.retry_of) == ("succeeded", 2, job.id)
            assert retry.worker == f"{host}:{second[0].pid}"
            assert retry.summary["baseline"]["version"] == 1
            with context.sessions() as session:
                assert session.scalar(select(ModelVersion.id).limit(1)) is not None
    finally:
        for proc, _log in procs:
            _stop(proc)
        context.engine.dispose()


def test_serve_recovers_a_dead_training_at_start_and_stops_fast_on_sigterm(tmp_path: Path):
    db = tmp_path / "smartstudy.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    context = AppContext(
        settings=Settings(database_url=f"sqlite:///{db}"),
        engine=engine,
        sessions=make_session_factory(engine),
    )
    dead_pid = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    host = socket.gethostname()
    with session_scope(context.sessions) as session:
        session.add(Job(kind="training", status="running", worker=f"{host}:{dead_pid}"))
    started = tmp_path / "fit-started"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = _env(data_dir=str(tmp_path / "data"), database_url=f"sqlite:///{db}", secret_key=SECRET)
    serve = _start(
        [sys.executable, "-c", BLOCKED_FIT, str(started), "serve", "--port", str(port)],
        env,
        tmp_path / "serve.log",
    )
    try:
        # At start the dead run is failed and queued again, and the retry starts training.
        _until("serve retries the dead training", started.exists, [serve])
        _until("serve answers", lambda: _answers(f"http://127.0.0.1:{port}/healthz"), [serve])
        dead, retry = _jobs(context)
        assert dead.status == "failed" and dead.error.endswith(f"{host}:{dead_pid} is gone")
        assert (retry.status, retry.attempts, retry.worker) == (
            "running",
            2,
            f"{host}:{serve[0].pid}",
        )
        t0 = time.monotonic()
        serve[0].send_signal(signal.SIGTERM)
        try:
            serve[0].wait(10)  # the acceptance bound; it takes about 3 s
        except subprocess.TimeoutExpired:
            pytest.fail(f"serve still running 10 s after SIGTERM:\n{serve[1].read_text()}")
        stopped = time.monotonic() - t0
        # uvicorn ends by re-raising the signal it caught, after a clean shutdown.
        assert serve[0].returncode in (0, -signal.SIGTERM), serve[1].read_text()
        assert "Application shutdown complete" in serve[1].read_text()
        jobs = _jobs(context)
        assert [(j.status, j.attempts) for j in jobs] == [
            ("failed", 1),
            ("failed", 2),
            ("queued", 3),
        ]
        assert jobs[1].error == "attempt 2: interrupted by shutdown", stopped
        assert jobs[2].retry_of == jobs[1].id
    finally:
        _stop(serve[0])
        engine.dispose()


@pytest.mark.parametrize(
    ("redis_url", "message"),
    [
        (None, "error: SMARTSTUDY_JOBS=celery needs SMARTSTUDY_REDIS_URL"),
        ("http://127.0.0.1:6379", "error: SMARTSTUDY_REDIS_URL must be a redis:// or rediss://"),
        (
            "redis://127.0.0.1:1/0",
            "error: cannot reach Redis at redis://127.0.0.1:1/0 (SMARTSTUDY_REDIS_URL): ",
        ),
    ],
)
@pytest.mark.parametrize("command", [["worker"], ["serve", "--port", "1"]])
def test_celery_settings_are_checked_at_start(
    command, redis_url, message, tmp_path: Path, monkeypatch
):
    for name in [k for k in os.environ if k.startswith("SMARTSTUDY_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SMARTSTUDY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SMARTSTUDY_JOBS", "celery")
    if redis_url:
        monkeypatch.setenv("SMARTSTUDY_REDIS_URL", redis_url)
    result = CliRunner().invoke(cli_app, command)
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr


def test_worker_needs_celery(tmp_path: Path, monkeypatch):
    for name in [k for k in os.environ if k.startswith("SMARTSTUDY_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SMARTSTUDY_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(cli_app, ["worker"])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: `smartstudy worker` needs SMARTSTUDY_JOBS=celery (and SMARTSTUDY_REDIS_URL)"
    )


def test_the_worker_task_retries_outages_with_backoff_but_not_bugs(monkeypatch, tmp_path: Path):
    """The Celery task itself, run eagerly (no broker): an outage is retried with a growing
    delay, a bug is not."""
    from smartstudy.jobs import JOBS, celery_app

    app = celery_app.make_celery(
        Settings(data_dir=tmp_path, jobs="celery", redis_url="redis://127.0.0.1:1/0")
    )
    app.conf.task_always_eager = True
    monkeypatch.setattr(celery_app, "_worker_context", object())
    delays: list[int] = []
    real_retry = app.tasks[celery_app.TASK_NAME].retry

    def retry(*args, **kwargs):
        delays.append(kwargs["countdown"])
        return real_retry(*args, **kwargs)

    monkeypatch.setattr(app.tasks[celery_app.TASK_NAME], "retry", retry)
    calls: list[str] = []

    def flaky(_context, fail_times: int, error: str) -> None:
        calls.append(error)
        if len(calls) <= fail_times:
            if error == "outage":
                orig = sqlite3.OperationalError("database is locked")
                raise sa_exc.OperationalError("UPDATE jobs", None, orig)
            raise ValueError("a bug")

    monkeypatch.setitem(JOBS, "flaky", flaky)
    result = app.tasks[celery_app.TASK_NAME].apply(
        args=["flaky", {"fail_times": 2, "error": "outage"}]
    )
    assert result.successful() and len(calls) == 3 and delays == [5, 10]
    calls.clear()
    result = app.tasks[celery_app.TASK_NAME].apply(
        args=["flaky", {"fail_times": 1, "error": "bug"}]
    )
    assert result.failed() and isinstance(result.result, ValueError) and len(calls) == 1
