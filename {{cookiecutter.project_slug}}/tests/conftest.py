"""Shared fixtures: an app on the test database, a client{% if cookiecutter.use_auth %}, and users with tokens{% endif %}.

Database: SQLite in a temporary directory, or the PostgreSQL database in TEST_DATABASE_URL
(migrated once per session, emptied before every test). Redis: TEST_REDIS_URL becomes the
app's REDIS_URL and is flushed before every test; without it the in-memory fallbacks run.
A URL that is set but unreachable fails the run: a silent fallback would hide a broken CI.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
{%- if cookiecutter.use_auth %}
from uuid import uuid4
{%- endif %}

import pytest
import redis
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI
from sqlalchemy import Engine, MetaData, create_engine, text
from sqlmodel import SQLModel

from {{ cookiecutter.package_name }} import create_app
{%- if cookiecutter.use_auth %}
from {{ cookiecutter.package_name }}.auth.models import Role
from {{ cookiecutter.package_name }}.auth.service import create_user
{%- endif %}
from {{ cookiecutter.package_name }}.core.migrate import upgrade
from {{ cookiecutter.package_name }}.core.settings import normalize_database_url

{%- if cookiecutter.ai_provider != "none" %}

# The stub AI provider and its fixtures (tests/upstream.py).
pytest_plugins = ["tests.upstream"]
{%- endif %}

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL") or None
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL") or None

# Settings every test app starts from; a test changes any of them with make_app(**overrides).
TEST_SETTINGS: dict[str, Any] = {
    "app_env": "testing",
    "secret_key": "test-secret-key-that-is-long-enough-0123456789",
{%- if cookiecutter.use_auth %}
    "jwt_secret_key": "test-jwt-secret-key-that-is-long-enough-0123456789",
    "rate_limit_auth": "10000 per minute",
{%- endif %}
    "redis_url": TEST_REDIS_URL,
    "auto_migrate": False,
    "rate_limit_default": "10000 per minute",
    "cors_origins": [],
    "log_level": "WARNING",
}
{%- if cookiecutter.use_auth %}

PASSWORD = "correct-horse-battery"
{%- endif %}


# Every table, children before parents: the order in which they can be emptied.
DELETE_ORDER = [table.name for table in reversed(SQLModel.metadata.sorted_tables)]


def reset_schema(url: str) -> None:
    """Drop every table (whatever an earlier run left behind) and migrate to head."""
    engine = create_engine(url)
    try:
        existing = MetaData()
        existing.reflect(engine)
        existing.drop_all(engine)
    finally:
        engine.dispose()
    upgrade(url)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The migrated test database."""
    if TEST_DATABASE_URL:
        url = normalize_database_url(TEST_DATABASE_URL)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    try:
        reset_schema(url)
    except Exception as exc:  # any failure here means the URL is unusable
        pytest.fail(f"TEST_DATABASE_URL={url} is unusable: {exc}", pytrace=False)
    return url


@pytest.fixture(scope="session")
def database_engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def redis_client() -> Iterator[redis.Redis | None]:
    if TEST_REDIS_URL is None:
        yield None
        return
    client = redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"TEST_REDIS_URL={TEST_REDIS_URL} is unreachable: {exc}", pytrace=False)
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _clean_services(database_engine: Engine, redis_client: redis.Redis | None) -> None:
    """Every test starts with empty tables and an empty Redis database.

    DELETE: on tables this small it is ten times cheaper than TRUNCATE, which PostgreSQL
    implements by swapping every table's files.
    """
    with database_engine.begin() as connection:
        for name in DELETE_ORDER:
            connection.execute(text(f'DELETE FROM "{name}"'))  # noqa: S608 - our table names
    if redis_client is not None:
        redis_client.flushdb()


@pytest.fixture
def make_app(database_url: str) -> Iterator[Callable[..., OpenAPI]]:
    """make_app(**overrides) -> an app on the test database with these settings changed."""
    apps: list[OpenAPI] = []

    def factory(**overrides: Any) -> OpenAPI:
        app = create_app({**TEST_SETTINGS, "database_url": database_url, **overrides})
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.extensions["database_engine"].dispose()
        client = app.extensions.get("redis_client")
        if client is not None:
            client.close()


@pytest.fixture
def app(make_app: Callable[..., OpenAPI]) -> OpenAPI:
    return make_app()


@pytest.fixture
def client(app: OpenAPI) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def project_root() -> Path:
    return Path(__file__).resolve().parents[1]
{%- if cookiecutter.use_auth %}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


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
{%- endif %}
