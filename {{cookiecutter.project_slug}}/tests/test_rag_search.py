"""Search: the right document first for questions that paraphrase it, scores in [0, 1], and the
embeddings counted in the caller's usage and budget (offline embeddings unless said)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI

from .core_fixtures import SignIn
from .rag_fixtures import add_document, search
from .rag_stub import EMBEDDING_DIMENSIONS, embedding, embeddings_answer
from .upstream import Raw, Status, Upstream

# Every document shares words with others ("account", "days", "order", "card", "email"), so
# the right one must win on the words that matter, not on any word at all.
CORPUS = {
    "Refunds": "You can return an order within 30 days and get a refund. The money goes back to "
    "the card you paid with, usually five business days after we receive the parcel.",
    "Shipping": "Orders ship from our warehouse within two days. Delivery inside Europe takes "
    "three to five days; we email a tracking number when the parcel leaves.",
    "Account security": "To change your password, open account settings. We email a code to "
    "confirm it. After five failed sign-ins the account is locked for 30 minutes.",
    "Payment methods": "We accept credit cards, debit cards and bank transfers. A card payment "
    "is charged when the order ships; bank transfers must arrive within seven days.",
    "Closing an account": "To delete your account, email support from the address on the "
    "account. Your data is erased within 30 days; open orders are cancelled first.",
}
# (question, the document that answers it): paraphrases, sharing words with several documents.
QUESTIONS = [
    ("How long until my money is returned after I send a parcel back?", "Refunds"),
    ("When will the tracking number for my delivery arrive?", "Shipping"),
    ("My account got locked after wrong passwords, what now?", "Account security"),
    ("Which cards can I pay with?", "Payment methods"),
    ("How do I delete all my data?", "Closing an account"),
]


@pytest.fixture
def corpus(rag_client: FlaskClient, rag_headers: dict[str, str]) -> dict[str, int]:
    return {
        title: add_document(rag_client, rag_headers, title, text)["id"]
        for title, text in CORPUS.items()
    }


def test_the_right_document_comes_first(
    rag_client: FlaskClient, rag_headers: dict[str, str], corpus: dict[str, int]
) -> None:
    for question, answer in QUESTIONS:
        results = search(rag_client, rag_headers, question, k=5)
        titles = [result["title"] for result in results]
        assert results[0]["document_id"] == corpus[answer], (question, titles)
        scores = [result["score"] for result in results]
        assert scores == sorted(scores, reverse=True)
        assert all(0 <= score <= 1 for score in scores)
        assert scores[0] > scores[1], question  # a winner, not a tie broken by order


def test_k_bounds_the_results(
    rag_client: FlaskClient, rag_headers: dict[str, str], corpus: dict[str, int]
) -> None:
    assert len(search(rag_client, rag_headers, "account", k=2)) == 2
    assert len(search(rag_client, rag_headers, "account", k=50)) == len(corpus)
    hit = search(rag_client, rag_headers, "account", k=1)[0]
    assert set(hit) == {"document_id", "title", "chunk_index", "text", "score"}


def test_embeddings_count_toward_usage_and_budget(
    make_rag_app: Callable[..., OpenAPI], sign_in: SignIn
) -> None:
    app = make_rag_app(ai_token_budget_daily=60)
    client, headers = app.test_client(), sign_in(app)
    add_document(client, headers, "Big", "words " * 200)  # about 300 tokens: over the budget
    usage = client.get("/api/v1/ai/usage", headers=headers).get_json()["data"]
    assert usage["today_tokens"] >= 250
    assert usage["total_requests"] == 1

    refused = client.post("/api/v1/documents/search", json={"query": "words"}, headers=headers)
    assert refused.status_code == 429
    assert refused.get_json()["code"] == "budget_exceeded"
    assert int(refused.headers["Retry-After"]) > 0


def test_the_sdk_embeds_in_batches_and_query_vectors_are_cached(
    make_stub_rag_app: Callable[..., OpenAPI], sign_in: SignIn, upstream: Upstream
) -> None:
    app = make_stub_rag_app(embeddings_batch_size=2, rag_chunk_size=100, rag_chunk_overlap=0)
    client, headers = app.test_client(), sign_in(app)
    text = " ".join(f"Paragraph {n} is about the colour number {n}." for n in range(10))
    created = add_document(client, headers, "Colours", text)
    calls = [r for r in upstream.requests if r.path.split("?")[0].endswith("/embeddings")]
    assert created["chunks"] == sum(len(call.body["input"]) for call in calls) > 2
    assert [len(call.body["input"]) for call in calls][:-1] == [2] * (len(calls) - 1)
    assert calls[0].body["model"] == app.extensions["rag_embedder"].model

    upstream.reset()
    first = search(client, headers, "colour number 7")
    again = search(client, headers, "colour number 7")
    assert first == again
    assert len(upstream.requests) == 1  # the second search used the cached query vector
    assert "Paragraph 7 " in first[0]["text"]


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [
        (Status(500), 502, "ai_provider_error"),
        (Status(429, headers={"retry-after": "7"}), 503, "ai_unavailable"),
        (Status(200, delay=1.0), 504, "ai_timeout"),
    ],
)
def test_embeddings_failures_answer_like_completions(
    make_stub_rag_app: Callable[..., OpenAPI],
    sign_in: SignIn,
    upstream: Upstream,
    failure: Status,
    status: int,
    code: str,
) -> None:
    app = make_stub_rag_app(ai_max_retries=0, ai_timeout=0.5)
    client, headers = app.test_client(), sign_in(app)
    upstream.queue(failure)
    response = client.post("/api/v1/documents/search", json={"query": "anything"}, headers=headers)
    assert response.status_code == status, response.get_json()
    assert response.get_json()["code"] == code
    if status == 503:
        assert response.headers["Retry-After"] == "7"


def _embeddings_reply(*embeddings: object) -> Raw:
    return Raw(json.dumps(embeddings_answer(list(embeddings))).encode())


@pytest.mark.parametrize(
    "reply",
    [
        _embeddings_reply(),  # no vector for the query
        _embeddings_reply([0.5, 0.5]),  # far fewer dimensions than the service stores
        _embeddings_reply("not base64!"),
        _embeddings_reply(base64.b64encode(b"\x00\x00\x80").decode()),  # not whole float32s
        _embeddings_reply(["a"] * EMBEDDING_DIMENSIONS),
        Raw(b'{"data": "nothing"}'),
    ],
    ids=["no-vector", "wrong-dimensions", "bad-base64", "partial-float", "strings", "no-list"],
)
def test_an_unusable_embeddings_reply_is_502(
    make_stub_rag_app: Callable[..., OpenAPI],
    sign_in: SignIn,
    upstream: Upstream,
    reply: Raw,
    request: pytest.FixtureRequest,
) -> None:
    app = make_stub_rag_app(ai_max_retries=0)
    client, headers = app.test_client(), sign_in(app)
    query = {"query": f"a question never asked before {request.node.callspec.id}"}
    upstream.queue(reply)
    response = client.post("/api/v1/documents/search", json=query, headers=headers)
    assert response.status_code == 502, response.get_json()
    assert response.get_json()["code"] == "ai_provider_error"
    # Nothing unusable was kept: the same query asks again, and the good reply answers it.
    assert search(client, headers, query["query"]) == []


def test_vectors_sent_as_json_numbers_are_read_too(
    make_stub_rag_app: Callable[..., OpenAPI], sign_in: SignIn, upstream: Upstream
) -> None:
    app = make_stub_rag_app()
    client, headers = app.test_client(), sign_in(app)
    add_document(client, headers, "Refunds", "Refunds are paid back within five days.")
    vector = embedding("refunds paid", EMBEDDING_DIMENSIONS)
    upstream.queue(_embeddings_reply(vector))
    results = search(client, headers, "how are refunds handled")
    assert [result["text"] for result in results] == ["Refunds are paid back within five days."]
