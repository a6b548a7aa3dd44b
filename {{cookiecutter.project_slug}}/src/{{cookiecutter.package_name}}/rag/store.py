"""The vector store: one interface, two implementations.

PostgreSQL keeps each chunk's embedding in a pgvector `vector` column with an HNSW index
(cosine). SQLite keeps it as a float32 BLOB, and beside it one bit per dimension (is it
positive?): a search ranks every chunk by sqlite-vec's Hamming distance over those bits, then
the best `CANDIDATES` by their exact cosine distance (`vec_distance_cosine`). Up to that many
chunks the search is exact; beyond, both stores are approximate, as vector indexes are. Both
score a hit by its cosine similarity, clipped to [0, 1].
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlite_vec
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.exc import IntegrityError

from .models import SearchHit


@dataclass(frozen=True)
class ChunkVector:
    chunk_index: int
    text: str
    vector: list[float]


class DocumentGone(Exception):
    """The document was deleted while its chunks were being stored."""


class VectorStore(Protocol):
    name: str

    def replace_chunks(
        self, connection: Connection, document_id: int, chunks: Sequence[ChunkVector]
    ) -> None:
        """Store the document's chunks in place of any it had (raises DocumentGone)."""

    def search(
        self, connection: Connection, vector: list[float], k: int, owner_id: int | None
    ) -> list[SearchHit]:
        """The `k` chunks of ready documents closest to `vector`, best first; only `owner_id`'s
        documents unless it is None."""

    def check(self, connection: Connection) -> str | None:
        """What keeps this store from working, or None."""


# The SQL of the two searches.
{%- if cookiecutter.use_auth %}
# The ready documents a search may see; `:owner` NULL means every owner's.
VISIBLE = "d.status = 'ready' AND (CAST(:owner AS INTEGER) IS NULL OR d.owner_id = :owner)"
{%- else %}
# The ready documents (every document is shared: there are no owners).
VISIBLE = "d.status = 'ready'"
{%- endif %}
# pgvector's HNSW index serves `ORDER BY distance` alone (with a tie-break after it PostgreSQL
# sorts every chunk): `_hits` puts equal scores in order.
_PG_SEARCH = """
SELECT c.document_id, d.title, c.chunk_index, c.text,
       c.embedding <=> CAST(:vector AS vector) AS distance
FROM document_chunks c JOIN documents d ON d.id = c.document_id
WHERE {visible}
ORDER BY distance
LIMIT :k
"""
# The chunks whose bits are nearest, then the `k` nearest of those by their embeddings.
_SQLITE_SEARCH = """
SELECT c.document_id, d.title, c.chunk_index, c.text,
       vec_distance_cosine(c.embedding, :vector) AS distance
FROM (
    SELECT b.chunk_id
    FROM document_chunk_bits b
    JOIN document_chunks c ON c.id = b.chunk_id JOIN documents d ON d.id = c.document_id
    WHERE {visible}
    ORDER BY vec_distance_hamming(vec_bit(b.bits), vec_bit(:bits))
    LIMIT :candidates
) AS near
JOIN document_chunks c ON c.id = near.chunk_id JOIN documents d ON d.id = c.document_id
ORDER BY distance
LIMIT :k
"""
PG_SEARCH = text(_PG_SEARCH.format(visible=VISIBLE))
SQLITE_SEARCH = text(_SQLITE_SEARCH.format(visible=VISIBLE))
# How many chunks the SQLite store ranks exactly (at least ten times `k`): at 10,000 chunks of
# 1536 dimensions a search takes a few milliseconds instead of the ~100 of an exact scan.
CANDIDATES = 200

INSERT = """
INSERT INTO document_chunks (document_id, chunk_index, text, embedding)
VALUES (:document_id, :chunk_index, :text, {embedding})
"""


def _insert(
    connection: Connection,
    document_id: int,
    chunks: Sequence[ChunkVector],
    embedding_sql: str,
    encode: Any,
) -> None:
    connection.execute(
        text("DELETE FROM document_chunks WHERE document_id = :id"), {"id": document_id}
    )
    if not chunks:
        return
    try:
        connection.execute(
            text(INSERT.format(embedding=embedding_sql)),
            [
                {
                    "document_id": document_id,
                    "chunk_index": chunk.chunk_index,
                    "text": chunk.text,
                    "embedding": encode(chunk.vector),
                }
                for chunk in chunks
            ],
        )
    except IntegrityError as exc:  # the foreign key: the document is gone
        raise DocumentGone(document_id) from exc


