"""The FastAPI application: routers, error handling, start-up."""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from smartstudy import __version__
from smartstudy.api import balancing, head, observability, openapi, security_headers
from smartstudy.api.errors import install_outage_handlers, install_page_errors
from smartstudy.api.routers import (
    auth,
    catalogue,
    health,
    learning,
    models,
    person_fit,
    planning,
    quiz,
    tasks,
    users,
)
from smartstudy.api.schemas import validation_error_out
from smartstudy.config import Settings
from smartstudy.services.context import AppContext
from smartstudy.services.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    ServiceError,
    TooManyAttemptsError,
)
from smartstudy.services.predictor import PredictionUnavailableError
from smartstudy.store.db import REQUEST_THREADS
from smartstudy.web import install as install_web

log = logging.getLogger(__name__)

_STATUS = {
    AuthenticationError: 401,
    PermissionDeniedError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    InvalidInputError: 422,
    TooManyAttemptsError: 429,
    PredictionUnavailableError: 503,
}


def _location(loc: tuple | list) -> str:
    return ".".join(str(p) for p in loc if p not in ("body", "query", "path"))


def serving_process_app() -> FastAPI:
    """The app of one process of ``smartstudy serve --workers N`` (uvicorn's factory): its
    own context from the environment, the parent having checked and migrated the database.
    Each process recovers dead jobs and takes the queued ones (claims are atomic, so two
    processes never run the same job), loads new versions beside the serving one, and warms
    its models up in a thread. Processes stay consistent through the database: each learns
    the completions the others stored before it predicts (``PredictionService``)."""
    from smartstudy.jobs import durable
    from smartstudy.observability.logs import configure_logging

    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    context = AppContext.from_settings(settings)
    durable.recover_and_wake(context)
    context.predictor.load_in_background = True
    context.predictor.sync_interval = settings.sync_interval
    app = create_app(context=context, warm_up=True, freeze=True)
    if (table := balancing.this_process()) is not None:
        balancing.install(app, table)  # several processes: keep them equally busy
    return app


def _warm_up(context: AppContext, freeze: bool) -> None:
    """Warm the served models up, then follow other processes' completions in a thread
    (``PredictionService.follow``). ``freeze``: before that, move everything alive
    (modules, the app, the models loaded) out of the garbage collector's sight
    (``gc.freeze``). Otherwise a full collection of a serving process walks those quarter
    of a million long-lived objects every few seconds, holding the GIL for it (50-250 ms
    each under load) while every request of the process waits. Frozen objects are still
    freed by reference counting; only a reference cycle among them is kept for good."""
    context.predictor.warm_up(context.sessions)
    if freeze:
        gc.collect()
        gc.freeze()
    context.predictor.follow(context.sessions)


def _practice_lane(settings: Settings) -> anyio.Semaphore | None:
    """The semaphore of ``Settings.practice_concurrency`` (``deps.in_one_hand_over``)."""
    n = settings.practice_concurrency
    return anyio.Semaphore(n) if n > 0 else None


def create_app(
    settings: Settings | None = None,
    context: AppContext | None = None,
    *,
    warm_up: bool = False,
    freeze: bool = False,
) -> FastAPI:
    """Build the app; with no arguments it reads settings from the environment.
    ``warm_up``: once started, load the served models in a thread (a server), so that the
    first requests do not wait for them; ``freeze``: then freeze the process's heap for the
    garbage collector (``_warm_up``: a server process, not a test)."""
    if context is None:
        context = AppContext.from_settings(settings or Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Blocking handlers run on REQUEST_THREADS threads (anyio's default is 40; store.db).
        anyio.to_thread.current_default_thread_limiter().total_tokens = REQUEST_THREADS
        if context.settings.auto_migrate:
            context.migrate()
        if warm_up:
            context.predictor.warming_up = True  # not ready until the thread is done
            args = (context, freeze)
            threading.Thread(target=_warm_up, args=args, name="warm-up", daemon=True).start()
        yield
        context.close()

    app = FastAPI(
        title="SmartStudy",
        version=__version__,
        description="Study platform with a learner-modelling engine: predictions of success "
        "and time for practice tasks, concept mastery, model training.",
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc come from openapi.install_docs, with no CDN
        redoc_url=None,
    )
    app.state.context = context
    app.state.practice_lane = _practice_lane(context.settings)
    install_outage_handlers(app)  # database or disk down: 503, not 500
    install_page_errors(app)  # a web page's 404 or 500 is a page, the API's stays JSON

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
        if isinstance(exc, TooManyAttemptsError):
            headers = {"Retry-After": str(exc.retry_after)}
        return JSONResponse(status_code=code, content=body, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # Only JSON-safe values go back: a NaN in the request once made this answer a 500.
        errors = [validation_error_out(err) for err in exc.errors()]
        summary = "; ".join(f"{_location(e['loc']) or 'body'}: {e['msg']}" for e in errors)
        return JSONResponse(status_code=422, content={"detail": errors, "message": summary})

    app.include_router(health.router)
    head.install(app)  # HEAD as GET without the body, inside the request log and metrics
    observability.install(app, context)  # GET /metrics; latency, request ids, access log
    app.include_router(auth.router)
    app.include_router(catalogue.router)
    app.include_router(tasks.router)
    app.include_router(quiz.router)
    app.include_router(learning.router)
    app.include_router(models.router)
    app.include_router(person_fit.router)
    app.include_router(users.router)
    app.include_router(planning.router)
    openapi.install_docs(app)  # before install_web: its assets live under /static
    install_web(app)  # the web pages, /static and Plotly's JavaScript
    openapi.document_errors(app)
    security_headers.install(app)
    return app
