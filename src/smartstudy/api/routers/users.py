"""/v1/users and /v1/audit: accounts (roles, lock-outs, new passwords) and the audit log, for
admins only."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from smartstudy.api.deps import DB, AdminUser
from smartstudy.api.schemas import FilterText
from smartstudy.api.schemas_admin import (
    AuditEntryOut,
    AuditPageOut,
    PasswordSetIn,
    Role,
    UserAdminOut,
    UserCreateIn,
    UserPageOut,
    UserPatchIn,
)
from smartstudy.services import audit, rules, user_admin
from smartstudy.store.orm import User

router = APIRouter(prefix="/v1", tags=["admin"])

Limit = Annotated[int, Query(ge=1, le=rules.MAX_PAGE_SIZE, description="Entries per page.")]
Offset = Annotated[int, Query(ge=0, le=rules.MAX_OFFSET, description="Entries to skip.")]


@router.get("/users", response_model=UserPageOut)
def list_users(
    session: DB,
    _admin: AdminUser,
    role: Role | None = None,
    q: Annotated[
        FilterText | None,
        Query(description="Only accounts whose e-mail or name contains this (any case)."),
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> UserPageOut:
    """Every account, by e-mail (optionally of one role, or matching ``q``)."""
    page = user_admin.list_users(session, role=role, search=q, limit=limit, offset=offset)
    return UserPageOut(
        items=[UserAdminOut.model_validate(u) for u in page.items],
        total=page.total,
        limit=page.limit,
        offset=page.offset,
    )


@router.post("/users", response_model=UserAdminOut, status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreateIn, session: DB, admin: AdminUser) -> User:
    """Create an account (a student, or an admin with ``role``), for example while sign-up
    is closed (``SMARTSTUDY_OPEN_SIGNUP=false``); recorded in the audit log. A taken e-mail
    answers 409."""
    return user_admin.create_account(
        session, admin, body.email, body.password, body.display_name, body.role
    )


@router.patch("/users/{user_id}", response_model=UserAdminOut)
def update_user(user_id: uuid.UUID, body: UserPatchIn, session: DB, admin: AdminUser) -> User:
    """Change an account's role or lock it out (``is_active: false``); recorded in the audit
    log. Admins cannot demote or deactivate themselves (409)."""
    return user_admin.update_user(session, admin, user_id, role=body.role, is_active=body.is_active)


@router.post("/users/{user_id}/password", response_model=UserAdminOut)
def set_user_password(
    user_id: uuid.UUID, body: PasswordSetIn, session: DB, admin: AdminUser
) -> User:
    """Set a new password for an account whose owner forgot theirs (there is no e-mail
    reset). Every web session and API token of the account ends, and a log-in lock-out of
    the account is lifted; recorded in the audit log, without the password. An admin's own
    password is changed with ``POST /v1/auth/password`` (409 here)."""
    return user_admin.set_password(session, admin, user_id, body.new_password)


@router.get("/audit", response_model=AuditPageOut)
def audit_log(
    session: DB,
    _admin: AdminUser,
    action: Annotated[
        FilterText | None, Query(description="Only this action, e.g. model.activate.")
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> AuditPageOut:
    """Admin actions, newest first."""
    page = audit.list_entries(session, action=action, limit=limit, offset=offset)
    return AuditPageOut(
        items=[AuditEntryOut.model_validate(e) for e in page.items],
        total=page.total,
        limit=page.limit,
        offset=page.offset,
    )
