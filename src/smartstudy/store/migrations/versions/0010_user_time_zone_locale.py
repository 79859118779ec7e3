"""users.time_zone and users.locale: each user's clock and way of writing dates

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 13:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Server defaults, so accounts that exist already get UTC and en-GB (what they saw so far).
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("time_zone", sa.String(length=64), nullable=False, server_default="UTC")
        )
        batch.add_column(
            sa.Column("locale", sa.String(length=16), nullable=False, server_default="en-GB")
        )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("locale")
        batch.drop_column("time_zone")
