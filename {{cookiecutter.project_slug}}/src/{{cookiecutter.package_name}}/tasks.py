"""Background jobs: the Celery app, built from the same settings as the web app, and its tasks.

Run them with `celery -A {{ cookiecutter.package_name }}.tasks worker`. Every job runs inside a
Flask app context (one app per worker process). A job is acknowledged only once it has finished,
so the job of a worker that dies is redelivered; transient failures are retried with exponential
backoff. Without a broker (neither CELERY_BROKER_URL nor REDIS_URL) jobs run eagerly, inside the
request that queues them: fine for development, not for production.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from functools import cached_property
from typing import Any, Literal, TypeVar

import redis
from celery import Celery, Task, shared_task
from celery.signals import (
    setup_logging,
    worker_init,
    worker_process_init,
    worker_ready,
    worker_shutdown,
)
from flask import Flask, current_app, has_app_context
from prometheus_client.core import REGISTRY, CounterMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.exc import OperationalError

from .errors import APIError, {% if cookiecutter.use_auth %}NotFound, {% endif %}ServiceUnavailable
{%- if cookiecutter.use_auth %}
from .extensions import db
{%- endif %}
{%- if cookiecutter.ai_provider != "none" %}
from .models.ai import CompletionRequest
{%- endif %}
{%- if cookiecutter.use_auth %}
from .models.user import User
{%- endif %}
from .observability import configure_logging
{%- if cookiecutter.ai_provider != "none" %}
from .services import ai, reports
{%- else %}
from .services import reports
{%- endif %}
from .settings import Settings

logger = logging.getLogger(__name__)

PACKAGE = "{{ cookiecutter.package_name }}"
ITEMS_REPORT = f"{PACKAGE}.items_report"
{%- if cookiecutter.ai_provider != "none" %}
AI_COMPLETION = f"{PACKAGE}.ai_completion"
{%- endif %}

JobEvent = Literal["queued", "started", "retried", "succeeded", "failed"]
JOB_EVENTS: tuple[JobEvent, ...] = ("queued", "started", "retried", "succeeded", "failed")
HEARTBEAT_INTERVAL = 10.0  # seconds between a worker's heartbeats
HEARTBEAT_MAX_AGE = 3 * HEARTBEAT_INTERVAL  # older than this: the worker is presumed gone

F = TypeVar("F", bound=Callable[..., Any])


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery's configuration, from our settings."""
    eager = settings.broker_url is None
    return {
        "broker_url": settings.broker_url or "memory://",
        # Eager jobs keep their results in process memory (one process: development only).
        "result_backend": settings.result_backend or "cache+memory://",
        "task_always_eager": eager,
        "task_eager_propagates": False,
        "task_store_eager_result": True,
        "task_default_queue": settings.celery_queue,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_extended": True,
        "result_expires": settings.celery_result_expires,
        "task_track_started": True,
        # Never lose a job: acknowledge it after it ran, put it back when its process dies,
        # and take one message at a time so that a dying worker strands at most one.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "task_soft_time_limit": settings.celery_task_soft_time_limit,
        "task_time_limit": settings.celery_task_time_limit,
        "broker_transport_options": {
            "visibility_timeout": settings.celery_visibility_timeout,
            # Look for abandoned jobs often enough to honour a short visibility timeout.
            "unacked_restore_interval": min(10, settings.celery_visibility_timeout),
            "unacked_restore_throttle": 1,
        },
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 3,
        # A request that queues a job fails fast (503) when the broker is down.
        "task_publish_retry_policy": {
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.5,
            "interval_max": 1,
        },
        "redis_socket_connect_timeout": 3,
        "redis_socket_timeout": 5,
        "worker_hijack_root_logger": False,
    }


