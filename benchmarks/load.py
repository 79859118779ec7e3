"""Load benchmark of the production set-up (issue 11): API processes, a Celery worker,
PostgreSQL and Redis, a preloaded cohort, and many clients creating and completing tasks while
trainings run.

What it does, in order:

1. creates a scratch database on the PostgreSQL server of ``--postgres-url`` and fills it with
   ``smartstudy simulate cohort --students S --tasks T`` (500 × 200 = 100,000 completed tasks
   by default), then ``smartstudy train`` so every family has a version;
2. starts ``smartstudy worker`` and ``smartstudy serve --workers P`` with
   ``SMARTSTUDY_JOBS=celery`` on the Redis of ``--redis-url`` (a queue name of its own), and
   the server's own training cadence (a training every ``--retrain-every`` completions);
3. runs ``--clients`` threads: each signs in as a cohort student; once all have, each loops
   "create a task (its prediction is stored), complete it" for ``--seconds``;
4. prints throughput (completions per second), latency p50 / p99 / max of every request,
   the lowest and highest median latency of a client (equal when the API processes share
   the clients evenly), p50 and p99 of the requests that started while a training ran and of
   the others, errors, the trainings that finished during the run, the CPU time
   each part took (API processes, worker, PostgreSQL, the clients), and the peak memory
   (VmHWM) of each process; ``--json`` prints the same as JSON. The scratch database is
   dropped at the end.

    .venv/bin/python benchmarks/load.py [--students 500] [--tasks 200] [--clients 32]
        [--seconds 60] [--processes 2] [--retrain-every 5] [--template DB]
        [--worker-cpu-quota 0.3] [--json]

``--worker-cpu-quota F`` runs the worker in a cgroup limited to F of one core, as the
deployment guide's ``CPUQuota=30%`` does for its systemd unit (README, "Running in
production"): on the 2-core virtual machine any CPU the worker takes comes out of the
requests, whatever its scheduling priority, and a quota spreads a training's CPU thinner.

Issue 11's targets: p99 under 250 ms and no errors while at least two trainings complete, and
at least 100 completions/s in total on a 2-core machine. The clients run on the same machine
and take their share of its cores.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import create_engine, text

from scratch_db import add_database_options, scratch_database

PASSWORD = "load benchmark password"
DIFFICULTIES = ("easy", "medium", "hard")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "smartstudy.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )


def _peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU time of a process so far (0 if it is gone); ``children``: with
    that of its children that have exited and been waited for."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def _postgres_cpu_seconds() -> float:
    """CPU time of every PostgreSQL server process on this machine: those running, and
    through the server's own count of its children's time, the backends that have exited
    (a connection closed by a client's pool takes its backend's time with it)."""
    out = subprocess.run(["pgrep", "-x", "postgres"], capture_output=True, text=True).stdout
    return sum(_cpu_seconds(int(p), children=True) for p in out.split())


def _cpu_snapshot(serve: int, worker: int) -> dict[str, float]:
    """CPU seconds so far of the API processes, the worker, PostgreSQL and the clients."""
    api = [p for p in _children(serve) if not _is_resource_tracker(p)]
    return {
        "API processes": sum(_cpu_seconds(p) for p in [serve, *api]),
        "worker": sum(_cpu_seconds(p) for p in [worker, *_children(worker)]),
        "PostgreSQL": _postgres_cpu_seconds(),
        "clients (this process)": time.process_time(),
    }


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _is_resource_tracker(pid: int) -> bool:
    """multiprocessing's resource tracker, a helper child of ``serve --workers``."""
    try:
        return b"resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


