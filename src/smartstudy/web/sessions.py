"""The web session: a signed cookie with the user id, the session id and a CSRF token.

The cookie is a JWT (HS256) signed with a key derived from the app's secret key, so an API
access token is never accepted as a session and a session is never accepted by the API. It
holds no data beyond the user id, the id of the user's row in ``auth_sessions`` (the server
checks that row on every request, so logging out or a password change ends the session even
where a copy of the cookie lives on) and the per-session CSRF token that every form posts
back. A visitor who is not signed in has a cookie with the CSRF token only, and no row. It is
HttpOnly and SameSite=Lax, and Secure when the page is served over https.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass

import jwt
from starlette.requests import Request
from starlette.responses import Response

from smartstudy.services.accounts import WEB_SESSION_LIFETIME

COOKIE_NAME = "smartstudy_session"
LIFETIME_SECONDS = int(WEB_SESSION_LIFETIME.total_seconds())
_TYPE = "web"
_ALGORITHM = "HS256"


@dataclass
class WebSession:
    csrf: str
    user_id: uuid.UUID | None = None
    #: The ``auth_sessions`` row of a signed-in session.
    session_id: uuid.UUID | None = None
    #: True when the browser does not hold this session yet (the response must set it).
    fresh: bool = False


def _key(secret: str) -> bytes:
    return hashlib.sha256(b"smartstudy web session\x00" + secret.encode()).digest()


def anonymous() -> WebSession:
    return WebSession(csrf=secrets.token_urlsafe(32), fresh=True)


def signed_in(user_id: uuid.UUID, session_id: uuid.UUID) -> WebSession:
    """A new session for a user's ``auth_sessions`` row, with a new CSRF token (never reuse
    the anonymous one)."""
    return WebSession(
        csrf=secrets.token_urlsafe(32), user_id=user_id, session_id=session_id, fresh=True
    )


def decode(value: str | None, secret: str) -> WebSession | None:
    """The session in a cookie value, or None if it is missing, tampered with or expired."""
    if not value:
        return None
    try:
        claims = jwt.decode(
            value, _key(secret), algorithms=[_ALGORITHM], options={"require": ["exp", "csrf"]}
        )
    except jwt.PyJWTError:
        return None
    if claims.get("typ") != _TYPE or not isinstance(claims.get("csrf"), str):
        return None
    if not claims.get("uid"):
        return WebSession(csrf=claims["csrf"])
    try:
        user_id = uuid.UUID(str(claims["uid"]))
        session_id = uuid.UUID(str(claims.get("sid")))
    except ValueError:
        # Includes a signed-in cookie without a session id (issued before sessions had rows).
        return None
    return WebSession(csrf=claims["csrf"], user_id=user_id, session_id=session_id)


def of_request(request: Request, secret: str) -> WebSession:
    """This request's session, from its cookie, or a new anonymous one; decoded once and
    kept on ``request.state``. Every page, error pages included, goes through here, so a
    page that runs no dependency (a 404) keeps the browser's session instead of replacing
    it with an anonymous one."""
    ws = getattr(request.state, "web_session", None)
    if ws is None:
        ws = decode(request.cookies.get(COOKIE_NAME), secret) or anonymous()
        request.state.web_session = ws
    return ws


def encode(session: WebSession, secret: str) -> str:
    now = int(time.time())
    claims: dict = {"typ": _TYPE, "csrf": session.csrf, "iat": now, "exp": now + LIFETIME_SECONDS}
    if session.user_id is not None:
        claims["uid"] = str(session.user_id)
        claims["sid"] = str(session.session_id)
    return jwt.encode(claims, _key(secret), algorithm=_ALGORITHM)


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def set_cookie(response: Response, request: Request, session: WebSession, secret: str) -> None:
    response.set_cookie(
        COOKIE_NAME,
        encode(session, secret),
        max_age=LIFETIME_SECONDS,
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )
    session.fresh = False


def clear_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        COOKIE_NAME, path="/", httponly=True, samesite="lax", secure=is_https(request)
    )


def csrf_matches(session: WebSession, token: str | None) -> bool:
    """Constant-time check of a posted token against the session's (never for a fresh one)."""
    if session.fresh or not token:
        return False
    return hmac.compare_digest(session.csrf.encode(), token.encode())
