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
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from smartstudy.store.db import Outage, classify_outage, error_reason, unit_of_work
from smartstudy.web.deps import optional_user
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


def error_page(request: Request, status: int, title: str, message: str) -> Response:
    """The site's error page, with no signed-in user (after a failure the session's objects
    may be gone with the failed transaction)."""
    try:
        return render(
            request,
            "error.html",
            {"status": status, "title": title, "message": message, "user": None},
            status_code=status,
        )
    except Exception:  # the page must not fail in turn; a bare one still says what happened
        log.exception("the error page could not be rendered")
        return HTMLResponse(
            f"<!doctype html><title>{title}</title><h1>{title}</h1><p>{escape(message)}</p>",
            status_code=status,
        )


def _signed_in_error_page(request: Request, status: int, title: str, message: str) -> Response:
    """The error page for a request that no page handled (no page at the address, a method
    the page does not take). Nothing has failed in the database, so a signed-in user keeps
    their navigation; if looking them up fails in any way, the page is the anonymous one."""
    try:
        with unit_of_work(request.app.state.context.sessions) as uow:
            user = optional_user(request, uow.session)
            if user is not None:
                context = {"status": status, "title": title, "message": message, "user": user}
                return render(request, "error.html", context, status_code=status)
    except Exception:  # an outage, say: the error page still comes, without the user
        log.warning("the signed-in user of an error page could not be looked up", exc_info=True)
    return error_page(request, status, title, message)


def outage_page(request: Request, kind: Outage) -> Response:
    """503 as the site's error page."""
    message = f"{MESSAGES[kind]} Please try again in a minute."
    response = error_page(request, 503, "Temporarily unavailable", message)
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


#: What a web page says for an HTTP error raised outside the pages' own handling (an
#: address with no page, a method a page does not take).
PAGE_ERRORS = {
    404: ("Page not found", "There is no page at this address. Check the link, or start again."),
    405: ("Not possible here", "This page cannot be used that way. Go back and try again."),
}


async def _http_error(request: Request, exc: Exception) -> Response:
    """HTTP errors: JSON for the API and the probes (FastAPI's answer), the site's error page
    for a web page."""
    assert isinstance(exc, StarletteHTTPException)
    if wants_json(request.url.path) or exc.status_code < 400:
        return await http_exception_handler(request, exc)
    title, message = PAGE_ERRORS.get(
        exc.status_code, ("Something went wrong", "The request could not be handled.")
    )
    response = _signed_in_error_page(request, exc.status_code, title, message)
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def _server_error(request: Request, exc: Exception) -> Response:
    """A bug: 500 in JSON for the API, the site's error page for a web page. Starlette logs
    the exception with its traceback after this answer is sent."""
    if wants_json(request.url.path):
        return JSONResponse(status_code=500, content={"detail": "Internal server error"})
    return error_page(
        request,
        500,
        "Something went wrong on our side",
        "The page could not be shown because of an error in SmartStudy; it has been logged. "
        "Try again, or go back.",
    )


def install_page_errors(app: FastAPI) -> None:
    """HTTP errors and unexpected failures as styled pages for the web, JSON for the API."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _server_error)


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
