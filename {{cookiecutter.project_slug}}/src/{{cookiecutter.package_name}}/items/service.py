"""Items: queries and changes, scoped to the caller."""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, or_
from sqlmodel import col, select

from ..core.errors import NotFound
from ..core.extensions import db
from ..core.identity import Caller
from ..core.models import paginate, utcnow
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


def visible_to(caller: Caller) -> list[ColumnElement[bool]]:
    """What the caller may see: items not deleted{% if cookiecutter.use_auth %}, only their own unless admin{% endif %}."""
    conditions: list[ColumnElement[bool]] = [col(Item.deleted_at).is_(None)]
{%- if cookiecutter.use_auth %}
    if not caller.sees_all():
        conditions.append(col(Item.owner_id) == caller.user_id)
{%- endif %}
    return conditions


def list_items(query: ItemQuery, caller: Caller) -> ItemPage:
    conditions = visible_to(caller)
    if query.status:
        conditions.append(col(Item.status) == query.status)
    if query.search:
        pattern = f"%{query.search.lower()}%"
        conditions.append(
            or_(func.lower(Item.title).like(pattern), func.lower(Item.description).like(pattern))
        )
    sort_column = col(getattr(Item, query.sort))
    ordering = sort_column.asc() if query.order == "asc" else sort_column.desc()
    return paginate(db.reader, Item, ItemOut, conditions, query, [ordering, col(Item.id).asc()])


def get_item(item_id: int, caller: Caller) -> Item:
    """The item, or 404 when it does not exist, is deleted or the caller may not see it."""
    visible = visible_to(caller)
    item = db.session.exec(select(Item).where(*visible, col(Item.id) == item_id)).first()
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
