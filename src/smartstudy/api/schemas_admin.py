"""Request and response bodies of the admin-only API: accounts and the audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from smartstudy.api.schemas import DisplayName, Email, Password, Role, Strict
from smartstudy.services import rules


class UserAdminOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    display_name: str
    role: Role
    is_active: bool
    created_at: datetime


class UserPageOut(BaseModel):
    items: list[UserAdminOut]
    total: int
    limit: int
    offset: int


class UserPatchIn(BaseModel):
    """What to change; a field left out stays as it is."""

    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    is_active: StrictBool | None = None

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.role is None and self.is_active is None:
            raise ValueError("give role and/or is_active")
        return self


class UserCreateIn(Strict):
    email: Email
    password: Annotated[Password, Field(min_length=rules.MIN_PASSWORD)]
    display_name: DisplayName = ""
    role: Role = "student"


class PasswordSetIn(Strict):
    new_password: Password = Field(
        description=f"At least {rules.MIN_PASSWORD} characters. Give it to the account's owner "
        "by a safe way, and ask them to change it on their settings page."
    )


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    at: datetime
    actor_id: uuid.UUID | None
    actor_email: str
    action: str
    target_type: str
    target_id: str | None
    details: dict[str, Any]


class AuditPageOut(BaseModel):
    items: list[AuditEntryOut]
    total: int
    limit: int
    offset: int
