"""Documents: added as JSON or as a file, chunked with overlap, listed, read and deleted with
their chunks and vectors (offline embeddings)."""

from __future__ import annotations

import io
import itertools
from typing import Any

from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI
from sqlmodel import col, select

from {{ cookiecutter.package_name }}.core.extensions import db
from {{ cookiecutter.package_name }}.rag.models import DocumentChunk

from .rag_fixtures import add_document, search


def pdf_with_text(text: str) -> bytes:
    """A minimal one-page PDF showing `text` in Helvetica."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def chunk_texts(app: OpenAPI, document_id: int) -> list[str]:
    with app.app_context():
        chunks = db.session.exec(
            select(DocumentChunk)
            .where(col(DocumentChunk.document_id) == document_id)
            .order_by(col(DocumentChunk.chunk_index))
        ).all()
    return [chunk.text for chunk in chunks]


def chunk_count(app: OpenAPI) -> int:
    with app.app_context():
        return len(db.session.exec(select(DocumentChunk)).all())


def test_a_json_document_is_ingested_and_can_be_read(
    rag_client: FlaskClient, rag_headers: dict[str, str]
) -> None:
    created = add_document(
        rag_client,
        rag_headers,
        "Refunds",
        "Refunds are paid within five days.",
        metadata={"team": "billing"},
    )
    assert (created["status"], created["chunks"], created["error"]) == ("ready", 1, None)
    assert created["metadata"] == {"team": "billing"}

    response = rag_client.get(f"/api/v1/documents/{created['id']}", headers=rag_headers)
    assert response.status_code == 200
    assert response.get_json()["data"]["title"] == "Refunds"


def test_uploaded_files_markdown_and_pdf(
    rag_client: FlaskClient, rag_headers: dict[str, str]
) -> None:
    response = rag_client.post(
        "/api/v1/documents",
        data={"file": (io.BytesIO(b"# Opening hours\nThe office opens at nine."), "hours.md")},
        headers=rag_headers,
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["data"]["title"] == "hours.md"  # the file name by default

    pdf = pdf_with_text("The warehouse closes at six on Fridays.")
    response = rag_client.post(
        "/api/v1/documents",
        data={"file": (io.BytesIO(pdf), "hours.pdf", "application/pdf"), "title": "Warehouse"},
        headers=rag_headers,
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["data"]["title"] == "Warehouse"
    (hit, *_) = search(rag_client, rag_headers, "when does the warehouse close on friday")
    assert hit["title"] == "Warehouse"
    assert "closes at six" in hit["text"]


def test_long_text_is_chunked_with_overlap(make_rag_app: Any, sign_in: Any) -> None:
    app = make_rag_app(rag_chunk_size=200, rag_chunk_overlap=60)
    client, headers = app.test_client(), sign_in(app)
    sentences = [f"Sentence number {n} talks about topic {n * 7}." for n in range(40)]
    created = add_document(client, headers, "Long", " ".join(sentences))

    chunks = chunk_texts(app, created["id"])
    assert created["chunks"] == len(chunks) > 5
    assert all(len(chunk) <= 200 for chunk in chunks)
    for first, second in itertools.pairwise(chunks):
        # The next chunk starts inside the previous one: its start is the other's end.
        assert second[:20] in first[-60:], (first, second)
    assert all(sentence in " ".join(chunks) for sentence in sentences)


def test_list_is_paginated_newest_first(
    rag_client: FlaskClient, rag_headers: dict[str, str]
) -> None:
    ids = [add_document(rag_client, rag_headers, f"Doc {n}", f"Text {n}.")["id"] for n in range(3)]
    page = rag_client.get("/api/v1/documents?page=1&size=2", headers=rag_headers).get_json()["data"]
    assert (page["total"], page["size"], page["has_more"]) == (3, 2, True)
    assert [item["id"] for item in page["items"]] == ids[::-1][:2]
    last = rag_client.get("/api/v1/documents?page=2&size=2", headers=rag_headers).get_json()["data"]
    assert [item["id"] for item in last["items"]] == ids[:1]
    assert not last["has_more"]
    ready = rag_client.get("/api/v1/documents?status=failed", headers=rag_headers).get_json()
    assert ready["data"]["total"] == 0


def test_delete_removes_the_chunks_and_vectors(
    rag_app: OpenAPI, rag_client: FlaskClient, rag_headers: dict[str, str]
) -> None:
    kept = add_document(rag_client, rag_headers, "Kept", "Parrots repeat words they hear.")
    gone = add_document(rag_client, rag_headers, "Gone", "Parrots live for decades.")
    assert chunk_count(rag_app) == 2

    response = rag_client.delete(f"/api/v1/documents/{gone['id']}", headers=rag_headers)
    assert response.status_code == 200
    assert rag_client.get(f"/api/v1/documents/{gone['id']}", headers=rag_headers).status_code == 404
    assert chunk_texts(rag_app, gone["id"]) == []
    assert chunk_count(rag_app) == 1
    assert [hit["document_id"] for hit in search(rag_client, rag_headers, "parrots")] == [
        kept["id"]
    ]
    again = rag_client.delete(f"/api/v1/documents/{gone['id']}", headers=rag_headers)
    assert again.status_code == 404
