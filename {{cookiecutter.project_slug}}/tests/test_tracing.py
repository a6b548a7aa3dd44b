"""Tracing: with OTEL_EXPORTER_OTLP_ENDPOINT set, the service under gunicorn sends its spans over
OTLP/HTTP to a receiver here, which decodes them as a collector would; unset, nothing traces.

The traced service runs in processes of its own, as in production: gunicorn's worker builds the
app (and its tracer provider) after the fork.
A tracer provider is set once per process, and the other tests' apps must not trace. The service
exports every 50 ms (OTEL_BSP_SCHEDULE_DELAY); the tests wait for the spans they expect.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask_openapi3 import OpenAPI
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanMessage
from opentelemetry.proto.trace.v1.trace_pb2 import Status as StatusMessage

from {{ cookiecutter.package_name }}.core.tracing import tracing_enabled

from .app_server import start_gunicorn
{%- if cookiecutter.use_celery %}
from .celery_worker import StartWorker, Worker, new_queue, skip_without_redis
from .test_tasks import REPORT_URL
{%- endif %}
{%- if cookiecutter.ai_provider != "none" %}
from .upstream import MODEL, Status, Text, Upstream
{%- endif %}
{%- if cookiecutter.use_celery %}

skip_without_redis()
{%- endif %}

SERVICE_NAME = "traced-service"  # OTEL_SERVICE_NAME, instead of the project's name
WAIT = 20.0  # seconds for spans to arrive


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]
    status: int
    events: tuple[str, ...]
    service: str


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    return getattr(value, kind) if kind else None


class Receiver:
    """An OTLP/HTTP endpoint on a loopback port: every span of every export it is sent."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def receive(self, body: bytes) -> None:
        export = ExportTraceServiceRequest.FromString(body)
        received = []
        for resource_spans in export.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        ReceivedSpan(
                            name=span.name,
                            kind=span.kind,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            attributes={a.key: _value(a.value) for a in span.attributes},
                            status=span.status.code,
                            events=tuple(event.name for event in span.events),
                            service=str(resource.get("service.name")),
                        )
                    )
        with self.lock:
            self.spans += received

    def wait_for(
        self, found: Callable[[list[ReceivedSpan]], list[ReceivedSpan]], what: str
    ) -> list[ReceivedSpan]:
        """`found(spans)` once it is not empty: the spans a test is waiting for."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            with self.lock:
                spans = list(self.spans)
            result = found(spans)
            if result:
                return result
            time.sleep(0.05)
        names = sorted({span.name for span in spans})
        pytest.fail(f"{what} did not arrive in {WAIT:.0f} s; the spans received: {names}")


def _handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path != "/v1/traces":
                self.send_error(404)
                return
            receiver.receive(body)
            reply = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

    return Handler


class Service:
    """The traced service: gunicorn with the project's gunicorn.conf.py on a loopback port."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self.process, self.port = start_gunicorn({**env, "WEB_CONCURRENCY": "1"}, log)
        self._wait_until_up()

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + 120  # a loaded machine can take long to import the app
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"gunicorn exited at start:\n{self.log.read_text()[-3000:]}")
            try:
                if self.request("GET", "/health/live")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        pytest.fail(f"gunicorn is not up after 120 s:\n{self.log.read_text()[-3000:]}")

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            payload = None if body is None else json.dumps(body)
            sent = {**(headers or {}), "Content-Type": "application/json"}
            connection.request(method, path, body=payload, headers=sent)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
        return lines

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def environment(settings: dict[str, Any]) -> dict[str, str]:
    """The environment of a service process with these settings (and none from the caller's)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("OTEL_") and key != "REDIS_URL"
    }
    for key, value in settings.items():
        if isinstance(value, str | int | float):  # lists and None have no place in the env
            env[key.upper()] = str(value)
    return env


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture(scope="module")
def tracing_settings(receiver: Receiver) -> dict[str, Any]:
    return {
        "otel_exporter_otlp_endpoint": receiver.endpoint,
        "otel_service_name": SERVICE_NAME,
        "otel_bsp_schedule_delay": 50,  # milliseconds between exports
    }
{%- if cookiecutter.use_celery %}


@pytest.fixture(scope="module")
def traced_settings(
    job_settings: dict[str, Any], tracing_settings: dict[str, Any]
) -> dict[str, Any]:
    """The service's own: it queues its jobs on a queue of its own, for the traced worker."""
    return {**job_settings, **tracing_settings, "celery_queue": new_queue()}


