"""Training: the completion counter and the training job (the completion use case that bumps
and claims the counter is ``services.tasks.complete_task``).

Every completion bumps a counter in the same transaction that stores it. When the counter
reaches ``Settings.retrain_every`` the completing request claims it (resets it to zero in the
same transaction, so exactly one request claims each batch) and records a queued training job
in that transaction; after its commit it wakes the job runner. A request to train now does the
same (``queue_training``, commit, ``schedule_training``): the job row is stored before the
request is answered, so an accepted request is never lost (a failure to store it fails the
request). The runner's job function runs every queued training job, oldest first, each
``Settings.training_pause`` seconds or more after the end of the last training that succeeded
(in any process): under load a training is due again the moment one ends, and back-to-back
trainings took most of a core from the API processes while online learning kept the models
current anyway. A manual request waits that pause too, at most. A job
reads every completed task in one short transaction, fits each model family outside any
transaction (a SQLite writer is never blocked by a fit), then stores each new version in
another short transaction.
"""

from __future__ import annotations

import logging
import math
import traceback
import uuid
from collections.abc import Callable

import pandas as pd
from sqlalchemy import Connection, func, select, update
from sqlalchemy.orm import Session

from smartstudy.jobs import durable
from smartstudy.models.base import LearnerModel
from smartstudy.services import registry, tasks
from smartstudy.services.app_models import NEURAL_MIN_ROWS
from smartstudy.services.context import AppContext
from smartstudy.services.predictor import served_state
from smartstudy.store.db import session_scope
from smartstudy.store.orm import (
    Job,
    ModelVersion,
    PracticeTask,
    TrainingCounter,
    as_utc,
    utcnow,
)

log = logging.getLogger(__name__)

TRAINING_JOB = "training"
#: Families that need more data than this before a training is worth it.
MIN_TRAINING_ROWS: dict[str, int] = {"neural": NEURAL_MIN_ROWS}
#: Refit policy. A training job runs every ``retrain_every`` completions, and every family
#: learns each completion online in between. A family is refitted only once its training
#: data have grown by this fraction since its active version was fitted; until then the job
#: scores its active version on the held-out students and keeps it. The neural model's fit
#: costs tens of seconds at 100k tasks: 20%. A refit of Baseline and LNIRT (with the replay
#: of the held-out students through the new versions, ``served_state``) takes about 4 s of
#: CPU at 100k tasks against 0.4 s for a training that keeps them. Spread over the
#: completions that make the data grow by 10% (about 10,000 at 100k tasks), that is 0.4 ms
#: of CPU per completion, 3% of what serving a completion costs (13 to 16 ms of API and
#: database CPU at 100k tasks under load, ``benchmarks/load.py``); at 2% it was 2 ms, a
#: seventh. Between refits every family still learns each completion online: 10%.
REFIT_GROWTH: dict[str, float] = {"neural": 0.2, "lnirt": 0.1, "baseline": 0.1}
#: Below this many training tasks a family is refitted by every training whatever its growth:
#: there a refit takes a few seconds at most, and an admin's "Train now" refits.
REFIT_ALWAYS_BELOW: dict[str, int] = {"lnirt": 20_000, "baseline": 20_000}
#: From ``REFIT_ALWAYS_BELOW`` training tasks on, a refit starts from the hyperparameters
#: its active version chose by search (LNIRT's replays of training persons: about two
#: thirds of its fit, ``LearnerModel.warm_start``) until the training data have grown by
#: this fraction since that search; then, and on ``smartstudy train``, it searches again.
#: With less data every refit searches: it is cheap there, and the values still move.
SEARCH_AGAIN_GROWTH = 0.2


def claim_training(session: Session | Connection, every: int) -> bool:
    """True for the one transaction that takes the counter from ``every`` back to zero."""
    result = session.execute(
        update(TrainingCounter)
        .where(TrainingCounter.name == tasks.TRAINING_COUNTER, TrainingCounter.count >= every)
        .values(count=0)
    )
    return result.rowcount == 1


