"""Documents belong to their creator: another user's are 404 and never found by search, ask or
the tool; an admin sees all; a read-only user may search but not add or delete."""

from __future__ import annotations

from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI

from .auth_fixtures import signed_in
from .rag_fixtures import add_document, search


def test_documents_belong_to_their_creator(rag_app: OpenAPI, rag_client: FlaskClient) -> None:
    alice, bob, admin = (signed_in(rag_app, role) for role in ("user", "user", "admin"))
    mine = add_document(
        rag_client, alice, "Alice's notes", "The vault code is kept in the red box."
    )
    theirs = add_document(rag_client, bob, "Bob's notes", "The vault key hangs by the red door.")

    assert rag_client.get(f"/api/v1/documents/{theirs['id']}", headers=alice).status_code == 404
    assert rag_client.delete(f"/api/v1/documents/{theirs['id']}", headers=alice).status_code == 404
    listed = rag_client.get("/api/v1/documents", headers=alice).get_json()["data"]
    assert [item["id"] for item in listed["items"]] == [mine["id"]]
    assert [hit["document_id"] for hit in search(rag_client, alice, "vault red")] == [mine["id"]]

    answer = rag_client.post(
        "/api/v1/ai/ask", json={"question": "where is the vault key"}, headers=alice
    )
    cited = {citation["document_id"] for citation in answer.get_json()["data"]["citations"]}
    assert theirs["id"] not in cited
    assert "red door" not in answer.get_json()["data"]["content"]

    tool = rag_client.post(
        "/api/v1/ai/complete",
        json={
            "messages": [{"role": "user", "content": 'search_documents {"query": "vault key"}'}],
            "tools": ["search_documents"],
        },
        headers=alice,
    )
    (step,) = tool.get_json()["data"]["steps"]
    assert {hit["document_id"] for hit in step["result"]["results"]} == {mine["id"]}

    everything = rag_client.get("/api/v1/documents", headers=admin).get_json()["data"]
    assert everything["total"] == 2
    assert len(search(rag_client, admin, "vault red")) == 2


def test_a_readonly_user_may_search_but_not_change(
    rag_app: OpenAPI, rag_client: FlaskClient
) -> None:
    owner = signed_in(rag_app, "user")
    document = add_document(rag_client, owner, "Notes", "Some notes.")
    readonly = signed_in(rag_app, "readonly")
    added = rag_client.post("/api/v1/documents", json={"title": "T", "text": "x"}, headers=readonly)
    assert added.status_code == 403
    assert search(rag_client, readonly, "notes") == []
    gone = rag_client.delete(f"/api/v1/documents/{document['id']}", headers=readonly)
    assert gone.status_code == 403


def test_documents_need_a_token(rag_client: FlaskClient) -> None:
    assert rag_client.get("/api/v1/documents").status_code == 401
    assert rag_client.post("/api/v1/documents/search", json={"query": "x"}).status_code == 401
