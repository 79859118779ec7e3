"""Liveness and readiness probes."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from smartstudy.api.deps import Context
from smartstudy.api.errors import outage_response
from smartstudy.store.db import MIB, storage_problem

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
def readyz(context: Context) -> dict[str, str] | JSONResponse:
    """Ready to serve: the models are warmed up, the database answers, and (for a SQLite
    database and the data folder) the disk has room and takes a write. 503 with the reason
    otherwise."""
    if context.predictor.warming_up:
        # Loading the models: a balancer sends no traffic here until the first request
        # can be answered without loading them.
        return JSONResponse(status_code=503, content={"status": "warming up"})
    settings = context.settings
    problem = storage_problem(context.engine, settings.data_dir, settings.min_free_disk_mb * MIB)
    if problem is not None:
        # Paths and URLs go to the log only: the probe is public.
        log.warning("not ready: %s", problem.describe())
        return outage_response(problem.kind, {"status": "unavailable"})
    return {"status": "ok"}
