"""The admin models page's live training runs (issue 16): /admin/models/runs.json gives the
rows of the page's runs table while a run is queued, running and finished, to admins only;
the page includes admin.js, and "Train now" no longer asks for a refresh."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from smartstudy.models.baseline import Baseline
from smartstudy.services.predictor import PredictionService
from smartstudy.services.training import run_queued_trainings
from smartstudy.store.orm import Job
from smartstudy.web.render import NOTICES
from smartstudy.web.routes.admin import run_outcome, run_summary, versions_stored
from tests.test_audit import RecordingRunner
from tests.web.conftest import Web, complete_task, create_task, make_admin

RUNS = "/admin/models/runs.json"


def _page_run_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-run="([0-9a-f-]+)"', html)


def test_an_admin_follows_a_run_from_queued_to_finished(web: Web, context, maths):
    # Only the baseline family, and a runner that runs nothing until the test says so.
    context.predictor = PredictionService(chain=("baseline",), factories={"baseline": Baseline})
    context.runner = RecordingRunner()
    make_admin(context)
    web.signup("robin@example.com")
    for correct in (True, False, True):
        complete_task(web, create_task(web, maths.topic_id), correct=correct)
    web.login("admin@example.com")

    assert web.get(RUNS).json() == {"runs": [], "active": False}
    # No run yet: the (empty) table is there, hidden, for admin.js to add the first run to.
    empty = web.get("/admin/models").text
    assert '<div class="table-wrap" id="training-runs-wrap" hidden>' in empty
    assert '<p class="empty" id="training-runs-empty">No training has run yet.</p>' in empty
    assert "data-train>" in empty and 'data-live="/admin/models/runs.json"' in empty
    r = web.post("/admin/models/train")
    assert r.headers["location"] == "/admin/models?done=training"
    page = web.get(r.headers["location"])
    assert NOTICES["training"] in page.text and "refresh" not in NOTICES["training"]
    assert re.search(r'<script src="/static/admin\.js\?v=[0-9a-f]+" defer></script>', page.text)
    assert 'id="runs-live" role="status" aria-live="polite"' in page.text

    queued = web.get(RUNS)
    assert queued.status_code == 200
    assert queued.headers["content-type"] == "application/json"
    assert queued.headers["cache-control"] == "no-store"
    body = queued.json()
    assert body["active"] is True and len(body["runs"]) == 1
    run = body["runs"][0]
    assert run["status"] == "queued" and run["active"] is True and run["badge"] == "open"
    assert run["took"] == "—" and run["outcome"] is None and run["finished_at"] is None
    # The page shows the same run, in a row the script can find.
    assert _page_run_ids(page.text) == [run["id"]]
    assert f'<tr data-run="{run["id"]}" data-status="queued">' in page.text
    assert '<p class="empty" id="training-runs-empty" hidden>' in page.text

    assert run_queued_trainings(context) == 1
    body = web.get(RUNS).json()
    assert body["active"] is False
    done = body["runs"][0]
    assert done["id"] == run["id"] and done["status"] == "succeeded" and done["active"] is False
    assert done["badge"] == "good" and done["error"] is None
    assert done["versions_stored"] == 1
    assert done["outcome"] == "Training finished: 1 version stored."
    assert re.fullmatch(r"3 rows; baseline: v\d+ \w+", done["summary"]), done["summary"]
    assert done["duration_seconds"] >= 0 and done["took"].endswith("s")
    started = datetime.fromisoformat(done["started_at"])
    assert started <= datetime.fromisoformat(done["finished_at"])
    # Served as the page writes it: the row of the reloaded page has the same cells.
    page = web.get("/admin/models").text
    row = page[page.index(f'<tr data-run="{run["id"]}"') :]
    row = row[: row.index("</tr>")]
    for key in ("started", "took", "summary"):
        assert f">{done[key]}<" in row or f">{done[key]}</td>" in row, (key, row)
    assert '<span class="badge good">succeeded</span>' in row


def test_students_and_visitors_get_no_runs(web: Web, context, maths):
    make_admin(context)
    web.signup("robin@example.com")
    r = web.get(RUNS)
    assert r.status_code == 403 and "admins only" in r.text
    assert r.headers["content-type"].startswith("text/html")
    web.logout_locally()
    r = web.get(RUNS, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/admin/models/runs.json"


def _job(status: str, error: str | None, summary: dict) -> Job:
    start = datetime(2026, 11, 30, 9, tzinfo=UTC)
    return Job(
        id=uuid.uuid4(),
        kind="training",
        status=status,
        created_at=start,
        started_at=start,
        finished_at=start + timedelta(seconds=75),
        error=error,
        summary=summary,
        attempts=1,
    )


def test_a_runs_summary_and_the_sentence_announced_when_it_ends():
    chain = ("neural", "lnirt", "baseline")
    summary = {
        "rows": 120,
        "neural": {"error": "RuntimeError: boom"},
        "lnirt": {"version": 3, "status": "active"},
        "baseline": {"skipped": "fewer than 10 tasks"},
    }
    failed = _job("failed", "neural: RuntimeError: boom\nsecond line", summary)
    assert (
        run_summary(failed, chain) == "120 rows; neural: error; lnirt: v3 active; baseline: skipped"
    )
    assert versions_stored(failed, chain) == 1
    assert run_outcome(failed, chain) == (
        "Training failed: neural: RuntimeError: boom (1 version stored)."
    )
    three = {name: {"version": 2, "status": "candidate"} for name in chain}
    assert run_outcome(_job("succeeded", None, {"rows": 9, **three}), chain) == (
        "Training finished: 3 versions stored."
    )
    assert run_outcome(_job("failed", None, {}), chain) == (
        "Training failed: no reason was recorded."
    )
    assert run_outcome(_job("running", None, {}), chain) is None
    assert run_summary(_job("queued", None, {}), chain) == ""
