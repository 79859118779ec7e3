"""What to practise next, and exams with a day-by-day plan until the exam date.

The student's current predictions for every (topic, difficulty) cell come from the serving
models (``PredictionService.predict``), their record per topic from the store
(``store.repositories.exams``); ``smartstudy.planning`` turns both into recommendations or a
plan. Nothing of a plan is stored: it is computed on each request from today's date and the
current predictions, so it follows every completion and starts again from today after a
missed day.

Exams are personal: a student sees, plans and deletes only their own; another's exam
answers "not found" (admins included), so ids reveal nothing.

"Today" is the date on the user's clock (their time zone, ``services.localtime``); a caller
may pass ``today`` to plan for another day (tests, simulations).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from smartstudy.planning import (
    CellForecast,
    ExamSpec,
    Plan,
    Recommendation,
    RecommendationSettings,
    TopicState,
    build_plan,
    recommend,
)
from smartstudy.services import localtime, rules
from smartstudy.services.errors import ConflictError, InvalidInputError, NotFoundError
from smartstudy.services.predictor import PredictionService
from smartstudy.store.orm import Exam, Topic, User, utcnow
from smartstudy.store.repositories import exams as repo


def user_today(user: User, now: datetime | None = None) -> date:
    """The date on ``user``'s clock at ``now`` (default: the present)."""
    return localtime.local_date(now or utcnow(), user.time_zone)


# -- recommendations -----------------------------------------------------------------------


def recommendations(
    session: Session,
    predictor: PredictionService,
    user: User,
    subject_id: uuid.UUID | None = None,
    limit: int = 5,
    band: tuple[float, float] | None = None,
) -> list[Recommendation]:
    """The best next (topic, difficulty) choices for ``user``, best first: in one subject,
    or across the catalogue. The topics of the student's nearest upcoming exam count more
    (by their exam weights) when they are among the choices."""
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise InvalidInputError("limit", "must be a whole number")
    if not 1 <= limit <= rules.MAX_RECOMMENDATIONS:
        raise InvalidInputError("limit", f"must be between 1 and {rules.MAX_RECOMMENDATIONS}")
    settings = RecommendationSettings(limit=limit)
    if band is not None:
        low, high = band
        if not (0.0 < low < high < 1.0):
            raise InvalidInputError("band", "must be two chances with 0 < low < high < 1")
        settings = RecommendationSettings(band=(float(low), float(high)), limit=limit)
    if subject_id is not None:
        if repo.find_subject(session, subject_id) is None:
            raise NotFoundError("subject not found")
        topics = repo.subject_topics(session, subject_id)
    else:
        topics = repo.all_topics(session)
    if not topics:
        return []
    exam = repo.next_exam(session, user.id, user_today(user))
    weights = _recommendation_weights(session, exam, [t.id for t in topics])
    states = topic_states(session, user, [(t, weights[t.id]) for t in topics])
    return recommend(states, forecasts(session, predictor, user, topics), settings)


def _recommendation_weights(
    session: Session, exam: Exam | None, topic_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, float]:
    """Each topic's weight: 1 outside the exam; for a topic of the exam ``1 + w / w_max``
    (its exam weight relative to the exam's heaviest), so exam topics count between 1 and
    2 times a topic outside it, in the order of their exam weights, whatever scale those
    were given in; the exam's heaviest topic counts double."""
    weights = dict.fromkeys(topic_ids, 1.0)
    if exam is None:
        return weights
    listed = {topic.id: weight for topic, weight in exam_topics(session, exam)}
    heaviest = max(listed.values(), default=0.0)
    for tid, weight in listed.items():
        if tid in weights and heaviest > 0:
            weights[tid] = 1.0 + weight / heaviest
    return weights


# -- what the planner is given -------------------------------------------------------------


