"""OpenAI chat completions through the official SDK; also any OpenAI-compatible server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import openai
from openai import omit
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessageParam

from ..base import (
    ChatRequest,
    ChatResponse,
    ProviderBadReplyError,
    ProviderError,
    StreamChunk,
    Usage,
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
        self._client = client or openai.OpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0
        )

    def complete(self, request: ChatRequest) -> ChatResponse:
        try:
            completion = self._client.chat.completions.create(
                model=request.model,
                messages=_messages(request),
                temperature=_given(request.temperature),
                max_tokens=_given(request.max_tokens),
                response_format=self._response_format(request),
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


def _messages(request: ChatRequest) -> list[ChatCompletionMessageParam]:
    return [
        cast("ChatCompletionMessageParam", {"role": m.role, "content": m.content})
        for m in request.messages
    ]


def _parse_completion(completion: ChatCompletion) -> ChatResponse:
    # Not every OpenAI-compatible server sends what the SDK's types promise.
    choices = getattr(completion, "choices", None) or []
    if not choices or getattr(choices[0], "message", None) is None:
        raise ProviderBadReplyError("The provider's reply has no choices.")
    content = choices[0].message.content
    if not isinstance(content, str):
        raise ProviderBadReplyError("The provider's reply has no text content.")
    usage = completion.usage
    return ChatResponse(
        content=content,
        finish_reason=str(choices[0].finish_reason or "stop"),
        model=str(completion.model or ""),
        usage=Usage(usage.prompt_tokens, usage.completion_tokens) if usage else Usage(),
    )


def _chunks(upstream: openai.Stream[ChatCompletionChunk]) -> Iterator[StreamChunk]:
    try:
        for chunk in upstream:
            usage = chunk.usage
            if usage is not None:
                yield StreamChunk(usage=Usage(usage.prompt_tokens, usage.completion_tokens))
            for choice in chunk.choices or []:
                yield StreamChunk(
                    delta=(choice.delta.content or "") if choice.delta else "",
                    finish_reason=choice.finish_reason,
                    model=chunk.model or None,
                )
    except Exception as exc:
        raise translate_error(exc) from exc
    finally:
        upstream.close()  # also when the client went away: stop generating upstream


def translate_error(exc: Exception) -> ProviderError:
    return translate_sdk_error(exc, openai)
