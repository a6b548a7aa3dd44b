"""Without a worker, a document is ingested inside the request: a failed embeddings call leaves
no document behind, and one deleted while it is ingested stays deleted."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from flask_openapi3 import OpenAPI

from .core_fixtures import SignIn
from .rag_fixtures import add_document
from .rag_stub import embeddings_payload
from .upstream import Raw, Status, Upstream


def test_failed_embeddings_leave_no_document(
    make_stub_rag_app: Callable[..., OpenAPI], sign_in: SignIn, upstream: Upstream
) -> None:
    app = make_stub_rag_app(ai_max_retries=0)
    client, headers = app.test_client(), sign_in(app)
    kept = add_document(client, headers, "Kept", "This one is fine.")
    upstream.queue(Status(500))

    response = client.post(
        "/api/v1/documents", json={"title": "T", "text": "Lost."}, headers=headers
    )
    assert response.status_code == 502
    assert response.get_json()["code"] == "ai_provider_error"
    listed = client.get("/api/v1/documents", headers=headers).get_json()["data"]
    assert [item["id"] for item in listed["items"]] == [kept["id"]]


def test_a_document_deleted_during_its_ingestion_stays_deleted(
    make_stub_rag_app: Callable[..., OpenAPI], sign_in: SignIn, upstream: Upstream
) -> None:
    app = make_stub_rag_app()
    client, headers = app.test_client(), sign_in(app)
    slow = embeddings_payload({"input": ["Slow text."], "model": "m"})
    upstream.queue(Raw(json.dumps(slow).encode(), delay=1.0))
    answers: dict[str, Any] = {}

    def add() -> None:
        answers["add"] = app.test_client().post(
            "/api/v1/documents", json={"title": "Slow", "text": "Slow text."}, headers=headers
        )

    adding = threading.Thread(target=add)
    adding.start()
    deadline = time.monotonic() + 5
    pending: list[dict[str, Any]] = []
    while not pending and time.monotonic() < deadline:
        time.sleep(0.05)
        pending = client.get("/api/v1/documents", headers=headers).get_json()["data"]["items"]
    assert pending, "the document never showed up"
    assert pending[0]["status"] == "pending"
    deleted = client.delete(f"/api/v1/documents/{pending[0]['id']}", headers=headers)
    assert deleted.status_code == 200
    adding.join(10)

    assert answers["add"].status_code == 404
    assert "deleted while it was being added" in answers["add"].get_json()["message"]
    listed = client.get("/api/v1/documents", headers=headers).get_json()["data"]
    assert listed["total"] == 0
    stats = app.test_cli_runner().invoke(args=["rag", "stats"])
    assert '"chunks": 0' in stats.output
