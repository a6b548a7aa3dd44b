"""AI tools: conversation messages keep the model's tool calls and their results.

Revision ID: 0002
Revises: 0001
Create Date: 2026-01-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ai_conversation_messages") as table:
        table.add_column(sa.Column("tool_calls", sa.JSON(), nullable=True))
        table.add_column(sa.Column("tool_call_id", sa.String(length=100), nullable=True))
        table.add_column(
            sa.Column("is_error", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("ai_conversation_messages") as table:
        table.drop_column("is_error")
        table.drop_column("tool_call_id")
        table.drop_column("tool_calls")
