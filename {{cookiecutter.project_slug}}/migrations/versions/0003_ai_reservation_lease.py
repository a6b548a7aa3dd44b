"""AI budgets: reservations of calls in flight expire with their lease period.

Revision ID: 0003
Revises: 0002
Create Date: 2026-01-02 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ai_daily_usage") as table:
        table.add_column(
            sa.Column("reserved_before", sa.BigInteger(), nullable=False, server_default="0")
        )
        table.add_column(sa.Column("lease", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("ai_daily_usage") as table:
        table.drop_column("lease")
        table.drop_column("reserved_before")
