"""AI calls as OpenTelemetry spans, with the GenAI semantic conventions' attributes.

Every model call goes through the app's provider (completions, streams, each turn of the tool
loop, each retry), so the provider is wrapped, once, when the app traces (see `init_app`).
This module is imported only then.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from .base import ChatRequest, ChatResponse, Provider, StreamChunk, Usage


class TracedProvider:
    """A provider whose every call is a `chat {model}` client span."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.name = provider.name
{%- if cookiecutter.ai_provider == "azure_openai" %}
        # As the semantic conventions name the provider (the offline one is "fake").
        self.system = "az.ai.openai" if provider.name == "azure_openai" else provider.name
{%- else %}
        self.system = provider.name  # as the semantic conventions name it (the offline one: fake)
{%- endif %}
        self.tracer = trace.get_tracer(__name__)

    def complete(self, request: ChatRequest) -> ChatResponse:
        with self.tracer.start_as_current_span(
            f"chat {request.model}",
            kind=SpanKind.CLIENT,
            attributes=self.attributes(request),
            record_exception=False,  # `failed` records it, as for a stream
            set_status_on_exception=False,
        ) as span:
            try:
                response = self.provider.complete(request)
            except Exception as exc:
                failed(span, exc)
                raise
            finished(span, response.model, [response.finish_reason], response.usage)
            return response

    def stream(self, request: ChatRequest) -> Iterator[StreamChunk]:
        span = self.tracer.start_span(
            f"chat {request.model}", kind=SpanKind.CLIENT, attributes=self.attributes(request)
        )
        span.set_attribute("gen_ai.request.stream", True)
        try:
            chunks = self.provider.stream(request)
        except Exception as exc:
            failed(span, exc)
            span.end()
            raise
        return traced_chunks(span, chunks)

    def attributes(self, request: ChatRequest) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            "gen_ai.system": self.system,
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": request.model,
        }
        if request.temperature is not None:
            attributes["gen_ai.request.temperature"] = request.temperature
        if request.max_tokens is not None:
            attributes["gen_ai.request.max_tokens"] = request.max_tokens
        return attributes


def traced_chunks(span: Span, chunks: Iterator[StreamChunk]) -> Iterator[StreamChunk]:
    """The chunks as they come; the span ends with the stream (finished, failed or closed)."""
    model: str | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    try:
        for chunk in chunks:
            model = chunk.model or model
            finish_reason = chunk.finish_reason or finish_reason
            usage = chunk.usage or usage
            yield chunk
    except Exception as exc:
        failed(span, exc)
        raise
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
        finished(span, model, [finish_reason] if finish_reason else [], usage)
        span.end()


def finished(span: Span, model: str | None, finish_reasons: list[str], usage: Usage | None) -> None:
    if model:
        span.set_attribute("gen_ai.response.model", model)
    if finish_reasons:
        span.set_attribute("gen_ai.response.finish_reasons", finish_reasons)
    if usage is not None:
        span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", usage.completion_tokens)


def failed(span: Span, exc: Exception) -> None:
    span.record_exception(exc)
    span.set_attribute("error.type", type(exc).__name__)
    span.set_status(Status(StatusCode.ERROR, str(exc)))
