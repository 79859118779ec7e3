"""BKT mastery in the app: online updates, per-concept fitting with versions, and runs.

Attempts come from submitted quiz sessions (each answered question's snapshot names its
concept). Fitted parameters are stored as versions per concept; the database allows only
one active version per concept, and a version whose parameters fail validation or look
degenerate is stored for the record but never activated. Concepts without an active version
use the defaults of seed 003 (L0 0.1, T 0.2, S 0.1, G 0.2).
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from smartstudy.eval.crossval import crossvalidate
from smartstudy.models.bkt.core import (
    DEFAULT_PARAMS,
    BKTParams,
    check_degeneracy,
    next_attempt_mastery,
    shown_mastery_update,
    validate_params,
)
from smartstudy.models.bkt.em import fit_em
from smartstudy.models.bkt.model import BKT
from smartstudy.services.errors import InvalidInputError, NotFoundError
from smartstudy.store.orm import (
    AlgoRun,
    AlgoVersion,
    Base,
    BKTSkillParams,
    BKTUserSkillState,
    Concept,
    MasterySnapshot,
    SessionAnswer,
    SessionQuestion,
    StudySession,
    utcnow,
)

log = logging.getLogger(__name__)

ALGO_KEY = "bkt"
ALGO_VERSION = "v1"
# INSERT ... ON CONFLICT DO NOTHING, spelt by each backend the app runs on.
_DIALECT_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def algo_version(session: Session) -> AlgoVersion:
    """The ``bkt v1`` row, created on first use (race-safe: see ``_insert_if_absent``)."""
    stmt = select(AlgoVersion).where(
        AlgoVersion.key == ALGO_KEY, AlgoVersion.version == ALGO_VERSION
    )
    row = session.scalar(stmt)
    if row is None:
        _insert_if_absent(
            session,
            AlgoVersion,
            key=ALGO_KEY,
            version=ALGO_VERSION,
            description="Bayesian Knowledge Tracing (Corbett & Anderson 1995), EM fit",
        )
        row = session.scalars(stmt).one()
    return row


def _insert_if_absent(session: Session, model: type[Base], **values: object) -> None:
    """Insert a row unless one with the same key exists, without failing when another
    transaction inserts it at the same moment.

    A SELECT that finds nothing locks nothing, so two requests can both decide to insert;
    the unique key lets one win and the other would fail with an IntegrityError (a 500).
    ``ON CONFLICT DO NOTHING`` makes the loser wait for the winner's commit and then skip,
    after which a new SELECT (a new snapshot under READ COMMITTED) sees the winner's row.
    On SQLite, BEGIN IMMEDIATE already serialises writers; the clause is harmless there.
    """
    dialect = session.get_bind().dialect.name
    insert = _DIALECT_INSERTS.get(dialect)
    if insert is None:
        raise NotImplementedError(f"no insert-if-absent for the {dialect} dialect")
    session.execute(insert(model).values(**values).on_conflict_do_nothing())


def active_params(
    session: Session, concept_id: uuid.UUID
) -> tuple[BKTParams, BKTSkillParams | None]:
    row = session.scalar(
        select(BKTSkillParams).where(
            BKTSkillParams.concept_id == concept_id, BKTSkillParams.is_active.is_(True)
        )
    )
    if row is None:
        return DEFAULT_PARAMS, None
    return BKTParams(l0=row.l0, t=row.t, s=row.s, g=row.g, f=row.f), row


def apply_attempt(
    session: Session,
    user_id: uuid.UUID,
    concept_id: uuid.UUID,
    correct: bool,
    *,
    at: datetime | None = None,
    snapshot: bool = False,
    source: str = "update",
) -> BKTUserSkillState:
    """One online BKT step for (user, concept); the state keeps the mastery shown to the
    student: P(mastered | answers so far), never moved against the answer
    (:func:`~smartstudy.models.bkt.core.shown_mastery_update`)."""
    if session.get(Concept, concept_id) is None:
        raise NotFoundError("concept not found")
    params, params_row = active_params(session, concept_id)
    version_id = algo_version(session).id
    state = _locked_state(session, user_id, concept_id, params.l0)
    now = at or utcnow()
    # The stored value is the shown estimate (monotone in each answer); the predictive
    # P(L) of the next attempt is derived from it (see ``next_attempt``).
    state.p_mastery = shown_mastery_update(state.p_mastery, state.n_attempts, correct, params)
    state.n_attempts += 1
    state.last_attempt_at = now
    state.updated_at = utcnow()
    state.params_id = params_row.id if params_row else None
    state.algo_version_id = version_id
    if snapshot:
        session.add(
            MasterySnapshot(
                user_id=user_id,
                concept_id=concept_id,
                p_mastery=state.p_mastery,
                n_attempts=state.n_attempts,
                source=source,
                created_at=now,
            )
        )
    session.flush()
    return state


def _locked_state(
    session: Session, user_id: uuid.UUID, concept_id: uuid.UUID, l0: float
) -> BKTUserSkillState:
    """The (user, concept) state row, created at the prior ``l0`` if missing, locked until
    the transaction ends so that concurrent attempts apply one after the other."""
    stmt = (
        select(BKTUserSkillState)
        .where(BKTUserSkillState.user_id == user_id, BKTUserSkillState.concept_id == concept_id)
        .with_for_update()
        # The row may already sit in this session (several attempts in one request); the
        # locked read must overwrite it, or a concurrent transaction's update is lost.
        .execution_options(populate_existing=True)
    )
    state = session.scalar(stmt)
    if state is None:
        _insert_if_absent(
            session,
            BKTUserSkillState,
            user_id=user_id,
            concept_id=concept_id,
            p_mastery=l0,
            n_attempts=0,
        )
        state = session.scalars(stmt).one()
    return state


def next_attempt(session: Session, states: Iterable[BKTUserSkillState]) -> dict[uuid.UUID, float]:
    """P(L) at each state's next attempt (the BKT predictive state), by concept id.

    Derived from the stored shown estimate with the parameters that made it (the defaults
    when ``params_id`` is empty): one query for all the parameter rows involved.
    """
    states = list(states)
    ids = {s.params_id for s in states if s.params_id is not None}
    rows = (
        {r.id: r for r in session.scalars(select(BKTSkillParams).where(BKTSkillParams.id.in_(ids)))}
        if ids
        else {}
    )
    out = {}
    for s in states:
        row = rows.get(s.params_id) if s.params_id is not None else None
        params = BKTParams(l0=row.l0, t=row.t, s=row.s, g=row.g, f=row.f) if row else DEFAULT_PARAMS
        out[s.concept_id] = next_attempt_mastery(s.p_mastery, s.n_attempts, params)
    return out


def change_entry(session: Session, state: BKTUserSkillState) -> dict[str, object]:
    """A quiz submission's mastery entry: ``mastery`` to show, ``p_mastery`` the BKT state."""
    return {
        "concept_id": state.concept_id,
        "p_mastery": next_attempt(session, [state])[state.concept_id],
        "mastery": state.p_mastery,
    }


