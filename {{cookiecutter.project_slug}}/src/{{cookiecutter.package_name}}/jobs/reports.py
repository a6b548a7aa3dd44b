"""The example job: a report on the items the caller may see, computed by the worker in one
query aggregated per status."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import func
from sqlmodel import col, select

from ..core.extensions import db
from ..core.identity import Caller
from ..core.models import UTCDateTime, utcnow
from ..items.models import ITEM_STATUSES, Item
from ..items.service import visible_to
from .celery_app import PACKAGE, JobTask, job
from .models import TaskAccepted
from .service import queue_job

ITEMS_REPORT = f"{PACKAGE}.items_report"


class ItemsReport(BaseModel):
    """Counts and prices of the items in scope, as of `generated_at`."""

    scope: Literal["own", "all"]
    total: int
    draft: int
    published: int
    archived: int
    priced: int
    total_value: float
    average_price: float | None
    min_price: float | None
    max_price: float | None
    first_created_at: UTCDateTime | None
    last_updated_at: UTCDateTime | None
    generated_at: UTCDateTime


def queue_items_report(caller: Caller) -> TaskAccepted:
    return queue_job(ITEMS_REPORT, caller=caller, kwargs={"caller": asdict(caller)})


@job(ITEMS_REPORT)
def items_report(task: JobTask, caller: dict[str, Any]) -> dict[str, Any]:
    """The report of the items the caller may see. It only reads, so a redelivered job simply
    computes it again."""
    return build_items_report(Caller(**caller)).model_dump(mode="json")


def build_items_report(caller: Caller) -> ItemsReport:
    """Counts by status and price figures of the items the caller may see."""
    in_scope = visible_to(caller)
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
        scope="all" if caller.sees_all() else "own",
        total=sum(counts.values()),
        **counts,
        priced=priced,
        total_value=round(total_value, 2),
        average_price=round(total_value / priced, 2) if priced else None,
        min_price=low,
        max_price=high,
        first_created_at=first,
        last_updated_at=last,
        generated_at=utcnow(),
    )
