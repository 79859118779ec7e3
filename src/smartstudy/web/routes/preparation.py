"""Exam preparation: the student's exams, and for each a day-by-day plan to the exam date.

The plan is not stored: ``services.planning.exam_plan`` recomputes it on every request from
today's date on the student's clock and the current predictions, so completing a planned task
(from the plan's Start button, which goes through the study timer like any task) changes the
plan at once.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from smartstudy.planning import Plan, PlannedTask
from smartstudy.planning.ics import plan_to_ics
from smartstudy.services import localtime, planning, rules
from smartstudy.services.errors import ConflictError, InvalidInputError
from smartstudy.store.repositories import catalogue as catalogue_rows
from smartstudy.web import charts, forms
from smartstudy.web.deps import DB, Context, Form, PageRoute, PageUser, UoW, as_sentence, parse_id
from smartstudy.web.render import redirect, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

#: Monday first, as ``date.weekday()`` numbers them.
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
#: Days after today listed on an exam's page; the rest are behind "The other N days".
DAYS_SHOWN = 7
#: A form's list of dates off is at most this long: every date the service allows, each
#: written "2026-12-24, ".
MAX_DAYS_OFF_TEXT = 12 * rules.MAX_DAYS_OFF

#: For a service error about an argument of ``create_exam`` (``topics.2.weight`` counts as
#: ``topics``): the form field that shows it, and how its sentence starts.
_FIELDS = {
    "name": ("name", "The name"),
    "exam_date": ("exam_date", "The exam date"),
    "daily_minutes": ("daily_minutes", "Minutes a day"),
    "subject_id": ("subject", "The subject"),
    "topics": ("topics", "Each topic's weight"),
    "days_off": ("days_off", "Each day off"),
    "weekdays_off": ("weekdays_off", "Each weekday off"),
}


def _service_error(exc: InvalidInputError) -> tuple[str, str]:
    """The form field for ``exc`` and its message as a sentence that names the field."""
    if exc.field == "days_off":  # no study day left: the days off taken together
        return "weekdays_off", as_sentence(exc.message)
    field, label = _FIELDS.get(exc.field.split(".")[0], ("form", "This exam"))
    if exc.message.startswith("must"):
        return field, f"{label} {exc.message}."
    return field, as_sentence(exc.message)


def _empty_values() -> dict[str, Any]:
    return {
        "name": "",
        "subject": "",
        "exam_date": "",
        "daily_minutes": "30",
        "weekdays_off": [],
        "days_off": "",
        "weights": {},
    }


def _list_page(
    request: Request,
    db: DB,
    user,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    day = planning.user_today(user)
    exams = planning.list_exams(db, user, today=day)
    rows = [
        {
            "exam": exam,
            "days_left": (exam.exam_date - day).days,
            "topics": len(planning.exam_topic_names(db, exam)),
        }
        for exam in exams
    ]
    return render(
        request,
        "preparation.html",
        {
            "active": "preparation",
            "rows": rows,
            "subjects": catalogue_rows.subjects_with_topics(db),
            "weekdays": WEEKDAYS,
            "today": day,
            "rules": rules,
            "values": values or _empty_values(),
            "errors": errors or {},
        },
        status_code=status,
    )


@router.get("/preparation")
def preparation(request: Request, db: DB, user: PageUser) -> Response:
    return _list_page(request, db, user)


def _read_weights(
    form: FormData, errors: dict[str, str]
) -> tuple[dict[str, str], list[tuple[uuid.UUID, float]]]:
    """The per-topic weight boxes (``weight-<topic id>``): what was typed, and the topics
    given a weight above 0 as (topic id, weight)."""
    typed: dict[str, str] = {}
    chosen: list[tuple[uuid.UUID, float]] = []
    for key in form:
        if not key.startswith("weight-"):
            continue
        topic_id = forms.optional_uuid(key.removeprefix("weight-"))
        value = forms.text(form, key, 32).strip()
        if topic_id is None or not value:
            continue
        typed[str(topic_id)] = value
        try:
            weight = float(value.replace(",", "."))
        except ValueError:
            errors["topics"] = f"A weight must be a number, not “{value}”."
            continue
        if not 0 <= weight <= rules.MAX_TOPIC_WEIGHT:
            errors["topics"] = (
                f"A weight must be from 0 to {rules.MAX_TOPIC_WEIGHT:g}; you entered {value}."
            )
            continue
        if weight > 0:
            chosen.append((topic_id, weight))
    return typed, chosen


def _read_days_off(value: str, errors: dict[str, str]) -> list[date]:
    days = []
    for part in re.split(r"[\s,;]+", value.strip()):
        if not part:
            continue
        day = forms.optional_date(part)
        if day is None:
            errors["days_off"] = f"“{part}” is not a date; write dates as 2026-12-24."
            return []
        days.append(day)
    return days


@router.post("/preparation/exams")
def create_exam(request: Request, uow: UoW, db: DB, user: PageUser, form: Form) -> Response:
    """Add an exam. Bad input re-renders the form with each message next to its field
    (status 422) and stores nothing."""
    weekdays_typed = [v for v in form.getlist("weekdays_off") if isinstance(v, str)]
    values: dict[str, Any] = {
        "name": forms.typed(form, "name"),
        "subject": forms.text(form, "subject", 64),
        "exam_date": forms.text(form, "exam_date", 32),
        "daily_minutes": forms.text(form, "daily_minutes", 32),
        "weekdays_off": weekdays_typed,
        "days_off": forms.typed(form, "days_off"),
        "weights": {},
    }
    errors: dict[str, str] = {}
    name = values["name"].strip()
    try:
        forms.required(name, "the exam's name")
        forms.checked_text(name, "name", rules.MAX_EXAM_NAME)
    except forms.FieldError as exc:
        errors["name"] = "Enter the exam's name." if not name else str(exc)
    subject_id = forms.optional_uuid(values["subject"])
    values["weights"], topics = _read_weights(form, errors)
    if subject_id is None and not topics and "topics" not in errors:
        errors["subject"] = "Choose a subject, or give at least one topic a weight."
    exam_date = forms.optional_date(values["exam_date"])
    if exam_date is None:
        errors["exam_date"] = (
            "Enter the exam date." if not values["exam_date"] else "That is not a date."
        )
    elif exam_date <= planning.user_today(user):
        errors["exam_date"] = "The exam date must be after today."
    daily_minutes = 0
    raw_minutes = values["daily_minutes"].strip()
    if not raw_minutes.isdecimal():
        errors["daily_minutes"] = (
            "Enter how many minutes a day you can study, as a whole number."
            if not raw_minutes
            else f"Minutes a day must be a whole number, not “{raw_minutes}”."
        )
    else:
        daily_minutes = int(raw_minutes)
    weekdays_off = []
    for v in weekdays_typed:
        if v.isdecimal() and int(v) < len(WEEKDAYS):
            weekdays_off.append(int(v))
        else:
            errors["weekdays_off"] = "Choose days of the week from Monday to Sunday."
    if len(values["days_off"]) > MAX_DAYS_OFF_TEXT:
        errors["days_off"] = f"The list of days off must be at most {MAX_DAYS_OFF_TEXT} characters."
        days_off: list[date] = []
    else:
        days_off = _read_days_off(values["days_off"], errors)
    if not errors and exam_date is not None:
        try:
            exam = planning.create_exam(
                db,
                user,
                name=name,
                exam_date=exam_date,
                daily_minutes=daily_minutes,
                # Weighted topics replace the subject's equal weights.
                subject_id=None if topics else subject_id,
                topics=topics or None,
                days_off=days_off,
                weekdays_off=weekdays_off,
                today=planning.user_today(user),
            )
        except InvalidInputError as exc:
            uow.rollback()
            field, message = _service_error(exc)
            errors[field] = message
        else:
            return redirect(f"/preparation/exams/{exam.id}", notice="exam-added")
    return _list_page(request, db, user, values, errors, 422)


def _minutes_sentence(plan: Plan) -> str:
    target = f"{plan.target:.0%}"
    if plan.minutes_needed is None:
        return (
            f"No daily budget that was tried brings every topic to {target} by the exam date: "
            "consider fewer topics, a later date or an easier target."
        )
    if plan.minutes_needed <= plan.daily_minutes:
        return (
            f"Your {plan.daily_minutes} minutes a day are enough: {plan.minutes_needed} minutes "
            f"a day would already bring every topic to {target}."
        )
    return (
        f"To bring every topic to {target}, plan {plan.minutes_needed} minutes a day "
        f"(you chose {plan.daily_minutes})."
    )


@router.get("/preparation/exams/{exam_id}")
def exam_page(request: Request, exam_id: str, db: DB, context: Context, user: PageUser) -> Response:
    exam = planning.get_exam(db, user, parse_id(exam_id))
    day = planning.user_today(user)
    ctx: dict[str, Any] = {
        "active": "preparation",
        "exam": exam,
        "today": day,
        "days_left": (exam.exam_date - day).days,
        "topic_names": planning.exam_topic_names(db, exam),
        "weekdays": WEEKDAYS,
        "plan": None,
        "no_plan": "",
        "days_shown": DAYS_SHOWN,
    }
    try:
        plan = planning.exam_plan(db, context.predictor, user, exam, today=day)
    except ConflictError as exc:  # the exam date has come, or its topics are gone
        ctx["no_plan"] = as_sentence(str(exc))
    else:
        first = plan.days[0] if plan.days and plan.days[0].day == day else None
        ctx.update(
            plan=plan,
            today_plan=first,
            later=[d for d in plan.days if d is not first],
            minutes_sentence=_minutes_sentence(plan),
            groups={d.day: grouped(d.tasks) for d in plan.days},
            charts=True,
            figures={
                "readiness": charts.readiness_over_days(plan, localtime.clock_of(user)),
                "workload": charts.workload_curve(plan),
            },
        )
    return render(request, "preparation_exam.html", ctx)


@dataclass(frozen=True)
class TaskGroup:
    """A day's planned tasks of one topic and difficulty, shown as one line: the planner
    may give a day many short tasks of the same kind."""

    first: PlannedTask
    count: int
    minutes: float
    p_last: float

    @property
    def topic_id(self) -> str:
        return self.first.topic_id

    @property
    def topic_name(self) -> str:
        return self.first.topic_name

    @property
    def difficulty(self) -> str:
        return self.first.difficulty


def grouped(tasks: Sequence[PlannedTask]) -> list[TaskGroup]:
    """``tasks`` by (topic, difficulty), in the order each kind first comes in the day."""
    kinds: dict[tuple[str, str], list[PlannedTask]] = {}
    for t in tasks:
        kinds.setdefault((t.topic_id, t.difficulty), []).append(t)
    return [
        TaskGroup(
            first=same[0],
            count=len(same),
            minutes=sum(t.time_median_s for t in same) / 60,
            p_last=same[-1].p_correct,
        )
        for same in kinds.values()
    ]


def _file_name(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()[:60]
    return f"{slug or 'exam'}-plan.ics"


@router.get("/preparation/exams/{exam_id}/plan.ics")
def exam_calendar(exam_id: str, db: DB, context: Context, user: PageUser) -> Response:
    """The plan as an iCalendar file: one event per study day, listing its tasks."""
    exam = planning.get_exam(db, user, parse_id(exam_id))
    day = planning.user_today(user)
    try:
        # The calendar lists the days only: no workload curve to compute.
        plan = planning.exam_plan(db, context.predictor, user, exam, today=day, workload=False)
    except ConflictError:  # nothing left to plan: the exam's page says why
        return redirect(f"/preparation/exams/{exam.id}")
    body = plan_to_ics(plan, exam.name, uid_prefix=f"smartstudy-exam-{exam.id}")
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{_file_name(exam.name)}"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/preparation/exams/{exam_id}/delete")
def delete_exam(exam_id: str, db: DB, user: PageUser, form: Form) -> Response:
    planning.delete_exam(db, user, parse_id(exam_id))
    return redirect("/preparation", notice="exam-deleted")
