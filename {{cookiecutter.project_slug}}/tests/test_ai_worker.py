"""AI jobs on a real Celery worker (tests/celery_worker.py) that calls the stub provider:
upstream failures are retried by the job, and a redelivered job is not run or counted twice."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI

from .celery_worker import Worker, skip_without_redis
from .test_ai_jobs import JOB_BODY, ai_usage, queue_ai_job
from .test_worker import finished, job_counts, wait_for, wait_until_held
from .upstream import Status, Text, Upstream

skip_without_redis()


@pytest.fixture(autouse=True)
def _clean_services() -> None:
    """Replaces conftest's, as in test_worker.py: the worker's queue lives in Redis."""


@pytest.fixture
def app(make_app: Callable[..., OpenAPI], worker: Worker, job_settings: dict[str, Any]) -> OpenAPI:
    return make_app(**job_settings)


def test_ai_job_retries_upstream_failures_on_the_worker(
    client: FlaskClient, headers: dict[str, str], worker: Worker, upstream: Upstream
) -> None:
    upstream.queue(Status(500), Status(503), Text("Third time lucky."))
    before = job_counts(client, "ai_completion")

    data = finished(client, queue_ai_job(client, headers), headers, worker)

    assert (data["status"], data["retries"]) == ("SUCCESS", 2), data
    assert data["result"]["content"] == "Third time lucky."
    assert len(upstream.requests) == 3
    after = job_counts(client, "ai_completion")
    assert after["retried"] - before.get("retried", 0) == 2


def test_an_ai_job_redelivered_after_it_ran_is_not_run_or_counted_twice(
    client: FlaskClient, headers: dict[str, str], worker: Worker, upstream: Upstream
) -> None:
    hold = worker.env["WORKER_HOLD_KEY"]
    worker.store.set(hold, "after")
    usage_before = ai_usage(client, headers)
    url = queue_ai_job(client, headers, JOB_BODY)
    task_id = url.rsplit("/", 1)[1]
    wait_until_held(worker, task_id, "the first run")

    worker.kill()  # after the reply, before the acknowledgement
    worker.store.delete(hold, f"{hold}:holding")
    worker.start()
    wait_for(lambda: worker.store.get(f"{hold}:done:{task_id}") == "2", worker, "the redelivery")
    assert worker.store.get(f"{hold}:runs:{task_id}") == "2"

    data = finished(client, url, headers, worker)
    assert data["status"] == "SUCCESS", data
    assert len(upstream.requests) == 1
    usage = ai_usage(client, headers)
    assert usage["total_requests"] - usage_before["total_requests"] == 1
