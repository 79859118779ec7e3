"""/v1/recommendations and /v1/exams: what to practise next, exams and their plans."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from smartstudy.api.deps import DB, Context, CurrentUser
from smartstudy.api.schemas_planning import (
    ExamIn,
    ExamListOut,
    ExamOut,
    ExamTopicOut,
    PlanDayOut,
    PlannedTaskOut,
    PlanOut,
    ReadinessOut,
    RecommendationOut,
    RecommendationsOut,
    WorkloadPointOut,
)
from smartstudy.planning import Plan
from smartstudy.planning.ics import plan_to_ics
from smartstudy.services import planning, rules
from smartstudy.store.orm import Exam

router = APIRouter()

_SUBJECT_404 = {404: {"description": "No such subject."}}
_PAST_409 = {409: {"description": "The exam date has passed: there is nothing left to plan."}}


def exam_out(session: DB, exam: Exam, today: date) -> ExamOut:
    return ExamOut(
        id=exam.id,
        name=exam.name,
        subject_id=exam.subject_id,
        topics=[
            ExamTopicOut(topic_id=topic.id, topic_name=topic.name, weight=weight)
            for topic, weight in planning.exam_topics(session, exam)
        ],
        exam_date=exam.exam_date,
        days_left=(exam.exam_date - today).days,
        daily_minutes=exam.daily_minutes,
        days_off=[date.fromisoformat(d) for d in exam.days_off],
        weekdays_off=list(exam.weekdays_off),
        target=exam.target,
        exam_difficulty=exam.exam_difficulty,  # type: ignore[arg-type]
        created_at=exam.created_at,
    )


def plan_out(exam: Exam, plan: Plan) -> PlanOut:
    return PlanOut(
        exam_id=exam.id,
        today=plan.today,
        exam_date=plan.exam_date,
        daily_minutes=plan.daily_minutes,
        target=plan.target,
        exam_difficulty=plan.exam_difficulty,  # type: ignore[arg-type]
        days=[
            PlanDayOut(
                day=d.day,
                budget_minutes=d.budget_minutes,
                day_off=d.day_off,
                minutes=d.minutes,
                tasks=[
                    PlannedTaskOut(
                        topic_id=uuid.UUID(t.topic_id),
                        topic_name=t.topic_name,
                        difficulty=t.difficulty,  # type: ignore[arg-type]
                        p_correct=t.p_correct,
                        time_median_s=t.time_median_s,
                        time_p10_s=t.time_p10_s,
                        time_p90_s=t.time_p90_s,
                        reason=t.reason,
                    )
                    for t in d.tasks
                ],
            )
            for d in plan.days
        ],
        readiness=[
            ReadinessOut(
                topic_id=uuid.UUID(r.topic_id),
                topic_name=r.topic_name,
                weight=r.weight,
                now=r.now,
                p=r.p,
                low=r.low,
                high=r.high,
                reaches_target=r.reaches_target,
            )
            for r in plan.readiness
        ],
        trajectory={k: list(v) for k, v in plan.trajectory.items()},
        workload=[
            WorkloadPointOut(
                daily_minutes=w.daily_minutes,
                readiness=w.readiness,
                topics_at_target=w.topics_at_target,
            )
            for w in plan.workload
        ],
        minutes_needed=plan.minutes_needed,
        summary=plan.summary,
    )


@router.get(
    "/v1/recommendations",
    response_model=RecommendationsOut,
    responses=_SUBJECT_404,
    tags=["recommendations"],
)
def recommendations(
    session: DB,
    context: Context,
    user: CurrentUser,
    subject_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=rules.MAX_RECOMMENDATIONS)] = 5,
) -> RecommendationsOut:
    """The best next (topic, difficulty) choices, best first, each with its predicted
    chance and time, a score and the reason in plain words. Topics of your nearest
    upcoming exam count more, by their exam weights."""
    found = planning.recommendations(
        session, context.predictor, user, subject_id=subject_id, limit=limit
    )
    return RecommendationsOut(
        items=[
            RecommendationOut(
                topic_id=uuid.UUID(r.topic_id),
                topic_name=r.topic_name,
                difficulty=r.difficulty,  # type: ignore[arg-type]
                p_correct=r.p_correct,
                time_median_s=r.time_median_s,
                time_p10_s=r.time_p10_s,
                time_p90_s=r.time_p90_s,
                score=r.score,
                reason=r.reason,
                components=dict(r.components),
            )
            for r in found
        ]
    )


@router.post(
    "/v1/exams", response_model=ExamOut, status_code=status.HTTP_201_CREATED, tags=["exams"]
)
def create_exam(body: ExamIn, session: DB, user: CurrentUser) -> ExamOut:
    """Add an exam: a subject, or topics with weights; the date; daily study minutes."""
    today = planning.user_today(user)
    exam = planning.create_exam(
        session,
        user,
        name=body.name,
        exam_date=body.exam_date,
        daily_minutes=body.daily_minutes,
        subject_id=body.subject_id,
        topics=None if body.topics is None else [(t.topic_id, t.weight) for t in body.topics],
        days_off=body.days_off,
        weekdays_off=body.weekdays_off,
        target=body.target,
        exam_difficulty=body.exam_difficulty,
        today=today,
    )
    return exam_out(session, exam, today)


@router.get("/v1/exams", response_model=ExamListOut, tags=["exams"])
def list_exams(session: DB, user: CurrentUser) -> ExamListOut:
    """Your exams: upcoming ones soonest first, then past ones."""
    today = planning.user_today(user)
    return ExamListOut(
        items=[exam_out(session, e, today) for e in planning.list_exams(session, user, today=today)]
    )


@router.get("/v1/exams/{exam_id}", response_model=ExamOut, tags=["exams"])
def get_exam(exam_id: uuid.UUID, session: DB, user: CurrentUser) -> ExamOut:
    return exam_out(session, planning.get_exam(session, user, exam_id), planning.user_today(user))


@router.get("/v1/exams/{exam_id}/plan", response_model=PlanOut, responses=_PAST_409, tags=["exams"])
def exam_plan(exam_id: uuid.UUID, session: DB, context: Context, user: CurrentUser) -> PlanOut:
    """The day-by-day plan from today until the exam, computed from your current
    predictions: each day's tasks fit its minutes, with projected readiness per topic on
    the exam date and the daily minutes that would reach the target."""
    exam = planning.get_exam(session, user, exam_id)
    return plan_out(exam, planning.exam_plan(session, context.predictor, user, exam))


@router.get(
    "/v1/exams/{exam_id}/plan.ics",
    response_class=Response,
    responses={
        200: {
            "description": "The plan as an iCalendar file: one all-day event per study day.",
            "content": {"text/calendar": {"schema": {"type": "string"}}},
        },
        **_PAST_409,
    },
    tags=["exams"],
)
def exam_plan_ics(exam_id: uuid.UUID, session: DB, context: Context, user: CurrentUser) -> Response:
    exam = planning.get_exam(session, user, exam_id)
    plan = planning.exam_plan(session, context.predictor, user, exam, workload=False)
    return Response(
        # The web page's export uses the same UIDs: importing both never doubles a day.
        content=plan_to_ics(plan, exam.name, uid_prefix=f"smartstudy-exam-{exam.id}"),
        media_type="text/calendar",
        headers={
            "Content-Disposition": f'attachment; filename="exam-{exam.id}.ics"',
            "Cache-Control": "no-store",
        },
    )


@router.delete("/v1/exams/{exam_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["exams"])
def delete_exam(exam_id: uuid.UUID, session: DB, user: CurrentUser) -> Response:
    planning.delete_exam(session, user, exam_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
