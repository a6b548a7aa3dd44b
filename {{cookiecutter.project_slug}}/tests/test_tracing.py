"""Tracing: with OTEL_EXPORTER_OTLP_ENDPOINT set, the service under gunicorn sends its spans over
OTLP/HTTP to a receiver, which decodes them as a collector would; unset, nothing traces.

The traced service is the session's (app_server.py): its own processes, as in production,
since a tracer provider is set once per process and the tests' own apps must not trace.
Other tests use the same service, so each test here finds its request's trace by the id the
request was sent with, then waits for the spans it expects in that trace.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest
from flask_openapi3 import OpenAPI
from opentelemetry import trace
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanMessage
from opentelemetry.proto.trace.v1.trace_pb2 import Status as StatusMessage

from {{ cookiecutter.package_name }}.core.tracing import tracing_enabled

from .app_server import SERVICE_NAME, ReceivedSpan, Receiver, Service
{%- if cookiecutter.use_celery %}
from .celery_worker import Worker, skip_without_redis
from .test_tasks import REPORT_URL
{%- endif %}
{%- if cookiecutter.ai_provider != "none" %}
from .upstream import MODEL, Status, Text, Upstream
{%- endif %}
{%- if cookiecutter.use_celery %}

skip_without_redis()
{%- endif %}


@pytest.fixture(autouse=True)
def _clean_services() -> None:
    """Replaces conftest's: these tests act on the session's service over HTTP and assert only
    about their own request's trace.
{%- if cookiecutter.use_celery %} Redis also holds the running worker's queue and heartbeat,
    as in test_worker.py.
{%- endif %}"""


def in_trace(spans: list[ReceivedSpan], trace_id: str) -> list[ReceivedSpan]:
    return [span for span in spans if span.trace_id == trace_id]


def server_span(spans: list[ReceivedSpan], trace_id: str) -> list[ReceivedSpan]:
    """The request as the service saw it, in the trace `trace_id`."""
    return [s for s in in_trace(spans, trace_id) if s.kind == SpanMessage.SPAN_KIND_SERVER]


def test_a_request_is_one_trace_with_its_sql(
    service: Service, receiver: Receiver, headers: dict[str, str], test_settings: dict[str, Any]
) -> None:
    reply = service.request("POST", "/api/v1/items", {"title": "Traced"}, headers)
    assert reply.status == 201, reply.body
    trace_id = service.trace_of(reply.request_id)

    (request,) = receiver.wait_for(lambda spans: server_span(spans, trace_id), "the span")
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
    reply = service.request("GET", "/api/v1/items", headers=headers)
    assert reply.status == 200, reply.body

    line = service.access_line(reply.request_id)
    assert line["message"].startswith("GET /api/v1/items 200")
    (request,) = receiver.wait_for(lambda spans: server_span(spans, line["trace_id"]), "the span")
    assert request.name == "GET /api/v1/items"
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
    reply = service.request("POST", "/api/v1/ai/complete", question, headers)
    assert reply.status == 200, reply.body
    trace_id = service.trace_of(reply.request_id)

    (request,) = receiver.wait_for(lambda spans: server_span(spans, trace_id), "the span")
    assert request.name == "POST /api/v1/ai/complete"
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
    reply = service.request("POST", "/api/v1/ai/complete", question, headers)
    assert reply.status == 502, reply.body
    trace_id = service.trace_of(reply.request_id)

    (request,) = receiver.wait_for(lambda spans: server_span(spans, trace_id), "the span")
    assert request.attributes["http.status_code"] == 502
    (call,) = receiver.wait_for(lambda spans: ai_spans(spans, request.trace_id), "the AI span")
    assert call.status == StatusMessage.STATUS_CODE_ERROR
    assert call.attributes["error.type"] == "ProviderBadReplyError"
    assert call.events == ("exception",)


def test_a_stream_is_a_span_until_its_last_chunk(
    service: Service, receiver: Receiver, headers: dict[str, str], upstream: Upstream
) -> None:
    upstream.queue(Text("one two three", prompt_tokens=7, completion_tokens=3))
    question = {"messages": [{"role": "user", "content": "Count"}]}
    reply = service.request("POST", "/api/v1/ai/stream", question, headers)
    assert reply.status == 200, reply.body
    assert b"event: done" in reply.body
    trace_id = service.trace_of(reply.request_id)

    (request,) = receiver.wait_for(lambda spans: server_span(spans, trace_id), "the span")
    assert request.name == "POST /api/v1/ai/stream"
    (call,) = receiver.wait_for(lambda spans: ai_spans(spans, request.trace_id), "the AI span")
    assert call.parent_id == request.span_id
    assert call.attributes["gen_ai.request.stream"] is True
    assert call.attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert call.attributes["gen_ai.usage.input_tokens"] == 7
    assert call.attributes["gen_ai.usage.output_tokens"] == 3
{%- endif %}
{%- if cookiecutter.use_celery %}


def test_a_job_continues_the_trace_of_the_request_that_queued_it(
    service: Service, receiver: Receiver, headers: dict[str, str], worker: Worker
) -> None:
    reply = service.request("POST", REPORT_URL, headers=headers)
    assert reply.status == 202, reply.body
    trace_id = service.trace_of(reply.request_id)

    (request,) = receiver.wait_for(lambda spans: server_span(spans, trace_id), "the span")
    assert request.name == f"POST {REPORT_URL}"

    def job_spans(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
        found = in_trace(spans, request.trace_id)
        published = [span for span in found if span.name.startswith("apply_async/")]
        run = [span for span in found if span.name.startswith("run/")]
        return published + run if published and run else []

    published, run = receiver.wait_for(job_spans, f"the job's spans; worker log:\n{worker.log()}")
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
