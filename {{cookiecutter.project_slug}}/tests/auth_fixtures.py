"""Users and tokens: the auth feature's fixtures.

Replaces core_fixtures' `test_settings` (adds the JWT secret and the login limit) and
`sign_in` (a new user with a token), so that every feature's tests act as a signed-in user.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import uuid4

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI

from {{ cookiecutter.package_name }}.auth.models import Role, User
from {{ cookiecutter.package_name }}.auth.service import create_user, issue_tokens
from {{ cookiecutter.package_name }}.core.extensions import db

from .core_fixtures import SignIn

PASSWORD = "correct-horse-battery"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def signed_in(app: OpenAPI, role: Role = "user") -> dict[str, str]:
    """Headers of a new user with `role`. Made directly, without password hashing, since these
    callers never log in (the auth tests cover that)."""
    with app.app_context():
        user = User(
            email=f"{role}-{uuid4().hex[:10]}@example.com",
            full_name="Test Caller",
            password_hash="!",  # matches no password
            role=role,
        )
        db.session.add(user)
        db.session.commit()
        token = issue_tokens(user).access_token
    return bearer(token)


@pytest.fixture(scope="session")
def test_settings(test_settings: dict[str, Any]) -> dict[str, Any]:
    return {
        **test_settings,
        "jwt_secret_key": "test-jwt-secret-key-that-is-long-enough-0123456789",
        "rate_limit_auth": "10000 per minute",
    }


@pytest.fixture
def sign_in() -> SignIn:
    """sign_in(app) -> the Authorization header of a new user of `app`."""
    return signed_in


@pytest.fixture
def register(client: FlaskClient) -> Callable[..., dict[str, Any]]:
    """register(email=None, password=PASSWORD) -> the `data` of a successful registration."""

    def _register(email: str | None = None, password: str = PASSWORD) -> dict[str, Any]:
        email = email or f"user-{uuid4().hex[:10]}@example.com"
        response = client.post(
            "/api/v1/auth/register",
            json={"email": email, "password": password, "full_name": "Test User"},
        )
        assert response.status_code == 201, response.json
        data: dict[str, Any] = response.json["data"]  # type: ignore[index]
        return data

    return _register


@pytest.fixture
def make_user(app: OpenAPI, client: FlaskClient) -> Callable[[Role], dict[str, str]]:
    """make_user(role) -> auth headers of a new user with that role (as the CLI creates them)."""

    def _make_user(role: Role) -> dict[str, str]:
        email = f"{role}-{uuid4().hex[:10]}@example.com"
        with app.app_context():
            create_user(email, PASSWORD, f"Test {role}", role=role)
        response = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.json
        return bearer(response.json["data"]["access_token"])  # type: ignore[index]

    return _make_user


@pytest.fixture
def auth_headers(register: Callable[..., dict[str, Any]]) -> dict[str, str]:
    """A freshly registered user's Authorization header."""
    return bearer(register()["access_token"])


@pytest.fixture
def other_headers(register: Callable[..., dict[str, Any]]) -> dict[str, str]:
    """A second, unrelated user."""
    return bearer(register()["access_token"])


@pytest.fixture
def admin_headers(make_user: Callable[[Role], dict[str, str]]) -> dict[str, str]:
    return make_user("admin")


@pytest.fixture
def readonly_headers(make_user: Callable[[Role], dict[str, str]]) -> dict[str, str]:
    return make_user("readonly")
