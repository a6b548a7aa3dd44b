"""Extensions, created unbound here and initialised by `create_app`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import cast

import redis
from flask import Flask, Request, Response, current_app, g, has_request_context, request
from flask.sessions import SecureCookieSessionInterface
from flask_cors import CORS
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, WindowStats
from limits.storage import RedisStorage, Storage
from limits.strategies import FixedWindowRateLimiter
from redis.commands.core import Script
from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import DisconnectionError
from sqlmodel import Session, create_engine

from .settings import Settings


class Database:
    """The SQLModel engine of the current app, and one session per request (closed on teardown),
    or for a request that only reads, one `reader` connection.

    The engine lives in `app.extensions`, so several apps (tests, CLI) never share one.
    """

    def init_app(self, app: Flask, settings: Settings) -> None:
        app.extensions["database"] = self
        engine = make_engine(settings.database_url)
        app.extensions["database_engine"] = engine
        # The same pool, its connections in autocommit while they serve a reader.
        app.extensions["database_reader"] = engine.execution_options(isolation_level="AUTOCOMMIT")
        app.teardown_appcontext(self._close_session)

    @property
    def engine(self) -> Engine:
        engine: Engine = current_app.extensions["database_engine"]
        return engine

    @property
    def session(self) -> Session:
        if "db_session" not in g:
            g.db_session = Session(self.engine, expire_on_commit=False)
        session: Session = g.db_session
        return session

    @property
    def reader(self) -> Connection:
        """A connection for a request that only reads, for Core queries: in autocommit, so a
        query is one round trip (no BEGIN before it, no ROLLBACK when it goes back to the pool),
        and no ORM session to set up and close. Never write through it."""
        if "db_reader" not in g:
            g.db_reader = current_app.extensions["database_reader"].connect()
        connection: Connection = g.db_reader
        return connection

    @contextmanager
    def new_session(self) -> Iterator[Session]:
        """A session outside any request (CLI, background tasks)."""
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    @staticmethod
    def _close_session(_exc: BaseException | None) -> None:
        for name in ("db_session", "db_reader"):
            opened: Session | Connection | None = g.pop(name, None)
            if opened is not None:
                opened.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            # With WAL, NORMAL syncs at checkpoints rather than at every commit: the database
            # stays consistent, and a power cut can lose only the last commits.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    engine = create_engine(url, pool_size=5, max_overflow=10, connect_args={"connect_timeout": 3})
    ping_after_idle(engine, PING_AFTER_IDLE_SECONDS)
    return engine


# A pooled connection that has sat idle this long is pinged before it serves a request.
PING_AFTER_IDLE_SECONDS = 1.0


def ping_after_idle(engine: Engine, seconds: float) -> None:
    """SQLAlchemy's `pool_pre_ping`, for the connections idle longer than `seconds` only.

    The pre-ping costs every request a round trip to the server before its first query. A
    connection back in the pool for less than `seconds` was alive then: the server dropping it
    since is one request's failure (503), after which SQLAlchemy's disconnect handling
    replaces every older connection of the pool. A connection idle for longer (a restart or a
    failover of the database while the service was quiet) is checked first, and replaced if
    it is dead, so no request meets it.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection, record):  # type: ignore[no-untyped-def]
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, _proxy):  # type: ignore[no-untyped-def]
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < seconds:
            return  # new, or used a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool drops this connection and checks out another (a new one if need be).
            raise DisconnectionError from exc


class RedisClient:
    """An optional Redis connection per app: `client` is None when REDIS_URL is unset."""

    def init_app(self, app: Flask, settings: Settings) -> None:
        app.extensions["redis"] = self
        app.extensions["redis_client"] = (
            redis.Redis.from_url(
                settings.redis_url,
                decode_responses=True,
                socket_timeout=2,
                socket_connect_timeout=2,
                health_check_interval=30,
            )
            if settings.redis_url
            else None
        )

    @property
    def client(self) -> redis.Redis | None:
        client: redis.Redis | None = current_app.extensions.get("redis_client")
        return client


# flask-limiter writes the time to its window's reset into this header on every response; it
# becomes `Retry-After` only on the limiter's own 429s (see `AppLimiter`).
LIMIT_RETRY_AFTER_HEADER = "X-RateLimit-Retry-After"


