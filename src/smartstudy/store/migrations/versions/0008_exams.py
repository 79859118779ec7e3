"""exams: a student's exam (subject or weighted topics, date, daily minutes) for the planner

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 10:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "exams",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=True),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("exam_date", sa.Date(), nullable=False),
        sa.Column("daily_minutes", sa.Integer(), nullable=False),
        sa.Column("days_off", sa.JSON(), nullable=False),
        sa.Column("weekdays_off", sa.JSON(), nullable=False),
        sa.Column("target", sa.Float(), nullable=False),
        sa.Column("exam_difficulty", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "exam_difficulty IN ('easy', 'medium', 'hard')",
            name=op.f("ck_exams_exam_difficulty"),
        ),
        sa.CheckConstraint("daily_minutes > 0", name=op.f("ck_exams_daily_minutes")),
        sa.CheckConstraint("target > 0 AND target < 1", name=op.f("ck_exams_target")),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_exams_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["subjects.id"],
            name=op.f("fk_exams_subject_id_subjects"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exams")),
    )
    with op.batch_alter_table("exams", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_exams_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("exams", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_exams_user_id"))
    op.drop_table("exams")