def list_mastery(
    session: Session, user_id: uuid.UUID, concept_id: uuid.UUID | None = None
) -> list[BKTUserSkillState]:
    stmt = select(BKTUserSkillState).where(BKTUserSkillState.user_id == user_id)
    if concept_id is not None:
        stmt = stmt.where(BKTUserSkillState.concept_id == concept_id)
    return list(session.scalars(stmt.order_by(BKTUserSkillState.concept_id)))


def mastery_history(
    session: Session, user_id: uuid.UUID, concept_id: uuid.UUID
) -> list[MasterySnapshot]:
    return list(
        session.scalars(
            select(MasterySnapshot)
            .where(MasterySnapshot.user_id == user_id, MasterySnapshot.concept_id == concept_id)
            .order_by(MasterySnapshot.created_at)
        )
    )


# -- fitting ---------------------------------------------------------------------------------
@dataclass
class FitOptions:
    """What to fit and how (the flags of ``smartstudy fit-bkt``)."""

    from_date: datetime | None = None
    to_date: datetime | None = None
    min_attempts: int = 10  # attempts on the concept, all users together
    min_users: int = 3
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)
    forgets: bool = False
    n_restarts: int = 5
    max_iter: int = 200
    activate: bool = False
    seed: int = 0

    def check(self) -> None:
        if self.min_attempts < 1:
            raise InvalidInputError("min_attempts", "must be at least 1")
        if self.min_users < 1:
            raise InvalidInputError("min_users", "must be at least 1")
        if self.from_date and self.to_date and self.from_date > self.to_date:
            raise InvalidInputError("from_date", "must not be after to_date")
        from smartstudy.models.bkt.em import resolve_bounds

        try:
            resolve_bounds(self.bounds, forgets=self.forgets)
        except ValueError as exc:
            raise InvalidInputError("bounds", str(exc)) from exc


