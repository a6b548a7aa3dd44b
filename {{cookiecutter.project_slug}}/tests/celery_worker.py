"""A real Celery worker for the tests, as fixtures: the celery feature's fixture module.

One worker process (`celery -A {{ cookiecutter.package_name }}.tasks worker`, one thread) for the
whole session, started by the first test that asks for it, on a queue of its own, with the test
database and a two-second visibility timeout, so that the job of a killed worker is handed out
again within seconds. It runs with `job_settings`, as do the app of the tests that use it and
the served service (app_server.py), and it traces to the same receiver as that service.
Redis holds its queue, so the tests that use it run last, one after another (see
`pytest_collection_modifyitems`), and keep Redis as it is between them (see test_worker.py):
no other test's cleanup empties Redis under the running worker. Starting a worker imports the
whole app, about as long as the tests that use it take to run, hence one per session.
Without TEST_REDIS_URL these tests skip; under CI=true they fail instead.

Not the solo pool: it runs a job inside the worker's event loop, which sends even an early
acknowledgement only once the job has returned, so a job killed mid-run would come back with
or without `task_acks_late`. On a thread the loop acknowledges at once unless the job is
acknowledged late, as under the prefork pool of a production worker.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from .app_server import environment
from .conftest import TEST_REDIS_URL

PACKAGE = "{{ cookiecutter.package_name }}"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
WAIT = 30.0  # seconds a job may take before the test fails
START_WAIT = 60.0  # seconds a worker may take to start (imports on a busy machine)
CI = os.environ.get("CI", "").lower() == "true"
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


def skip_without_redis() -> None:
    """Skips the calling test module without TEST_REDIS_URL; under CI=true `redis_url` fails."""
    if TEST_REDIS_URL is None and not CI:
        pytest.skip(
            "a real worker needs Redis: set TEST_REDIS_URL=redis://127.0.0.1:6379/1 to run these",
            allow_module_level=True,
        )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests that use the session's worker last, in their order."""
    items.sort(key=lambda item: "worker" in getattr(item, "fixturenames", ()))


@pytest.fixture(scope="session")
def redis_url() -> str:
    if TEST_REDIS_URL is None:
        pytest.fail("CI=true, but TEST_REDIS_URL is not set: the worker needs Redis", pytrace=False)
    return TEST_REDIS_URL


def new_queue() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def job_settings(redis_url: str, service_settings: dict[str, Any]) -> dict[str, Any]:
    """Settings of the test app, the served service and the worker."""
    return {
        **service_settings,
        **JOB_SETTINGS,
        "celery_broker_url": redis_url,
        "celery_result_backend": redis_url,
        "celery_queue": new_queue(),
    }


@pytest.fixture(scope="session")
def served_settings(job_settings: dict[str, Any]) -> dict[str, Any]:
    """The served service (app_server.py) queues its jobs for the session's worker."""
    return job_settings


@pytest.fixture(scope="session")
def worker(
    redis_url: str,
    database_url: str,
    test_settings: dict[str, Any],
    job_settings: dict[str, Any],
    tracing_settings: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Worker]:
    """The session's worker, with the test app's settings and `job_settings`, on the test
    database and Redis; it traces, as the served service does. Stopped at the end of the
    session, its queue's keys deleted."""
    settings = {
        **test_settings,
        **job_settings,
        **tracing_settings,
        "database_url": database_url,
        "redis_url": redis_url,
        "log_level": "INFO",
        "log_format": "console",
    }
    env = environment(settings)
    env["WORKER_HOLD_KEY"] = f"{settings['celery_queue']}:test:hold"
    store = redis.Redis.from_url(redis_url, decode_responses=True)
    worker = Worker(env, tmp_path_factory.mktemp("worker"), store)
    try:
        worker.start()
        yield worker
    finally:
        worker.stop()
        for key in store.scan_iter(f"{worker.queue}*"):
            store.delete(key)
        store.close()
