"""`flask rag stats|reindex`, the vector store in `/health` and in `flask deploy check`."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI

from .core_fixtures import SignIn
from .rag_fixtures import add_document, embeddings_settings, search
from .upstream import API_KEY, Upstream, provider_settings


def test_stats_and_reindex(make_rag_app: Callable[..., OpenAPI], sign_in: SignIn) -> None:
    app = make_rag_app()
    client, headers = app.test_client(), sign_in(app)
    first = add_document(client, headers, "One", "Alpha beta gamma. " * 30)
    add_document(client, headers, "Two", "Delta epsilon.")

    stats = app.test_cli_runner().invoke(args=["rag", "stats"])
    assert stats.exit_code == 0, stats.output
    counts = json.loads(stats.output)
    assert counts["documents"] == 2
    assert counts["by_status"] == {"ready": 2}
    assert counts["chunks"] == first["chunks"] + 1
    assert counts["store"] == app.extensions["rag_store"].name

    # Smaller chunks: reindexing cuts the first document again, and search still finds it.
    smaller = make_rag_app(rag_chunk_size=120, rag_chunk_overlap=20)
    result = smaller.test_cli_runner().invoke(
        args=["rag", "reindex", "--document", str(first["id"])]
    )
    assert result.exit_code == 0, result.output
    assert "Reindexed 1 of 1 documents." in result.output
    again = client.get(f"/api/v1/documents/{first['id']}", headers=headers).get_json()["data"]
    assert again["chunks"] > first["chunks"]
    assert search(client, headers, "gamma")[0]["document_id"] == first["id"]


def test_the_vector_store_is_checked(rag_app: OpenAPI, rag_client: FlaskClient) -> None:
    check = rag_client.get("/health").get_json()["checks"]["vector_store"]
    assert check["status"] == "ok"
    assert check["detail"] == rag_app.extensions["rag_store"].name
    result = rag_app.test_cli_runner().invoke(args=["deploy", "check"])
    assert "pgvector" not in result.output, result.output
    assert "sqlite-vec" not in result.output, result.output


def test_an_embeddings_endpoint_of_its_own_needs_its_own_key(
    make_stub_rag_app: Callable[..., OpenAPI], sign_in: SignIn, upstream: Upstream
) -> None:
    # The stub under another spelling of its address: to the service, another endpoint.
    own = embeddings_settings(upstream.root).get("embeddings_base_url")
    elsewhere = (own or provider_settings(upstream.root)["ai_base_url"]) + "/"

    with pytest.raises(SystemExit, match="EMBEDDINGS_API_KEY: the embeddings endpoint"):
        make_stub_rag_app(embeddings_base_url=elsewhere, embeddings_api_key=None)

    app = make_stub_rag_app(embeddings_base_url=elsewhere, embeddings_api_key="own-key")
    upstream.reset()
    add_document(app.test_client(), sign_in(app), "Keys", "Which key goes where.")
    (call,) = [r for r in upstream.requests if r.path.split("?")[0].endswith("/embeddings")]
    sent = " ".join(call.headers.values())
    assert "own-key" in sent
    assert API_KEY not in sent