def topic_states(
    session: Session, user: User, topics: Sequence[tuple[Topic, float]]
) -> list[TopicState]:
    """The planner's view of ``user`` in each topic (with its weight): mastery, recent
    accuracy, how many tasks, how long since the last one. Three grouped queries."""
    ids = [t.id for t, _ in topics]
    records = repo.topic_records(session, user.id, ids)
    mastery = repo.topic_mastery(session, user.id, ids)
    now = utcnow()
    states = []
    for topic, weight in topics:
        record = records.get(topic.id)
        days = None
        if record is not None and record.last_completed_at is not None:
            days = max((now - record.last_completed_at).total_seconds(), 0.0) / 86400.0
        states.append(
            TopicState(
                topic_id=str(topic.id),
                name=topic.name,
                weight=weight,
                mastery=mastery.get(topic.id),
                recent_correct=record.recent_correct if record else 0,
                recent_total=record.recent_total if record else 0,
                n_tasks=record.n_tasks if record else 0,
                days_since_practice=days,
            )
        )
    return states


def forecasts(
    session: Session, predictor: PredictionService, user: User, topics: Iterable[Topic]
) -> list[CellForecast]:
    """What the served models predict now for ``user`` in every difficulty of each topic."""
    cells = [(topic.id, difficulty) for topic in topics for difficulty in rules.DIFFICULTIES]
    predictions = predictor.predict_cells(session, user.id, cells)  # one sync for all
    return [
        CellForecast(
            topic_id=str(topic_id),
            difficulty=difficulty,
            p_correct=p.p_correct,
            time_median_s=p.time_median_s,
            time_p10_s=p.time_p10_s,
            time_p90_s=p.time_p90_s,
        )
        for (topic_id, difficulty), p in zip(cells, predictions, strict=True)
    ]


# -- exams ---------------------------------------------------------------------------------


def _clean_name(name: str) -> str:
    if not isinstance(name, str):
        raise InvalidInputError("name", "must be text")
    rules.check_text(name, "name")  # characters first: a tab is not a space to collapse
    cleaned = " ".join(name.split())
    if not cleaned:
        raise InvalidInputError("name", "must not be empty")
    return rules.check_text(cleaned, "name", rules.MAX_EXAM_NAME)


def _check_topics(
    session: Session, topics: Sequence[tuple[uuid.UUID, float]]
) -> list[dict[str, object]]:
    if not 1 <= len(topics) <= rules.MAX_EXAM_TOPICS:
        raise InvalidInputError("topics", f"must list 1 to {rules.MAX_EXAM_TOPICS} topics")
    seen: set[uuid.UUID] = set()
    for k, (topic_id, weight) in enumerate(topics):
        if not isinstance(topic_id, uuid.UUID):
            raise InvalidInputError(f"topics.{k}.topic_id", "must be a topic id")
        if topic_id in seen:
            raise InvalidInputError(f"topics.{k}.topic_id", "topic listed twice")
        seen.add(topic_id)
        if (
            isinstance(weight, bool)
            or not isinstance(weight, int | float)
            or not math.isfinite(weight)
            or not 0 < weight <= rules.MAX_TOPIC_WEIGHT
        ):
            raise InvalidInputError(
                f"topics.{k}.weight",
                f"must be a number more than 0 and at most {rules.MAX_TOPIC_WEIGHT:g}",
            )
    found = repo.topics_by_id(session, seen)
    for k, (topic_id, _) in enumerate(topics):
        if topic_id not in found:
            raise InvalidInputError(f"topics.{k}.topic_id", f"no topic with id {topic_id}")
    return [{"topic_id": str(tid), "weight": float(w)} for tid, w in topics]


def _check_subject(session: Session, subject_id: uuid.UUID) -> list[dict[str, object]]:
    if not isinstance(subject_id, uuid.UUID):
        raise InvalidInputError("subject_id", "must be a subject id")
    if repo.find_subject(session, subject_id) is None:
        raise InvalidInputError("subject_id", f"no subject with id {subject_id}")
    topics = repo.subject_topics(session, subject_id)
    if not topics:
        raise InvalidInputError("subject_id", "the subject has no topics yet")
    if len(topics) > rules.MAX_EXAM_TOPICS:
        raise InvalidInputError(
            "subject_id",
            f"the subject has {len(topics)} topics, more than {rules.MAX_EXAM_TOPICS}: "
            "list the exam's topics instead",
        )
    return [{"topic_id": str(t.id), "weight": 1.0} for t in topics]


