"""Jobs on a real Celery worker and the Redis of TEST_REDIS_URL: nothing is lost.

One worker process (`celery -A {{ cookiecutter.package_name }}.tasks worker`, one thread) serves
this module, on a queue of its own, with the test database and a two-second visibility timeout,
so that the job of a killed worker is handed out again within seconds. Without TEST_REDIS_URL
these tests skip; under CI=true they fail instead.

Not the solo pool: it runs a job inside the worker's event loop, which sends even an early
acknowledgement only once the job has returned, so a job killed mid-run would come back with
or without `task_acks_late`. On a thread the loop acknowledges at once unless the job is
acknowledged late, as under the prefork pool of a production worker.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI

from .conftest import TEST_REDIS_URL, TEST_SETTINGS
{%- if cookiecutter.ai_provider != "none" %}
from .test_tasks import JOB_BODY, add_items, ai_usage, queue_ai_job, queue_report, task_data
from .upstream import AI_TEST_SETTINGS, Status, Text, Upstream, provider_settings
{%- else %}
from .test_tasks import add_items, queue_report, task_data
{%- endif %}

PACKAGE = "{{ cookiecutter.package_name }}"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
WAIT = 30.0  # seconds a job may take before the test fails
START_WAIT = 60.0  # seconds a worker may take to start (imports on a busy machine)
CI = os.environ.get("CI", "").lower() == "true"
if TEST_REDIS_URL is None and not CI:  # under CI=true the `redis_url` fixture fails instead
    pytest.skip(
        "a real worker needs Redis: set TEST_REDIS_URL=redis://127.0.0.1:6379/1 to run these",
        allow_module_level=True,
    )
# Settings shared by the worker and the test app: redelivery after 2 s, short retry waits.
JOB_SETTINGS: dict[str, Any] = {
    "celery_visibility_timeout": 2,
    "celery_retry_backoff": 0.2,
}


class Worker:
    """The worker process, restartable; each start logs to its own file."""

    def __init__(self, env: dict[str, str], logs: Path, store: redis.Redis) -> None:
        self.env = env
        self.logs = logs
        self.store = store
        self.queue = env["CELERY_QUEUE"]
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        name = f"worker{self.starts}"
        command = [
            sys.executable,
            "-m",
            "celery",
            "--app",
            f"{PACKAGE}.tasks",
            "worker",
            "--pool=threads",
            "--concurrency=1",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--include=tests.worker_hooks",
            f"--hostname={name}@%h",
            f"--queues={self.queue}",
        ]
        with (self.logs / f"{name}.log").open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own command line
                command, cwd=PROJECT_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_until_ready(name)

    def _wait_until_ready(self, name: str) -> None:
        # A worker beats once it consumes (see tasks.py); wait for this one's first beat.
        deadline = time.monotonic() + START_WAIT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                pytest.fail(f"the worker exited at start:\n{self.log()}", pytrace=False)
            beat = self.store.get(f"{self.queue}:jobs:heartbeat")
            if beat and json.loads(beat)["hostname"].startswith(f"{name}@"):
                return
            time.sleep(0.05)
        pytest.fail(f"the worker did not start in {START_WAIT:.0f} s:\n{self.log()}", pytrace=False)

    def kill(self) -> None:
        """SIGKILL: no warm shutdown, nothing acknowledged or handed back."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=WAIT)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log(self) -> str:
        return "\n".join(
            path.read_text(errors="replace")[-4000:] for path in sorted(self.logs.glob("*.log"))
        )


@pytest.fixture(scope="module")
def redis_url() -> str:
    if TEST_REDIS_URL is None:
        pytest.fail("CI=true, but TEST_REDIS_URL is not set: the worker needs Redis", pytrace=False)
    return TEST_REDIS_URL


@pytest.fixture(scope="module")
def job_settings(redis_url: str{% if cookiecutter.ai_provider != "none" %}, upstream_server: Upstream{% endif %}) -> dict[str, Any]:
    """Settings of both the test app and the worker."""
    return {
        **JOB_SETTINGS,
        "celery_broker_url": redis_url,
        "celery_result_backend": redis_url,
        "celery_queue": f"test-{uuid.uuid4().hex[:12]}",
{%- if cookiecutter.ai_provider != "none" %}
        **AI_TEST_SETTINGS,
        **provider_settings(upstream_server),
        # No transport retries inside one attempt: upstream failures reach the job's retries.
        "ai_max_retries": 0,
{%- endif %}
    }


@pytest.fixture(scope="module")
def worker(
    redis_url: str,
    database_url: str,
    job_settings: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Worker]:
    settings = {
        **TEST_SETTINGS,
        **job_settings,
        "database_url": database_url,
        "redis_url": redis_url,
        "log_level": "INFO",
        "log_format": "console",
    }
    env = {key: value for key, value in os.environ.items() if not key.startswith("CELERY_")}
    for key, value in settings.items():
        if isinstance(value, str | int | float):  # lists and None have no place in the env
            env[key.upper()] = str(value)
    env["WORKER_HOLD_KEY"] = f"{settings['celery_queue']}:test:hold"
    store = redis.Redis.from_url(redis_url, decode_responses=True)
    worker = Worker(env, tmp_path_factory.mktemp("worker"), store)
    worker.start()
    yield worker
    worker.stop()
    for key in store.scan_iter(f"{worker.queue}*"):
        store.delete(key)
    store.close()


@pytest.fixture(autouse=True)
def _clean_services() -> None:
    """Replaces conftest's: Redis holds the worker's queue and unacknowledged jobs, so it is
    not flushed between these tests, and every assertion is about the test's own data."""


@pytest.fixture
def app(make_app: Callable[..., OpenAPI], worker: Worker, job_settings: dict[str, Any]) -> OpenAPI:
    return make_app(**job_settings)


@pytest.fixture
def headers({% if cookiecutter.use_auth %}auth_headers: dict[str, str]{% endif %}) -> dict[str, str]:
    return {% if cookiecutter.use_auth %}auth_headers{% else %}{}{% endif %}


def wait_for(condition: Callable[[], Any], worker: Worker, what: str) -> Any:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"{what} did not happen in {WAIT:.0f} s; worker log:\n{worker.log()}")


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
{%- if cookiecutter.use_auth %}
    assert (data["result"]["total"], data["result"]["total_value"]) == (2, 3)
{%- endif %}
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
    wait_for(lambda: worker.store.get(f"{hold}:holding") == task_id, worker, "delivery")
    time.sleep(1)  # the job runs: an acknowledgement sent before it ran has reached the broker

    worker.kill()
    worker.store.delete(hold, f"{hold}:holding")
    assert task_data(client, url, headers)["status"] == "PENDING"
    worker.start()

    data = finished(client, url, headers, worker)
    assert data["status"] == "SUCCESS", data
    assert data["result"]["total"] >= 0
    assert worker.store.get(f"{hold}:runs:{task_id}") == "2"  # handed out again, once
{%- if cookiecutter.ai_provider != "none" %}


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
    wait_for(lambda: worker.store.get(f"{hold}:holding") == task_id, worker, "the first run")

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
{%- endif %}
