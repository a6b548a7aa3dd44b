"""Reports computed in the background: one query, aggregated per status."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func
from sqlmodel import col, select

from ..extensions import db
from ..models.item import ITEM_STATUSES, Item
from ..models.task import ItemsReport
{%- if cookiecutter.use_auth %}
from ..models.user import User
{%- endif %}


def items_report({% if cookiecutter.use_auth %}user: User{% endif %}) -> ItemsReport:
    """Counts by status and price figures of the {% if cookiecutter.use_auth %}user's items (every item for an admin){% else %}items{% endif %}."""
    statement = (
        select(
            Item.status,
            func.count(),
            func.count(col(Item.price)),
            func.sum(col(Item.price)),
            func.min(col(Item.price)),
            func.max(col(Item.price)),
            func.min(col(Item.created_at)),
            func.max(col(Item.updated_at)),
        )
        .where(col(Item.deleted_at).is_(None))
        .group_by(Item.status)
    )
{%- if cookiecutter.use_auth %}
    everything = user.role == "admin"
    if not everything:
        statement = statement.where(Item.owner_id == user.id)
{%- endif %}
    counts = dict.fromkeys(ITEM_STATUSES, 0)
    priced, total_value = 0, 0.0
    prices: list[float] = []
    created: list[datetime] = []
    updated: list[datetime] = []
    for status, count, n_priced, value, low, high, first, last in db.session.exec(statement):
        counts[status] = count
        priced += n_priced
        total_value += value or 0.0
        prices += [price for price in (low, high) if price is not None]
        created += [first] if first is not None else []
        updated += [last] if last is not None else []
    return ItemsReport(
        scope={% if cookiecutter.use_auth %}"all" if everything else "own"{% else %}"all"{% endif %},
        total=sum(counts.values()),
        **counts,
        priced=priced,
        total_value=round(total_value, 2),
        average_price=round(total_value / priced, 2) if priced else None,
        min_price=min(prices, default=None),
        max_price=max(prices, default=None),
        first_created_at=min(created, default=None),
        last_updated_at=max(updated, default=None),
        generated_at=datetime.now(UTC),
    )
