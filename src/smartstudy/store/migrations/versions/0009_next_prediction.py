"""practice_tasks.next_prediction: the next prediction shown right after a completion

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("practice_tasks") as batch:
        batch.add_column(sa.Column("next_prediction", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("practice_tasks") as batch:
        batch.drop_column("next_prediction")