class JobStore:
    """What the service keeps about its jobs, beside Celery's own results.

    Records (who queued a job), finished results (so that a redelivered job returns the first
    outcome instead of running again), event counts and the worker heartbeat. In Redis (the
    result backend) when there is a broker; in process memory when jobs run eagerly.
    """

    def __init__(self, settings: Settings) -> None:
        self.prefix = f"{settings.celery_queue}:jobs:"
        self.expires = settings.celery_result_expires
        backend = settings.result_backend if settings.broker_url else None
        self.client: redis.Redis | MemoryKV = (
            redis.Redis.from_url(
                backend, decode_responses=True, socket_timeout=3, socket_connect_timeout=3
            )
            if backend
            else MemoryKV()
        )

    def put_record(self, task_id: str, record: dict[str, Any]) -> None:
        self.client.set(f"{self.prefix}record:{task_id}", json.dumps(record), ex=self.expires)

    def record(self, task_id: str) -> dict[str, Any] | None:
        return _loads(self.client.get(f"{self.prefix}record:{task_id}"))

    def put_result(self, task_id: str, result: dict[str, Any]) -> None:
        self.client.set(f"{self.prefix}result:{task_id}", json.dumps(result), ex=self.expires)

    def result(self, task_id: str) -> dict[str, Any] | None:
        return _loads(self.client.get(f"{self.prefix}result:{task_id}"))

    def count(self, task_name: str, event: JobEvent) -> None:
        try:
            self.client.incr(f"{self.prefix}count:{task_name}:{event}")
        except redis.RedisError:
            logger.warning("could not count job event %s of %s", event, task_name)

    def counts(self, task_names: list[str]) -> dict[tuple[str, JobEvent], int]:
        keys = [(name, event) for name in task_names for event in JOB_EVENTS]
        values = self.client.mget([f"{self.prefix}count:{name}:{event}" for name, event in keys])
        return {key: int(value or 0) for key, value in zip(keys, values, strict=True)}

    def beat(self, hostname: str) -> None:
        heartbeat = {"hostname": hostname, "at": time.time()}
        self.client.set(f"{self.prefix}heartbeat", json.dumps(heartbeat), ex=self.expires)

    def heartbeat(self) -> dict[str, Any] | None:
        return _loads(self.client.get(f"{self.prefix}heartbeat"))


class MemoryKV:
    """The few Redis commands JobStore uses, in process memory (eager mode)."""

    def __init__(self) -> None:
        self._data: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        return self._data.get(key)

    def mget(self, keys: list[str]) -> list[str | None]:
        return [self._data.get(key) for key in keys]

    def set(self, key: str, value: str, ex: int | None = None) -> bool:
        self._data[key] = value
        return True

    def incr(self, key: str) -> int:
        with self._lock:
            value = int(self._data.get(key, 0)) + 1
            self._data[key] = str(value)
        return value


