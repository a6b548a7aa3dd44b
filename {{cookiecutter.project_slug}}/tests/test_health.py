"""Probes and metrics keep their own formats."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI
from prometheus_client.parser import text_string_to_metric_families

BROKEN_DATABASE = "postgresql://nobody@127.0.0.1:1/none"


def test_health_reports_every_check(client: FlaskClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json
    assert body is not None
    assert body["status"] in ("healthy", "degraded")
    assert {"database", "redis", "ai_service"} <= set(body["checks"])
    assert body["checks"]["database"]["status"] == "ok"
    assert body["version"]
    assert body["timestamp"]


def test_live_and_ready(client: FlaskClient) -> None:
    assert client.get("/health/live").json == {"status": "ok"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json == {"status": "ready"}


def test_broken_database_makes_ready_and_health_503(make_app: Callable[..., OpenAPI]) -> None:
    client = make_app(database_url=BROKEN_DATABASE).test_client()
    assert client.get("/health/live").status_code == 200
    ready = client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json == {"status": "unavailable"}
    health = client.get("/health")
    assert health.status_code == 503
    assert health.json is not None
    assert health.json["status"] == "unhealthy"
    assert health.json["checks"]["database"]["status"] == "error"


def test_metrics_count_requests(client: FlaskClient) -> None:
    client.get("/health/live")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    families = {
        family.name: family
        for family in text_string_to_metric_families(response.get_data(as_text=True))
    }
    requests = [
        sample
        for sample in families["http_requests"].samples
        if sample.name == "http_requests_total"
        and sample.labels == {"method": "GET", "endpoint": "/health/live", "status": "200"}
    ]
    assert requests
    assert requests[0].value >= 1
    assert "http_request_duration_seconds" in families
