"""The study timer: choose a topic and difficulty, see the prediction, time the task, mark the
result, and see how the next prediction changed.

It is a plain form flow (each step a POST that redirects to a page), so it works without
JavaScript; ``static/app.js`` adds the running clock, which only fills in the time fields.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from starlette.responses import Response

from smartstudy.services import explain, planning, rules, tasks
from smartstudy.services.errors import ConflictError, NotFoundError, ServiceError
from smartstudy.store.orm import PracticeTask
from smartstudy.store.repositories import catalogue as catalogue_rows
from smartstudy.store.repositories import tasks as task_rows
from smartstudy.web import forms
from smartstudy.web.deps import DB, Context, Form, PageRoute, PageUser, UoW, parse_id
from smartstudy.web.render import redirect, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)


#: Open tasks listed beside the picker.
OPEN_TASKS_SHOWN = 5
#: Recommendations shown as "Suggested next" above the picker.
SUGGESTIONS_SHOWN = 3


def _suggestions(db: DB, context: Context, user) -> list:
    """Up to ``SUGGESTIONS_SHOWN`` recommended (topic, difficulty) pairs, each with its
    predicted chance, time and reason; none when no prediction can be made right now."""
    try:
        return planning.recommendations(db, context.predictor, user, limit=SUGGESTIONS_SHOWN)
    except ServiceError:
        return []


def _picker(
    request: Request, db: DB, context: Context, user, values: dict, errors: dict, status: int
) -> Response:
    return render(
        request,
        "study.html",
        {
            "active": "study",
            "subjects": catalogue_rows.subjects_with_topics(db),
            "difficulties": rules.DIFFICULTIES,
            "values": values,
            "errors": errors,
            "open_tasks": task_rows.open_tasks(db, user.id, OPEN_TASKS_SHOWN),
            "suggestions": _suggestions(db, context, user),
            "max_description": rules.MAX_DESCRIPTION,
        },
        status_code=status,
    )


@router.get("/study")
def study(request: Request, db: DB, context: Context, user: PageUser) -> Response:
    q = request.query_params
    topic_id = forms.optional_uuid(q.get("topic"))
    topic = catalogue_rows.find_topic(db, topic_id) if topic_id else None
    difficulty = q.get("difficulty") if q.get("difficulty") in rules.DIFFICULTIES else None
    if topic is None and difficulty is None:
        # Nothing asked for: the page remembers the student's last choice.
        last = task_rows.last_task(db, user.id)
        if last is not None:
            topic, difficulty = last.topic, last.difficulty
    values = {
        "subject": str(topic.subject_id) if topic else "",
        "topic": str(topic.id) if topic else "",
        "difficulty": difficulty or "medium",
        "description": "",
    }
    return _picker(request, db, context, user, values, {}, 200)


@router.post("/study")
def create(
    request: Request, uow: UoW, db: DB, context: Context, user: PageUser, form: Form
) -> Response:
    """The "Predict" step: a task is created and stored with its prediction."""
    values = {
        "subject": forms.text(form, "subject", 64),
        "topic": forms.text(form, "topic", 64),
        "difficulty": forms.text(form, "difficulty", 16),
        "description": forms.typed(form, "description"),
    }
    errors: dict[str, str] = {}
    try:
        forms.checked_text(
            values["description"], "description", rules.MAX_DESCRIPTION, multiline=True
        )
    except forms.FieldError as exc:
        errors["description"] = str(exc)
    topic = None
    topic_id = forms.optional_uuid(values["topic"])
    if topic_id is None:
        errors["topic"] = "Choose a topic."
    else:
        topic = catalogue_rows.find_topic(db, topic_id)
        subject_id = forms.optional_uuid(values["subject"])
        if topic is None:
            errors["topic"] = "That topic does not exist any more; choose another."
        elif subject_id is not None and topic.subject_id != subject_id:
            errors["topic"] = "That topic is not part of the chosen subject."
    if values["difficulty"] not in rules.DIFFICULTIES:
        errors["difficulty"] = f"Choose a difficulty: {forms.choices(rules.DIFFICULTIES)}."
    if not errors and topic is not None:
        try:
            task = tasks.create_task(
                db, context.predictor, user, topic.id, values["difficulty"], values["description"]
            )
        except ServiceError as exc:
            uow.rollback()
            errors["form"] = f"No prediction could be made right now: {exc}"
        else:
            return redirect(f"/study/tasks/{task.id}")
    return _picker(request, db, context, user, values, errors, 422)


def _task(db: DB, user, task_id: str) -> PracticeTask:
    task = tasks.get_task(db, user, parse_id(task_id))
    if task.user_id != user.id:  # admins read everyone's tasks through the API, not here
        raise NotFoundError("task not found")
    return task


def _task_page(
    request: Request,
    db: DB,
    context: Context,
    user,
    task: PracticeTask,
    values: dict | None = None,
    errors: dict | None = None,
    status: int = 200,
) -> Response:
    ctx: dict = {
        "active": "study",
        "task": task,
        "values": values or {"minutes": "", "seconds": ""},
        "errors": errors or {},
        "next_prediction": None,
        "next_explanation": None,
        # The stored prediction was made from the tasks completed before this one existed.
        "explanation": explain.for_task(db, task),
    }
    ctx["next_stored"] = False
    if task.completed_at is not None and task.next_prediction:
        # What was shown right after the completion, not what today's models say.
        ctx["next_prediction"] = task.next_prediction
        ctx["next_explanation"] = {"sentences": task.next_prediction.get("sentences", [])}
        ctx["next_stored"] = True
    elif task.completed_at is not None:
        try:
            nxt = tasks.preview(db, context.predictor, user, task.topic_id, task.difficulty)
        except ServiceError:
            nxt = None
        if nxt is not None:
            ctx["next_prediction"] = nxt
            ctx["next_explanation"] = explain.for_prediction(
                db, user.id, task.topic_id, task.topic.name, task.difficulty, nxt
            )
    return render(request, "study_task.html", ctx, status_code=status)


@router.get("/study/tasks/{task_id}")
def task_page(request: Request, task_id: str, db: DB, context: Context, user: PageUser) -> Response:
    return _task_page(request, db, context, user, _task(db, user, task_id))


@router.post("/study/tasks/{task_id}/discard")
def discard(task_id: str, uow: UoW, db: DB, user: PageUser, form: Form) -> Response:
    """Drop an unfinished task; a completed one stays (its page says why)."""
    task = _task(db, user, task_id)
    try:
        tasks.discard_task(db, user, task.id)
    except ConflictError:
        uow.rollback()
        return redirect(f"/study/tasks/{task_id}")
    return redirect("/study", notice="discarded")


@router.post("/study/tasks/{task_id}/start")
def start(task_id: str, uow: UoW, db: DB, user: PageUser, form: Form) -> Response:
    """Called by the timer's first Start: records when work began (once)."""
    task = _task(db, user, task_id)
    try:
        tasks.start_task(db, user, task.id)
    except ConflictError:
        uow.rollback()
    return Response(status_code=204)


