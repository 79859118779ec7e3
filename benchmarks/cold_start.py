"""Issue 11's line 4 on a 100,000-task cohort: the first prediction after start and after a new
version becomes active, the memory of the API process, and how fast ``serve`` stops on
SIGTERM while it trains.

What it does, in order:

1. creates a scratch database on the PostgreSQL server of ``--postgres-url``, filled like
   ``benchmarks/load.py`` (``smartstudy simulate cohort``, then ``smartstudy train``; or a copy
   of ``--template DB``);
2. starts ``smartstudy serve`` (one process, jobs in process) and times its start until
   ``/readyz`` answers 200; signs in as a cohort student and times the first prediction
   (``POST /v1/tasks/preview``), the first task created (``POST /v1/tasks``, which asks every
   family), then ``--previews`` more previews;
3. runs ``smartstudy train`` in another process, which refits every family and activates new
   versions, while one client asks for a preview every 20 ms; it prints the slowest preview
   while that training ran, when the server first answered with a new version (relative to
   the end of the training process: the versions are activated before it ends), that
   answer's latency and the slowest one in the ``--after`` seconds after it;
4. completes tasks until the server queues a training of its own, sends SIGTERM while that
   training runs and times the exit;
5. prints the API process's peak memory (VmHWM) and whether it imported PyTorch.

    .venv/bin/python benchmarks/cold_start.py [--students 500] [--tasks 200] [--template DB]
        [--previews 50] [--after 10] [--json]

Issue 11's targets: with 100,000 completed tasks the first prediction after start and after a
new version is activated under 200 ms; each API process under 400 MB; ``serve`` stops within
10 s of SIGTERM, even during a training.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from load import PASSWORD, _cli, _free_port, _peak_rss_mb, _percentiles, _wait_ready
from scratch_db import add_database_options, scratch_database


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 1)


class Previews(threading.Thread):
    """One client asking for the same preview every ``every`` seconds until stopped; each
    answer's (wall-clock start, latency, model name and version)."""

    def __init__(self, http: httpx.Client, body: dict, every: float = 0.02):
        super().__init__(daemon=True)
        self.http, self.body, self.every = http, body, every
        self.stop = threading.Event()
        self.answers: list[tuple[float, float, str]] = []
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            wall, started = time.time(), time.perf_counter()
            answer = self.http.post("/v1/tasks/preview", json=self.body)
            latency = time.perf_counter() - started
            if answer.status_code != 200:
                self.errors.append(f"{answer.status_code} {answer.text[:120]}")
            else:
                data = answer.json()
                self.answers.append(
                    (wall, latency, f"{data['model_name']} v{data['model_version']}")
                )
            self.stop.wait(self.every)


def _imports_torch(pid: int) -> bool:
    """Whether the process has PyTorch's library mapped (it imported torch)."""
    try:
        return "libtorch" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def run(args: argparse.Namespace) -> dict[str, Any]:
    with scratch_database(args.postgres_url, "smartstudy_cold", args.template) as url:
        return _run(args, url)


