"""Grounded answers: the model gets the relevant chunks as numbered sources and the answer
cites them; streamed, the citations come first; the `search_documents` tool."""

from __future__ import annotations

import json
from collections.abc import Callable

from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI

from .core_fixtures import SignIn
from .rag_fixtures import add_document
from .upstream import Text, Upstream, parse_events, sent_messages

POLICY = (
    "Refunds are paid back to the original card within five business days. "
    "Gift cards cannot be refunded."
)


def test_the_offline_answer_quotes_and_cites_the_source(
    rag_client: FlaskClient, rag_headers: dict[str, str]
) -> None:
    refunds = add_document(rag_client, rag_headers, "Refund policy", POLICY)
    add_document(rag_client, rag_headers, "Shipping", "Parcels arrive within three days.")

    response = rag_client.post(
        "/api/v1/ai/ask", json={"question": "How fast are refunds paid back?"}, headers=rag_headers
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    data = body["data"]
    assert data["citations"][0] == {
        "document_id": refunds["id"],
        "title": "Refund policy",
        "chunk_index": 0,
        "score": data["citations"][0]["score"],
    }
    # The shipping note shares no word with the question (a hashed dimension at most).
    assert all(c["score"] < 0.3 for c in data["citations"][1:]), data["citations"]
    assert (
        '"Refunds are paid back to the original card within five business days." [1]'
        in (data["content"])
    )
    assert data["usage"]["total_tokens"] > 0
    assert "no_context" not in {warning["code"] for warning in body["warnings"]}


def test_no_relevant_document_is_a_warning(
    rag_client: FlaskClient, rag_headers: dict[str, str]
) -> None:
    add_document(rag_client, rag_headers, "Refund policy", POLICY)
    response = rag_client.post(
        "/api/v1/ai/ask", json={"question": "Who painted the Mona Lisa?"}, headers=rag_headers
    )
    body = response.get_json()
    assert body["data"]["citations"] == []
    assert "no_context" in {warning["code"] for warning in body["warnings"]}


def test_the_model_gets_numbered_sources(
    make_stub_rag_app: Callable[..., OpenAPI], sign_in: SignIn, upstream: Upstream
) -> None:
    app = make_stub_rag_app(rag_min_score=0.05)
    client, headers = app.test_client(), sign_in(app)
    add_document(client, headers, "Refund policy", POLICY)
    upstream.reset()
    upstream.queue(Text("Within five business days [1]."))

    response = client.post(
        "/api/v1/ai/ask", json={"question": "refunds paid back", "k": 3}, headers=headers
    )
    assert response.status_code == 200, response.get_json()
    data = response.get_json()["data"]
    assert data["content"] == "Within five business days [1]."
    assert [c["title"] for c in data["citations"]] == ["Refund policy"]
    (chat,) = [r for r in upstream.requests if not r.path.split("?")[0].endswith("/embeddings")]
    prompt = sent_messages(chat)[-1]["content"]
    assert "[1] Refund policy (part 1)\n" + POLICY in prompt
    assert prompt.rstrip().endswith("Question: refunds paid back")


def test_a_streamed_answer_sends_the_citations_first(
    rag_client: FlaskClient, rag_headers: dict[str, str]
) -> None:
    refunds = add_document(rag_client, rag_headers, "Refund policy", POLICY)
    response = rag_client.post(
        "/api/v1/ai/ask",
        json={"question": "Can gift cards be refunded?", "stream": True},
        headers=rag_headers,
    )
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    events = parse_events(response.get_data(as_text=True))
    names = [name for name, _ in events]
    assert names[0] == "citations"
    assert names[1] == "delta"
    assert names[-1] == "done"
    assert events[0][1]["citations"][0]["document_id"] == refunds["id"]
    text = "".join(data["content"] for name, data in events if name == "delta")
    assert "Gift cards cannot be refunded." in text


def test_the_search_documents_tool_reads_the_callers_documents(
    rag_client: FlaskClient, rag_headers: dict[str, str]
) -> None:
    refunds = add_document(rag_client, rag_headers, "Refund policy", POLICY)
    tools = rag_client.get("/api/v1/ai/tools", headers=rag_headers).get_json()["data"]
    assert "search_documents" in {tool["name"] for tool in tools}
    response = rag_client.post(
        "/api/v1/ai/complete",
        json={
            "messages": [{"role": "user", "content": 'search_documents {"query": "gift cards"}'}],
            "tools": ["search_documents"],
        },
        headers=rag_headers,
    )
    assert response.status_code == 200, response.get_json()
    (step,) = response.get_json()["data"]["steps"]
    assert step["tool"] == "search_documents"
    assert step["result"]["results"][0]["document_id"] == refunds["id"]
    assert json.loads(json.dumps(step["result"]))["results"][0]["title"] == "Refund policy"
