"""Pydantic request and response bodies, separate from the ORM models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

Difficulty = Literal["easy", "medium", "hard"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterIn(Strict):
    email: EmailStr
    password: str = Field(min_length=8, max_length=256)
    display_name: str = Field(default="", max_length=120)


class LoginIn(Strict):
    email: EmailStr
    password: str = Field(min_length=1, max_length=256)


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the token expires.")


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    display_name: str
    role: Literal["student", "admin"]
    created_at: datetime


class NameIn(Strict):
    name: str = Field(min_length=1, max_length=120)


class TopicIn(Strict):
    subject_id: uuid.UUID
    name: str = Field(min_length=1, max_length=120)


class ConceptIn(Strict):
    topic_id: uuid.UUID
    name: str = Field(min_length=1, max_length=120)


class SubjectOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str


class TopicOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    subject_id: uuid.UUID
    name: str


class ConceptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    topic_id: uuid.UUID
    name: str


class PredictionIn(Strict):
    topic_id: uuid.UUID
    difficulty: Difficulty


class TaskIn(PredictionIn):
    description: str | None = Field(default=None, max_length=2000)


class PredictionOut(BaseModel):
    predicted_correct: float = Field(ge=0, le=1)
    predicted_time_median_s: float = Field(gt=0)
    predicted_time_p10_s: float = Field(gt=0)
    predicted_time_p90_s: float = Field(gt=0)
    model_name: str
    model_version: str


class CompleteIn(Strict):
    is_correct: bool
    actual_time_seconds: float = Field(
        gt=0, le=86400, description="Time spent, in seconds (more than 0, at most 24 h)."
    )


class TaskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    user_id: uuid.UUID
    topic_id: uuid.UUID
    topic_name: str
    subject_name: str
    difficulty: Difficulty
    description: str | None
    status: Literal["created", "started", "completed"]
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    is_correct: bool | None
    actual_time_seconds: float | None
    predicted_correct: float | None
    predicted_time_median_s: float | None
    predicted_time_p10_s: float | None
    predicted_time_p90_s: float | None
    model_name: str | None
    model_version: str | None


class TaskPageOut(BaseModel):
    items: list[TaskOut]
    total: int
    limit: int
    offset: int


class HealthOut(BaseModel):
    status: str
