"""Shared dependencies: the app context, the request's unit of work and its session, the
current user, roles."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Annotated, TypeVar

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


BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def current_user(context: Context, session: DB, credentials: BearerCredentials) -> User:
    return authenticate(context, session, credentials)


async def hand_over_credentials(
    credentials: BearerCredentials,
) -> HTTPAuthorizationCredentials | None:
    """The bearer token of a route that signs in within ``in_one_hand_over`` (the OpenAPI
    document then lists that route's 401 and 503, as for ``CurrentUser`` and ``DB``)."""
    return credentials


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(hand_over_credentials)]


def authenticate(
    context: AppContext, session: Session, credentials: HTTPAuthorizationCredentials | None
) -> User:
    """The signed-in, active user of a bearer token (``AuthenticationError`` otherwise)."""
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

T = TypeVar("T")


async def practice_lane(request: Request) -> anyio.Semaphore | None:
    """The process's lane for practice requests (``Settings.practice_concurrency``), or None
    without a limit."""
    return getattr(request.app.state, "practice_lane", None)


Lane = Annotated[anyio.Semaphore | None, Depends(practice_lane)]


async def in_one_hand_over(
    context: AppContext,
    credentials: HTTPAuthorizationCredentials | None,
    work: Callable[[UnitOfWork, User], T],
    lane: anyio.Semaphore | None = None,
) -> T:
    """``work(uow, user)`` in a unit of work of its own, with the user signed in by
    ``credentials``: sign-in, work and commit (or rollback) in one worker-thread hand-over.

    For the routes a practice session calls once per task, whose cost is mostly fixed
    overhead: with ``CurrentUser``, ``UoW`` and a plain ``def`` route, FastAPI hands each
    request to a worker thread and back four times (the user look-up, the route, the
    serialisation of its answer, the commit). Such a route is an ``async def`` that returns
    ``await in_one_hand_over(...)``: the answer is serialised on the event loop, so ``work``
    must return plain data (a schema), not ORM objects. The semantics are those of ``UoW``:
    committed before the answer is sent, rolled back on error; a client that goes away
    does not interrupt the thread, so no transaction is left open.

    ``lane``: a semaphore that admits a few such requests at a time, the others waiting on
    the event loop in arrival order (they hold no thread meanwhile). Under load, each
    request then runs nearly alone instead of sharing the interpreter with every other one:
    its latency is the work queued before it plus its own, so slow requests no longer
    come from being slowed by all the others at once (``Settings.practice_concurrency``)."""

    def run() -> T:
        with unit_of_work(context.sessions) as uow:
            return work(uow, authenticate(context, uow.session, credentials))

    async with lane or contextlib.nullcontext():
        return await run_in_threadpool(run)


async def admin_user(user: CurrentUser) -> User:
    if user.role != "admin":
        raise PermissionDeniedError("admins only")
    return user


AdminUser = Annotated[User, Depends(admin_user)]
