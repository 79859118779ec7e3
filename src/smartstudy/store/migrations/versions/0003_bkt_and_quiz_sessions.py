"""bkt and quiz sessions

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 22:03:30.441400
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    _create_algo_versions()
    _create_algo_runs()
    _create_study_sessions()
    _create_bkt_skill_params()
    _create_mastery_snapshots()
    _create_bkt_user_skill_state()
    _create_session_questions()
    _create_session_answers()


def _create_algo_versions() -> None:
    op.create_table(
        "algo_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_algo_versions")),
        sa.UniqueConstraint("key", "version", name="uq_algo_versions_key_version"),
    )


def _create_algo_runs() -> None:
    op.create_table(
        "algo_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("algo_version_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("requested_by", sa.Uuid(), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'failed')", name=op.f("ck_algo_runs_status")
        ),
        sa.ForeignKeyConstraint(
            ["algo_version_id"],
            ["algo_versions.id"],
            name=op.f("fk_algo_runs_algo_version_id_algo_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"],
            ["users.id"],
            name=op.f("fk_algo_runs_requested_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_algo_runs")),
    )


def _create_study_sessions() -> None:
    op.create_table(
        "study_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("topic_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("n_correct", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'submitted')", name=op.f("ck_study_sessions_status")
        ),
        sa.ForeignKeyConstraint(
            ["topic_id"],
            ["topics.id"],
            name=op.f("fk_study_sessions_topic_id_topics"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_study_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_study_sessions")),
    )
    with op.batch_alter_table("study_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_study_sessions_user_id"), ["user_id"], unique=False)


def _create_bkt_skill_params() -> None:
    op.create_table(
        "bkt_skill_params",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("concept_id", sa.Uuid(), nullable=False),
        sa.Column("algo_version_id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("l0", sa.Float(), nullable=False),
        sa.Column("t", sa.Float(), nullable=False),
        sa.Column("s", sa.Float(), nullable=False),
        sa.Column("g", sa.Float(), nullable=False),
        sa.Column("f", sa.Float(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("is_valid", sa.Boolean(), nullable=False),
        sa.Column("fitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("data_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("n_users", sa.Integer(), nullable=False),
        sa.Column("n_attempts", sa.Integer(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("constraints", sa.JSON(), nullable=False),
        sa.Column("problems", sa.JSON(), nullable=False),
        sa.CheckConstraint(
            "l0 > 0 AND l0 < 1 AND t > 0 AND t < 1 AND s > 0 AND s < 1 AND g > 0 AND g < 1 "
            "AND f >= 0 AND f < 1",
            name=op.f("ck_bkt_skill_params_ranges"),
        ),
        sa.ForeignKeyConstraint(
            ["algo_version_id"],
            ["algo_versions.id"],
            name=op.f("fk_bkt_skill_params_algo_version_id_algo_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["concept_id"],
            ["concepts.id"],
            name=op.f("fk_bkt_skill_params_concept_id_concepts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["algo_runs.id"],
            name=op.f("fk_bkt_skill_params_run_id_algo_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bkt_skill_params")),
        sa.UniqueConstraint("concept_id", "version", name="uq_bkt_skill_params_concept_version"),
    )
    with op.batch_alter_table("bkt_skill_params", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_bkt_skill_params_concept_id"), ["concept_id"], unique=False
        )
        batch_op.create_index(
            "uq_bkt_skill_params_one_active",
            ["concept_id"],
            unique=True,
            sqlite_where=sa.text("is_active"),
            postgresql_where=sa.text("is_active"),
        )


def _create_mastery_snapshots() -> None:
    op.create_table(
        "mastery_snapshots",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("concept_id", sa.Uuid(), nullable=False),
        sa.Column("p_mastery", sa.Float(), nullable=False),
        sa.Column("n_attempts", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["concept_id"],
            ["concepts.id"],
            name=op.f("fk_mastery_snapshots_concept_id_concepts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_mastery_snapshots_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mastery_snapshots")),
    )
    with op.batch_alter_table("mastery_snapshots", schema=None) as batch_op:
        batch_op.create_index(
            "ix_mastery_snapshots_user_concept_time",
            ["user_id", "concept_id", "created_at"],
            unique=False,
        )


def _create_bkt_user_skill_state() -> None:
    op.create_table(
        "bkt_user_skill_state",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("concept_id", sa.Uuid(), nullable=False),
        sa.Column("p_mastery", sa.Float(), nullable=False),
        sa.Column("n_attempts", sa.Integer(), nullable=False),
        sa.Column("params_id", sa.Uuid(), nullable=True),
        sa.Column("algo_version_id", sa.Uuid(), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["algo_version_id"],
            ["algo_versions.id"],
            name=op.f("fk_bkt_user_skill_state_algo_version_id_algo_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["concept_id"],
            ["concepts.id"],
            name=op.f("fk_bkt_user_skill_state_concept_id_concepts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["params_id"],
            ["bkt_skill_params.id"],
            name=op.f("fk_bkt_user_skill_state_params_id_bkt_skill_params"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_bkt_user_skill_state_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "concept_id", name=op.f("pk_bkt_user_skill_state")),
    )


def _create_session_questions() -> None:
    op.create_table(
        "session_questions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("question_id", sa.Uuid(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("snapshot_json", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["question_id"],
            ["questions.id"],
            name=op.f("fk_session_questions_question_id_questions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["study_sessions.id"],
            name=op.f("fk_session_questions_session_id_study_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_questions")),
        sa.UniqueConstraint("session_id", "position", name="uq_session_questions_position"),
    )
    with op.batch_alter_table("session_questions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_session_questions_session_id"), ["session_id"], unique=False
        )


def _create_session_answers() -> None:
    op.create_table(
        "session_answers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("session_question_id", sa.Uuid(), nullable=False),
        sa.Column("chosen_option", sa.Integer(), nullable=False),
        sa.Column("is_correct", sa.Boolean(), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_question_id"],
            ["session_questions.id"],
            name=op.f("fk_session_answers_session_question_id_session_questions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_answers")),
        sa.UniqueConstraint(
            "session_question_id", name=op.f("uq_session_answers_session_question_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("session_answers")
    with op.batch_alter_table("session_questions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_questions_session_id"))

    op.drop_table("session_questions")
    op.drop_table("bkt_user_skill_state")
    with op.batch_alter_table("mastery_snapshots", schema=None) as batch_op:
        batch_op.drop_index("ix_mastery_snapshots_user_concept_time")

    op.drop_table("mastery_snapshots")
    with op.batch_alter_table("bkt_skill_params", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_bkt_skill_params_one_active",
            sqlite_where=sa.text("is_active"),
            postgresql_where=sa.text("is_active"),
        )
        batch_op.drop_index(batch_op.f("ix_bkt_skill_params_concept_id"))

    op.drop_table("bkt_skill_params")
    with op.batch_alter_table("study_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_study_sessions_user_id"))

    op.drop_table("study_sessions")
    op.drop_table("algo_runs")
    op.drop_table("algo_versions")