@pytest.fixture(scope="module")
def traced_worker(traced_settings: dict[str, Any], start_worker: StartWorker) -> Iterator[Worker]:
    """A worker that traces too, for this module only (the session's worker does not)."""
    with start_worker(traced_settings, "traced-worker") as worker:
        yield worker
{%- else %}


@pytest.fixture(scope="module")
def traced_settings(tracing_settings: dict[str, Any]) -> dict[str, Any]:
    return tracing_settings
{%- endif %}


@pytest.fixture(scope="module")
def service(
    database_url: str,
    test_settings: dict[str, Any],
    service_settings: dict[str, Any],
    traced_settings: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Service]:
    settings = {
        **test_settings,
        **service_settings,
        **traced_settings,
        "database_url": database_url,
        "log_level": "INFO",
        "log_format": "json",
    }
    log = tmp_path_factory.mktemp("traced") / "gunicorn.log"
    service = Service(environment(settings), log)
    yield service
    service.stop()


def server_span(spans: list[ReceivedSpan], route: str) -> list[ReceivedSpan]:
    return [s for s in spans if s.kind == SpanMessage.SPAN_KIND_SERVER and s.name.endswith(route)]


def in_trace(spans: list[ReceivedSpan], trace_id: str) -> list[ReceivedSpan]:
    return [span for span in spans if span.trace_id == trace_id]


