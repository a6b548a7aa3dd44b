"""AI completions as background jobs (`POST /ai/jobs`), run eagerly against the stub provider.

test_ai_worker.py runs them on a real worker (with TEST_REDIS_URL).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI

from {{ cookiecutter.package_name }}.ai.jobs import AI_COMPLETION

from .test_tasks import EAGER, task_data
from .test_tools import ask
from .upstream import Call, Raw, Status, Text, ToolUse, Upstream, json_body

JOB_BODY = {"messages": [{"role": "user", "content": "Say hello."}]}


@pytest.fixture
def ai_jobs(make_ai_app: Callable[..., OpenAPI]) -> OpenAPI:
    # Eager jobs against the stub provider; no transport retries, so failures reach the job.
    return make_ai_app(**EAGER, ai_max_retries=0)


def queue_ai_job(
    client: FlaskClient, headers: dict[str, str], body: dict[str, Any] = JOB_BODY
) -> str:
    response = client.post("/api/v1/ai/jobs", json=body, headers=headers)
    assert response.status_code == 202, response.json
    return str(response.json["data"]["status_url"])  # type: ignore[index]


def ai_usage(client: FlaskClient, headers: dict[str, str]) -> dict[str, Any]:
    usage: dict[str, Any] = client.get("/api/v1/ai/usage", headers=headers).json["data"]  # type: ignore[index]
    return usage


def test_ai_job_returns_the_completion(
    ai_jobs: OpenAPI, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    client = ai_jobs.test_client()
    upstream.queue(Text("Hello there!", prompt_tokens=7, completion_tokens=3))

    data = task_data(client, queue_ai_job(client, ai_headers), ai_headers)

    assert data["status"] == "SUCCESS"
    result = data["result"]
    assert (result["content"], result["role"], result["finish_reason"]) == (
        "Hello there!",
        "assistant",
        "stop",
    )
    assert result["usage"] == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    [sent] = upstream.requests
    assert "Say hello." in str(sent.body)
    usage = ai_usage(client, ai_headers)
    assert (usage["total_requests"], usage["total_tokens"]) == (1, 10)


def test_ai_job_retries_upstream_failures_then_succeeds(
    ai_jobs: OpenAPI, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    client = ai_jobs.test_client()
    upstream.queue(Status(500), Status(503), Text("Finally.", prompt_tokens=4, completion_tokens=2))

    data = task_data(client, queue_ai_job(client, ai_headers), ai_headers)

    assert (data["status"], data["retries"]) == ("SUCCESS", 2)
    assert data["result"]["content"] == "Finally."
    assert len(upstream.requests) == 3
    usage = ai_usage(client, ai_headers)
    assert (usage["total_requests"], usage["total_tokens"]) == (3, 6)  # every attempt, once


def test_ai_job_does_not_retry_an_unusable_reply(
    ai_jobs: OpenAPI, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    client = ai_jobs.test_client()
    upstream.queue(Raw(b"{not json"))

    data = task_data(client, queue_ai_job(client, ai_headers), ai_headers)

    assert (data["status"], data["retries"]) == ("FAILURE", 0)
    assert data["error"]["code"] == "ai_provider_error"
    assert len(upstream.requests) == 1


def test_a_redelivered_ai_job_is_not_run_or_counted_twice(
    ai_jobs: OpenAPI, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    client = ai_jobs.test_client()
    url = queue_ai_job(client, ai_headers)
    first = task_data(client, url, ai_headers)["result"]
    celery = ai_jobs.extensions["celery"]
    task_id = url.rsplit("/", 1)[1]
    kwargs = celery.AsyncResult(task_id).kwargs  # as the message carried them

    # What a worker does with a message that comes back after its first run had finished.
    again = celery.tasks[AI_COMPLETION].apply(kwargs=kwargs, task_id=task_id).get()

    assert again["content"] == first["content"]
    assert len(upstream.requests) == 1
    assert ai_usage(client, ai_headers)["total_requests"] == 1


def test_ai_job_body_is_validated(ai_jobs: OpenAPI, ai_headers: dict[str, str]) -> None:
    client = ai_jobs.test_client()
    bodies: list[dict[str, Any]] = [{"messages": []}, {**JOB_BODY, "n": 2}, {"messages": "hi"}]
    for body in bodies:
        response = client.post("/api/v1/ai/jobs", json=body, headers=ai_headers)
        assert response.status_code == 422, body
        assert response.json["code"] == "validation_error"  # type: ignore[index]


def test_ai_job_is_refused_once_the_budget_is_spent(
    make_ai_app: Callable[..., OpenAPI], upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    client = make_ai_app(**EAGER, ai_token_budget_daily=10).test_client()
    upstream.queue(Text("A long answer.", prompt_tokens=8, completion_tokens=8))
    assert task_data(client, queue_ai_job(client, ai_headers), ai_headers)["status"] == "SUCCESS"

    response = client.post("/api/v1/ai/jobs", json=JOB_BODY, headers=ai_headers)

    assert response.status_code == 429
    assert response.json["code"] == "budget_exceeded"  # type: ignore[index]
    assert int(response.headers["Retry-After"]) > 0
    assert len(upstream.requests) == 1


def test_an_ai_job_runs_the_tool_loop(
    make_ai_app: Callable[..., OpenAPI], upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    eager = dict.fromkeys(("redis_url", "celery_broker_url", "celery_result_backend"))
    client = make_ai_app(**eager).test_client()
    upstream.queue(ToolUse([Call("current_time", {"timezone": "UTC"})]), Text("Noon."))

    queued = client.post("/api/v1/ai/jobs", json=ask("current_time"), headers=ai_headers)
    refused = client.post("/api/v1/ai/jobs", json=ask("rm_rf"), headers=ai_headers)

    assert queued.status_code == 202, queued.json
    task = client.get(json_body(queued)["data"]["status_url"], headers=ai_headers)
    data = json_body(task)["data"]
    assert data["status"] == "SUCCESS", data
    assert data["result"]["content"] == "Noon."
    assert data["result"]["steps"][0]["result"]["timezone"] == "UTC"
    assert refused.status_code == 422