@dataclass
class FitOutcome:
    run: AlgoRun
    fitted: dict[str, BKTSkillParams] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def answer_sequences(
    session: Session, from_date: datetime | None = None, to_date: datetime | None = None
) -> dict[uuid.UUID, pd.DataFrame]:
    """Submitted quiz answers per concept, as interactions frames ordered in time."""
    stmt = (
        select(
            StudySession.user_id,
            SessionQuestion.snapshot_json,
            SessionAnswer.is_correct,
            SessionAnswer.answered_at,
        )
        .join(SessionQuestion, SessionAnswer.session_question_id == SessionQuestion.id)
        .join(StudySession, SessionQuestion.session_id == StudySession.id)
        .where(StudySession.status == "submitted")
    )
    if from_date is not None:
        stmt = stmt.where(SessionAnswer.answered_at >= from_date)
    if to_date is not None:
        stmt = stmt.where(SessionAnswer.answered_at <= to_date)
    rows: dict[uuid.UUID, list[tuple]] = defaultdict(list)
    for user_id, snap, correct, at in session.execute(stmt):
        concept = (snap or {}).get("concept_id")
        if not concept:
            continue
        rows[uuid.UUID(str(concept))].append((str(user_id), int(correct), at))
    out = {}
    for concept, items in rows.items():
        frame = pd.DataFrame(items, columns=["user_id", "correct", "answered_at"])
        frame["order"] = [a.timestamp() for a in frame["answered_at"]]
        frame["item_id"] = frame["skill_id"] = str(concept)
        out[concept] = frame.sort_values(["user_id", "order"], kind="stable")
    return out


def fit_concepts(
    session: Session,
    concept_ids: Iterable[uuid.UUID] | None,
    options: FitOptions,
    *,
    trigger: str = "cli",
    requested_by: uuid.UUID | None = None,
    progress: Callable[[uuid.UUID, str], None] | None = None,
) -> FitOutcome:
    """Fit BKT per concept (all concepts with data when ``concept_ids`` is None); log a run."""
    options.check()
    version = algo_version(session)
    run = AlgoRun(
        algo_version_id=version.id,
        trigger=trigger,
        requested_by=requested_by,
        params={
            "concept_ids": None if concept_ids is None else [str(c) for c in concept_ids],
            "from_date": options.from_date.isoformat() if options.from_date else None,
            "to_date": options.to_date.isoformat() if options.to_date else None,
            "min_attempts": options.min_attempts,
            "min_users": options.min_users,
            "bounds": options.bounds,
            "forgets": options.forgets,
            "n_restarts": options.n_restarts,
            "activate": options.activate,
        },
    )
    session.add(run)
    session.flush()
    started = time.perf_counter()
    outcome = FitOutcome(run=run)
    data = answer_sequences(session, options.from_date, options.to_date)
    targets = list(data) if concept_ids is None else list(concept_ids)
    _lock_concepts(session, targets)
    for concept_id in targets:
        _fit_target(session, concept_id, data.get(concept_id), options, version, run, outcome)
        if progress:
            progress(concept_id, "fitted" if str(concept_id) in outcome.fitted else "done")
    run.status = "failed" if outcome.failed else "succeeded"
    run.finished_at = utcnow()
    run.duration_seconds = round(time.perf_counter() - started, 4)
    run.summary = {
        "concepts_processed": len(targets),
        "params_fitted": len(outcome.fitted),
        "skipped": outcome.skipped,
        "errors": outcome.failed,
    }
    run.error = "; ".join(f"{k}: {v}" for k, v in outcome.failed.items()) or None
    session.flush()
    return outcome


