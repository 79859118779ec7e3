"""The in-process job runner: one job of a kind at a time, coalesced follow-ups."""

from __future__ import annotations

import logging
import threading

from smartstudy.jobs import InProcessRunner, SyncRunner


def test_requests_during_a_run_coalesce_into_one_follow_up():
    runner = InProcessRunner()
    release = threading.Event()
    started = threading.Event()
    runs: list[str] = []

    def first():
        started.set()
        release.wait(5)
        runs.append("first")

    runner.submit("training", first)
    assert started.wait(5)
    for i in range(5):
        runner.submit("training", lambda i=i: runs.append(f"follow-up {i}"))
    release.set()
    assert runner.wait_idle(10)
    # The newest request stands for all of them: nothing asked for during the run is lost,
    # and five requests cost one run, not five.
    assert runs == ["first", "follow-up 4"]


def test_kinds_run_independently_and_failures_do_not_stop_the_runner(caplog):
    runner = InProcessRunner()
    done = []

    def boom():
        raise RuntimeError("broken job")

    with caplog.at_level(logging.ERROR):
        runner.submit("a", boom)
        runner.submit("b", lambda: done.append("b"))
        assert runner.wait_idle(10)
        runner.submit("a", lambda: done.append("a"))
        assert runner.wait_idle(10)
    assert sorted(done) == ["a", "b"]
    assert "job a failed" in caplog.text


def test_shutdown_refuses_new_jobs():
    runner = InProcessRunner()
    runner.shutdown()
    ran = []
    runner.submit("x", lambda: ran.append(1))
    assert runner.wait_idle(1) and ran == []


def test_sync_runner_runs_at_once():
    ran = []
    SyncRunner().submit("x", lambda: ran.append(1))
    assert ran == [1]
