"""Command-line tools of the core: `flask health`, `flask openapi export`, `flask db`.

Features add their own groups (`flask users`, `flask ai`, ...) and commands (`flask db seed`).

Every failure ends in one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy.exc import SQLAlchemyError

from . import migrate
from .errors import APIError
from .extensions import get_settings
from .health import health_report

P = ParamSpec("P")
R = TypeVar("R")

openapi_cli = AppGroup("openapi", help="The OpenAPI document.")
db_cli = AppGroup("db", help="Database migrations (Alembic) and sample data.")


def one_line_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn expected failures into `Error: <message>` and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except migrate.MigrationError as exc:
            raise click.ClickException(str(exc)) from None
        except APIError as exc:
            raise click.ClickException(exc.message) from None
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise click.ClickException(
                f"database error: {reason} (is DATABASE_URL right, and did `flask db upgrade` run?)"
            ) from None
        except (OSError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


@click.command("health")
@with_appcontext
def health_command() -> None:
    """Run the /health checks; exit 1 when unhealthy."""
    report = health_report()
    click.echo(json.dumps(report.model_dump(mode="json"), indent=2))
    if report.status == "unhealthy":
        sys.exit(1)


@openapi_cli.command("export")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@one_line_errors
def export_openapi(output: Path) -> None:
    """Write the OpenAPI document to a file."""
    spec = current_app.api_doc  # type: ignore[attr-defined]
    output.write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    click.echo(f"Wrote {output}")


# --- flask db --------------------------------------------------------------------------------


@db_cli.command("upgrade")
@click.argument("revision", default="head")
@one_line_errors
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    migrate.upgrade(get_settings().database_url, revision)
    click.echo(f"Database upgraded to {revision}.")


@db_cli.command("downgrade")
@click.argument("revision", default="-1")
@one_line_errors
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (default: one step; `base` reverts all)."""
    migrate.downgrade(get_settings().database_url, revision)
    click.echo(f"Database downgraded to {revision}.")


@db_cli.command("current")
@one_line_errors
def db_current() -> None:
    """Show the revision the database is at."""
    migrate.current(get_settings().database_url)


@db_cli.command("check")
@one_line_errors
def db_check() -> None:
    """Exit 1 when the models have changes that no migration covers."""
    migrate.check(get_settings().database_url)
    click.echo("No differences between the models and the migrations.")


@db_cli.command("reset")
@click.option("--force", is_flag=True, help="Confirm that every row may be deleted.")
@one_line_errors
def db_reset(force: bool) -> None:
    """Drop everything and migrate again from scratch (deletes all data)."""
    settings = get_settings()
    if not force:
        raise click.ClickException("this deletes all data; run again with --force to confirm")
    if settings.is_production:
        raise click.ClickException("refusing to reset a production database")
    migrate.downgrade(settings.database_url, "base")
    migrate.upgrade(settings.database_url)
    click.echo("Database reset.")


@db_cli.command("migrate")
@click.option("-m", "--message", required=True, help="What the migration changes.")
@one_line_errors
def db_migrate(message: str) -> None:
    """Write a new migration from the differences between the models and the database."""
    path = migrate.revision(get_settings().database_url, message)
    click.echo(f"Wrote {path}; read it before you apply it with `flask db upgrade`.")


def register_cli(app: Flask) -> None:
    app.cli.add_command(health_command)
    app.cli.add_command(openapi_cli)
    app.cli.add_command(db_cli)
