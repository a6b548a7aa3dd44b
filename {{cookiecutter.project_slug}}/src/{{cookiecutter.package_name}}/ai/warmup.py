"""The SDK's first-call work, done before a worker takes traffic.

The first request through the SDK's client sets up its HTTP client and connection pool and
imports what sending and decoding need: tens of milliseconds in one process, more for several
first calls at once on a fresh gunicorn worker. Here one request goes the providers' own way
(`post()` with a body of our own, the reply as plain JSON) to a loopback port that refuses it
at once (no network beyond this host, no key, no cost). gunicorn runs this after loading the
app and before accepting (gunicorn.conf.py); `/health/ready` runs it too.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
{% if cookiecutter.ai_provider == "anthropic" %}
import anthropic
{%- else %}
import openai
{%- endif %}

from .settings import ai_settings


@contextmanager
def refusing_url() -> Iterator[str]:
    """A loopback address where a connection is refused at once (bound, not listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
{%- if cookiecutter.ai_provider == "anthropic" %}


def warm_up_sdk() -> None:
    """The Anthropic SDK's request path, ready."""
    if ai_settings().ai_offline:
        return
    body = {"model": "warm-up", "max_tokens": 1, "messages": [{"role": "user", "content": "ok"}]}
    with refusing_url() as url:
        client = anthropic.Anthropic(api_key="warm-up", base_url=url, max_retries=0, timeout=2)
        try:
            client.post("/v1/messages", body=body, cast_to=object)
        except anthropic.APIConnectionError:
            pass  # refused, as intended: the request was built and sent
        finally:
            client.close()
{%- else %}


def warm_up_sdk() -> None:
    """The OpenAI SDK's request path, ready."""
    if ai_settings().ai_offline:
        return
    body = {"model": "warm-up", "messages": [{"role": "user", "content": "ok"}]}
    with refusing_url() as url:
        client = openai.OpenAI(api_key="warm-up", base_url=url, max_retries=0, timeout=2)
        try:
            client.post(
                "/chat/completions",
                body=body,
                cast_to=object,
                options={"security": {"bearer_auth": True}},  # as the provider sends it
            )
        except openai.APIConnectionError:
            pass  # refused, as intended: the request was built and sent
        finally:
            client.close()
{%- endif %}
