"""Items: queries and changes, scoped to the caller{% if cookiecutter.use_auth %} (admins see every item){% endif %}."""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, or_
from sqlmodel import col, select

from ..errors import NotFound
from ..extensions import db
from ..models.item import (
    ITEM_STATUSES,
    Item,
    ItemCreate,
    ItemOut,
    ItemPage,
    ItemQuery,
    ItemStats,
    ItemUpdate,
    utcnow,
)
{%- if cookiecutter.use_auth %}
from ..models.user import User
{%- endif %}


{%- if cookiecutter.use_auth %}


def _visible(user: User) -> list[ColumnElement[bool]]:
    """What the caller may see: items not deleted, and only their own unless admin."""
    conditions: list[ColumnElement[bool]] = [col(Item.deleted_at).is_(None)]
    if user.role != "admin":
        conditions.append(col(Item.owner_id) == user.id)
    return conditions
{%- else %}


def _visible() -> list[ColumnElement[bool]]:
    """What the caller may see: items not deleted."""
    return [col(Item.deleted_at).is_(None)]
{%- endif %}


def list_items(query: ItemQuery{% if cookiecutter.use_auth %}, user: User{% endif %}) -> ItemPage:
    statement = select(Item).where(*_visible({% if cookiecutter.use_auth %}user{% endif %}))
    if query.status:
        statement = statement.where(col(Item.status) == query.status)
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
    """The item, or 404 when it does not exist, is deleted{% if cookiecutter.use_auth %} or is someone else's{% endif %}."""
    visible = _visible({% if cookiecutter.use_auth %}user{% endif %})
    item = db.session.exec(select(Item).where(*visible, col(Item.id) == item_id)).first()
    if item is None:
        raise NotFound(f"Item {item_id} not found.")
    return item


def create_item(data: ItemCreate{% if cookiecutter.use_auth %}, user: User{% endif %}) -> Item:
{%- if cookiecutter.use_auth %}
    item = Item.model_validate({**data.model_dump(), "owner_id": user.id})
{%- else %}
    item = Item.model_validate(data.model_dump())
{%- endif %}
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
    visible = _visible({% if cookiecutter.use_auth %}user{% endif %})
    statement = select(Item.status, func.count()).where(*visible).group_by(Item.status)
    counts: dict[str, int] = dict.fromkeys(ITEM_STATUSES, 0)
    counts.update(db.session.exec(statement).all())
    return ItemStats(
        total=sum(counts.values()),
        draft=counts["draft"],
        published=counts["published"],
        archived=counts["archived"],
    )
