"""Training: the completion counter, the training job, and completing a task end to end.

Every completion bumps a counter in the same transaction that stores it. When the counter
reaches ``Settings.retrain_every`` the completing request claims it (resets it to zero in the
same transaction, so exactly one request claims each batch) and, after its commit, submits a
training job. The job reads every completed task in one short transaction, fits each model
family outside any transaction (a SQLite writer is never blocked by a fit), then stores each
new version in another short transaction.
"""

from __future__ import annotations

import logging
import traceback
import uuid
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from smartstudy.services import tasks
from smartstudy.services.context import AppContext
from smartstudy.services.predictor import completed_interactions
from smartstudy.store.db import session_scope
from smartstudy.store.orm import Job, PracticeTask, TrainingCounter, User, utcnow

log = logging.getLogger(__name__)

TRAINING_JOB = "training"


def claim_training(session: Session, every: int) -> bool:
    """True for the one transaction that takes the counter from ``every`` back to zero."""
    result = session.execute(
        update(TrainingCounter)
        .where(TrainingCounter.name == tasks.TRAINING_COUNTER, TrainingCounter.count >= every)
        .values(count=0)
    )
    return result.rowcount == 1


def complete_task_and_learn(
    context: AppContext,
    session: Session,
    actor: User,
    task_id: uuid.UUID,
    is_correct: bool,
    actual_time_seconds: float,
    completed_at: datetime | None = None,
) -> PracticeTask:
    """Store the outcome, commit, let the served models learn, and train when it is due."""
    task = tasks.complete_task(
        session, actor, task_id, is_correct, actual_time_seconds, completed_at=completed_at
    )
    due = claim_training(session, context.settings.retrain_every)
    session.commit()
    context.predictor.observe(task)
    if due:
        schedule_training(context)
    return task


def schedule_training(context: AppContext) -> None:
    context.runner.submit(TRAINING_JOB, lambda: run_training(context))


def run_training(context: AppContext) -> Job:
    """The training job: fit every family of the chain on all completed tasks."""
    with session_scope(context.sessions) as session:
        job = Job(kind=TRAINING_JOB, status="running", started_at=utcnow())
        session.add(job)
        session.flush()
        job_id = job.id
    summary: dict = {}
    errors: list[str] = []
    try:
        with session_scope(context.sessions) as session:
            data = completed_interactions(session)
        summary["rows"] = len(data)
        for name in context.predictor.chain:
            try:
                model, seconds = context.predictor.fit_model(name, data)
                with session_scope(context.sessions) as session:
                    row = context.predictor.store_version(session, name, model, data, seconds)
                    summary[name] = {"version": row.version, "fit_seconds": round(seconds, 3)}
            except Exception as exc:
                log.exception("training %s failed; the active version stays", name)
                errors.append(f"{name}: {type(exc).__name__}: {exc}")
                summary[name] = {"error": f"{type(exc).__name__}: {exc}"}
        with session_scope(context.sessions) as session:
            session.execute(
                update(TrainingCounter)
                .where(TrainingCounter.name == tasks.TRAINING_COUNTER)
                .values(last_trained_at=utcnow())
            )
    except Exception as exc:
        errors.append("".join(traceback.format_exception_only(exc)).strip())
        log.exception("training job failed")
    with session_scope(context.sessions) as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.status = "failed" if errors else "succeeded"
        job.error = "\n".join(errors) or None
        job.summary = summary
        job.finished_at = utcnow()
    return job
