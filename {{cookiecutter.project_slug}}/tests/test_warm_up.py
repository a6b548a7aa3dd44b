"""Warm-ups: a feature's one-time first-request work, run before the service says ready."""

from __future__ import annotations

import logging

import pytest
from flask_openapi3 import OpenAPI

from {{ cookiecutter.package_name }}.core.health import add_warm_up


def test_ready_runs_each_warm_up_once_and_a_failing_one_is_only_logged(
    app: OpenAPI, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    def works() -> None:
        calls.append("works")

    def fails() -> None:
        calls.append("fails")
        raise RuntimeError("no luck")

    add_warm_up(app, fails)
    add_warm_up(app, works)
    client = app.test_client()
    with caplog.at_level(logging.WARNING):
        assert client.get("/health/ready").status_code == 200
    assert calls == ["fails", "works"]
    assert "warm-up failed" in caplog.text
    assert client.get("/health/ready").status_code == 200
    assert calls == ["fails", "works"]
