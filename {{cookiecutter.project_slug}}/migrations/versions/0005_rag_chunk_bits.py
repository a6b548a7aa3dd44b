"""SQLite: each chunk's embedding also as one bit per dimension, which search ranks every chunk
by before it compares the best ones' embeddings (PostgreSQL has pgvector's HNSW index).

Revision ID: 0005
Revises: 0004
Create Date: 2026-01-02 00:00:00
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from {{ cookiecutter.package_name }}.rag.store import quantize

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "sqlite":
        return
    op.create_table(
        "document_chunk_bits",
        sa.Column(
            "chunk_id",
            sa.Integer(),
            sa.ForeignKey("document_chunks.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("bits", sa.LargeBinary(), nullable=False),
    )
    chunks = connection.execute(sa.text("SELECT id, embedding FROM document_chunks"))
    rows = [
        {"id": chunk_id, "bits": quantize(struct.unpack(f"{len(blob) // 4}f", blob))}
        for chunk_id, blob in chunks
    ]
    if rows:
        connection.execute(
            sa.text("INSERT INTO document_chunk_bits (chunk_id, bits) VALUES (:id, :bits)"), rows
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.drop_table("document_chunk_bits")
