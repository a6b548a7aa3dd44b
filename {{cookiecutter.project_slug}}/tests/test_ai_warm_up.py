"""The AI SDK is warmed up before traffic, without a call to the provider."""

from __future__ import annotations

import logging

import pytest
from flask.testing import FlaskClient

from .upstream import Text, Upstream


def test_ready_warms_the_sdk_up_without_calling_the_provider(
    ai_client: FlaskClient,
    upstream: Upstream,
    ai_headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        assert ai_client.get("/health/ready").status_code == 200
    assert "warm-up failed" not in caplog.text  # the SDK still takes the warm-up's calls
    assert upstream.requests == []

    upstream.queue(Text("Warm.", prompt_tokens=2, completion_tokens=1))
    body = {"messages": [{"role": "user", "content": "Hi"}]}
    response = ai_client.post("/api/v1/ai/complete", json=body, headers=ai_headers)
    assert response.status_code == 200, response.json
    assert response.json["data"]["content"] == "Warm."  # type: ignore[index]
    assert len(upstream.requests) == 1
