"""Shared fixtures: an app on the test database, a client, services to cut away.

Database: SQLite in a temporary directory, or the PostgreSQL database in TEST_DATABASE_URL
(migrated once per session, emptied before every test). Redis: TEST_REDIS_URL becomes the
app's REDIS_URL and is flushed before every test; without it the in-memory fallbacks run.
A URL that is set but unreachable fails the run: a silent fallback would hide a broken CI.

Each feature brings its own fixtures in a module of its own, listed in `pytest_plugins`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI
from sqlalchemy import Engine, MetaData, create_engine, text
from sqlalchemy.engine import make_url

from {{ cookiecutter.package_name }} import create_app
from {{ cookiecutter.package_name }}.core.migrate import upgrade
from {{ cookiecutter.package_name }}.core.models import tables_on
from {{ cookiecutter.package_name }}.core.settings import normalize_database_url

from .relay import Relay, require, require_service

# Fixture modules: the core's first, then each feature's, which may replace core fixtures.
pytest_plugins = [
    "tests.core_fixtures",
    "tests.app_server",
{%- if cookiecutter.use_auth %}
    "tests.auth_fixtures",
{%- endif %}
{%- if cookiecutter.ai_provider != "none" %}
    "tests.upstream",
    "tests.playground_browser",
{%- endif %}
{%- if cookiecutter.use_celery %}
    "tests.celery_worker",
{%- endif %}
{%- if cookiecutter.use_rag %}
    "tests.rag_fixtures",
{%- endif %}
{%- if cookiecutter.use_nginx %}
    "tests.nginx_proxy",
{%- endif %}
]


TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL") or None
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL") or None


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
def database_url(
    tmp_path_factory: pytest.TempPathFactory,
    database_requirements: list[Callable[[str], str | None]],
) -> str:
    """The migrated test database."""
    if TEST_DATABASE_URL:
        url = normalize_database_url(TEST_DATABASE_URL)
        problems = [problem for check in database_requirements if (problem := check(url))]
        if problems:
            require_service("; ".join(problems))
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
        # Children before parents: the order in which tables can be emptied.
        for table in reversed(tables_on(database_engine.dialect.name)):
            connection.execute(text(f'DELETE FROM "{table.name}"'))  # noqa: S608 - our tables
    if redis_client is not None:
        redis_client.flushdb()


def dispose(app: OpenAPI) -> None:
    """Close the connections an app holds: its engines (the app's and any feature's) and Redis."""
    for extension in app.extensions.values():
        if isinstance(extension, Engine):
            extension.dispose()
    client = app.extensions.get("redis_client")
    if client is not None:
        client.close()


class LastApp:
    """The app of the test before, handed to the next test that asks for the same settings.

    Building an app (its routes compiled, its settings read, its clients set up) costs tens of
    milliseconds, and most tests want one with the settings of the test before. With services,
    what an app keeps between requests lives in the database and Redis, which every test empties
    first (`_clean_services`), so such a test can have the same app. Without them, the in-memory
    fallbacks (rate-limit counters, caches) would carry over: every test gets a new app. Only
    the last app is kept, so that what binds to one app at a time (the rate limiter) is always
    bound to the app in use.
    """

    def __init__(self, reuse: bool) -> None:
        self.reuse = reuse
        self.key: str | None = None
        self.app: OpenAPI | None = None

    def get(self, config: dict[str, Any], fresh: bool, used: list[OpenAPI]) -> OpenAPI:
        key = json.dumps(config, sort_keys=True, default=repr)
        if self.reuse and not fresh and self.app is not None and key == self.key:
            app = self.app
        else:
            app = create_app(config)
            if self.app is not None and self.app not in used:
                used.append(self.app)  # disposed when this test ends
            self.key, self.app = (None, None) if fresh else (key, app)
        if app not in used:
            used.append(app)
        return app


@pytest.fixture(scope="session")
def last_app() -> Iterator[LastApp]:
    last = LastApp(reuse=TEST_REDIS_URL is not None)
    yield last
    if last.app is not None:
        dispose(last.app)


@pytest.fixture
def make_app(
    database_url: str,
    test_settings: dict[str, Any],
    last_app: LastApp,
    finish_app_work: list[Callable[[OpenAPI], None]],
) -> Iterator[Callable[..., OpenAPI]]:
    """make_app(**overrides) -> an app on the test database with these settings changed;
    make_app(fresh=True, ...) -> one that no other test has used or will use (to add routes)."""
    used: list[OpenAPI] = []

    def factory(*, fresh: bool = False, **overrides: Any) -> OpenAPI:
        config = {**test_settings, "database_url": database_url, **overrides}
        return last_app.get(config, fresh, used)

    yield factory
    for app in used:
        for finish in finish_app_work:
            finish(app)
        if app is not last_app.app:
            dispose(app)


@pytest.fixture
def app(make_app: Callable[..., OpenAPI]) -> OpenAPI:
    return make_app()


@pytest.fixture
def client(app: OpenAPI) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def project_root() -> Path:
    return Path(__file__).resolve().parents[1]


@pytest.fixture
def database_relay(database_url: str) -> Iterator[tuple[Relay, str]]:
    """(relay, a DATABASE_URL through it) in front of the test PostgreSQL database."""
    require("TEST_DATABASE_URL")
    url = make_url(database_url)
    relay = Relay(url.host or "127.0.0.1", url.port or 5432)
    yield relay, url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
    relay.cut()


@pytest.fixture
def redis_relay() -> Iterator[tuple[Relay, str]]:
    """(relay, a REDIS_URL through it) in front of the test Redis."""
    url = urlsplit(require("TEST_REDIS_URL"))
    relay = Relay(url.hostname or "127.0.0.1", url.port or 6379)
    credentials = url.netloc.rpartition("@")[0]
    netloc = f"{credentials}@127.0.0.1:{relay.port}" if credentials else f"127.0.0.1:{relay.port}"
    yield relay, urlunsplit((url.scheme, netloc, url.path, url.query, url.fragment))
    relay.cut()