def _hits(rows: Sequence[Any]) -> list[SearchHit]:
    ranked = sorted(rows, key=lambda row: (row.distance, row.document_id, row.chunk_index))
    return [
        SearchHit(
            document_id=row.document_id,
            title=row.title,
            chunk_index=row.chunk_index,
            text=row.text,
            score=round(min(1.0, max(0.0, 1.0 - float(row.distance))), 6),
        )
        for row in ranked
    ]


class PgVectorStore:
    name = "pgvector"

    def replace_chunks(
        self, connection: Connection, document_id: int, chunks: Sequence[ChunkVector]
    ) -> None:
        _insert(connection, document_id, chunks, "CAST(:embedding AS vector)", json.dumps)

    def search(
        self, connection: Connection, vector: list[float], k: int, owner_id: int | None
    ) -> list[SearchHit]:
        # A filtered HNSW scan may stop short of k rows; iterative scans go on (pgvector 0.8).
        connection.exec_driver_sql("SET LOCAL hnsw.iterative_scan = strict_order")
        # The planner prices a sequential scan without reading each vector out of TOAST: at
        # 10,000 chunks of 1536 dimensions it would pick one (80-200 ms) over the index (~4 ms).
        # Other plans stay open to it, such as an owner's few documents by their index.
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        rows = connection.execute(
            PG_SEARCH,
            {"vector": json.dumps(vector), "k": k, "owner": owner_id},
        ).all()
        return _hits(rows)

    def check(self, connection: Connection) -> str | None:
        installed = connection.execute(
            text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        ).scalar()
        if installed is None:
            return (
                "the PostgreSQL extension `vector` (pgvector) is not installed in the database: "
                "use the pgvector/pgvector image or install pgvector, then `flask db upgrade`"
            )
        return None


class SqliteVecStore:
    name = "sqlite-vec"

    def replace_chunks(
        self, connection: Connection, document_id: int, chunks: Sequence[ChunkVector]
    ) -> None:
        _insert(connection, document_id, chunks, ":embedding", sqlite_vec.serialize_float32)
        if not chunks:
            return
        # The chunks' bits: the old ones went with their chunks (ON DELETE CASCADE).
        connection.execute(
            text(
                "INSERT INTO document_chunk_bits (chunk_id, bits) SELECT c.id, :bits "
                "FROM document_chunks c WHERE c.document_id = :id AND c.chunk_index = :index"
            ),
            [
                {"id": document_id, "index": chunk.chunk_index, "bits": quantize(chunk.vector)}
                for chunk in chunks
            ],
        )

    def search(
        self, connection: Connection, vector: list[float], k: int, owner_id: int | None
    ) -> list[SearchHit]:
        parameters = {
            "vector": sqlite_vec.serialize_float32(vector),
            "bits": quantize(vector),
            "candidates": max(CANDIDATES, 10 * k),
            "k": k,
            "owner": owner_id,
        }
        rows = connection.execute(SQLITE_SEARCH, parameters).all()
        return _hits(rows)

    def check(self, connection: Connection) -> str | None:
        try:
            connection.execute(text("SELECT vec_version()"))
        except Exception as exc:  # any failure means sqlite-vec is not loaded
            return f"sqlite-vec is not loaded: {exc}"
        return None


def quantize(vector: Sequence[float]) -> bytes:
    """One bit per dimension, set where it is positive: sqlite-vec's `bit` vector layout."""
    bits = 0
    for index, value in enumerate(vector):
        if value > 0:
            bits |= 1 << index
    return bits.to_bytes((len(vector) + 7) // 8, "little")


def load_sqlite_vec(engine: Engine) -> None:
    """Load sqlite-vec into every connection of `engine`."""

    @event.listens_for(engine, "connect")
    def _load(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        dbapi_connection.enable_load_extension(True)
        sqlite_vec.load(dbapi_connection)
        dbapi_connection.enable_load_extension(False)


def sqlite_loads_extensions() -> bool:
    """Some Python builds (python.org's macOS installer, pyenv without the flag) leave out
    SQLite extension loading."""
    return hasattr(sqlite3.Connection, "enable_load_extension")
