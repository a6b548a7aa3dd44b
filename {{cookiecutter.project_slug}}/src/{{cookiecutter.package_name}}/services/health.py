"""The checks behind `/health` and `flask health`."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import text

from ..extensions import db{% if cookiecutter.ai_provider != "none" %}, get_settings{% endif %}, redis_store
from ..settings import APP_VERSION
{%- if cookiecutter.use_celery %}
from ..tasks import worker_health
{%- endif %}


class Check(BaseModel):
    status: Literal["ok", "error", "disabled"]
    detail: str | None = None
    latency_ms: float | None = None


class HealthChecks(BaseModel):
    database: Check
    redis: Check
    ai_service: Check
{%- if cookiecutter.use_celery %}
    worker: Check = Check(status="disabled")
{%- endif %}


class HealthReport(BaseModel):
    status: Literal["healthy", "degraded", "unhealthy"]
    checks: HealthChecks
    version: str
    timestamp: datetime


def check_database() -> Check:
    started = time.perf_counter()
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        return Check(status="error", detail=type(exc).__name__)
    return Check(status="ok", latency_ms=_elapsed_ms(started))


def check_redis() -> Check:
    if redis_store.client is None:
        return Check(status="disabled", detail="REDIS_URL is not set; using in-memory fallbacks")
    started = time.perf_counter()
    try:
        redis_store.client.ping()
    except Exception as exc:
        return Check(status="error", detail=type(exc).__name__)
    return Check(status="ok", latency_ms=_elapsed_ms(started))


def check_ai_service() -> Check:
{%- if cookiecutter.ai_provider != "none" %}
    # Configuration only: a real call on every probe would cost money and hide nothing new.
    settings = get_settings()
    if settings.ai_offline:
        return Check(status="ok", detail=f"offline provider, model {settings.ai_model}")
{%- if cookiecutter.ai_provider == "azure_openai" %}
    if not settings.ai_base_url:
        return Check(status="error", detail="AI_BASE_URL (the Azure endpoint) is not set")
{%- endif %}
    return Check(status="ok", detail=f"provider {settings.ai_provider}, model {settings.ai_model}")
{%- else %}
    return Check(status="disabled", detail="this service has no AI provider")
{%- endif %}
{%- if cookiecutter.use_celery %}


def check_worker() -> Check:
    """A Celery worker has reported in lately (disabled when jobs run in the web process)."""
    started = time.perf_counter()
    status, detail = worker_health()
    latency = _elapsed_ms(started) if status == "ok" else None
    return Check(status=status, detail=detail, latency_ms=latency)
{%- endif %}


def health_report() -> HealthReport:
    checks = HealthChecks(
        database=check_database(), redis=check_redis(), ai_service=check_ai_service()
    )
{%- if cookiecutter.use_celery %}
    checks.worker = check_worker()
{%- endif %}
    if checks.database.status == "error":
        status: Literal["healthy", "degraded", "unhealthy"] = "unhealthy"
    elif "error" in (checks.redis.status, checks.ai_service.status{% if cookiecutter.use_celery %}, checks.worker.status{% endif %}):
        status = "degraded"
    else:
        status = "healthy"
    return HealthReport(
        status=status, checks=checks, version=APP_VERSION, timestamp=datetime.now(UTC)
    )


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
