"""Migrations run up and down on SQLite and PostgreSQL, and match the models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, inspect
from sqlmodel import SQLModel

from {{ cookiecutter.package_name }}.migrate import check, downgrade, upgrade


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_down_and_up_again(database_url: str) -> None:
    expected = set(SQLModel.metadata.tables)
    assert tables(database_url) == expected
    try:
        downgrade(database_url, "base")
        assert tables(database_url) == set()
    finally:
        upgrade(database_url)
    assert tables(database_url) == expected
    check(database_url)  # raises when the models and migrations differ


def test_alembic_command_uses_database_url(tmp_path: Path, project_root: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=project_root,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert tables(url) == set(SQLModel.metadata.tables)