def mark_trained(session: Session) -> None:
    """Every completion so far has been trained on (outside a training job: the demo): the
    counter goes back to zero and the time of the last training is now."""
    session.execute(
        update(TrainingCounter)
        .where(TrainingCounter.name == tasks.TRAINING_COUNTER)
        .values(count=0, last_trained_at=utcnow())
    )


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


def nothing_new_since(session: Session) -> Job | None:
    """The last training that succeeded, when a new one would learn nothing from it: it
    trained on completed tasks, none has been completed (or imported, or deleted) since it
    started, and no training waits or runs. None when a training has something to do."""
    busy = session.scalar(
        select(func.count())
        .select_from(Job)
        .where(Job.kind == TRAINING_JOB, Job.status.in_(("queued", "running")))
    )
    if busy:
        return None
    last = session.scalars(
        select(Job)
        .where(Job.kind == TRAINING_JOB, Job.status == "succeeded", Job.started_at.is_not(None))
        .order_by(Job.started_at.desc())
        .limit(1)
    ).first()
    rows = (last.summary or {}).get("rows") if last is not None else None
    if last is None or not isinstance(rows, int) or rows < 1:
        return None
    count, newest = session.execute(
        select(func.count(), func.max(PracticeTask.completed_at)).where(
            PracticeTask.completed_at.is_not(None)
        )
    ).one()
    newest = as_utc(newest)
    started = last.started_at
    if count != rows or (newest is not None and started is not None and newest > started):
        return None
    return last


def schedule_training(context: AppContext) -> None:
    """Wake the runner for the queued training jobs (after the commit that stored them with
    ``queue_training``): the job ``training``, without arguments, coalesced with a run in
    progress (in process) or sent to the workers (``SMARTSTUDY_JOBS=celery``)."""
    context.runner.submit(TRAINING_JOB, {})


def run_queued_trainings(context: AppContext, job_id: str | None = None) -> int:
    """The job function of ``training``: first fail the trainings whose process died and
    queue them again (``jobs.durable``), then run every queued training job, oldest first,
    until none is left or the runner asks to stop; how many ran. ``job_id`` names the queued
    job that asked for this run (a retry handed out at start-up); all queued ones run."""
    durable.recover(context, [TRAINING_JOB])
    ran = 0
    while (
        not durable.pause(_pause_left(context))
        and (claimed := _claim_queued_training(context)) is not None
    ):
        run_training(context, job_id=claimed)
        ran += 1
    return ran


def _pause_left(context: AppContext) -> float:
    """Seconds until a training may start: ``Settings.training_pause`` after the end of the
    last one that succeeded, in any process (0: now, or when none is queued: a wake-up with
    nothing to do never waits)."""
    pause = context.settings.training_pause
    if pause <= 0:
        return 0.0
    with session_scope(context.sessions) as session:
        waiting = session.scalar(
            select(Job.id).where(Job.kind == TRAINING_JOB, Job.status == "queued").limit(1)
        )
        if waiting is None:
            return 0.0
        last = session.scalar(
            select(func.max(Job.finished_at)).where(
                Job.kind == TRAINING_JOB, Job.status == "succeeded"
            )
        )
    if last is None:
        return 0.0
    return min(pause, max(0.0, pause - (utcnow() - as_utc(last)).total_seconds()))


def _claim_queued_training(context: AppContext) -> uuid.UUID | None:
    """Mark the oldest queued training job running here (exactly one process gets each)."""
    with session_scope(context.sessions) as session:
        queued = session.scalars(
            select(Job.id)
            .where(Job.kind == TRAINING_JOB, Job.status == "queued")
            .order_by(Job.created_at)
        ).all()
        for job_id in queued:
            if durable.claim(session, job_id):
                return job_id
    return None


