"""Named jobs and their runners (one job of a name at a time, coalesced follow-ups), and
durable job rows: heartbeats, dead jobs failed and queued again, shutdown interruptions."""

from __future__ import annotations

import logging
import math
import socket
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from smartstudy.jobs import JOBS, InProcessRunner, JobError, SyncRunner, check_job, durable
from smartstudy.models.baseline import Baseline
from smartstudy.services import training
from smartstudy.services.predictor import PredictionService
from smartstudy.services.training import TRAINING_JOB, run_queued_trainings
from smartstudy.store.db import session_scope
from smartstudy.store.orm import Job


class RecordingRunner:
    """Notes the jobs it is given (the test runs them itself)."""

    def __init__(self) -> None:
        self.jobs: list[tuple[str, dict]] = []

    def submit(self, name: str, args: dict | None = None) -> None:
        self.jobs.append((name, check_job(name, args)))

    def wait_idle(self, timeout: float | None = None) -> bool:
        return True

    def shutdown(self) -> None:
        return None


@pytest.fixture
def probe(monkeypatch):
    """A job named ``probe`` that records its arguments (and may wait for a release)."""
    calls: list[dict] = []
    started = threading.Event()
    release = threading.Event()
    release.set()

    def run(_context, **args):
        calls.append(args)
        started.set()
        release.wait(5)
        if args.get("boom"):
            raise RuntimeError("broken job")

    monkeypatch.setitem(JOBS, "probe", run)
    return calls, started, release


def _bound(runner):
    runner.bind(object())  # the probe ignores its context
    return runner


# -- names and arguments -----------------------------------------------------------------
def test_requests_during_a_run_coalesce_into_one_follow_up(probe):
    calls, started, release = probe
    release.clear()
    runner = _bound(InProcessRunner())
    runner.submit("probe", {"n": 0})
    assert started.wait(5)
    for i in range(1, 6):
        runner.submit("probe", {"n": i})
    release.set()
    assert runner.wait_idle(10)
    # The newest request stands for all of them: nothing asked for during the run is lost,
    # and five requests cost one run, not five.
    assert calls == [{"n": 0}, {"n": 5}]


def test_failures_do_not_stop_the_runner(probe, caplog):
    calls, _started, _release = probe
    runner = _bound(InProcessRunner())
    with caplog.at_level(logging.ERROR):
        runner.submit("probe", {"boom": True})
        assert runner.wait_idle(10)
        runner.submit("probe", {"n": 1})
        assert runner.wait_idle(10)
    assert calls == [{"boom": True}, {"n": 1}]
    assert "job probe failed" in caplog.text


def test_shutdown_refuses_new_jobs(probe):
    calls, _started, _release = probe
    runner = _bound(InProcessRunner())
    runner.shutdown()
    runner.submit("probe", {})
    assert runner.wait_idle(1) and calls == []


def test_sync_runner_runs_at_once(probe):
    calls, _started, _release = probe
    _bound(SyncRunner()).submit("probe", {"x": [1, "a", None, 2.5, {"k": True}]})
    assert calls == [{"x": [1, "a", None, 2.5, {"k": True}]}]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"when": datetime(2026, 1, 1)}, "argument 'when' is not JSON: datetime"),
        ({"ids": (1, 2)}, "argument 'ids' is not JSON: tuple"),
        ({"x": math.nan}, "argument 'x' is not JSON: nan is not a finite number"),
        ({"m": {1: "a"}}, "argument 'm' is not JSON: key 1 is not a string"),
        ({"not a name": 1}, "argument name 'not a name' is not a keyword"),
        ([("a", 1)], "arguments must be a JSON object, not list"),
    ],
)
def test_arguments_must_be_json(probe, args, message):
    calls, _started, _release = probe
    runner = _bound(InProcessRunner())
    with pytest.raises(JobError, match="job probe: " + message.replace("(", r"\(")):
        runner.submit("probe", args)
    assert runner.wait_idle(1) and calls == []


def test_unknown_jobs_are_refused_by_name():
    with pytest.raises(JobError, match="unknown job 'trian'; known jobs: fit_bkt, training"):
        SyncRunner().submit("trian", {})