def _fit_target(
    session: Session,
    concept_id: uuid.UUID,
    frame: pd.DataFrame | None,
    options: FitOptions,
    version: AlgoVersion,
    run: AlgoRun,
    outcome: FitOutcome,
) -> None:
    """Fit one concept of a run and file it in ``outcome``: fitted, skipped (too little
    data) or failed (no such concept, an error, or a degenerate or invalid fit)."""
    key = str(concept_id)
    if session.get(Concept, concept_id) is None:
        outcome.failed[key] = "concept not found"
        return
    n = 0 if frame is None else len(frame)
    users = 0 if frame is None else frame["user_id"].nunique()
    if frame is None or n < options.min_attempts or users < options.min_users:
        outcome.skipped[key] = (
            f"{n} attempts by {users} users; needs {options.min_attempts} attempts "
            f"and {options.min_users} users"
        )
        return
    try:
        row = _fit_one(session, concept_id, frame, options, version, run)
    except Exception as exc:
        log.exception("BKT fit of concept %s failed", concept_id)
        outcome.failed[key] = f"{type(exc).__name__}: {exc}"
        return
    if row.is_valid:
        outcome.fitted[key] = row
    else:
        outcome.failed[key] = "degenerate or invalid: " + "; ".join(row.problems)


def _lock_concepts(session: Session, concept_ids: list[uuid.UUID]) -> None:
    """Lock the concepts about to be fitted until the transaction ends.

    Each fit numbers its version ``max + 1`` and may activate it; two fits of one concept at
    once would take the same number (a unique violation, a 500) or both activate. Locked,
    the second fit waits and then sees the first one's version. Rows are locked in id order
    so that two runs over the same concepts cannot deadlock. FOR NO KEY UPDATE leaves the
    key-share locks of foreign keys free: mastery updates and new questions go on meanwhile.
    """
    if concept_ids:
        session.execute(
            select(Concept.id)
            .where(Concept.id.in_(concept_ids))
            .order_by(Concept.id)
            .with_for_update(key_share=True)
        )


def _fit_one(
    session: Session,
    concept_id: uuid.UUID,
    frame: pd.DataFrame,
    options: FitOptions,
    version: AlgoVersion,
    run: AlgoRun,
) -> BKTSkillParams:
    sequences = [g["correct"].to_list() for _, g in frame.groupby("user_id", sort=True)]
    result = fit_em(
        sequences,
        n_restarts=options.n_restarts,
        max_iter=options.max_iter,
        bounds=options.bounds or None,
        forgets=options.forgets,
        seed=options.seed,
    )
    params = result.params
    problems = validate_params(params) + check_degeneracy(params)
    metrics: dict = {
        "log_likelihood": round(result.log_likelihood, 4),
        "n_iter": result.n_iter,
        "converged": result.converged,
    }
    n_users = frame["user_id"].nunique()
    if n_users >= 2:
        folds = min(5, n_users)
        cv = crossvalidate(
            BKT(
                n_restarts=options.n_restarts,
                forgets=options.forgets,
                bounds=options.bounds or None,
                seed=options.seed,
                min_attempts=1,
            ),
            frame,
            k=folds,
            seed=options.seed,
        )
        # JSON has no NaN (PostgreSQL refuses it): an undefined metric is stored as null.
        metrics["cv"] = {
            k: (round(v, 4) if math.isfinite(v) else None)
            for k, v in cv.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
    latest = session.scalar(
        select(func.max(BKTSkillParams.version)).where(BKTSkillParams.concept_id == concept_id)
    )
    row = BKTSkillParams(
        concept_id=concept_id,
        algo_version_id=version.id,
        run_id=run.id,
        version=(latest or 0) + 1,
        l0=params.l0,
        t=params.t,
        s=params.s,
        g=params.g,
        f=params.f,
        is_active=False,
        is_valid=not problems,
        data_from=frame["answered_at"].min(),
        data_to=frame["answered_at"].max(),
        n_users=int(n_users),
        n_attempts=len(frame),
        metrics=metrics,
        constraints={k: list(v) for k, v in options.bounds.items()},
        problems=problems,
    )
    session.add(row)
    session.flush()
    if options.activate and row.is_valid:
        activate(session, row)
    return row


def activate(session: Session, row: BKTSkillParams) -> None:
    """Make ``row`` the one active version of its concept (never an invalid one)."""
    if not row.is_valid:
        raise InvalidInputError("params_id", "degenerate or invalid parameters are never activated")
    session.execute(
        update(BKTSkillParams)
        .where(BKTSkillParams.concept_id == row.concept_id, BKTSkillParams.id != row.id)
        .values(is_active=False)
    )
    session.flush()  # the old active row must be off before the new one goes on
    row.is_active = True
    session.flush()
