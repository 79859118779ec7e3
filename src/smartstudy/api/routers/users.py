"""/v1/users and /v1/audit: accounts and the audit log, for admins only."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from smartstudy.api.deps import DB, AdminUser
from smartstudy.api.schemas import FilterText
from smartstudy.api.schemas_admin import (
    AuditEntryOut,
    AuditPageOut,
    Role,
    UserAdminOut,
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
    session: DB, _admin: AdminUser, role: Role | None = None, limit: Limit = 50, offset: Offset = 0
) -> UserPageOut:
    """Every account, by e-mail (optionally of one role)."""
    page = user_admin.list_users(session, role=role, limit=limit, offset=offset)
    return UserPageOut(
        items=[UserAdminOut.model_validate(u) for u in page.items],
        total=page.total,
        limit=page.limit,
        offset=page.offset,
    )


@router.patch("/users/{user_id}", response_model=UserAdminOut)
def update_user(user_id: uuid.UUID, body: UserPatchIn, session: DB, admin: AdminUser) -> User:
    """Change an account's role or lock it out (``is_active: false``); recorded in the audit
    log. Admins cannot demote or deactivate themselves (409)."""
    return user_admin.update_user(session, admin, user_id, role=body.role, is_active=body.is_active)


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
