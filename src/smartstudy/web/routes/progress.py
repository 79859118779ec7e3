"""Dashboard, task history and analytics: a student's own numbers."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from smartstudy.services import localtime, rules
from smartstudy.services.reports import dashboard as dashboard_report
from smartstudy.services.reports import history as history_report
from smartstudy.services.reports import prediction_quality as quality_report
from smartstudy.store.orm import utcnow
from smartstudy.store.repositories import catalogue as catalogue_rows
from smartstudy.web import charts, forms
from smartstudy.web.deps import DB, PageRoute, PageUser
from smartstudy.web.render import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

PER_PAGE = 25
SORT_LABELS = {
    "date": "Created",
    "completed": "Completed",
    "topic": "Topic",
    "difficulty": "Difficulty",
    "predicted": "Predicted chance",
    "time": "Time taken",
    "result": "Result",
}


@router.get("/dashboard")
def dashboard(request: Request, db: DB, user: PageUser) -> Response:
    summary = dashboard_report.dashboard(db, user.id)
    clock = localtime.clock_of(user)
    return render(
        request,
        "dashboard.html",
        {
            "active": "dashboard",
            "d": summary,
            "charts": True,
            "trend": charts.daily_trend(summary.days, clock) if summary.total_completed else None,
        },
    )


@router.get("/tasks")
def history(request: Request, db: DB, user: PageUser) -> Response:
    q = request.query_params
    filters = history_report.HistoryFilters(
        subject_id=forms.optional_uuid(q.get("subject")),
        topic_id=forms.optional_uuid(q.get("topic")),
        difficulty=q.get("difficulty") if q.get("difficulty") in rules.DIFFICULTIES else None,
        status=q.get("status") if q.get("status") in history_report.STATUSES else None,
        result=q.get("result") if q.get("result") in history_report.RESULTS else None,
        date_from=forms.optional_date(q.get("from")),
        date_to=forms.optional_date(q.get("to")),
    )
    sort = q.get("sort") if q.get("sort") in history_report.SORTS else "date"
    descending = q.get("dir") != "asc"
    page = history_report.task_history(
        db,
        user.id,
        filters,
        sort=sort,
        descending=descending,
        # Out of range is clamped: page 10**30 shows the last page, per_page 10**6 shows 200.
        page=forms.positive_int(q.get("page"), 1, maximum=rules.MAX_PAGE),
        per_page=forms.positive_int(q.get("per_page"), PER_PAGE, maximum=rules.MAX_PAGE_SIZE),
    )
    # The query string of the current view, for sort links and pager links to extend.
    kept = {
        k: v
        for k, v in {
            "subject": str(filters.subject_id or ""),
            "topic": str(filters.topic_id or ""),
            "difficulty": filters.difficulty or "",
            "status": filters.status or "",
            "result": filters.result or "",
            "from": filters.date_from.isoformat() if filters.date_from else "",
            "to": filters.date_to.isoformat() if filters.date_to else "",
        }.items()
        if v
    }
    subjects = catalogue_rows.subjects_with_topics(db)
    return render(
        request,
        "tasks.html",
        {
            "active": "tasks",
            "page": page,
            "filters": kept,
            "sort": sort,
            "descending": descending,
            "sort_labels": SORT_LABELS,
            "subjects": subjects,
            "difficulties": rules.DIFFICULTIES,
            "per_page": page.per_page,
        },
    )


@router.get("/analytics")
def analytics_page(request: Request, db: DB, user: PageUser) -> Response:
    rows = quality_report.completed_rows(db, user.id)
    stats = quality_report.by_topic_and_difficulty(db, user.id)
    bins = quality_report.calibration(rows)
    weeks = quality_report.progress_by_week(rows)
    # A calibration curve or ECE from a handful of tasks is noise: say how many more are needed.
    shortfall = quality_report.calibration_shortfall(rows)
    figures = {}
    if rows:
        figures = {
            "accuracy": charts.accuracy_by_topic(stats),
            "time": charts.time_by_topic(stats),
            "scatter": charts.predicted_vs_actual(rows),
            "progress": charts.weekly_progress(weeks, localtime.clock_of(user)),
        }
        if not shortfall:
            figures["calibration"] = charts.calibration_chart(bins)
    return render(
        request,
        "analytics.html",
        {
            "active": "analytics",
            "charts": bool(rows),
            "figures": figures,
            "stats": stats,
            "bins": bins,
            "quality": quality_report.prediction_quality(rows),
            "shortfall": shortfall,
            "calibration_min": quality_report.CALIBRATION_MIN_TASKS,
            "n_weeks": len(weeks),
            "now": utcnow(),
        },
    )
