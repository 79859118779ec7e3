"""Accounts as admins manage them: list every user, change a role, lock an account out, or
set a new password for someone who forgot theirs.

Each change is written to the audit log in the same transaction (never a password). An admin
cannot demote or deactivate themselves, so the installation always keeps the admin who made
the change, and changes their own password the usual way, with the current one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from smartstudy.services import accounts, audit, throttle
from smartstudy.services.accounts import get_user, revoke_credentials
from smartstudy.services.errors import ConflictError, InvalidInputError
from smartstudy.store.orm import ROLES, PracticeTask, User, as_utc


@dataclass(frozen=True)
class UserPage:
    items: list[User]
    total: int
    limit: int
    offset: int


def list_users(
    session: Session,
    *,
    role: str | None = None,
    search: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> UserPage:
    """Accounts ordered by e-mail, optionally of one role, and only those whose e-mail or
    name contains ``search`` (any case; ``%`` and ``_`` are plain characters)."""
    conditions: list[Any] = []
    if role is not None:
        conditions.append(User.role == _check_role(role))
    if search is not None and search.strip():
        text = search.strip().lower()
        conditions.append(
            or_(
                func.lower(User.email).contains(text, autoescape=True),
                func.lower(User.display_name).contains(text, autoescape=True),
            )
        )
    total = session.scalar(select(func.count()).select_from(User).where(*conditions))
    items = session.scalars(
        select(User).where(*conditions).order_by(User.email).limit(limit).offset(offset)
    ).all()
    return UserPage(items=list(items), total=total or 0, limit=limit, offset=offset)


@dataclass(frozen=True)
class Activity:
    """What a student has done: completed practice tasks, how many right, the last one."""

    tasks_done: int = 0
    correct: int = 0
    last_done: datetime | None = None

    @property
    def rate(self) -> float | None:
        return self.correct / self.tasks_done if self.tasks_done else None


def activity(session: Session, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, Activity]:
    """The ``Activity`` of each of ``user_ids`` that has completed a task (one query)."""
    if not user_ids:
        return {}
    rows = session.execute(
        select(
            PracticeTask.user_id,
            func.count(),
            func.sum(case((PracticeTask.is_correct.is_(True), 1), else_=0)),
            func.max(PracticeTask.completed_at),
        )
        .where(PracticeTask.user_id.in_(user_ids), PracticeTask.completed_at.is_not(None))
        .group_by(PracticeTask.user_id)
    ).all()
    return {
        user_id: Activity(int(n), int(correct or 0), as_utc(last))
        for user_id, n, correct, last in rows
    }


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInputError("role", f"must be one of {', '.join(ROLES)}")
    return role


def update_user(
    session: Session,
    actor: User,
    user_id: uuid.UUID,
    *,
    role: str | None = None,
    is_active: bool | None = None,
) -> User:
    """Change ``user_id``'s role and/or active flag (``None`` keeps it) and audit the change.

    Deactivating an account also ends its web sessions and voids its API tokens.
    """
    user = get_user(session, user_id)
    if role is not None:
        _check_role(role)
    if user.id == actor.id:
        if role is not None and role != "admin":
            raise ConflictError("role: you cannot remove your own admin role; ask another admin")
        if is_active is False:
            raise ConflictError("is_active: you cannot deactivate your own account")
    changes: dict[str, Any] = {}
    if role is not None and role != user.role:
        changes["role"] = [user.role, role]
        user.role = role
    if is_active is not None and is_active != user.is_active:
        changes["is_active"] = [user.is_active, is_active]
        user.is_active = is_active
        if not is_active:
            revoke_credentials(session, user)
    session.flush()
    if changes:
        audit.record(
            session, actor, "user.update", "user", user.id, {"email": user.email, **changes}
        )
    return user


def create_account(
    session: Session,
    actor: User | None,
    email: str,
    password: str,
    display_name: str = "",
    role: str = "student",
) -> User:
    """An account made by an admin (``actor``; None for the command line), for an
    installation whose sign-up is closed or a class set up in advance; audited."""
    user = accounts.create_user(session, email, password, display_name, role=_check_role(role))
    details = {"email": user.email, "role": user.role}
    audit.record(session, actor, "user.create", "user", user.id, details)
    return user


def set_password(session: Session, actor: User | None, user_id: uuid.UUID, new: str) -> User:
    """Give ``user_id`` a new password chosen by an admin (``actor``; None for the command
    line), for a student who forgot theirs: every web session and API token of the account
    ends, and a log-in lock-out of the account is lifted. An admin's own password is changed
    with the current one (``accounts.change_password``), so this refuses it (409)."""
    user = get_user(session, user_id)
    if actor is not None and user.id == actor.id:
        raise ConflictError(
            "you cannot set your own password here; change it on your settings page, "
            "with your current password"
        )
    accounts.check_new_password(new)
    accounts.replace_password(session, user, new)
    throttle.reset(session, throttle.keys_for(user.email, None))
    audit.record(session, actor, "user.set_password", "user", user.id, {"email": user.email})
    return user