def test_a_request_is_one_trace_with_its_sql(
    service: Service, receiver: Receiver, headers: dict[str, str], test_settings: dict[str, Any]
) -> None:
    status, body = service.request("POST", "/api/v1/items", {"title": "Traced"}, headers)
    assert status == 201, body

    (request,) = receiver.wait_for(lambda spans: server_span(spans, "/api/v1/items"), "the span")
    assert request.name == "POST /api/v1/items"
    assert request.parent_id == ""
    assert request.service == SERVICE_NAME
    assert request.status == StatusMessage.STATUS_CODE_UNSET
    assert request.attributes["http.route"] == "/api/v1/items"
    assert request.attributes["http.status_code"] == 201

    def inserts(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
        return [s for s in in_trace(spans, request.trace_id) if s.name.startswith("INSERT")]

    (insert,) = receiver.wait_for(inserts, "the INSERT's span")
    assert insert.parent_id == request.span_id
    assert insert.kind == SpanMessage.SPAN_KIND_CLIENT
    assert "items" in insert.attributes["db.statement"]
    if test_settings["redis_url"]:  # the rate limit's counters are in Redis

        def redis_calls(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
            found = in_trace(spans, request.trace_id)
            return [span for span in found if span.attributes.get("db.system") == "redis"]

        redis_call = receiver.wait_for(redis_calls, "a Redis call's span")[0]
        assert redis_call.parent_id == request.span_id


def test_log_lines_carry_the_trace_id(
    service: Service, receiver: Receiver, headers: dict[str, str]
) -> None:
    status, body = service.request("GET", "/api/v1/items", headers=headers)
    assert status == 200, body

    (request,) = receiver.wait_for(lambda spans: server_span(spans, "GET /api/v1/items"), "a span")
    lines = service.log_lines()
    (line,) = [entry for entry in lines if entry.get("trace_id") == request.trace_id]
    assert line["logger"] == "access"
    assert line["message"].startswith("GET /api/v1/items 200")
    assert line["span_id"] == request.span_id
{%- if cookiecutter.ai_provider != "none" %}


# The semantic conventions' name of this service's provider.
GEN_AI_SYSTEM = "{{ 'az.ai.openai' if cookiecutter.ai_provider == 'azure_openai' else cookiecutter.ai_provider }}"


def ai_spans(spans: list[ReceivedSpan], trace_id: str) -> list[ReceivedSpan]:
    return [span for span in in_trace(spans, trace_id) if "gen_ai.system" in span.attributes]


def test_an_ai_call_is_a_span_of_its_request(
    service: Service, receiver: Receiver, headers: dict[str, str], upstream: Upstream
) -> None:
    upstream.queue(Text("Hello there", prompt_tokens=12, completion_tokens=3))
    question = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 50}
    status, body = service.request("POST", "/api/v1/ai/complete", question, headers)
    assert status == 200, body

    (request,) = receiver.wait_for(lambda spans: server_span(spans, "/ai/complete"), "the span")
    (call,) = receiver.wait_for(lambda spans: ai_spans(spans, request.trace_id), "the AI span")
    assert call.name == f"chat {MODEL}"
    assert call.kind == SpanMessage.SPAN_KIND_CLIENT
    assert call.parent_id == request.span_id
    assert call.attributes["gen_ai.system"] == GEN_AI_SYSTEM
    assert call.attributes["gen_ai.operation.name"] == "chat"
    assert call.attributes["gen_ai.request.model"] == MODEL
    assert call.attributes["gen_ai.request.max_tokens"] == 50
    assert call.attributes["gen_ai.response.model"] == MODEL
    assert call.attributes["gen_ai.usage.input_tokens"] == 12
    assert call.attributes["gen_ai.usage.output_tokens"] == 3
    assert call.status != StatusMessage.STATUS_CODE_ERROR


def test_a_failed_ai_call_is_an_error_span(
    service: Service, receiver: Receiver, headers: dict[str, str], upstream: Upstream
) -> None:
    upstream.queue(Status(400, "bad request"))
    question = {"messages": [{"role": "user", "content": "Fail, please"}]}
    status, body = service.request("POST", "/api/v1/ai/complete", question, headers)
    assert status == 502, body

    def failed_request(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
        found = server_span(spans, "/ai/complete")
        return [s for s in found if s.attributes.get("http.status_code") == 502]

    (request,) = receiver.wait_for(failed_request, "the failed request's span")
    (call,) = receiver.wait_for(lambda spans: ai_spans(spans, request.trace_id), "the AI span")
    assert call.status == StatusMessage.STATUS_CODE_ERROR
    assert call.attributes["error.type"] == "ProviderBadReplyError"
    assert call.events == ("exception",)


def test_a_stream_is_a_span_until_its_last_chunk(
    service: Service, receiver: Receiver, headers: dict[str, str], upstream: Upstream
) -> None:
    upstream.queue(Text("one two three", prompt_tokens=7, completion_tokens=3))
    question = {"messages": [{"role": "user", "content": "Count"}]}
    status, body = service.request("POST", "/api/v1/ai/stream", question, headers)
    assert status == 200, body
    assert b"event: done" in body

    (request,) = receiver.wait_for(lambda spans: server_span(spans, "/ai/stream"), "the span")
    (call,) = receiver.wait_for(lambda spans: ai_spans(spans, request.trace_id), "the AI span")
    assert call.parent_id == request.span_id
    assert call.attributes["gen_ai.request.stream"] is True
    assert call.attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert call.attributes["gen_ai.usage.input_tokens"] == 7
    assert call.attributes["gen_ai.usage.output_tokens"] == 3
{%- endif %}
{%- if cookiecutter.use_celery %}


def test_a_job_continues_the_trace_of_the_request_that_queued_it(
    service: Service, receiver: Receiver, headers: dict[str, str], traced_worker: Worker
) -> None:
    status, body = service.request("POST", REPORT_URL, headers=headers)
    assert status == 202, body

    (request,) = receiver.wait_for(lambda spans: server_span(spans, REPORT_URL), "the span")

    def job_spans(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
        found = in_trace(spans, request.trace_id)
        published = [span for span in found if span.name.startswith("apply_async/")]
        run = [span for span in found if span.name.startswith("run/")]
        return published + run if published and run else []

    published, run = receiver.wait_for(
        job_spans, f"the job's spans; worker log:\n{traced_worker.log()}"
    )
    assert published.parent_id == request.span_id
    assert published.kind == SpanMessage.SPAN_KIND_PRODUCER
    assert run.parent_id == published.span_id
    assert run.kind == SpanMessage.SPAN_KIND_CONSUMER
    assert run.service == SERVICE_NAME
{%- endif %}


def test_without_an_endpoint_nothing_traces(make_app: Callable[..., OpenAPI]) -> None:
    """No tracer provider, and neither the SDK's tracing, the exporter nor any instrumentation
    is imported, by the app or a request (this process's apps never trace; the traced service
    runs in its own). redis-py itself imports parts of the SDK, for metrics of its own that are
    off unless set up."""
    app = make_app()
    assert app.test_client().get("/health/live").status_code == 200

    assert not tracing_enabled(app)
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    tracing = ("opentelemetry.sdk.trace", "opentelemetry.exporter", "opentelemetry.instrumentation")
    assert [name for name in sys.modules if name.startswith(tracing)] == []
