"""Prometheus metrics: what ``GET /metrics`` exposes, and the calls that record it.

Two kinds of metric, so that every number is right however many processes run:

- Live ones, recorded by the process that does the work: request latency by route template
  (the API middleware), predictions by the family that answered, and fallbacks (the
  predictor). Each API process counts its own; with several processes (``uvicorn
  --workers``) set ``PROMETHEUS_MULTIPROC_DIR`` to an empty folder before the server starts
  and every process writes its values there, to be summed at each scrape.
- Job metrics, read from the ``jobs`` table at scrape time (``JobsCollector``): queue depth,
  finished runs by outcome and their durations. The table is what every API process and
  worker shares, so no process has to be the one that remembers them, and a job run by a
  Celery worker counts as much as one run in the API process.

No label carries personal data: routes are templates (``/v1/tasks/{task_id}``, never a
path with ids), families and job kinds are names from the code.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session, sessionmaker

from smartstudy.store.orm import Job, utcnow

log = logging.getLogger(__name__)

#: The environment variable of prometheus-client's multiprocess mode (read when
#: ``prometheus_client`` is first imported, so it must be set before the server starts).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: The content type of the text exposition format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Request latency buckets (seconds): API answers take milliseconds, a page with charts or a
#: prediction that loads a model takes longer, and anything over 10 s is a problem.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Job run-time buckets (seconds): a BKT fit takes seconds, a training minutes.
JOB_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
#: Label of a request that matched no route (a 404 for an unknown path): raw paths would
#: make one series per path scanned.
UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Job statuses that are waiting or in progress; every other status of a finished job is its
#: outcome.
QUEUE_STATUSES = ("queued", "running")

REQUEST_DURATION = Histogram(
    "smartstudy_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by route template.",
    ("method", "route", "status"),
    buckets=REQUEST_BUCKETS,
)
PREDICTIONS = Counter(
    "smartstudy_predictions",
    "Predictions served, by the model family that answered.",
    ("family",),
)
FALLBACKS = Counter(
    "smartstudy_prediction_fallbacks",
    "A model family was asked and did not answer, so the next one was asked: reason is "
    "'unavailable' (it cannot answer, e.g. not trained yet) or 'error' (it failed).",
    ("family", "reason"),
)

CONNECTIONS_SHED = Counter(
    "smartstudy_connections_shed",
    "Answers sent with 'Connection: close' because this API process had more requests in "
    "flight than another (serve --workers N; the client reconnects and may land elsewhere).",
)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Record one answered request (``status`` goes in as its class, e.g. ``4xx``)."""
    method = method if method in _METHODS else "OTHER"
    REQUEST_DURATION.labels(method, route, f"{status // 100}xx").observe(seconds)


def prediction_served(family: str) -> None:
    PREDICTIONS.labels(family).inc()


def connection_shed() -> None:
    CONNECTIONS_SHED.inc()


def prediction_fallback(family: str, reason: str) -> None:
    FALLBACKS.labels(family, reason).inc()


# -- jobs, from the database ---------------------------------------------------------------
def _run_seconds(dialect: str) -> ColumnElement[float]:
    """A finished job's run time in SQL: stored times are UTC on both backends."""
    if dialect == "postgresql":
        return func.extract("epoch", Job.finished_at - Job.started_at)
    # SQLite keeps times as ISO text, which julianday() reads (fractions of a day).
    return (func.julianday(Job.finished_at) - func.julianday(Job.started_at)) * 86400.0


