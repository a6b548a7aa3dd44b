"""AI through the shipped nginx config: each chunk of a stream arrives as the provider sends it,
and the playground keeps the app's own Content-Security-Policy."""

from __future__ import annotations

import json
import threading

from {{ cookiecutter.package_name }}.playground.views import CONTENT_SECURITY_POLICY

from .nginx_proxy import Proxy
from .upstream import Text, Upstream


def test_stream_arrives_chunk_by_chunk(
    proxy: Proxy, headers: dict[str, str], upstream: Upstream
) -> None:
    # The provider sends its first chunk and waits: buffered anywhere on the way (nginx, gzip,
    # the worker), that chunk would not reach the client and the stream would never finish.
    chunks = ["one", " two", " three", " four", " five"]
    hold = threading.Event()
    upstream.queue(Text("".join(chunks), chunks=chunks, hold=hold))
    # The first AI call of a fresh worker also imports the SDK: allow for a slow machine.
    connection = proxy.connection(timeout=120)
    try:
        connection.request(
            "POST",
            "/api/v1/ai/stream",
            body=json.dumps({"messages": [{"role": "user", "content": "Count to five"}]}),
            headers={
                **headers,
                "Content-Type": "application/json",
                "Accept": "text/event-stream",
            },
        )
        response = connection.getresponse()
        assert response.status == 200, response.read()
        assert response.getheader("Content-Type", "").startswith("text/event-stream")
        assert response.getheader("Content-Encoding") is None
        deltas: list[str] = []
        event = ""
        while line := response.readline():
            text = line.decode().strip()
            if text.startswith("event:"):
                event = text.removeprefix("event:").strip()
            elif text.startswith("data:") and event == "delta":
                deltas.append(json.loads(text.removeprefix("data:"))["content"])
                hold.set()  # the first chunk is here: let the provider go on
            elif text.startswith("data:") and event in ("done", "error"):
                assert event == "done", text
                break
    finally:
        connection.close()

    assert deltas == chunks


def test_playground_keeps_its_own_policy(proxy: Proxy) -> None:
    """The server's `default-src 'none'` would stop the page's script: only the app's policy."""
    for path in ("/playground", "/playground/assets/playground.js"):
        response, body = proxy.request("GET", path)

        assert response.status == 200, body
        assert response.headers.get_all("Content-Security-Policy") == [CONTENT_SECURITY_POLICY]
        assert response.getheader("X-Frame-Options") == "DENY"