# What a feature will read from Redis in every request it serves, named before the request's
# first rate-limit hit, which reads it in its own round trip (see `FixedWindowInOneTrip`).
RedisReads = Callable[[], list[str]]


def read_with_first_hit(app: Flask, reads: RedisReads) -> None:
    """`reads()` names the Redis keys this request is about to read (or none); the request's
    first rate-limit hit reads them in the same round trip, and `first_hit_values(keys)` gives
    them back. Any key, however it was named: nothing read here is trusted for being read."""
    app.extensions.setdefault("redis_reads", []).append(reads)


def first_hit_values(*keys: str) -> list[str | None] | None:
    """The values of `keys` as the request's first rate-limit hit read them; None when that
    hit did not read all of them (no limit counted yet, limits off, or not on Redis)."""
    values: dict[str, str | None] | None = g.get("redis_reads")
    if values is None or any(key not in values for key in keys):
        return None
    return [values[key] for key in keys]


class FixedWindowInOneTrip(FixedWindowRateLimiter):
    """flask-limiter's default strategy, the fixed window, in one Redis round trip per limit.

    After counting a hit, flask-limiter asks for the window's state (remaining, reset) to write
    the `X-RateLimit-*` headers: a GET and a TTL, two more round trips. Here the hit's own
    script also reads the TTL, and the state it saw answers that question (per window: a
    request may count against more than one, e.g. the default limit and the AI limit). The
    request's first hit also reads the keys the features named (`read_with_first_hit`): a
    signed-in request's token state comes with its rate limit."""

    SEEN_PER_THREAD = 8  # a request counts against a few windows; older states are dropped
    # The window's key starts at 0 with its expiry if it is new, is counted, and tells its TTL;
    # then the other keys are read (a missing one is false in Lua, nil in the reply). One
    # EVALSHA (redis-py loads the script again if the server has lost it): a third less client
    # CPU than the same commands in a MULTI/EXEC pipeline.
    HIT_SCRIPT = """
        redis.call('SET', KEYS[1], 0, 'EX', ARGV[1], 'NX')
        local reply = {redis.call('INCRBY', KEYS[1], ARGV[2]), redis.call('TTL', KEYS[1])}
        for i = 2, #KEYS do
            reply[i + 1] = redis.call('GET', KEYS[i])
        end
        return reply
    """

    def __init__(self, storage: Storage) -> None:
        super().__init__(storage)
        self._seen = threading.local()  # this thread's last hits: {key: state}
        self._hit_script: Script | None = None

    def _remember(self, key: str, stats: WindowStats) -> None:
        seen: dict[str, WindowStats] | None = getattr(self._seen, "states", None)
        if seen is None:
            seen = self._seen.states = {}
        seen.pop(key, None)
        seen[key] = stats
        if len(seen) > self.SEEN_PER_THREAD:
            del seen[next(iter(seen))]

    @staticmethod
    def _reads() -> list[str]:
        """The keys the features will read in this request, once per request."""
        if not has_request_context() or "redis_reads" in g:
            return []
        readers: list[RedisReads] = current_app.extensions.get("redis_reads", [])
        return [key for reads in readers for key in reads()]

    def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        key = item.key_for(*identifiers)
        storage = self.storage
        if isinstance(storage, RedisStorage):
            if self._hit_script is None:
                connection = cast("redis.Redis", storage.get_connection())
                self._hit_script = connection.register_script(self.HIT_SCRIPT)
            reads = self._reads()
            count, ttl, *values = self._hit_script(
                keys=[storage.prefixed_key(key), *reads], args=[item.get_expiry(), cost]
            )
            if reads:
                g.redis_reads = {
                    read: value.decode() if isinstance(value, bytes) else value
                    for read, value in zip(reads, values, strict=True)
                }
            reset = time.time() + max(int(ttl), 0)
        else:
            count = storage.incr(key, item.get_expiry(), amount=cost)
            reset = storage.get_expiry(key)
        self._remember(key, WindowStats(reset, max(0, item.amount - int(count))))
        return int(count) <= item.amount

    def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        seen: dict[str, WindowStats] | None = getattr(self._seen, "states", None)
        stats = seen.pop(item.key_for(*identifiers), None) if seen else None
        if stats is not None:
            return stats
        fetched: WindowStats = super().get_window_stats(item, *identifiers)
        return fetched


