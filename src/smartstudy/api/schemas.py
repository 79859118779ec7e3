"""Pydantic request and response bodies, separate from the ORM models."""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
)
from pydantic_core import PydanticCustomError

from smartstudy.services import localtime, rules
from smartstudy.services.errors import InvalidInputError

# The values come from services.rules (stated once); Literal keeps them in the OpenAPI enum.
Difficulty = Literal[rules.DIFFICULTIES]  # type: ignore[valid-type]
Role = Literal[rules.ROLES]  # type: ignore[valid-type]
LocaleTag = Literal[localtime.SUPPORTED_LOCALES]  # type: ignore[valid-type]


def _text(max_length: int, *, min_length: int = 0, multiline: bool = False) -> Any:
    """A string type with a limit and the character rules of ``services.rules``; a broken
    rule fails with its sentence, and the 422 answer adds the field's name."""

    def check(value: str) -> str:
        problem = rules.text_problem(value, max_length, multiline=multiline)
        if problem is not None:
            raise PydanticCustomError("text_rule", problem)
        return value

    return Annotated[
        str, Field(min_length=min_length, max_length=max_length), AfterValidator(check)
    ]


Name = _text(rules.MAX_NAME, min_length=1)
DisplayName = _text(rules.MAX_DISPLAY_NAME)
Description = _text(rules.MAX_DESCRIPTION, multiline=True)
Prompt = _text(rules.MAX_PROMPT, min_length=1, multiline=True)
Option = _text(rules.MAX_OPTION, min_length=1)
#: A free-text query-string filter (e.g. ``?model_name=``).
FilterText = _text(rules.MAX_FILTER)
#: A password is hashed, never stored or shown: any character is allowed.
Password = Annotated[str, Field(max_length=rules.MAX_PASSWORD)]
Email = Annotated[EmailStr, Field(max_length=rules.MAX_EMAIL)]
#: JSON numbers only (no strings, no true/false) and no NaN or infinity.
Seconds = Annotated[
    StrictFloat,
    Field(
        gt=0,
        le=rules.MAX_TASK_SECONDS,
        allow_inf_nan=False,
        description=f"Time spent, in seconds (more than 0, at most {rules.MAX_TASK_HOURS} h).",
    ),
]


class Strict(BaseModel):
    """A request body: unknown fields are refused. Numbers and booleans are declared with
    pydantic's strict types, so "30" is not 30 and true is not 1 (ids and times still come
    as strings, which a strict model config would refuse)."""

    model_config = ConfigDict(extra="forbid")


def _json_text(value: str, limit: int = 200) -> str:
    # An unpaired surrogate cannot be encoded as UTF-8; it becomes "?".
    return value[:limit].encode("utf-8", "replace").decode("utf-8")


def _json_input(value: object) -> object | None:
    """``value`` if JSON carries it as it is (a string cut to 200 characters), else None."""
    if isinstance(value, str):
        return _json_text(value)
    if isinstance(value, bool) or (isinstance(value, int) and abs(value) < 2**53):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return None


def validation_error_out(error: Mapping[str, Any]) -> dict[str, Any]:
    """One of pydantic's errors as JSON can always carry it: ``loc``, ``msg``, ``type`` and,
    where it is a plain value, the ``input`` that was refused. A NaN, an infinity, a huge
    integer, an object or an unpaired surrogate in the request is never echoed back, so the
    422 answer cannot itself fail."""
    loc = [p if isinstance(p, int) else _json_text(str(p)) for p in error.get("loc", ())]
    out: dict[str, Any] = {
        "loc": loc,
        "msg": _json_text(str(error.get("msg", "")), 1000),
        "type": _json_text(str(error.get("type", "")), 100),
    }
    echoed = _json_input(error.get("input"))
    if echoed is not None:
        out["input"] = echoed
    return out


def _check_time_zone(value: str) -> str:
    try:
        return localtime.check_time_zone(value)
    except InvalidInputError as exc:
        raise PydanticCustomError("time_zone", exc.message) from exc


TimeZone = Annotated[
    str,
    Field(
        max_length=localtime.MAX_TIME_ZONE,
        description="An IANA time zone name: dates and 'today' follow this clock.",
        examples=["Europe/Berlin", "Asia/Tokyo", "UTC"],
    ),
    AfterValidator(_check_time_zone),
]
UserLocale = Annotated[LocaleTag, Field(description="How dates and times are written.")]


class RegisterIn(Strict):
    email: Email
    password: Annotated[Password, Field(min_length=rules.MIN_PASSWORD)]
    display_name: DisplayName = ""
    time_zone: TimeZone = localtime.DEFAULT_TIME_ZONE
    locale: UserLocale = localtime.DEFAULT_LOCALE


class PreferencesIn(Strict):
    """Either or both; a field left out stays as it is."""

    time_zone: TimeZone | None = None
    locale: UserLocale | None = None


class LoginIn(Strict):
    email: Email
    password: Annotated[Password, Field(min_length=1)]


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the token expires.")


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    display_name: str
    role: Role
    created_at: datetime
    time_zone: str
    locale: str


class NameIn(Strict):
    name: Name


class TopicIn(Strict):
    subject_id: uuid.UUID
    name: Name


class ConceptIn(Strict):
    topic_id: uuid.UUID
    name: Name


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
    description: Description | None = None


