"""SQLAlchemy 2 ORM models: the tables of SmartStudy.

Ids are UUIDs (native on PostgreSQL, 32-char text on SQLite) so that ids reveal neither
how many rows exist nor which belong together. Times are stored in UTC and always come
back timezone-aware, on SQLite too.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

DIFFICULTIES: tuple[str, ...] = ("easy", "medium", "hard")
ROLES: tuple[str, ...] = ("student", "admin")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and returned timezone-aware on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; SmartStudy stores aware UTC times")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def as_utc(value: datetime | str | None) -> datetime | None:
    """A timestamp read through an aggregate (``max(completed_at)``), which skips
    ``UTCDateTime``'s conversion, as aware UTC whatever the driver hands back: SQLite gives
    text or a naive value, PostgreSQL an aware one."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('student', 'admin')", name="role"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320), unique=True, index=True)
    display_name: Mapped[str] = mapped_column(String(120), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="student")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Bumped when the password changes (or the account is locked out by an admin): every
    #: API token carries the version it was issued under, and an older one is refused.
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: IANA time zone name ("Asia/Tokyo"): dates and "today" are shown on this clock.
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    #: BCP 47 tag ("en-GB", "en-US", "de-DE"): how dates and times are written.
    locale: Mapped[str] = mapped_column(String(16), default="en-GB", server_default="en-GB")


