"""The SDK's first-call work, done before a worker takes traffic.

The first call through the SDK imports its resource modules, resolves the type hints it
transforms requests with and builds the models it parses replies with: 100-200 ms in one
process, near a second for eight first calls at once on a fresh gunicorn worker. Here one
request is built and sent to a loopback port that refuses it at once (no network beyond this
host, no key, no cost), and a reply and a stream chunk are parsed. gunicorn runs this after
loading the app and before accepting (gunicorn.conf.py); `/health/ready` runs it too.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
{% if cookiecutter.ai_provider == "anthropic" %}
import anthropic
from anthropic.types import Message, MessageParam, RawMessageStreamEvent
{%- else %}
import openai
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessageParam
{%- endif %}

from .settings import ai_settings


@contextmanager
def refusing_url() -> Iterator[str]:
    """A loopback address where a connection is refused at once (bound, not listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
{%- if cookiecutter.ai_provider == "anthropic" %}


_MESSAGE: dict[str, Any] = {
    "id": "msg_warm_up",
    "type": "message",
    "role": "assistant",
    "model": "warm-up",
    "content": [{"type": "text", "text": "ok"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 1, "output_tokens": 1},
}
_DELTA: dict[str, Any] = {
    "type": "content_block_delta",
    "index": 0,
    "delta": {"type": "text_delta", "text": "ok"},
}


def warm_up_sdk() -> None:
    """The Anthropic SDK's request path and reply models, ready."""
    if ai_settings().ai_offline:
        return
    messages: list[MessageParam] = [{"role": "user", "content": "ok"}]
    with refusing_url() as url:
        client = anthropic.Anthropic(api_key="warm-up", base_url=url, max_retries=0, timeout=2)
        try:
            client.messages.create(model="warm-up", max_tokens=1, messages=messages)
        except anthropic.APIConnectionError:
            pass  # refused, as intended: the request was built and sent
        finally:
            client.close()
    Message.construct(**_MESSAGE)
    anthropic.types.RawContentBlockDeltaEvent.construct(**_DELTA)
    RawMessageStreamEvent  # noqa: B018 - the union every stream event is parsed into
{%- else %}


_COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-warm-up",
    "object": "chat.completion",
    "created": 0,
    "model": "warm-up",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}
_CHUNK: dict[str, Any] = {
    "id": "chatcmpl-warm-up",
    "object": "chat.completion.chunk",
    "created": 0,
    "model": "warm-up",
    "choices": [{"index": 0, "delta": {"role": "assistant", "content": "ok"}}],
}


def warm_up_sdk() -> None:
    """The OpenAI SDK's request path and reply models, ready."""
    if ai_settings().ai_offline:
        return
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "ok"}]
    with refusing_url() as url:
        client = openai.OpenAI(api_key="warm-up", base_url=url, max_retries=0, timeout=2)
        try:
            client.chat.completions.create(model="warm-up", messages=messages)
        except openai.APIConnectionError:
            pass  # refused, as intended: the request was built and sent
        finally:
            client.close()
    ChatCompletion.construct(**_COMPLETION)
    ChatCompletionChunk.construct(**_CHUNK)
{%- endif %}
