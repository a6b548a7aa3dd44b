"""Faults of the AI feature's own data: conversations need the database, and answer 503 without it
(provider failures are in test_ai_errors.py)."""

from __future__ import annotations

from collections.abc import Callable

from flask_openapi3 import OpenAPI

from .core_fixtures import SignIn
from .relay import Relay
from .test_faults import assert_database_calls_fail

CONVERSATIONS = "/api/v1/ai/conversations"


def test_database_outage_is_503_for_conversations(
    make_app: Callable[..., OpenAPI], sign_in: SignIn, database_relay: tuple[Relay, str]
) -> None:
    relay, url = database_relay
    app = make_app(database_url=url)
    client = app.test_client()
    headers = sign_in(app)
    assert client.get(CONVERSATIONS, headers=headers).status_code == 200

    relay.cut()
    assert_database_calls_fail(
        client,
        headers,
        [
            ("GET", CONVERSATIONS, None),
            ("POST", CONVERSATIONS, {"title": "Started during an outage"}),
            ("GET", f"{CONVERSATIONS}/1", None),
        ],
    )

    relay.restore()
    assert client.get(CONVERSATIONS, headers=headers).status_code == 200
