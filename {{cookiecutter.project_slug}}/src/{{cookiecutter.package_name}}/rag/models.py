"""Documents and their chunks (the tables), and the models the endpoints accept and return."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator
from sqlalchemy import JSON, Column, DateTime, ForeignKey, Index, Integer, LargeBinary, Text
from sqlalchemy.dialects.postgresql.base import ischema_names
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine, UserDefinedType
from sqlmodel import Field, SQLModel

from ..ai.models import CompletionOut
from ..core.models import Page, PageQuery, StrictBody, UTCDateTime, utcnow

DocumentStatus = Literal["pending", "ready", "failed"]


class PGVector(UserDefinedType[list[float]]):
    """pgvector's `vector` column; the migration sets its dimensions (EMBEDDINGS_DIMENSIONS)."""

    cache_ok = True

    def __init__(self, dimensions: int | None = None) -> None:
        self.dimensions = dimensions

    def get_col_spec(self, **kw: Any) -> str:
        return f"vector({self.dimensions})" if self.dimensions else "vector"


# Reflection (alembic's `flask db check`) knows the column's type by its name.
ischema_names["vector"] = PGVector


class Embedding(TypeDecorator[list[float]]):
    """A chunk's embedding: `vector` on PostgreSQL (pgvector), a float32 BLOB on SQLite
    (sqlite-vec's format). The stores read and write it with their own SQL."""

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(PGVector())
        return dialect.type_descriptor(LargeBinary())


class Document(SQLModel, table=True):
    __tablename__ = "documents"

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
    status: str = Field(default="pending", max_length=20, index=True)
    error: str | None = Field(default=None, max_length=1000)
    chunks: int = Field(default=0)
    characters: int = Field(default=0)
    # The text waits here for the worker, and stays for `flask rag reindex`.
    text: str = Field(sa_column=Column(Text, nullable=False))
    properties: dict[str, str] = Field(
        default_factory=dict, sa_column=Column("metadata", JSON, nullable=False)
    )
{%- if cookiecutter.use_auth %}
    owner_id: int = Field(foreign_key="users.id", index=True)
{%- endif %}
    # Whose token budget the embeddings count against (`Caller.key`).
    owner_key: str = Field(max_length=100)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class DocumentChunk(SQLModel, table=True):
    __tablename__ = "document_chunks"
    __table_args__ = (
        Index(
            "ix_document_chunks_document_id_chunk_index", "document_id", "chunk_index", unique=True
        ),
        # pgvector's approximate nearest-neighbour index (SQLite scans: sqlite-vec).
        Index(
            "ix_document_chunks_embedding",
            "embedding",
            postgresql_using="hnsw",
            postgresql_ops={"embedding": "vector_cosine_ops"},
            info={"dialect": "postgresql"},  # migrations/env.py compares it there alone
        ).ddl_if(dialect="postgresql"),
    )

    id: int | None = Field(default=None, primary_key=True)
    document_id: int = Field(
        sa_column=Column(Integer, ForeignKey("documents.id", ondelete="CASCADE"), nullable=False)
    )
    chunk_index: int
    text: str = Field(sa_column=Column(Text, nullable=False))
    embedding: list[float] = Field(sa_column=Column(Embedding(), nullable=False))


class DocumentChunkBits(SQLModel, table=True):
    """SQLite only: a chunk's embedding as one bit per dimension (`store.quantize`), which the
    SQLite store ranks every chunk by before it compares the best ones' embeddings."""

    __tablename__ = "document_chunk_bits"
    __table_args__ = {"info": {"dialect": "sqlite"}}  # migrations/env.py compares it there alone

    chunk_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("document_chunks.id", ondelete="CASCADE"), primary_key=True
        )
    )
    bits: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class DocumentCreate(StrictBody):
    title: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1)
    metadata: dict[str, str] = Field(default_factory=dict, max_length=50)

    @field_validator("title", "text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class DocumentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    status: DocumentStatus
    chunks: int
    characters: int
    error: str | None
    metadata: dict[str, str]
{%- if cookiecutter.use_auth %}
    owner_id: int
{%- endif %}
    created_at: UTCDateTime
    updated_at: UTCDateTime

    @classmethod
    def of(cls, document: Document) -> DocumentOut:
        return cls.model_validate({**document.model_dump(), "metadata": document.properties})


DocumentPage = Page[DocumentOut]


class DocumentQuery(PageQuery):
    status: DocumentStatus | None = None


class DocumentPath(BaseModel):
    document_id: int = Field(ge=1, le=2**31 - 1)


class SearchRequest(StrictBody):
    query: str = Field(min_length=1, max_length=20_000)
    k: int = Field(default=5, ge=1, le=50)

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class SearchHit(BaseModel):
    document_id: int
    title: str
    chunk_index: int
    text: str
    score: float = Field(ge=0, le=1)


class SearchResults(BaseModel):
    results: list[SearchHit]


class AskRequest(StrictBody):
    question: str = Field(min_length=1, max_length=20_000)
    k: int = Field(default=5, ge=1, le=50)
    stream: bool = False

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class Citation(BaseModel):
    document_id: int
    title: str
    chunk_index: int
    score: float


class AskOut(CompletionOut):
    citations: list[Citation]
