"""Fixtures of the RAG feature: apps that ingest documents at once (offline embeddings, or the
stub provider's), and helpers to add documents and search them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from .core_fixtures import SignIn
from .rag_stub import embeddings_payload
from .upstream import Upstream
{%- if cookiecutter.use_celery %}

# Without a broker the ingestion job runs inside the request (tests/test_rag_worker.py runs it on
# a real worker).
INGEST_NOW: dict[str, Any] = dict.fromkeys(
    ("redis_url", "celery_broker_url", "celery_result_backend")
)
{%- else %}

INGEST_NOW: dict[str, Any] = {}  # there is no worker: documents are always ingested at once
{%- endif %}


def embeddings_settings(root: str) -> dict[str, Any]:
    """Settings that point the embeddings at the stub server at `root`."""
{%- if cookiecutter.ai_provider == "anthropic" %}
    return {"embeddings_base_url": f"{root}/v1", "embeddings_api_key": "test-key"}
{%- else %}
    del root  # the embeddings go where the AI provider's calls go
    return {}
{%- endif %}


def has_pgvector(url: str) -> str | None:
    """Why a PostgreSQL server cannot hold the vectors (no pgvector), or None."""
    if not url.startswith("postgresql"):
        return None
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            found = connection.execute(
                text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
            ).first()
    except SQLAlchemyError:
        return None  # an unreachable server fails the run in conftest.py
    finally:
        engine.dispose()
    if found:
        return None
    return (
        "the PostgreSQL server of TEST_DATABASE_URL lacks pgvector (the `vector` extension): "
        "install it there (README.md, Documents and grounded answers), or set TEST_DATABASE_URL "
        "to a server that has it"
    )


@pytest.fixture(scope="session")
def database_requirements(
    database_requirements: list[Callable[[str], str | None]],
) -> list[Callable[[str], str | None]]:
    return [*database_requirements, has_pgvector]


@pytest.fixture(scope="session")
def upstream_server(upstream_server: Upstream) -> Upstream:
    """The stub provider answers embeddings requests too."""
    upstream_server.endpoints["/embeddings"] = embeddings_payload
    return upstream_server


@pytest.fixture(scope="session")
def test_settings(test_settings: dict[str, Any], upstream_server: Upstream) -> dict[str, Any]:
    """Every app with the provider's key embeds through the stub too (the service processes
    the tests start included)."""
    return {**test_settings, **embeddings_settings(upstream_server.root)}


@pytest.fixture
def make_rag_app(make_app: Callable[..., OpenAPI]) -> Callable[..., OpenAPI]:
    """make_rag_app(**overrides) -> an app on the offline provider and its lexical embeddings."""

    def factory(**overrides: Any) -> OpenAPI:
        return make_app(**{**INGEST_NOW, "rate_limit_ai": "10000 per minute", **overrides})

    return factory


@pytest.fixture
def rag_app(make_rag_app: Callable[..., OpenAPI]) -> OpenAPI:
    return make_rag_app()


@pytest.fixture
def rag_client(rag_app: OpenAPI) -> FlaskClient:
    return rag_app.test_client()


@pytest.fixture
def rag_headers(rag_app: OpenAPI, sign_in: SignIn) -> dict[str, str]:
    return sign_in(rag_app)


@pytest.fixture
def make_stub_rag_app(make_ai_app: Callable[..., OpenAPI]) -> Callable[..., OpenAPI]:
    """make_stub_rag_app(**overrides) -> an app whose model and embeddings are the stub's."""

    def factory(**overrides: Any) -> OpenAPI:
        return make_ai_app(**{**INGEST_NOW, **overrides})

    return factory


def add_document(
    client: FlaskClient, headers: dict[str, str], title: str, text: str, **extra: Any
) -> dict[str, Any]:
    response = client.post(
        "/api/v1/documents", json={"title": title, "text": text, **extra}, headers=headers
    )
    assert response.status_code == 201, response.get_json()
    document: dict[str, Any] = response.get_json()["data"]
    return document


def search(
    client: FlaskClient, headers: dict[str, str], query: str, k: int = 5
) -> list[dict[str, Any]]:
    response = client.post(
        "/api/v1/documents/search", json={"query": query, "k": k}, headers=headers
    )
    assert response.status_code == 200, response.get_json()
    results: list[dict[str, Any]] = response.get_json()["data"]["results"]
    return results
