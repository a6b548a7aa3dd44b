"""The `flask` commands: one clear line and a non-zero exit on failure, never a traceback."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from flask_openapi3 import OpenAPI
from sqlalchemy import create_engine, text

from {{ cookiecutter.package_name }}.core.migrate import upgrade


def run(app: OpenAPI, *args: str) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=list(args))
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_health_command(app: OpenAPI) -> None:
    code, output = run(app, "health")
    assert code == 0
    assert json.loads(output)["checks"]["database"]["status"] == "ok"


def test_health_command_fails_when_the_database_is_down(make_app: Callable[..., OpenAPI]) -> None:
    code, output = run(make_app(database_url="postgresql://nobody@127.0.0.1:1/none"), "health")
    assert code == 1
    assert json.loads(output)["status"] == "unhealthy"


def test_openapi_export(app: OpenAPI, tmp_path: Path) -> None:
    target = tmp_path / "openapi.json"
    code, _ = run(app, "openapi", "export", "-o", str(target))
    assert code == 0
    assert "/api/v1/items" in json.loads(target.read_text())["paths"]


def test_db_current_and_check(app: OpenAPI) -> None:
    code, output = run(app, "db", "current")
    assert code == 0
    assert "(head)" in output
    code, output = run(app, "db", "check")
    assert code == 0, output
    code, output = run(app, "db", "upgrade")
    assert (code, output.strip()) == (0, "Database upgraded to head.")


def test_db_check_reports_drift(make_app: Callable[..., OpenAPI], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'drift.db'}"
    upgrade(url)
    engine = create_engine(url)
    with engine.begin() as connection:  # a change no migration knows about
        connection.execute(text("ALTER TABLE items ADD COLUMN stray INTEGER"))
    engine.dispose()
    code, output = run(make_app(database_url=url), "db", "check")
    assert code == 1
    assert output.startswith("Error: the models and the migrations differ")


def test_db_seed_is_idempotent(app: OpenAPI) -> None:
    code, output = run(app, "db", "seed")
    assert code == 0
    assert "Added 3 sample items" in output
    code, output = run(app, "db", "seed")
    assert code == 0
    assert "nothing to do" in output


def test_db_reset_needs_force(app: OpenAPI) -> None:
    code, output = run(app, "db", "reset")
    assert code == 1
    assert output.strip().splitlines() == [
        "Error: this deletes all data; run again with --force to confirm"
    ]