@router.post("/study/tasks/{task_id}/complete")
def complete(
    request: Request, task_id: str, uow: UoW, db: DB, context: Context, user: PageUser, form: Form
) -> Response:
    task = _task(db, user, task_id)
    values = {
        "minutes": forms.text(form, "minutes", 32),
        "seconds": forms.text(form, "seconds", 32),
    }
    result = forms.text(form, "result", 16)
    errors: dict[str, str] = {}
    seconds = 0.0
    try:
        seconds = forms.elapsed_seconds(values["minutes"], values["seconds"])
    except forms.FieldError as exc:
        errors["time"] = str(exc)
    if result not in ("correct", "wrong"):
        errors["result"] = "Mark the task as correct or wrong."
    if task.completed_at is not None:
        return redirect(f"/study/tasks/{task.id}")
    if errors:
        return _task_page(request, db, context, user, task, values, errors, 422)
    task_uuid: uuid.UUID = task.id
    try:
        tasks.complete_task(context, uow, user, task_uuid, result == "correct", seconds)
    except ConflictError:
        uow.rollback()
        return redirect(f"/study/tasks/{task_uuid}#result")
    # The models have learnt it: what they predict next is kept with the task.
    tasks.remember_next(db, context.predictor, user, task_uuid)
    return redirect(f"/study/tasks/{task_uuid}#result")
