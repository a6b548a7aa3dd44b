"""Command-line tools: `flask health`, `flask openapi export`, and one group per domain."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from .services.health import health_report

openapi_cli = AppGroup("openapi", help="The OpenAPI document.")


@click.command("health")
def health_command() -> None:
    """Run the /health checks; exit 1 when unhealthy."""
    report = health_report()
    click.echo(json.dumps(report.model_dump(mode="json"), indent=2))
    if report.status == "unhealthy":
        sys.exit(1)


@openapi_cli.command("export")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
def export_openapi(output: Path) -> None:
    """Write the OpenAPI document to a file."""
    spec = current_app.api_doc  # type: ignore[attr-defined]
    output.write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    click.echo(f"Wrote {output}")


def register_cli(app: Flask) -> None:
    app.cli.add_command(health_command)
    app.cli.add_command(openapi_cli)
