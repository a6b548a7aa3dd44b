"""OpenAI chat completions through the official SDK; also any OpenAI-compatible server.

Tools go out as `tools` (functions), come back as the message's `tool_calls` (streamed in
pieces, assembled here by their index), and their results go back as `tool` messages.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import openai
from openai import omit
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessageParam,
    ChatCompletionToolParam,
)
from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall

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
    translate_sdk_error,
)


class OpenAIProvider:
    """Chat completions. Retries are ours (`ai/retry.py`), so the SDK's own are switched off."""

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None,
        timeout: float,
        name: str = "openai",
        json_mode: bool = True,
        client: openai.OpenAI | None = None,
    ) -> None:
        self.name = name
        self._json_mode = json_mode
        self._client = client or sdk_client(
            openai.OpenAI, api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0
        )

    def complete(self, request: ChatRequest) -> ChatResponse:
        try:
            completion = self._client.chat.completions.create(
                model=request.model,
                messages=_messages(request),
                temperature=_given(request.temperature),
                max_tokens=_given(request.max_tokens),
                response_format=self._response_format(request),
                tools=_tools(request),
            )
        except Exception as exc:
            raise translate_error(exc) from exc
        return _parse_completion(completion)

    def stream(self, request: ChatRequest) -> Iterator[StreamChunk]:
        try:
            upstream = self._client.chat.completions.create(
                model=request.model,
                messages=_messages(request),
                temperature=_given(request.temperature),
                max_tokens=_given(request.max_tokens),
                response_format=self._response_format(request),
                tools=_tools(request),
                stream=True,
                stream_options={"include_usage": True},
            )
        except Exception as exc:
            raise translate_error(exc) from exc
        return _chunks(upstream)

    def _response_format(self, request: ChatRequest) -> Any:
        if request.json_output and self._json_mode:
            return {"type": "json_object"}
        return omit


def _given(value: Any) -> Any:
    return omit if value is None else value


def _tools(request: ChatRequest) -> Any:
    if not request.tools:
        return omit
    return [
        cast(
            "ChatCompletionToolParam",
            {
                "type": "function",
                "function": {
                    "name": spec.name,
                    "description": spec.description,
                    "parameters": spec.parameters,
                },
            },
        )
        for spec in request.tools
    ]


def _messages(request: ChatRequest) -> list[ChatCompletionMessageParam]:
    return [_message(m) for m in request.messages]


def _message(message: Message) -> ChatCompletionMessageParam:
    if message.role == "tool":
        param: dict[str, Any] = {
            "role": "tool",
            "tool_call_id": message.tool_call_id,
            "content": message.content,
        }
    elif message.tool_calls:
        param = {
            "role": "assistant",
            "content": message.content or None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in message.tool_calls
            ],
        }
    else:
        param = {"role": message.role, "content": message.content}
    return cast("ChatCompletionMessageParam", param)


def _parse_completion(completion: ChatCompletion) -> ChatResponse:
    # Not every OpenAI-compatible server sends what the SDK's types promise.
    choices = getattr(completion, "choices", None) or []
    if not choices or getattr(choices[0], "message", None) is None:
        raise ProviderBadReplyError("The provider's reply has no choices.")
    message = choices[0].message
    tool_calls = tuple(
        ToolCall(call.id, call.function.name, call.function.arguments or "")
        for call in message.tool_calls or []
        if call.type == "function"
    )
    content = message.content
    if content is None and tool_calls:
        content = ""
    if not isinstance(content, str):
        raise ProviderBadReplyError("The provider's reply has no text content.")
    usage = completion.usage
    # Some compatible servers say "stop" even when they ask for tools.
    finish_reason = "tool_calls" if tool_calls else str(choices[0].finish_reason or "stop")
    return ChatResponse(
        content=content,
        finish_reason=finish_reason,
        model=str(completion.model or ""),
        usage=Usage(usage.prompt_tokens, usage.completion_tokens) if usage else Usage(),
        tool_calls=tool_calls,
    )


@dataclass
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class _ToolCallAssembler:
    """Tool calls arrive in pieces across chunks: the id and name first, then the arguments'
    JSON a few characters at a time, each piece tagged with the call's index."""

    def __init__(self) -> None:
        self._calls: dict[int, _PartialCall] = {}

    def add(self, pieces: list[ChoiceDeltaToolCall]) -> None:
        for piece in pieces:
            call = self._calls.setdefault(piece.index, _PartialCall())
            call.id = call.id or (piece.id or "")
            if piece.function is not None:
                call.name += piece.function.name or ""
                call.arguments.append(piece.function.arguments or "")

    def take(self) -> tuple[ToolCall, ...]:
        calls = tuple(
            ToolCall(call.id or f"call_{index}", call.name, "".join(call.arguments))
            for index, call in sorted(self._calls.items())
        )
        self._calls.clear()
        return calls


def _chunks(upstream: openai.Stream[ChatCompletionChunk]) -> Iterator[StreamChunk]:
    calls = _ToolCallAssembler()
    try:
        for chunk in upstream:
            usage = chunk.usage
            if usage is not None:
                yield StreamChunk(usage=Usage(usage.prompt_tokens, usage.completion_tokens))
            for choice in chunk.choices or []:
                delta = choice.delta
                if delta is not None and delta.tool_calls:
                    calls.add(delta.tool_calls)
                finished = calls.take() if choice.finish_reason else ()
                yield StreamChunk(
                    delta=(delta.content or "") if delta else "",
                    finish_reason="tool_calls" if finished else choice.finish_reason,
                    model=chunk.model or None,
                    tool_calls=finished,
                )
        left = calls.take()  # a server that never said why it stopped
        if left:
            yield StreamChunk(finish_reason="tool_calls", tool_calls=left)
    except Exception as exc:
        raise translate_error(exc) from exc
    finally:
        upstream.close()  # also when the client went away: stop generating upstream


def translate_error(exc: Exception) -> ProviderError:
    return translate_sdk_error(exc, openai)
