"""Building blocks of every feature's models: strict request bodies, UTC times, pagination."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, Table, func
from sqlmodel import Session, SQLModel, select


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
Row = TypeVar("Row")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    page: int
    size: int
    has_more: bool


def paginate(
    session: Session,
    model: type[Row],
    where: Sequence[ColumnElement[bool]],
    query: PageQuery,
    convert: Callable[[Row], T],
    order_by: Sequence[Any],
) -> Page[T]:
    """One page of the `model` rows matching `where`, and their total, in one query: the count
    is a subquery that PostgreSQL runs once (an InitPlan), not a window over the rows, which
    would make it read every matching row in full before the sort and the limit."""
    counting = select(func.count()).select_from(model).where(*where)
    # Not correlated: the subquery counts its own rows, not the outer query's current one.
    total_of_all = counting.scalar_subquery().correlate(None)
    statement = (
        select(model, total_of_all)
        .where(*where)
        .order_by(*order_by)
        .offset((query.page - 1) * query.size)
        .limit(query.size)
    )
    rows = session.exec(statement).all()
    if rows:
        total = int(rows[0][1])
    elif query.page == 1:
        total = 0
    else:  # past the last page: no row carries the count
        total = session.exec(counting).one()
    return Page[T](
        items=[convert(row[0]) for row in rows],
        total=total,
        page=query.page,
        size=query.size,
        has_more=query.page * query.size < total,
    )
