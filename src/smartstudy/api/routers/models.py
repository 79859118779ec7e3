"""/v1/models: the model registry for admins (status, versions, activation, training,
prediction monitoring)."""

from __future__ import annotations

import uuid
from datetime import datetime
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from smartstudy.api.deps import DB, AdminUser, Context, UoW
from smartstudy.api.schemas import (
    CounterOut,
    DistributionOut,
    FallbackOut,
    FilterText,
    ModelsStatusOut,
    ModelVersionOut,
    ServingOut,
    TrainingRunOut,
    TrainScheduledOut,
)
from smartstudy.services import audit, registry
from smartstudy.services.errors import InvalidInputError
from smartstudy.services.training import nothing_new_since, queue_training, schedule_training
from smartstudy.store.orm import ModelVersion
from smartstudy.store.repositories import models as model_rows

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.get("", response_model=ModelsStatusOut)
def models_status(context: Context, session: DB, _admin: AdminUser) -> ModelsStatusOut:
    """The prediction chain, each family's active version, the training counter, recent
    training runs, recent fallbacks (a family that failed and was skipped), and the serving
    decision: the chain's order for cold and warm requests and the held-out metrics and
    calibration behind it."""
    chain = list(context.predictor.chain)
    active = model_rows.active_versions(session, chain)
    counter = registry.training_counter(session)
    return ModelsStatusOut(
        chain=chain,
        active={k: ModelVersionOut.model_validate(v) if v else None for k, v in active.items()},
        counter=CounterOut(
            count=counter.count if counter else 0,
            total=counter.total if counter else 0,
            retrain_every=context.settings.retrain_every,
            last_trained_at=counter.last_trained_at if counter else None,
        ),
        training_runs=[TrainingRunOut.model_validate(j) for j in registry.training_runs(session)],
        fallbacks=[
            FallbackOut(at=at, model_name=name, error=error)
            for at, name, error in reversed(context.predictor.fallbacks)
        ],
        serving=ServingOut.model_validate(
            registry.describe_policy(registry.serving_policy(session, chain), tuple(chain))
        ),
    )


@router.get("/versions", response_model=list[ModelVersionOut])
def list_versions(
    session: DB,
    _admin: AdminUser,
    model_name: Annotated[FilterText | None, Query(description="Only this family.")] = None,
) -> list[ModelVersion]:
    """Every stored version, newest first (optionally of one family)."""
    return registry.list_versions(session, model_name)


@router.get("/versions/{version_id}", response_model=ModelVersionOut)
def get_version(version_id: uuid.UUID, session: DB, _admin: AdminUser) -> ModelVersion:
    return registry.get_version(session, version_id)


@router.post("/versions/{version_id}/activate", response_model=ModelVersionOut)
def activate(
    version_id: uuid.UUID, context: Context, session: DB, admin: AdminUser
) -> ModelVersion:
    """Serve this version from now on (it is loaded first; a corrupt one answers 409)."""
    row = registry.activate_version(context, session, version_id)
    audit.record_activation(session, admin, row)
    return row


@router.post(
    "/train",
    response_model=TrainScheduledOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        200: {
            "model": TrainScheduledOut,
            "description": "Nothing new since the last training: nothing was queued.",
        }
    },
)
def train(
    context: Context, uow: UoW, session: DB, admin: AdminUser, response: Response
) -> TrainScheduledOut:
    """Start a training job in the background (or queue one after the running one). The
    job is stored before the answer (the request's unit of work commits before it is sent):
    202 means it will run; a database outage answers 503. When no task has been completed
    since the last training succeeded, a new one would store the same versions again: 200
    with ``scheduled`` false, and nothing is queued."""
    last = nothing_new_since(session)
    if last is not None:
        response.status_code = status.HTTP_200_OK
        when = last.started_at.isoformat() if last.started_at else "the last training"
        return TrainScheduledOut(
            scheduled=False,
            detail=f"no task completed since the training started at {when}: nothing to learn",
        )
    audit.record_training_request(session, admin, context.predictor.chain)
    queue_training(session)
    uow.after_commit(partial(schedule_training, context))
    return TrainScheduledOut(
        scheduled=True, detail="training runs in the background; see GET /v1/models"
    )


@router.get("/trainings", response_model=list[TrainingRunOut])
def trainings(
    session: DB, _admin: AdminUser, limit: int = Query(20, ge=1, le=200)
) -> list[TrainingRunOut]:
    return [TrainingRunOut.model_validate(j) for j in registry.training_runs(session, limit)]


@router.get("/monitor", response_model=list[DistributionOut])
def monitor(session: DB, _admin: AdminUser, since: datetime | None = None) -> list[dict]:
    """How each family's stored predictions are distributed, with a saturation warning."""
    if since is not None and since.tzinfo is None:
        raise InvalidInputError("since", "give a time zone, e.g. 2026-01-01T00:00:00Z")
    return registry.prediction_distribution(session, since)
