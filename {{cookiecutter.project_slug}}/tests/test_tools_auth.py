"""Who may use tools, and what they see: another user's items never, a read-only user may."""

from __future__ import annotations

from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI

from .auth_fixtures import signed_in
from .test_tools import ask, create_item, post
from .upstream import Call, Text, ToolUse, Upstream, json_body


def test_search_items_never_shows_another_users_items(
    ai_client: FlaskClient,
    upstream: Upstream,
    ai_headers: dict[str, str],
    ai_app: OpenAPI,
) -> None:
    mine = create_item(ai_client, "Green apple", ai_headers)
    create_item(ai_client, "Red apple", signed_in(ai_app))
    upstream.queue(ToolUse([Call("search_items", {"query": "apple"})]), Text("One apple."))

    response = post(ai_client, "complete", ask("search_items"), ai_headers)

    [step] = json_body(response)["data"]["steps"]
    assert [item["id"] for item in step["result"]["items"]] == [mine]
    assert step["result"]["total"] == 1
    assert "Red apple" not in str(upstream.requests[1].body)


def test_a_readonly_user_may_use_tools(
    ai_app: OpenAPI, ai_client: FlaskClient, upstream: Upstream
) -> None:
    upstream.queue(ToolUse([Call("search_items", {"query": "apple"})]), Text("Nothing."))

    response = post(ai_client, "complete", ask("search_items"), signed_in(ai_app, "readonly"))

    assert response.status_code == 200, response.json
    [step] = json_body(response)["data"]["steps"]
    assert step["result"] == {"items": [], "total": 0}