class CpuQuota:
    """A CPU quota for one process and the threads and children it starts later: a cgroup
    with ``fraction`` of one core (cgroup v2 ``cpu.max``, or v1 ``cpu.cfs_quota_us``), as
    systemd's ``CPUQuota=`` sets for a service. Needs the right to create cgroups (root, or
    a delegated subtree); ``CpuQuota.unavailable()`` says why it cannot be made."""

    PERIOD_US = 100_000

    def __init__(self, fraction: float):
        self.fraction = fraction
        self.path: Path | None = None

    @staticmethod
    def _root() -> tuple[Path, str] | None:
        v2 = Path("/sys/fs/cgroup")
        if (v2 / "cgroup.controllers").exists() and "cpu" in (
            v2 / "cgroup.controllers"
        ).read_text().split():
            return v2, "v2"
        for v1 in (Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup/cpu,cpuacct")):
            if (v1 / "cpu.cfs_quota_us").exists():
                return v1, "v1"
        return None

    @classmethod
    def unavailable(cls) -> str | None:
        root = cls._root()
        if root is None:
            return "no cgroup CPU controller is mounted"
        if not os.access(root[0], os.W_OK):
            return f"{root[0]} is not writable (run as root, or give a delegated cgroup)"
        return None

    def apply(self, pid: int) -> None:
        root = self._root()
        if root is None:
            raise RuntimeError("no cgroup CPU controller is mounted")
        base, version = root
        self.path = base / f"smartstudy-load-{uuid.uuid4().hex[:8]}"
        self.path.mkdir()
        quota = max(1000, int(self.fraction * self.PERIOD_US))
        if version == "v2":
            enabled = (base / "cgroup.subtree_control").read_text().split()
            if "cpu" not in enabled:
                (base / "cgroup.subtree_control").write_text("+cpu")
            (self.path / "cpu.max").write_text(f"{quota} {self.PERIOD_US}")
        else:
            (self.path / "cpu.cfs_period_us").write_text(str(self.PERIOD_US))
            (self.path / "cpu.cfs_quota_us").write_text(str(quota))
        (self.path / "cgroup.procs").write_text(str(pid))

    def remove(self) -> None:
        """Remove the cgroup once the processes in it have gone (a few seconds at most)."""
        if self.path is None:
            return
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:  # busy: a process in it has not been reaped yet
                time.sleep(0.1)


def _wait_ready(base: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    """Until /readyz answers 200 (models warmed up) ten times in a row: each probe is a new
    connection, which the kernel hands to any of the API processes."""
    deadline = time.monotonic() + timeout
    in_a_row = 0
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited:\n{log.read_text()}")
        try:
            ready = httpx.get(f"{base}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            ready = False
        in_a_row = in_a_row + 1 if ready else 0
        if in_a_row >= 10:
            return
        time.sleep(0.1 if ready else 0.5)
    raise RuntimeError(f"server not ready after {timeout} s:\n{log.read_text()}")


class Client(threading.Thread):
    """One simulated student: create a task, complete it, again, until ``stop``.

    It speaks HTTP/1.1 over one keep-alive connection with the standard library's
    ``http.client``, which costs the machine's shared cores about half the CPU per request
    of a general-purpose client."""

    def __init__(
        self,
        base: str,
        email: str,
        topics: list[str],
        events: tuple[threading.Event, threading.Event],
        seed: int,
    ):
        super().__init__(daemon=True)
        self.base, self.email, self.topics = base, email, topics
        self.go, self.stop = events  # start the timed loop; end it
        self.signed_in = threading.Event()
        self.rng = random.Random(seed)
        self.latencies: list[float] = []
        self.starts: list[float] = []  # wall-clock start of each timed request
        self.by_route: dict[str, list[float]] = {"create": [], "complete": []}
        self.errors: list[str] = []
        self.completions = 0
        self.headers = {"Content-Type": "application/json"}
        self.http: http.client.HTTPConnection | None = None

    def _call(self, method: str, url: str, body: dict, route: str | None = None) -> Any | None:
        """The JSON answer, or None after recording an error."""
        started, wall = time.perf_counter(), time.time()
        try:
            if self.http is None:
                host, port = self.base.removeprefix("http://").split(":")
                self.http = http.client.HTTPConnection(host, int(port), timeout=30)
            self.http.request(method, url, body=json.dumps(body), headers=self.headers)
            answer = self.http.getresponse()
            data = answer.read()
        except (OSError, http.client.HTTPException) as exc:
            self.errors.append(f"{method} {url}: {type(exc).__name__}")
            if self.http is not None:
                self.http.close()
            self.http = None
            return None
        if route is not None:
            self.latencies.append(time.perf_counter() - started)
            self.starts.append(wall)
            self.by_route[route].append(self.latencies[-1])
        if answer.status >= 400:
            self.errors.append(f"{method} {url}: {answer.status} {data[:120]!r}")
            return None
        return json.loads(data)

    def run(self) -> None:
        login = {"email": self.email, "password": PASSWORD}
        token = self._call("POST", "/v1/auth/login", login)
        # The server closes a keep-alive connection after 5 s idle, and waiting for every
        # client to sign in can take longer: the timed loop starts on a new connection.
        if self.http is not None:
            self.http.close()
            self.http = None
        self.signed_in.set()
        if token is None:
            return
        self.headers["Authorization"] = f"Bearer {token['access_token']}"
        self.go.wait()
        while not self.stop.is_set():
            body = {
                "topic_id": self.rng.choice(self.topics),
                "difficulty": self.rng.choice(DIFFICULTIES),
            }
            task = self._call("POST", "/v1/tasks", body, "create")
            if task is None:
                continue
            outcome = {
                "is_correct": self.rng.random() < 0.6,
                "actual_time_seconds": round(self.rng.lognormvariate(4.5, 0.6), 1),
            }
            done = self._call("POST", f"/v1/tasks/{task['id']}/complete", outcome, "complete")
            if done is not None:
                self.completions += 1
        if self.http is not None:
            self.http.close()


def _training_kind(summary: dict[str, Any] | None) -> str:
    """How a training read the history ("full" or "new rows only") and the families it
    refitted (those whose entry names a new version), from its job summary."""
    summary = summary or {}
    refitted = [
        name for name, entry in summary.items() if isinstance(entry, dict) and "version" in entry
    ]
    return f"{summary.get('read', '?')} read, refitted: {', '.join(refitted) or 'none'}"


def _percentiles(seconds: list[float]) -> dict[str, float | None]:
    """p50, p99 and max of latencies given in seconds, in milliseconds (None if empty)."""
    ms = np.asarray(seconds) * 1000
    if not len(ms):
        return {"p50": None, "p99": None, "max": None}
    return {
        "p50": round(float(np.percentile(ms, 50)), 1),
        "p99": round(float(np.percentile(ms, 99)), 1),
        "max": round(float(ms.max()), 1),
    }


def _by_training(
    clients: list[Client], spans: list[tuple[float, float]], t0: float, elapsed: float
) -> dict[str, Any]:
    """Latency percentiles of the requests that started while a training ran and of the
    others, and the share of the run during which one ran."""
    starts = np.array([x for c in clients for x in c.starts])
    latencies = np.array([x for c in clients for x in c.latencies])
    during = np.zeros(len(starts), dtype=bool)
    covered = 0.0
    for begin, end in spans:
        during |= (starts >= begin) & (starts <= end)
        covered += max(0.0, min(end, t0 + elapsed) - max(begin, t0))
    return {
        "training_share_of_run": round(covered / elapsed, 2) if elapsed else None,
        "latency_ms_while_training": _percentiles(latencies[during].tolist()),
        "latency_ms_otherwise": _percentiles(latencies[~during].tolist()),
    }


def _spread(per_client: list[list[float]]) -> dict[str, float | None]:
    """The lowest and highest of the clients' median latencies (seconds in, ms out)."""
    medians = [float(np.median(x)) * 1000 for x in per_client if x]
    if not medians:
        return {"min": None, "max": None}
    return {"min": round(min(medians), 1), "max": round(max(medians), 1)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    with scratch_database(args.postgres_url, "smartstudy_load", args.template) as url:
        return _run(args, url)


def _run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    procs: list[subprocess.Popen] = []
    quota = None if args.worker_cpu_quota is None else CpuQuota(args.worker_cpu_quota)
    folder = Path(tempfile.mkdtemp(prefix="smartstudy-load-"))
    try:
        env = {
            **os.environ,
            "SMARTSTUDY_DATA_DIR": str(folder / "data"),
            "SMARTSTUDY_DATABASE_URL": url,
            "SMARTSTUDY_SECRET_KEY": "load-benchmark-" + uuid.uuid4().hex,
            "SMARTSTUDY_RETRAIN_EVERY": str(args.retrain_every),
        }
        preload = first_training = 0.0
        if not args.template:
            started = time.perf_counter()
            _cli(
                *("simulate", "cohort", "--students", str(args.students)),
                *("--tasks", str(args.tasks), "--password", PASSWORD),
                env=env,
            )
            preload = time.perf_counter() - started
            started = time.perf_counter()
            _cli("train", env=env)
            first_training = time.perf_counter() - started

        env.update(
            SMARTSTUDY_JOBS="celery",
            SMARTSTUDY_REDIS_URL=args.redis_url,
            SMARTSTUDY_JOB_QUEUE=f"load-{uuid.uuid4().hex[:8]}",
        )
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        serve_log, worker_log = folder / "serve.log", folder / "worker.log"
        with serve_log.open("w") as out:
            serve = subprocess.Popen(
                [
                    *(sys.executable, "-m", "smartstudy.cli", "serve"),
                    *("--port", str(port), "--workers", str(args.processes)),
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        procs.append(serve)
        with worker_log.open("w") as out:
            worker = subprocess.Popen(
                [sys.executable, "-m", "smartstudy.cli", "worker"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        procs.append(worker)
        if quota is not None:
            quota.apply(worker.pid)
        _wait_ready(base, serve, serve_log)
        engine = create_engine(url)
        with engine.connect() as conn:
            topics = [str(t) for (t,) in conn.execute(text("SELECT id FROM topics"))]
            emails = [
                e
                for (e,) in conn.execute(
                    text("SELECT email FROM users WHERE email LIKE 'cohort-%' ORDER BY email")
                )
            ]
        go, stop = threading.Event(), threading.Event()
        clients = [
            Client(base, emails[k % len(emails)], topics, (go, stop), seed=k)
            for k in range(args.clients)
        ]
        # Every client signs in first (Argon2id hashing, about 0.1 s each, at most two at
        # once per process); the timed run starts once all have.
        for c in clients:
            c.start()
        for c in clients:
            c.signed_in.wait(timeout=120)
        t0 = time.time()
        cpu_before = _cpu_snapshot(serve.pid, worker.pid)
        go.set()
        time.sleep(args.seconds)
        stop.set()
        for c in clients:
            c.join(timeout=60)
        elapsed = time.time() - t0
        cpu_after = _cpu_snapshot(serve.pid, worker.pid)
        with engine.connect() as conn:
            # The trainings that finished during the run: how each read the history and
            # which families it refitted.
            summaries = conn.execute(
                text(
                    "SELECT summary FROM jobs WHERE kind = 'training' AND status = 'succeeded' "
                    "AND finished_at >= :t0 ORDER BY finished_at"
                ),
                {"t0": time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(t0))},
            ).scalars()
            training_kinds = [_training_kind(summary) for summary in summaries]
            # When each training ran (epoch seconds), to split the latencies by it.
            spans = conn.execute(
                text(
                    "SELECT extract(epoch FROM started_at), "
                    "extract(epoch FROM coalesce(finished_at, now())) FROM jobs "
                    "WHERE kind = 'training' AND started_at IS NOT NULL "
                    "AND coalesce(finished_at, now()) >= to_timestamp(:t0)"
                ),
                {"t0": t0},
            ).all()
            queued = conn.execute(
                text("SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')")
            ).scalar()
        engine.dispose()
        latencies = np.array([x for c in clients for x in c.latencies])
        errors = [e for c in clients for e in c.errors]
        memory = {f"serve (parent {serve.pid})": _peak_rss_mb(serve.pid)}
        for pid in _children(serve.pid):
            kind = "resource tracker" if _is_resource_tracker(pid) else "API process"
            memory[f"{kind} {pid}"] = _peak_rss_mb(pid)
        memory[f"worker {worker.pid}"] = _peak_rss_mb(worker.pid)
        for pid in _children(worker.pid):
            memory[f"worker child {pid}"] = _peak_rss_mb(pid)
        completions = sum(c.completions for c in clients)
        return {
            "setup": {
                "students": args.students,
                "tasks_each": args.tasks,
                "preload_seconds": round(preload, 1),
                "first_training_seconds": round(first_training, 1),
                "api_processes": args.processes,
                "clients": args.clients,
                "retrain_every": args.retrain_every,
                "worker_cpu_quota": args.worker_cpu_quota,
            },
            "seconds": round(elapsed, 1),
            "completions": completions,
            "completions_per_s": round(completions / elapsed, 1),
            "requests": len(latencies),
            "latency_ms": _percentiles(latencies.tolist()),
            "latency_ms_by_route": {
                route: _percentiles([x for c in clients for x in c.by_route[route]])
                for route in ("create", "complete")
            },
            # The spread of the clients' median latencies: with the API processes equally
            # busy every client waits about as long (api.balancing).
            "client_median_ms": _spread([c.latencies for c in clients]),
            **_by_training(clients, [(float(a), float(b)) for a, b in spans], t0, elapsed),
            "errors": len(errors),
            "error_examples": errors[:5],
            "trainings_completed_during_run": len(training_kinds),
            "trainings_read_and_refitted": training_kinds,
            "jobs_queued_or_running_at_end": int(queued or 0),
            "cpu_seconds": {k: round(cpu_after[k] - cpu_before[k], 1) for k in cpu_after},
            "peak_memory_mb": {k: round(v, 1) if v else None for k, v in memory.items()},
        }
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if quota is not None:
            quota.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_database_options(parser)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--retrain-every", type=int, default=5)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument(
        "--worker-cpu-quota",
        type=float,
        default=None,
        metavar="FRACTION",
        help="run the worker in a cgroup with this share of one core (0.3: systemd's "
        "CPUQuota=30%%); needs the right to create cgroups",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.worker_cpu_quota is not None:
        if not 0 < args.worker_cpu_quota <= os.cpu_count():
            parser.error(f"--worker-cpu-quota must be above 0 and at most {os.cpu_count()}")
        if (why := CpuQuota.unavailable()) is not None:
            parser.error(f"--worker-cpu-quota: {why}")
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    s = result["setup"]
    print(
        f"{s['students']} students × {s['tasks_each']} tasks preloaded in "
        f"{s['preload_seconds']} s, first training {s['first_training_seconds']} s; "
        f"{s['api_processes']} API processes + 1 worker, {s['clients']} clients, "
        f"a training every {s['retrain_every']} completions"
        + (
            f", the worker at a CPU quota of {s['worker_cpu_quota']:.0%} of a core"
            if s["worker_cpu_quota"] is not None
            else ""
        )
    )
    lat = result["latency_ms"]
    print(
        f"{result['completions']} completions in {result['seconds']} s = "
        f"{result['completions_per_s']} completions/s; {result['requests']} requests, "
        f"latency p50 {lat['p50']} ms, p99 {lat['p99']} ms, max {lat['max']} ms; "
        f"errors {result['errors']}"
    )
    for route, r in result["latency_ms_by_route"].items():
        print(f"  {route}: p50 {r['p50']} ms, p99 {r['p99']} ms, max {r['max']} ms")
    spread = result["client_median_ms"]
    print(f"  median latency per client: {spread['min']} to {spread['max']} ms")
    during, other = result["latency_ms_while_training"], result["latency_ms_otherwise"]
    print(
        f"  requests started while a training ran ({result['training_share_of_run']:.0%} of "
        f"the run): p50 {during['p50']} ms, p99 {during['p99']} ms; the others: "
        f"p50 {other['p50']} ms, p99 {other['p99']} ms"
    )
    print(
        f"trainings completed during the run: {result['trainings_completed_during_run']}; "
        f"jobs queued or running at the end: {result['jobs_queued_or_running_at_end']}"
    )
    print("  each: " + "; ".join(result["trainings_read_and_refitted"]))
    cpu = ", ".join(f"{k} {v} s" for k, v in result["cpu_seconds"].items())
    print(f"CPU time during the run: {cpu} (the machine has {os.cpu_count()} cores)")
    for proc, mb in result["peak_memory_mb"].items():
        print(f"peak memory {proc}: {mb} MB")
    for example in result["error_examples"]:
        print("error:", example)


if __name__ == "__main__":
    main()
