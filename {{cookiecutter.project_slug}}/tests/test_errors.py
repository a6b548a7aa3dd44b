"""Every error is an envelope with the contract's code: never HTML, never a stack trace."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI

from {{ cookiecutter.package_name }} import create_app

ENDPOINT = "/api/v1/items"


def assert_error(response: object, status: int, code: str) -> None:
    assert response.status_code == status  # type: ignore[attr-defined]
    body = response.json  # type: ignore[attr-defined]
    assert body is not None
    assert body["success"] is False
    assert body["code"] == code
    assert body["message"]


def test_malformed_json_is_400(client: FlaskClient, headers: dict[str, str]) -> None:
    response = client.post(
        ENDPOINT, data="{not json", content_type="application/json", headers=headers
    )
    assert_error(response, 400, "bad_request")


def test_wrong_content_type_is_415(client: FlaskClient, headers: dict[str, str]) -> None:
    response = client.post(
        ENDPOINT, data="a=b", content_type="application/x-www-form-urlencoded", headers=headers
    )
    assert_error(response, 415, "unsupported_media_type")


def test_oversize_body_is_413(make_app: Callable[..., OpenAPI], headers: dict[str, str]) -> None:
    client = make_app(max_content_length=1024).test_client()
    response = client.post(ENDPOINT, json={"title": "x" * 4096}, headers=headers)
    assert_error(response, 413, "payload_too_large")


def test_unknown_route_and_method(client: FlaskClient) -> None:
    assert_error(client.get("/api/v1/nothing-here"), 404, "not_found")
    response = client.put("/api/v1/items")
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


def test_unexpected_errors_hide_the_details(make_app: Callable[..., OpenAPI]) -> None:
    app = make_app(fresh=True)

    def explode() -> str:
        raise RuntimeError("secret internals")

    app.add_url_rule("/api/v1/explode", "explode", explode)
    response = app.test_client().get("/api/v1/explode")
    assert_error(response, 500, "internal_error")
    assert b"secret internals" not in response.data
    assert b"Traceback" not in response.data


def test_database_down_is_503(make_app: Callable[..., OpenAPI], headers: dict[str, str]) -> None:
    client = make_app(database_url="postgresql://nobody@127.0.0.1:1/none").test_client()
    response = client.get(ENDPOINT, headers=headers)
    assert_error(response, 503, "service_unavailable")


def test_request_id_is_echoed_or_created(client: FlaskClient) -> None:
    echoed = client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["X-Request-ID"] == "abc-123"
    created = client.get("/api/v1/nothing-here")
    assert len(created.headers["X-Request-ID"]) >= 16


@pytest.mark.parametrize(
    "secrets",
    [
        {"secret_key": "change-me"},
        {"secret_key": "too-short"},
    ],
)
def test_production_refuses_weak_secrets(
    test_settings: dict[str, Any], secrets: dict[str, str]
) -> None:
    # The test settings hold strong secrets: only the weak one here is refused.
    config = {**test_settings, "app_env": "production", **secrets}
    with pytest.raises(SystemExit, match=r"Invalid settings: .*SECRET_KEY"):
        create_app(config)
