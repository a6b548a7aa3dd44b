"""Cross-origin access: only the origins in CORS_ORIGINS, none by default."""

from __future__ import annotations

from collections.abc import Callable

from flask_openapi3 import OpenAPI

ORIGIN = "https://app.example.com"


def test_cors_answers_only_the_configured_origins(make_app: Callable[..., OpenAPI]) -> None:
    client = make_app(cors_origins=[ORIGIN]).test_client()
    preflight = client.options(
        "/api/v1/items",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    response = client.get("/health/live", headers={"Origin": ORIGIN})
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "X-Request-ID" in response.headers["Access-Control-Expose-Headers"]
    other = client.get("/health/live", headers={"Origin": "https://elsewhere.example.com"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_no_cross_origin_access_by_default(make_app: Callable[..., OpenAPI]) -> None:
    client = make_app(cors_origins=[]).test_client()
    response = client.get("/health/live", headers={"Origin": ORIGIN})
    assert response.status_code == 200
    assert not [name for name, _ in response.headers.items() if name.startswith("Access-Control-")]
