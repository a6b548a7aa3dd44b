"""Bad input to the documents and ask endpoints: each answers its 4xx envelope."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI

from .core_fixtures import SignIn


def upload(client: FlaskClient, headers: dict[str, str], data: bytes, name: str, kind: str) -> Any:
    return client.post(
        "/api/v1/documents",
        data={"file": (io.BytesIO(data), name, kind)},
        headers=headers,
        content_type="multipart/form-data",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "Empty", "text": ""}, "text"),
        ({"title": "Blank", "text": "   \n "}, "text"),
        ({"title": "", "text": "Some text."}, "title"),
        ({"text": "No title."}, "title"),
        ({"title": "Extra", "text": "x", "owner": 3}, "owner"),
        ({"title": "Meta", "text": "x", "metadata": {"n": 1}}, "metadata"),
    ],
)
def test_invalid_json_documents_are_refused(
    rag_client: FlaskClient, rag_headers: dict[str, str], body: dict[str, Any], field: str
) -> None:
    response = rag_client.post("/api/v1/documents", json=body, headers=rag_headers)
    assert response.status_code == 422, response.get_json()
    error = response.get_json()
    assert error["code"] == "validation_error"
    assert field in {str(part) for e in error["details"]["errors"] for part in e["loc"]}


def test_an_empty_file_is_refused(rag_client: FlaskClient, rag_headers: dict[str, str]) -> None:
    response = upload(rag_client, rag_headers, b"  \n", "empty.txt", "text/plain")
    assert response.status_code == 422
    assert response.get_json()["details"]["errors"][0]["loc"] == ["file"]


def test_an_unsupported_file_type_is_415(
    rag_client: FlaskClient, rag_headers: dict[str, str]
) -> None:
    response = upload(rag_client, rag_headers, b"\x89PNG\r\n", "cat.png", "image/png")
    assert response.status_code == 415
    body = response.get_json()
    assert body["code"] == "unsupported_media_type"
    assert "image/png" in body["message"]


def test_an_unparsable_pdf_is_422_with_a_clear_message(
    rag_client: FlaskClient, rag_headers: dict[str, str]
) -> None:
    response = upload(
        rag_client, rag_headers, b"%PDF-1.4\nnot really", "broken.pdf", "application/pdf"
    )
    assert response.status_code == 422
    body = response.get_json()
    assert body["message"].startswith("The PDF could not be read")
    assert body["details"]["errors"][0]["loc"] == ["file"]


def test_documents_over_the_size_limit_are_413(
    make_rag_app: Callable[..., OpenAPI], sign_in: SignIn
) -> None:
    app = make_rag_app(rag_max_document_chars=1000)
    client, headers = app.test_client(), sign_in(app)
    json_body = {"title": "Big", "text": "x" * 1001}
    response = client.post("/api/v1/documents", json=json_body, headers=headers)
    assert response.status_code == 413
    assert response.get_json()["code"] == "payload_too_large"
    assert response.get_json()["details"] == {"characters": 1001, "limit": 1000}
    file_response = upload(client, headers, b"y" * 1001, "big.txt", "text/plain")
    assert file_response.status_code == 413
    listed = client.get("/api/v1/documents", headers=headers).get_json()["data"]
    assert listed["total"] == 0


@pytest.mark.parametrize("path", ["/api/v1/documents/search", "/api/v1/ai/ask"])
@pytest.mark.parametrize("k", [0, 51, "5", 2.5])
def test_k_out_of_range_is_422(
    rag_client: FlaskClient, rag_headers: dict[str, str], path: str, k: Any
) -> None:
    field = "query" if path.endswith("search") else "question"
    response = rag_client.post(path, json={field: "refunds", "k": k}, headers=rag_headers)
    assert response.status_code == 422
    assert response.get_json()["details"]["errors"][0]["loc"] == ["k"]


def test_a_query_longer_than_the_embeddings_model_takes_is_422(
    make_rag_app: Callable[..., OpenAPI], sign_in: SignIn
) -> None:
    app = make_rag_app(embeddings_max_tokens=50)
    client, headers = app.test_client(), sign_in(app)
    response = client.post(
        "/api/v1/documents/search", json={"query": "word " * 100}, headers=headers
    )
    assert response.status_code == 422
    error = response.get_json()["details"]["errors"][0]
    assert error["loc"] == ["query"]
    assert "too long for the embeddings model" in error["msg"]
    short = client.post("/api/v1/documents/search", json={"query": "word " * 10}, headers=headers)
    assert short.status_code == 200


def test_a_missing_document_is_404(rag_client: FlaskClient, rag_headers: dict[str, str]) -> None:
    for method in ("get", "delete"):
        response = getattr(rag_client, method)("/api/v1/documents/999", headers=rag_headers)
        assert response.status_code == 404
        assert response.get_json()["code"] == "not_found"


def test_a_form_without_a_file_is_422(rag_client: FlaskClient, rag_headers: dict[str, str]) -> None:
    response = rag_client.post(
        "/api/v1/documents",
        data={"title": "No file"},
        headers=rag_headers,
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert response.get_json()["details"]["errors"][0]["loc"] == ["file"]


def test_nul_characters_in_an_upload_are_422(
    rag_client: FlaskClient, rag_headers: dict[str, str]
) -> None:
    response = upload(rag_client, rag_headers, b"half\x00way", "nul.txt", "text/plain")
    assert response.status_code == 422
    assert response.get_json()["details"]["errors"][0]["type"] == "string_nul"