def _run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="smartstudy-cold-"))
    env = {
        **os.environ,
        "SMARTSTUDY_DATA_DIR": str(folder / "data"),
        "SMARTSTUDY_DATABASE_URL": url,
        "SMARTSTUDY_SECRET_KEY": "cold-start-benchmark-" + uuid.uuid4().hex,
        "SMARTSTUDY_JOBS": "inprocess",
        # Trainings of the server's own only where step 4 asks for one.
        "SMARTSTUDY_RETRAIN_EVERY": str(args.retrain_every),
        "SMARTSTUDY_TRAINING_PAUSE": "0",
    }
    if not args.template:
        _cli(
            *("simulate", "cohort", "--students", str(args.students)),
            *("--tasks", str(args.tasks), "--password", PASSWORD),
            env=env,
        )
        _cli("train", env=env)
    engine = create_engine(url)
    with engine.connect() as conn:
        completed = conn.execute(
            text("SELECT count(*) FROM practice_tasks WHERE completed_at IS NOT NULL")
        ).scalar_one()
        topic = str(conn.execute(text("SELECT id FROM topics ORDER BY name LIMIT 1")).scalar_one())
        email = conn.execute(
            text("SELECT email FROM users WHERE email LIKE 'cohort-%' ORDER BY email LIMIT 1")
        ).scalar_one()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = folder / "serve.log"
    started = time.perf_counter()
    with log.open("w") as out:
        serve = subprocess.Popen(
            [sys.executable, "-m", "smartstudy.cli", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    result: dict[str, Any] = {"completed_tasks": int(completed)}
    try:
        _wait_ready(base, serve, log)
        result["ready_after_s"] = round(time.perf_counter() - started, 2)
        http = httpx.Client(base_url=base, timeout=30)
        token = http.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
        token.raise_for_status()
        http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        body = {"topic_id": topic, "difficulty": "medium"}

        t = time.perf_counter()
        first = http.post("/v1/tasks/preview", json=body)
        result["first_preview_ms"] = _ms(time.perf_counter() - t)
        first.raise_for_status()
        t = time.perf_counter()
        created = http.post("/v1/tasks", json=body)
        result["first_task_created_ms"] = _ms(time.perf_counter() - t)
        created.raise_for_status()
        times = []
        for _ in range(args.previews):
            t = time.perf_counter()
            http.post("/v1/tasks/preview", json=body).raise_for_status()
            times.append(time.perf_counter() - t)
        result["previews_ms"] = _percentiles(times)

        # A new version of every family, activated by another process.
        before = first.json()
        watcher = Previews(http, body)
        watcher.start()
        train_started = time.time()
        _cli("train", env=env)
        train_ended = time.time()
        deadline = time.monotonic() + 120
        swapped_at = None
        while time.monotonic() < deadline:
            # The first answer from another version than the first one's, whenever it came.
            swapped_at = next(
                (
                    wall
                    for wall, _, version in list(watcher.answers)
                    if version != watcher.answers[0][2]
                ),
                None,
            )
            if swapped_at is not None and time.time() >= swapped_at + args.after:
                break
            time.sleep(0.1)
        watcher.stop.set()
        watcher.join()
        during = [lat for wall, lat, _ in watcher.answers if train_started <= wall < train_ended]
        result["new_version"] = {
            "served_before": f"{before['model_name']} v{before['model_version']}",
            "train_seconds": round(train_ended - train_started, 1),
            "previews_while_training_ms": _percentiles(during),
            "errors": watcher.errors[:5],
        }
        if swapped_at is not None:
            after = [
                (wall, lat, version)
                for wall, lat, version in watcher.answers
                if swapped_at <= wall < swapped_at + args.after
            ]
            result["new_version"].update(
                served_after=after[0][2],
                # Negative: the new version answered before the training process ended.
                first_answer_after_training_s=round(swapped_at - train_ended, 2),
                first_prediction_of_new_version_ms=_ms(after[0][1]),
                previews_after_swap_ms=_percentiles([lat for _, lat, _ in after]),
            )

        # SIGTERM while the server trains: complete tasks until one queues a training.
        with engine.connect() as conn:
            queued_before = conn.execute(
                text("SELECT count(*) FROM jobs WHERE kind = 'training'")
            ).scalar_one()
        for _ in range(args.retrain_every):
            task = http.post("/v1/tasks", json=body).json()
            done = http.post(
                f"/v1/tasks/{task['id']}/complete",
                json={"is_correct": True, "actual_time_seconds": 90.0},
            )
            done.raise_for_status()
        running_since = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                running = conn.execute(
                    text("SELECT count(*) FROM jobs WHERE kind = 'training' AND status = 'running'")
                ).scalar_one()
                total = conn.execute(
                    text("SELECT count(*) FROM jobs WHERE kind = 'training'")
                ).scalar_one()
            if running and total > queued_before:
                running_since = time.perf_counter()
                break
            time.sleep(0.05)
        result["api_process"] = {
            "peak_memory_mb": round(_peak_rss_mb(serve.pid) or 0.0, 1),
            "imported_torch": _imports_torch(serve.pid),
        }
        http.close()
        if running_since is None:
            result["sigterm"] = {"error": "no training of the server's own started"}
        else:
            time.sleep(0.5)  # well into the training
            with engine.connect() as conn:
                still = conn.execute(
                    text("SELECT count(*) FROM jobs WHERE kind = 'training' AND status = 'running'")
                ).scalar_one()
            sent = time.perf_counter()
            serve.send_signal(signal.SIGTERM)
            try:
                serve.wait(timeout=60)
                result["sigterm"] = {
                    "training_running_when_sent": bool(still),
                    "training_ran_s_before_it": round(sent - running_since, 2),
                    "exited_after_s": round(time.perf_counter() - sent, 2),
                    "exit_code": serve.returncode,
                }
            except subprocess.TimeoutExpired:
                result["sigterm"] = {"exited_after_s": None, "error": "still running after 60 s"}
        with engine.connect() as conn:
            # The newest two: the interrupted training and its retry, queued again.
            result["sigterm"]["training_jobs_after"] = [
                f"attempt {attempt}: {status}" + (f" ({error})" if error else "")
                for attempt, status, error in conn.execute(
                    text(
                        "SELECT attempts, status, error FROM jobs WHERE kind = 'training' "
                        "ORDER BY created_at DESC LIMIT 2"
                    )
                )
            ]
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
        engine.dispose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_database_options(parser)
    parser.add_argument("--previews", type=int, default=50)
    parser.add_argument("--after", type=float, default=10.0, help="seconds watched after a swap")
    parser.add_argument("--retrain-every", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['completed_tasks']:,} completed tasks; ready after {result['ready_after_s']} s")
    print(
        f"first prediction after start: {result['first_preview_ms']} ms (preview); first task "
        f"created: {result['first_task_created_ms']} ms; then previews p50 "
        f"{result['previews_ms']['p50']} ms, max {result['previews_ms']['max']} ms"
    )
    new = result["new_version"]
    print(
        f"`smartstudy train` in another process: {new['train_seconds']} s; previews while it "
        f"ran p50 {new['previews_while_training_ms']['p50']} ms, max "
        f"{new['previews_while_training_ms']['max']} ms"
    )
    if "served_after" in new:
        print(
            f"new version first served {new['first_answer_after_training_s']} s after the "
            f"training process ended, negative: before ({new['served_before']} -> "
            f"{new['served_after']}); its first prediction "
            f"{new['first_prediction_of_new_version_ms']} ms; previews in the {args.after:g} s "
            f"after: p50 {new['previews_after_swap_ms']['p50']} ms, max "
            f"{new['previews_after_swap_ms']['max']} ms"
        )
    else:
        print(f"no new version served within 120 s of the training (errors: {new['errors']})")
    api = result["api_process"]
    print(
        f"API process peak memory {api['peak_memory_mb']} MB; "
        f"PyTorch imported: {api['imported_torch']}"
    )
    term = result["sigterm"]
    if "training_ran_s_before_it" in term:
        during = "" if term["training_running_when_sent"] else " (it had ended before the signal)"
        print(
            f"SIGTERM {term['training_ran_s_before_it']} s into a training{during}: exited after "
            f"{term['exited_after_s']} s (code {term['exit_code']}); newest training jobs: "
            f"{'; '.join(term['training_jobs_after'])}"
        )
    else:
        print(f"SIGTERM: {term}")


if __name__ == "__main__":
    main()