class JobsCollector(Collector):
    """Job metrics computed from the ``jobs`` table at each scrape, in two grouped queries
    (no row is fetched one by one, so the cost does not grow with the scrape interval)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "smartstudy_jobs_collector_up",
            "1 if the jobs table could be read for this scrape, else 0.",
        )
        try:
            families = self._families()
        except Exception as exc:  # a scrape must still answer while the database is down
            log.warning("job metrics unavailable: %s: %s", type(exc).__name__, exc)
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up
        yield from families

    def _families(self) -> list[Metric]:
        with self.sessions() as session:
            try:
                counts, finished = _read_jobs(session)
            finally:
                session.rollback()
        now = utcnow()
        depth = GaugeMetricFamily(
            "smartstudy_job_queue_depth",
            "Jobs waiting (status 'queued') or in progress (status 'running'), by kind.",
            labels=("kind", "status"),
        )
        oldest = GaugeMetricFamily(
            "smartstudy_job_oldest_queued_seconds",
            "Age of the oldest queued job of each kind (0 when none waits): it grows when "
            "no worker takes jobs.",
            labels=("kind",),
        )
        kinds = sorted({kind for kind, _status in counts})
        for kind in kinds:
            for status in QUEUE_STATUSES:
                depth.add_metric([kind, status], float(counts.get((kind, status), (0, None))[0]))
            first = counts.get((kind, "queued"), (0, None))[1]
            age = 0.0 if first is None else max(0.0, (now - first).total_seconds())
            oldest.add_metric([kind], age)
        runs = CounterMetricFamily(
            "smartstudy_job_runs",
            "Finished jobs (training runs among them), by kind and outcome.",
            labels=("kind", "status"),
        )
        duration = HistogramMetricFamily(
            "smartstudy_job_duration_seconds",
            "Run time (start to finish) of finished jobs, by kind and outcome.",
            labels=("kind", "status"),
        )
        for (kind, status), (n, total, cumulative) in sorted(finished.items()):
            runs.add_metric([kind, status], float(n))
            buckets = [(_bound(b), float(c)) for b, c in zip(JOB_BUCKETS, cumulative, strict=True)]
            buckets.append(("+Inf", float(n)))
            duration.add_metric([kind, status], buckets, total)
        return [depth, oldest, runs, duration]


def _bound(value: float) -> str:
    return repr(float(value))


def _read_jobs(
    session: Session,
) -> tuple[
    dict[tuple[str, str], tuple[int, datetime | None]],
    dict[tuple[str, str], tuple[int, float, list[int]]],
]:
    """Per (kind, status): the number of jobs and the oldest creation time; and per (kind,
    status) of the finished jobs with both times: count, total seconds and the cumulative
    bucket counts of ``JOB_BUCKETS``."""
    rows = session.execute(
        select(Job.kind, Job.status, func.count(), func.min(Job.created_at)).group_by(
            Job.kind, Job.status
        )
    ).all()
    counts = {(kind, status): (int(n), first) for kind, status, n, first in rows}
    seconds = _run_seconds(session.get_bind().dialect.name)
    finished_rows = session.execute(
        select(
            Job.kind,
            Job.status,
            func.count(),
            func.coalesce(func.sum(seconds), 0.0),
            *(func.sum(case((seconds <= bound, 1), else_=0)) for bound in JOB_BUCKETS),
        )
        .where(
            Job.finished_at.is_not(None),
            Job.started_at.is_not(None),
            Job.status.not_in(QUEUE_STATUSES),
        )
        .group_by(Job.kind, Job.status)
    ).all()
    finished = {
        (row[0], row[1]): (int(row[2]), float(row[3]), [int(c or 0) for c in row[4:]])
        for row in finished_rows
    }
    return counts, finished


# -- exposition ----------------------------------------------------------------------------
def multiprocess_dir() -> str | None:
    """The multiprocess folder when prometheus-client runs in multiprocess mode."""
    return os.environ.get(MULTIPROC_ENV) or None


def multiprocess_problem() -> str | None:
    """Why the multiprocess folder cannot be used (for a one-line start-up error), or None."""
    folder = multiprocess_dir()
    if folder is None:
        return None
    path = Path(folder)
    if not path.is_dir():
        return f"{MULTIPROC_ENV}={folder} is not a folder: create it (empty) before starting"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"{MULTIPROC_ENV}={folder} is not writable by this process"
    return None


class _Forward(Collector):
    """The process-wide registry's metrics, inside a registry made for one scrape."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        return iter(self.registry.collect())


def exposition(collectors: Iterable[Collector] = ()) -> bytes:
    """The text exposition of the live metrics and of ``collectors`` (e.g. the jobs).

    In multiprocess mode the live metrics are the sum over every process's files (the
    per-process CPU and memory metrics of the default registry then leave out); otherwise
    they come from this process's default registry.
    """
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir() is not None:
        prometheus_multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Forward(REGISTRY))
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry)