class AppLimiter(Limiter):
    """flask-limiter's Limiter, with four changes for an app factory and an LLM gateway.

    - Each app it is bound to starts with its storage marked healthy: the limiter object is
      module-level, so a second app in the same process (tests, the CLI) would otherwise inherit
      a "storage is down" flag from the previous one.
    - `Retry-After` is left alone unless the limiter itself refused the request. flask-limiter
      would stamp the reset of the default limit's window on every response, so a provider's
      "retry in 5 s" would reach the client as "retry in 59 s".
    - Whole blueprints can skip it (`skip_blueprint`), its check, headers and teardown: the
      probes.
    - The fixed window counts a hit and reads its window in one round trip
      (`FixedWindowInOneTrip`).
    """

    skipped_blueprints: frozenset[str] = frozenset()

    def skip_blueprint(self, name: str) -> None:
        """Never limit the routes of this blueprint, at next to no cost per request.
        flask-limiter's own exemptions and request filters are tested only after it has
        resolved the request's limits, which costs more than a probe's whole view."""
        self.skipped_blueprints = self.skipped_blueprints | {name}

    def _check_request_limit(
        self, callable_name: str | None = None, in_middleware: bool = True
    ) -> None:
        if request.blueprint in self.skipped_blueprints:
            return
        super()._check_request_limit(callable_name, in_middleware)

    def init_app(self, app: Flask) -> None:
        app.config.setdefault("RATELIMIT_HEADER_RETRY_AFTER", LIMIT_RETRY_AFTER_HEADER)
        super().init_app(app)
        self._storage_dead = False
        # flask-limiter's after_request (the X-RateLimit-* headers), skipped like its check for
        # the skipped blueprints, then the Retry-After rule: one hook.
        hooks = app.after_request_funcs[None]
        index = next(
            i for i, hook in enumerate(hooks) if isinstance(hook, partial) and hook.args == (self,)
        )
        inject_headers = cast("Callable[[Response], Response]", hooks[index])

        def rate_limit_headers(response: Response) -> Response:
            if request.blueprint in self.skipped_blueprints:
                return response
            return _retry_after_for_limited_only(inject_headers(response))

        hooks[index] = rate_limit_headers
        # Its teardown resets the request's limiter state, which a skipped route never made.
        teardowns = app.teardown_request_funcs[None]
        index = next(i for i, hook in enumerate(teardowns) if getattr(hook, "__self__", 0) is self)
        release_context = teardowns[index]

        def release_unless_skipped(error: BaseException | None = None) -> None:
            if request.blueprint not in self.skipped_blueprints:
                release_context(error)

        teardowns[index] = release_unless_skipped
        self._limiter = FixedWindowInOneTrip(self.storage)
        fallback = getattr(self, "_fallback_storage", None)  # set when the fallback is enabled
        if fallback is not None:
            self._fallback_limiter = FixedWindowInOneTrip(fallback)


def _retry_after_for_limited_only(response: Response) -> Response:
    reset = response.headers.pop(LIMIT_RETRY_AFTER_HEADER, None)
    if response.status_code == 429 and reset is not None and "Retry-After" not in response.headers:
        response.headers["Retry-After"] = str(max(1, int(reset)))
    return response


class NoCookieSessions(SecureCookieSessionInterface):
    """The API is stateless (bearer tokens, no cookies), so no session is opened per request:
    Flask's default would build a signing serializer for every request only to find no cookie."""

    def open_session(self, app: Flask, request: Request) -> None:
        return None


def get_settings() -> Settings:
    settings: Settings = current_app.extensions["settings"]
    return settings


db = Database()
redis_store = RedisClient()
# A callable: each app's own RATE_LIMIT_DEFAULT, read per request.
limiter = AppLimiter(
    key_func=get_remote_address,
    default_limits=[lambda: get_settings().rate_limit_default],
)
cors = CORS()
