"""Accounts: registration, throttled log-in, password changes, web sessions, admins."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from smartstudy.services import localtime, rules, throttle
from smartstudy.services.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
)
from smartstudy.services.security import hash_password, verify_nothing, verify_password
from smartstudy.store.orm import AuthSession, User, utcnow

MIN_PASSWORD_LENGTH = rules.MIN_PASSWORD


def normalise_email(email: str) -> str:
    return email.strip().lower()


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInputError(
            "password", f"must be at least {MIN_PASSWORD_LENGTH} characters long"
        )
    if len(password) > rules.MAX_PASSWORD:
        raise InvalidInputError("password", f"must be at most {rules.MAX_PASSWORD} characters long")


#: What a visitor is told when sign-up is closed (``Settings.open_signup``).
SIGNUP_CLOSED = "sign-up is closed on this SmartStudy; ask an administrator for an account"


def get_user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == normalise_email(email)))


def create_user(
    session: Session,
    email: str,
    password: str,
    display_name: str = "",
    role: str = "student",
    *,
    time_zone: str = localtime.DEFAULT_TIME_ZONE,
    locale: str = localtime.DEFAULT_LOCALE,
) -> User:
    """A new account; ``ConflictError`` if the e-mail is taken. ``time_zone`` and ``locale``
    must be valid (``services.localtime``); a caller that takes them from a browser falls
    back to the defaults itself."""
    check_password_rules(password)
    rules.check_text(display_name, "display_name", rules.MAX_DISPLAY_NAME)
    if role not in ("student", "admin"):
        raise InvalidInputError("role", "must be student or admin")
    time_zone = localtime.check_time_zone(time_zone)
    locale = localtime.check_locale(locale)
    email = normalise_email(email)
    if get_user_by_email(session, email) is not None:
        raise ConflictError(f"an account with e-mail {email} already exists")
    user = User(
        email=email,
        password_hash=hash_password(password),
        display_name=display_name.strip() or email.split("@")[0],
        role=role,
        time_zone=time_zone,
        locale=locale,
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
    """The active user with this e-mail and password; ``AuthenticationError`` otherwise.

    An unknown or inactive account still costs one Argon2 verification, so the answer takes
    as long as for a wrong password and its timing does not tell which e-mails exist.
    """
    user = get_user_by_email(session, email)
    if user is None or not user.is_active:
        verify_nothing(password)
        raise AuthenticationError("wrong e-mail or password")
    if not verify_password(user.password_hash, password):
        raise AuthenticationError("wrong e-mail or password")
    return user


def log_in(session: Session, email: str, password: str, client: str | None) -> User:
    """``authenticate``, throttled per account and per client address (``services.throttle``):
    ``TooManyAttemptsError`` while either is locked out, without checking the password."""
    if rules.text_problem(email, rules.MAX_EMAIL) is not None:
        # No such account can exist (a NUL byte would even fail the query on PostgreSQL).
        verify_nothing(password)
        raise AuthenticationError("wrong e-mail or password")
    keys = throttle.keys_for(normalise_email(email), client)
    throttle.check(session, keys)
    try:
        user = authenticate(session, email, password)
    except AuthenticationError:
        _count_failure(session, keys)
        raise
    throttle.reset(session, keys)
    return user


def _count_failure(session: Session, keys: throttle.Keys) -> None:
    throttle.record_failure(session, keys)
    # The caller's transaction rolls back with the error that follows; the count must stay.
    session.commit()


def set_time_zone_and_locale(
    session: Session, user: User, time_zone: str | None = None, locale: str | None = None
) -> User:
    """Change the user's time zone and/or locale (None leaves one as it is); an unknown
    value is ``InvalidInputError`` on its field and nothing is changed."""
    checked_zone = None if time_zone is None else localtime.check_time_zone(time_zone)
    checked_locale = None if locale is None else localtime.check_locale(locale)
    if checked_zone is not None:
        user.time_zone = checked_zone
    if checked_locale is not None:
        user.locale = checked_locale
    session.flush()
    return user


def check_current_password(session: Session, user: User, password: str, client: str | None) -> None:
    """Confirm a signed-in user's password before a change that needs it; a wrong one is
    ``InvalidInputError`` on ``current_password`` and counts as a failed log-in."""
    keys = throttle.keys_for(user.email, client)
    throttle.check(session, keys)
    if not verify_password(user.password_hash, password):
        _count_failure(session, keys)
        raise InvalidInputError("current_password", "is wrong")
    throttle.reset(session, keys)


def change_password(
    session: Session, user: User, current: str, new: str, client: str | None
) -> User:
    """Set a new password after checking the current one, and end every web session and API
    token issued before; the caller signs its own browser or client in again."""
    # The new password's rules first: a typo there costs no verification and no failure.
    check_new_password(new)
    if current == new:
        raise InvalidInputError("new_password", "must differ from the current password")
    check_current_password(session, user, current, client)
    return replace_password(session, user, new)


def check_new_password(new: str) -> None:
    """``check_password_rules`` for a new password (the error names ``new_password``)."""
    try:
        check_password_rules(new)
    except InvalidInputError as exc:
        raise InvalidInputError("new_password", exc.message) from exc


def replace_password(session: Session, user: User, new: str) -> User:
    """Store ``new`` (checked already) as the password, and end every web session and API
    token of ``user`` issued before."""
    user.password_hash = hash_password(new)
    revoke_credentials(session, user)
    return user


#: How long a web session lasts after log-in.
WEB_SESSION_LIFETIME = timedelta(days=7)
#: ``last_seen_at`` moves at most this often, so reading pages rarely writes.
LAST_SEEN_STEP = timedelta(minutes=1)


def open_web_session(session: Session, user: User, now: datetime | None = None) -> AuthSession:
    """A new server-side web session for ``user`` (the cookie names its id)."""
    now = now or utcnow()
    # The user's ended sessions are of no more use; dropping them here keeps the table small.
    session.execute(
        delete(AuthSession).where(
            AuthSession.user_id == user.id,
            or_(AuthSession.expires_at <= now, AuthSession.revoked_at.is_not(None)),
        )
    )
    row = AuthSession(
        user_id=user.id, created_at=now, last_seen_at=now, expires_at=now + WEB_SESSION_LIFETIME
    )
    session.add(row)
    session.flush()
    return row


def web_session_user(
    session: Session, session_id: uuid.UUID, user_id: uuid.UUID, now: datetime | None = None
) -> User | None:
    """The user of a live web session: the row exists, is the user's, is neither revoked nor
    expired, and the user is active. None for anything else."""
    now = now or utcnow()
    row = session.get(AuthSession, session_id)
    if row is None or row.user_id != user_id or row.revoked_at is not None:
        return None
    if row.expires_at <= now:
        return None
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        return None
    if now - row.last_seen_at >= LAST_SEEN_STEP:
        row.last_seen_at = now
    return user


def close_web_session(session: Session, session_id: uuid.UUID, now: datetime | None = None) -> None:
    """Revoke one web session (log-out)."""
    session.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
    )


def revoke_credentials(session: Session, user: User, now: datetime | None = None) -> None:
    """End every web session of ``user`` and void every API token issued so far: for a
    password change, and for a deactivation (the caller sets ``is_active``)."""
    session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
    )
    # In SQL, so two concurrent changes both count; the attribute reloads on next access.
    user.token_version = User.token_version + 1
    session.flush()


def get_user(session: Session, user_id: uuid.UUID) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFoundError("user not found")
    return user
