"""`smartstudy serve --demo` in a subprocess, for the tests that use the app as a user would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(proc: subprocess.Popen, base: str, log_path: Path, timeout: float) -> None:
    """Wait until the server at ``base`` answers /readyz with 200; fail with its log if it
    exits or takes longer than ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"server did not start:\n{log_path.read_text()}")
        time.sleep(0.3)


@contextmanager
def demo_server(data_dir: Path, timeout: float = 180) -> Iterator[str]:
    """Start the server with demo data in ``data_dir`` (SQLite); yield its base URL once
    /readyz answers; stop it afterwards. Its output goes to ``data_dir/server.log``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "SMARTSTUDY_DATA_DIR": str(data_dir)}
    env.pop("SMARTSTUDY_DATABASE_URL", None)
    log_path = data_dir / "server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "smartstudy.cli", "serve", "--demo", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(proc, base, log_path, timeout)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
