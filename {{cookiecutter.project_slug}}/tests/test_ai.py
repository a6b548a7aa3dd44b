"""AI completions, streaming, structured output, caching, budgets and usage, through the real
{{ cookiecutter.ai_provider }} SDK against the local stub provider (tests/upstream.py)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI

from {{ cookiecutter.package_name }}.ai import completion as ai_service
from {{ cookiecutter.package_name }}.ai.errors import BudgetExceeded
from {{ cookiecutter.package_name }}.ai.models import CompletionRequest
from {{ cookiecutter.package_name }}.ai.usage import check_budget, usage_summary
from {{ cookiecutter.package_name }}.core.identity import Caller

from .upstream import (
    MODEL,
    OFFLINE,
    PROVIDER,
    Text,
    Upstream,
    expected_path,
    json_body,
    parse_events,
    sent_messages,
)

HELLO = {"messages": [{"role": "user", "content": "Say hello"}]}


def post(client: FlaskClient, path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    return client.post(f"/api/v1/ai/{path}", json=body, headers=headers)


def test_completion_goes_through_the_provider_sdk(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    upstream.queue(Text("Hello there!", prompt_tokens=7, completion_tokens=3))
    body = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello"},
        ],
        "temperature": 0.2,
        "max_tokens": 50,
    }

    response = post(ai_client, "complete", body, ai_headers)

    assert response.status_code == 200, response.json
    assert response.json["success"] is True
    assert response.json["warnings"] == []
    data = response.json["data"]
    assert data["content"] == "Hello there!"
    assert data["role"] == "assistant"
    assert data["finish_reason"] == "stop"
    assert data["model"] == MODEL
    assert data["usage"] == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    [sent] = upstream.requests
    assert sent.path.split("?")[0] == expected_path()
    assert sent_messages(sent) == body["messages"]
    assert sent.body["model"] == MODEL
    assert sent.body["max_tokens"] == 50
{%- if cookiecutter.ai_provider == "anthropic" %}
    assert "temperature" not in sent.body  # not a parameter of the current Messages API
    assert "anthropic-version" in sent.headers
    # The SDK sends the key as `x-api-key` or as a bearer token, depending on its version.
    assert "test-key" in (sent.headers.get("x-api-key"), sent.headers.get("authorization", "")[7:])
    assert all(m["role"] != "system" for m in sent.body["messages"])
{%- elif cookiecutter.ai_provider == "azure_openai" %}
    assert sent.body["temperature"] == 0.2
    assert sent.headers["api-key"] == "test-key"
    assert "api-version=" in sent.path
{%- else %}
    assert sent.body["temperature"] == 0.2
    assert sent.headers["authorization"] == "Bearer test-key"
{%- endif %}


def test_offline_provider_answers_with_a_warning(
    make_app: Callable[..., OpenAPI], upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    client = make_app(**OFFLINE).test_client()

    first = post(client, "complete", HELLO, ai_headers)
    second = post(client, "complete", HELLO, ai_headers)

    assert first.status_code == 200, first.json
    assert [w["code"] for w in first.json["warnings"]] == ["offline_provider"]
    assert "Say hello" in first.json["data"]["content"]
    assert first.json["data"]["content"] == second.json["data"]["content"]  # deterministic
    assert upstream.requests == []


def test_stream_sends_deltas_then_done_with_usage(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    parts = ["One", " two", " three"]
    upstream.queue(Text("One two three", chunks=parts, prompt_tokens=4, completion_tokens=3))

    response = post(ai_client, "stream", HELLO, ai_headers)

    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    events = parse_events(response.get_data(as_text=True))
    assert [name for name, _ in events] == ["delta", "delta", "delta", "done"]
    assert "".join(data["content"] for name, data in events if name == "delta") == "One two three"
    done = events[-1][1]
    assert done["finish_reason"] == "stop"
    assert done["usage"] == {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}
    assert upstream.requests[0].body["stream"] is True


def test_stream_flushes_each_chunk_as_it_arrives(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    # The provider sends its first word and waits: the client must have that word by then.
    hold = threading.Event()
    upstream.queue(Text("a b c d", hold=hold))

    response = ai_client.post("/api/v1/ai/stream", json=HELLO, headers=ai_headers, buffered=False)
    pieces = response.iter_encoded()
    before = b""
    while b"event: delta" not in before:
        before += next(pieces)
    hold.set()
    after = b"".join(pieces)
    response.close()

    assert parse_events(before.decode()) == [("delta", {"content": "a"})]
    events = parse_events(after.decode())
    assert [data["content"] for name, data in events if name == "delta"] == [" b", " c", " d"]
    assert events[-1][0] == "done"


def test_calls_and_streams_share_one_connection_to_the_provider(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    # A connection per call would cost each call a new TCP (and TLS) handshake with a real
    # provider.
    assert post(ai_client, "complete", HELLO, ai_headers).status_code == 200
    opened = upstream.connections  # 1, or 0 if this app's client had one from the test before

    for path in ("stream", "complete", "stream", "stream"):
        response = post(ai_client, path, HELLO, ai_headers)
        assert response.status_code == 200
        assert response.get_data(as_text=True)  # the whole reply

    assert len(upstream.requests) == 5
    assert upstream.connections == opened


def test_client_disconnect_stops_the_upstream_call(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    upstream.queue(Text(" ".join(["word"] * 40), chunk_delay=0.05))

    response = ai_client.post("/api/v1/ai/stream", json=HELLO, headers=ai_headers, buffered=False)
    first = next(iter(response.response))
    response.close()  # the client goes away after the first event

    assert b"event: delta" in first
    deadline = time.monotonic() + 3
    while upstream.disconnects == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert upstream.disconnects == 1


PERSON_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


def test_structured_output_valid_first_time(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    upstream.queue(Text('```json\n{"name": "Ada", "age": 36}\n```'))

    response = post(ai_client, "complete", {**HELLO, "response_schema": PERSON_SCHEMA}, ai_headers)

    assert response.status_code == 200, response.json
    assert response.json["data"]["parsed"] == {"name": "Ada", "age": 36}
    assert response.json["warnings"] == []
    [sent] = upstream.requests
    system = sent_messages(sent)[0]
    assert system["role"] == "system"
    assert '"additionalProperties": false' in system["content"]  # the schema is in the prompt


def test_structured_output_is_reasked_with_the_validation_error(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    upstream.queue(
        Text('{"name": "Ada", "age": "old"}', prompt_tokens=20, completion_tokens=8),
        Text('{"name": "Ada", "age": 36}', prompt_tokens=40, completion_tokens=8),
    )

    response = post(ai_client, "complete", {**HELLO, "response_schema": PERSON_SCHEMA}, ai_headers)

    assert response.status_code == 200, response.json
    data = response.json["data"]
    assert data["parsed"] == {"name": "Ada", "age": 36}
    assert data["usage"] == {"prompt_tokens": 60, "completion_tokens": 16, "total_tokens": 76}
    assert [w["code"] for w in response.json["warnings"]] == ["retried"]
    first, second = (sent_messages(r) for r in upstream.requests)
    assert second[: len(first)] == first  # the caller's messages, unchanged
    assert second[len(first)] == {"role": "assistant", "content": '{"name": "Ada", "age": "old"}'}
    reask = second[-1]
    assert reask["role"] == "user"
    assert "$.age" in reask["content"]
    assert "is not of type 'integer'" in reask["content"]


def test_structured_output_never_valid_is_502_with_usage_summed(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    upstream.queue(*[Text("not json at all", prompt_tokens=10, completion_tokens=5)] * 3)

    response = post(ai_client, "complete", {**HELLO, "response_schema": PERSON_SCHEMA}, ai_headers)

    assert response.status_code == 502
    assert response.json["code"] == "ai_provider_error"
    details = response.json["details"]
    assert details["errors"][0]["message"].startswith("not valid JSON")
    assert details["usage"]["total_tokens"] == 45  # three attempts (AI_MAX_RETRIES=2)
    assert len(upstream.requests) == 3
    usage = json_body(ai_client.get("/api/v1/ai/usage", headers=ai_headers))["data"]
    assert usage["total_tokens"] == 45


def test_streamed_structured_output_is_parsed_when_done(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    upstream.queue(Text('{"name": "Ada", "age": 36}'), Text('{"name": "Ada"}'))
    body = {**HELLO, "response_schema": PERSON_SCHEMA}

    valid = parse_events(post(ai_client, "stream", body, ai_headers).get_data(as_text=True))
    invalid = parse_events(post(ai_client, "stream", body, ai_headers).get_data(as_text=True))

    assert valid[-1] == ("done", valid[-1][1])
    assert valid[-1][1]["parsed"] == {"name": "Ada", "age": 36}
    assert invalid[-1][0] == "error"
    assert invalid[-1][1]["code"] == "ai_provider_error"
    assert "'age' is a required property" in invalid[-1][1]["details"]["errors"][0]["message"]


def test_invalid_response_schema_is_422(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    body = {**HELLO, "response_schema": {"type": "no-such-type"}}

    response = post(ai_client, "complete", body, ai_headers)

    assert response.status_code == 422
    assert response.json["details"]["errors"][0]["loc"][-1] == "response_schema"
    assert upstream.requests == []


@pytest.mark.parametrize(
    "body",
    [
        {"messages": []},
        {"messages": [{"role": "robot", "content": "hi"}]},
        {"messages": [{"role": "user", "content": "hi"}], "temperature": "0"},
        {"messages": [{"role": "user", "content": "hi"}], "stream": True},
    ],
)
def test_invalid_bodies_are_422(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str], body: dict[str, Any]
) -> None:
    response = post(ai_client, "complete", body, ai_headers)

    assert response.status_code == 422
    assert response.json["code"] == "validation_error"
    assert upstream.requests == []


def test_identical_deterministic_request_is_served_from_cache(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    upstream.queue(Text("cached answer"))
    body = {**HELLO, "temperature": 0}

    first = post(ai_client, "complete", body, ai_headers)
    second = post(ai_client, "complete", body, ai_headers)
    warm = post(ai_client, "complete", {**body, "temperature": 0.5}, ai_headers)

    assert first.json["data"]["cached"] is False
    assert second.json["data"]["content"] == "cached answer"
    assert second.json["data"]["cached"] is True
    assert warm.json["data"]["cached"] is False
    assert len(upstream.requests) == 2  # the cache hit made no call


def test_clear_cache_command_empties_the_cache(
    ai_app: OpenAPI, ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    body = {**HELLO, "temperature": 0}
    post(ai_client, "complete", body, ai_headers)

    result = ai_app.test_cli_runner().invoke(args=["ai", "clear-cache"])
    post(ai_client, "complete", body, ai_headers)

    assert result.exit_code == 0, result.output
    assert result.output.startswith("Removed 1 cached AI responses")  # with or without Redis
    assert len(upstream.requests) == 2


def metric(client: FlaskClient, name: str, **labels: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_move(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    labels = {"provider": PROVIDER, "model": MODEL}
    requests_before = metric(ai_client, "ai_requests_total", status="ok", **labels)
    tokens_before = metric(ai_client, "ai_tokens_total", kind="completion", **labels)
    ttft_before = metric(ai_client, "ai_time_to_first_token_seconds_count", **labels)
    upstream.queue(Text("hi", completion_tokens=2), Text("streamed", completion_tokens=3))

    post(ai_client, "complete", HELLO, ai_headers)
    post(ai_client, "stream", HELLO, ai_headers).get_data()

    assert metric(ai_client, "ai_requests_total", status="ok", **labels) == requests_before + 2
    assert metric(ai_client, "ai_tokens_total", kind="completion", **labels) == tokens_before + 5
    assert metric(ai_client, "ai_time_to_first_token_seconds_count", **labels) == ttft_before + 1


def test_usage_reports_totals_and_budget(
    make_ai_app: Callable[..., OpenAPI], upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    client = make_ai_app(ai_token_budget_daily=1000).test_client()
    upstream.queue(Text("a", prompt_tokens=10, completion_tokens=5), Text("b", completion_tokens=7))

    post(client, "complete", HELLO, ai_headers)
    post(client, "stream", HELLO, ai_headers).get_data()
    response = client.get("/api/v1/ai/usage", headers=ai_headers)

    assert response.status_code == 200
    assert json_body(response)["data"] == {
        "total_requests": 2,
        "total_tokens": 32,
        "today_tokens": 32,
        "budget": 1000,
        "remaining": 968,
    }


def test_budgets_and_daily_totals_beyond_32_bits(
    make_ai_app: Callable[..., OpenAPI], upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    client = make_ai_app(ai_token_budget_daily=4_000_000_000).test_client()
    upstream.queue(*[Text("big", prompt_tokens=1_500_000_000, completion_tokens=1)] * 2)

    statuses = [post(client, "complete", HELLO, ai_headers).status_code for _ in range(2)]
    usage = json_body(client.get("/api/v1/ai/usage", headers=ai_headers))["data"]

    assert statuses == [200, 200]
    assert usage["today_tokens"] == 3_000_000_002
    assert usage["remaining"] == 999_999_998


def test_budget_refuses_once_used_up_and_the_crossing_call_completes(
    make_ai_app: Callable[..., OpenAPI], upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    client = make_ai_app(ai_token_budget_daily=20).test_client()

    first = post(client, "complete", HELLO, ai_headers)  # 15 of 20
    second = post(client, "complete", HELLO, ai_headers)  # crosses the line: 30 of 20
    third = post(client, "complete", HELLO, ai_headers)

    assert first.status_code == 200
    assert [w["code"] for w in first.json["warnings"]] == []
    assert second.status_code == 200
    assert "high_token_usage" in [w["code"] for w in second.json["warnings"]]
    assert third.status_code == 429
    assert third.json["code"] == "budget_exceeded"
    retry_after = int(third.headers["Retry-After"])
    assert 0 < retry_after <= 24 * 3600
    assert len(upstream.requests) == 2
    usage = json_body(client.get("/api/v1/ai/usage", headers=ai_headers))["data"]
    assert usage["remaining"] == 0


def test_budget_counts_streamed_calls(
    make_ai_app: Callable[..., OpenAPI], upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    client = make_ai_app(ai_token_budget_daily=10).test_client()

    streamed = post(client, "stream", HELLO, ai_headers)
    assert parse_events(streamed.get_data(as_text=True))[-1][0] == "done"
    refused = post(client, "stream", HELLO, ai_headers)

    assert refused.status_code == 429
    assert refused.mimetype == "application/json"  # refused before any event
    assert refused.json["code"] == "budget_exceeded"
    assert "Retry-After" in refused.headers


def test_budget_holds_under_concurrent_calls(
    make_ai_app: Callable[..., OpenAPI], upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    # Each call reserves its prompt plus max_tokens (about 45 tokens) while in flight, so with a
    # budget of 100 only three of six simultaneous calls can start.
    app = make_ai_app(ai_token_budget_daily=100)
    upstream.queue(*[Text("slow", delay=0.5)] * 6)
    body = {**HELLO, "max_tokens": 40}
    statuses: list[int] = []

    def call() -> None:
        statuses.append(post(app.test_client(), "complete", body, ai_headers).status_code)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200, 200, 200, 429, 429, 429]
    assert len(upstream.requests) == 3


def test_background_completion_runs_without_a_request_and_counts_a_job_once(
    make_ai_app: Callable[..., OpenAPI], upstream: Upstream
) -> None:
    app = make_ai_app(ai_token_budget_daily=20)
    body = CompletionRequest.model_validate(HELLO)
    owner = "user:42"
    caller = Caller(owner, user_id=42)

    with app.app_context():
        first = ai_service.complete(body, caller, request_id="job-1")
        again = ai_service.complete(body, caller, request_id="job-1")  # redelivered
        summary = usage_summary(owner)
        ai_service.complete(body, caller, request_id="job-2")
        with pytest.raises(BudgetExceeded):
            check_budget(owner)

    assert first.data.content == again.data.content == "Hello from the stub."
    assert summary.total_requests == 1
    assert summary.total_tokens == 15


def test_ai_rate_limit_is_per_caller(
    make_ai_app: Callable[..., OpenAPI], upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    client = make_ai_app(rate_limit_ai="2 per minute").test_client()

    statuses = [post(client, "complete", HELLO, ai_headers).status_code for _ in range(3)]
    limited = post(client, "complete", HELLO, ai_headers)

    assert statuses == [200, 200, 429]
    assert limited.json["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1


def test_truncated_reply_is_flagged(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    upstream.queue(Text("cut sho", finish_reason="length"))

    response = post(ai_client, "complete", {**HELLO, "max_tokens": 3}, ai_headers)

    assert response.json["data"]["finish_reason"] == "length"
    assert [w["code"] for w in response.json["warnings"]] == ["truncated"]


def test_test_connection_command_makes_a_real_call(ai_app: OpenAPI, upstream: Upstream) -> None:
    upstream.queue(Text("pong"))

    result = ai_app.test_cli_runner().invoke(args=["ai", "test-connection"])

    assert result.exit_code == 0, result.output
    assert re.search(rf"OK: {PROVIDER} \({MODEL}\) answered in [\d.]+ ms: 'pong'", result.output)
    assert len(upstream.requests) == 1


def test_test_connection_command_reports_a_failure(
    make_ai_app: Callable[..., OpenAPI], upstream: Upstream
) -> None:
    upstream.queue(*[Text("late", delay=1.0)] * 2)
    app = make_ai_app(ai_timeout=0.3, ai_max_retries=0)

    result = app.test_cli_runner().invoke(args=["ai", "test-connection"])

    assert result.exit_code == 1
    assert "did not answer in time" in result.output


def test_show_stats_command_lists_usage(
    ai_app: OpenAPI, ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    post(ai_client, "complete", HELLO, ai_headers)

    result = ai_app.test_cli_runner().invoke(args=["ai", "show-stats"])

    assert result.exit_code == 0, result.output
    assert f'"provider": "{PROVIDER}"' in result.output
    assert '"requests": 1' in result.output
    assert '"tokens": 15' in result.output


def test_health_reports_the_ai_configuration(ai_client: FlaskClient) -> None:
    check = json_body(ai_client.get("/health"))["checks"]["ai_service"]

    assert check["status"] == "ok"
    assert PROVIDER in check["detail"]
    assert MODEL in check["detail"]
{%- if not cookiecutter.use_auth %}


def test_usage_is_counted_per_client_address(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    post(ai_client, "complete", HELLO, ai_headers)

    mine = json_body(ai_client.get("/api/v1/ai/usage"))["data"]
    elsewhere = {"REMOTE_ADDR": "192.0.2.7"}
    theirs = json_body(ai_client.get("/api/v1/ai/usage", environ_base=elsewhere))["data"]

    assert mine["total_requests"] == 1
    assert theirs["total_requests"] == 0
{%- endif %}
