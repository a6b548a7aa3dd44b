"""Building blocks of every feature's models: strict request bodies, UTC times, pagination."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import Column, ColumnElement, Connection, Select, Table, bindparam, func, select
from sqlmodel import SQLModel


def tables_on(dialect: str) -> list[Table]:
    """The models' tables that a `dialect` database has, parents first: one declared for a
    single dialect (`info={"dialect": "sqlite"}`) exists there alone (migrations/env.py)."""
    return [
        table
        for table in SQLModel.metadata.sorted_tables
        if table.info.get("dialect") in (None, dialect)
    ]


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite returns naive datetimes; every stored time is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# A stored time, always answered in UTC (`...Z`).
UTCDateTime = Annotated[datetime, AfterValidator(as_utc)]


class StrictBody(BaseModel):
    """JSON bodies: no type coercion, unknown fields rejected."""

    model_config = ConfigDict(extra="forbid", strict=True)


class PageQuery(BaseModel):
    """The query string of a paginated list.

    flask-openapi3 asks the query model for its JSON schema on every request (to find list
    parameters) and only reads it; pydantic would build it anew each time, so that schema is
    built once per class and shared. The OpenAPI document asks with arguments, once per app,
    and may change what it gets: it gets a copy.
    """

    model_config = ConfigDict(extra="forbid")

    page: int = Field(default=1, ge=1, le=100_000)
    size: int = Field(default=20, ge=1, le=100)

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        key = (cls, args, tuple(sorted(kwargs.items())))
        schema = _QUERY_SCHEMAS.get(key)
        if schema is None:
            schema = _QUERY_SCHEMAS[key] = super().model_json_schema(*args, **kwargs)
        return copy.deepcopy(schema) if args or kwargs else schema


_QUERY_SCHEMAS: dict[tuple[Any, ...], dict[str, Any]] = {}

T = TypeVar("T")
Out = TypeVar("Out", bound=BaseModel)


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    page: int
    size: int
    has_more: bool


@cache
def answer_columns(model: type[SQLModel], out: type[BaseModel]) -> tuple[Column[Any], ...]:
    """The columns of `model`'s table that `out` answers with: the one of each field's name."""
    table: Table = model.__table__  # type: ignore[attr-defined]
    return tuple(table.c[name] for name in out.model_fields)


@dataclass(frozen=True)
class PageStatement:
    """A paginated query: a page of rows, each with the total of all rows, and that total alone
    (for a page past the last). Its filters' values may be bound parameters, bound when it runs
    with the page's own (`page_offset`, `page_size`): then one statement serves every request of
    its shape, and SQLAlchemy builds it and its cache key once instead of on each request."""

    rows: Select[Any]
    count: Select[Any]


def page_statement(
    model: type[SQLModel],
    out: type[BaseModel],
    where: Sequence[ColumnElement[bool]],
    order_by: Sequence[Any],
) -> PageStatement:
    """The page of the `model` rows matching `where` as `out`, and their total, in one query.

    Only the columns `out` answers with are read, as plain rows: no ORM object is built for a
    row that only becomes JSON, and a large column the list does not show (a document's text)
    stays in the database. The count is a subquery that PostgreSQL runs once (an InitPlan),
    not a window over the rows, which would make it read every matching row in full before
    the sort and the limit.
    """
    counting = select(func.count()).select_from(model).where(*where)
    # Not correlated: the subquery counts its own rows, not the outer query's current one.
    total_of_all = counting.scalar_subquery().correlate(None).label("total_of_all")
    rows = (
        select(*answer_columns(model, out), total_of_all)
        .where(*where)
        .order_by(*order_by)
        .offset(bindparam("page_offset"))
        .limit(bindparam("page_size"))
    )
    return PageStatement(rows, counting)


def paginate(
    connection: Connection,
    statement: PageStatement,
    out: type[Out],
    query: PageQuery,
    values: Mapping[str, Any] | None = None,
) -> Page[Out]:
    """The page `query` asks for, with `values` bound to the statement's parameters."""
    offset = (query.page - 1) * query.size
    bound = {**(values or {}), "page_offset": offset, "page_size": query.size}
    rows = connection.execute(statement.rows, bound).all()
    if rows:
        total = int(rows[0].total_of_all)
    elif query.page == 1:
        total = 0
    else:  # past the last page: no row carries the count
        total = connection.execute(statement.count, bound).scalar_one()
    fields = tuple(out.model_fields)  # the columns' order; the total comes after them
    return Page[Out](
        items=[out.model_validate(dict(zip(fields, row, strict=False))) for row in rows],
        total=total,
        page=query.page,
        size=query.size,
        has_more=query.page * query.size < total,
    )
