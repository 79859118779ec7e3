"""/v1/auth: register, log in, who am I, one's time zone and locale, change one's password."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status
from fastapi.security import OAuth2PasswordRequestForm

from smartstudy.api.deps import DB, ClientAddress, Context, CurrentUser
from smartstudy.api.schemas import (
    LoginIn,
    PasswordChangeIn,
    PreferencesIn,
    RegisterIn,
    TokenOut,
    UserOut,
)
from smartstudy.services import accounts
from smartstudy.services.errors import PermissionDeniedError
from smartstudy.services.security import create_access_token
from smartstudy.store.orm import User

router = APIRouter(prefix="/v1/auth", tags=["auth"])

_THROTTLED = {
    status.HTTP_429_TOO_MANY_REQUESTS: {
        "description": "Too many failed log-ins for the account or from this address; "
        "the Retry-After header says how many seconds to wait."
    }
}


def _token(context: Context, user: User) -> TokenOut:
    minutes = context.settings.access_token_minutes
    token = create_access_token(
        user.id, context.settings.resolved_secret_key, minutes, version=user.token_version
    )
    return TokenOut(access_token=token, expires_in=minutes * 60)


@router.post("/register", response_model=UserOut, status_code=status.HTTP_201_CREATED)
def register(body: RegisterIn, session: DB, context: Context) -> User:
    """Create a student account, with its time zone and locale (UTC and en-GB if left out).
    With sign-up closed (``SMARTSTUDY_OPEN_SIGNUP=false``) this answers 403: an admin
    creates accounts (``POST /v1/users``)."""
    if not context.settings.open_signup:
        raise PermissionDeniedError(accounts.SIGNUP_CLOSED)
    user = accounts.create_user(
        session,
        body.email,
        body.password,
        body.display_name,
        time_zone=body.time_zone,
        locale=body.locale,
    )
    return user


@router.post("/login", response_model=TokenOut, responses=_THROTTLED)
def login(body: LoginIn, session: DB, context: Context, client: ClientAddress) -> TokenOut:
    """Exchange e-mail and password for an access token."""
    return _token(context, accounts.log_in(session, body.email, body.password, client))


@router.post("/token", response_model=TokenOut, include_in_schema=True, responses=_THROTTLED)
def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: DB,
    context: Context,
    client: ClientAddress,
) -> TokenOut:
    """The same as /login for OAuth2 password-flow clients (the form's username is the e-mail)."""
    return _token(context, accounts.log_in(session, form.username, form.password, client))


@router.get("/me", response_model=UserOut)
def me(user: CurrentUser) -> User:
    return user


@router.patch("/me", response_model=UserOut)
def update_preferences(body: PreferencesIn, user: CurrentUser, session: DB) -> User:
    """Change one's time zone and/or locale; a field left out stays as it is."""
    return accounts.set_time_zone_and_locale(
        session, user, time_zone=body.time_zone, locale=body.locale
    )


@router.post("/password", response_model=TokenOut, responses=_THROTTLED)
def change_password(
    body: PasswordChangeIn, user: CurrentUser, session: DB, context: Context, client: ClientAddress
) -> TokenOut:
    """Change one's password. Every token issued before and every web session end; the
    answer is a fresh token to go on with. A wrong current password is 422 on
    ``current_password`` and counts as a failed log-in."""
    accounts.change_password(session, user, body.current_password, body.new_password, client)
    return _token(context, user)
