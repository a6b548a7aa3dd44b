"""Items: queries and changes, scoped to the caller."""

from __future__ import annotations

from functools import cache

from sqlalchemy import BindParameter, ColumnElement, bindparam, func, or_
from sqlmodel import col, select

from ..core.errors import NotFound
from ..core.extensions import db
from ..core.identity import Caller
from ..core.models import PageStatement, page_statement, paginate, utcnow
from .models import (
    ITEM_STATUSES,
    Item,
    ItemCreate,
    ItemOut,
    ItemPage,
    ItemQuery,
    ItemStats,
    ItemUpdate,
)


{%- if cookiecutter.use_auth %}


def visible(owner_id: int | BindParameter[int] | None) -> list[ColumnElement[bool]]:
    """Items not deleted; with an `owner_id`, only that owner's."""
    conditions: list[ColumnElement[bool]] = [col(Item.deleted_at).is_(None)]
    if owner_id is not None:
        conditions.append(col(Item.owner_id) == owner_id)
    return conditions


def visible_to(caller: Caller) -> list[ColumnElement[bool]]:
    """What the caller may see: their own items, or every item for an admin."""
    return visible(None if caller.sees_all() else caller.user_id)


@cache
def list_statement(
    own_only: bool, by_status: bool, searched: bool, sort: str, order: str
) -> PageStatement:
    """The list's query for one shape of request, built once per process: building a statement
    and its cache key took SQLAlchemy more CPU than the rest of the request's database work.
    The caller's id, the status and the search pattern are bound when it runs."""
    conditions = visible(bindparam("owner_id") if own_only else None)
{%- else %}


def visible() -> list[ColumnElement[bool]]:
    """Items not deleted."""
    return [col(Item.deleted_at).is_(None)]


def visible_to(_caller: Caller) -> list[ColumnElement[bool]]:
    """What a caller may see: without sign-in, the same for every caller."""
    return visible()


@cache
def list_statement(by_status: bool, searched: bool, sort: str, order: str) -> PageStatement:
    """The list's query for one shape of request, built once per process: building a statement
    and its cache key took SQLAlchemy more CPU than the rest of the request's database work.
    The status and the search pattern are bound when it runs."""
    conditions = visible()
{%- endif %}
    if by_status:
        conditions.append(col(Item.status) == bindparam("status"))
    if searched:
        pattern: BindParameter[str] = bindparam("pattern")
        conditions.append(
            or_(func.lower(Item.title).like(pattern), func.lower(Item.description).like(pattern))
        )
    sort_column = col(getattr(Item, sort))
    ordering = sort_column.asc() if order == "asc" else sort_column.desc()
    return page_statement(Item, ItemOut, conditions, [ordering, col(Item.id).asc()])


def list_items(query: ItemQuery, caller: Caller) -> ItemPage:
    shape = (bool(query.status), bool(query.search), query.sort, query.order)
    values: dict[str, object] = {
        "status": query.status,
        "pattern": f"%{query.search.lower()}%" if query.search else None,
    }
{%- if cookiecutter.use_auth %}
    statement = list_statement(not caller.sees_all(), *shape)
    values["owner_id"] = caller.user_id
{%- else %}
    statement = list_statement(*shape)
{%- endif %}
    return paginate(db.reader, statement, ItemOut, query, values)


def get_item(item_id: int, caller: Caller) -> Item:
    """The item, or 404 when it does not exist, is deleted or the caller may not see it."""
    statement = select(Item).where(*visible_to(caller), col(Item.id) == item_id)
    item = db.session.exec(statement).first()
    if item is None:
        raise NotFound(f"Item {item_id} not found.")
    return item


def create_item(data: ItemCreate, caller: Caller) -> Item:
    values = data.model_dump()
{%- if cookiecutter.use_auth %}
    values["owner_id"] = caller.user_id
{%- endif %}
    item = Item.model_validate(values)
    db.session.add(item)
    db.session.commit()
    return item


def update_item(item_id: int, data: ItemUpdate, caller: Caller) -> Item:
    item = get_item(item_id, caller)
    for field, value in data.model_dump(exclude_unset=True).items():
        setattr(item, field, value)
    item.updated_at = utcnow()
    db.session.add(item)
    db.session.commit()
    return item


def delete_item(item_id: int, caller: Caller) -> None:
    """Soft delete: the row stays, hidden from every query."""
    item = get_item(item_id, caller)
    item.deleted_at = utcnow()
    db.session.add(item)
    db.session.commit()


def item_stats(caller: Caller) -> ItemStats:
    statement = select(Item.status, func.count()).where(*visible_to(caller)).group_by(Item.status)
    counts: dict[str, int] = dict.fromkeys(ITEM_STATUSES, 0)
    counts.update(db.session.exec(statement).all())
    return ItemStats(
        total=sum(counts.values()),
        draft=counts["draft"],
        published=counts["published"],
        archived=counts["archived"],
    )
