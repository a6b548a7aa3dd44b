"""What a new user meets first: readable logs, the docs pages, the OpenAPI document's shape,
validation messages, and `flask deploy check` / `flask db migrate`."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI

from {{ cookiecutter.package_name }}.core import migrate
from {{ cookiecutter.package_name }}.core.settings import Settings, load_settings


def test_development_logs_one_readable_line_per_request(
    make_app: Callable[..., OpenAPI], capsys: pytest.CaptureFixture[str]
) -> None:
    client = make_app(app_env="development", log_level="INFO").test_client()
    capsys.readouterr()
    client.get("/api/v1/items", headers={"X-Request-ID": "readable-1"})
    lines = [line for line in capsys.readouterr().out.splitlines() if "/api/v1/items" in line]
    assert len(lines) == 1, lines
    assert not lines[0].startswith("{")
    assert "readable-1" in lines[0]
    assert re.search(r"GET /api/v1/items \d{3} [0-9.]+ ms", lines[0])


def test_production_logs_are_json(
    make_app: Callable[..., OpenAPI], capsys: pytest.CaptureFixture[str]
) -> None:
    client = make_app(log_level="INFO").test_client()  # testing logs like production
    capsys.readouterr()
    client.get("/api/v1/items", headers={"X-Request-ID": "json-1"})
    lines = [line for line in capsys.readouterr().out.splitlines() if "/api/v1/items" in line]
    assert [json.loads(line)["request_id"] for line in lines] == ["json-1"]


def test_settings_follow_the_environment_and_the_env_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Settings are built once per set of sources: a change to either is a new set.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    assert load_settings(Settings).log_level == "INFO"
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    assert load_settings(Settings).log_level == "DEBUG"
    monkeypatch.delenv("LOG_LEVEL")
    (tmp_path / ".env").write_text("LOG_LEVEL=ERROR\n", encoding="utf-8")
    assert load_settings(Settings).log_level == "ERROR"
    (tmp_path / ".env").write_text("LOG_LEVEL=WARNING\n", encoding="utf-8")
    assert load_settings(Settings).log_level == "WARNING"
    assert load_settings(Settings, {"log_level": "CRITICAL"}).log_level == "CRITICAL"
    assert load_settings(Settings) is load_settings(Settings)


def test_metrics_names_its_charset_once(client: FlaskClient) -> None:
    content_type = client.get("/metrics").headers["Content-Type"]
    assert content_type.count("charset") == 1, content_type


def test_docs_with_and_without_slash_are_the_same_page(client: FlaskClient) -> None:
    with_slash, without = client.get("/docs/"), client.get("/docs")
    assert with_slash.status_code == without.status_code == 200
    assert with_slash.data == without.data
    assert b"swagger-ui" in without.data


def test_openapi_reads_well(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").json
    assert spec is not None
    assert spec["info"]["description"]
    error = spec["components"]["schemas"]["ErrorEnvelope"]["properties"]["success"]
    assert error.get("const", (error.get("enum") or [None])[0]) is False
    operations = [op for path in spec["paths"].values() for op in path.values()]
    ids = [op["operationId"] for op in operations]
    assert len(ids) == len(set(ids))
    for op in operations:
        assert re.fullmatch(r"[a-z][A-Za-z0-9]*", op["operationId"]), op["operationId"]
        assert len(op["tags"]) == 1, (op["operationId"], op["tags"])
        assert "`" not in op.get("summary", ""), op["summary"]
    assert "listItems" in ids


@pytest.mark.parametrize("body", [None, "[]", "3"])
def test_a_body_that_is_not_an_object_says_so(client: FlaskClient, body: str | None) -> None:
    response = client.post(
        "/api/v1/items", data=body, content_type="application/json" if body else None
    )
    assert response.status_code == 422
    [error] = response.json["details"]["errors"]  # type: ignore[index]
    assert error["msg"] == "a JSON object is required"
    assert "ItemCreate" not in response.get_data(as_text=True)


def test_deploy_check_lists_each_problem_and_exits_1(app: OpenAPI) -> None:
    result = app.test_cli_runner().invoke(args=["deploy", "check"])
    assert result.exit_code == 1
    problems = [line for line in result.output.splitlines() if line.startswith("- ")]
    assert "- APP_ENV is 'testing', not 'production'" in problems
    assert not any("SECRET_KEY" in line for line in problems)  # the test secret is strong
    assert f"Error: {len(problems)} problem(s)" in result.output
    assert "Traceback" not in result.output


def test_deploy_check_names_a_weak_secret_and_an_unreachable_database(
    make_app: Callable[..., OpenAPI],
) -> None:
    app = make_app(secret_key="short", database_url="postgresql://nobody@127.0.0.1:1/none")
    result = app.test_cli_runner().invoke(args=["deploy", "check"])
    assert result.exit_code == 1
    assert "- SECRET_KEY must be a random value" in result.output
    assert "- the database (DATABASE_URL) is unreachable" in result.output


def test_db_migrate_writes_a_revision(
    make_app: Callable[..., OpenAPI],
    project_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shutil.copytree(project_root / "migrations", tmp_path / "migrations")
    monkeypatch.setattr(migrate, "PROJECT_ROOT", tmp_path)
    url = f"sqlite:///{tmp_path / 'migrate.db'}"
    migrate.upgrade(url)
    before = set((tmp_path / "migrations" / "versions").glob("*.py"))
    runner = make_app(database_url=url).test_cli_runner()
    result = runner.invoke(args=["db", "migrate", "-m", "add a column"])
    assert result.exit_code == 0, result.output
    [written] = set((tmp_path / "migrations" / "versions").glob("*.py")) - before
    assert "add a column" in written.read_text()
    assert str(written) in result.output
