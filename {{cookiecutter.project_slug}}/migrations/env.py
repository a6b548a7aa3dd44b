"""Alembic environment: the app's DATABASE_URL and the SQLModel tables of the package."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import {{ cookiecutter.package_name }}  # noqa: F401 - importing the app registers every feature's tables
from {{ cookiecutter.package_name }}.core.extensions import make_engine
from {{ cookiecutter.package_name }}.core.settings import Settings

config = context.config

if config.config_file_name is not None:  # the `alembic` command, not `flask db`
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = SQLModel.metadata


def database_url() -> str:
    # `flask db` and the app pass their URL; the `alembic` command reads the settings.
    url: str | None = config.attributes.get("database_url")
    return url or Settings().database_url


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """A schema object declared for one dialect only (`info={"dialect": "postgresql"}`, e.g. an
    index type SQLite lacks) is compared on that dialect alone."""
    info = getattr(obj, "info", None) or {}
    dialect = info.get("dialect")
    return dialect is None or dialect == context.get_context().dialect.name


def configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        include_object=include_object,
        **kwargs,  # type: ignore[arg-type]
    )


def run_migrations_offline() -> None:
    url = database_url()
    configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_with(connection: Connection) -> None:
    # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
    configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(database_url())
    try:
        with engine.connect() as connection:
            run_with(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
