"""The checks behind `/health` and `flask health`.

The core checks the database and Redis; a feature adds its own check with `add_check` (an
external service it needs, a worker). A failing database makes the service unhealthy, anything else
degraded. A feature whose first request does slow one-time work (an SDK's lazy imports) registers
it with `add_warm_up`: gunicorn runs it before a worker takes traffic, `/health/ready` before it
says ready.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Literal

from flask import Flask, current_app
from pydantic import BaseModel
from sqlalchemy import text

from .extensions import db, redis_store
from .models import UTCDateTime, utcnow
from .settings import APP_VERSION

Status = Literal["ok", "error", "disabled"]


class Check(BaseModel):
    status: Status
    detail: str | None = None
    latency_ms: float | None = None


class HealthReport(BaseModel):
    status: Literal["healthy", "degraded", "unhealthy"]
    checks: dict[str, Check]
    version: str
    timestamp: UTCDateTime


def timed(probe: Callable[[], str | None]) -> Check:
    """`probe` passes (returning an optional detail) or raises; its latency is recorded."""
    started = time.perf_counter()
    try:
        detail = probe()
    except Exception as exc:
        return Check(status="error", detail=type(exc).__name__)
    return Check(status="ok", detail=detail, latency_ms=elapsed_ms(started))


def check_database() -> Check:
    def probe() -> None:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    return timed(probe)


def check_redis() -> Check:
    client = redis_store.client
    if client is None:
        return Check(status="disabled", detail="REDIS_URL is not set; using in-memory fallbacks")

    def probe() -> None:
        client.ping()

    return timed(probe)


def check_ai_service() -> Check:
    return Check(status="disabled", detail="this service has no AI provider")


def init_health(app: Flask) -> None:
    app.extensions["health_checks"] = {
        "database": check_database,
        "redis": check_redis,
        "ai_service": check_ai_service,
    }
    app.extensions["warm_ups"] = []


def add_check(app: Flask, name: str, check: Callable[[], Check]) -> None:
    app.extensions["health_checks"][name] = check


def add_warm_up(app: Flask, warm_up: Callable[[], None]) -> None:
    app.extensions["warm_ups"].append(warm_up)


_WARM_UP_LOCK = threading.Lock()


def warm_up(app: Flask) -> None:
    """Run the pending warm-ups, once per app. A failing one is logged, never fatal: it only
    moves its work to the first request."""
    with _WARM_UP_LOCK:
        pending: list[Callable[[], None]] = app.extensions["warm_ups"]
        app.extensions["warm_ups"] = []
        with app.app_context():
            for step in pending:
                try:
                    step()
                except Exception:
                    logging.getLogger(__name__).warning("warm-up failed", exc_info=True)


def health_report() -> HealthReport:
    checks: dict[str, Callable[[], Check]] = current_app.extensions["health_checks"]
    results = {name: check() for name, check in checks.items()}
    statuses = {name: result.status for name, result in results.items()}
    if statuses.pop("database") == "error":
        status: Literal["healthy", "degraded", "unhealthy"] = "unhealthy"
    elif "error" in statuses.values():
        status = "degraded"
    else:
        status = "healthy"
    return HealthReport(status=status, checks=results, version=APP_VERSION, timestamp=utcnow())


def elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
