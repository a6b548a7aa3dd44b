"""Anthropic messages through the official SDK. System messages go to its `system` parameter.

The Messages API of current models takes no sampling parameters, so `temperature` is not sent
(it still decides whether a reply may be cached).

Tools go out with their `input_schema`, come back as `tool_use` content blocks (streamed as
`input_json_delta` pieces, assembled here), and their results go back as `tool_result` blocks
of one user message.

The body is built here and sent with the SDK client's `post()`, the reply read as plain JSON
(`cast_to=object`): the SDK still does the URL, auth, timeouts and HTTP errors (and error events
in a stream), without the reply models of `messages.create()`, which took a quarter of a call's
time on loopback (1.6 ms against 1.2 ms), nor that method's own OpenTelemetry span: the call's
span is ours (`ai/tracing.py`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping

import anthropic

from ..base import (
    ChatRequest,
    ChatResponse,
    JSONObject,
    Message,
    ProviderBadReplyError,
    ProviderError,
    StreamChunk,
    ToolCall,
    Usage,
    as_count,
    as_object,
    as_objects,
    as_text,
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
        try:
            reply = self._client.post("/v1/messages", body=_body(request), cast_to=object)
        except Exception as exc:
            raise translate_error(exc) from exc
        return _parse_message(reply)

    def stream(self, request: ChatRequest) -> Iterator[StreamChunk]:
        body = _body(request)
        body["stream"] = True
        try:
            upstream = self._client.post(
                "/v1/messages",
                body=body,
                cast_to=object,
                stream=True,
                stream_cls=anthropic.Stream[object],
            )
        except Exception as exc:
            raise translate_error(exc) from exc
        return _chunks(upstream)


def _body(request: ChatRequest) -> dict[str, object]:
    """The request as the Messages API has it; no system prompt or tools unless there are some."""
    system, messages = _split(request)
    body: dict[str, object] = {
        "model": request.model,
        "messages": messages,
        "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
    }
    if system:
        body["system"] = system
    if request.tools:
        body["tools"] = [
            {"name": spec.name, "description": spec.description, "input_schema": spec.parameters}
            for spec in request.tools
        ]
    return body


def _split(request: ChatRequest) -> tuple[str, list[dict[str, object]]]:
    """The system prompt, and the other messages as Anthropic wants them: the results of one
    turn's tool calls together in the user message that follows it."""
    system = "\n\n".join(m.content for m in request.messages if m.role == "system")
    messages: list[dict[str, object]] = []
    results: list[dict[str, object]] | None = None  # tool_result blocks of the last user message
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
    return system, messages


def _assistant_blocks(message: Message) -> list[dict[str, object]]:
    blocks: list[dict[str, object]] = [{"type": "text", "text": message.content}]
    blocks += [
        {"type": "tool_use", "id": call.id, "name": call.name, "input": tool_arguments(call)}
        for call in message.tool_calls
    ]
    return blocks if message.content else blocks[1:]  # no empty text blocks


def _parse_message(reply: object) -> ChatResponse:
    message = as_object(reply)
    content = message.get("content")
    usage = message.get("usage")
    if not isinstance(content, list) or not isinstance(usage, Mapping):
        raise ProviderBadReplyError("The provider's reply is not a message.")
    blocks = as_objects(content)
    text = "".join(as_text(block.get("text")) for block in blocks if block.get("type") == "text")
    tool_calls = tuple(_tool_use(block) for block in blocks if block.get("type") == "tool_use")
    stop = as_text(message.get("stop_reason")) or "end_turn"
    return ChatResponse(
        content=text,
        finish_reason="tool_calls" if tool_calls else _FINISH_REASONS.get(stop, stop),
        model=as_text(message.get("model")),
        usage=Usage(as_count(usage.get("input_tokens")), as_count(usage.get("output_tokens"))),
        tool_calls=tool_calls,
    )


def _tool_use(block: JSONObject) -> ToolCall:
    arguments = json.dumps(block.get("input", {}))
    return ToolCall(as_text(block.get("id")), as_text(block.get("name")), arguments)


def _chunks(upstream: anthropic.Stream[object]) -> Iterator[StreamChunk]:
    prompt_tokens = 0
    # Content block index -> the tool_use block's id, name and pieces of its input JSON.
    calls: dict[int, tuple[str, str, list[str]]] = {}
    try:
        for item in upstream:  # the SDK leaves out pings and raises on error events
            event = as_object(item)
            kind = event.get("type")
            index = as_count(event.get("index"))
            if kind == "message_start":
                start = as_object(event.get("message"))
                prompt_tokens = as_count(as_object(start.get("usage")).get("input_tokens"))
                yield StreamChunk(model=as_text(start.get("model")) or None)
            elif kind == "content_block_start":
                block = as_object(event.get("content_block"))
                if block.get("type") == "tool_use":
                    calls[index] = (as_text(block.get("id")), as_text(block.get("name")), [])
            elif kind == "content_block_delta":
                delta = as_object(event.get("delta"))
                if delta.get("type") == "text_delta":
                    yield StreamChunk(delta=as_text(delta.get("text")))
                elif delta.get("type") == "input_json_delta" and index in calls:
                    calls[index][2].append(as_text(delta.get("partial_json")))
            elif kind == "message_delta":
                stop = as_text(as_object(event.get("delta")).get("stop_reason")) or "end_turn"
                completion_tokens = as_count(as_object(event.get("usage")).get("output_tokens"))
                finished = tuple(
                    ToolCall(call_id, name, "".join(pieces) or "{}")
                    for _, (call_id, name, pieces) in sorted(calls.items())
                )
                calls.clear()
                yield StreamChunk(
                    finish_reason="tool_calls" if finished else _FINISH_REASONS.get(stop, stop),
                    usage=Usage(prompt_tokens, completion_tokens),
                    tool_calls=finished,
                )
    except Exception as exc:
        raise translate_error(exc) from exc
    finally:
        upstream.close()  # also when the client went away: stop generating upstream


def translate_error(exc: Exception) -> ProviderError:
    return translate_sdk_error(exc, anthropic)
