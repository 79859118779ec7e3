"""GET /metrics: Prometheus exposition of request latency, predictions, fallbacks and jobs.

Live metrics are process-wide, so each test compares a scrape after its requests with one
before them; job metrics come from the (cleared) jobs table, so they are exact.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError
from sqlalchemy.orm import sessionmaker

from smartstudy.api.app import create_app
from smartstudy.config import Settings
from smartstudy.models.baseline import Baseline
from smartstudy.observability import metrics
from smartstudy.services import accounts, catalogue
from smartstudy.services.predictor import PredictionService
from smartstudy.store.db import make_engine, session_scope
from smartstudy.store.orm import Job, utcnow

TOKEN = "metrics-token-" + "x" * 20
LATENCY = "smartstudy_http_request_duration_seconds"


class Exploding(Baseline):
    """Trains fine, then fails to predict."""

    def _predict_validated(self, data):
        raise RuntimeError("boom")


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition, keyed by (sample name, sorted labels)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def scrape(client, context):
    """Scrape /metrics with the bearer token (set on the running app's settings)."""
    context.settings.metrics_token = TOKEN

    def run() -> Samples:
        r = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
        return parse(r.text)

    return run


def _count(samples: Samples, method: str, route: str, status: str) -> float:
    return value(samples, f"{LATENCY}_count", method=method, route=route, status=status)


def test_request_latency_by_route_template(client, student, topic, scrape):
    before = scrape()
    r = client.post(
        "/v1/tasks", json={"topic_id": topic["id"], "difficulty": "easy"}, headers=student
    )
    assert r.status_code == 201, r.text
    task = r.json()
    r = client.post(
        f"/v1/tasks/{task['id']}/complete",
        json={"is_correct": True, "actual_time_seconds": 42.0},
        headers=student,
    )
    assert r.status_code == 200, r.text
    missing = uuid.uuid4()
    assert client.get(f"/v1/tasks/{missing}", headers=student).status_code == 404
    assert client.get(f"/no/such/page/{missing}").status_code == 404
    assert client.get("/static/app.css").status_code == 200
    after = scrape()

    for method, route, status in (
        ("POST", "/v1/tasks", "2xx"),
        ("POST", "/v1/tasks/{task_id}/complete", "2xx"),
        ("GET", "/v1/tasks/{task_id}", "4xx"),
        ("GET", "unmatched", "4xx"),
        ("GET", "/static/{path}", "2xx"),  # a mounted app: its prefix, not the file
    ):
        grew = _count(after, method, route, status) - _count(before, method, route, status)
        assert grew == 1, (method, route, status)
        # A histogram: cumulative buckets up to +Inf, and a sum.
        labels = {"method": method, "route": route, "status": status}
        inf = value(after, f"{LATENCY}_bucket", **labels, le="+Inf")
        assert inf == _count(after, method, route, status)
        assert value(after, f"{LATENCY}_bucket", **labels, le="0.005") <= inf
        assert value(after, f"{LATENCY}_sum", **labels) > 0
    # Route templates only: no series is labelled with a raw path holding an id.
    routes = {dict(labels).get("route", "") for (_name, labels) in after}
    assert not any(task["id"] in r or str(missing) in r for r in routes)

    # The task's prediction was counted for the family that made it.
    family = task["model_name"]
    served = "smartstudy_predictions_total"
    assert value(after, served, family=family) >= value(before, served, family=family) + 1


def test_fallbacks_are_counted_by_family_and_reason(context):
    with session_scope(context.sessions) as session:
        user = accounts.create_user(session, "ada@example.com", "password 123")
        topic = catalogue.create_topic(
            session, catalogue.create_subject(session, "Maths").id, "Calculus"
        )
    service = PredictionService(
        chain=("exploding", "baseline"),
        factories={"exploding": Exploding, "baseline": Baseline},
        fixed_order=True,  # "exploding" is asked first, though nothing is held out
    )
    before = parse(metrics.exposition().decode())
    with context.sessions() as session:
        p = service.predict(session, user.id, topic.id, "easy")
        session.commit()
    after = parse(metrics.exposition().decode())
    assert p.model_name == "baseline"
    name = "smartstudy_prediction_fallbacks_total"
    grew = value(after, name, family="exploding", reason="error") - value(
        before, name, family="exploding", reason="error"
    )
    assert grew == 1
    served = "smartstudy_predictions_total"
    assert value(after, served, family="baseline") == value(before, served, family="baseline") + 1
    assert value(after, served, family="exploding") == value(before, served, family="exploding")


def test_job_metrics_come_from_the_jobs_table(context, scrape):
    now = utcnow()
    with session_scope(context.sessions) as session:
        session.add_all(
            [
                Job(kind="fit_bkt", status="queued", created_at=now - timedelta(seconds=90)),
                Job(kind="fit_bkt", status="queued", created_at=now - timedelta(seconds=5)),
                Job(kind="training", status="running", started_at=now),
                Job(
                    kind="training",
                    status="succeeded",
                    started_at=now - timedelta(seconds=40),
                    finished_at=now - timedelta(seconds=20),
                ),
                Job(
                    kind="training",
                    status="failed",
                    started_at=now - timedelta(seconds=400),
                    finished_at=now - timedelta(seconds=10),
                ),
            ]
        )
    samples = scrape()
    assert value(samples, "smartstudy_jobs_collector_up") == 1
    depth = "smartstudy_job_queue_depth"
    assert value(samples, depth, kind="fit_bkt", status="queued") == 2
    assert value(samples, depth, kind="fit_bkt", status="running") == 0
    assert value(samples, depth, kind="training", status="queued") == 0
    assert value(samples, depth, kind="training", status="running") == 1
    oldest = value(samples, "smartstudy_job_oldest_queued_seconds", kind="fit_bkt")
    assert 89 <= oldest < 3600
    assert value(samples, "smartstudy_job_oldest_queued_seconds", kind="training") == 0

    runs = "smartstudy_job_runs_total"
    assert value(samples, runs, kind="training", status="succeeded") == 1
    assert value(samples, runs, kind="training", status="failed") == 1
    assert value(samples, runs, kind="fit_bkt", status="queued") == 0  # not finished
    hist = "smartstudy_job_duration_seconds"
    ok = {"kind": "training", "status": "succeeded"}
    assert value(samples, f"{hist}_count", **ok) == 1
    assert value(samples, f"{hist}_sum", **ok) == pytest.approx(20, abs=0.5)
    assert value(samples, f"{hist}_bucket", **ok, le="15.0") == 0
    assert value(samples, f"{hist}_bucket", **ok, le="30.0") == 1
    bad = {"kind": "training", "status": "failed"}
    assert value(samples, f"{hist}_sum", **bad) == pytest.approx(390, abs=0.5)
    assert value(samples, f"{hist}_bucket", **bad, le="300.0") == 0
    assert value(samples, f"{hist}_bucket", **bad, le="600.0") == 1


def test_jobs_collector_reports_a_database_it_cannot_read(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")  # no tables: the query fails
    try:
        text = metrics.exposition([metrics.JobsCollector(sessionmaker(bind=engine))]).decode()
    finally:
        engine.dispose()
    samples = parse(text)
    assert value(samples, "smartstudy_jobs_collector_up") == 0
    assert f"{LATENCY}" in text  # the live metrics are still there


def test_access_without_a_token_is_loopback_only(context):
    app = create_app(context=context)
    with TestClient(app) as remote:  # the client's address is "testclient", not loopback
        r = remote.get("/metrics")
        assert r.status_code == 403
        assert "SMARTSTUDY_METRICS_TOKEN" in r.json()["detail"]
    with TestClient(app, client=("127.0.0.1", 40000)) as local:
        r = local.get("/metrics")
        assert r.status_code == 200
        assert "smartstudy_http_request_duration_seconds" in r.text
        # The security headers apply here as everywhere.
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["content-security-policy"].startswith("default-src 'none'")
    with TestClient(app, client=("::1", 40000)) as local6:
        assert local6.get("/metrics").status_code == 200


def test_access_with_a_token_needs_it_from_everyone(context):
    context.settings.metrics_token = TOKEN
    with TestClient(create_app(context=context), client=("127.0.0.1", 40000)) as local:
        r = local.get("/metrics")
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        wrong = local.get("/metrics", headers={"Authorization": "Bearer " + "y" * 34})
        assert wrong.status_code == 401
        basic = local.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"})
        assert basic.status_code == 401
        ok = local.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200


def test_a_short_metrics_token_is_refused():
    with pytest.raises(ValidationError, match="metrics_token"):
        Settings(metrics_token="short")


def test_request_ids_are_echoed_or_made(client):
    r = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.42"})
    assert r.headers["x-request-id"] == "lb-7f3a.42"
    for unsafe in ("two words", "x" * 200, "<script>", ""):
        r = client.get("/healthz", headers={"X-Request-ID": unsafe})
        made = r.headers["x-request-id"]
        assert made != unsafe and len(made) == 32 and int(made, 16) >= 0
    first = client.get("/healthz").headers["x-request-id"]
    assert first != client.get("/healthz").headers["x-request-id"]


def test_multiprocess_problem_names_the_setting(tmp_path, monkeypatch):
    monkeypatch.delenv(metrics.MULTIPROC_ENV, raising=False)
    assert metrics.multiprocess_problem() is None
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path / "missing"))
    problem = metrics.multiprocess_problem()
    assert problem is not None and metrics.MULTIPROC_ENV in problem and "missing" in problem
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path))
    assert metrics.multiprocess_problem() is None


# An API process in multiprocess mode (the recording half of it: the middleware and the
# predictor call these); light, so that two of them start fast.
_PROCESS = textwrap.dedent(
    """
    from smartstudy.observability import metrics

    for _ in range(2):
        metrics.observe_request("GET", "/healthz", 200, 0.01)
    metrics.prediction_served("baseline")
    """
)


def test_multiprocess_mode_sums_every_process(tmp_path, monkeypatch):
    folder = tmp_path / "prometheus"
    folder.mkdir()
    env = {**os.environ, metrics.MULTIPROC_ENV: str(folder)}
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", _PROCESS],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    assert len(list(folder.glob("histogram_*.db"))) == 2  # one file per process

    # A scrape in multiprocess mode sums the processes' files (this test process's own
    # values are not among them: it started without the variable).
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(folder))
    samples = parse(metrics.exposition().decode())
    assert _count(samples, "GET", "/healthz", "2xx") == 4
    assert (
        value(samples, f"{LATENCY}_bucket", method="GET", route="/healthz", status="2xx", le="0.01")
        == 4
    )
    assert value(samples, "smartstudy_predictions_total", family="baseline") == 2
