"""Training: the completion counter, the training job, and completing a task end to end.

Every completion bumps a counter in the same transaction that stores it. When the counter
reaches ``Settings.retrain_every`` the completing request claims it (resets it to zero in the
same transaction, so exactly one request claims each batch) and records a queued training job
in that transaction; after its commit it wakes the job runner. A request to train now does the
same (``queue_training``, commit, ``schedule_training``): the job row is stored before the
request is answered, so an accepted request is never lost (a failure to store it fails the
request). The runner's job function runs every queued training job, oldest first. A job
reads every completed task in one short transaction, fits each model family outside any
transaction (a SQLite writer is never blocked by a fit), then stores each new version in
another short transaction.
"""

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import Callable
from datetime import datetime
from functools import partial

import pandas as pd
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from smartstudy.services import registry, tasks
from smartstudy.services.app_models import NEURAL_MIN_ROWS
from smartstudy.services.context import AppContext
from smartstudy.services.predictor import completed_interactions
from smartstudy.store.db import session_scope
from smartstudy.store.orm import Job, ModelVersion, PracticeTask, TrainingCounter, User, utcnow

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
    if due:
        queue_training(session)
    session.commit()
    context.predictor.observe(task)
    if due:
        schedule_training(context)
    return task


def queue_training(session: Session) -> Job:
    """The queued training job that will include what ``session`` stores: the one waiting
    already (it has not read any data yet), or a new one. Added to ``session``, not committed.
    """
    waiting = session.scalars(
        select(Job.id)
        .where(Job.kind == TRAINING_JOB, Job.status == "queued")
        .order_by(Job.created_at)
        .limit(1)
    ).first()
    if waiting is not None:
        # Holds the row until this transaction ends, so the job cannot start (and read the
        # data) before this transaction's writes are committed; if it started just now,
        # nothing matches and a new job is queued instead.
        touched = session.execute(
            update(Job).where(Job.id == waiting, Job.status == "queued").values(status="queued")
        )
        if touched.rowcount == 1:
            job = session.get(Job, waiting)
            assert job is not None
            return job
    job = Job(kind=TRAINING_JOB, status="queued")
    session.add(job)
    session.flush()
    return job


def schedule_training(context: AppContext) -> None:
    """Wake the runner for the queued training jobs (after the commit that stored them with
    ``queue_training``); coalesced with a run in progress."""
    context.runner.submit(TRAINING_JOB, partial(run_queued_trainings, context))


def run_queued_trainings(context: AppContext) -> int:
    """The runner's job function: run every queued training job, oldest first; how many ran."""
    ran = 0
    while (job_id := _claim_queued_training(context)) is not None:
        run_training(context, job_id=job_id)
        ran += 1
    return ran


def _claim_queued_training(context: AppContext) -> uuid.UUID | None:
    """Mark the oldest queued training job running (exactly one process gets each)."""
    with session_scope(context.sessions) as session:
        queued = session.scalars(
            select(Job.id)
            .where(Job.kind == TRAINING_JOB, Job.status == "queued")
            .order_by(Job.created_at)
        ).all()
        for job_id in queued:
            claimed = session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == "queued")
                .values(status="running", started_at=utcnow())
            )
            if claimed.rowcount == 1:
                return job_id
    return None


