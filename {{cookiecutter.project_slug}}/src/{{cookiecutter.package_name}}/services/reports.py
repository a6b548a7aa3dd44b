"""Reports computed in the background: one query, aggregated per status."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import ColumnElement, func
from sqlmodel import col, select

from ..extensions import db
from ..models.item import ITEM_STATUSES, Item
from ..models.task import ItemsReport
{%- if cookiecutter.use_auth %}
from ..models.user import User
{%- endif %}


def items_report({% if cookiecutter.use_auth %}user: User{% endif %}) -> ItemsReport:
    """Counts by status and price figures of the {% if cookiecutter.use_auth %}user's items (every item for an admin){% else %}items{% endif %}."""
    in_scope: list[ColumnElement[bool]] = [col(Item.deleted_at).is_(None)]
{%- if cookiecutter.use_auth %}
    everything = user.role == "admin"
    if not everything:
        in_scope.append(col(Item.owner_id) == user.id)
{%- endif %}
    by_status = (
        select(Item.status, func.count(), func.count(col(Item.price)), func.sum(col(Item.price)))
        .where(*in_scope)
        .group_by(Item.status)
    )
    counts: dict[str, int] = dict.fromkeys(ITEM_STATUSES, 0)
    priced, total_value = 0, 0.0
    for status, count, with_price, value in db.session.exec(by_status):
        counts[status] = count
        priced += with_price
        total_value += value or 0.0
    low, high, first, last = db.session.exec(
        select(
            func.min(col(Item.price)),
            func.max(col(Item.price)),
            func.min(col(Item.created_at)),
            func.max(col(Item.updated_at)),
        ).where(*in_scope)
    ).one()
    return ItemsReport(
        scope={% if cookiecutter.use_auth %}"all" if everything else "own"{% else %}"all"{% endif %},
        total=sum(counts.values()),
        **counts,
        priced=priced,
        total_value=round(total_value, 2),
        average_price=round(total_value / priced, 2) if priced else None,
        min_price=low,
        max_price=high,
        first_created_at=first,
        last_updated_at=last,
        generated_at=datetime.now(UTC),
    )
