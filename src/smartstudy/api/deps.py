"""Shared dependencies: the app context, the request's unit of work and its session, the
current user, roles."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from smartstudy.services.context import AppContext
from smartstudy.services.errors import AuthenticationError, PermissionDeniedError
from smartstudy.services.security import decode_access_token
from smartstudy.store.db import UnitOfWork, unit_of_work
from smartstudy.store.orm import User

bearer = HTTPBearer(auto_error=False, description="Access token from POST /v1/auth/login")


async def get_context(request: Request) -> AppContext:
    return request.app.state.context


Context = Annotated[AppContext, Depends(get_context)]


async def client_address(request: Request) -> str | None:
    """The address the request came from (what log-in throttling counts per client)."""
    return request.client.host if request.client else None


ClientAddress = Annotated[str | None, Depends(client_address)]


# The dependencies that do no I/O are ``async``: FastAPI runs them on the event loop, where
# a plain ``def`` would cost a hand-over to a worker thread and back on every request.


async def get_unit_of_work(context: Context) -> AsyncIterator[UnitOfWork]:
    """One unit of work per request: committed when the route returns (before the answer
    is sent, so a failed commit fails the request), rolled back on error.

    Opening it does no I/O (the session connects on its first statement), so it is opened
    on the event loop; only its end, the commit or the rollback, is handed to a worker
    thread. (A plain generator would cost a hand-over for each.) The end is shielded from
    cancellation, so a client that goes away never leaves a transaction open."""
    scope = unit_of_work(context.sessions)
    uow = scope.__enter__()
    try:
        yield uow
    except BaseException as exc:
        with anyio.CancelScope(shield=True):
            handled = await run_in_threadpool(scope.__exit__, type(exc), exc, exc.__traceback__)
        if not handled:
            raise
    else:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(scope.__exit__, None, None, None)


UoW = Annotated[UnitOfWork, Depends(get_unit_of_work, scope="function")]


async def get_session(uow: UoW) -> Session:
    """The session of the request's unit of work (routes read and write; they never commit)."""
    return uow.session


DB = Annotated[Session, Depends(get_session)]


def current_user(
    context: Context,
    session: DB,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> User:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthenticationError("not signed in: send 'Authorization: Bearer <token>'")
    claims = decode_access_token(credentials.credentials, context.settings.resolved_secret_key)
    user = session.get(User, claims.user_id)
    if user is None or not user.is_active:
        raise AuthenticationError("invalid token")
    if claims.version != user.token_version:
        # Issued before the last password change (or a lock-out): no longer valid.
        raise AuthenticationError("token revoked; log in again")
    return user


CurrentUser = Annotated[User, Depends(current_user)]


async def admin_user(user: CurrentUser) -> User:
    if user.role != "admin":
        raise PermissionDeniedError("admins only")
    return user


AdminUser = Annotated[User, Depends(admin_user)]
