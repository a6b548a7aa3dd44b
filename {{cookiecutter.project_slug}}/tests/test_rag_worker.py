"""Ingestion on a real Celery worker (tests/celery_worker.py) that embeds through the stub:
`pending` -> `ready`; a failed embeddings call marks the document `failed` with the reason and
touches nothing else; a document deleted while the worker ingests it stays deleted."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI
from sqlmodel import col, select

from {{ cookiecutter.package_name }}.core.extensions import db
from {{ cookiecutter.package_name }}.rag.models import DocumentChunk

from .celery_worker import Worker, skip_without_redis
from .rag_stub import embeddings_payload
from .test_worker import job_counts, wait_for
from .upstream import Raw, Status, Upstream

skip_without_redis()


@pytest.fixture(autouse=True)
def _clean_services() -> None:
    """Replaces conftest's, as in test_worker.py: the worker's queue lives in Redis."""


@pytest.fixture
def app(make_app: Callable[..., OpenAPI], worker: Worker, job_settings: dict[str, Any]) -> OpenAPI:
    return make_app(**job_settings)


def add(client: FlaskClient, headers: dict[str, str], title: str, text: str) -> dict[str, Any]:
    response = client.post(
        "/api/v1/documents", json={"title": title, "text": text}, headers=headers
    )
    assert response.status_code == 201, response.get_json()
    document: dict[str, Any] = response.get_json()["data"]
    assert document["status"] == "pending"
    return document


def settled(
    client: FlaskClient, headers: dict[str, str], document_id: int, worker: Worker
) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        data: dict[str, Any] = client.get(
            f"/api/v1/documents/{document_id}", headers=headers
        ).get_json()["data"]
        return data if data["status"] != "pending" else None

    result: dict[str, Any] = wait_for(done, worker, f"the ingestion of document {document_id}")
    return result


def test_the_worker_ingests_and_a_failure_marks_only_that_document(
    client: FlaskClient, headers: dict[str, str], worker: Worker, upstream: Upstream
) -> None:
    good = add(client, headers, "Lighthouses", "Lighthouses guide ships along the coast.")
    ready = settled(client, headers, good["id"], worker)
    assert (ready["status"], ready["chunks"]) == ("ready", 1)

    upstream.queue(Status(400, "input too long for this model"))
    bad = add(client, headers, "Broken", "This one the provider refuses.")
    failed = settled(client, headers, bad["id"], worker)
    assert failed["status"] == "failed"
    assert "input too long for this model" in failed["error"]

    found = client.post(
        "/api/v1/documents/search", json={"query": "lighthouses coast"}, headers=headers
    ).get_json()["data"]["results"]
    assert [hit["document_id"] for hit in found] == [good["id"]]


def test_a_document_deleted_during_its_ingestion_stays_deleted(
    client: FlaskClient, headers: dict[str, str], worker: Worker, upstream: Upstream
) -> None:
    slow = embeddings_payload({"input": ["Slow text."], "model": "m"})
    upstream.queue(Raw(json.dumps(slow).encode(), delay=1.5))
    before = job_counts(client, "rag_ingest").get("succeeded", 0)
    document = add(client, headers, "Slow", "Slow text.")
    wait_for(lambda: upstream.requests, worker, "the embeddings call")

    deleted = client.delete(f"/api/v1/documents/{document['id']}", headers=headers)
    assert deleted.status_code == 200
    wait_for(
        lambda: job_counts(client, "rag_ingest").get("succeeded", 0) > before,
        worker,
        "the end of the ingestion job",
    )
    assert client.get(f"/api/v1/documents/{document['id']}", headers=headers).status_code == 404
    with client.application.app_context():
        chunks = db.session.exec(
            select(DocumentChunk).where(col(DocumentChunk.document_id) == document["id"])
        ).all()
    assert chunks == []
