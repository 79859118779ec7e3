"""/v1/auth: register, log in, who am I."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status
from fastapi.security import OAuth2PasswordRequestForm

from smartstudy.api.deps import DB, Context, CurrentUser
from smartstudy.api.schemas import LoginIn, RegisterIn, TokenOut, UserOut
from smartstudy.services import accounts
from smartstudy.services.security import create_access_token
from smartstudy.store.orm import User

router = APIRouter(prefix="/v1/auth", tags=["auth"])


def _token(context: Context, user: User) -> TokenOut:
    minutes = context.settings.access_token_minutes
    token = create_access_token(user.id, context.settings.resolved_secret_key, minutes)
    return TokenOut(access_token=token, expires_in=minutes * 60)


@router.post("/register", response_model=UserOut, status_code=status.HTTP_201_CREATED)
def register(body: RegisterIn, session: DB) -> User:
    """Create a student account."""
    user = accounts.create_user(session, body.email, body.password, body.display_name)
    session.commit()
    return user


@router.post("/login", response_model=TokenOut)
def login(body: LoginIn, session: DB, context: Context) -> TokenOut:
    """Exchange e-mail and password for an access token."""
    return _token(context, accounts.authenticate(session, body.email, body.password))


@router.post("/token", response_model=TokenOut, include_in_schema=True)
def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], session: DB, context: Context
) -> TokenOut:
    """The same as /login for OAuth2 password-flow clients (the form's username is the e-mail)."""
    return _token(context, accounts.authenticate(session, form.username, form.password))


@router.get("/me", response_model=UserOut)
def me(user: CurrentUser) -> User:
    return user
