"""The AI routes with users: tokens required, usage and conversations per user, read-only users."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI

from .auth_fixtures import bearer, signed_in
from .test_ai import HELLO, post
from .test_auth_faults import BAD_TOKENS, forge
from .test_conversations import BASE, say, start
from .test_faults import assert_error
from .upstream import Upstream, json_body

# AI routes that need a token: each one must refuse every bad token the same way.
PROTECTED_CALLS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/api/v1/ai/complete", HELLO),
    ("POST", "/api/v1/ai/stream", HELLO),
    ("GET", "/api/v1/ai/usage", None),
    ("GET", BASE, None),
    ("POST", BASE, {"title": "Forged"}),
]


@pytest.fixture
def ai_other_headers(ai_app: OpenAPI) -> dict[str, str]:
    return signed_in(ai_app)


@pytest.fixture
def ai_readonly_headers(ai_app: OpenAPI) -> dict[str, str]:
    return signed_in(ai_app, "readonly")


def test_ai_routes_need_a_signed_in_user(ai_client: FlaskClient, upstream: Upstream) -> None:
    for method, path, body in PROTECTED_CALLS:
        assert_error(ai_client.open(path, method=method, json=body), 401, "unauthorized")
    assert upstream.requests == []


@pytest.mark.parametrize(("kind", "code"), BAD_TOKENS)
def test_bad_tokens_are_401_on_the_ai_routes(
    kind: str,
    code: str,
    app: OpenAPI,
    client: FlaskClient,
    register: Callable[..., dict[str, Any]],
) -> None:
    headers = bearer(forge(kind, app, client, register()))
    for method, path, body in PROTECTED_CALLS:
        assert_error(client.open(path, method=method, json=body, headers=headers), 401, code)


def test_readonly_users_may_ask_the_model(
    ai_client: FlaskClient, upstream: Upstream, ai_readonly_headers: dict[str, str]
) -> None:
    response = post(ai_client, "complete", HELLO, ai_readonly_headers)

    assert response.status_code == 200, response.json


def test_readonly_users_cannot_store_conversations(
    ai_client: FlaskClient, ai_readonly_headers: dict[str, str]
) -> None:
    for body in ({}, {"title": "Not allowed"}):
        response = ai_client.post(BASE, json=body, headers=ai_readonly_headers)

        assert_error(response, 403, "forbidden")


def test_usage_is_counted_per_user(
    ai_client: FlaskClient,
    upstream: Upstream,
    ai_headers: dict[str, str],
    ai_other_headers: dict[str, str],
) -> None:
    post(ai_client, "complete", HELLO, ai_headers)

    mine = json_body(ai_client.get("/api/v1/ai/usage", headers=ai_headers))["data"]
    theirs = json_body(ai_client.get("/api/v1/ai/usage", headers=ai_other_headers))["data"]

    assert mine["total_requests"] == 1
    assert theirs["total_requests"] == 0


def test_another_users_conversation_is_404(
    ai_client: FlaskClient,
    upstream: Upstream,
    ai_headers: dict[str, str],
    ai_other_headers: dict[str, str],
) -> None:
    conversation_id = start(ai_client, ai_headers, title="Private")
    conversation = f"{BASE}/{conversation_id}"

    assert_error(ai_client.get(conversation, headers=ai_other_headers), 404, "not_found")
    assert_error(say(ai_client, ai_other_headers, conversation_id, "hi"), 404, "not_found")
    assert json_body(ai_client.get(BASE, headers=ai_other_headers))["data"]["total"] == 0
    assert upstream.requests == []
    assert ai_client.get(conversation, headers=ai_headers).status_code == 200