# -- durable rows ---------------------------------------------------------------------------
def _dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _running(context, *, worker: str | None, beat_age: float, attempts: int = 1) -> uuid.UUID:
    beat = datetime.now(UTC) - timedelta(seconds=beat_age)
    with session_scope(context.sessions) as session:
        job = Job(
            kind=TRAINING_JOB,
            status="running",
            started_at=beat,
            heartbeat_at=beat,
            worker=worker,
            attempts=attempts,
        )
        session.add(job)
        session.flush()
        return job.id


def _jobs(context) -> list[Job]:
    with context.sessions() as session:
        return list(session.scalars(select(Job).order_by(Job.created_at)))


def test_a_dead_in_process_run_is_failed_on_start_and_queued_again(context):
    host = socket.gethostname()
    dead = _running(context, worker=f"{host}:{_dead_pid()}", beat_age=1)
    alive = _running(context, worker=durable.worker_id(), beat_age=1)
    context.runner = RecordingRunner()
    retries = durable.recover(context)  # a job function's check: its own process is alive
    assert [r.retry_of for r in retries] == [dead]
    # At start-up, a row naming this very process is from an earlier one with its pid.
    retries = durable.recover_and_wake(context)
    assert [r.retry_of for r in retries] == [alive]
    rows = {job.id: job for job in _jobs(context)}
    assert rows[dead].status == "failed" and rows[dead].finished_at is not None
    assert rows[dead].error.startswith(f"attempt 1: its process {host}:")
    assert rows[dead].error.endswith(" is gone")
    assert "reuses its pid" in rows[alive].error
    queued = [job for job in rows.values() if job.status == "queued"]
    assert sorted((j.retry_of, j.attempts, j.kind) for j in queued) == sorted(
        [(dead, 2, TRAINING_JOB), (alive, 2, TRAINING_JOB)]
    )
    # Every queued job is handed to the runner, by name, with its id.
    assert sorted((name, args["job_id"]) for name, args in context.runner.jobs) == sorted(
        (TRAINING_JOB, str(j.id)) for j in queued
    )


def test_a_silent_job_elsewhere_times_out_and_attempts_are_limited(context):
    context.settings.job_heartbeat_timeout = 60
    context.settings.job_max_attempts = 2
    silent = _running(context, worker="elsewhere:12", beat_age=61)
    fresh = _running(context, worker="elsewhere:13", beat_age=5)
    last = _running(context, worker="elsewhere:14", beat_age=600, attempts=2)
    retries = durable.recover(context)
    assert [r.retry_of for r in retries] == [silent]
    rows = {job.id: job for job in _jobs(context)}
    assert rows[fresh].status == "running"  # another host, recent heartbeat: alive
    assert "no heartbeat from elsewhere:12 for 61 s" in rows[silent].error
    assert "SMARTSTUDY_JOB_HEARTBEAT_TIMEOUT=60" in rows[silent].error
    assert rows[last].status == "failed" and rows[last].error.endswith("; not retried after 2")
    assert not [j for j in rows.values() if j.retry_of == last]


def test_the_heartbeat_moves_while_the_job_runs(context):
    with session_scope(context.sessions) as session:
        job_id = durable.start(session, TRAINING_JOB).id
        first = session.get(Job, job_id).heartbeat_at
    with durable.Heartbeat(context, job_id, interval=0.02):
        moved = threading.Event()
        for _ in range(200):
            with context.sessions() as session:
                if session.get(Job, job_id).heartbeat_at > first:
                    moved.set()
                    break
            moved.wait(0.02)
    assert moved.is_set()


def _blocking_fit(context, *, cooperative: bool) -> tuple[threading.Event, threading.Event]:
    """Make the first fit of a training wait: until a stop is asked (``cooperative``), or
    until the test releases it."""
    started, release = threading.Event(), threading.Event()
    fit = context.predictor.fit_model

    def slow_fit(name, data, warm=None):
        started.set()
        while not release.wait(0.02):
            if cooperative and durable.should_stop():
                break
        return fit(name, data, warm)

    context.predictor.fit_model = slow_fit
    return started, release


