"""Streamed completions as server-sent events: `delta` events as the provider sends text
(`tool_call` and `tool_result` events between turns when tools run), then `done` (with usage and
warnings) or `error`. The call is admitted and the upstream stream opened before the response
starts, so that everything that can fail early answers a JSON envelope."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from .agent import AgentRun, Toolbox, call_event
from .base import (
    ChatRequest,
    ChatResponse,
    Message,
    Provider,
    ProviderError,
    StreamChunk,
    ToolCall,
    Usage,
    message_tokens,
)
from .completion import build_warnings, get_provider, reserve_estimate, retry_policy, token_usage
from .errors import AIProviderError, outcome, to_api_error
from .metrics import observe
from .retry import call_with_retries
from .structured import InvalidOutputError, parse_reply, structured_request
from .usage import Reservation, UsageRecord, reserve, settle

# Runs with the final reply and the tool loop's messages when a stream ends well.
OnDone = Callable[[ChatResponse, list[Message]], None]


def sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def open_stream(
    request: ChatRequest,
    owner: str,
    *,
    endpoint: str = "stream",
    schema: dict[str, Any] | None = None,
    on_done: OnDone | None = None,
    tools: Toolbox | None = None,
) -> Iterator[str]:
    """Admit the call and open the upstream stream now (raising an APIError for anything that
    fails before the first token); then return the server-sent events as they come.

    With `tools` the model may call them: `tool_call` and `tool_result` events come between
    the turns' `delta`s. `on_done` runs with the final reply and the tool loop's messages once
    the stream has finished successfully.
    """
    provider = get_provider()
    agent = AgentRun(provider, tools, retry_policy()) if tools is not None else None
    reservation = reserve(owner, reserve_estimate(request))
    record = UsageRecord(endpoint=endpoint, provider=provider.name, model=request.model)
    started = time.perf_counter()
    if schema is not None:
        request = structured_request(request, schema)
    if agent is not None:
        request = agent.toolbox.offer(request)
    try:
        chunks, attempts = call_with_retries(partial(provider.stream, request), retry_policy())
    except ProviderError as exc:
        record.status = outcome(exc)
        record.latency_ms = (time.perf_counter() - started) * 1000
        settle(reservation, record)
        observe(record)
        raise to_api_error(exc) from exc
    stream = StreamedReply(provider, request, reservation, record, started, agent)
    stream.retries = attempts - 1
    return stream.events(chunks, schema, on_done)


class StreamedReply:
    """One streamed reply on its way (one turn per model call when tools run): the text so far,
    and its accounting, settled once."""

    def __init__(
        self,
        provider: Provider,
        request: ChatRequest,
        reservation: Reservation,
        record: UsageRecord,
        started: float,
        agent: AgentRun | None = None,
    ) -> None:
        self.provider = provider
        self.request = request
        self.reservation = reservation
        self.record = record
        self.started = started
        self.agent = agent
        self.retries = 0
        self.model_calls = 1
        self.total = Usage()  # the turns before this one
        self.first_token_after: float | None = None
        self.today_tokens: int | None = None
        self.chunks: Iterator[StreamChunk] = iter(())
        self.new_turn()

    def new_turn(self) -> None:
        self.parts: list[str] = []
        self.usage: Usage | None = None
        self.finish_reason = "stop"
        self.tool_calls: tuple[ToolCall, ...] = ()

    def events(
        self,
        chunks: Iterator[StreamChunk],
        schema: dict[str, Any] | None,
        on_done: OnDone | None,
    ) -> Iterator[str]:
        self.record.status = "client_closed"  # until the stream ends one way or the other
        self.chunks = chunks
        try:
            while True:
                for chunk in self.chunks:
                    delta = self.take(chunk)
                    if delta:
                        yield sse("delta", {"content": delta})
                if self.agent is None or not self.tool_calls:
                    break
                if self.model_calls >= self.agent.toolbox.max_steps:
                    self.agent.max_steps_reached = True
                    break
                yield from self.run_tools(self.agent)
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
            close = getattr(self.chunks, "close", None)
            if close is not None:
                close()  # the client may have gone: stop the upstream call too
            if self.today_tokens is None:
                # Cut short: count the finished turns and what this one generated.
                usage = self.total + self.turn_usage() if self.parts or self.usage else self.total
                self.record.prompt_tokens = usage.prompt_tokens
                self.record.completion_tokens = usage.completion_tokens
            self.settle()

    def run_tools(self, agent: AgentRun) -> Iterator[str]:
        """Run the turn's tool calls, then open the next turn's stream."""
        self.total = self.total + self.turn_usage()
        content, calls = "".join(self.parts), self.tool_calls
        self.new_turn()
        for call in calls:
            yield sse("tool_call", call_event(call))
        self.request = agent.advance(self.request, content, calls)
        for step in agent.steps[-len(calls) :]:
            yield sse("tool_result", step.result_event())
        self.model_calls += 1
        self.chunks, attempts = call_with_retries(
            partial(self.provider.stream, self.request), retry_policy()
        )
        self.retries += attempts - 1

    def take(self, chunk: StreamChunk) -> str:
        """Note what a chunk says; returns its text."""
        if chunk.model:
            self.record.model = chunk.model
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.finish_reason:
            self.finish_reason = chunk.finish_reason
        if chunk.tool_calls:
            self.tool_calls += chunk.tool_calls
        if chunk.delta:
            if self.first_token_after is None:
                self.first_token_after = time.perf_counter() - self.started
            self.parts.append(chunk.delta)
        return chunk.delta or ""

    def turn_usage(self) -> Usage:
        """This turn's usage as the provider reported it, else estimated."""
        if self.usage is not None:
            return self.usage
        reply = Message("assistant", "".join(self.parts), self.tool_calls)
        return Usage(self.prompt_estimate(), message_tokens(reply))

    def finish(self, schema: dict[str, Any] | None, on_done: OnDone | None) -> dict[str, Any]:
        """The `done` event of a reply that arrived whole."""
        content = "".join(self.parts)
        usage = self.total + self.turn_usage()
        done: dict[str, Any] = {
            "finish_reason": self.finish_reason,
            "usage": token_usage(usage).model_dump(),
            "model": self.record.model,
        }
        if schema is not None:
            done["parsed"] = parse_reply(content, schema)
        if self.agent is not None:
            done["steps"] = [step.as_dict() for step in self.agent.steps]
        self.record.status = "ok"
        self.record.prompt_tokens = usage.prompt_tokens
        self.record.completion_tokens = usage.completion_tokens
        if on_done is not None:
            response = ChatResponse(
                content, self.finish_reason, self.record.model, usage, self.tool_calls
            )
            on_done(response, self.agent.turns if self.agent else [])
        today = self.settle()
        warnings = build_warnings(self.provider, self.finish_reason, self.retries + 1, today)
        if self.agent is not None:
            warnings += self.agent.warnings()
        done["warnings"] = [warning.model_dump() for warning in warnings]
        return done

    def prompt_estimate(self) -> int:
        return sum(message_tokens(message) for message in self.request.messages)

    def settle(self) -> int:
        """Record the call once; returns today's tokens of the owner."""
        if self.today_tokens is None:
            self.record.latency_ms = (time.perf_counter() - self.started) * 1000
            self.today_tokens = settle(self.reservation, self.record)
            observe(self.record, self.first_token_after)
        return self.today_tokens
