"""/v1/learning/bkt: recompute parameters (admins), update and read mastery (seed 003)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from smartstudy.api.deps import DB, AdminUser, CurrentUser
from smartstudy.api.schemas import (
    AlgoOut,
    MasteryOut,
    MasteryUpdateIn,
    MasteryUpdateOut,
    RecomputeIn,
    RecomputeOut,
    RecomputeSummary,
)
from smartstudy.services import audit, mastery
from smartstudy.services.accounts import get_user
from smartstudy.services.errors import InvalidInputError, PermissionDeniedError
from smartstudy.store.orm import BKTUserSkillState, User
from smartstudy.store.repositories import quiz as quiz_rows

router = APIRouter(prefix="/v1/learning/bkt", tags=["learning"])


def _subject_user(session: DB, actor: User, user_id: uuid.UUID | None) -> uuid.UUID:
    """Whose mastery: students only their own (403 otherwise), admins anyone's."""
    if user_id is None or user_id == actor.id:
        return actor.id
    if actor.role != "admin":
        raise PermissionDeniedError("students can only read and update their own mastery")
    return get_user(session, user_id).id


@router.post("/recompute", response_model=RecomputeOut)
def recompute(body: RecomputeIn, session: DB, admin: AdminUser) -> RecomputeOut:
    """Fit BKT parameters from quiz history (admins only); every fit is logged as a run."""
    options = mastery.FitOptions(
        from_date=body.from_date,
        to_date=body.to_date,
        min_attempts=body.min_attempts,
        min_users=body.min_users,
        forgets=body.forgets,
        n_restarts=body.n_restarts,
        activate=body.activate_new_params,
    )
    outcome = mastery.fit_concepts(
        session, body.concept_ids, options, trigger="api", requested_by=admin.id
    )
    audit.record_bkt_fit(session, admin, outcome)
    ids = {k: v.id for k, v in outcome.fitted.items()}
    return RecomputeOut(
        ok=not outcome.failed,
        run_id=outcome.run.id,
        algo=AlgoOut(key=mastery.ALGO_KEY, version=mastery.ALGO_VERSION),
        params_id=next(iter(ids.values())) if len(ids) == 1 else None,
        params_ids=ids,
        summary=RecomputeSummary(
            concepts_processed=outcome.run.summary["concepts_processed"],
            params_fitted=len(ids),
            skipped=outcome.skipped,
            errors=outcome.failed,
        ),
    )


@router.post("/update", response_model=MasteryUpdateOut)
def update_mastery(body: MasteryUpdateIn, session: DB, user: CurrentUser) -> MasteryUpdateOut:
    """Apply one attempt to a user's mastery of a concept."""
    target = _subject_user(session, user, body.user_id)
    if body.question_id is not None:
        question = quiz_rows.find_question(session, body.question_id)
        if question is None:
            raise InvalidInputError("question_id", "no such question")
        if question.concept_id != body.concept_id:
            raise InvalidInputError("question_id", "the question belongs to another concept")
    state = mastery.apply_attempt(
        session, target, body.concept_id, body.correct, snapshot=body.snapshot_mastery
    )
    return _state_out(state, mastery.next_attempt(session, [state])[state.concept_id])


def _state_out(state: BKTUserSkillState, p_next: float) -> MasteryUpdateOut:
    # The state stores the shown, monotone estimate; p_mastery keeps its meaning (the BKT
    # predictive state at the next attempt) for API clients that do the BKT maths.
    return MasteryUpdateOut(
        user_id=state.user_id,
        concept_id=state.concept_id,
        p_mastery=p_next,
        mastery=state.p_mastery,
        n_attempts=state.n_attempts,
        algo_version_id=state.algo_version_id,
        params_id=state.params_id,
    )


@router.get("/mastery", response_model=list[MasteryOut])
def read_mastery(
    session: DB,
    user: CurrentUser,
    user_id: uuid.UUID | None = None,
    concept_id: uuid.UUID | None = None,
) -> list[MasteryOut]:
    """Current mastery per concept (students: their own; admins: anyone's): ``mastery`` is
    the number to show, ``p_mastery`` the BKT state at the next attempt."""
    states = mastery.list_mastery(session, _subject_user(session, user, user_id), concept_id)
    p_next = mastery.next_attempt(session, states)
    return [
        MasteryOut(
            user_id=s.user_id,
            concept_id=s.concept_id,
            p_mastery=p_next[s.concept_id],
            mastery=s.p_mastery,
            n_attempts=s.n_attempts,
            last_attempt_at=s.last_attempt_at,
            updated_at=s.updated_at,
        )
        for s in states
    ]