def _check_days(
    days_off: Iterable[date], weekdays_off: Iterable[int], today: date, exam_date: date
) -> tuple[list[date], list[int]]:
    days = list(days_off)
    if len(days) > rules.MAX_DAYS_OFF:
        raise InvalidInputError("days_off", f"must list at most {rules.MAX_DAYS_OFF} dates")
    for k, day in enumerate(days):
        if not isinstance(day, date) or isinstance(day, datetime):
            raise InvalidInputError(f"days_off.{k}", "must be a date")
        if not today <= day < exam_date:
            raise InvalidInputError(
                f"days_off.{k}", "must be between today and the day before the exam"
            )
    weekdays = list(weekdays_off)
    for k, weekday in enumerate(weekdays):
        if isinstance(weekday, bool) or not isinstance(weekday, int) or not 0 <= weekday <= 6:
            raise InvalidInputError(
                f"weekdays_off.{k}", "must be a weekday number, 0 (Monday) to 6 (Sunday)"
            )
    off_days, off_weekdays = set(days), set(weekdays)
    study = [
        today + timedelta(days=i)
        for i in range((exam_date - today).days)
        if today + timedelta(days=i) not in off_days
        and (today + timedelta(days=i)).weekday() not in off_weekdays
    ]
    if not study:
        raise InvalidInputError("days_off", "leave at least one day to study before the exam")
    return sorted(off_days), sorted(off_weekdays)


def create_exam(
    session: Session,
    user: User,
    *,
    name: str,
    exam_date: date,
    daily_minutes: int,
    subject_id: uuid.UUID | None = None,
    topics: Sequence[tuple[uuid.UUID, float]] | None = None,
    days_off: Iterable[date] = (),
    weekdays_off: Iterable[int] = (),
    target: float = 0.8,
    exam_difficulty: str = "medium",
    today: date | None = None,
) -> Exam:
    """Add an exam for ``user``: a subject (all its topics, weight 1) or a list of
    ``(topic_id, weight)``, not both; every rule broken names its field."""
    today = today or user_today(user)
    cleaned = _clean_name(name)
    if subject_id is not None and topics is not None:
        raise InvalidInputError("topics", "give either subject_id or topics, not both")
    if subject_id is None and topics is None:
        raise InvalidInputError("topics", "give subject_id or a list of topics")
    listed = (
        _check_subject(session, subject_id)
        if subject_id is not None
        else _check_topics(session, list(topics or ()))
    )
    if not isinstance(exam_date, date) or isinstance(exam_date, datetime):
        raise InvalidInputError("exam_date", "must be a date")
    if exam_date <= today:
        raise InvalidInputError("exam_date", "must be after today")
    latest = today + timedelta(days=rules.MAX_EXAM_DAYS_AHEAD)
    if exam_date > latest:
        raise InvalidInputError(
            "exam_date", f"must be at most {rules.MAX_EXAM_DAYS_AHEAD} days ahead ({latest})"
        )
    if (
        isinstance(daily_minutes, bool)
        or not isinstance(daily_minutes, int)
        or not rules.MIN_DAILY_MINUTES <= daily_minutes <= rules.MAX_DAILY_MINUTES
    ):
        raise InvalidInputError(
            "daily_minutes",
            f"must be a whole number of minutes from {rules.MIN_DAILY_MINUTES} to "
            f"{rules.MAX_DAILY_MINUTES}",
        )
    if (
        isinstance(target, bool)
        or not isinstance(target, int | float)
        or not math.isfinite(target)
        or not rules.MIN_EXAM_TARGET <= target <= rules.MAX_EXAM_TARGET
    ):
        raise InvalidInputError(
            "target",
            f"must be a chance from {rules.MIN_EXAM_TARGET} to {rules.MAX_EXAM_TARGET}",
        )
    if exam_difficulty not in rules.DIFFICULTIES:
        raise InvalidInputError(
            "exam_difficulty", f"must be one of {', '.join(rules.DIFFICULTIES)}"
        )
    off_days, off_weekdays = _check_days(days_off, weekdays_off, today, exam_date)
    exam = Exam(
        user_id=user.id,
        name=cleaned,
        subject_id=subject_id,
        topics=listed,
        exam_date=exam_date,
        daily_minutes=daily_minutes,
        days_off=[d.isoformat() for d in off_days],
        weekdays_off=off_weekdays,
        target=float(target),
        exam_difficulty=exam_difficulty,
    )
    return repo.add_exam(session, exam)


