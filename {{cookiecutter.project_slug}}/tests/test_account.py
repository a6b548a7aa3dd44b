"""Account operations: `flask users create` asking for the password, `DELETE /users/me`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI

from .conftest import PASSWORD, bearer


def test_users_create_asks_for_a_hidden_confirmed_password(app: OpenAPI) -> None:
    runner = app.test_cli_runner()
    args = ["users", "create", "--email", "ada@example.com", "--full-name", "Ada"]
    mismatch = runner.invoke(args=args, input="first-password\nother-password\n" * 3)
    assert mismatch.exit_code != 0
    assert "do not match" in mismatch.output
    result = runner.invoke(args=args, input="long-enough-password\nlong-enough-password\n")
    assert result.exit_code == 0, result.output
    assert "long-enough-password" not in result.output  # never echoed
    login = app.test_client().post(
        "/api/v1/auth/login", json={"email": "ada@example.com", "password": "long-enough-password"}
    )
    assert login.status_code == 200


def test_closing_an_account_signs_it_out_everywhere(
    client: FlaskClient, register: Callable[..., dict[str, Any]]
) -> None:
    first = register(email="leaving@example.com")
    second = client.post(
        "/api/v1/auth/login", json={"email": "leaving@example.com", "password": PASSWORD}
    ).json["data"]  # type: ignore[index]
    response = client.delete("/api/v1/users/me", headers=bearer(first["access_token"]))
    assert response.status_code == 200
    for token in (first["access_token"], second["access_token"], first["refresh_token"]):
        path = "/api/v1/auth/refresh" if token == first["refresh_token"] else "/api/v1/users/me"
        method = client.post if path.endswith("refresh") else client.get
        assert method(path, headers=bearer(token)).status_code == 401
    login = client.post(
        "/api/v1/auth/login", json={"email": "leaving@example.com", "password": PASSWORD}
    )
    assert login.status_code == 403  # the account is disabled, and says so
