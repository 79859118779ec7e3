"""/v1/tasks: practice tasks with predictions, and prediction previews."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from smartstudy.api.deps import DB, Context, Credentials, CurrentUser, Lane, in_one_hand_over
from smartstudy.api.schemas import (
    CompleteIn,
    Difficulty,
    PredictionIn,
    PredictionOut,
    TaskIn,
    TaskOut,
    TaskPageOut,
)
from smartstudy.services import explain, rules, tasks
from smartstudy.services.catalogue import topic_names
from smartstudy.store.db import UnitOfWork
from smartstudy.store.orm import PracticeTask, User

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])


def task_out(task: PracticeTask, names: tuple[str, str] | None = None) -> TaskOut:
    """The answer for ``task``; ``names`` (topic, subject) spares loading its topic."""
    topic_name, subject_name = names or (task.topic.name, task.topic.subject.name)
    if task.completed_at is not None:
        state = "completed"
    elif task.started_at is not None:
        state = "started"
    else:
        state = "created"
    return TaskOut(
        id=task.id,
        user_id=task.user_id,
        topic_id=task.topic_id,
        topic_name=topic_name,
        subject_name=subject_name,
        difficulty=task.difficulty,  # type: ignore[arg-type]
        description=task.description,
        status=state,  # type: ignore[arg-type]
        created_at=task.created_at,
        started_at=task.started_at,
        completed_at=task.completed_at,
        is_correct=task.is_correct,
        actual_time_seconds=task.actual_time_seconds,
        predicted_correct=task.predicted_correct,
        predicted_time_median_s=task.predicted_time_median_s,
        predicted_time_p10_s=task.predicted_time_p10_s,
        predicted_time_p90_s=task.predicted_time_p90_s,
        model_name=task.model_name,
        model_version=task.model_version,
    )


@router.post("/preview", response_model=PredictionOut)
def preview(body: PredictionIn, session: DB, context: Context, user: CurrentUser) -> PredictionOut:
    """The prediction a new task would get, without creating it."""
    p = tasks.preview(session, context.predictor, user, body.topic_id, body.difficulty)
    topic_name = topic_names(session, body.topic_id)[0]
    others = explain.known_population(
        context.predictor, session, user.id, body.topic_id, body.difficulty
    )
    why = explain.for_prediction(
        session, user.id, body.topic_id, topic_name, body.difficulty, p, others
    )
    return PredictionOut(
        predicted_correct=p.p_correct,
        predicted_time_median_s=p.time_median_s,
        predicted_time_p10_s=p.time_p10_s,
        predicted_time_p90_s=p.time_p90_s,
        model_name=p.model_name,
        model_version=p.model_version,
        explanation=why.sentences,
    )


@router.post("", response_model=TaskOut, status_code=status.HTTP_201_CREATED)
async def create(body: TaskIn, context: Context, credentials: Credentials, lane: Lane) -> TaskOut:
    """Create a task; it is stored with the prediction made for it."""

    def work(uow: UnitOfWork, user: User) -> TaskOut:
        session = uow.session
        task = tasks.create_task(
            session, context.predictor, user, body.topic_id, body.difficulty, body.description
        )
        names = topic_names(session, task.topic_id)
        out = task_out(task, names)
        # The facts the stored prediction was made from: tasks completed before this one.
        others = explain.known_population(
            context.predictor, session, user.id, task.topic_id, task.difficulty
        )
        out.explanation = explain.for_task(session, task, names[0], others).sentences
        return out

    # Called once per task: one worker-thread hand-over (see ``in_one_hand_over``).
    return await in_one_hand_over(context, credentials, work, lane)


@router.get("", response_model=TaskPageOut)
def list_tasks(
    session: DB,
    user: CurrentUser,
    topic_id: uuid.UUID | None = None,
    difficulty: Difficulty | None = None,
    completed: bool | None = None,
    user_id: Annotated[uuid.UUID | None, Query(description="Admins only.")] = None,
    limit: Annotated[int, Query(ge=1, le=rules.MAX_PAGE_SIZE)] = 50,
    offset: Annotated[int, Query(ge=0, le=rules.MAX_OFFSET)] = 0,
) -> TaskPageOut:
    """Your tasks, newest first (admins: everyone's, or one user's with user_id)."""
    page = tasks.list_tasks(
        session,
        user,
        user_id=user_id,
        topic_id=topic_id,
        difficulty=difficulty,
        completed=completed,
        limit=limit,
        offset=offset,
    )
    return TaskPageOut(
        items=[task_out(t) for t in page.items],
        total=page.total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{task_id}", response_model=TaskOut)
def get(task_id: uuid.UUID, session: DB, user: CurrentUser) -> TaskOut:
    return task_out(tasks.get_task(session, user, task_id))


@router.post("/{task_id}/start", response_model=TaskOut)
def start(task_id: uuid.UUID, session: DB, user: CurrentUser) -> TaskOut:
    task = tasks.start_task(session, user, task_id)
    return task_out(task)


@router.delete(
    "/{task_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={409: {"description": "The task is completed: it cannot be discarded."}},
)
def discard(task_id: uuid.UUID, session: DB, user: CurrentUser) -> Response:
    """Discard a task that is not completed. A completed task answers 409."""
    tasks.discard_task(session, user, task_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{task_id}/complete", response_model=TaskOut)
async def complete(
    task_id: uuid.UUID, body: CompleteIn, context: Context, credentials: Credentials, lane: Lane
) -> TaskOut:
    """Record the result once (a second completion answers 409)."""

    def work(uow: UnitOfWork, user: User) -> TaskOut:
        task = tasks.complete_task(
            context, uow, user, task_id, body.is_correct, body.actual_time_seconds
        )
        return task_out(task, topic_names(uow.session, task.topic_id))

    # Called once per task: one worker-thread hand-over (see ``in_one_hand_over``).
    return await in_one_hand_over(context, credentials, work, lane)