def run_training(
    context: AppContext,
    progress: Callable[[str, str], None] | None = None,
    *,
    job_id: uuid.UUID | None = None,
    refit_all: bool = False,
) -> Job:
    """The training job: fit every family of the chain on the training students' completed
    tasks, validate each new version against the active one on the held-out students, and
    activate it only if it does at least as well (``services.registry``).

    ``job_id`` is a job already marked running by this process; without it a new job row is
    started. ``refit_all`` refits the families of ``REFIT_GROWTH`` too, however little their
    data have grown (``smartstudy train``). ``progress(family, stage)`` is called as the work
    advances (the CLI's progress bar). While it runs, a thread keeps the job's heartbeat
    fresh; between families and fit stages it stops if its runner shuts down: the job is then
    failed ("interrupted by shutdown") and queued again.
    """
    shown = progress or (lambda _name, _stage: None)

    def report(name: str, stage: str) -> None:
        shown(name, stage)
        durable.check_stop()

    if job_id is None:
        with session_scope(context.sessions) as session:
            job_id = durable.start(session, TRAINING_JOB).id
    summary: dict = {}
    errors: list[str] = []
    interrupted: str | None = None
    with durable.Heartbeat(context, job_id):
        try:
            durable.check_stop()
            with session_scope(context.sessions) as session:
                data = context.history.read(session)
            train, holdout, held = registry.split_for_validation(data)
            summary.update(rows=len(data), training_rows=len(train), holdout_rows=len(holdout))
            summary["read"] = context.history.last_read
            scored: dict[str, registry.HeldOutPredictions] = {}
            for name in context.predictor.chain:
                durable.check_stop()
                summary[name], error = _train_or_keep(
                    context, name, (train, holdout, held), report, refit_all, scored
                )
                if error:
                    errors.append(error)
                shown(name, "done")
            report("serving", "validating")
            summary["serving"] = _evaluate_serving(context, holdout, scored, str(job_id))
        except durable.JobInterrupted as exc:
            interrupted = str(exc)
        except KeyboardInterrupt:
            # Stopped by hand (Ctrl-C on `smartstudy train`): failed, not retried.
            durable.finish(context, job_id, error="stopped by the user", summary=summary)
            raise
        except Exception as exc:
            errors.append("".join(traceback.format_exception_only(exc)).strip())
            log.exception("training job failed")
    if interrupted is not None:
        durable.interrupt(context, job_id, interrupted)
    else:
        durable.finish(context, job_id, error="\n".join(errors) or None, summary=summary)
    with session_scope(context.sessions) as session:
        job = session.get(Job, job_id)
        assert job is not None
    return job


def _train_or_keep(
    context: AppContext,
    name: str,
    data: tuple[pd.DataFrame, pd.DataFrame, set[str]],
    report: Callable[[str, str], None],
    refit_all: bool,
    scored: dict[str, registry.HeldOutPredictions],
) -> tuple[dict, str | None]:
    """Train one family (``_train_family``; ``data`` is train, holdout, held-out users) and
    add its held-out predictions to ``scored``. Returns its summary and None, or, if it
    failed, the error as its summary and as a line for the job, with the version kept
    scored instead."""
    train, holdout, held = data
    try:
        entry, served = _train_family(context, name, train, holdout, held, report, refit_all)
    except Exception as exc:
        log.exception("training %s failed; the active version stays", name)
        _score_kept_version(context, name, holdout, scored)
        return {"error": f"{type(exc).__name__}: {exc}"}, f"{name}: {type(exc).__name__}: {exc}"
    if served is not None:
        scored[name] = served
    return entry, None


