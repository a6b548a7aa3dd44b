"""Fixtures that a feature's fixture module may replace.

conftest.py lists this module first in `pytest_plugins`, then each feature's module; a fixture
of the same name in a later module wins (and may ask for this one by its name). A fixture in
conftest.py itself would win over every plugin's, so these cannot live there.

- `test_settings`: the settings every test app starts from.
- `service_settings`: what the service processes that tests start (gunicorn, a worker) run with
  beyond `test_settings`; the AI feature points them at its stub provider.
- `served_settings`: what the served service (app_server.py) runs with beyond `test_settings`:
  `service_settings`, and what a feature adds (e.g. the queue of the session's worker).
- `database_requirements`: what a feature needs of the TEST_DATABASE_URL server.
- `finish_app_work`: what an app still owes once a test is over (a feature adds its part).
- `sign_in(app)`: the headers of a new caller of `app` who may write; `headers`: one for `app`.
  Tests act through them whether or not the service has users.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask_openapi3 import OpenAPI

from .conftest import TEST_REDIS_URL

SignIn = Callable[[OpenAPI], dict[str, str]]


@pytest.fixture(scope="session")
def test_settings() -> dict[str, Any]:
    """Settings every test app starts from; make_app(**overrides) changes any of them."""
    return {
        "app_env": "testing",
        "secret_key": "test-secret-key-that-is-long-enough-0123456789",
        "redis_url": TEST_REDIS_URL,
        "auto_migrate": False,
        "rate_limit_default": "10000 per minute",
        "cors_origins": [],
        "log_level": "WARNING",
    }


@pytest.fixture(scope="session")
def service_settings() -> dict[str, Any]:
    """Settings of the service processes the tests start, beyond `test_settings`."""
    return {}


@pytest.fixture(scope="session")
def served_settings(service_settings: dict[str, Any]) -> dict[str, Any]:
    """Settings of the served service (app_server.py), beyond `test_settings`."""
    return service_settings


@pytest.fixture(scope="session")
def database_requirements() -> list[Callable[[str], str | None]]:
    """Checks of the TEST_DATABASE_URL server (a feature adds what it needs, e.g. an extension):
    each says why the server will not do, or returns None. Then the tests that need the
    database skip, saying so, or fail under CI=true."""
    return []


@pytest.fixture(scope="session")
def finish_app_work() -> list[Callable[[OpenAPI], None]]:
    """What an app still has to do once a test is over, done before the next test starts:
    that test may get the same app (tests/conftest.py, `LastApp`)."""
    return []


@pytest.fixture
def sign_in() -> SignIn:
    """sign_in(app) -> the headers of a new caller of `app` who may write."""

    def _sign_in(app: OpenAPI) -> dict[str, str]:
        del app
        return {}  # every route is open: no header needed

    return _sign_in


@pytest.fixture
def headers(app: OpenAPI, sign_in: SignIn) -> dict[str, str]:
    """The headers of a caller of `app` who may write."""
    return sign_in(app)
