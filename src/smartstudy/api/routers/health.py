"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from smartstudy.api.deps import Context
from smartstudy.store.db import ping

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
def readyz(context: Context) -> dict[str, str] | JSONResponse:
    """The database answers."""
    try:
        ping(context.engine)
    except Exception as exc:  # any failure means not ready
        return JSONResponse(
            status_code=503, content={"status": "unavailable", "detail": type(exc).__name__}
        )
    return {"status": "ok"}
