"""Background jobs on a Celery worker (`/api/v1/tasks`, `celery -A {{ cookiecutter.package_name }}.tasks worker`)."""

from __future__ import annotations

from flask_openapi3 import OpenAPI
from prometheus_client.core import REGISTRY

from ..core.health import add_check
from ..core.settings import init_feature_settings
from ..core.tracing import instrument, tracing_enabled
from .api import tasks_bp
from .celery_app import init_celery
from .health import JobMetrics, check_worker
from .settings import JobsSettings

# Job counts are read from the job store at scrape time, whichever app is serving.
REGISTRY.register(JobMetrics())


def init_app(app: OpenAPI) -> None:
    init_feature_settings(app, JobsSettings)
    init_celery(app)  # each Flask app gets its own Celery app, from its settings
    if tracing_enabled(app):
        # A queued job carries the request's trace in its headers; the worker continues it.
        from opentelemetry.instrumentation.celery import CeleryInstrumentor

        instrument(app, CeleryInstrumentor())
    app.register_api(tasks_bp)
    add_check(app, "worker", check_worker)
