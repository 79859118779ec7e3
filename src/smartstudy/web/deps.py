"""What every page needs: a database session, the signed-in user, CSRF-checked forms.

Pages turn failures into pages, not JSON: not signed in -> redirect to /login; another
user's or a missing object -> a 404 page (the same for both, so ids reveal nothing); not an
admin -> a 403 page; a form without the right CSRF token -> a 403 page and nothing written;
too many failed password checks -> a 429 page with ``Retry-After``.
``PageRoute`` does that translation for every route of the web router.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.responses import Response

from smartstudy.services import accounts
from smartstudy.services.context import AppContext
from smartstudy.services.errors import NotFoundError, PermissionDeniedError, TooManyAttemptsError
from smartstudy.store.db import UnitOfWork, unit_of_work
from smartstudy.store.orm import User
from smartstudy.web import sessions
from smartstudy.web.render import redirect, render

log = logging.getLogger(__name__)


class LoginRequired(Exception):
    """The page needs a signed-in user."""


class CsrfFailed(Exception):
    """A form came without this session's CSRF token."""


def get_context(request: Request) -> AppContext:
    return request.app.state.context


def secret_of(request: Request) -> str:
    return get_context(request).settings.resolved_secret_key


def get_unit_of_work(request: Request) -> Iterator[UnitOfWork]:
    """One unit of work per page request: committed when the page returns (before the page
    is sent), rolled back on error."""
    with unit_of_work(get_context(request).sessions) as uow:
        yield uow


UoW = Annotated[UnitOfWork, Depends(get_unit_of_work, scope="function")]


def get_db(uow: UoW) -> Session:
    """The session of the page's unit of work (pages read and write; they never commit)."""
    return uow.session


DB = Annotated[Session, Depends(get_db)]


def web_session(request: Request) -> sessions.WebSession:
    """This request's session, from the cookie, or a new anonymous one (cached per request)."""
    return sessions.of_request(request, secret_of(request))


def client_address(request: Request) -> str | None:
    """The address the request came from (what log-in throttling counts per client)."""
    return request.client.host if request.client else None


def optional_user(request: Request, db: DB) -> User | None:
    """The signed-in user, or None; a session that has ended (logged out, password changed,
    user gone or deactivated, expired) is replaced by an anonymous one."""
    ws = web_session(request)
    if ws.user_id is None or ws.session_id is None:
        return None
    user = accounts.web_session_user(db, ws.session_id, ws.user_id)
    if user is None:
        request.state.web_session = sessions.anonymous()
        return None
    request.state.user = user
    return user


def sign_in(request: Request, db: Session, user: User, response: Response) -> None:
    """Start a new server-side session for ``user`` and give it to the browser with
    ``response`` (a new session id and CSRF token: never reuse an older one)."""
    row = accounts.open_web_session(db, user)
    ws = sessions.signed_in(user.id, row.id)
    request.state.web_session = ws
    request.state.user = user
    sessions.set_cookie(response, request, ws, secret_of(request))


def sign_out(request: Request, db: Session, response: Response) -> None:
    """End this browser's session on the server and remove its cookie."""
    ws = web_session(request)
    if ws.session_id is not None:
        accounts.close_web_session(db, ws.session_id)
    request.state.user = None
    sessions.clear_cookie(response, request)


def page_user(user: Annotated[User | None, Depends(optional_user)]) -> User:
    if user is None:
        raise LoginRequired
    return user


def admin_user(user: Annotated[User, Depends(page_user)]) -> User:
    if user.role != "admin":
        raise PermissionDeniedError("This page is for admins only.")
    return user


PageUser = Annotated[User, Depends(page_user)]
AdminUser = Annotated[User, Depends(admin_user)]
Context = Annotated[AppContext, Depends(get_context)]


async def checked_form(request: Request) -> FormData:
    """The posted form, after its CSRF token (field ``csrf_token`` or header
    ``X-CSRF-Token``) matched the session's."""
    form = await request.form()
    token = form.get("csrf_token")
    if not isinstance(token, str):
        token = request.headers.get("x-csrf-token")
    if not sessions.csrf_matches(web_session(request), token):
        raise CsrfFailed
    return form


Form = Annotated[FormData, Depends(checked_form)]


def parse_id(value: str) -> uuid.UUID:
    """A UUID from a URL; anything else is simply "not found"."""
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError) as exc:
        raise NotFoundError("not found") from exc


def _error_page(request: Request, status: int, title: str, message: str) -> Response:
    return render(
        request,
        "error.html",
        {"status": status, "title": title, "message": message},
        status_code=status,
    )


def as_sentence(message: str) -> str:
    """A service message ("too many ...; try again") as a sentence for a page."""
    return message[:1].upper() + message[1:] + "."


class PageRoute(APIRoute):
    """A route whose failures become HTML pages or redirects instead of JSON."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired:
                target = request.url.path
                if request.url.query:
                    target += "?" + request.url.query
                response = redirect("/login" if target == "/" else f"/login?next={quote(target)}")
                ws = web_session(request)
                if ws.fresh:
                    # A stale session is replaced; a first visit gets its CSRF token now.
                    sessions.set_cookie(response, request, ws, secret_of(request))
                return response
            except CsrfFailed:
                log.info("CSRF check failed for %s %s", request.method, request.url.path)
                return _error_page(
                    request,
                    403,
                    "This form has expired",
                    "The form was sent without a valid security token (it may be old, or "
                    "come from another site). Nothing was saved. Go back, reload the page "
                    "and try again.",
                )
            except PermissionDeniedError as exc:
                return _error_page(request, 403, "Not allowed", str(exc))
            except TooManyAttemptsError as exc:
                response = _error_page(request, 429, "Too many attempts", as_sentence(str(exc)))
                response.headers["Retry-After"] = str(exc.retry_after)
                return response
            except NotFoundError:
                return _error_page(
                    request,
                    404,
                    "Not found",
                    "There is nothing here, or it is not yours to see.",
                )

        return page_handler
