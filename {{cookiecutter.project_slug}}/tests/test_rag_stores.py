"""Both vector stores for real: pgvector on TEST_DATABASE_URL (PostgreSQL), sqlite-vec on a
SQLite database (also past the chunks it ranks exactly); and the one-line refusal of a Python
that cannot load SQLite extensions."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from flask_openapi3 import OpenAPI
from sqlalchemy import create_engine, text

from {{ cookiecutter.package_name }} import rag
from {{ cookiecutter.package_name }}.core.extensions import db
from {{ cookiecutter.package_name }}.core.migrate import upgrade
from {{ cookiecutter.package_name }}.rag.settings import RAGSettings
from {{ cookiecutter.package_name }}.rag.store import CANDIDATES, ChunkVector

from .core_fixtures import SignIn
from .rag_fixtures import add_document, search
from .relay import require


def exercise(app: OpenAPI, sign_in: SignIn) -> None:
    """Add, search and delete through the app's store."""
    client, headers = app.test_client(), sign_in(app)
    owls = add_document(client, headers, "Owls", "Owls hunt at night and sleep by day.")
    add_document(client, headers, "Bees", "Bees make honey from the nectar of flowers.")
    hits = search(client, headers, "which birds hunt at night", k=2)
    assert [hit["title"] for hit in hits] == ["Owls", "Bees"]
    assert hits[0]["score"] > 0.3
    assert hits[1]["score"] == 0  # no word in common: orthogonal
    client.delete(f"/api/v1/documents/{owls['id']}", headers=headers)
    assert [hit["title"] for hit in search(client, headers, "owls at night")] == ["Bees"]


def test_sqlite_vec(make_rag_app: Callable[..., OpenAPI], sign_in: SignIn, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'vectors.db'}"
    upgrade(url)
    app = make_rag_app(database_url=url)
    assert app.extensions["rag_store"].name == "sqlite-vec"
    exercise(app, sign_in)


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_sqlite_vec_past_its_exact_ranking(
    make_rag_app: Callable[..., OpenAPI], sign_in: SignIn, tmp_path: Path
) -> None:
    """Up to CANDIDATES chunks the ranking is exact; past them the chunk nearest the query
    still comes first; deleting the document leaves none of its chunks' bits behind."""
    url = f"sqlite:///{tmp_path / 'vectors.db'}"
    upgrade(url)
    app = make_rag_app(database_url=url)
    client, headers = app.test_client(), sign_in(app)
    document = add_document(client, headers, "Noise", "Random vectors stand in for its chunks.")
    dimensions = RAGSettings().embeddings_dimensions
    rng = random.Random(5)
    query = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    chunks = [
        ChunkVector(index, f"chunk {index}", [rng.gauss(0.0, 1.0) for _ in range(dimensions)])
        for index in range(3 * CANDIDATES)
    ]
    near = [value + rng.gauss(0.0, 0.3) for value in query]
    chunks[CANDIDATES + 7] = ChunkVector(CANDIDATES + 7, "the near one", near)
    store = app.extensions["rag_store"]
    exact = sorted(chunks[:CANDIDATES], key=lambda chunk: -cosine(chunk.vector, query))[:5]
    with app.app_context(), db.engine.begin() as connection:
        store.replace_chunks(connection, document["id"], chunks[:CANDIDATES])
        ranked = store.search(connection, query, 5, None)
        store.replace_chunks(connection, document["id"], chunks)
        hits = store.search(connection, query, 3, None)
    assert [hit.text for hit in ranked] == [chunk.text for chunk in exact]
    assert hits[0].text == "the near one"
    assert hits[0].score > 0.9 > hits[1].score

    def bits() -> int:
        with app.app_context(), db.engine.connect() as connection:
            count = connection.execute(text("SELECT count(*) FROM document_chunk_bits"))
            return int(count.scalar_one())

    assert bits() == len(chunks)
    assert client.delete(f"/api/v1/documents/{document['id']}", headers=headers).status_code == 200
    assert bits() == 0


def test_pgvector(make_rag_app: Callable[..., OpenAPI], sign_in: SignIn, database_url: str) -> None:
    require("TEST_DATABASE_URL")
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            column = connection.execute(
                text(
                    "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                    "WHERE attrelid = 'document_chunks'::regclass AND attname = 'embedding'"
                )
            ).scalar_one()
            index = connection.execute(
                text(
                    "SELECT indexdef FROM pg_indexes "
                    "WHERE indexname = 'ix_document_chunks_embedding'"
                )
            ).scalar_one()
    finally:
        engine.dispose()
    assert column == f"vector({RAGSettings().embeddings_dimensions})"
    assert "USING hnsw (embedding vector_cosine_ops)" in index
    app = make_rag_app()
    assert app.extensions["rag_store"].name == "pgvector"
    exercise(app, sign_in)


def test_sqlite_without_loadable_extensions_is_refused_in_one_line(
    make_rag_app: Callable[..., OpenAPI], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rag, "sqlite_loads_extensions", lambda: False)
    with pytest.raises(SystemExit) as refused:
        make_rag_app(database_url=f"sqlite:///{tmp_path / 'app.db'}")
    message = str(refused.value)
    assert "\n" not in message
    assert "cannot load extensions" in message
    assert "PostgreSQL" in message
