"""Documents and their chunks, each chunk with its embedding (pgvector on PostgreSQL, with an
HNSW cosine index; a float32 BLOB that sqlite-vec reads on SQLite).

The vector column's dimensions are EMBEDDINGS_DIMENSIONS at the time of the migration: after
changing the embeddings model's dimensions, downgrade to 0003, upgrade and `flask rag reindex`.

Revision ID: 0004
Revises: 0003
Create Date: 2026-01-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from {{ cookiecutter.package_name }}.rag.models import PGVector
from {{ cookiecutter.package_name }}.rag.settings import RAGSettings

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table(
        "documents",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("error", sa.String(length=1000), nullable=True),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("characters", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
{%- if cookiecutter.use_auth %}
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
{%- endif %}
        sa.Column("owner_key", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_documents_status", "documents", ["status"])
{%- if cookiecutter.use_auth %}
    op.create_index("ix_documents_owner_id", "documents", ["owner_id"])
{%- endif %}
    dimensions = RAGSettings().embeddings_dimensions
    embedding = PGVector(dimensions) if postgresql else sa.LargeBinary()
    op.create_table(
        "document_chunks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "document_id",
            sa.Integer(),
            sa.ForeignKey("documents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("chunk_index", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("embedding", embedding, nullable=False),
    )
    op.create_index(
        "ix_document_chunks_document_id_chunk_index",
        "document_chunks",
        ["document_id", "chunk_index"],
        unique=True,
    )
    if postgresql:
        op.create_index(
            "ix_document_chunks_embedding",
            "document_chunks",
            ["embedding"],
            postgresql_using="hnsw",
            postgresql_ops={"embedding": "vector_cosine_ops"},
        )


def downgrade() -> None:
    op.drop_table("document_chunks")
    op.drop_table("documents")