def _loads(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    loaded: dict[str, Any] = json.loads(value)
    return loaded


class FlaskCelery(Celery):  # type: ignore[misc]  # Celery ships no type hints
    """A Celery app configured from our settings, with its job store.

    `settings` may be a callable, read on first use: the worker's module-level app reads the
    environment only when a worker starts. In the web process `flask_app` is the app it serves.
    """

    def __init__(
        self, settings: Settings | Callable[[], Settings], flask_app: Flask | None = None
    ) -> None:
        super().__init__(PACKAGE, task_cls=JobTask, set_as_current=flask_app is None)
        self.flask_app = flask_app
        self._settings_source = settings
        self.add_defaults(lambda: celery_config(self.service_settings))

    @cached_property
    def service_settings(self) -> Settings:
        source = self._settings_source
        return source if isinstance(source, Settings) else source()

    @cached_property
    def jobs(self) -> JobStore:
        return JobStore(self.service_settings)


def init_celery(app: Flask) -> FlaskCelery:
    """Give the Flask app its own Celery app (`app.extensions["celery"]`), from its settings."""
    settings: Settings = app.extensions["settings"]
    if settings.broker_url is None:
        logger.warning(
            "neither CELERY_BROKER_URL nor REDIS_URL is set: background jobs run inside the "
            "request that queues them (eager mode, for development only)"
        )
    celery = FlaskCelery(settings, flask_app=app)
    app.extensions["celery"] = celery
    return celery


class JobTask(Task):  # type: ignore[misc]  # Celery ships no type hints
    """The base of every job: a Flask app context, retries with backoff, counted events."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        flask_app = self.app.flask_app or worker_flask_app()
        with flask_app.app_context():
            self.app.jobs.count(self.name, "started")
            try:
                return self._run(*args, **kwargs)
            except APIError as exc:
                if not is_transient(exc):
                    raise
                settings = self.app.service_settings
                raise self.retry(
                    exc=exc,
                    countdown=backoff(self.request.retries, exc, settings),
                    max_retries=settings.celery_max_retries,
                ) from exc

    def _run(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self.run(*args, **kwargs)
        except OperationalError as exc:  # the database is down or restarting
            raise ServiceUnavailable("The database is unavailable.") from exc

    def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
        self.app.jobs.count(self.name, "succeeded")

    def on_retry(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        self.app.jobs.count(self.name, "retried")
        logger.warning("job %s[%s] failed, will retry: %s", self.name, task_id, exc)

    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        self.app.jobs.count(self.name, "failed")


def is_transient(exc: APIError) -> bool:
    """A failure that another attempt may not meet: the database or the provider busy or down.

    A 502 is transient only when the upstream itself failed (5xx), not for a reply that could
    not be used (bad JSON, a structured reply that never validated): asking again won't help.
    """
    if exc.status == 502:
        return bool(getattr(exc.__cause__, "retryable", False))
    return exc.status in (503, 504)


def backoff(retries: int, exc: Exception, settings: Settings) -> float:
    """Seconds before the next attempt: exponential with jitter, at least any Retry-After."""
    wait = settings.celery_retry_backoff * 2.0**retries * random.uniform(0.5, 1.0)  # noqa: S311
    retry_after = exc.headers.get("Retry-After", "") if isinstance(exc, APIError) else ""
    if retry_after.isdigit():
        wait = max(wait, float(retry_after))
    return min(wait, settings.celery_retry_backoff_max)


_worker_apps: dict[int, Flask] = {}
_worker_apps_lock = threading.Lock()


def worker_flask_app() -> Flask:
    """The Flask app of this worker process, created on its first job."""
    with _worker_apps_lock:
        pid = os.getpid()
        if pid not in _worker_apps:
            from . import create_app  # deferred: the package imports this module as it loads

            _worker_apps.clear()  # a forked child must not use its parent's app
            _worker_apps[pid] = create_app()
        return _worker_apps[pid]


def job(name: str, **options: Any) -> Callable[[F], F]:
    """Register the function as a task of every Celery app (like `@shared_task(bind=True)`).

    The function stays a plain typed function; jobs are queued by name (`services/tasks.py`).
    """

    def register(function: F) -> F:
        shared_task(name=name, base=JobTask, bind=True, **options)(function)
        return function

    return register


# --- the jobs --------------------------------------------------------------------------------


@job(ITEMS_REPORT)
def items_report(task: JobTask{% if cookiecutter.use_auth %}, user_id: int{% endif %}) -> dict[str, Any]:
    """The items report{% if cookiecutter.use_auth %} of the user (every item for an admin){% endif %}.

    It only reads, so a redelivered job simply computes it again.
    """
{%- if cookiecutter.use_auth %}
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(f"User {user_id} not found.")
    return reports.items_report(user).model_dump(mode="json")
{%- else %}
    return reports.items_report().model_dump(mode="json")
{%- endif %}
{%- if cookiecutter.ai_provider != "none" %}


@job(AI_COMPLETION)
def ai_completion(task: JobTask, body: str, owner: str) -> dict[str, Any]:
    """One completion, as `POST /ai/complete` answers it, plus the warnings of its envelope.

    Never counted twice: a redelivered job that had finished returns its first result, and
    usage is recorded once per attempt (keyed by task id and attempt number).
    """
    task_id: str = task.request.id
    store: JobStore = task.app.jobs
    finished = store.result(task_id)
    if finished is not None:
        return finished
    result = ai.complete(
        CompletionRequest.model_validate_json(body),
        owner,
        request_id=f"{task_id}:{task.request.retries}",
    )
    data = result.data.model_dump(mode="json")
    data["warnings"] = [warning.model_dump() for warning in result.warnings]
    store.put_result(task_id, data)
    return data
{%- endif %}


# --- the worker process ----------------------------------------------------------------------


def _worker_settings() -> Settings:
    from . import load_settings  # deferred: the package imports this module as it loads

    return load_settings(None)


# What `celery -A {{ cookiecutter.package_name }}.tasks worker` runs. Its settings are read from
# the environment when a worker starts, never by the web process (which has its own app).
celery_app = FlaskCelery(_worker_settings)


def _worker_logging(**_: Any) -> None:
    # The worker logs like the web app (LOG_FORMAT, LOG_LEVEL) instead of Celery's own format.
    configure_logging(celery_app.service_settings)


def _warm_up(**_: Any) -> None:
    # Build the app as the worker starts: bad settings fail at once, and the first job is not
    # slowed down by imports{% if cookiecutter.ai_provider != "none" %} (the provider's SDK included){% endif %}.
{%- if cookiecutter.ai_provider != "none" %}
    with worker_flask_app().app_context():
        ai.get_provider()
{%- else %}
    worker_flask_app()
{%- endif %}


_heartbeat_stop = threading.Event()


def _start_heartbeat(sender: Any, **_: Any) -> None:
    """Tell `/health` that a worker is up, every HEARTBEAT_INTERVAL seconds."""
    store: JobStore = sender.app.jobs
    hostname = str(sender.hostname)

    def beat() -> None:
        while True:
            try:
                store.beat(hostname)
            except redis.RedisError as exc:
                logger.warning("worker heartbeat failed: %s", exc)
            if _heartbeat_stop.wait(HEARTBEAT_INTERVAL):
                return

    _heartbeat_stop.clear()
    threading.Thread(target=beat, name="heartbeat", daemon=True).start()


def _stop_heartbeat(**_: Any) -> None:
    _heartbeat_stop.set()


setup_logging.connect(_worker_logging)
worker_init.connect(_warm_up)  # the solo and threads pools run jobs in this process
worker_process_init.connect(_warm_up)  # each prefork child
worker_ready.connect(_start_heartbeat)
worker_shutdown.connect(_stop_heartbeat)


def worker_health() -> tuple[Literal["ok", "error", "disabled"], str]:
    """For `/health`: has a worker of the current app reported in within HEARTBEAT_MAX_AGE?"""
    celery: FlaskCelery = current_app.extensions["celery"]
    if celery.service_settings.broker_url is None:
        return "disabled", "no broker: jobs run inside the web process (eager mode)"
    try:
        heartbeat = celery.jobs.heartbeat()
    except redis.RedisError as exc:
        return "error", type(exc).__name__
    if heartbeat is None:
        return "error", "no worker has reported in"
    age = time.time() - float(heartbeat["at"])
    if age > HEARTBEAT_MAX_AGE:
        return "error", f"the last worker heartbeat is {age:.0f} s old"
    return "ok", f"{heartbeat['hostname']} reported {age:.0f} s ago"


# --- metrics ---------------------------------------------------------------------------------


class JobMetrics(Collector):
    """`background_jobs_total{task,event}` on `/metrics`, counted by every process in the store.

    Read at scrape time, so the web app reports what its workers did.
    """

    def describe(self) -> Iterator[CounterMetricFamily]:
        yield self._family()

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = self._family()
        if has_app_context() and "celery" in current_app.extensions:
            celery: FlaskCelery = current_app.extensions["celery"]
            names = sorted(name for name in celery.tasks if name.startswith(f"{PACKAGE}."))
            try:
                counts = celery.jobs.counts(names)
            except redis.RedisError as exc:
                logger.warning("job metrics unavailable: %s", exc)
                counts = {}
            for (name, event), value in counts.items():
                family.add_metric([name.removeprefix(f"{PACKAGE}."), event], value)
        yield family

    @staticmethod
    def _family() -> CounterMetricFamily:
        return CounterMetricFamily(
            "background_jobs", "Background jobs by task and event.", labels=["task", "event"]
        )


REGISTRY.register(JobMetrics())
