"""The FastAPI application: routers, error handling, start-up."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from smartstudy import __version__
from smartstudy.api.routers import auth, catalogue, health, learning, models, quiz, tasks
from smartstudy.config import Settings
from smartstudy.services.context import AppContext
from smartstudy.services.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    ServiceError,
)
from smartstudy.services.predictor import PredictionUnavailableError
from smartstudy.web import install as install_web

log = logging.getLogger(__name__)

_STATUS = {
    AuthenticationError: 401,
    PermissionDeniedError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    InvalidInputError: 422,
    PredictionUnavailableError: 503,
}


def _location(loc: tuple | list) -> str:
    return ".".join(str(p) for p in loc if p not in ("body", "query", "path"))


def create_app(settings: Settings | None = None, context: AppContext | None = None) -> FastAPI:
    """Build the app; with no arguments it reads settings from the environment."""
    if context is None:
        context = AppContext.from_settings(settings or Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if context.settings.auto_migrate:
            context.migrate()
        yield
        context.close()

    app = FastAPI(
        title="SmartStudy",
        version=__version__,
        description="Study platform with a learner-modelling engine: predictions of success "
        "and time for practice tasks, concept mastery, model training.",
        lifespan=lifespan,
    )
    app.state.context = context

    @app.exception_handler(ServiceError)
    async def service_error(_request: Request, exc: ServiceError) -> JSONResponse:
        code = next((c for t, c in _STATUS.items() if isinstance(exc, t)), 400)
        body: dict = {"detail": str(exc)}
        if isinstance(exc, InvalidInputError):
            body = {
                "detail": [{"loc": ["body", exc.field], "msg": exc.message, "type": "value_error"}],
                "message": str(exc),
            }
        headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
        return JSONResponse(status_code=code, content=body, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            errors.append(
                {k: err[k] for k in ("loc", "msg", "type") if k in err}
                | (
                    {"input": err["input"]}
                    if isinstance(err.get("input"), str | int | float)
                    else {}
                )
            )
        summary = "; ".join(f"{_location(e['loc']) or 'body'}: {e['msg']}" for e in errors)
        return JSONResponse(status_code=422, content={"detail": errors, "message": summary})

    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(catalogue.router)
    app.include_router(tasks.router)
    app.include_router(quiz.router)
    app.include_router(learning.router)
    app.include_router(models.router)
    install_web(app)  # the web pages, /static and Plotly's JavaScript
    return app
