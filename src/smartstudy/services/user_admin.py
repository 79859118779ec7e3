"""Accounts as admins manage them: list every user, change a role or lock an account out.

Each change is written to the audit log in the same transaction. An admin cannot demote or
deactivate themselves, so the installation always keeps the admin who made the change.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from smartstudy.services import audit
from smartstudy.services.accounts import get_user, revoke_credentials
from smartstudy.services.errors import ConflictError, InvalidInputError
from smartstudy.store.orm import ROLES, User


@dataclass(frozen=True)
class UserPage:
    items: list[User]
    total: int
    limit: int
    offset: int


def list_users(
    session: Session, *, role: str | None = None, limit: int = 50, offset: int = 0
) -> UserPage:
    """Accounts ordered by e-mail, optionally of one role."""
    conditions = []
    if role is not None:
        conditions.append(User.role == _check_role(role))
    total = session.scalar(select(func.count()).select_from(User).where(*conditions))
    items = session.scalars(
        select(User).where(*conditions).order_by(User.email).limit(limit).offset(offset)
    ).all()
    return UserPage(items=list(items), total=total or 0, limit=limit, offset=offset)


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