@pytest.mark.parametrize("cooperative", [True, False])
def test_shutdown_interrupts_a_training_and_queues_it_again(context, cooperative):
    context.predictor = PredictionService(chain=("baseline",), factories={"baseline": Baseline})
    started, release = _blocking_fit(context, cooperative=cooperative)
    runner = InProcessRunner(grace=0.2)
    context.runner = runner
    with session_scope(context.sessions) as session:
        session.add(Job(kind=TRAINING_JOB, status="queued"))
    context.runner.submit(TRAINING_JOB, {})
    assert started.wait(10)
    runner.shutdown()
    if not cooperative:
        # The fit ignored the stop: the job was given back without waiting for it, and
        # its late result changes nothing.
        release.set()
        assert runner.wait_idle(10)
    jobs = _jobs(context)
    assert [(j.status, j.attempts) for j in jobs] == [("failed", 1), ("queued", 2)]
    assert jobs[0].error == "attempt 1: interrupted by shutdown"
    assert jobs[1].retry_of == jobs[0].id and jobs[0].summary == {}
    # The next start runs the queued retry through the same job function.
    context.predictor = PredictionService(chain=("baseline",), factories={"baseline": Baseline})
    assert run_queued_trainings(context) == 1
    jobs = _jobs(context)
    assert [(j.status, j.attempts) for j in jobs] == [("failed", 1), ("succeeded", 2)]
    assert jobs[1].worker == durable.worker_id() and jobs[1].summary["baseline"]["version"] == 1


def test_fit_bkt_is_a_named_job_with_json_arguments(context):
    context.runner = SyncRunner()
    context.runner.submit("fit_bkt", {"min_users": 1, "bounds": {"g": [0.01, 0.3]}})
    context.runner.submit("fit_bkt", {"min_attempts": 0})
    done, refused = _jobs(context)
    assert (done.kind, done.status, done.attempts) == ("fit_bkt", "succeeded", 1)
    assert done.args["bounds"] == {"g": [0.01, 0.3]} and done.args["min_users"] == 1
    assert done.summary["fitted"] == [] and uuid.UUID(done.summary["run_id"])
    assert refused.status == "failed" and "min_attempts" in refused.error
    # A queued fit (a retry) runs with the arguments stored in its row.
    with session_scope(context.sessions) as session:
        queued = durable.enqueue(session, "fit_bkt", {"min_users": 2, "n_restarts": 1})
    context.runner.submit("fit_bkt", {"job_id": str(queued.id)})
    with context.sessions() as session:
        row = session.get(Job, queued.id)
    assert row.status == "succeeded" and row.args["n_restarts"] == 1
    assert row.worker == durable.worker_id()


def test_training_runs_show_attempts_and_owner(client, admin, context):
    """The API's list of training runs says which attempt a run was and which process ran it."""
    with session_scope(context.sessions) as session:
        dead = Job(kind="training", status="failed", attempts=1, worker="host-a:11")
        session.add(dead)
        session.flush()
        session.add(
            Job(kind="training", status="queued", attempts=2, retry_of=dead.id, worker=None)
        )
    runs = client.get("/v1/models/trainings", headers=admin).json()
    by_attempt = {r["attempts"]: r for r in runs}
    assert by_attempt[1]["worker"] == "host-a:11"
    assert by_attempt[2]["retry_of"] == str(by_attempt[1]["id"])


def test_a_training_starts_a_pause_after_the_last_one_ended(context):
    """Under load a training is due again as soon as one ends; the next waits
    ``training_pause`` seconds after the end of the last one that succeeded (in any process),
    and a runner that is stopping does not wait it out."""
    context.settings = context.settings.model_copy(update={"training_pause": 0.5})
    context.predictor = PredictionService(chain=("baseline",), factories={"baseline": Baseline})
    for _ in range(2):
        with session_scope(context.sessions) as session:
            session.add(Job(kind=TRAINING_JOB, status="queued"))
        assert run_queued_trainings(context) == 1
    first, second = _jobs(context)
    assert first.status == second.status == "succeeded"
    assert (second.started_at - first.finished_at).total_seconds() >= 0.5

    context.settings = context.settings.model_copy(update={"training_pause": 600.0})
    # A wake-up with nothing queued never waits; a queued training waits out the pause.
    assert training._pause_left(context) == 0.0
    with session_scope(context.sessions) as session:
        session.add(Job(kind=TRAINING_JOB, status="queued"))
    assert 500.0 < training._pause_left(context) <= 600.0
    stop = threading.Event()
    stop.set()
    with durable.stop_when(stop):
        assert run_queued_trainings(context) == 0
    assert [j.status for j in _jobs(context)][-1] == "queued"
