"""Pydantic request and response bodies, separate from the ORM models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

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


class QuestionIn(Strict):
    concept_id: uuid.UUID
    prompt: str = Field(min_length=1, max_length=4000)
    options: list[str] = Field(min_length=2, max_length=8)
    correct_option: int = Field(ge=0, description="Index in options of the right answer.")
    difficulty: Difficulty = "medium"


class QuestionOut(BaseModel):
    """A question; ``correct_option`` is shown to admins only."""

    id: uuid.UUID
    concept_id: uuid.UUID
    prompt: str
    options: list[str]
    difficulty: Difficulty
    correct_option: int | None = None


class SessionIn(Strict):
    topic_id: uuid.UUID | None = None
    concept_ids: list[uuid.UUID] | None = Field(default=None, max_length=50)
    n_questions: int = Field(default=5, ge=1, le=50)


class SessionQuestionOut(BaseModel):
    id: uuid.UUID
    position: int
    prompt: str
    options: list[str]
    concept_id: uuid.UUID | None
    chosen_option: int | None = None
    is_correct: bool | None = Field(default=None, description="Shown once submitted.")
    correct_option: int | None = Field(default=None, description="Shown once submitted.")


class SessionOut(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    topic_id: uuid.UUID | None
    status: Literal["open", "submitted"]
    created_at: datetime
    submitted_at: datetime | None
    n_correct: int | None
    questions: list[SessionQuestionOut]


class AnswerIn(Strict):
    session_question_id: uuid.UUID
    chosen_option: int = Field(ge=0)


class MasteryChange(BaseModel):
    concept_id: uuid.UUID
    p_mastery: float


class SubmissionOut(BaseModel):
    session: SessionOut
    n_questions: int
    n_answered: int
    n_correct: int
    mastery: list[MasteryChange]
    warnings: list[str]


class RecomputeIn(Strict):
    from_date: datetime | None = None
    to_date: datetime | None = None
    min_attempts: int = Field(default=10, ge=1)
    min_users: int = Field(default=3, ge=1)
    concept_ids: list[uuid.UUID] | None = None
    activate_new_params: bool = False
    forgets: bool = False
    n_restarts: int = Field(default=5, ge=1, le=50)


class AlgoOut(BaseModel):
    key: str
    version: str


class RecomputeSummary(BaseModel):
    concepts_processed: int
    params_fitted: int
    skipped: dict[str, str]
    errors: dict[str, str]


class RecomputeOut(BaseModel):
    ok: bool
    run_id: uuid.UUID
    algo: AlgoOut
    params_id: uuid.UUID | None = Field(
        description="The fitted version when one concept was fitted."
    )
    params_ids: dict[str, uuid.UUID]
    summary: RecomputeSummary


class MasteryUpdateIn(Strict):
    user_id: uuid.UUID | None = Field(default=None, description="Default: yourself.")
    question_id: uuid.UUID | None = None
    concept_id: uuid.UUID
    correct: bool
    snapshot_mastery: bool = False


class MasteryUpdateOut(BaseModel):
    user_id: uuid.UUID
    concept_id: uuid.UUID
    p_mastery: float
    n_attempts: int
    algo_version_id: uuid.UUID | None
    params_id: uuid.UUID | None


class MasteryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    user_id: uuid.UUID
    concept_id: uuid.UUID
    p_mastery: float
    n_attempts: int
    last_attempt_at: datetime | None
    updated_at: datetime


class ModelVersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    model_name: str
    version: int
    status: str
    is_active: bool
    created_at: datetime
    trained_until: datetime | None
    n_training_rows: int
    metrics: dict[str, Any]
    training_summary: dict[str, Any]


class TrainingRunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    status: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    summary: dict[str, Any]


class CounterOut(BaseModel):
    count: int
    total: int
    retrain_every: int
    last_trained_at: datetime | None


class FallbackOut(BaseModel):
    at: datetime
    model_name: str
    error: str


class ModelsStatusOut(BaseModel):
    chain: list[str]
    active: dict[str, ModelVersionOut | None]
    counter: CounterOut
    training_runs: list[TrainingRunOut]
    fallbacks: list[FallbackOut]


class HistogramOut(BaseModel):
    edges: list[float]
    counts: list[int]


class DistributionOut(BaseModel):
    model_name: str
    n: int
    distinct: int
    saturated_share: float
    mean: float | None
    std: float | None
    histogram: HistogramOut
    warning: str | None


class TrainScheduledOut(BaseModel):
    scheduled: bool
    detail: str
