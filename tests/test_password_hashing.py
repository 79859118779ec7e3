"""Password hashing: Argon2id hashes round-trip, and at most ``MAX_CONCURRENT_HASHES`` run
at once in a process, so a burst of log-ins cannot take a gigabyte of memory (each hash
takes the hasher's 64 MiB while it runs)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from smartstudy.services import security


def test_a_password_verifies_against_its_hash_only():
    hashed = security.hash_password("correct horse 1")
    assert security.verify_password(hashed, "correct horse 1")
    assert not security.verify_password(hashed, "wrong horse 1")
    assert not security.verify_password("not a hash", "correct horse 1")


class _CountingHasher:
    """Stands in for the Argon2 hasher and records how many calls overlap."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0

    def _work(self) -> None:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.02)
        with self.lock:
            self.running -= 1

    def hash(self, password: str) -> str:
        self._work()
        return "hash:" + password

    def verify(self, password_hash: str, password: str) -> bool:
        self._work()
        return password_hash == "hash:" + password


def test_at_most_a_few_hashes_run_at_once(monkeypatch):
    fake = _CountingHasher()
    monkeypatch.setattr(security, "_hasher", fake)
    with ThreadPoolExecutor(max_workers=16) as pool:
        hashed = list(pool.map(security.hash_password, [f"pw {k}" for k in range(16)]))
        checks = list(pool.map(security.verify_password, hashed, [f"pw {k}" for k in range(16)]))
    assert all(checks)
    assert fake.most == security.MAX_CONCURRENT_HASHES