class PredictionOut(BaseModel):
    predicted_correct: float = Field(ge=0, le=1)
    predicted_time_median_s: float = Field(gt=0)
    predicted_time_p10_s: float = Field(gt=0)
    predicted_time_p90_s: float = Field(gt=0)
    model_name: str
    model_version: str
    explanation: list[str] | None = Field(
        default=None,
        description="Why this prediction, in plain sentences (the student's own record in "
        "this topic and difficulty, how other students do, typical time, the 80% range).",
    )


class CompleteIn(Strict):
    is_correct: StrictBool
    actual_time_seconds: Seconds


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
    explanation: list[str] | None = Field(
        default=None,
        description="Why this prediction, in plain sentences (the student's own record in "
        "this topic and difficulty, how other students do, typical time, the 80% range).",
    )


class TaskPageOut(BaseModel):
    items: list[TaskOut]
    total: int
    limit: int
    offset: int


class QuestionIn(Strict):
    concept_id: uuid.UUID
    prompt: Prompt
    options: list[Option] = Field(min_length=2, max_length=8)
    correct_option: StrictInt = Field(ge=0, description="Index in options of the right answer.")
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
    n_questions: StrictInt = Field(default=5, ge=1, le=50)


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
    chosen_option: StrictInt = Field(ge=0)


class MasteryChange(BaseModel):
    concept_id: uuid.UUID
    p_mastery: float
    mastery: float | None = Field(
        default=None,
        description="Chance that you have mastered this concept, from your answers so far: "
        "never raised by a wrong answer nor lowered by a correct one. Show this number.",
    )


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
    min_attempts: StrictInt = Field(default=10, ge=1, le=1_000_000)
    min_users: StrictInt = Field(default=3, ge=1, le=1_000_000)
    concept_ids: list[uuid.UUID] | None = Field(default=None, max_length=10_000)
    activate_new_params: StrictBool = False
    forgets: StrictBool = False
    n_restarts: StrictInt = Field(default=5, ge=1, le=50)


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
    correct: StrictBool
    snapshot_mastery: StrictBool = False


class _MasteryFields(BaseModel):
    """The mastery fields shared by the update answer and the mastery list."""

    user_id: uuid.UUID
    concept_id: uuid.UUID
    p_mastery: float
    mastery: float = Field(
        description="Chance that you have mastered this concept, from your answers so far: "
        "never raised by a wrong answer nor lowered by a correct one. Show this number; "
        "p_mastery is the BKT state at the next attempt (learning from practice included)."
    )


class MasteryUpdateOut(_MasteryFields):
    n_attempts: int
    algo_version_id: uuid.UUID | None
    params_id: uuid.UUID | None


class MasteryOut(_MasteryFields):
    model_config = ConfigDict(from_attributes=True)

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
    attempts: int = Field(description="1 for a first run; a retry of a dead run counts up")
    retry_of: uuid.UUID | None = Field(description="the run whose process died, if a retry")
    worker: str | None = Field(description="host:pid of the process that ran it")
    heartbeat_at: datetime | None


class CounterOut(BaseModel):
    count: int
    total: int
    retrain_every: int
    last_trained_at: datetime | None


class FallbackOut(BaseModel):
    at: datetime
    model_name: str
    error: str


class ServingFamilyOut(BaseModel):
    model_name: str
    version_id: str
    evaluated_at: str | None = None
    ranked: bool = Field(
        default=True, description="False for a family that answered too few held-out rows."
    )
    kinds: dict[str, Any] = Field(
        description="Per kind (all, cold, warm): held-out scores raw and calibrated "
        "(rows, log_loss, ece, rmse_log_time, coverage_80)."
    )
    calibration: dict[str, Any] = Field(
        description="Per kind: logit slope and intercept, log-time median shift, interval "
        "scale, and the held-out rows they were fitted on."
    )
    probability_calibration_served: dict[str, bool] = Field(
        default_factory=dict,
        description="Per kind (cold, warm): whether the probability part of that "
        "calibration is served. The chance has one calibration for every kind: it is "
        "withheld for all of them once it did worse live than no calibration on all live "
        "tasks (see live.calibration).",
    )


class ServingOut(BaseModel):
    held_out: bool = Field(description="Whether any student is held out for validation.")
    evaluation: str | None = Field(description="The training run that scored the families.")
    cold_tasks: int = Field(description="A request is cold below this many tasks in its topic.")
    reason: str
    order: dict[str, list[str]] = Field(description="The chain's order for cold and warm requests.")
    families: list[ServingFamilyOut]
    live: dict[str, Any] | None = Field(
        default=None,
        description="Live ranking: the completed tasks scored (tasks) and, per family but "
        "the chain's last and per kind (all, cold, warm), the rows it answered, its log loss "
        "there, the last family's on the same rows, and the difference (advantage); and "
        "under calibration, per family and kind, the live gain of its fitted calibration "
        "over its uncalibrated predictions: p_gain, the drop in log loss (with its standard "
        "error); coverage_raw and coverage_served, the share of live times within the 80% "
        "ranges uncalibrated and as served; and live_time_shift and live_interval_scale, "
        "the time calibration fitted on live_time_rows live times (served from 100 on).",
    )


class ModelsStatusOut(BaseModel):
    chain: list[str]
    active: dict[str, ModelVersionOut | None]
    counter: CounterOut
    training_runs: list[TrainingRunOut]
    fallbacks: list[FallbackOut]
    serving: ServingOut | None = Field(
        default=None, description="Which family answers which requests, and why."
    )


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


class PasswordChangeIn(Strict):
    current_password: Password = Field(min_length=1)
    new_password: Password = Field(
        description=f"At least {rules.MIN_PASSWORD} characters; not the current one."
    )
