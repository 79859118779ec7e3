"""Outages as answers, not bare 500s.

When the database cannot be reached, or the disk under it is full or read-only, a request
fails through no fault of its own and may well succeed a little later. ``install_outage_handlers``
answers such failures with 503: JSON with ``Retry-After`` for the API and the probes, the
site's error page for the web pages. Any other exception (a bug) goes on to the 500 handler.
"""

from __future__ import annotations

import logging
from html import escape

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.responses import Response

from smartstudy.store.db import Outage, classify_outage, error_reason
from smartstudy.web.render import render

log = logging.getLogger(__name__)

#: Seconds a client is asked to wait before trying again.
RETRY_AFTER_S = 30
#: Paths answered in JSON; everything else is a web page.
JSON_PREFIXES = ("/v1/", "/healthz", "/readyz", "/metrics", "/openapi.json")

#: What a client is told: no paths or URLs (those go to the log).
MESSAGES = {
    Outage.UNREACHABLE: "The database cannot be reached right now.",
    Outage.FULL: "The disk that holds the data is full, so nothing can be saved right now.",
    Outage.READ_ONLY: "The data cannot be written right now (the storage is read-only).",
    Outage.BUSY: "The database is too busy right now.",
}


def wants_json(path: str) -> bool:
    """True for the API and the probes, False for the web pages."""
    return path == "/v1" or path.startswith(JSON_PREFIXES)


def outage_response(kind: Outage, extra: dict[str, str] | None = None) -> JSONResponse:
    """503 in JSON: ``detail`` in plain words, ``reason`` for programs, ``Retry-After``."""
    body = {**(extra or {}), "detail": f"{MESSAGES[kind]} Try again shortly.", "reason": kind}
    return JSONResponse(status_code=503, content=body, headers={"Retry-After": str(RETRY_AFTER_S)})


def outage_page(request: Request, kind: Outage) -> Response:
    """503 as the site's error page (with no signed-in user: the session's objects are gone
    with the failed transaction)."""
    message = f"{MESSAGES[kind]} Please try again in a minute."
    title = "Temporarily unavailable"
    try:
        response: Response = render(
            request,
            "error.html",
            {"status": 503, "title": title, "message": message, "user": None},
            status_code=503,
        )
    except Exception:  # the page must not fail in turn; a bare one still says what happened
        log.exception("the error page could not be rendered")
        response = HTMLResponse(
            f"<!doctype html><title>{title}</title><h1>{title}</h1><p>{escape(message)}</p>",
            status_code=503,
        )
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


async def _outage_handler(request: Request, exc: Exception) -> Response:
    kind = classify_outage(exc)
    if kind is None:
        raise exc  # not an outage: Starlette's 500 handler logs it
    log.warning(
        "%s %s answered 503: %s (%s: %s)",
        request.method,
        request.url.path,
        kind,
        type(exc).__name__,
        error_reason(exc),
    )
    if wants_json(request.url.path):
        return outage_response(kind)
    return outage_page(request, kind)


def install_outage_handlers(app: FastAPI) -> None:
    """Answer database and disk outages with 503 on every route of ``app``."""
    for exc_class in (sa_exc.DBAPIError, sa_exc.TimeoutError, OSError):
        app.add_exception_handler(exc_class, _outage_handler)
