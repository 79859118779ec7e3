"""Request and response bodies of recommendations, exams and exam plans."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, Field, StrictFloat, StrictInt

from smartstudy.api.schemas import Difficulty, Strict, _text
from smartstudy.services import rules

ExamName = _text(rules.MAX_EXAM_NAME, min_length=1)
#: A chance given in JSON: a number (strict: "0.8" is not 0.8), never NaN or infinity.
Chance = Annotated[StrictFloat, Field(ge=0, le=1, allow_inf_nan=False)]


class ExamTopicIn(Strict):
    topic_id: uuid.UUID
    weight: Annotated[
        StrictFloat,
        Field(
            gt=0,
            le=rules.MAX_TOPIC_WEIGHT,
            allow_inf_nan=False,
            description="How much the topic counts in the exam (any scale; normalised).",
        ),
    ] = 1.0


ExamTopics = Annotated[list[ExamTopicIn], Field(min_length=1, max_length=rules.MAX_EXAM_TOPICS)]
Weekday = Annotated[StrictInt, Field(ge=0, le=6)]


class ExamIn(Strict):
    """An exam: either ``subject_id`` (all its topics, equal weights) or ``topics``."""

    name: ExamName
    exam_date: date = Field(
        description=f"After today, at most {rules.MAX_EXAM_DAYS_AHEAD} days ahead."
    )
    daily_minutes: Annotated[
        StrictInt, Field(ge=rules.MIN_DAILY_MINUTES, le=rules.MAX_DAILY_MINUTES)
    ] = Field(description="Study minutes per day.")
    subject_id: uuid.UUID | None = None
    topics: ExamTopics | None = None
    days_off: Annotated[list[date], Field(max_length=rules.MAX_DAYS_OFF)] = Field(
        default_factory=list, description="Dates with no study."
    )
    weekdays_off: Annotated[list[Weekday], Field(max_length=7)] = Field(
        default_factory=list, description="Weekdays with no study, 0 = Monday .. 6 = Sunday."
    )
    target: Annotated[
        StrictFloat,
        Field(ge=rules.MIN_EXAM_TARGET, le=rules.MAX_EXAM_TARGET, allow_inf_nan=False),
    ] = Field(
        default=0.8,
        description="Readiness wanted per topic: predicted success at the exam's difficulty.",
    )
    exam_difficulty: Difficulty = "medium"


class ExamTopicOut(BaseModel):
    topic_id: uuid.UUID
    topic_name: str
    weight: float


class ExamOut(BaseModel):
    id: uuid.UUID
    name: str
    subject_id: uuid.UUID | None
    topics: list[ExamTopicOut]
    exam_date: date
    days_left: int = Field(
        description="Days from today (in your time zone) to the exam; negative once past."
    )
    daily_minutes: int
    days_off: list[date]
    weekdays_off: list[int]
    target: float
    exam_difficulty: Difficulty
    created_at: datetime


class ExamListOut(BaseModel):
    items: list[ExamOut]


class RecommendationOut(BaseModel):
    topic_id: uuid.UUID
    topic_name: str
    difficulty: Difficulty
    p_correct: Chance
    time_median_s: float = Field(gt=0)
    time_p10_s: float = Field(gt=0)
    time_p90_s: float = Field(gt=0)
    score: float = Field(ge=0, le=1, description="Higher first.")
    reason: str = Field(description="Why this task, in plain words.")
    components: dict[str, float] = Field(
        description="The parts of the score, each 0..1: band (desirable difficulty), need "
        "(low mastery or accuracy), spacing (time since last practice), weight (exam weight)."
    )


class RecommendationsOut(BaseModel):
    items: list[RecommendationOut]


class PlannedTaskOut(BaseModel):
    topic_id: uuid.UUID
    topic_name: str
    difficulty: Difficulty
    p_correct: float
    time_median_s: float
    time_p10_s: float
    time_p90_s: float
    reason: str


class PlanDayOut(BaseModel):
    day: date
    budget_minutes: float = Field(
        description="0 on a day off; today: the daily minutes less those already done today."
    )
    day_off: bool
    minutes: float = Field(description="Sum of the tasks' predicted median minutes.")
    tasks: list[PlannedTaskOut]


class ReadinessOut(BaseModel):
    topic_id: uuid.UUID
    topic_name: str
    weight: float = Field(description="Normalised: the weights sum to 1.")
    now: float = Field(description="Predicted success at the exam's difficulty today.")
    p: float = Field(description="Projected on the exam date if the plan is followed.")
    low: float = Field(description="80% interval, low end.")
    high: float = Field(description="80% interval, high end.")
    reaches_target: bool


class WorkloadPointOut(BaseModel):
    daily_minutes: int
    readiness: float = Field(description="Weighted mean projected readiness on the exam date.")
    topics_at_target: int


class PlanOut(BaseModel):
    exam_id: uuid.UUID
    today: date
    exam_date: date
    daily_minutes: int
    target: float
    exam_difficulty: Difficulty
    days: list[PlanDayOut]
    readiness: list[ReadinessOut]
    trajectory: dict[str, list[float]] = Field(
        description="Topic id -> projected readiness at the end of each day of the plan."
    )
    workload: list[WorkloadPointOut] = Field(
        description="Projected readiness at other daily budgets."
    )
    minutes_needed: int | None = Field(
        description="Smallest daily minutes that bring every topic to the target (None if "
        "none up to 240 does)."
    )
    summary: str
