"""Accounts: registration, log-in, admins."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from smartstudy.services.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
)
from smartstudy.services.security import hash_password, verify_password
from smartstudy.store.orm import User

MIN_PASSWORD_LENGTH = 8


def normalise_email(email: str) -> str:
    return email.strip().lower()


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInputError(
            "password", f"must be at least {MIN_PASSWORD_LENGTH} characters long"
        )


def get_user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == normalise_email(email)))


def create_user(
    session: Session,
    email: str,
    password: str,
    display_name: str = "",
    role: str = "student",
) -> User:
    """A new account; ``ConflictError`` if the e-mail is taken."""
    check_password_rules(password)
    if role not in ("student", "admin"):
        raise InvalidInputError("role", "must be student or admin")
    email = normalise_email(email)
    if get_user_by_email(session, email) is not None:
        raise ConflictError(f"an account with e-mail {email} already exists")
    user = User(
        email=email,
        password_hash=hash_password(password),
        display_name=display_name.strip() or email.split("@")[0],
        role=role,
    )
    # Two registrations of one e-mail can both pass the check above; the unique index
    # decides, and the loser gets the same 409 instead of a database error. The savepoint
    # keeps the caller's transaction usable.
    try:
        with session.begin_nested():
            session.add(user)
            session.flush()
    except IntegrityError as exc:
        raise ConflictError(f"an account with e-mail {email} already exists") from exc
    return user


def authenticate(session: Session, email: str, password: str) -> User:
    user = get_user_by_email(session, email)
    if user is None or not user.is_active or not verify_password(user.password_hash, password):
        raise AuthenticationError("wrong e-mail or password")
    return user


def get_user(session: Session, user_id: uuid.UUID) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFoundError("user not found")
    return user


def count_users(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0
