"""Provider failures: retries with backoff and Retry-After, and the 502 / 503 / 504 envelopes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI
from pydantic import ValidationError

from {{ cookiecutter.package_name }}.ai.settings import AISettings
from {{ cookiecutter.package_name }}.ai.warmup import refusing_url

from .upstream import Raw, Status, Text, Upstream, json_body, parse_events, provider_settings

HELLO = {"messages": [{"role": "user", "content": "Say hello"}]}


def complete(client: FlaskClient, headers: dict[str, str]) -> Any:
    return client.post("/api/v1/ai/complete", json=HELLO, headers=headers)


def test_rate_limited_then_success_honours_retry_after(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    upstream.queue(Status(429, headers={"Retry-After": "0.4"}), Text("finally"))

    started = time.perf_counter()
    response = complete(ai_client, ai_headers)
    elapsed = time.perf_counter() - started

    assert response.status_code == 200, response.json
    assert response.json["data"]["content"] == "finally"
    assert [w["code"] for w in response.json["warnings"]] == ["retried"]
    assert len(upstream.requests) == 2
    assert elapsed >= 0.4  # waited as long as the provider asked


def test_rate_limited_throughout_is_503_with_retry_after(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    upstream.queue(*[Status(429, headers={"Retry-After": "0"})] * 3)

    response = complete(ai_client, ai_headers)

    assert response.status_code == 503
    assert response.json["code"] == "ai_unavailable"
    assert int(response.headers["Retry-After"]) >= 1
    assert len(upstream.requests) == 3  # AI_MAX_RETRIES=2


def test_long_retry_after_is_passed_on_instead_of_waited_for(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    upstream.queue(Status(429, headers={"Retry-After": "120"}))

    started = time.perf_counter()
    response = complete(ai_client, ai_headers)

    assert time.perf_counter() - started < 10  # did not sit out the two minutes
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "120"
    assert len(upstream.requests) == 1


def test_short_retry_after_reaches_the_client_unchanged(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    # Longer than the retry loop waits, shorter than any rate-limit window.
    upstream.queue(Status(429, headers={"Retry-After": "45"}))

    response = complete(ai_client, ai_headers)

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "45"
    # A successful reply tells nobody to retry; the rate-limit headers stay.
    upstream.queue(Text("fine"))
    ok = complete(ai_client, ai_headers)
    assert ok.status_code == 200
    assert "Retry-After" not in ok.headers
    assert int(ok.headers["X-RateLimit-Remaining"]) >= 0


def test_server_errors_exhausted_are_502(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    upstream.queue(*[Status(500, "boom")] * 3)

    response = complete(ai_client, ai_headers)

    assert response.status_code == 502
    assert response.json["code"] == "ai_provider_error"
    assert response.json["details"] == {"attempts": 3}
    assert "Traceback" not in response.get_data(as_text=True)
    assert len(upstream.requests) == 3


def test_server_error_then_success_is_retried(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    upstream.queue(Status(503), Status(502), Text("ok now"))

    response = complete(ai_client, ai_headers)

    assert response.status_code == 200
    assert response.json["data"]["content"] == "ok now"
    assert len(upstream.requests) == 3


def test_client_errors_are_not_retried(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    upstream.queue(Status(400, "bad model"))

    response = complete(ai_client, ai_headers)

    assert response.status_code == 502
    assert "bad model" in response.json["message"]
    assert len(upstream.requests) == 1


def test_timeout_is_504(
    make_ai_app: Callable[..., OpenAPI], upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    client = make_ai_app(ai_timeout=0.3, ai_max_retries=1).test_client()
    upstream.queue(Text("too late", delay=1.0), Text("too late", delay=1.0))

    started = time.perf_counter()
    response = complete(client, ai_headers)

    assert response.status_code == 504
    assert response.json["code"] == "ai_timeout"
    assert time.perf_counter() - started < 2.0  # no hung worker
    assert len(upstream.requests) == 2


@pytest.mark.parametrize(
    "body", [b'{"choices": [{"message": ', b"<html>bad gateway</html>", b'{"unexpected": true}']
)
def test_unusable_reply_is_502(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str], body: bytes
) -> None:
    upstream.queue(Raw(body))

    response = complete(ai_client, ai_headers)

    assert response.status_code == 502
    assert response.json["code"] == "ai_provider_error"
    assert len(upstream.requests) == 1


def test_unreachable_provider_is_503(
    make_ai_app: Callable[..., OpenAPI], ai_headers: dict[str, str]
) -> None:
    with refusing_url() as url:
        client = make_ai_app(**provider_settings(url)).test_client()

        response = complete(client, ai_headers)

    assert response.status_code == 503
    assert response.json["code"] == "ai_unavailable"
    assert "Retry-After" in response.headers


def test_stream_refused_before_the_first_token_is_a_json_envelope(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    upstream.queue(*[Status(500)] * 3)

    response = ai_client.post("/api/v1/ai/stream", json=HELLO, headers=ai_headers)

    assert response.status_code == 502
    assert response.mimetype == "application/json"
    assert json_body(response)["code"] == "ai_provider_error"


def test_stream_broken_midway_ends_with_an_error_event(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    upstream.queue(
        Raw(b"event: message_start\ndata: {broken\n\n", content_type="text/event-stream")
    )

    response = ai_client.post("/api/v1/ai/stream", json=HELLO, headers=ai_headers)

    assert response.status_code == 200
    events = parse_events(response.get_data(as_text=True))
    assert events[-1][0] == "error"
    assert events[-1][1]["code"] == "ai_provider_error"
    assert events[-1][1]["message"]


def test_validation_errors_answer_before_any_stream(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    response = ai_client.post("/api/v1/ai/stream", json={"messages": []}, headers=ai_headers)

    assert response.status_code == 422
    assert response.mimetype == "application/json"
    assert upstream.requests == []


PRODUCTION: dict[str, Any] = {
    "app_env": "production",
    "secret_key": "s" * 40,
}


def test_production_refuses_the_offline_provider() -> None:
    with pytest.raises(ValidationError, match="AI_PROVIDER=fake"):
        AISettings(_env_file=None, **PRODUCTION, ai_provider="fake", ai_api_key="key")
{%- if cookiecutter.ai_provider != "ollama" %}


def test_production_refuses_a_missing_api_key() -> None:
    with pytest.raises(ValidationError, match="AI_API_KEY"):
        AISettings(_env_file=None, **PRODUCTION, ai_api_key=None)
{%- endif %}
