"""AI accounting: daily token budgets (safe under concurrency), usage records and the per-owner
rate limit."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from limits import parse
from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col

from ..core.errors import RateLimited
from ..core.extensions import db, limiter
from .errors import BudgetExceeded
from .models import AIDailyUsage, AIUsage, UsageSummary
from .settings import ai_settings

logger = logging.getLogger(__name__)

HIGH_USAGE_RATIO = 0.8  # warn once a caller has used this share of the daily budget


# -- budget --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reservation:
    owner: str
    day: date
    tokens: int


def utc_today() -> date:
    return datetime.now(UTC).date()


def seconds_to_midnight() -> int:
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    return max(1, math.ceil((midnight - now).total_seconds()))


def _insert(connection: Connection) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT."""
    return postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert


@contextmanager
def _counting() -> Iterator[Connection]:
    """A transaction on the usage counters.

    Two of them sit on the path of every AI call (reserve before, settle after), so on
    PostgreSQL their commits do not wait for the write-ahead log to reach the disk
    (`synchronous_commit` off for these transactions only). The counters stay consistent; a
    crash of the database server itself could lose the last fraction of a second of counts.
    """
    with db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
        yield connection


def budget_exceeded() -> BudgetExceeded:
    wait = seconds_to_midnight()
    return BudgetExceeded(
        details={"budget": ai_settings().ai_token_budget_daily, "resets_in_seconds": wait},
        headers={"Retry-After": str(wait)},
    )


def check_budget(owner: str) -> None:
    """Raise 429 `budget_exceeded` if today's tokens already reach the budget (no reservation;
    for refusing early, e.g. before queueing a background job)."""
    budget = ai_settings().ai_token_budget_daily
    if budget and usage_summary(owner).today_tokens >= budget:
        raise budget_exceeded()


def reserve(owner: str, estimate: int) -> Reservation:
    """Admit a call, or raise 429 `budget_exceeded` once today's tokens reach the budget.

    The check and the reservation are one statement (an upsert whose update is conditional), so
    concurrent calls see each other's reservations: a burst cannot all slip in under the line. A
    lone call is refused only when the tokens already used reach the budget (the call that
    crosses the line completes).
    """
    budget = ai_settings().ai_token_budget_daily
    day = utc_today()
    with _counting() as connection:
        insert = _insert(connection)(AIDailyUsage).values(
            owner=owner, day=day, tokens=0, reserved=estimate, requests=0
        )
        statement = insert.on_conflict_do_update(
            index_elements=[col(AIDailyUsage.owner), col(AIDailyUsage.day)],
            set_={"reserved": col(AIDailyUsage.reserved) + insert.excluded.reserved},
            where=(col(AIDailyUsage.tokens) + col(AIDailyUsage.reserved) < budget)
            if budget
            else None,
        ).returning(col(AIDailyUsage.owner))
        admitted = connection.execute(statement).first() is not None
    if not admitted:
        raise budget_exceeded()
    return Reservation(owner, day, estimate)


@dataclass
class UsageRecord:
    endpoint: str
    provider: str
    model: str
    status: str = "ok"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    cached: bool = False
    request_id: str | None = None


def settle(reservation: Reservation, record: UsageRecord) -> int:
    """Release the reservation, count the tokens, store the record. Returns today's tokens.

    A record whose `request_id` is already stored (a re-delivered background job) is not
    counted twice.
    """
    tokens = record.prompt_tokens + record.completion_tokens
    row = {
        "owner": reservation.owner,
        "request_id": record.request_id,
        "endpoint": record.endpoint,
        "provider": record.provider,
        "model": record.model[:100],
        "status": record.status,
        "cached": record.cached,
        "prompt_tokens": record.prompt_tokens,
        "completion_tokens": record.completion_tokens,
        "total_tokens": tokens,
        "latency_ms": round(record.latency_ms, 2),
        "created_at": datetime.now(UTC),
    }
    with _counting() as connection:
        stored = connection.execute(
            _insert(connection)(AIUsage)
            .values(**row)
            .on_conflict_do_nothing(index_elements=[col(AIUsage.request_id)])
            .returning(col(AIUsage.id))
        ).first()
        counted = stored is not None
        today: int = connection.execute(
            update(AIDailyUsage)
            .where(
                col(AIDailyUsage.owner) == reservation.owner,
                col(AIDailyUsage.day) == reservation.day,
            )
            .values(
                reserved=col(AIDailyUsage.reserved) - reservation.tokens,
                tokens=col(AIDailyUsage.tokens) + (tokens if counted else 0),
                requests=col(AIDailyUsage.requests) + (1 if counted else 0),
            )
            .returning(col(AIDailyUsage.tokens))
        ).scalar_one()
    return today


def high_usage(today_tokens: int) -> bool:
    budget = ai_settings().ai_token_budget_daily
    return bool(budget) and today_tokens >= budget * HIGH_USAGE_RATIO


def usage_summary(owner: str) -> UsageSummary:
    budget = ai_settings().ai_token_budget_daily
    with db.engine.connect() as connection:
        requests, tokens = connection.execute(
            select(func.count(), func.coalesce(func.sum(col(AIUsage.total_tokens)), 0)).where(
                col(AIUsage.owner) == owner
            )
        ).one()
        today = connection.execute(
            select(col(AIDailyUsage.tokens)).where(
                col(AIDailyUsage.owner) == owner, col(AIDailyUsage.day) == utc_today()
            )
        ).scalar_one_or_none()
    today = today or 0
    return UsageSummary(
        total_requests=requests,
        total_tokens=tokens,
        today_tokens=today,
        budget=budget,
        remaining=max(0, budget - today) if budget else None,
    )


def usage_stats() -> dict[str, Any]:
    """Totals for `flask ai show-stats`: every owner, by model and status."""
    with db.engine.connect() as connection:
        rows = connection.execute(
            select(
                col(AIUsage.provider),
                col(AIUsage.model),
                col(AIUsage.status),
                func.count(),
                func.coalesce(func.sum(col(AIUsage.total_tokens)), 0),
                func.coalesce(func.avg(col(AIUsage.latency_ms)), 0),
            ).group_by(col(AIUsage.provider), col(AIUsage.model), col(AIUsage.status))
        ).all()
        owners = connection.execute(
            select(func.count(func.distinct(col(AIUsage.owner))))
        ).scalar_one()
    return {
        "owners": owners,
        "rows": [
            {
                "provider": provider,
                "model": model,
                "status": status,
                "requests": count,
                "tokens": int(tokens),
                "avg_latency_ms": round(float(latency), 1),
            }
            for provider, model, status, count, tokens, latency in rows
        ],
    }


# -- rate limit ----------------------------------------------------------------------------------


def enforce_rate_limit(owner: str) -> None:
    """RATE_LIMIT_AI per owner, on the app's limiter storage (Redis when configured)."""
    if not limiter.enabled:
        return
    item = parse(ai_settings().rate_limit_ai)
    strategy = limiter.limiter
    if not strategy.hit(item, "ai", owner):
        reset = strategy.get_window_stats(item, "ai", owner).reset_time
        retry_after = max(1, math.ceil(reset - time.time()))
        raise RateLimited(
            f"AI rate limit exceeded ({item}).", headers={"Retry-After": str(retry_after)}
        )
