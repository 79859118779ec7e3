"""Read-side queries for a student's own pages: dashboard, history, analytics, mastery, export.

Every function takes the id of the user whose data it reads and never returns anyone
else's rows; access rules (who may ask for whose data) stay with the caller, which for the
web pages is always "yourself". Counting and grouping happen in SQL; the per-task series a
chart needs (scatter, calibration, progress) come from one narrow column query and are
bucketed in Python, which stays well under a few milliseconds for thousands of tasks.
"""

from __future__ import annotations

import csv
import io
import math
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, defer, selectinload

from smartstudy.models.bkt.core import DEFAULT_PARAMS
from smartstudy.services import localtime
from smartstudy.services.errors import InvalidInputError, NotFoundError
from smartstudy.store.orm import (
    DIFFICULTIES,
    BKTSkillParams,
    BKTUserSkillState,
    Concept,
    Exam,
    MasterySnapshot,
    ModelVersion,
    PracticeTask,
    Question,
    SessionQuestion,
    StudySession,
    Subject,
    Topic,
    User,
    utcnow,
)

_DIFFICULTY_RANK = case({d: i for i, d in enumerate(DIFFICULTIES)}, value=PracticeTask.difficulty)


# -- dashboard -------------------------------------------------------------------------------
@dataclass(frozen=True)
class DayStat:
    """Completed tasks of one day of the user's calendar (their time zone)."""

    day: date
    tasks: int
    correct: int
    seconds: float

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.tasks if self.tasks else None


@dataclass(frozen=True)
class MasteryItem:
    concept_id: uuid.UUID
    concept: str
    topic: str
    p_mastery: float
    n_attempts: int


@dataclass
class Dashboard:
    today: list[PracticeTask]
    open_tasks: list[PracticeTask]
    week_start: date
    week_seconds: float
    week_tasks: int
    week_correct: int
    total_completed: int
    total_correct: int
    days: list[DayStat]
    mastery_top: list[MasteryItem]
    mastery_low: list[MasteryItem]


def start_of_day(now: datetime, time_zone: str = localtime.DEFAULT_TIME_ZONE) -> datetime:
    """The UTC instant at which the user's day containing ``now`` began (local midnight)."""
    return localtime.start_of_local_day(localtime.local_date(now, time_zone), time_zone)


def user_time_zone(session: Session, user_id: uuid.UUID) -> str:
    """The user's stored time zone (UTC for an unknown user)."""
    stored = session.scalar(select(User.time_zone).where(User.id == user_id))
    return stored or localtime.DEFAULT_TIME_ZONE


