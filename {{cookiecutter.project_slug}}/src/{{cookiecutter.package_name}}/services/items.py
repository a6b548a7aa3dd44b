"""Items: queries and changes, scoped to the caller{% if cookiecutter.use_auth %} (admins see every item){% endif %}."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from ..errors import NotFound
from ..extensions import db
from ..models.item import ITEM_STATUSES, Item, ItemCreate, ItemPage, ItemQuery, ItemStats, ItemUpdate
from ..models.item import ItemOut, utcnow
{%- if cookiecutter.use_auth %}
from ..models.user import User
{%- endif %}


{%- if cookiecutter.use_auth %}


def _visible(statement: SelectOfScalar[Any], user: User) -> SelectOfScalar[Any]:
    statement = statement.where(col(Item.deleted_at).is_(None))
    if user.role != "admin":
        statement = statement.where(Item.owner_id == user.id)
    return statement
{%- else %}


def _visible(statement: SelectOfScalar[Any]) -> SelectOfScalar[Any]:
    return statement.where(col(Item.deleted_at).is_(None))
{%- endif %}


def list_items(query: ItemQuery{% if cookiecutter.use_auth %}, user: User{% endif %}) -> ItemPage:
    statement = _visible(select(Item){% if cookiecutter.use_auth %}, user{% endif %})
    if query.status:
        statement = statement.where(Item.status == query.status)
    if query.search:
        pattern = f"%{query.search.lower()}%"
        statement = statement.where(
            or_(func.lower(Item.title).like(pattern), func.lower(Item.description).like(pattern))
        )
    total = db.session.exec(select(func.count()).select_from(statement.subquery())).one()
    sort_column = col(getattr(Item, query.sort))
    ordering = sort_column.asc() if query.order == "asc" else sort_column.desc()
    rows = db.session.exec(
        statement.order_by(ordering, col(Item.id).asc())
        .offset((query.page - 1) * query.size)
        .limit(query.size)
    ).all()
    return ItemPage(
        items=[ItemOut.model_validate(row) for row in rows],
        total=total,
        page=query.page,
        size=query.size,
        has_more=query.page * query.size < total,
    )


def get_item(item_id: int{% if cookiecutter.use_auth %}, user: User{% endif %}) -> Item:
    item = db.session.exec(
        _visible(select(Item){% if cookiecutter.use_auth %}, user{% endif %}).where(Item.id == item_id)
    ).first()
    if item is None:
        raise NotFound(f"Item {item_id} not found.")
    return item


def create_item(data: ItemCreate{% if cookiecutter.use_auth %}, user: User{% endif %}) -> Item:
    item = Item(**data.model_dump(){% if cookiecutter.use_auth %}, owner_id=user.id{% endif %})
    db.session.add(item)
    db.session.commit()
    return item


def update_item(item_id: int, data: ItemUpdate{% if cookiecutter.use_auth %}, user: User{% endif %}) -> Item:
    item = get_item(item_id{% if cookiecutter.use_auth %}, user{% endif %})
    for field, value in data.model_dump(exclude_unset=True).items():
        setattr(item, field, value)
    item.updated_at = utcnow()
    db.session.add(item)
    db.session.commit()
    return item


def delete_item(item_id: int{% if cookiecutter.use_auth %}, user: User{% endif %}) -> None:
    """Soft delete: the row stays, hidden from every query."""
    item = get_item(item_id{% if cookiecutter.use_auth %}, user{% endif %})
    item.deleted_at = utcnow()
    db.session.add(item)
    db.session.commit()


def item_stats({% if cookiecutter.use_auth %}user: User{% endif %}) -> ItemStats:
    statement = _visible(
        select(Item.status, func.count()).group_by(Item.status){% if cookiecutter.use_auth %}, user{% endif %}
    )
    counts = dict.fromkeys(ITEM_STATUSES, 0)
    for status, count in db.session.exec(statement).all():
        counts[status] = count
    return ItemStats(total=sum(counts.values()), **counts)
