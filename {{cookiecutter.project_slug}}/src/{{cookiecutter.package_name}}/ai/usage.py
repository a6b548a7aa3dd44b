"""AI accounting: daily token budgets (safe under concurrency), usage records and the per-owner
rate limit."""

from __future__ import annotations

import atexit
import logging
import math
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache, partial
from typing import Any

from flask import Flask, Response, current_app, has_request_context
from limits import parse
from sqlalchemy import (
    BigInteger,
    Engine,
    Executable,
    Row,
    String,
    bindparam,
    case,
    create_engine,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlmodel import col

from ..core.errors import RateLimited
from ..core.extensions import db, limiter
from .errors import BudgetExceeded
from .models import AIDailyUsage, AIUsage, UsageSummary
from .settings import ai_settings

logger = logging.getLogger(__name__)

HIGH_USAGE_RATIO = 0.8  # warn once a caller has used this share of the daily budget


# -- budget --------------------------------------------------------------------------------------
#
# Every AI call reserves its estimate before it starts and settles (releases the reservation,
# counts the tokens, stores the record) when it ends: one statement each, on connections in
# autocommit mode. A request's settlement is written by the process's settlement thread once
# the response has been sent, so it adds nothing to the caller's wait, nor to that of the next
# request on the same keep-alive connection; the budget row keeps the reservation until then.

# A reservation counts for this long at least, twice as long at most, unless settled earlier:
# longer than any call takes, so that only a reservation whose worker died stops counting.
RESERVATION_LEASE_SECONDS = 600


@dataclass(frozen=True)
class Reservation:
    owner: str
    day: date
    tokens: int
    lease: int = 0  # the lease period it is counted in
    used: int = 0  # the owner's tokens of the day when it was made


def utc_today() -> date:
    return datetime.now(UTC).date()


def seconds_to_midnight() -> int:
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    return max(1, math.ceil((midnight - now).total_seconds()))


def lease_period() -> int:
    return int(time.time() // RESERVATION_LEASE_SECONDS)


def _insert(dialect: str) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT."""
    return postgresql_insert if dialect == "postgresql" else sqlite_insert


def init_accounting(app: Flask, database_url: str) -> None:
    """The accounting's own engine and the settlements waiting for their response to be sent.

    On PostgreSQL: autocommit (each statement commits on its own, no BEGIN or COMMIT round
    trips) and `synchronous_commit` off (a commit does not wait for the write-ahead log to
    reach the disk; a crash of the database server itself could lose the last fraction of a
    second of counts). No pre-ping: a connection the server dropped fails its statement, which
    is tried once more on a new one.
    """
    main: Engine = app.extensions["database_engine"]
    if main.dialect.name == "postgresql":
        engine = create_engine(
            database_url,
            isolation_level="AUTOCOMMIT",
            pool_size=2,
            max_overflow=8,
            connect_args={"connect_timeout": 3, "options": "-c synchronous_commit=off"},
        )
    else:
        engine = main
    app.extensions["ai_accounting_engine"] = engine
    app.extensions["ai_settlements"] = Settlements()


def accounting_engine() -> Engine:
    engine: Engine = current_app.extensions["ai_accounting_engine"]
    return engine


def settlements() -> Settlements:
    pending: Settlements = current_app.extensions["ai_settlements"]
    return pending


class Settlements:
    """Settlements of requests whose responses are on their way: written by the settlement
    thread once the response has been sent (`write_after_response`), or before this app next
    reads the counters, whichever comes first, so that a caller always sees its own calls
    counted. What is still pending when the process exits is written then."""

    def __init__(self) -> None:
        self._pending: deque[Callable[[], None]] = deque()
        self._writing = threading.Lock()

    def add(self, write: Callable[[], None]) -> None:
        self._pending.append(write)

    def write(self, *, wait: bool = True) -> None:
        """Write the pending settlements. With `wait`, first wait for those another thread is
        writing: a read of the counters must see them. Without, leave them all to that thread.
        """
        if not self._writing.acquire(blocking=wait):
            return
        try:
            while self._pending:
                try:
                    self._pending.popleft()()
                except Exception:  # the response is gone: log; the reservation expires
                    logger.exception("An AI call's usage could not be recorded")
        finally:
            self._writing.release()

    def write_soon(self) -> None:
        """Hand the pending settlements to this process's settlement thread."""
        _settlement_thread().put(self)


class _SettlementThread:
    """The process's thread that writes the settlements handed to it, in order."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._due: queue.Queue[Settlements] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="ai-settlements", daemon=True)
        self._thread.start()
        atexit.register(self.drain)  # a worker that stops writes what its responses left

    def put(self, pending: Settlements) -> None:
        self._due.put(pending)

    def _run(self) -> None:
        while True:
            pending = self._due.get()
            try:
                pending.write()
            finally:
                self._due.task_done()

    def drain(self) -> None:
        """At exit, once the thread has written everything handed to it: the settlement it may
        be writing right now too, which the interpreter would otherwise cut short (it stops a
        daemon thread wherever it is)."""
        if os.getpid() != self.pid:  # a process forked from this one: not its settlements
            return
        if self._thread.is_alive():
            self._due.join()
        else:  # stopped by an error of its own: write what it left
            while not self._due.empty():
                self._due.get().write()


_settler: _SettlementThread | None = None
_starting = threading.Lock()


def _settlement_thread() -> _SettlementThread:
    """This process's settlement thread, started with its first response."""
    global _settler
    with _starting:
        if _settler is None or _settler.pid != os.getpid():
            _settler = _SettlementThread()
        return _settler


def write_after_response(response: Response) -> Response:
    """after_request of the AI routes: once the response has been sent (the whole stream, for
    server-sent events), its settlements go to the settlement thread; the connection's thread
    reads its next request meanwhile."""
    response.call_on_close(settlements().write_soon)
    return response


def _execute(engine: Engine, statement: Executable, parameters: dict[str, Any]) -> Row[Any] | None:
    """One statement in autocommit; once more on a new connection if the server dropped the
    pooled one. (A reservation whose reply was lost with the connection expires with its lease.)
    """
    for attempt in (1, 2):
        try:
            with engine.connect() as connection:
                result = connection.execute(statement, parameters)
                row = result.first() if result.returns_rows else None
                connection.commit()  # a no-op in autocommit; commits on SQLite
                return row
        except DBAPIError as exc:
            if attempt == 2 or not exc.connection_invalidated:
                raise
    return None  # not reached


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


# The accounting's statements are built once per dialect, their values bound at each call: a
# statement built per call costs more CPU than its round trip to the database.


def _typed(name: str, column: Any) -> Any:
    return bindparam(name, type_=column.type)


@cache
def _reserve_statement(dialect: str, *, budgeted: bool) -> Executable:
    lease = col(AIDailyUsage.lease)
    period = bindparam("p_period", type_=BigInteger)
    estimate = bindparam("p_estimate", type_=BigInteger)
    current = lease >= period  # another instance's clock may be a little ahead
    reserved = case((current, col(AIDailyUsage.reserved)), else_=0)
    reserved_before = case(
        (current, col(AIDailyUsage.reserved_before)),
        (lease == period - 1, col(AIDailyUsage.reserved)),
        else_=0,
    )
    insert = _insert(dialect)(AIDailyUsage).values(
        owner=_typed("p_owner", col(AIDailyUsage.owner)),
        day=_typed("p_day", col(AIDailyUsage.day)),
        tokens=0,
        reserved=estimate,
        reserved_before=0,
        lease=period,
        requests=0,
    )
    budget = bindparam("p_budget", type_=BigInteger)
    under_budget = col(AIDailyUsage.tokens) + reserved + reserved_before < budget
    statement: Executable = insert.on_conflict_do_update(
        index_elements=[col(AIDailyUsage.owner), col(AIDailyUsage.day)],
        set_={
            "reserved": reserved + estimate,
            "reserved_before": reserved_before,
            "lease": case((current, lease), else_=period),
        },
        where=under_budget if budgeted else None,
    ).returning(col(AIDailyUsage.tokens), col(AIDailyUsage.lease))
    return statement


def reserve(owner: str, estimate: int) -> Reservation:
    """Admit a call, or raise 429 `budget_exceeded` once today's tokens reach the budget.

    The check and the reservation are one statement (an upsert whose update is conditional), so
    concurrent calls see each other's reservations: a burst cannot all slip in under the line. A
    lone call is refused only when the tokens already used reach the budget (the call that
    crosses the line completes). Reservations older than the previous lease period no longer
    count (see `AIDailyUsage`).
    """
    # This app's own settled calls first, those being written included: a caller's next call
    # sees its previous ones counted.
    settlements().write()
    budget = ai_settings().ai_token_budget_daily
    engine = accounting_engine()
    statement = _reserve_statement(engine.dialect.name, budgeted=bool(budget))
    day = utc_today()
    parameters = {
        "p_owner": owner,
        "p_day": day,
        "p_estimate": estimate,
        "p_period": lease_period(),
        "p_budget": budget,
    }
    admitted = _execute(engine, statement, parameters)
    if admitted is None:
        raise budget_exceeded()
    return Reservation(owner, day, estimate, lease=admitted.lease, used=admitted.tokens)


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
    """Release the reservation, count the tokens, store the record. Returns today's tokens
    (those counted when the call was admitted, and its own).

    During a request this is written once the response has been sent; elsewhere (a worker's
    job) at once. A record whose `request_id` is already stored (a re-delivered background job)
    is not counted twice.
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
    write = partial(_write_settlement, accounting_engine(), reservation, row)
    if has_request_context():
        settlements().add(write)
    else:
        write()
    return reservation.used + tokens


def _write_settlement(engine: Engine, reservation: Reservation, row: dict[str, Any]) -> None:
    parameters = {
        **{f"u_{name}": value for name, value in row.items()},
        "p_owner": reservation.owner,
        "p_day": reservation.day,
        "p_lease": reservation.lease,
        "p_tokens": reservation.tokens,
    }
    if engine.dialect.name == "postgresql":
        # One statement: the record's insert is a CTE the counters' update reads.
        _execute(engine, _settle_statement(), parameters)
        return
    stored, count = _settle_statements_sqlite()
    with engine.begin() as connection:  # SQLite: no writes in a CTE
        is_new = connection.execute(stored, parameters).first() is not None
        total = row["total_tokens"] if is_new else 0
        connection.execute(count, {**parameters, "p_total": total, "p_new": int(is_new)})


def _store_record(dialect: str) -> Any:
    """INSERT of the call's record unless its `request_id` is stored; returns its tokens."""
    columns = AIUsage.__table__.columns  # type: ignore[attr-defined]
    names = (
        "owner",
        "request_id",
        "endpoint",
        "provider",
        "model",
        "status",
        "cached",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "latency_ms",
        "created_at",
    )
    return (
        _insert(dialect)(AIUsage)
        .values({name: _typed(f"u_{name}", columns[name]) for name in names})
        .on_conflict_do_nothing(index_elements=[col(AIUsage.request_id)])
        .returning(col(AIUsage.total_tokens))
    )


def _release() -> dict[str, Any]:
    """The reservation leaves the bucket of its period, if that is still kept."""
    lease = col(AIDailyUsage.lease)
    made_in = bindparam("p_lease", type_=BigInteger)
    tokens = bindparam("p_tokens", type_=BigInteger)
    return {
        "reserved": case(
            (lease == made_in, col(AIDailyUsage.reserved) - tokens),
            else_=col(AIDailyUsage.reserved),
        ),
        "reserved_before": case(
            (lease == made_in + 1, col(AIDailyUsage.reserved_before) - tokens),
            else_=col(AIDailyUsage.reserved_before),
        ),
    }


def _owner_day() -> tuple[Any, Any]:
    return (
        col(AIDailyUsage.owner) == bindparam("p_owner", type_=String),
        col(AIDailyUsage.day) == _typed("p_day", col(AIDailyUsage.day)),
    )


@cache
def _settle_statement() -> Executable:
    counted = _store_record("postgresql").cte("stored")
    statement: Executable = (
        update(AIDailyUsage)
        .where(*_owner_day())
        .values(
            **_release(),
            tokens=col(AIDailyUsage.tokens)
            + select(func.coalesce(func.sum(counted.c.total_tokens), 0)).scalar_subquery(),
            requests=col(AIDailyUsage.requests)
            + select(func.count()).select_from(counted).scalar_subquery(),
        )
    )
    return statement


@cache
def _settle_statements_sqlite() -> tuple[Executable, Executable]:
    count: Executable = (
        update(AIDailyUsage)
        .where(*_owner_day())
        .values(
            **_release(),
            tokens=col(AIDailyUsage.tokens) + bindparam("p_total", type_=BigInteger),
            requests=col(AIDailyUsage.requests) + bindparam("p_new", type_=BigInteger),
        )
    )
    return _store_record("sqlite"), count


def high_usage(today_tokens: int) -> bool:
    budget = ai_settings().ai_token_budget_daily
    return bool(budget) and today_tokens >= budget * HIGH_USAGE_RATIO


def usage_summary(owner: str) -> UsageSummary:
    settlements().write()  # this app's own calls, before it reads the counters
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
    settlements().write()
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
