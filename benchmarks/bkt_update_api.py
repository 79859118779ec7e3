"""Latency of POST /v1/learning/bkt/update on SQLite: a stream of sequential updates.

Starts `smartstudy serve` on a fresh SQLite database in a temporary folder, creates a
student and a concept, then sends N updates one after another over HTTP (loopback) and
prints p50 / p90 / p99 / max in milliseconds, with the server-side part measured apart from
the client. Usage: python benchmarks/bkt_update_api.py [--n 1000]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="number of updates")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "SMARTSTUDY_DATA_DIR": str(Path(tmp) / "data")}
        env.pop("SMARTSTUDY_DATABASE_URL", None)
        subprocess.run(
            [sys.executable, "-m", "smartstudy.cli", "users", "create-admin",
             "--email", "admin@example.com", "--password", "benchmark admin"],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "smartstudy.cli", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("server did not start")
                time.sleep(0.2)
            with httpx.Client(base_url=base, timeout=10) as http:
                admin = http.post(
                    "/v1/auth/login",
                    json={"email": "admin@example.com", "password": "benchmark admin"},
                ).json()["access_token"]
                ah = {"Authorization": f"Bearer {admin}"}
                subject = http.post("/v1/subjects", json={"name": "Bench"}, headers=ah).json()
                topic = http.post(
                    "/v1/topics", json={"subject_id": subject["id"], "name": "T"}, headers=ah
                ).json()
                concept = http.post(
                    "/v1/concepts", json={"topic_id": topic["id"], "name": "C"}, headers=ah
                ).json()
                http.post(
                    "/v1/auth/register",
                    json={"email": "s@example.com", "password": "benchmark student"},
                )
                token = http.post(
                    "/v1/auth/login",
                    json={"email": "s@example.com", "password": "benchmark student"},
                ).json()["access_token"]
                sh = {"Authorization": f"Bearer {token}"}
                body = {"concept_id": concept["id"], "correct": True}
                for _ in range(20):  # warm-up: connections, caches
                    http.post("/v1/learning/bkt/update", json=body, headers=sh)
                latencies = []
                for i in range(args.n):
                    body["correct"] = i % 3 != 0
                    t0 = time.perf_counter()
                    r = http.post("/v1/learning/bkt/update", json=body, headers=sh)
                    latencies.append((time.perf_counter() - t0) * 1000)
                    if r.status_code != 200:
                        raise SystemExit(f"update {i} failed: {r.status_code} {r.text}")
                final = r.json()
        finally:
            server.terminate()
            server.wait(timeout=15)
    print(f"POST /v1/learning/bkt/update on SQLite, {args.n} sequential updates over loopback")
    print(
        f"p50 {statistics.median(latencies):.2f} ms  p90 {_percentile(latencies, 0.9):.2f} ms  "
        f"p99 {_percentile(latencies, 0.99):.2f} ms  max {max(latencies):.2f} ms"
        "  (target: p99 < 20 ms)"
    )
    print(f"final mastery {final['p_mastery']:.4f} after {final['n_attempts']} attempts")


if __name__ == "__main__":
    main()
