"""The Celery app, built from the same settings as the web app, and the base of every job.

Every job runs inside a Flask app context (one app per worker process). A job is acknowledged
only once it has finished, so the job of a worker that dies is redelivered; transient failures
are retried with exponential backoff. Without a broker (neither CELERY_BROKER_URL nor
REDIS_URL) jobs run eagerly, inside the request that queues them: fine for development, not for
production.
"""

from __future__ import annotations

import logging
import os
import random
import threading
from collections.abc import Callable
from functools import cached_property
from typing import Any, TypeVar

from celery import Celery, Task, shared_task
from flask import Flask
from sqlalchemy.exc import OperationalError

from ..core.errors import APIError, ServiceUnavailable
from .settings import JobsSettings
from .store import JobStore

logger = logging.getLogger(__name__)

PACKAGE = "{{ cookiecutter.package_name }}"

F = TypeVar("F", bound=Callable[..., Any])


def celery_config(settings: JobsSettings) -> dict[str, Any]:
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
            # Workers take turns at that search under a Redis lock. A worker that dies holding
            # it (kill -9 mid-search) must not stop the others from handing its job out again
            # for kombu's default five minutes: the lock lapses as soon as the job may return.
            "unacked_mutex_expire": min(300, settings.celery_visibility_timeout),
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


class FlaskCelery(Celery):  # type: ignore[misc]  # Celery ships no type hints
    """A Celery app configured from our settings, with its job store.

    `settings` may be a callable, read on first use: the worker's module-level app reads the
    environment only when a worker starts. In the web process `flask_app` is the app it serves.
    """

    def __init__(
        self, settings: JobsSettings | Callable[[], JobsSettings], flask_app: Flask | None = None
    ) -> None:
        super().__init__(PACKAGE, task_cls=JobTask, set_as_current=flask_app is None)
        self.flask_app = flask_app
        self._settings_source = settings
        self.add_defaults(lambda: celery_config(self.service_settings))

    @cached_property
    def service_settings(self) -> JobsSettings:
        source = self._settings_source
        return source if isinstance(source, JobsSettings) else source()

    @cached_property
    def jobs(self) -> JobStore:
        return JobStore(self.service_settings)


def init_celery(app: Flask) -> FlaskCelery:
    """Give the Flask app its own Celery app (`app.extensions["celery"]`), from its settings."""
    settings: JobsSettings = app.extensions["feature_settings"][JobsSettings]
    if settings.broker_url is None and settings.is_production:
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


def backoff(retries: int, exc: Exception, settings: JobsSettings) -> float:
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
            from .. import create_app  # deferred: the package imports this module as it loads

            _worker_apps.clear()  # a forked child must not use its parent's app
            _worker_apps[pid] = create_app()
        return _worker_apps[pid]


def job(name: str, **options: Any) -> Callable[[F], F]:
    """Register the function as a task of every Celery app (like `@shared_task(bind=True)`).

    The function stays a plain typed function; jobs are queued by name (`service.py`).
    """

    def register(function: F) -> F:
        shared_task(name=name, base=JobTask, bind=True, **options)(function)
        return function

    return register