def run_training(
    context: AppContext,
    progress: Callable[[str, str], None] | None = None,
    *,
    job_id: uuid.UUID | None = None,
) -> Job:
    """The training job: fit every family of the chain on the training students' completed
    tasks, validate each new version against the active one on the held-out students, and
    activate it only if it does at least as well (``services.registry``).

    ``job_id`` is a job already marked running; without it a new job row is started.
    ``progress(family, stage)`` is called as the work advances (the CLI's progress bar).
    """
    report = progress or (lambda _name, _stage: None)
    if job_id is None:
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
        scored: dict[str, registry.HeldOutPredictions] = {}
        for name in context.predictor.chain:
            try:
                summary[name], served = _train_family(context, name, train, holdout, held, report)
                if served is not None:
                    scored[name] = served
            except Exception as exc:
                log.exception("training %s failed; the active version stays", name)
                errors.append(f"{name}: {type(exc).__name__}: {exc}")
                summary[name] = {"error": f"{type(exc).__name__}: {exc}"}
                _score_kept_version(context, name, holdout, scored)
            report(name, "done")
        report("serving", "validating")
        summary["serving"] = _evaluate_serving(context, holdout, scored, str(job_id))
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
) -> tuple[dict, registry.HeldOutPredictions | None]:
    """Fit, validate and store one family; its summary, and the held-out predictions of the
    version it serves from now on (None when it has none or nothing is held out)."""
    minimum = MIN_TRAINING_ROWS.get(name, 0)
    if len(train) < minimum:
        served = _held_out_predictions(context, name, holdout)
        return {"skipped": f"{len(train)} training tasks, fewer than {minimum}"}, served
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
        stored = context.predictor.store_version(
            session, name, model, train, seconds, decision=decision, holdout_users=held
        )
        version_id = str(stored.id if decision.activate else row.id if row else "")
        out = {
            "version": stored.version,
            "status": stored.status,
            "fit_seconds": round(seconds, 3),
            "decision": decision.reason,
        }
    pred = decision.candidate_pred if decision.activate else decision.active_pred
    if holdout.empty or pred is None or not version_id:
        return out, None
    usable = pred["p_correct"].notna().to_numpy()
    if not decision.activate and comparable is not None:
        # The kept version may have been fitted on early held-out rows (before a hold-out).
        usable = usable & comparable
    predicts_time = bool(getattr(model, "predicts_time", False))
    return out, registry.HeldOutPredictions(name, version_id, predicts_time, pred, usable)


def _held_out_predictions(
    context: AppContext, name: str, holdout: pd.DataFrame
) -> registry.HeldOutPredictions | None:
    """The active version of ``name`` scored on the held-out rows it was not fitted on
    (for a family that was not retrained this time)."""
    if holdout.empty:
        return None
    with session_scope(context.sessions) as session:
        model, row = context.predictor.load_active(session, name)
        if model is None or row is None:
            return None
        usable = registry.comparable_rows(
            holdout, (row.training_summary or {}).get("holdout_users") or (), row.trained_until
        )
        version_id = str(row.id)
    pred = registry.predict_rows(model, holdout)
    usable = usable & pred["p_correct"].notna().to_numpy()
    predicts_time = bool(getattr(model, "predicts_time", False))
    return registry.HeldOutPredictions(name, version_id, predicts_time, pred, usable)


def _score_kept_version(
    context: AppContext,
    name: str,
    holdout: pd.DataFrame,
    scored: dict[str, registry.HeldOutPredictions],
) -> None:
    """After a failed training of ``name``, score its active version instead, so it keeps
    its place in the serving order if it earns it."""
    try:
        served = _held_out_predictions(context, name, holdout)
    except Exception:
        log.exception("scoring the active %s version failed; it is served last", name)
        return
    if served is not None:
        scored[name] = served


def _evaluate_serving(
    context: AppContext,
    holdout: pd.DataFrame,
    scored: dict[str, registry.HeldOutPredictions],
    evaluation: str,
) -> dict:
    """Score the served version of every family on the same held-out rows, fit their
    calibration, and store both with each version (``metrics["serving"]``), in the
    transaction that marks the training done, so a predictor that sees the new training
    time sees the new policy. With nothing held out the blocks are removed: the chain keeps
    its default order, uncalibrated."""
    blocks = registry.evaluate_serving(holdout, list(scored.values()), evaluation)
    with session_scope(context.sessions) as session:
        for row in session.scalars(
            select(ModelVersion).where(
                ModelVersion.model_name.in_(context.predictor.chain),
                ModelVersion.is_active.is_(True),
            )
        ):
            block = blocks.get(row.model_name)
            metrics = {k: v for k, v in (row.metrics or {}).items() if k != "serving"}
            if block is not None and block["version_id"] == str(row.id):
                metrics["serving"] = block
            if metrics != (row.metrics or {}):
                row.metrics = metrics  # a new dict, so the JSON column is written
        session.execute(
            update(TrainingCounter)
            .where(TrainingCounter.name == tasks.TRAINING_COUNTER)
            .values(last_trained_at=utcnow())
        )
        policy = registry.describe_policy(registry.ServingPolicy(blocks), context.predictor.chain)
    return {"held_out": policy["held_out"], "reason": policy["reason"], "order": policy["order"]}
