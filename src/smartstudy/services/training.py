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
from collections.abc import Callable
from datetime import datetime

import pandas as pd
from sqlalchemy import update
from sqlalchemy.orm import Session

from smartstudy.services import registry, tasks
from smartstudy.services.app_models import NEURAL_MIN_ROWS
from smartstudy.services.context import AppContext
from smartstudy.services.predictor import completed_interactions
from smartstudy.store.db import session_scope
from smartstudy.store.orm import Job, PracticeTask, TrainingCounter, User, utcnow

log = logging.getLogger(__name__)

TRAINING_JOB = "training"
#: Families that need more data than this before a training is worth it.
MIN_TRAINING_ROWS: dict[str, int] = {"neural": NEURAL_MIN_ROWS}


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


def run_training(context: AppContext, progress: Callable[[str, str], None] | None = None) -> Job:
    """The training job: fit every family of the chain on the training students' completed
    tasks, validate each new version against the active one on the held-out students, and
    activate it only if it does at least as well (``services.registry``).

    ``progress(family, stage)`` is called as the work advances (the CLI's progress bar).
    """
    report = progress or (lambda _name, _stage: None)
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
        train, holdout, held = registry.split_for_validation(data)
        summary.update(rows=len(data), training_rows=len(train), holdout_rows=len(holdout))
        for name in context.predictor.chain:
            try:
                summary[name] = _train_family(context, name, train, holdout, held, report)
            except Exception as exc:
                log.exception("training %s failed; the active version stays", name)
                errors.append(f"{name}: {type(exc).__name__}: {exc}")
                summary[name] = {"error": f"{type(exc).__name__}: {exc}"}
            report(name, "done")
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


def _train_family(
    context: AppContext,
    name: str,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    held: set[str],
    report: Callable[[str, str], None],
) -> dict:
    minimum = MIN_TRAINING_ROWS.get(name, 0)
    if len(train) < minimum:
        return {"skipped": f"{len(train)} training tasks, fewer than {minimum}"}
    report(name, "fitting")
    model, seconds = context.predictor.fit_model(name, train)
    report(name, "validating")
    with session_scope(context.sessions) as session:
        active, row = context.predictor.load_active(session, name)
        comparable = None
        if row is not None:
            comparable = registry.comparable_rows(
                holdout,
                (row.training_summary or {}).get("holdout_users") or (),
                row.trained_until,
            )
    decision = registry.validate(model, active, holdout, train, comparable)
    with session_scope(context.sessions) as session:
        row = context.predictor.store_version(
            session, name, model, train, seconds, decision=decision, holdout_users=held
        )
        return {
            "version": row.version,
            "status": row.status,
            "fit_seconds": round(seconds, 3),
            "decision": decision.reason,
        }
