"""Tools: the model's tool calls run by the service, through the real {{ cookiecutter.ai_provider }} SDK against the
local stub provider (single and parallel calls, streamed tool-call deltas, errors fed back, the
step limit), and every way a call or the loop can go wrong."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI
from werkzeug.test import TestResponse

from {{ cookiecutter.package_name }}.ai.tools import REGISTRY, ToolArguments, tool

from .upstream import (
    Call,
    Status,
    Text,
    ToolUse,
    Upstream,
    json_body,
    offered_tools,
    parse_events,
    sent_tool_calls,
    sent_tool_results,
)

ASK = [{"role": "user", "content": "What time is it?"}]


def ask(*tools: str, **extra: Any) -> dict[str, Any]:
    return {"messages": ASK, "tools": list(tools), **extra}


def post(
    client: FlaskClient, path: str, body: dict[str, Any], headers: dict[str, str]
) -> TestResponse:
    return client.post(f"/api/v1/ai/{path}", json=body, headers=headers)


def usage_of(client: FlaskClient, headers: dict[str, str]) -> Any:
    return json_body(client.get("/api/v1/ai/usage", headers=headers))["data"]


def create_item(client: FlaskClient, title: str, headers: dict[str, str]) -> int:
    response = client.post("/api/v1/items", json={"title": title}, headers=headers)
    assert response.status_code == 201, response.json
    item_id: int = json_body(response)["data"]["id"]
    return item_id


# -- tools that misbehave, registered for one test ----------------------------------------------


class NoArguments(ToolArguments):
    pass


@pytest.fixture
def faulty_tools() -> Iterator[threading.Event]:
    """Tools `explode` (raises), `refuse` (ValueError for the model) and `hang` (waits until the
    returned event is set, at the latest when the test ends)."""
    release = threading.Event()

    def explode(args: NoArguments) -> dict[str, str]:
        """Always fails."""
        raise RuntimeError("connection to db-secret-host refused")

    def refuse(args: NoArguments) -> dict[str, str]:
        """Declines."""
        raise ValueError("no data for today")

    def hang(args: NoArguments) -> dict[str, str]:
        """Takes too long."""
        release.wait(10)
        return {"late": "yes"}

    for function in (explode, refuse, hang):
        tool(function)
    yield release
    release.set()
    for name in ("explode", "refuse", "hang"):
        REGISTRY.pop(name, None)


# -- the catalogue ------------------------------------------------------------------------------


def test_tools_are_listed_with_their_argument_schemas(
    ai_client: FlaskClient, ai_headers: dict[str, str]
) -> None:
    response = ai_client.get("/api/v1/ai/tools", headers=ai_headers)

    assert response.status_code == 200
    tools = {entry["name"]: entry for entry in json_body(response)["data"]}
    assert {"current_time", "search_items"} <= set(tools)
    clock = tools["current_time"]
    assert clock["description"]
    assert clock["parameters"]["properties"]["timezone"]["default"] == "UTC"
    search = tools["search_items"]["parameters"]
    assert search["required"] == ["query"]
    assert search["properties"]["limit"]["maximum"] == 20


def test_an_unknown_tool_name_or_step_limit_is_422(
    ai_client: FlaskClient, ai_headers: dict[str, str], upstream: Upstream
) -> None:
    bodies = [ask("current_time", "rm_rf"), ask("current_time", max_steps=0), ask(max_steps=11)]
    for path in ("complete", "stream"):
        for body in bodies:
            response = post(ai_client, path, body, ai_headers)
            assert response.status_code == 422, (path, body)
            assert json_body(response)["code"] == "validation_error"
    error = json_body(post(ai_client, "complete", bodies[0], ai_headers))["details"]["errors"][0]
    assert error["loc"] == ["tools"]
    assert "rm_rf" in error["msg"]
    assert upstream.requests == []


# -- through the provider's SDK -----------------------------------------------------------------


def test_a_tool_call_is_run_and_its_result_sent_back(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    call = Call("current_time", {"timezone": "Europe/Paris"})
    upstream.queue(
        ToolUse([call], prompt_tokens=10, completion_tokens=5),
        Text("It is noon in Paris.", prompt_tokens=20, completion_tokens=6),
    )

    response = post(ai_client, "complete", ask("current_time"), ai_headers)

    assert response.status_code == 200, response.json
    data = json_body(response)["data"]
    assert data["content"] == "It is noon in Paris."
    assert data["finish_reason"] == "stop"
    assert data["usage"] == {"prompt_tokens": 30, "completion_tokens": 11, "total_tokens": 41}
    [step] = data["steps"]
    assert step["id"] == call.id
    assert step["tool"] == "current_time"
    assert step["arguments"] == {"timezone": "Europe/Paris"}
    assert step["result"]["timezone"] == "Europe/Paris"
    assert step["result"]["iso"][-6:] in ("+01:00", "+02:00")
    assert step["error"] is None
    assert step["duration_ms"] >= 0
    first, second = upstream.requests
    assert offered_tools(first) == offered_tools(second) == ["current_time"]
    assert sent_tool_calls(second) == [
        {"id": call.id, "name": "current_time", "arguments": call.text()}
    ]
    [result] = sent_tool_results(second)
    assert result["id"] == call.id
    assert result["content"] == step["result"]
    assert not result["is_error"]
    # One request, every model call counted.
    assert usage_of(ai_client, ai_headers)["total_tokens"] == 41


def test_parallel_calls_run_together_and_return_in_order(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    mine = create_item(ai_client, "Apple pie", ai_headers)
    clock = Call("current_time", {})
    search = Call("search_items", {"query": "apple", "limit": 3})
    upstream.queue(ToolUse([clock, search]), Text("You have one apple pie."))

    response = post(ai_client, "complete", ask("current_time", "search_items"), ai_headers)

    assert response.status_code == 200, response.json
    steps = json_body(response)["data"]["steps"]
    assert [step["id"] for step in steps] == [clock.id, search.id]
    assert steps[0]["result"]["timezone"] == "UTC"
    assert [item["id"] for item in steps[1]["result"]["items"]] == [mine]
    assert steps[1]["result"]["total"] == 1
    second = upstream.requests[1]
    assert [result["id"] for result in sent_tool_results(second)] == [clock.id, search.id]
{%- if cookiecutter.ai_provider == "anthropic" %}
    # Both results in the one user message that follows the assistant's tool_use blocks.
    last = second.body["messages"][-1]
    assert last["role"] == "user"
    assert [block["tool_use_id"] for block in last["content"]] == [clock.id, search.id]
{%- else %}
    # The assistant message with both calls, then one tool message per call.
    roles = [message["role"] for message in second.body["messages"]]
    assert roles[-3:] == ["assistant", "tool", "tool"]
{%- endif %}


def test_streamed_tool_call_deltas_are_assembled(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    tokyo = Call("current_time", {"timezone": "Asia/Tokyo"})
    utc = Call("current_time", {"timezone": "UTC"})
    upstream.queue(
        ToolUse([tokyo, utc], content="Checking.", piece=3),
        Text("Tokyo is nine hours ahead.", chunks=["Tokyo is", " nine hours ahead."]),
    )

    response = post(ai_client, "stream", ask("current_time"), ai_headers)

    assert response.status_code == 200
    events = parse_events(response.get_data(as_text=True))
    names = [name for name, _ in events]
    assert names == [
        "delta",
        "tool_call",
        "tool_call",
        "tool_result",
        "tool_result",
        "delta",
        "delta",
        "done",
    ]
    calls = [data for name, data in events if name == "tool_call"]
    assert calls == [
        {"id": tokyo.id, "tool": "current_time", "arguments": {"timezone": "Asia/Tokyo"}},
        {"id": utc.id, "tool": "current_time", "arguments": {"timezone": "UTC"}},
    ]
    results = [data for name, data in events if name == "tool_result"]
    assert [r["result"]["timezone"] for r in results] == ["Asia/Tokyo", "UTC"]
    text = "".join(data["content"] for name, data in events if name == "delta")
    assert text == "Checking.Tokyo is nine hours ahead."
    done = events[-1][1]
    assert done["usage"]["total_tokens"] == 30
    assert [step["id"] for step in done["steps"]] == [tokyo.id, utc.id]
    assert len(upstream.requests) == 2
    assert [r["id"] for r in sent_tool_results(upstream.requests[1])] == [tokyo.id, utc.id]
    assert usage_of(ai_client, ai_headers)["total_tokens"] == 30


def test_a_tool_error_is_fed_back_to_the_model(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    call = Call("current_time", {"timezone": "Mars/Olympus_Mons"})
    upstream.queue(ToolUse([call]), Text("I do not know that time zone."))

    response = post(ai_client, "complete", ask("current_time"), ai_headers)

    assert response.status_code == 200, response.json
    data = json_body(response)["data"]
    assert data["content"] == "I do not know that time zone."
    [step] = data["steps"]
    assert step["result"] is None
    assert "invalid arguments" in step["error"]
    assert "Mars/Olympus_Mons" in step["error"]
    [result] = sent_tool_results(upstream.requests[1])
    assert result["is_error"]
    assert result["content"] == {"error": step["error"]}


def test_max_steps_stops_the_loop_with_a_warning(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    upstream.queue(*(ToolUse([Call("current_time", {})]) for _ in range(3)))

    response = post(ai_client, "complete", ask("current_time", max_steps=2), ai_headers)

    assert response.status_code == 200, response.json
    body = json_body(response)
    assert [w["code"] for w in body["warnings"]] == ["max_steps_reached"]
    assert body["data"]["finish_reason"] == "tool_calls"
    assert len(body["data"]["steps"]) == 1  # the last call's tools are not run: no one reads them
    assert len(upstream.requests) == 2
    assert body["data"]["usage"]["total_tokens"] == 30


def test_max_steps_in_a_stream(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    upstream.queue(*(ToolUse([Call("current_time", {})]) for _ in range(2)))

    response = post(ai_client, "stream", ask("current_time", max_steps=2), ai_headers)

    events = parse_events(response.get_data(as_text=True))
    assert [name for name, _ in events] == ["tool_call", "tool_result", "done"]
    done = events[-1][1]
    assert done["finish_reason"] == "tool_calls"
    assert [w["code"] for w in done["warnings"]] == ["max_steps_reached"]
    assert len(upstream.requests) == 2


# -- calls that go wrong: each an error result, the loop goes on ---------------------------------


def test_a_tool_that_is_not_offered_is_unknown(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    invented = Call("launch_rockets", {"count": 3})
    not_offered = Call("search_items", {"query": "x"})
    upstream.queue(ToolUse([invented, not_offered]), Text("Sorry."))

    response = post(ai_client, "complete", ask("current_time"), ai_headers)

    assert response.status_code == 200, response.json
    steps = json_body(response)["data"]["steps"]
    assert [step["tool"] for step in steps] == ["launch_rockets", "search_items"]
    for step in steps:
        assert step["error"].startswith(f"unknown tool '{step['tool']}'")
        assert "current_time" in step["error"]
    assert all(r["is_error"] for r in sent_tool_results(upstream.requests[1]))


def test_arguments_that_are_not_json_are_an_error_result(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    # Streamed, the arguments arrive in pieces that a model may leave unfinished.
    broken = Call("current_time", '{"timezone": "Europe/')
    upstream.queue(ToolUse([broken]), Text("Let me try again later."))

    response = post(ai_client, "stream", ask("current_time"), ai_headers)

    events = parse_events(response.get_data(as_text=True))
    names = [name for name, _ in events]
    assert (names[:2], names[-1]) == (["tool_call", "tool_result"], "done")
    assert events[0][1]["arguments"] == '{"timezone": "Europe/'
    assert "not valid JSON" in events[1][1]["error"]
    [step] = events[-1][1]["steps"]
    assert step["error"] == events[1][1]["error"]
    assert sent_tool_results(upstream.requests[1])[0]["is_error"]


def test_a_tool_that_raises_is_an_error_result(
    ai_client: FlaskClient,
    upstream: Upstream,
    ai_headers: dict[str, str],
    faulty_tools: threading.Event,
) -> None:
    upstream.queue(ToolUse([Call("explode"), Call("refuse")]), Text("Both failed."))

    response = post(ai_client, "complete", ask("explode", "refuse"), ai_headers)

    assert response.status_code == 200, response.json
    explode, refuse = json_body(response)["data"]["steps"]
    # An unexpected exception is named, not described: it may carry internals.
    assert explode["error"] == "the tool failed unexpectedly (RuntimeError)"
    assert "secret" not in str(sent_tool_results(upstream.requests[1]))
    assert refuse["error"] == "the tool failed: no data for today"


def test_a_tool_that_hangs_times_out(
    make_ai_app: Callable[..., OpenAPI],
    upstream: Upstream,
    ai_headers: dict[str, str],
    faulty_tools: threading.Event,
) -> None:
    client = make_ai_app(ai_tool_timeout=0.2).test_client()
    upstream.queue(ToolUse([Call("hang"), Call("current_time")]), Text("The clock answered."))

    started = time.perf_counter()
    response = post(client, "complete", ask("hang", "current_time"), ai_headers)
    elapsed = time.perf_counter() - started

    assert response.status_code == 200, response.json
    hang, clock = json_body(response)["data"]["steps"]
    assert hang["error"] == "the tool did not finish within 0.2 seconds"
    assert 200 <= hang["duration_ms"] < 1000
    assert clock["result"]["timezone"] == "UTC"  # its neighbour still answered
    assert elapsed < 2
    faulty_tools.set()


def tool_metric(client: FlaskClient, name: str, tool: str, outcome: str | None = None) -> float:
    """A sample of /metrics (summed over the other labels)."""
    labels = [f'tool="{tool}"'] + ([f'outcome="{outcome}"'] if outcome else [])
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in client.get("/metrics").get_data(as_text=True).splitlines()
        if line.startswith(name + "{") and all(label in line for label in labels)
    )


def test_tool_calls_are_counted_by_tool_and_outcome(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    ok_before = tool_metric(ai_client, "ai_tool_calls_total", "current_time", "ok")
    bad_before = tool_metric(ai_client, "ai_tool_calls_total", "current_time", "invalid_arguments")
    unknown_before = tool_metric(ai_client, "ai_tool_calls_total", "unknown", "unknown_tool")
    timed_before = tool_metric(ai_client, "ai_tool_duration_seconds_count", "current_time")
    calls = [Call("current_time"), Call("current_time", {"timezone": "Nowhere"}), Call("nope")]
    upstream.queue(ToolUse(calls), Text("Done."))

    post(ai_client, "complete", ask("current_time"), ai_headers)

    assert tool_metric(ai_client, "ai_tool_calls_total", "current_time", "ok") == ok_before + 1
    invalid = tool_metric(ai_client, "ai_tool_calls_total", "current_time", "invalid_arguments")
    assert invalid == bad_before + 1
    unknown = tool_metric(ai_client, "ai_tool_calls_total", "unknown", "unknown_tool")
    assert unknown == unknown_before + 1
    timed = tool_metric(ai_client, "ai_tool_duration_seconds_count", "current_time")
    assert timed == timed_before + 2


# -- the provider failing half-way ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [
        (Status(500, "upstream broke"), 502, "ai_provider_error"),
        (Status(429, "slow down", headers={"retry-after": "1"}), 503, "ai_unavailable"),
        (Text("Too late.", delay=2.0), 504, "ai_timeout"),
    ],
)
def test_the_provider_failing_mid_loop_keeps_the_finished_usage(
    make_ai_app: Callable[..., OpenAPI],
    upstream: Upstream,
    ai_headers: dict[str, str],
    failure: Status | Text,
    status: int,
    code: str,
) -> None:
    client = make_ai_app(ai_max_retries=0, ai_timeout=1.0).test_client()
    first = ToolUse([Call("current_time", {})], prompt_tokens=10, completion_tokens=5)
    upstream.queue(first, failure)

    response = post(client, "complete", ask("current_time"), ai_headers)

    assert response.status_code == status
    body = json_body(response)
    assert body["code"] == code
    assert body["details"]["steps"] == 1
    assert body["details"]["usage"]["total_tokens"] == 15
    usage = usage_of(client, ai_headers)
    assert (usage["total_requests"], usage["total_tokens"]) == (1, 15)


def test_a_stream_failing_mid_loop_ends_with_an_error_event(
    make_ai_app: Callable[..., OpenAPI], upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    client = make_ai_app(ai_max_retries=0).test_client()
    upstream.queue(ToolUse([Call("current_time", {})]), Status(500))

    response = post(client, "stream", ask("current_time"), ai_headers)

    events = parse_events(response.get_data(as_text=True))
    assert [name for name, _ in events] == ["tool_call", "tool_result", "error"]
    assert events[-1][1]["code"] == "ai_provider_error"
    assert usage_of(client, ai_headers)["total_tokens"] == 15


def test_one_request_counts_once_against_the_rate_limit(
    make_ai_app: Callable[..., OpenAPI], upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    client = make_ai_app(rate_limit_ai="1 per minute").test_client()
    upstream.queue(ToolUse([Call("current_time", {})]), Text("Noon."))

    first = post(client, "complete", ask("current_time"), ai_headers)
    second = post(client, "complete", ask("current_time"), ai_headers)

    assert first.status_code == 200, first.json
    assert len(upstream.requests) == 2  # two model calls, one request
    assert second.status_code == 429


# -- conversations -------------------------------------------------------------------------------


def test_conversations_keep_tool_calls_and_replay_them(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    created = ai_client.post("/api/v1/ai/conversations", json={}, headers=ai_headers)
    url = f"/api/v1/ai/conversations/{json_body(created)['data']['id']}"
    call = Call("current_time", {"timezone": "UTC"})
    upstream.queue(ToolUse([call]), Text("It is noon."))

    turn = {"content": "What time is it?", "tools": ["current_time"]}
    reply = ai_client.post(f"{url}/messages", json=turn, headers=ai_headers)

    assert reply.status_code == 200, reply.json
    assert json_body(reply)["data"]["message"]["content"] == "It is noon."
    assert [step["id"] for step in json_body(reply)["data"]["steps"]] == [call.id]
    history = json_body(ai_client.get(url, headers=ai_headers))["data"]["messages"]
    assert [m["role"] for m in history] == ["user", "assistant", "tool", "assistant"]
    assert history[1]["tool_calls"] == [
        {"id": call.id, "tool": "current_time", "arguments": {"timezone": "UTC"}}
    ]
    assert history[2]["tool_call_id"] == call.id

    # The next turn with tools replays the calls and results in the provider's format ...
    upstream.queue(Text("Still noon."))
    again = {"content": "And now?", "tools": ["current_time"]}
    assert ai_client.post(f"{url}/messages", json=again, headers=ai_headers).status_code == 200
    replayed = upstream.requests[-1]
    assert sent_tool_calls(replayed) == [
        {"id": call.id, "name": "current_time", "arguments": call.text()}
    ]
    assert [r["id"] for r in sent_tool_results(replayed)] == [call.id]

    # ... one without tools, only the text.
    upstream.queue(Text("Bye."))
    plain = {"content": "Thanks"}
    assert ai_client.post(f"{url}/messages", json=plain, headers=ai_headers).status_code == 200
    assert sent_tool_calls(upstream.requests[-1]) == []
    assert sent_tool_results(upstream.requests[-1]) == []


def test_a_streamed_conversation_turn_keeps_its_tool_calls(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    created = ai_client.post("/api/v1/ai/conversations", json={}, headers=ai_headers)
    url = f"/api/v1/ai/conversations/{json_body(created)['data']['id']}"
    upstream.queue(ToolUse([Call("current_time", {})]), Text("Noon."))

    turn = {"content": "Time?", "tools": ["current_time"], "stream": True}
    response = ai_client.post(f"{url}/messages", json=turn, headers=ai_headers)

    assert parse_events(response.get_data(as_text=True))[-1][0] == "done"
    history = json_body(ai_client.get(url, headers=ai_headers))["data"]["messages"]
    assert [m["role"] for m in history] == ["user", "assistant", "tool", "assistant"]
    assert history[-1]["content"] == "Noon."


# -- the offline provider ------------------------------------------------------------------------


def test_the_offline_provider_calls_a_tool_named_in_the_question(
    make_app: Callable[..., OpenAPI], ai_headers: dict[str, str]
) -> None:
    client = make_app(ai_provider="fake").test_client()
    question = [{"role": "user", "content": "Use current_time to tell me the time."}]
    body = {"messages": question, "tools": ["current_time"]}

    response = post(client, "complete", body, ai_headers)

    assert response.status_code == 200, response.json
    data = json_body(response)["data"]
    [step] = data["steps"]
    assert (step["tool"], step["arguments"]) == ("current_time", {})
    assert step["result"]["iso"] in data["content"]
    assert data["content"].startswith("(offline reply) current_time returned:")
    assert "offline_provider" in [w["code"] for w in json_body(response)["warnings"]]


def test_the_offline_provider_passes_written_arguments_on(
    make_app: Callable[..., OpenAPI], ai_headers: dict[str, str]
) -> None:
    client = make_app(ai_provider="fake").test_client()
    text = 'current_time {"timezone": "Atlantis/Central"}'
    body = {"messages": [{"role": "user", "content": text}], "tools": ["current_time"]}

    response = post(client, "stream", body, ai_headers)

    events = parse_events(response.get_data(as_text=True))
    assert [name for name, _ in events][:2] == ["tool_call", "tool_result"]
    assert "Atlantis/Central" in events[1][1]["error"]
    assert "current_time failed" in "".join(d["content"] for n, d in events if n == "delta")
{%- if not cookiecutter.use_auth %}


# -- what tools see: without sign-in, the shared items (tests/test_tools_auth.py with it) ------


def test_search_items_sees_the_shared_items(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    first = create_item(ai_client, "Green apple", ai_headers)
    second = create_item(ai_client, "Red apple", ai_headers)
    upstream.queue(ToolUse([Call("search_items", {"query": "apple"})]), Text("Two apples."))

    response = post(ai_client, "complete", ask("search_items"), ai_headers)

    [step] = json_body(response)["data"]["steps"]
    assert sorted(item["id"] for item in step["result"]["items"]) == [first, second]
{%- endif %}
