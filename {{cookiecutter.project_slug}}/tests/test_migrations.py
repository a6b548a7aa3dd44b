"""Migrations run up and down on SQLite and PostgreSQL, and match the models."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic.config import main as alembic_main
from sqlalchemy import create_engine, inspect, make_url

from {{ cookiecutter.package_name }}.core.migrate import check, downgrade, upgrade
from {{ cookiecutter.package_name }}.core.models import tables_on


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def model_tables(url: str) -> set[str]:
    return {table.name for table in tables_on(make_url(url).get_backend_name())}


def test_down_and_up_again(database_url: str) -> None:
    expected = model_tables(database_url)
    assert tables(database_url) == expected
    try:
        downgrade(database_url, "base")
        assert tables(database_url) == set()
    finally:
        upgrade(database_url)
    assert tables(database_url) == expected
    check(database_url)  # raises when the models and migrations differ


@contextmanager
def logging_restored() -> Iterator[None]:
    """The `alembic` command applies alembic.ini's logging setup to the whole process; put the
    loggers it configures back as they were."""
    loggers = [logging.getLogger(name) for name in ("", "sqlalchemy.engine", "alembic")]
    saved = [(logger, logger.level, logger.handlers[:]) for logger in loggers]
    try:
        yield
    finally:
        for logger, level, handlers in saved:
            logger.setLevel(level)
            logger.handlers[:] = handlers


def test_alembic_command_uses_database_url(
    tmp_path: Path, project_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`alembic upgrade head` in the project root migrates the database DATABASE_URL names."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.chdir(project_root)
    monkeypatch.setenv("DATABASE_URL", url)
    with logging_restored():
        alembic_main(argv=["upgrade", "head"], prog="alembic")
    assert tables(url) == model_tables(url)
