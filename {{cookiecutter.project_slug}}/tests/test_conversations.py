"""Conversations: history persisted in the database and replayed to the provider in order."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from .upstream import Status, Text, Upstream, json_body, parse_events, sent_messages

BASE = "/api/v1/ai/conversations"


def start(client: FlaskClient, headers: dict[str, str], **body: Any) -> int:
    response = client.post(BASE, json=body, headers=headers)
    assert response.status_code == 201, response.json
    conversation_id: int = json_body(response)["data"]["id"]
    return conversation_id


def history(client: FlaskClient, headers: dict[str, str], conversation_id: int) -> Any:
    return json_body(client.get(f"{BASE}/{conversation_id}", headers=headers))["data"]


def say(client: FlaskClient, headers: dict[str, str], conversation_id: int, text: str) -> Any:
    return client.post(
        f"{BASE}/{conversation_id}/messages", json={"content": text}, headers=headers
    )


def test_history_is_persisted_and_replayed_in_order(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    conversation_id = start(ai_client, ai_headers, system_prompt="You are a pirate.")
    upstream.queue(Text("Ahoy!"), Text("Arr, ye be Sam."))

    first = say(ai_client, ai_headers, conversation_id, "Hello, I am Sam.")
    second = say(ai_client, ai_headers, conversation_id, "What is my name?")

    assert first.status_code == 200, first.json
    assert first.json["data"]["message"]["content"] == "Ahoy!"
    assert second.json["data"]["message"]["content"] == "Arr, ye be Sam."
    assert second.json["data"]["usage"]["total_tokens"] == 15
    assert sent_messages(upstream.requests[1]) == [
        {"role": "system", "content": "You are a pirate."},
        {"role": "user", "content": "Hello, I am Sam."},
        {"role": "assistant", "content": "Ahoy!"},
        {"role": "user", "content": "What is my name?"},
    ]
    detail = history(ai_client, ai_headers, conversation_id)
    assert [(m["role"], m["content"]) for m in detail["messages"]] == [
        ("user", "Hello, I am Sam."),
        ("assistant", "Ahoy!"),
        ("user", "What is my name?"),
        ("assistant", "Arr, ye be Sam."),
    ]
    assert detail["title"] == "Hello, I am Sam."


def test_conversations_are_listed_newest_first(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    older = start(ai_client, ai_headers, title="Older")
    newer = start(ai_client, ai_headers, title="Newer")

    response = ai_client.get(BASE, headers=ai_headers)

    assert response.status_code == 200
    assert json_body(response)["data"]["total"] == 2
    assert [c["id"] for c in json_body(response)["data"]["items"]] == [newer, older]


def test_streamed_message_is_stored_when_done(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    conversation_id = start(ai_client, ai_headers)
    upstream.queue(Text("Streamed reply here"))

    response = ai_client.post(
        f"{BASE}/{conversation_id}/messages",
        json={"content": "Stream it", "stream": True},
        headers=ai_headers,
    )

    events = parse_events(response.get_data(as_text=True))
    assert events[-1][0] == "done"
    text = "".join(data["content"] for name, data in events if name == "delta")
    assert text == "Streamed reply here"
    detail = history(ai_client, ai_headers, conversation_id)
    assert [m["content"] for m in detail["messages"]] == ["Stream it", "Streamed reply here"]


def test_failed_reply_stores_nothing(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    conversation_id = start(ai_client, ai_headers)
    upstream.queue(*[Status(500)] * 3)

    response = say(ai_client, ai_headers, conversation_id, "Hello?")

    assert response.status_code == 502
    detail = history(ai_client, ai_headers, conversation_id)
    assert detail["messages"] == []


def test_unknown_conversation_is_404(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    assert ai_client.get(f"{BASE}/999", headers=ai_headers).status_code == 404
    assert say(ai_client, ai_headers, 999, "hi").status_code == 404
    assert upstream.requests == []
{%- if not cookiecutter.use_auth %}


def test_another_clients_conversation_is_404(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    conversation_id = start(ai_client, ai_headers)
    elsewhere = {"REMOTE_ADDR": "192.0.2.7"}

    assert ai_client.get(f"{BASE}/{conversation_id}", environ_base=elsewhere).status_code == 404
    assert json_body(ai_client.get(BASE, environ_base=elsewhere))["data"]["total"] == 0
{%- endif %}