def dashboard(
    session: Session,
    user_id: uuid.UUID,
    *,
    now: datetime | None = None,
    days: int = 30,
    time_zone: str | None = None,
) -> Dashboard:
    """Today's tasks, this week's study time, a daily accuracy trend and mastery highlights.

    Days are the user's: "today", the week (from Monday) and each day of the trend begin at
    midnight in ``time_zone`` (by default the zone stored for the user)."""
    now = now or utcnow()
    time_zone = time_zone or user_time_zone(session, user_id)
    local_today = localtime.local_date(now, time_zone)
    today = localtime.start_of_local_day(local_today, time_zone)
    week_first_day = local_today - timedelta(days=local_today.weekday())
    week_start = localtime.start_of_local_day(week_first_day, time_zone)
    mine = PracticeTask.user_id == user_id
    with_topic = selectinload(PracticeTask.topic).selectinload(Topic.subject)
    todays = session.scalars(
        select(PracticeTask)
        .options(with_topic)
        .where(mine, PracticeTask.completed_at >= today)
        .order_by(PracticeTask.completed_at.desc())
        .limit(20)
    ).all()
    open_tasks = session.scalars(
        select(PracticeTask)
        .options(with_topic)
        .where(mine, PracticeTask.completed_at.is_(None))
        .order_by(PracticeTask.created_at.desc())
        .limit(5)
    ).all()
    done = PracticeTask.completed_at.is_not(None)
    correct_int = case((PracticeTask.is_correct.is_(True), 1), else_=0)
    total, total_correct = session.execute(
        select(func.count(), func.coalesce(func.sum(correct_int), 0)).where(mine, done)
    ).one()
    week = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(correct_int), 0),
            func.coalesce(func.sum(PracticeTask.actual_time_seconds), 0.0),
        ).where(mine, PracticeTask.completed_at >= week_start)
    ).one()
    first_day = local_today - timedelta(days=days - 1)
    recent = session.execute(
        select(
            PracticeTask.completed_at, PracticeTask.is_correct, PracticeTask.actual_time_seconds
        ).where(
            mine, PracticeTask.completed_at >= localtime.start_of_local_day(first_day, time_zone)
        )
    ).all()
    buckets: dict[date, list[float]] = {
        first_day + timedelta(days=i): [0, 0, 0.0] for i in range(days)
    }
    for at, correct, seconds in recent:
        b = buckets.get(localtime.local_date(at, time_zone))
        if b is not None:
            b[0] += 1
            b[1] += 1 if correct else 0
            b[2] += seconds or 0.0
    trend = [DayStat(d, int(b[0]), int(b[1]), float(b[2])) for d, b in sorted(buckets.items())]
    items = mastery_items(session, user_id)
    ranked = sorted(items, key=lambda m: m.p_mastery, reverse=True)
    return Dashboard(
        today=list(todays),
        open_tasks=list(open_tasks),
        week_start=week_first_day,
        week_seconds=float(week[2]),
        week_tasks=int(week[0]),
        week_correct=int(week[1]),
        total_completed=int(total),
        total_correct=int(total_correct),
        days=trend,
        mastery_top=ranked[:3],
        mastery_low=[m for m in reversed(ranked) if m not in ranked[:3]][:3],
    )


def mastery_items(session: Session, user_id: uuid.UUID) -> list[MasteryItem]:
    """The user's current mastery of every concept they have attempted."""
    rows = session.execute(
        select(
            BKTUserSkillState.concept_id,
            Concept.name,
            Topic.name,
            BKTUserSkillState.p_mastery,
            BKTUserSkillState.n_attempts,
        )
        .join(Concept, Concept.id == BKTUserSkillState.concept_id)
        .join(Topic, Topic.id == Concept.topic_id)
        .where(BKTUserSkillState.user_id == user_id)
        .order_by(Topic.name, Concept.name)
    ).all()
    return [MasteryItem(*row) for row in rows]


# -- task history ----------------------------------------------------------------------------
SORTS = ("date", "completed", "topic", "difficulty", "predicted", "time", "result")
STATUSES = ("completed", "open")
RESULTS = ("correct", "wrong")


@dataclass(frozen=True)
class HistoryFilters:
    subject_id: uuid.UUID | None = None
    topic_id: uuid.UUID | None = None
    difficulty: str | None = None
    status: str | None = None
    result: str | None = None
    date_from: date | None = None
    date_to: date | None = None


@dataclass(frozen=True)
class HistoryPage:
    items: list[PracticeTask]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))


