"""The web session: a signed cookie with the user id and a CSRF token.

The cookie is a JWT (HS256) signed with a key derived from the app's secret key, so an API
access token is never accepted as a session and a session is never accepted by the API. It
holds no data beyond the user id, a fingerprint of the user's password hash (a password change
ends every other session) and the per-session CSRF token that every form posts back. It is
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

from smartstudy.store.orm import User

COOKIE_NAME = "smartstudy_session"
LIFETIME_SECONDS = 7 * 24 * 3600
_TYPE = "web"
_ALGORITHM = "HS256"


@dataclass
class WebSession:
    csrf: str
    user_id: uuid.UUID | None = None
    fingerprint: str | None = None
    #: True when the browser does not hold this session yet (the response must set it).
    fresh: bool = False


def _key(secret: str) -> bytes:
    return hashlib.sha256(b"smartstudy web session\x00" + secret.encode()).digest()


def fingerprint(secret: str, user: User) -> str:
    """Changes whenever the password does; a session with an old one is void."""
    mac = hmac.new(_key(secret), user.password_hash.encode(), hashlib.sha256)
    return mac.hexdigest()[:24]


def anonymous() -> WebSession:
    return WebSession(csrf=secrets.token_urlsafe(32), fresh=True)


def signed_in(secret: str, user: User) -> WebSession:
    """A new session for ``user`` with a new CSRF token (never reuse the anonymous one)."""
    return WebSession(
        csrf=secrets.token_urlsafe(32),
        user_id=user.id,
        fingerprint=fingerprint(secret, user),
        fresh=True,
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
    user_id = None
    if claims.get("uid"):
        try:
            user_id = uuid.UUID(str(claims["uid"]))
        except ValueError:
            return None
    return WebSession(csrf=claims["csrf"], user_id=user_id, fingerprint=claims.get("fp"))


def encode(session: WebSession, secret: str) -> str:
    now = int(time.time())
    claims: dict = {"typ": _TYPE, "csrf": session.csrf, "iat": now, "exp": now + LIFETIME_SECONDS}
    if session.user_id is not None:
        claims["uid"] = str(session.user_id)
        claims["fp"] = session.fingerprint
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
