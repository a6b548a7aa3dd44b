"""Probes: `/health`, `/health/live`, `/health/ready` and `/metrics` (their own formats)."""

from __future__ import annotations

from flask import Response, current_app, jsonify
from flask_openapi3 import APIBlueprint, Tag
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from .blueprint import operation_id
from .extensions import limiter
from .health import HealthReport, check_database, health_report, warm_up

health_bp = APIBlueprint(
    "health", __name__, abp_tags=[Tag(name="health")], operation_id_callback=operation_id
)


# Probes and scrapes are never rate limited: a 429 would read as "down", and /health/live must
# not touch Redis (the limiter's storage) at all.
limiter.skip_blueprint(health_bp.name)


class LiveStatus(BaseModel):
    status: str


@health_bp.get("/health", responses={200: HealthReport, 503: HealthReport})
def get_health() -> Response:
    """Every dependency's state; 503 when the service cannot serve."""
    report = health_report()
    response = jsonify(report.model_dump(mode="json"))
    response.status_code = 503 if report.status == "unhealthy" else 200
    return response


@health_bp.get("/health/live", responses={200: LiveStatus})
def get_liveness() -> Response:
    """The process is up (no dependency is touched)."""
    return jsonify({"status": "ok"})


@health_bp.get("/health/ready", responses={200: LiveStatus, 503: LiveStatus})
def get_readiness() -> Response:
    """Ready for traffic: warmed up, and the database answers."""
    if current_app.extensions["warm_ups"]:
        warm_up(current_app._get_current_object())  # type: ignore[attr-defined]
    database = check_database()
    response = jsonify({"status": "ready" if database.status == "ok" else "unavailable"})
    response.status_code = 200 if database.status == "ok" else 503
    return response


@health_bp.get("/metrics", responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def get_metrics() -> Response:
    """Prometheus metrics."""
    return Response(generate_latest(), content_type=CONTENT_TYPE_LATEST)
