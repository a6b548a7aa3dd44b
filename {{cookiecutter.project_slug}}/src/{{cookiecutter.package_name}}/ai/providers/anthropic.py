"""Anthropic messages through the official SDK. System messages go to its `system` parameter.

The Messages API of current models takes no sampling parameters, so `temperature` is not sent
(it still decides whether a reply may be cached).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import anthropic
from anthropic import omit
from anthropic.types import Message as AnthropicMessage
from anthropic.types import MessageParam, RawMessageStreamEvent

from ..base import (
    ChatRequest,
    ChatResponse,
    ProviderBadReplyError,
    ProviderError,
    StreamChunk,
    Usage,
    translate_sdk_error,
)

DEFAULT_MAX_TOKENS = 1024  # Anthropic requires a limit on every call
_FINISH_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}


class AnthropicProvider:
    """Messages API. Retries are ours (`ai/retry.py`), so the SDK's own are switched off."""

    name = "anthropic"

    def __init__(self, *, api_key: str | None, base_url: str | None, timeout: float) -> None:
        self._client = anthropic.Anthropic(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0
        )

    def complete(self, request: ChatRequest) -> ChatResponse:
        system, messages = _split(request)
        try:
            message = self._client.messages.create(
                model=request.model,
                system=system,
                messages=messages,
                max_tokens=request.max_tokens or DEFAULT_MAX_TOKENS,
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
                stream=True,
            )
        except Exception as exc:
            raise translate_error(exc) from exc
        return _chunks(upstream)


def _split(request: ChatRequest) -> tuple[Any, list[MessageParam]]:
    system = "\n\n".join(m.content for m in request.messages if m.role == "system")
    messages = [
        cast("MessageParam", {"role": m.role, "content": m.content})
        for m in request.messages
        if m.role != "system"
    ]
    return (system or omit), messages


def _parse_message(message: AnthropicMessage) -> ChatResponse:
    # Guard against replies that do not match the SDK's types (proxies, gateways).
    blocks = message.content
    if not isinstance(blocks, list) or message.usage is None:
        raise ProviderBadReplyError("The provider's reply is not a message.")
    text = "".join(block.text for block in blocks if block.type == "text")
    stop = message.stop_reason or "end_turn"
    return ChatResponse(
        content=text,
        finish_reason=_FINISH_REASONS.get(stop, stop),
        model=str(message.model or ""),
        usage=Usage(message.usage.input_tokens or 0, message.usage.output_tokens or 0),
    )


def _chunks(upstream: anthropic.Stream[RawMessageStreamEvent]) -> Iterator[StreamChunk]:
    prompt_tokens = 0
    try:
        for event in upstream:
            if event.type == "message_start":
                prompt_tokens = event.message.usage.input_tokens or 0
                yield StreamChunk(model=event.message.model or None)
            elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                yield StreamChunk(delta=event.delta.text)
            elif event.type == "message_delta":
                stop = event.delta.stop_reason or "end_turn"
                yield StreamChunk(
                    finish_reason=_FINISH_REASONS.get(stop, stop),
                    usage=Usage(prompt_tokens, event.usage.output_tokens or 0),
                )
    except Exception as exc:
        raise translate_error(exc) from exc
    finally:
        upstream.close()  # also when the client went away: stop generating upstream


def translate_error(exc: Exception) -> ProviderError:
    return translate_sdk_error(exc, anthropic)
