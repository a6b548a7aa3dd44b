"""Anthropic messages through the official SDK. System messages go to its `system` parameter.

The Messages API of current models takes no sampling parameters, so `temperature` is not sent
(it still decides whether a reply may be cached).

Tools go out with their `input_schema`, come back as `tool_use` content blocks (streamed as
`input_json_delta` pieces, assembled here), and their results go back as `tool_result` blocks
of one user message.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, cast

import anthropic
from anthropic import omit
from anthropic.types import Message as AnthropicMessage
from anthropic.types import MessageParam, RawMessageStreamEvent, ToolParam

from ..base import (
    ChatRequest,
    ChatResponse,
    Message,
    ProviderBadReplyError,
    ProviderError,
    StreamChunk,
    ToolCall,
    Usage,
    sdk_client,
    tool_arguments,
    translate_sdk_error,
)

DEFAULT_MAX_TOKENS = 1024  # Anthropic requires a limit on every call
_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}


class AnthropicProvider:
    """Messages API. Retries are ours (`ai/retry.py`), so the SDK's own are switched off."""

    name = "anthropic"

    def __init__(self, *, api_key: str | None, base_url: str | None, timeout: float) -> None:
        self._client = sdk_client(
            anthropic.Anthropic, api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0
        )

    def complete(self, request: ChatRequest) -> ChatResponse:
        system, messages = _split(request)
        try:
            message = self._client.messages.create(
                model=request.model,
                system=system,
                messages=messages,
                max_tokens=request.max_tokens or DEFAULT_MAX_TOKENS,
                tools=_tools(request),
            )
        except Exception as exc:
            raise translate_error(exc) from exc
        return _parse_message(message)

    def stream(self, request: ChatRequest) -> Iterator[StreamChunk]:
        system, messages = _split(request)
        try:
            upstream = self._client.messages.create(
                model=request.model,
                system=system,
                messages=messages,
                max_tokens=request.max_tokens or DEFAULT_MAX_TOKENS,
                tools=_tools(request),
                stream=True,
            )
        except Exception as exc:
            raise translate_error(exc) from exc
        return _chunks(upstream)


def _tools(request: ChatRequest) -> Any:
    if not request.tools:
        return omit
    return [
        cast(
            "ToolParam",
            {"name": spec.name, "description": spec.description, "input_schema": spec.parameters},
        )
        for spec in request.tools
    ]


def _split(request: ChatRequest) -> tuple[Any, list[MessageParam]]:
    """The system prompt, and the other messages as Anthropic wants them: the results of one
    turn's tool calls together in the user message that follows it."""
    system = "\n\n".join(m.content for m in request.messages if m.role == "system")
    messages: list[dict[str, Any]] = []
    results: list[dict[str, Any]] | None = None  # tool_result blocks of the last user message
    for message in request.messages:
        if message.role == "system":
            continue
        if message.role != "tool":
            results = None
        if message.role == "tool":
            if results is None:
                results = []
                messages.append({"role": "user", "content": results})
            results.append(
                {
                    "type": "tool_result",
                    "tool_use_id": message.tool_call_id,
                    "content": message.content,
                    "is_error": message.is_error,
                }
            )
        elif message.tool_calls:
            messages.append({"role": "assistant", "content": _assistant_blocks(message)})
        else:
            messages.append({"role": message.role, "content": message.content})
    return (system or omit), [cast("MessageParam", param) for param in messages]


def _assistant_blocks(message: Message) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [{"type": "text", "text": message.content}]
    blocks += [
        {"type": "tool_use", "id": call.id, "name": call.name, "input": tool_arguments(call)}
        for call in message.tool_calls
    ]
    return blocks if message.content else blocks[1:]  # no empty text blocks


def _parse_message(message: AnthropicMessage) -> ChatResponse:
    # Guard against replies that do not match the SDK's types (proxies, gateways).
    blocks = message.content
    if not isinstance(blocks, list) or message.usage is None:
        raise ProviderBadReplyError("The provider's reply is not a message.")
    text = "".join(block.text for block in blocks if block.type == "text")
    tool_calls = tuple(
        ToolCall(block.id, block.name, json.dumps(block.input))
        for block in blocks
        if block.type == "tool_use"
    )
    stop = message.stop_reason or "end_turn"
    return ChatResponse(
        content=text,
        finish_reason="tool_calls" if tool_calls else _FINISH_REASONS.get(stop, stop),
        model=str(message.model or ""),
        usage=Usage(message.usage.input_tokens or 0, message.usage.output_tokens or 0),
        tool_calls=tool_calls,
    )


def _chunks(upstream: anthropic.Stream[RawMessageStreamEvent]) -> Iterator[StreamChunk]:
    prompt_tokens = 0
    # Content block index -> the tool_use block's id, name and pieces of its input JSON.
    calls: dict[int, tuple[str, str, list[str]]] = {}
    try:
        for event in upstream:
            if event.type == "message_start":
                prompt_tokens = event.message.usage.input_tokens or 0
                yield StreamChunk(model=event.message.model or None)
            elif event.type == "content_block_start" and event.content_block.type == "tool_use":
                calls[event.index] = (event.content_block.id, event.content_block.name, [])
            elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                yield StreamChunk(delta=event.delta.text)
            elif event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                if event.index in calls:
                    calls[event.index][2].append(event.delta.partial_json)
            elif event.type == "message_delta":
                stop = event.delta.stop_reason or "end_turn"
                finished = tuple(
                    ToolCall(call_id, name, "".join(pieces) or "{}")
                    for _, (call_id, name, pieces) in sorted(calls.items())
                )
                calls.clear()
                yield StreamChunk(
                    finish_reason="tool_calls" if finished else _FINISH_REASONS.get(stop, stop),
                    usage=Usage(prompt_tokens, event.usage.output_tokens or 0),
                    tool_calls=finished,
                )
    except Exception as exc:
        raise translate_error(exc) from exc
    finally:
        upstream.close()  # also when the client went away: stop generating upstream


def translate_error(exc: Exception) -> ProviderError:
    return translate_sdk_error(exc, anthropic)
