"""Streamed completions as server-sent events: `delta` events as the provider sends text, then
`done` (with usage and warnings) or `error`. The call is admitted and the upstream stream opened
before the response starts, so that everything that can fail early answers a JSON envelope."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from .base import (
    ChatRequest,
    ChatResponse,
    Provider,
    ProviderError,
    StreamChunk,
    Usage,
    estimate_tokens,
)
from .completion import build_warnings, get_provider, reserve_estimate, retry_policy, token_usage
from .errors import AIProviderError, outcome, to_api_error
from .metrics import observe
from .retry import call_with_retries
from .structured import InvalidOutputError, parse_reply, structured_request
from .usage import Reservation, UsageRecord, reserve, settle


def sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def open_stream(
    request: ChatRequest,
    owner: str,
    *,
    endpoint: str = "stream",
    schema: dict[str, Any] | None = None,
    on_done: Callable[[ChatResponse], None] | None = None,
) -> Iterator[str]:
    """Admit the call and open the upstream stream now (raising an APIError for anything that
    fails before the first token); then return the server-sent events as they come.

    `on_done` runs with the whole reply once the stream has finished successfully.
    """
    provider = get_provider()
    reservation = reserve(owner, reserve_estimate(request))
    record = UsageRecord(endpoint=endpoint, provider=provider.name, model=request.model)
    started = time.perf_counter()
    if schema is not None:
        request = structured_request(request, schema)
    try:
        chunks, attempts = call_with_retries(lambda: provider.stream(request), retry_policy())
    except ProviderError as exc:
        record.status = outcome(exc)
        record.latency_ms = (time.perf_counter() - started) * 1000
        settle(reservation, record)
        observe(record)
        raise to_api_error(exc) from exc
    stream = StreamedReply(provider, request, reservation, record, started, attempts)
    return stream.events(chunks, schema, on_done)


class StreamedReply:
    """One streamed reply on its way: the text so far, and its accounting, settled once."""

    def __init__(
        self,
        provider: Provider,
        request: ChatRequest,
        reservation: Reservation,
        record: UsageRecord,
        started: float,
        attempts: int,
    ) -> None:
        self.provider = provider
        self.request = request
        self.reservation = reservation
        self.record = record
        self.started = started
        self.attempts = attempts
        self.parts: list[str] = []
        self.usage: Usage | None = None
        self.finish_reason = "stop"
        self.first_token_after: float | None = None
        self.today_tokens: int | None = None

    def events(
        self,
        chunks: Iterator[StreamChunk],
        schema: dict[str, Any] | None,
        on_done: Callable[[ChatResponse], None] | None,
    ) -> Iterator[str]:
        self.record.status = "client_closed"  # until the stream ends one way or the other
        try:
            for chunk in chunks:
                delta = self.take(chunk)
                if delta:
                    yield sse("delta", {"content": delta})
            yield sse("done", self.finish(schema, on_done))
        except InvalidOutputError as exc:
            self.record.status = AIProviderError.code
            error = {
                "code": AIProviderError.code,
                "message": "The model's reply did not match the schema.",
                "details": {"errors": exc.errors},
            }
            yield sse("error", error)
        except ProviderError as exc:
            api_error = to_api_error(exc)
            self.record.status = api_error.code
            yield sse("error", {"code": api_error.code, "message": api_error.message})
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # the client may have gone: stop the upstream call too
            if self.today_tokens is None and self.usage is None and self.parts:
                # Cut short: count what was generated.
                self.record.prompt_tokens = self.prompt_estimate()
                self.record.completion_tokens = estimate_tokens("".join(self.parts))
            self.settle()

    def take(self, chunk: StreamChunk) -> str:
        """Note what a chunk says; returns its text."""
        if chunk.model:
            self.record.model = chunk.model
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.finish_reason:
            self.finish_reason = chunk.finish_reason
        if chunk.delta:
            if self.first_token_after is None:
                self.first_token_after = time.perf_counter() - self.started
            self.parts.append(chunk.delta)
        return chunk.delta or ""

    def finish(
        self, schema: dict[str, Any] | None, on_done: Callable[[ChatResponse], None] | None
    ) -> dict[str, Any]:
        """The `done` event of a reply that arrived whole."""
        content = "".join(self.parts)
        usage = self.usage or Usage(self.prompt_estimate(), estimate_tokens(content))
        done: dict[str, Any] = {
            "finish_reason": self.finish_reason,
            "usage": token_usage(usage).model_dump(),
            "model": self.record.model,
        }
        if schema is not None:
            done["parsed"] = parse_reply(content, schema)
        self.record.status = "ok"
        self.record.prompt_tokens = usage.prompt_tokens
        self.record.completion_tokens = usage.completion_tokens
        if on_done is not None:
            on_done(ChatResponse(content, self.finish_reason, self.record.model, usage))
        today = self.settle()
        warnings = build_warnings(self.provider, self.finish_reason, self.attempts, today)
        done["warnings"] = [warning.model_dump() for warning in warnings]
        return done

    def prompt_estimate(self) -> int:
        return sum(estimate_tokens(message.content) for message in self.request.messages)

    def settle(self) -> int:
        """Record the call once; returns today's tokens of the owner."""
        if self.today_tokens is None:
            self.record.latency_ms = (time.perf_counter() - self.started) * 1000
            self.today_tokens = settle(self.reservation, self.record)
            observe(self.record, self.first_token_after)
        return self.today_tokens
