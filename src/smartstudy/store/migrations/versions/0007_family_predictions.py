"""practice tasks keep what every model family would have served (live ranking)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 07:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("practice_tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("family_predictions", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("practice_tasks", schema=None) as batch_op:
        batch_op.drop_column("family_predictions")
