"""The admin models page: versions and metrics, training runs, the training counter, the
prediction distribution per model with its saturation warning, and the admin actions
(activate a version, train now, recompute BKT). The runs table updates itself while a run is
queued or running: ``static/admin.js`` polls ``/admin/models/runs.json``, which gives the
same rows as the page (``run_view``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta
from functools import cache, partial
from typing import Any

from fastapi import APIRouter, Request
from jinja2 import Template
from starlette.responses import JSONResponse, Response

from smartstudy.services import audit, catalogue, mastery, person_fit, registry
from smartstudy.services.errors import ConflictError, InvalidInputError, NotFoundError
from smartstudy.services.reports import admin as admin_report
from smartstudy.services.training import nothing_new_since, queue_training, schedule_training
from smartstudy.store.orm import Job, User, utcnow
from smartstudy.store.repositories import models as model_rows
from smartstudy.web import charts
from smartstudy.web.deps import DB, AdminUser, Context, Form, PageRoute, UoW, parse_id
from smartstudy.web.render import duration, environment, redirect, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

VERSIONS_SHOWN = 12
AUDIT_SHOWN = 20
RUNS_SHOWN = 10
PERSON_FIT_SHOWN = 50
#: Run states that will still change: the page polls while a run is in one of them.
ACTIVE_STATES = ("queued", "running")
#: The prediction distribution covers tasks created this recently (what the models do now).
MONITOR_WINDOW = timedelta(days=30)
#: Metrics worth a column, in this order, looked up in a version's metrics (nested too).
_METRIC_KEYS = ("log_loss", "rmse_log_time", "coverage_80", "rows")


def metric_summary(metrics: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The headline numbers of a version: its own validation (or training) scores first."""
    if not metrics:
        return []
    for section in ("validation", "training"):
        part = metrics.get(section)
        if isinstance(part, dict):
            return [(k, _fmt(part[k])) for k in _METRIC_KEYS if k in part]
    return [(k, _fmt(v)) for k, v in metrics.items() if isinstance(v, int | float)][:4]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def run_summary(job: Job, chain: Sequence[str]) -> str:
    """What a run did, in one line: "120 rows; neural: v3 active; lnirt: skipped"."""
    summary = job.summary or {}
    if not summary:
        return ""
    parts = [f"{summary.get('rows', '?')} rows"]
    for name in chain:
        family = summary.get(name)
        if not family:
            continue
        if family.get("error"):
            parts.append(f"{name}: error")
        elif family.get("skipped"):
            parts.append(f"{name}: skipped")
        else:
            parts.append(f"{name}: v{family.get('version')} {family.get('status', '')}".rstrip())
    return "; ".join(parts)


def versions_stored(job: Job, chain: Sequence[str]) -> int:
    """How many families of the chain stored a new version in this run."""
    summary = job.summary or {}
    return sum(1 for name in chain if "version" in (summary.get(name) or {}))


def run_outcome(job: Job, chain: Sequence[str]) -> str | None:
    """The sentence announced when a run ends ("Training finished: 3 versions stored"),
    None while it is queued or running."""
    stored = versions_stored(job, chain)
    versions = f"{stored} version{'' if stored == 1 else 's'} stored"
    if job.status == "succeeded":
        return f"Training finished: {versions}."
    if job.status == "failed":
        reason = (job.error or "no reason was recorded").strip().splitlines()[0]
        return f"Training failed: {reason}" + (f" ({versions})." if stored else ".")
    return None


@cache
def _when_template() -> Template:
    """The pages' ``when`` filter (the viewer's clock), for the rows sent as JSON."""
    return environment().from_string("{{ value|when }}")


def run_view(job: Job, chain: Sequence[str], viewer: User | None) -> dict[str, Any]:
    """One row of the runs table, as the page shows it and as ``runs.json`` sends it."""
    took = (
        (job.finished_at - job.started_at).total_seconds()
        if job.finished_at and job.started_at
        else None
    )
    return {
        "id": str(job.id),
        "status": job.status,
        "active": job.status in ACTIVE_STATES,
        "badge": {"succeeded": "good", "failed": "bad"}.get(job.status, "open"),
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "started": _when_template().render(value=job.started_at or job.created_at, user=viewer),
        "duration_seconds": took,
        "took": duration(took) if took is not None else "—",
        "attempts": job.attempts or 1,
        "error": job.error,
        "summary": run_summary(job, chain),
        "versions_stored": versions_stored(job, chain),
        "outcome": run_outcome(job, chain),
    }


def run_views(db: DB, context: Context, viewer: User) -> list[dict[str, Any]]:
    """The rows of the runs table: the newest training runs."""
    chain = list(context.predictor.chain)
    return [run_view(job, chain, viewer) for job in registry.training_runs(db, limit=RUNS_SHOWN)]


