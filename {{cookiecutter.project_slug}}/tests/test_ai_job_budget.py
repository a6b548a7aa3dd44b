"""`POST /api/v1/ai/jobs` refuses a job at once (429) when today's tokens reach the budget,
before anything is queued, and queues it while a token is left."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI

from .upstream import Upstream, json_body

HELLO = {"messages": [{"role": "user", "content": "Say hello"}]}
HELLO_TOKENS = 15  # the stub's default reply: 10 prompt + 5 completion tokens
# No broker: an accepted job runs eagerly, inside the request that queues it.
EAGER: dict[str, Any] = dict.fromkeys(("redis_url", "celery_broker_url", "celery_result_backend"))


def spend_one_completion(client: FlaskClient, headers: dict[str, str]) -> None:
    response = client.post("/api/v1/ai/complete", json=HELLO, headers=headers)
    assert response.status_code == 200, response.json


def test_a_job_is_refused_once_the_tokens_used_reach_the_budget_exactly(
    make_ai_app: Callable[..., OpenAPI], upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    client = make_ai_app(**EAGER, ai_token_budget_daily=HELLO_TOKENS).test_client()
    spend_one_completion(client, ai_headers)  # 15 of 15

    response = client.post("/api/v1/ai/jobs", json=HELLO, headers=ai_headers)

    assert response.status_code == 429, response.json
    body = json_body(response)
    assert body["code"] == "budget_exceeded"
    assert int(response.headers["Retry-After"]) == body["details"]["resets_in_seconds"]
    assert len(upstream.requests) == 1  # nothing was queued, so nothing ran


def test_a_job_is_queued_while_a_token_of_the_budget_is_left(
    make_ai_app: Callable[..., OpenAPI], upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    client = make_ai_app(**EAGER, ai_token_budget_daily=HELLO_TOKENS + 1).test_client()
    spend_one_completion(client, ai_headers)  # 15 of 16

    response = client.post("/api/v1/ai/jobs", json=HELLO, headers=ai_headers)

    assert response.status_code == 202, response.json
    status = client.get(json_body(response)["data"]["status_url"], headers=ai_headers)
    assert json_body(status)["data"]["status"] == "SUCCESS"
    assert len(upstream.requests) == 2