class AuthSession(Base):
    """A signed-in web session. The cookie names it; deleting or revoking the row ends it,
    so logging out (or a password change) takes effect on the server, not just the browser."""

    __tablename__ = "auth_sessions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class AuthThrottle(Base):
    """Failed log-ins counted per key (``account:<email>`` or ``client:<address>``), shared by
    every API process through the database."""

    __tablename__ = "auth_throttle"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class AuditEntry(Base):
    """One admin action (activate, train, recompute, catalogue or role change): who, what, when.
    The actor's e-mail is kept so the record survives the account's deletion."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None, index=True
    )
    actor_email: Mapped[str] = mapped_column(String(320), default="")
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str] = mapped_column(String(64), default="")
    target_id: Mapped[str | None] = mapped_column(String(64), default=None)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Subject(Base):
    __tablename__ = "subjects"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    topics: Mapped[list[Topic]] = relationship(back_populates="subject", order_by="Topic.name")


class Topic(Base):
    __tablename__ = "topics"
    __table_args__ = (UniqueConstraint("subject_id", "name", name="uq_topics_subject_name"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    subject_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("subjects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    subject: Mapped[Subject] = relationship(back_populates="topics")
    concepts: Mapped[list[Concept]] = relationship(back_populates="topic", order_by="Concept.name")


class Concept(Base):
    __tablename__ = "concepts"
    __table_args__ = (UniqueConstraint("topic_id", "name", name="uq_concepts_topic_name"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    topic_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("topics.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    topic: Mapped[Topic] = relationship(back_populates="concepts")


class Question(Base):
    """A quiz question tagged with the concept it exercises."""

    __tablename__ = "questions"
    __table_args__ = (
        CheckConstraint("difficulty IN ('easy', 'medium', 'hard')", name="difficulty"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    concept_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("concepts.id", ondelete="CASCADE"), index=True
    )
    prompt: Mapped[str] = mapped_column(Text)
    options: Mapped[list[str]] = mapped_column(JSON, default=list)
    correct_option: Mapped[int] = mapped_column(Integer)
    difficulty: Mapped[str] = mapped_column(String(8), default="medium")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PracticeTask(Base):
    """One practice task: the prediction made before it and, once done, what happened."""

    __tablename__ = "practice_tasks"
    __table_args__ = (
        CheckConstraint("difficulty IN ('easy', 'medium', 'hard')", name="difficulty"),
        CheckConstraint(
            "actual_time_seconds IS NULL OR "
            "(actual_time_seconds > 0 AND actual_time_seconds <= 86400)",
            name="actual_time",
        ),
        CheckConstraint(
            "predicted_correct IS NULL OR (predicted_correct >= 0 AND predicted_correct <= 1)",
            name="predicted_correct",
        ),
        Index("ix_practice_tasks_user_created", "user_id", "created_at"),
        Index("ix_practice_tasks_completed_at", "completed_at"),
        # A cell's population rate (``services.explain``) from the index alone on PostgreSQL.
        Index(
            "ix_practice_tasks_cell",
            "topic_id",
            "difficulty",
            "user_id",
            postgresql_include=["is_correct", "completed_at"],
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    topic_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("topics.id", ondelete="RESTRICT"), index=True
    )
    difficulty: Mapped[str] = mapped_column(String(8))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    is_correct: Mapped[bool | None] = mapped_column(Boolean, default=None)
    actual_time_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    predicted_correct: Mapped[float | None] = mapped_column(Float, default=None)
    predicted_time_median_s: Mapped[float | None] = mapped_column(Float, default=None)
    predicted_time_p10_s: Mapped[float | None] = mapped_column(Float, default=None)
    predicted_time_p90_s: Mapped[float | None] = mapped_column(Float, default=None)
    model_name: Mapped[str | None] = mapped_column(String(64), default=None)
    model_version: Mapped[str | None] = mapped_column(String(64), default=None)
    #: What every family of the chain would have served for this task, stored with the
    #: prediction before the outcome exists: ``{"kind": "cold" | "warm", "families":
    #: {name: [p_correct, time_median_s, time_p10_s, time_p90_s]}}``. Once completed, these
    #: live one-step-ahead predictions rank the families (``registry.live_scores``).
    family_predictions: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    #: What the study page showed right after this task was completed: the next prediction
    #: for the same topic and difficulty, with its explanation, so that reopening the result
    #: later shows what was shown then. None for tasks completed elsewhere (API, import).
    next_prediction: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)

    topic: Mapped[Topic] = relationship()


class ModelVersion(Base):
    """A trained model artifact with its metrics; never overwritten, only superseded."""

    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("model_name", "version", name="uq_model_versions_name_version"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    model_name: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="candidate")
    is_active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    trained_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    n_training_rows: Mapped[int] = mapped_column(Integer, default=0)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    training_summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    artifact: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    #: The model as it is served: ``artifact`` plus the online learning of the held-out
    #: students' tasks up to ``trained_until`` (which no fit may see), stored by the training
    #: job so a process that loads the version does not replay them on a request.
    served_artifact: Mapped[bytes | None] = mapped_column(LargeBinary, default=None, deferred=True)


class TrainingCounter(Base):
    """Completed tasks since a model family was last trained (incremented atomically)."""

    __tablename__ = "training_counters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    last_trained_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class Job(Base):
    """One run of background work (training, …): what ran, when, and how it ended."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed')", name="status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: The job function's keyword arguments (JSON), so a retry runs the same work.
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    #: 1 for a first run; a retry of a job whose process died is a new row with one more.
    attempts: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    #: The failed job this one retries.
    retry_of: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    #: "host:pid" of the process running it, and when that process last said it is alive.
    worker: Mapped[str | None] = mapped_column(String(255), default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class AlgoVersion(Base):
    """A version of an algorithm's code/maths (e.g. bkt v1); fitted parameters point here."""

    __tablename__ = "algo_versions"
    __table_args__ = (UniqueConstraint("key", "version", name="uq_algo_versions_key_version"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    key: Mapped[str] = mapped_column(String(32))
    version: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AlgoRun(Base):
    """One fitting run (CLI or API): what was asked, how long it took, how it ended."""

    __tablename__ = "algo_runs"
    __table_args__ = (
        CheckConstraint("status IN ('running', 'succeeded', 'failed')", name="status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    algo_version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("algo_versions.id"))
    status: Mapped[str] = mapped_column(String(16), default="running")
    trigger: Mapped[str] = mapped_column(String(32), default="cli")
    requested_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    duration_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text, default=None)


class BKTSkillParams(Base):
    """Fitted BKT parameters of one concept; versions accumulate, one at most is active."""

    __tablename__ = "bkt_skill_params"
    __table_args__ = (
        UniqueConstraint("concept_id", "version", name="uq_bkt_skill_params_concept_version"),
        CheckConstraint(
            "l0 > 0 AND l0 < 1 AND t > 0 AND t < 1 AND s > 0 AND s < 1 AND g > 0 AND g < 1 "
            "AND f >= 0 AND f < 1",
            name="ranges",
        ),
        # Exactly one active version per concept, enforced by the database itself.
        Index(
            "uq_bkt_skill_params_one_active",
            "concept_id",
            unique=True,
            sqlite_where=text("is_active"),
            postgresql_where=text("is_active"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    concept_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("concepts.id", ondelete="CASCADE"), index=True
    )
    algo_version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("algo_versions.id"))
    run_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("algo_runs.id", ondelete="SET NULL"), default=None
    )
    version: Mapped[int] = mapped_column(Integer)
    l0: Mapped[float] = mapped_column(Float)
    t: Mapped[float] = mapped_column(Float)
    s: Mapped[float] = mapped_column(Float)
    g: Mapped[float] = mapped_column(Float)
    f: Mapped[float] = mapped_column(Float, default=0.0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=False)
    is_valid: Mapped[bool] = mapped_column(Boolean, default=True)
    fitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    data_from: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    data_to: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    n_users: Mapped[int] = mapped_column(Integer, default=0)
    n_attempts: Mapped[int] = mapped_column(Integer, default=0)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    constraints: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    problems: Mapped[list[str]] = mapped_column(JSON, default=list)


class BKTUserSkillState(Base):
    """A user's current mastery of one concept."""

    __tablename__ = "bkt_user_skill_state"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    concept_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("concepts.id", ondelete="CASCADE"), primary_key=True
    )
    p_mastery: Mapped[float] = mapped_column(Float)
    n_attempts: Mapped[int] = mapped_column(Integer, default=0)
    params_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("bkt_skill_params.id", ondelete="SET NULL"), default=None
    )
    algo_version_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("algo_versions.id"), default=None
    )
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MasterySnapshot(Base):
    """Mastery at one moment, for history charts."""

    __tablename__ = "mastery_snapshots"
    __table_args__ = (
        Index("ix_mastery_snapshots_user_concept_time", "user_id", "concept_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    concept_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("concepts.id", ondelete="CASCADE"))
    p_mastery: Mapped[float] = mapped_column(Float)
    n_attempts: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16), default="update")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StudySession(Base):
    """A quiz session: questions drawn from the bank, answered, then submitted once."""

    __tablename__ = "study_sessions"
    __table_args__ = (CheckConstraint("status IN ('open', 'submitted')", name="status"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    topic_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("topics.id", ondelete="SET NULL"), default=None
    )
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    n_correct: Mapped[int | None] = mapped_column(Integer, default=None)

    questions: Mapped[list[SessionQuestion]] = relationship(
        back_populates="session", order_by="SessionQuestion.position"
    )


class SessionQuestion(Base):
    """A question as it was asked: a snapshot, so later edits of the bank change nothing."""

    __tablename__ = "session_questions"
    __table_args__ = (
        UniqueConstraint("session_id", "position", name="uq_session_questions_position"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("study_sessions.id", ondelete="CASCADE"), index=True
    )
    question_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("questions.id", ondelete="SET NULL"), default=None
    )
    position: Mapped[int] = mapped_column(Integer)
    snapshot_json: Mapped[dict[str, Any]] = mapped_column(JSON)

    session: Mapped[StudySession] = relationship(back_populates="questions")
    answer: Mapped[SessionAnswer | None] = relationship(back_populates="question")


class SessionAnswer(Base):
    __tablename__ = "session_answers"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    session_question_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("session_questions.id", ondelete="CASCADE"), unique=True
    )
    chosen_option: Mapped[int] = mapped_column(Integer)
    is_correct: Mapped[bool] = mapped_column(Boolean)
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    question: Mapped[SessionQuestion] = relationship(back_populates="answer")


class Exam(Base):
    """A student's exam: what it covers (a subject, or topics with weights), when, and the
    daily study time they can give it. The plan is not stored: it is computed on request
    from the current predictions (``services.planning``)."""

    __tablename__ = "exams"
    __table_args__ = (
        CheckConstraint("exam_difficulty IN ('easy', 'medium', 'hard')", name="exam_difficulty"),
        CheckConstraint("daily_minutes > 0", name="daily_minutes"),
        CheckConstraint("target > 0 AND target < 1", name="target"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(120))
    subject_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("subjects.id", ondelete="SET NULL"), default=None
    )
    #: ``[{"topic_id": str, "weight": float}, ...]``; for a subject's exam, its topics at
    #: creation with weight 1 (the plan follows the subject's topics as they are).
    topics: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    exam_date: Mapped[date] = mapped_column(Date)
    daily_minutes: Mapped[int] = mapped_column(Integer)
    #: ISO dates (``"2026-12-24"``) with no study.
    days_off: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Weekdays with no study, 0 = Monday .. 6 = Sunday.
    weekdays_off: Mapped[list[int]] = mapped_column(JSON, default=list)
    target: Mapped[float] = mapped_column(Float, default=0.8)
    exam_difficulty: Mapped[str] = mapped_column(String(8), default="medium")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