def _page(
    request: Request,
    db: DB,
    context: Context,
    error: str | None = None,
    status: int = 200,
) -> Response:
    chain = list(context.predictor.chain)
    versions, counts = admin_report.recent_versions(db, chain, VERSIONS_SHOWN)
    distribution = registry.prediction_distribution(db, since=utcnow() - MONITOR_WINDOW)
    bkt_runs = model_rows.recent_bkt_runs(db, 5)
    bkt_active = model_rows.count_active_bkt_params(db)
    fallbacks = list(reversed(getattr(context.predictor, "fallbacks", [])))[:10]
    serving = registry.describe_policy(
        registry.serving_policy(db, chain), tuple(context.predictor.chain)
    )
    return render(
        request,
        "admin_models.html",
        {
            "active": "admin",
            "chain": chain,
            "versions": versions,
            "version_counts": counts,
            "monitor_days": MONITOR_WINDOW.days,
            "metric_summary": metric_summary,
            "runs": run_views(db, context, request.state.user),
            "counter": registry.training_counter(db),
            "retrain_every": context.settings.retrain_every,
            "distribution": distribution,
            "charts": bool(distribution),
            "histogram": charts.prediction_histogram(distribution) if distribution else None,
            "bkt_runs": bkt_runs,
            "bkt_active": bkt_active,
            "fallbacks": fallbacks,
            "serving": serving,
            "min_holdout_users": registry.MIN_USERS_FOR_HOLDOUT,
            "live_min_rows": registry.LIVE_MIN_ROWS,
            "live_margin": registry.LIVE_MARGIN,
            "exp": math.exp,
            "audit_entries": audit.recent(db, AUDIT_SHOWN),
            "catalogue_empty": not catalogue.has_topics(db),
            "error": error,
        },
        status_code=status,
    )


@router.get("/admin")
def admin_home(_admin: AdminUser) -> Response:
    return redirect("/admin/models")


@router.get("/admin/models")
def models_page(request: Request, db: DB, context: Context, _admin: AdminUser) -> Response:
    return _page(request, db, context)


#: The flag levels offered on the person-fit page (a p-value below it flags a student).
PERSON_FIT_LEVELS = (0.05, 0.01, 0.001)


@router.get("/admin/person-fit")
def person_fit_page(
    request: Request, db: DB, context: Context, _admin: AdminUser, level: float = 0.05
) -> Response:
    """Students whose response times or answers the served LNIRT does not explain (rapid
    guessing, times far from their own speed, erratic answers): ``GET /v1/admin/person-fit``
    as a page, computed when asked for, not on every visit of the models page."""
    level = level if level in PERSON_FIT_LEVELS else PERSON_FIT_LEVELS[0]
    report = person_fit.person_fit_report(context, db, level=level, limit=PERSON_FIT_SHOWN)
    return render(
        request,
        "admin_person_fit.html",
        {"active": "admin", "report": report, "levels": PERSON_FIT_LEVELS},
    )


@router.get("/admin/models/runs.json")
def runs_json(db: DB, context: Context, admin: AdminUser) -> Response:
    """The runs table's rows for its live updates (``static/admin.js``); admins only, like
    the page (a student gets the 403 page, a visitor the log-in redirect)."""
    runs = run_views(db, context, admin)
    return JSONResponse(
        {"runs": runs, "active": any(r["active"] for r in runs)},
        headers={"Cache-Control": "no-store"},
    )


@router.post("/admin/models/versions/{version_id}/activate")
def activate(
    request: Request,
    version_id: str,
    uow: UoW,
    db: DB,
    context: Context,
    admin: AdminUser,
    form: Form,
) -> Response:
    try:
        row = registry.activate_version(context, db, parse_id(version_id))
        audit.record_activation(db, admin, row)
    except (ConflictError, NotFoundError) as exc:
        uow.rollback()
        return _page(request, db, context, f"Not activated: {exc}.", status=409)
    return redirect("/admin/models", notice="activated")


@router.post("/admin/models/train")
def train(uow: UoW, db: DB, context: Context, admin: AdminUser, form: Form) -> Response:
    """Queue a training; the page's unit of work stores the job before the redirect is sent,
    then wakes the runner. With nothing new since the last training, nothing is queued and
    the page says so."""
    if nothing_new_since(db) is not None:
        return redirect("/admin/models", notice="nothing-new")
    audit.record_training_request(db, admin, context.predictor.chain)
    queue_training(db)
    uow.after_commit(partial(schedule_training, context))
    return redirect("/admin/models", notice="training")


@router.post("/admin/models/bkt-recompute")
def bkt_recompute(
    request: Request, uow: UoW, db: DB, context: Context, admin: AdminUser, form: Form
) -> Response:
    """Fit BKT parameters for every concept with quiz data (as /v1/learning/bkt/recompute)."""
    options = mastery.FitOptions(activate=form.get("activate") == "on")
    try:
        outcome = mastery.fit_concepts(db, None, options, trigger="web", requested_by=admin.id)
        audit.record_bkt_fit(db, admin, outcome)
    except InvalidInputError as exc:
        uow.rollback()
        return _page(request, db, context, f"BKT recompute refused: {exc}.", status=422)
    return redirect("/admin/models", notice="recomputed")
