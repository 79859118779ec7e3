"""`smartstudy serve --workers 2` on PostgreSQL: two API processes answer, their predictions
agree, and /metrics sums both."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from smartstudy.api.processes import MIN_UPTIME_SECONDS, has_reuse_port
from smartstudy.services import accounts, catalogue
from smartstudy.store.db import make_engine, make_session_factory, session_scope
from smartstudy.store.migrate import upgrade
from tests.conftest import _postgres_database
from tests.demo_server import free_port, wait_ready


@pytest.fixture
def postgres_url():
    yield from _postgres_database()


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _age_seconds(pid: int) -> float:
    """How long process ``pid`` has been running (Linux ``/proc``)."""
    started = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return uptime - started / os.sysconf("SC_CLK_TCK")


def _api_processes(pid: int) -> list[int]:
    """The API processes among the children (multiprocessing also starts a resource
    tracker)."""
    out = []
    for child in _children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            out.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_two_processes_serve_consistent_predictions(postgres_url, tmp_path: Path):
    engine = make_engine(postgres_url)
    upgrade(engine)
    with session_scope(make_session_factory(engine)) as session:
        accounts.create_user(session, "student@example.com", "correct horse 1")
        subject = catalogue.create_subject(session, "Mathematics")
        topic_id = str(catalogue.create_topic(session, subject.id, "Calculus").id)
    engine.dispose()

    port = free_port()
    env = {
        **os.environ,
        "SMARTSTUDY_DATA_DIR": str(tmp_path / "data"),
        "SMARTSTUDY_DATABASE_URL": postgres_url,
        "SMARTSTUDY_SECRET_KEY": "workers-test-key-" + "x" * 32,
        # Online learning is what is compared: no training may swap a version in (in one
        # process before the other) while the previews run.
        "SMARTSTUDY_RETRAIN_EVERY": "1000",
    }
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "smartstudy.cli",
                "serve",
                "--workers",
                "2",
                "--port",
                str(port),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, base, log_path, timeout=90)
        # uvicorn's supervisor runs the two API processes as its children.
        assert len(_children(proc.pid)) >= 2, log_path.read_text()

        with httpx.Client(base_url=base, timeout=20) as http:
            token = http.post(
                "/v1/auth/login",
                json={"email": "student@example.com", "password": "correct horse 1"},
            ).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            for k in range(6):
                task = http.post(
                    "/v1/tasks", json={"topic_id": topic_id, "difficulty": "hard"}, headers=auth
                )
                assert task.status_code == 201, task.text
                done = http.post(
                    f"/v1/tasks/{task.json()['id']}/complete",
                    json={"is_correct": k % 2 == 0, "actual_time_seconds": 100 + k},
                    headers=auth,
                )
                assert done.status_code == 200, done.text

            # Whichever process answers, it has learnt every completion once its sync
            # interval (SMARTSTUDY_SYNC_INTERVAL, 0.25 s by default) has passed.
            time.sleep(0.6)

            def preview(_: int) -> tuple[float, float]:
                with httpx.Client(base_url=base, timeout=30) as fresh:
                    r = fresh.post(
                        "/v1/tasks/preview",
                        json={"topic_id": topic_id, "difficulty": "hard"},
                        headers=auth,
                    )
                assert r.status_code == 200, r.text
                body = r.json()
                return round(body["predicted_correct"], 9), round(
                    body["predicted_time_median_s"], 6
                )

            with ThreadPoolExecutor(max_workers=8) as pool:
                seen = set(pool.map(preview, range(48)))
            assert len(seen) == 1, seen

            scraped = http.get("/metrics")
            assert scraped.status_code == 200
            total = 0.0
            for family in text_string_to_metric_families(scraped.text):
                if family.name == "smartstudy_http_request_duration_seconds":
                    for sample in family.samples:
                        if sample.name.endswith("_count") and sample.labels.get("route") == (
                            "/v1/tasks/{task_id}/complete"
                        ):
                            total += sample.value
            # Both processes' counts are summed: every completion is there.
            assert total == 6
        # prometheus-client keeps one file per process in the folder the server was given.
        # Each process listens on its own SO_REUSEPORT socket, and the kernel spreads the 48
        # fresh connections over them by address: both processes answered.
        if has_reuse_port():
            assert len(list(metrics_dir.glob("histogram_*.db"))) >= 2

            # A process that dies is replaced; SIGTERM stops them all within 10 s.
            before = _api_processes(proc.pid)
            assert len(before) == 2
            # One that dies sooner after its start counts as a failed start, which stops
            # the server (on a fast machine the test gets here that soon).
            while _age_seconds(before[0]) < MIN_UPTIME_SECONDS + 0.5:
                time.sleep(0.1)
            os.kill(before[0], signal.SIGKILL)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                now = _api_processes(proc.pid)
                if len(now) == 2 and before[0] not in now:
                    break
                time.sleep(0.5)
            assert len(now) == 2 and before[0] not in now, log_path.read_text()
            wait_ready(proc, base, log_path, timeout=90)
            stop = time.monotonic()
            proc.terminate()
            proc.wait(timeout=20)
            assert time.monotonic() - stop < 10
            assert not any(_alive(pid) for pid in now)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
