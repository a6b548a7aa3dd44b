"""A local stand-in for the AI provider's HTTP API, scripted per test, and its fixtures.

It speaks the wire protocols the real SDKs expect: OpenAI chat completions (also under
Azure's `/openai/deployments/{name}/` paths) and Anthropic messages, each as one JSON body
or as a server-sent event stream, chosen by the request path and its `stream` flag. Tests
queue provider-neutral replies (`Text`, `ToolUse`, `Status`, `Raw`); every request is recorded.
The server starts once per session; `upstream` hands each test an empty queue.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI
from werkzeug.test import TestResponse

from {{ cookiecutter.package_name }}.ai.usage import settlements

from .core_fixtures import SignIn

PROVIDER = "{{ cookiecutter.ai_provider }}"
MODEL = "test-model"
API_KEY = "test-key"

# Small timeouts and backoff keep failure tests fast; a test changes them with make_ai_app().
AI_TEST_SETTINGS: dict[str, Any] = {
    "ai_model": MODEL,
    "ai_timeout": 2.0,
    "ai_max_retries": 2,
    "ai_retry_backoff": 0.01,
    "ai_token_budget_daily": 100_000,
    "rate_limit_ai": "10000 per minute",
}
# Settings that leave the service on its offline provider, which answers without any network.
{%- if cookiecutter.ai_provider == "ollama" %}
OFFLINE: dict[str, Any] = {"ai_provider": "fake"}  # a local server needs no API key
{%- else %}
OFFLINE: dict[str, Any] = {"ai_api_key": None}
{%- endif %}


@dataclass
class Text:
    """A model reply. Streamed as one chunk per item of `chunks` (default: word by word).

    `hold`: the stream stops after its first text chunk until the test sets the event; left
    unset for `HOLD_TIMEOUT` seconds, the stream is dropped there (so a response that buffered
    the first chunk never completes)."""

    content: str
    finish_reason: str = "stop"
    prompt_tokens: int = 10
    completion_tokens: int = 5
    chunks: list[str] | None = None
    chunk_delay: float = 0.0
    delay: float = 0.0
    model: str | None = None
    hold: threading.Event | None = None

    def parts(self) -> list[str]:
        if self.chunks is not None:
            return self.chunks
        words = self.content.split(" ")
        return [word if i == 0 else " " + word for i, word in enumerate(words)]


HOLD_TIMEOUT = 10.0
_CALL_IDS = itertools.count(1)


@dataclass
class Call:
    """One tool call of a `ToolUse` reply. `arguments`: an object (sent as JSON), or text sent
    as it is (e.g. broken JSON)."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str = field(default_factory=lambda: f"call_stub_{next(_CALL_IDS)}")

    def text(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


@dataclass
class ToolUse:
    """A model reply asking for tools: several calls make parallel calls in one turn. Streamed,
    each call's arguments arrive in pieces of `piece` characters (tool-call deltas)."""

    calls: list[Call]
    content: str = ""
    prompt_tokens: int = 10
    completion_tokens: int = 5
    piece: int = 6
    chunk_delay: float = 0.0
    delay: float = 0.0
    model: str | None = None
    finish_reason: str = "tool_calls"

    def parts(self) -> list[str]:
        return Text(self.content).parts() if self.content else []

    def pieces(self, call: Call) -> list[str]:
        text = call.text()
        return [text[i : i + self.piece] for i in range(0, len(text), self.piece)]


@dataclass
class Status:
    """An HTTP error status with the provider's error body."""

    status: int
    message: str = "upstream error"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Raw:
    """Any bytes at all, e.g. malformed JSON."""

    body: bytes
    status: int = 200
    content_type: str = "application/json"
    delay: float = 0.0


Reply = Text | ToolUse | Status | Raw


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


Answer = Callable[[dict[str, Any]], dict[str, Any]]


class Upstream:
    """The stub server: `queue()` replies, read `requests` and `connections`; `url` is the
    provider base URL."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._replies: list[Reply] = []
        self.requests: list[RecordedRequest] = []
        self.disconnects = 0
        self.connections = 0  # opened by the clients
        # Endpoints beside chat that a feature's fixtures add: the path's end -> the payload
        # answering a request's body.
        self.endpoints: dict[str, Answer] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def root(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Upstream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self._lock:
            self._replies.clear()
            self.requests.clear()
            self.disconnects = 0
            self.connections = 0

    def queue(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    def next_failure(self, request: RecordedRequest) -> Status | Raw | None:
        """For a request to one of `endpoints`: the next reply if it is a failure, else None."""
        with self._lock:
            self.requests.append(request)
            if self._replies and isinstance(self._replies[0], (Status, Raw)):
                return self._replies.pop(0)  # type: ignore[return-value]
        return None

    def next_reply(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self._replies:
                return self._replies.pop(0)
        return Text("Hello from the stub.")


def _handler_for(upstream: Upstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes: with Nagle's algorithm on, the body of
        # every keep-alive reply would wait for the client's delayed ACK (40 ms on Linux).
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

        def setup(self) -> None:
            super().setup()
            with upstream._lock:
                upstream.connections += 1

        def handle(self) -> None:
            with contextlib.suppress(ConnectionResetError):  # a client dropped an idle connection
                super().handle()

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {"_raw": raw.decode("utf-8", "replace")}
            recorded = RecordedRequest(
                method="POST",
                path=self.path,
                headers={key.lower(): value for key, value in self.headers.items()},
                body=body,
            )
            path = self.path.split("?")[0]
            # A client that went away mid-reply (it timed out, or stopped reading a stream) is
            # counted, not reported: a traceback printed from this thread is noise in the test's
            # output, and on Python 3.11 formatting one (ast.parse, for the carets) can race the
            # test's own thread building an app (CPython gh-106905).
            answer = next(
                (answer for end, answer in upstream.endpoints.items() if path.endswith(end)), None
            )
            try:
                if answer is not None:
                    self._answer(recorded, answer)
                else:
                    self._reply(upstream.next_reply(recorded), body, path.endswith("/messages"))
            except (BrokenPipeError, ConnectionResetError):
                with upstream._lock:
                    upstream.disconnects += 1

        def _reply(self, reply: Reply, body: dict[str, Any], anthropic: bool) -> None:
            time.sleep(reply.delay)
            if isinstance(reply, Status):
                self._send_json(reply.status, _error_body(reply, anthropic), reply.headers)
            elif isinstance(reply, Raw):
                self._send_bytes(reply.status, reply.body, reply.content_type, {})
            elif body.get("stream"):
                self._send_stream(reply, body, anthropic)
            else:
                payload = (
                    _anthropic_message(reply, body)
                    if anthropic
                    else _openai_completion(reply, body)
                )
                self._send_json(200, payload, {})

        def _answer(self, recorded: RecordedRequest, answer: Answer) -> None:
            """`answer`'s payload, unless a failure (`Status`, `Raw`) is queued next: chat
            replies queued for a later request stay queued."""
            failure = upstream.next_failure(recorded)
            if failure is not None:
                time.sleep(failure.delay)
            if isinstance(failure, Status):
                self._send_json(failure.status, _error_body(failure, False), failure.headers)
            elif isinstance(failure, Raw):
                self._send_bytes(failure.status, failure.body, failure.content_type, {})
            else:
                self._send_json(200, answer(recorded.body), {})

        def _send_json(self, status: int, payload: Any, headers: dict[str, str]) -> None:
            self._send_bytes(status, json.dumps(payload).encode(), "application/json", headers)

        def _send_bytes(
            self, status: int, data: bytes, content_type: str, headers: dict[str, str]
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _send_stream(
            self, reply: Text | ToolUse, body: dict[str, Any], anthropic: bool
        ) -> None:
            """Server-sent events in a chunked body on a keep-alive connection, as the
            providers send them."""
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            events = _anthropic_events(reply, body) if anthropic else _openai_events(reply, body)
            hold = reply.hold if isinstance(reply, Text) else None
            # The first text chunk: after message_start, ping and content_block_start (Anthropic)
            # or after the role chunk (OpenAI).
            first_text = 3 if anthropic else 1
            for index, event in enumerate(events):
                if index and reply.chunk_delay:
                    time.sleep(reply.chunk_delay)
                data = event.encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
                if hold is not None and index == first_text and not hold.wait(HOLD_TIMEOUT):
                    self.close_connection = True
                    return  # never released: the stream ends mid-way
            self.wfile.write(b"0\r\n\r\n")

    return Handler


def _error_body(reply: Status, anthropic: bool) -> dict[str, Any]:
    if anthropic:
        return {"type": "error", "error": {"type": "api_error", "message": reply.message}}
    return {"error": {"message": reply.message, "type": "server_error", "code": None}}


def _model(reply: Text | ToolUse, body: dict[str, Any]) -> str:
    return reply.model or str(body.get("model") or "stub-model")


def _openai_message(reply: Text | ToolUse) -> dict[str, Any]:
    if isinstance(reply, Text):
        return {"role": "assistant", "content": reply.content}
    return {
        "role": "assistant",
        "content": reply.content or None,
        "tool_calls": [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.text()},
            }
            for call in reply.calls
        ],
    }


def _openai_completion(reply: Text | ToolUse, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": _model(reply, body),
        "choices": [
            {
                "index": 0,
                "message": _openai_message(reply),
                "finish_reason": reply.finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        },
    }


def _openai_events(reply: Text | ToolUse, body: dict[str, Any]) -> list[str]:
    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-stub",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": _model(reply, body),
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    chunks = [chunk({"role": "assistant", "content": ""}, None)]
    chunks += [chunk({"content": part}, None) for part in reply.parts()]
    if isinstance(reply, ToolUse):
        chunks += _openai_tool_chunks(reply, chunk)
    chunks.append(chunk({}, reply.finish_reason))
    if (body.get("stream_options") or {}).get("include_usage"):
        final = chunk({}, None)
        final["choices"] = []
        final["usage"] = _openai_completion(reply, body)["usage"]
        chunks.append(final)
    return [f"data: {json.dumps(c)}\n\n" for c in chunks] + ["data: [DONE]\n\n"]


def _openai_tool_chunks(
    reply: ToolUse, chunk: Callable[[dict[str, Any], str | None], dict[str, Any]]
) -> list[dict[str, Any]]:
    """Per call: its id and name first, then its arguments a few characters at a time."""
    chunks = []
    for index, call in enumerate(reply.calls):
        head = {"index": index, "id": call.id, "type": "function"}
        head["function"] = {"name": call.name, "arguments": ""}
        chunks.append(chunk({"tool_calls": [head]}, None))
        chunks += [
            chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}, None)
            for piece in reply.pieces(call)
        ]
    return chunks


_ANTHROPIC_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def _anthropic_input(call: Call) -> Any:
    try:
        return json.loads(call.text())
    except ValueError:
        return call.text()


def _anthropic_blocks(reply: Text | ToolUse) -> list[dict[str, Any]]:
    if isinstance(reply, Text):
        return [{"type": "text", "text": reply.content}]
    blocks = [{"type": "text", "text": reply.content}] if reply.content else []
    return blocks + [
        {"type": "tool_use", "id": call.id, "name": call.name, "input": _anthropic_input(call)}
        for call in reply.calls
    ]


def _anthropic_message(reply: Text | ToolUse, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "msg_stub",
        "type": "message",
        "role": "assistant",
        "model": _model(reply, body),
        "content": _anthropic_blocks(reply),
        "stop_reason": _ANTHROPIC_STOP.get(reply.finish_reason, reply.finish_reason),
        "stop_sequence": None,
        "usage": {"input_tokens": reply.prompt_tokens, "output_tokens": reply.completion_tokens},
    }


def _anthropic_events(reply: Text | ToolUse, body: dict[str, Any]) -> list[str]:
    message = _anthropic_message(reply, body)
    start = dict(message, content=[], stop_reason=None)
    start["usage"] = {"input_tokens": reply.prompt_tokens, "output_tokens": 1}
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start}),
        ("ping", {"type": "ping"}),
    ]
    index = 0
    if isinstance(reply, Text) or reply.content:
        events += _anthropic_block(
            index,
            {"type": "text", "text": ""},
            [{"type": "text_delta", "text": part} for part in reply.parts()],
        )
        index += 1
    if isinstance(reply, ToolUse):
        for offset, call in enumerate(reply.calls):
            head = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in reply.pieces(call)]
            events += _anthropic_block(index + offset, head, deltas)
    events += [
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": reply.completion_tokens},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return [f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events]


def _anthropic_block(
    index: int, head: dict[str, Any], deltas: list[dict[str, Any]]
) -> list[tuple[str, dict[str, Any]]]:
    """One content block: its start, its deltas, its stop."""
    start = {"type": "content_block_start", "index": index, "content_block": head}
    return [
        ("content_block_start", start),
        *(
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            for delta in deltas
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": index}),
    ]


# -- what the provider saw -----------------------------------------------------------------------


def sent_messages(request: RecordedRequest) -> list[dict[str, str]]:
    """The conversation a request carried, as [{role, content}] with any system prompt first."""
    messages = [{"role": m["role"], "content": m["content"]} for m in request.body["messages"]]
    system = request.body.get("system")
    if system:  # Anthropic takes the system prompt as a parameter
        messages.insert(0, {"role": "system", "content": system})
    return messages


def offered_tools(request: RecordedRequest) -> list[str]:
    """The names of the tools a request offered the model."""
    tools = request.body.get("tools") or []
    return [tool["function"]["name"] if "function" in tool else tool["name"] for tool in tools]


def sent_tool_calls(request: RecordedRequest) -> list[dict[str, Any]]:
    """The tool calls of the history a request carried, as [{id, name, arguments}]."""
    calls = []
    for message in request.body["messages"]:
        for call in message.get("tool_calls") or []:  # OpenAI
            function = call["function"]
            calls.append(
                {"id": call["id"], "name": function["name"], "arguments": function["arguments"]}
            )
        if message["role"] == "assistant" and isinstance(message["content"], list):  # Anthropic
            calls += [
                {"id": block["id"], "name": block["name"], "arguments": json.dumps(block["input"])}
                for block in message["content"]
                if block["type"] == "tool_use"
            ]
    return calls


def sent_tool_results(request: RecordedRequest) -> list[dict[str, Any]]:
    """The tool results a request carried, as [{id, content (parsed), is_error}] in order."""
    results = []
    for message in request.body["messages"]:
        if message["role"] == "tool":  # OpenAI
            content = json.loads(message["content"])
            results.append(
                {"id": message["tool_call_id"], "content": content, "is_error": "error" in content}
            )
        elif message["role"] == "user" and isinstance(message["content"], list):  # Anthropic
            results += [
                {
                    "id": block["tool_use_id"],
                    "content": json.loads(block["content"]),
                    "is_error": block.get("is_error", False),
                }
                for block in message["content"]
                if block["type"] == "tool_result"
            ]
    return results


def expected_path() -> str:
    """Where the SDK of this service's provider sends a chat request."""
{%- if cookiecutter.ai_provider == "anthropic" %}
    return "/v1/messages"
{%- elif cookiecutter.ai_provider == "azure_openai" %}
    return f"/openai/deployments/{MODEL}/chat/completions"
{%- else %}
    return "/v1/chat/completions"
{%- endif %}


def provider_settings(root: str) -> dict[str, Any]:
    """Settings that point this service's provider at the server at `root` (e.g. the stub's)."""
{%- if cookiecutter.ai_provider in ["openai", "ollama"] %}
    return {"ai_api_key": API_KEY, "ai_base_url": f"{root}/v1"}
{%- else %}
    return {"ai_api_key": API_KEY, "ai_base_url": root}
{%- endif %}


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def upstream_server() -> Iterator[Upstream]:
    server = Upstream().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def service_settings(service_settings: dict[str, Any], upstream_server: Upstream) -> dict[str, Any]:
    """Service processes call the stub too, without transport retries inside one call: upstream
    failures reach the caller at once (a job's own retries, a stream's error event)."""
    return {
        **service_settings,
        **AI_TEST_SETTINGS,
        **provider_settings(upstream_server.root),
        "ai_max_retries": 0,
        "playground_enabled": True,
    }


def write_settlements(app: OpenAPI) -> None:
    with app.app_context():
        settlements().write()


@pytest.fixture(scope="session")
def finish_app_work(
    finish_app_work: list[Callable[[OpenAPI], None]],
) -> list[Callable[[OpenAPI], None]]:
    """The usage of AI calls whose responses the test client left open is written when the test
    ends, not in the next one (which may get the same app) after its tables were emptied."""
    return [*finish_app_work, write_settlements]


@pytest.fixture
def upstream(upstream_server: Upstream) -> Upstream:
    """The stub provider with an empty queue and no recorded requests."""
    upstream_server.reset()
    return upstream_server


@pytest.fixture
def make_ai_app(make_app: Callable[..., OpenAPI], upstream: Upstream) -> Callable[..., OpenAPI]:
    """make_ai_app(**overrides) -> an app whose provider is the stub."""

    def factory(**overrides: Any) -> OpenAPI:
        return make_app(**{**AI_TEST_SETTINGS, **provider_settings(upstream.root), **overrides})

    return factory


@pytest.fixture
def ai_app(make_ai_app: Callable[..., OpenAPI]) -> OpenAPI:
    return make_ai_app()


@pytest.fixture
def ai_client(ai_app: OpenAPI) -> FlaskClient:
    return ai_app.test_client()


@pytest.fixture
def ai_headers(ai_app: OpenAPI, sign_in: SignIn) -> dict[str, str]:
    """The headers of a caller of the AI app (AI usage is counted per caller)."""
    return sign_in(ai_app)


def json_body(response: TestResponse) -> Any:
    """A response's JSON body, for indexing without type noise."""
    return response.get_json()


def parse_events(body: str) -> list[tuple[str, dict[str, Any]]]:
    """Server-sent events as (event, data) pairs."""
    events = []
    for block in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        events.append((fields["event"], json.loads(fields["data"])))
    return events