def task_history(
    session: Session,
    user_id: uuid.UUID,
    filters: HistoryFilters = HistoryFilters(),
    *,
    sort: str = "date",
    descending: bool = True,
    page: int = 1,
    per_page: int = 25,
    time_zone: str | None = None,
) -> HistoryPage:
    """One page of the user's tasks, filtered and sorted; a page past the end is clamped.
    The dates of ``filters`` are days of the user's calendar (``time_zone``, by default the
    user's stored zone)."""
    if sort not in SORTS:
        raise InvalidInputError("sort", f"must be one of {', '.join(SORTS)}")
    if not 1 <= per_page <= 200:
        raise InvalidInputError("per_page", "must be between 1 and 200")
    conditions = [PracticeTask.user_id == user_id]
    f = filters
    if f.topic_id is not None:
        conditions.append(PracticeTask.topic_id == f.topic_id)
    if f.subject_id is not None:
        conditions.append(
            PracticeTask.topic_id.in_(select(Topic.id).where(Topic.subject_id == f.subject_id))
        )
    if f.difficulty is not None:
        if f.difficulty not in DIFFICULTIES:
            raise InvalidInputError("difficulty", f"must be one of {', '.join(DIFFICULTIES)}")
        conditions.append(PracticeTask.difficulty == f.difficulty)
    if f.status == "completed":
        conditions.append(PracticeTask.completed_at.is_not(None))
    elif f.status == "open":
        conditions.append(PracticeTask.completed_at.is_(None))
    if f.result in RESULTS:
        conditions.append(PracticeTask.is_correct.is_(f.result == "correct"))
    if f.date_from is not None or f.date_to is not None:
        zone = time_zone or user_time_zone(session, user_id)
        if f.date_from is not None:
            start = localtime.start_of_local_day(f.date_from, zone)
            conditions.append(PracticeTask.created_at >= start)
        if f.date_to is not None:
            end = localtime.start_of_local_day(f.date_to + timedelta(days=1), zone)
            conditions.append(PracticeTask.created_at < end)
    total = session.scalar(select(func.count()).select_from(PracticeTask).where(*conditions)) or 0
    page = max(1, min(page, max(1, math.ceil(total / per_page))))
    key = {
        "date": PracticeTask.created_at,
        "completed": PracticeTask.completed_at,
        "topic": Topic.name,
        "difficulty": _DIFFICULTY_RANK,
        "predicted": PracticeTask.predicted_correct,
        "time": PracticeTask.actual_time_seconds,
        "result": PracticeTask.is_correct,
    }[sort]
    # Rows without a value (open tasks) go last either way, portably across backends.
    order = [key.is_(None), key.desc() if descending else key.asc()]
    if sort != "date":
        order.append(PracticeTask.created_at.desc())
    stmt = (
        select(PracticeTask)
        .join(Topic, Topic.id == PracticeTask.topic_id)
        .options(selectinload(PracticeTask.topic).selectinload(Topic.subject))
        .where(*conditions)
        .order_by(*order, PracticeTask.id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    items = session.scalars(stmt).all()
    return HistoryPage(items=list(items), total=total, page=page, per_page=per_page)


# -- analytics -------------------------------------------------------------------------------
@dataclass(frozen=True)
class GroupStat:
    """Completed tasks of one topic at one difficulty."""

    subject: str
    topic: str
    difficulty: str
    n: int
    n_correct: int
    mean_seconds: float
    mean_predicted: float | None
    mean_predicted_seconds: float | None

    @property
    def accuracy(self) -> float:
        return self.n_correct / self.n if self.n else 0.0


def by_topic_and_difficulty(session: Session, user_id: uuid.UUID) -> list[GroupStat]:
    """Accuracy and time of completed tasks per (topic, difficulty), aggregated in SQL."""
    correct_int = case((PracticeTask.is_correct.is_(True), 1), else_=0)
    rows = session.execute(
        select(
            Subject.name,
            Topic.name,
            PracticeTask.difficulty,
            func.count(),
            func.sum(correct_int),
            func.avg(PracticeTask.actual_time_seconds),
            func.avg(PracticeTask.predicted_correct),
            func.avg(PracticeTask.predicted_time_median_s),
        )
        .join(Topic, Topic.id == PracticeTask.topic_id)
        .join(Subject, Subject.id == Topic.subject_id)
        .where(PracticeTask.user_id == user_id, PracticeTask.completed_at.is_not(None))
        .group_by(Subject.name, Topic.name, PracticeTask.difficulty)
    ).all()
    stats = [
        GroupStat(
            subject=s,
            topic=t,
            difficulty=d,
            n=int(n),
            n_correct=int(c or 0),
            mean_seconds=float(sec or 0.0),
            mean_predicted=None if p is None else float(p),
            mean_predicted_seconds=None if pt is None else float(pt),
        )
        for s, t, d, n, c, sec, p, pt in rows
    ]
    rank = {d: i for i, d in enumerate(DIFFICULTIES)}
    return sorted(stats, key=lambda g: (g.subject, g.topic, rank.get(g.difficulty, 9)))


@dataclass(frozen=True)
class CompletedRow:
    """One completed task, the columns the analytics charts need."""

    completed_at: datetime
    topic: str
    difficulty: str
    correct: bool
    seconds: float
    p_correct: float | None
    median_s: float | None
    p10_s: float | None
    p90_s: float | None
    model_name: str | None


def completed_rows(
    session: Session, user_id: uuid.UUID, time_zone: str | None = None
) -> list[CompletedRow]:
    """The user's completed tasks, oldest first (columns only, no ORM objects), with
    ``completed_at`` on the user's clock (``time_zone``, by default the user's stored zone),
    so the weeks and chart axes built from them are the user's."""
    zone = time_zone or user_time_zone(session, user_id)
    rows = session.execute(
        select(
            PracticeTask.completed_at,
            Topic.name,
            PracticeTask.difficulty,
            PracticeTask.is_correct,
            PracticeTask.actual_time_seconds,
            PracticeTask.predicted_correct,
            PracticeTask.predicted_time_median_s,
            PracticeTask.predicted_time_p10_s,
            PracticeTask.predicted_time_p90_s,
            PracticeTask.model_name,
        )
        .join(Topic, Topic.id == PracticeTask.topic_id)
        .where(PracticeTask.user_id == user_id, PracticeTask.completed_at.is_not(None))
        .order_by(PracticeTask.completed_at, PracticeTask.id)
    ).all()
    return [
        CompletedRow(
            localtime.to_local(at, zone),
            topic,
            d,
            bool(c),
            float(sec or 0.0),
            p,
            med,
            p10,
            p90,
            model,
        )
        for at, topic, d, c, sec, p, med, p10, p90, model in rows
    ]


@dataclass(frozen=True)
class CalibrationBin:
    lower: float
    upper: float
    n: int
    mean_predicted: float
    observed: float


def calibration(rows: list[CompletedRow], n_bins: int = 10) -> list[CalibrationBin]:
    """Reliability diagram: predicted chance against observed frequency in equal-width bins."""
    sums: dict[int, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for r in rows:
        if r.p_correct is None:
            continue
        k = min(n_bins - 1, max(0, int(r.p_correct * n_bins)))
        b = sums[k]
        b[0] += 1
        b[1] += r.p_correct
        b[2] += 1.0 if r.correct else 0.0
    return [
        CalibrationBin(k / n_bins, (k + 1) / n_bins, int(b[0]), b[1] / b[0], b[2] / b[0])
        for k, b in sorted(sums.items())
    ]


#: Completed tasks with a stored prediction needed before calibration (ECE, reliability
#: diagram) is shown: with ten bins, fewer tasks leave most bins with one or two tasks, whose
#: observed rate is 0% or 100% by chance and makes any prediction look miscalibrated.
CALIBRATION_MIN_TASKS = 30


def calibration_shortfall(rows: list[CompletedRow]) -> int:
    """How many more completed tasks with a prediction calibration needs (0: enough)."""
    scored = sum(1 for r in rows if r.p_correct is not None)
    return max(0, CALIBRATION_MIN_TASKS - scored)


@dataclass(frozen=True)
class Quality:
    """How well the stored predictions matched what happened."""

    n: int
    accuracy: float | None
    mean_predicted: float | None
    brier: float | None
    ece: float | None
    coverage80: float | None
    median_abs_log_ratio: float | None


def prediction_quality(rows: list[CompletedRow], n_bins: int = 10) -> Quality:
    scored = [r for r in rows if r.p_correct is not None]
    timed = [r for r in rows if r.p10_s and r.p90_s and r.median_s and r.seconds > 0]
    if not rows:
        return Quality(0, None, None, None, None, None, None)
    brier = ece = mean_p = None
    if scored:
        n = len(scored)
        brier = sum((r.p_correct - r.correct) ** 2 for r in scored) / n  # type: ignore[operator]
        mean_p = sum(r.p_correct for r in scored) / n  # type: ignore[misc]
        ece = sum(b.n / n * abs(b.mean_predicted - b.observed) for b in calibration(scored, n_bins))
    coverage = median_log = None
    if timed:
        inside = sum(1 for r in timed if r.p10_s <= r.seconds <= r.p90_s)  # type: ignore[operator]
        coverage = inside / len(timed)
        logs = sorted(abs(math.log(r.seconds / r.median_s)) for r in timed)  # type: ignore[operator]
        median_log = logs[len(logs) // 2]
    return Quality(
        n=len(rows),
        accuracy=sum(r.correct for r in rows) / len(rows),
        mean_predicted=mean_p,
        brier=brier,
        ece=ece,
        coverage80=coverage,
        median_abs_log_ratio=median_log,
    )


@dataclass(frozen=True)
class PeriodStat:
    """Completed tasks of one week (starting Monday, on the user's calendar)."""

    start: date
    tasks: int
    correct: int
    seconds: float
    mean_predicted: float | None

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.tasks if self.tasks else None


def progress_by_week(rows: list[CompletedRow]) -> list[PeriodStat]:
    """Tasks, accuracy, study time and mean predicted chance per week, with empty weeks.
    A task's day is the date of ``completed_at`` in the zone it is given in (``completed_rows``
    gives the user's; a naive time counts as UTC)."""
    if not rows:
        return []
    weeks: dict[date, list[float]] = {}
    for r in rows:
        day = r.completed_at.date()
        start = day - timedelta(days=day.weekday())
        b = weeks.setdefault(start, [0, 0, 0.0, 0.0, 0])
        b[0] += 1
        b[1] += 1 if r.correct else 0
        b[2] += r.seconds
        if r.p_correct is not None:
            b[3] += r.p_correct
            b[4] += 1
    first, last = min(weeks), max(weeks)
    out = []
    current = first
    while current <= last:
        b = weeks.get(current, [0, 0, 0.0, 0.0, 0])
        out.append(
            PeriodStat(
                start=current,
                tasks=int(b[0]),
                correct=int(b[1]),
                seconds=float(b[2]),
                mean_predicted=(b[3] / b[4]) if b[4] else None,
            )
        )
        current += timedelta(days=7)
    return out


# -- subjects, concepts and mastery ----------------------------------------------------------
@dataclass
class ConceptEntry:
    concept: Concept
    n_questions: int
    p_mastery: float | None
    n_attempts: int


@dataclass
class TopicEntry:
    topic: Topic
    concepts: list[ConceptEntry] = field(default_factory=list)
    n_tasks: int = 0
    n_correct: int = 0

    @property
    def n_questions(self) -> int:
        return sum(c.n_questions for c in self.concepts)


@dataclass
class SubjectEntry:
    subject: Subject
    topics: list[TopicEntry] = field(default_factory=list)


def catalogue_overview(session: Session, user_id: uuid.UUID) -> list[SubjectEntry]:
    """Every subject, topic and concept with the user's mastery and task counts (4 queries)."""
    subjects = session.scalars(
        select(Subject)
        .options(selectinload(Subject.topics).selectinload(Topic.concepts))
        .order_by(Subject.name)
    ).all()
    states = {
        cid: (p, n)
        for cid, p, n in session.execute(
            select(
                BKTUserSkillState.concept_id,
                BKTUserSkillState.p_mastery,
                BKTUserSkillState.n_attempts,
            ).where(BKTUserSkillState.user_id == user_id)
        )
    }
    questions = dict(
        session.execute(
            select(Question.concept_id, func.count()).group_by(Question.concept_id)
        ).all()
    )
    correct_int = case((PracticeTask.is_correct.is_(True), 1), else_=0)
    task_counts = {
        tid: (int(n), int(c or 0))
        for tid, n, c in session.execute(
            select(PracticeTask.topic_id, func.count(), func.sum(correct_int))
            .where(PracticeTask.user_id == user_id, PracticeTask.completed_at.is_not(None))
            .group_by(PracticeTask.topic_id)
        )
    }
    out = []
    for subject in subjects:
        entry = SubjectEntry(subject)
        for topic in subject.topics:
            n, c = task_counts.get(topic.id, (0, 0))
            t = TopicEntry(topic, n_tasks=n, n_correct=c)
            for concept in topic.concepts:
                p, attempts = states.get(concept.id, (None, 0))
                t.concepts.append(ConceptEntry(concept, questions.get(concept.id, 0), p, attempts))
            entry.topics.append(t)
        out.append(entry)
    return out


@dataclass
class ConceptDetail:
    concept: Concept
    p_mastery: float
    n_attempts: int
    prior: float
    params: BKTSkillParams | None
    history: list[MasterySnapshot]
    n_questions: int


def concept_detail(session: Session, user_id: uuid.UUID, concept_id: uuid.UUID) -> ConceptDetail:
    """A concept with the user's mastery, its history and the BKT parameters in use."""
    concept = session.scalar(
        select(Concept)
        .options(selectinload(Concept.topic).selectinload(Topic.subject))
        .where(Concept.id == concept_id)
    )
    if concept is None:
        raise NotFoundError("concept not found")
    params = session.scalar(
        select(BKTSkillParams).where(
            BKTSkillParams.concept_id == concept_id, BKTSkillParams.is_active.is_(True)
        )
    )
    prior = params.l0 if params else DEFAULT_PARAMS.l0
    state = session.get(BKTUserSkillState, (user_id, concept_id))
    history = session.scalars(
        select(MasterySnapshot)
        .where(MasterySnapshot.user_id == user_id, MasterySnapshot.concept_id == concept_id)
        .order_by(MasterySnapshot.created_at)
    ).all()
    n_questions = session.scalar(
        select(func.count()).select_from(Question).where(Question.concept_id == concept_id)
    )
    return ConceptDetail(
        concept=concept,
        p_mastery=state.p_mastery if state else prior,
        n_attempts=state.n_attempts if state else 0,
        prior=prior,
        params=params,
        history=list(history),
        n_questions=int(n_questions or 0),
    )


def recent_quizzes(session: Session, user_id: uuid.UUID, limit: int = 10) -> list[StudySession]:
    """The user's latest quiz sessions, newest first, with their questions loaded."""
    return list(
        session.scalars(
            select(StudySession)
            .options(selectinload(StudySession.questions))
            .where(StudySession.user_id == user_id)
            .order_by(StudySession.created_at.desc())
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class MasteryChange:
    concept_id: uuid.UUID
    concept: str
    before: float
    after: float
    n_answers: int
    n_correct: int


def quiz_mastery_changes(session: Session, quiz: StudySession) -> list[MasteryChange]:
    """For each concept of a submitted quiz: mastery just before it and after it.

    The quiz's own snapshots are those taken between its creation and its submission;
    "before" is the snapshot preceding them, or the concept's prior when there is none.
    """
    if quiz.status != "submitted" or quiz.submitted_at is None:
        return []
    counts: dict[uuid.UUID, list[int]] = defaultdict(lambda: [0, 0])
    for q in quiz.questions:
        concept = (q.snapshot_json or {}).get("concept_id")
        if concept and q.answer is not None:
            c = counts[uuid.UUID(str(concept))]
            c[0] += 1
            c[1] += 1 if q.answer.is_correct else 0
    if not counts:
        return []
    names = dict(
        session.execute(select(Concept.id, Concept.name).where(Concept.id.in_(list(counts)))).all()
    )
    priors = dict(
        session.execute(
            select(BKTSkillParams.concept_id, BKTSkillParams.l0).where(
                BKTSkillParams.concept_id.in_(list(counts)), BKTSkillParams.is_active.is_(True)
            )
        ).all()
    )
    snaps = session.execute(
        select(MasterySnapshot.concept_id, MasterySnapshot.p_mastery, MasterySnapshot.created_at)
        .where(
            MasterySnapshot.user_id == quiz.user_id,
            MasterySnapshot.concept_id.in_(list(counts)),
            MasterySnapshot.created_at <= quiz.submitted_at,
        )
        .order_by(MasterySnapshot.created_at)
    ).all()
    before: dict[uuid.UUID, float] = {}
    after: dict[uuid.UUID, float] = {}
    for cid, p, at in snaps:
        if at < quiz.created_at:
            before[cid] = p
        else:
            after[cid] = p
    out = []
    for cid, (n, c) in counts.items():
        if cid not in names:
            continue  # the concept was deleted since
        prior = before.get(cid, priors.get(cid, DEFAULT_PARAMS.l0))
        out.append(MasteryChange(cid, names[cid], prior, after.get(cid, prior), n, c))
    return sorted(out, key=lambda m: m.concept)


def quiz_topic_names(session: Session, quizzes: list[StudySession]) -> dict[uuid.UUID, str]:
    ids = {q.topic_id for q in quizzes if q.topic_id is not None}
    if not ids:
        return {}
    rows = session.execute(select(Topic.id, Topic.name).where(Topic.id.in_(ids))).all()
    return {topic_id: name for topic_id, name in rows}


# -- admin -----------------------------------------------------------------------------------
def recent_versions(
    session: Session, names: list[str], per_model: int = 12
) -> tuple[dict[str, list[ModelVersion]], dict[str, int]]:
    """The newest ``per_model`` versions of each model family (artifacts left unloaded: a
    page never needs them) and how many versions each family has."""
    counts = {
        name: int(n)
        for name, n in session.execute(
            select(ModelVersion.model_name, func.count()).group_by(ModelVersion.model_name)
        )
    }
    out: dict[str, list[ModelVersion]] = {}
    for name in dict.fromkeys([*names, *sorted(counts)]):
        out[name] = list(
            session.scalars(
                select(ModelVersion)
                .options(defer(ModelVersion.artifact))
                .where(ModelVersion.model_name == name)
                .order_by(ModelVersion.created_at.desc(), ModelVersion.version.desc())
                .limit(per_model)
            )
        )
    return out, counts


# -- export ----------------------------------------------------------------------------------
EXPORT_COLUMNS = (
    "task_id",
    "subject",
    "topic",
    "difficulty",
    "description",
    "created_at",
    "started_at",
    "completed_at",
    "correct",
    "rt_seconds",
    "predicted_correct",
    "predicted_time_median_s",
    "predicted_time_p10_s",
    "predicted_time_p90_s",
    "model_name",
    "model_version",
)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, bool):
        return "1" if value else "0"
    text = str(value)
    # A cell starting with one of these is run as a formula by spreadsheet programs.
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def export_tasks_csv(session: Session, user_id: uuid.UUID) -> str:
    """All of the user's tasks, oldest first, as CSV text (UTF-8, header row)."""
    rows = session.execute(
        select(
            PracticeTask.id,
            Subject.name,
            Topic.name,
            PracticeTask.difficulty,
            PracticeTask.description,
            PracticeTask.created_at,
            PracticeTask.started_at,
            PracticeTask.completed_at,
            PracticeTask.is_correct,
            PracticeTask.actual_time_seconds,
            PracticeTask.predicted_correct,
            PracticeTask.predicted_time_median_s,
            PracticeTask.predicted_time_p10_s,
            PracticeTask.predicted_time_p90_s,
            PracticeTask.model_name,
            PracticeTask.model_version,
        )
        .join(Topic, Topic.id == PracticeTask.topic_id)
        .join(Subject, Subject.id == Topic.subject_id)
        .where(PracticeTask.user_id == user_id)
        .order_by(PracticeTask.created_at, PracticeTask.id)
    ).all()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return out.getvalue()


def count_owned(session: Session, user_id: uuid.UUID) -> dict[str, int]:
    """How many rows of each kind belong to the user (what account deletion removes)."""
    quiz_ids = select(StudySession.id).where(StudySession.user_id == user_id)
    return {
        "tasks": session.scalar(
            select(func.count()).select_from(PracticeTask).where(PracticeTask.user_id == user_id)
        )
        or 0,
        "quiz_sessions": session.scalar(
            select(func.count()).select_from(StudySession).where(StudySession.user_id == user_id)
        )
        or 0,
        "quiz_questions": session.scalar(
            select(func.count())
            .select_from(SessionQuestion)
            .where(SessionQuestion.session_id.in_(quiz_ids))
        )
        or 0,
        "mastery_states": session.scalar(
            select(func.count())
            .select_from(BKTUserSkillState)
            .where(BKTUserSkillState.user_id == user_id)
        )
        or 0,
        "mastery_snapshots": session.scalar(
            select(func.count())
            .select_from(MasterySnapshot)
            .where(MasterySnapshot.user_id == user_id)
        )
        or 0,
        "exams": session.scalar(
            select(func.count()).select_from(Exam).where(Exam.user_id == user_id)
        )
        or 0,
    }