def _train_family(
    context: AppContext,
    name: str,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    held: set[str],
    report: Callable[[str, str], None],
    refit_all: bool = False,
) -> tuple[dict, registry.HeldOutPredictions | None]:
    """Fit, validate and store one family; its summary, and the held-out predictions of the
    version it serves from now on (None when it has none or nothing is held out)."""
    minimum = MIN_TRAINING_ROWS.get(name, 0)
    if len(train) < minimum:
        served = _held_out_predictions(context, name, holdout)
        return {"skipped": f"{len(train)} training tasks, fewer than {minimum}"}, served
    not_due = None if refit_all else _refit_not_due(context, name, train)
    if not_due is not None:
        return {"skipped": not_due}, _held_out_predictions(context, name, holdout)
    with session_scope(context.sessions) as session:
        active, row = context.predictor.load_active(session, name)
        comparable = None
        if row is not None:
            comparable = registry.comparable_rows(
                holdout,
                (row.training_summary or {}).get("holdout_users") or (),
                row.trained_until,
            )
    report(name, "fitting")
    warm = None if refit_all else _warm_from(name, active, len(train))
    model, seconds = context.predictor.fit_model(name, train, warm=warm)
    report(name, "validating")
    decision = registry.validate(model, active, holdout, train, comparable)
    # Outside any transaction: replaying the held-out students can take seconds.
    served = served_state(model, train, holdout) if decision.activate else None
    with session_scope(context.sessions) as session:
        stored = context.predictor.store_version(
            session,
            name,
            model,
            train,
            seconds,
            decision=decision,
            holdout_users=held,
            served_artifact=served,
        )
        version_id = str(stored.id if decision.activate else row.id if row else "")
        out = {
            "version": stored.version,
            "status": stored.status,
            "fit_seconds": round(seconds, 3),
            "decision": decision.reason,
        }
        if warm is not None and model.searched_rows() == warm.searched_rows():  # it took them
            out["searched"] = f"hyperparameters of version {row.version if row else '?'} reused"
    pred = decision.candidate_pred if decision.activate else decision.active_pred
    if holdout.empty or pred is None or not version_id:
        return out, None
    context.held_out.keep(name, version_id, holdout, pred)  # the next training reuses them
    usable = pred["p_correct"].notna().to_numpy()
    if not decision.activate and comparable is not None:
        # The kept version may have been fitted on early held-out rows (before a hold-out).
        usable = usable & comparable
    predicts_time = bool(getattr(model, "predicts_time", False))
    return out, registry.HeldOutPredictions(name, version_id, predicts_time, pred, usable)


def _warm_from(name: str, active: LearnerModel | None, rows: int) -> LearnerModel | None:
    """The active version of ``name``, when a refit on ``rows`` training tasks may reuse
    what it searched for (``SEARCH_AGAIN_GROWTH``); else None."""
    searched = active.searched_rows() if active is not None else None
    if searched is None or rows < REFIT_ALWAYS_BELOW.get(name, 0):
        return None
    return active if rows < searched * (1.0 + SEARCH_AGAIN_GROWTH) else None


def _refit_not_due(context: AppContext, name: str, train: pd.DataFrame) -> str | None:
    """Why ``name`` is not refitted this time (``REFIT_GROWTH``), or None when it is due.

    The growth counts from the family's last fit, whether validation activated it or not: a
    refit that validation rejected was tried on nearly these data, and refitting at every
    training until one is activated kept the worker busy for nothing."""
    growth = REFIT_GROWTH.get(name)
    if growth is None or len(train) < REFIT_ALWAYS_BELOW.get(name, 0):
        return None
    with session_scope(context.sessions) as session:
        row = session.execute(
            select(ModelVersion.version, ModelVersion.n_training_rows)
            .where(ModelVersion.model_name == name)
            .order_by(ModelVersion.version.desc())
            .limit(1)
        ).first()
    if row is None or not row.n_training_rows:
        return None
    needed = math.ceil(row.n_training_rows * (1.0 + growth))
    if len(train) >= needed:
        return None
    return (
        f"version {row.version} was fitted on {row.n_training_rows} training tasks; refitted "
        f"from {needed} on ({len(train)} now)"
    )


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
    pred = context.held_out.predict(name, version_id, model, holdout)
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
    time sees the new policy. With nothing held out the blocks are removed: the chain's last
    family answers first, uncalibrated."""
    blocks = registry.evaluate_serving(holdout, list(scored.values()), evaluation)
    chain = tuple(context.predictor.chain)
    with session_scope(context.sessions) as session:
        live = registry.live_scores(session, chain)
    for block in blocks.values():
        block["live"] = live
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
        # Last, then the commit at once: every completion updates this row too, and waits
        # while it is locked (this process may be a worker at a lower CPU priority).
        session.execute(
            update(TrainingCounter)
            .where(TrainingCounter.name == tasks.TRAINING_COUNTER)
            .values(last_trained_at=utcnow())
        )
    policy = registry.describe_policy(registry.ServingPolicy(blocks, live), chain)
    return {"held_out": policy["held_out"], "reason": policy["reason"], "order": policy["order"]}
