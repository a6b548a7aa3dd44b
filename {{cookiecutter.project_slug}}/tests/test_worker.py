"""Jobs on a real Celery worker and the Redis of TEST_REDIS_URL: nothing is lost.

The worker comes from tests/celery_worker.py; tests/worker_hooks.py lets a test hold a job
before or after it runs, to kill the worker right then.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI

from .celery_worker import WAIT, Worker, skip_without_redis
from .test_tasks import add_items, queue_report, task_data

skip_without_redis()


@pytest.fixture(autouse=True)
def _clean_services() -> None:
    """Replaces conftest's: Redis holds the worker's queue and unacknowledged jobs, so it is
    not flushed between these tests, and every assertion is about the test's own data."""


@pytest.fixture
def app(make_app: Callable[..., OpenAPI], worker: Worker, job_settings: dict[str, Any]) -> OpenAPI:
    return make_app(**job_settings)


def wait_for(condition: Callable[[], Any], worker: Worker, what: str) -> Any:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"{what} did not happen in {WAIT:.0f} s; worker log:\n{worker.log()}")


def wait_until_held(worker: Worker, task_id: str, what: str) -> None:
    """Until the worker holds job `task_id` (worker_hooks.py). A job held instead can only be an
    earlier test's, delivered again after that test ended (its message not acknowledged within
    the short visibility timeout, as on a busy machine): it is let go, and the wait goes on.
    Held, it would keep the worker busy for MAX_HOLD while this test's job waited behind it."""
    holding = f"{worker.env['WORKER_HOLD_KEY']}:holding"

    def held() -> bool:
        current = worker.store.get(holding)
        if current is not None and current != task_id:
            worker.store.delete(holding)
        return current == task_id

    wait_for(held, worker, what)


def finished(
    client: FlaskClient, url: str, headers: dict[str, str], worker: Worker
) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        data = task_data(client, url, headers)
        return data if data["status"] in ("SUCCESS", "FAILURE") else None

    result: dict[str, Any] = wait_for(done, worker, f"the job {url}")
    return result


def job_counts(client: FlaskClient, task: str) -> dict[str, float]:
    text = client.get("/metrics").get_data(as_text=True)
    pattern = r'background_jobs_total\{event="(\w+)",task="' + task + r'"\} ([0-9.]+)'
    return {event: float(value) for event, value in re.findall(pattern, text)}


def test_report_runs_on_the_worker(
    client: FlaskClient, headers: dict[str, str], worker: Worker
) -> None:
    add_items(client, headers, {"title": "a", "price": 3}, {"title": "b", "status": "published"})
    before = job_counts(client, "items_report")

    data = finished(client, queue_report(client, headers), headers, worker)

    assert data["status"] == "SUCCESS", data
    stats = client.get("/api/v1/items/stats", headers=headers).json["data"]  # type: ignore[index]
    assert {key: data["result"][key] for key in stats} == stats
    # The report covers what the caller sees: with no other writers, exactly the listing.
    listed = client.get("/api/v1/items", headers=headers, query_string={"size": 100}).json
    assert listed is not None
    assert data["result"]["total"] == listed["data"]["total"]
    prices = [item["price"] or 0 for item in listed["data"]["items"]]
    assert data["result"]["total_value"] == pytest.approx(sum(prices))
    after = job_counts(client, "items_report")
    assert after["succeeded"] - before.get("succeeded", 0) == 1
    checks = client.get("/health").json["checks"]  # type: ignore[index]
    assert checks["worker"]["status"] == "ok", checks["worker"]


def test_a_job_whose_worker_is_killed_is_redelivered(
    client: FlaskClient, headers: dict[str, str], worker: Worker
) -> None:
    hold = worker.env["WORKER_HOLD_KEY"]
    worker.store.set(hold, "before")
    url = queue_report(client, headers)
    task_id = url.rsplit("/", 1)[1]
    wait_until_held(worker, task_id, "delivery")
    time.sleep(1)  # the job runs: an acknowledgement sent before it ran has reached the broker

    worker.kill()
    worker.store.delete(hold, f"{hold}:holding")
    assert task_data(client, url, headers)["status"] == "PENDING"
    worker.start()

    data = finished(client, url, headers, worker)
    assert data["status"] == "SUCCESS", data
    assert data["result"]["total"] >= 0
    assert worker.store.get(f"{hold}:runs:{task_id}") == "2"  # handed out again, once
