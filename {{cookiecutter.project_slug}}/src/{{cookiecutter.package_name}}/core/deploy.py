"""`flask deploy check`: what would go wrong in production, listed before it does (in the
spirit of Django's `check --deploy`).

The core checks its own settings, the database (reachable, migrations at head) and Redis; a
feature adds its checks with `add_deploy_check` (e.g. the AI provider's key and reachability).
Each check returns the problems it found, one readable line each.
"""

from __future__ import annotations

from collections.abc import Callable

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from . import migrate
from .extensions import get_settings, redis_store
from .health import check_database
from .settings import DEFAULT_SECRET, MIN_SECRET_LENGTH

DeployCheck = Callable[[], list[str]]

deploy_cli = AppGroup("deploy", help="Production readiness.")


def weak_secret(name: str, value: str) -> list[str]:
    if not value or value == DEFAULT_SECRET or len(value) < MIN_SECRET_LENGTH:
        return [f"{name} must be a random value of at least {MIN_SECRET_LENGTH} characters"]
    return []


def check_core() -> list[str]:
    settings = get_settings()
    problems = weak_secret("SECRET_KEY", settings.secret_key)
    if not settings.is_production:
        problems.append(f"APP_ENV is {settings.app_env!r}, not 'production'")
    if settings.is_sqlite:
        problems.append("DATABASE_URL points at SQLite: use PostgreSQL for more than one process")
    if check_database().status != "ok":
        problems.append("the database (DATABASE_URL) is unreachable")
    elif not migrate.is_at_head(settings.database_url):
        problems.append("the database is behind the migrations: run `flask db upgrade`")
    if settings.redis_url is None:
        problems.append(
            "REDIS_URL is not set: rate limits, caches and revocations stay in one process"
        )
    elif redis_store.client is not None:
        try:
            redis_store.client.ping()
        except Exception as exc:  # any failure means it cannot be used
            problems.append(f"Redis (REDIS_URL) is unreachable: {type(exc).__name__}")
    return problems


def init_deploy_checks(app: Flask) -> None:
    app.extensions["deploy_checks"] = [check_core]
    app.cli.add_command(deploy_cli)


def add_deploy_check(app: Flask, check: DeployCheck) -> None:
    app.extensions["deploy_checks"].append(check)


@deploy_cli.command("check")
def deploy_check() -> None:
    """List every production problem of this configuration; exit 1 when there is any."""
    checks: list[DeployCheck] = current_app.extensions["deploy_checks"]
    problems = [problem for check in checks for problem in check()]
    for problem in problems:
        click.echo(f"- {problem}")
    if problems:
        raise click.ClickException(f"{len(problems)} problem(s) to fix before production")
    click.echo("No problems found: ready for production.")