def list_exams(session: Session, user: User, *, today: date | None = None) -> list[Exam]:
    """The user's own exams: upcoming (today's included) soonest first, then past ones,
    latest first."""
    today = today or user_today(user)
    exams = repo.user_exams(session, user.id)
    upcoming = [e for e in exams if e.exam_date >= today]
    past = [e for e in exams if e.exam_date < today]
    return upcoming + past[::-1]


def get_exam(session: Session, user: User, exam_id: uuid.UUID) -> Exam:
    exam = repo.find_exam(session, exam_id)
    if exam is None or exam.user_id != user.id:
        raise NotFoundError("exam not found")
    return exam


def delete_exam(session: Session, user: User, exam_id: uuid.UUID) -> None:
    repo.remove_exam(session, get_exam(session, user, exam_id))


def exam_topics(session: Session, exam: Exam) -> list[tuple[Topic, float]]:
    """The exam's topics with their weights: a subject's exam follows the subject's
    topics as they are now (weight 1), a list of topics keeps its weights."""
    if exam.subject_id is not None:
        current = repo.subject_topics(session, exam.subject_id)
        if current:
            return [(t, 1.0) for t in current]
    listed = [(uuid.UUID(str(t["topic_id"])), float(t["weight"])) for t in exam.topics]
    found = repo.topics_by_id(session, [tid for tid, _ in listed])
    return [(found[tid], w) for tid, w in listed if tid in found]


def exam_topic_names(session: Session, exam: Exam) -> dict[str, str]:
    """topic id (text) -> topic name, for the exam's topics."""
    return {str(t.id): t.name for t, _ in exam_topics(session, exam)}


def exam_plan(
    session: Session,
    predictor: PredictionService,
    user: User,
    exam: Exam,
    *,
    today: date | None = None,
    workload: bool = True,
) -> Plan:
    """The plan from today to the day before the exam, from the current predictions and
    the minutes already spent today on the exam's topics (``planning.build_plan``)."""
    if exam.user_id != user.id:
        raise NotFoundError("exam not found")
    today = today or user_today(user)
    if exam.exam_date <= today:
        raise ConflictError(
            f"the exam date ({exam.exam_date.isoformat()}) is not after today: there are no "
            "days left to plan"
        )
    weighted = exam_topics(session, exam)
    if not weighted:
        raise ConflictError("none of the exam's topics exists any more")
    topics = [t for t, _ in weighted]
    spec = ExamSpec(
        exam_date=exam.exam_date,
        daily_minutes=exam.daily_minutes,
        days_off=frozenset(date.fromisoformat(d) for d in exam.days_off),
        weekdays_off=frozenset(int(d) for d in exam.weekdays_off),
        target=exam.target,
        exam_difficulty=exam.exam_difficulty,
    )
    # The minutes done "today" count from the user's local midnight.
    start = localtime.start_of_local_day(today, user.time_zone)
    done_s = repo.seconds_completed_since(session, user.id, [t.id for t in topics], start)
    return build_plan(
        topic_states(session, user, weighted),
        forecasts(session, predictor, user, topics),
        spec,
        today,
        minutes_done_today=done_s / 60.0,
        workload=workload,
    )
