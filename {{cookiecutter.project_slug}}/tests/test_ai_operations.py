"""`flask ai` and `flask deploy check` for the AI provider, and the zone of AI timestamps."""

from __future__ import annotations

from collections.abc import Callable

from flask_openapi3 import OpenAPI

from .upstream import Text, Upstream, json_body


def test_test_connection_does_not_pass_on_the_offline_provider(
    make_app: Callable[..., OpenAPI],
) -> None:
    result = make_app(ai_provider="fake").test_cli_runner().invoke(args=["ai", "test-connection"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: not tested: only the offline provider")


def test_test_connection_reaches_the_provider(
    make_ai_app: Callable[..., OpenAPI], upstream: Upstream
) -> None:
    upstream.queue(Text("pong"))
    result = make_ai_app().test_cli_runner().invoke(args=["ai", "test-connection"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK: {{ cookiecutter.ai_provider }}")


def test_clear_cache_says_the_cache_is_per_process_without_redis(
    make_app: Callable[..., OpenAPI],
) -> None:
    result = make_app(redis_url=None).test_cli_runner().invoke(args=["ai", "clear-cache"])
    assert result.exit_code == 0
    assert "this process only" in result.output


def test_deploy_check_names_the_offline_provider(make_app: Callable[..., OpenAPI]) -> None:
    result = make_app(ai_provider="fake").test_cli_runner().invoke(args=["deploy", "check"])
    assert result.exit_code == 1
    assert "- the offline provider answers" in result.output


def test_conversation_times_are_utc_with_z(
    make_ai_app: Callable[..., OpenAPI], upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    client = make_ai_app().test_client()
    created = json_body(
        client.post("/api/v1/ai/conversations", json={"title": "Zone"}, headers=ai_headers)
    )["data"]
    upstream.queue(Text("hello"))
    path = f"/api/v1/ai/conversations/{created['id']}"
    client.post(f"{path}/messages", json={"content": "hi"}, headers=ai_headers)
    detail = json_body(client.get(path, headers=ai_headers))["data"]
    stamps = [detail["created_at"], detail["updated_at"]]
    stamps += [message["created_at"] for message in detail["messages"]]
    assert len(stamps) == 4  # the conversation, the question and the answer
    assert all(stamp.endswith("Z") for stamp in stamps), stamps
