"""Faults a running service meets; each one answers an envelope with its code, never a 500.

Covered here: backing services that go away and come back, hostile input; each feature's own
faults are in its test_<feature>_faults.py.
The outage tests put a TCP relay (tests/relay.py) between the app and the real PostgreSQL
(TEST_DATABASE_URL) or Redis (TEST_REDIS_URL), cut it and restore it; without those URLs they
skip, except under CI=true, where a missing service fails the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI
from werkzeug.test import TestResponse

from {{ cookiecutter.package_name }}.core import extensions

from .core_fixtures import SignIn
from .relay import Relay, require

ITEMS = "/api/v1/items"
DAY = 24 * 60 * 60

# Calls that all need the database: each answers 503 service_unavailable while it is away.
DATABASE_CALLS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", ITEMS, None),
    ("POST", ITEMS, {"title": "Written during an outage"}),
    ("GET", f"{ITEMS}/stats", None),
    ("GET", f"{ITEMS}/1", None),
]


def assert_error(response: TestResponse, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    body = response.get_json(silent=True)
    assert isinstance(body, dict), response.get_data(as_text=True)[:500]
    assert body["success"] is False
    assert body["message"]
    if code is not None:
        assert body["code"] == code
    assert "Traceback" not in response.get_data(as_text=True)


def assert_client_error(response: TestResponse) -> None:
    """A 4xx envelope: the request was refused, the service did not fail."""
    assert 400 <= response.status_code < 500, response.get_data(as_text=True)[:500]
    assert_error(response, response.status_code)


def assert_database_calls_fail(
    client: FlaskClient,
    headers: dict[str, str],
    calls: list[tuple[str, str, dict[str, Any] | None]],
) -> None:
    for method, path, body in calls:
        assert_error(
            client.open(path, method=method, json=body, headers=headers),
            503,
            "service_unavailable",
        )


# --- outages --------------------------------------------------------------------------------


def test_database_outage_is_503_and_the_service_recovers(
    make_app: Callable[..., OpenAPI], sign_in: SignIn, database_relay: tuple[Relay, str]
) -> None:
    relay, url = database_relay
    app = make_app(database_url=url)
    client = app.test_client()
    headers = sign_in(app)
    assert client.get("/health/ready").status_code == 200
    assert client.get(ITEMS, headers=headers).status_code == 200

    relay.cut()
    assert client.get("/health/live").status_code == 200
    ready = client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json == {"status": "unavailable"}
    health = client.get("/health")
    assert health.status_code == 503
    assert health.json is not None
    assert health.json["checks"]["database"]["status"] == "error"
    assert_database_calls_fail(client, headers, DATABASE_CALLS)

    relay.restore()
    assert client.get("/health/ready").status_code == 200
    assert client.get(ITEMS, headers=headers).status_code == 200
    created = client.post(ITEMS, json={"title": "After the outage"}, headers=headers)
    assert created.status_code == 201


def test_a_database_restart_costs_at_most_the_next_request(
    make_app: Callable[..., OpenAPI],
    sign_in: SignIn,
    database_relay: tuple[Relay, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pooled connections are pinged only after an idle spell (PING_AFTER_IDLE_SECONDS): a
    restart right after a request fails the next one, which renews the pool; after a quiet
    spell no request meets a dead connection."""
    monkeypatch.setattr(extensions, "PING_AFTER_IDLE_SECONDS", 0.2)
    relay, url = database_relay
    app = make_app(fresh=True, database_url=url)
    client = app.test_client()
    headers = sign_in(app)
    assert client.get(ITEMS, headers=headers).status_code == 200

    relay.cut()  # the server drops every connection, and is back a moment later
    time.sleep(0.1)
    relay.restore()
    assert_error(client.get(ITEMS, headers=headers), 503, "service_unavailable")
    assert client.get(ITEMS, headers=headers).status_code == 200

    relay.cut()
    time.sleep(0.1)
    relay.restore()
    time.sleep(0.3)
    for _ in range(3):
        assert client.get(ITEMS, headers=headers).status_code == 200


def test_redis_outage_keeps_the_service_answering(
    make_app: Callable[..., OpenAPI], sign_in: SignIn, redis_relay: tuple[Relay, str]
) -> None:
    relay, url = redis_relay
    app = make_app(redis_url=url)
    client = app.test_client()
    headers = sign_in(app)
    assert client.get(ITEMS, headers=headers).status_code == 200

    relay.cut()
    assert client.get("/health/live").status_code == 200
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json is not None
    assert health.json["status"] == "degraded"
    assert health.json["checks"]["redis"]["status"] == "error"
{%- if not cookiecutter.use_auth %}
    # The rate limiter falls back to memory; reads and writes go on.
    assert client.get(ITEMS).status_code == 200
    assert client.post(ITEMS, json={"title": "Written without Redis"}).status_code == 201
{%- endif %}

    relay.restore()
    assert client.get(ITEMS, headers=headers).status_code == 200
    recovered = client.get("/health")
    assert recovered.json is not None
    assert recovered.json["checks"]["redis"]["status"] == "ok"


def test_probes_are_never_rate_limited(make_app: Callable[..., OpenAPI], sign_in: SignIn) -> None:
    # Per day: a fixed window that cannot roll over in the middle of the test.
    app = make_app(rate_limit_default="2 per day")
    client = app.test_client()
    for _ in range(5):
        assert client.get("/health/live").status_code == 200
        assert client.get("/health/ready").status_code == 200
    headers = sign_in(app)
    statuses = [client.get(ITEMS, headers=headers).status_code for _ in range(3)]
    assert statuses[-1] == 429  # the limit itself is in force elsewhere


def test_rate_limit_headers_count_down_to_the_refusal(
    make_app: Callable[..., OpenAPI], sign_in: SignIn
) -> None:
    app = make_app(rate_limit_default="3 per day")
    client = app.test_client()
    headers = sign_in(app)
    started = time.time()
    responses = [client.get(ITEMS, headers=headers) for _ in range(4)]

    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r.headers["X-RateLimit-Limit"] for r in responses] == ["3"] * 4
    assert [r.headers["X-RateLimit-Remaining"] for r in responses] == ["2", "1", "0", "0"]
    for response in responses:  # the window opened by the first request: a day from then
        reset = int(response.headers["X-RateLimit-Reset"])
        assert started + DAY - 5 <= reset <= time.time() + DAY + 5
    assert 0 < int(responses[-1].headers["Retry-After"]) <= DAY


def test_the_rate_limit_counts_on_when_redis_has_lost_its_scripts(
    make_app: Callable[..., OpenAPI], sign_in: SignIn
) -> None:
    """The limiter counts with a server-side script; a Redis that restarted has forgotten it."""
    app = make_app(rate_limit_default="3 per day")
    client = app.test_client()
    headers = sign_in(app)
    assert client.get(ITEMS, headers=headers).headers["X-RateLimit-Remaining"] == "2"
    redis.Redis.from_url(require("TEST_REDIS_URL")).script_flush()
    responses = [client.get(ITEMS, headers=headers) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in responses] == ["1", "0", "0"]


# --- hostile input --------------------------------------------------------------------------


def nested(depth: int) -> str:
    return '{"title": "Deep", "properties": {"x": ' + "[" * depth + "]" * depth + "}}"


def lists(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b'{"title": "\xff\xfe broken"}', "application/json", 400, "bad_request"),
        (b'{"title": "\xed\xa0\x80"}', "application/json", None, None),
        (b'{"title": "Plain text"}', "text/plain", 415, "unsupported_media_type"),
        (b"title=Form", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (nested(500).encode(), "application/json", None, None),
        (nested(100_000).encode(), "application/json", None, None),
        (b'{"title": ' * 5_000 + b"1" + b"}" * 5_000, "application/json", None, None),
    ],
    ids=[
        "invalid-utf8",
        "utf16-surrogate",
        "text-plain",
        "form",
        "nested-500",
        "nested-100000",
        "nested-objects",
    ],
)
def test_malformed_bodies_are_4xx(
    client: FlaskClient,
    headers: dict[str, str],
    body: bytes,
    content_type: str,
    status: int | None,
    code: str | None,
) -> None:
    response = client.post(ITEMS, data=body, content_type=content_type, headers=headers)
    if status is None:
        assert_client_error(response)
    else:
        assert_error(response, status, code)
    assert client.get(ITEMS, headers=headers).status_code == 200


@pytest.mark.parametrize(
    "fields",
    [
        {"properties": {"x": lists(32)}},
        {"title": "NUL \u0000 inside"},
        {"description": "\u0000"},
        {"properties": {"\u0000": "\u0000"}},
    ],
    ids=["nested-32", "nul-title", "nul-description", "nul-properties"],
)
def test_odd_but_valid_json_is_stored_or_refused_never_500(
    client: FlaskClient, headers: dict[str, str], fields: dict[str, Any]
) -> None:
    response = client.post(ITEMS, json={"title": "Odd", **fields}, headers=headers)
    if response.status_code != 201:
        assert_client_error(response)
    # Whatever was stored must still read back: one bad row must not break the listing.
    listing = client.get(ITEMS, headers=headers)
    assert listing.status_code == 200, listing.get_data(as_text=True)[:500]


def test_null_for_a_field_that_needs_a_value_is_422(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    created = client.post(ITEMS, json={"title": "Keep me"}, headers=headers)
    item = f"{ITEMS}/{created.json['data']['id']}"  # type: ignore[index]
    for field in ("title", "status", "properties"):
        response = client.patch(item, json={field: None}, headers=headers)
        assert_error(response, 422, "validation_error")
    cleared = client.patch(item, json={"description": None, "price": None}, headers=headers)
    assert cleared.status_code == 200
    assert client.get(ITEMS, headers=headers).status_code == 200
    assert client.get(item, headers=headers).json["data"]["title"] == "Keep me"  # type: ignore[index]


def test_oversize_body_is_413(make_app: Callable[..., OpenAPI], sign_in: SignIn) -> None:
    app = make_app(max_content_length=2048)
    client = app.test_client()
    headers = sign_in(app)
    response = client.post(ITEMS, json={"title": "Big", "description": "x" * 4096}, headers=headers)
    assert_error(response, 413, "payload_too_large")


@pytest.mark.parametrize(
    "query",
    [
        "size=1000000",
        "size=0",
        "size=-1",
        "page=-1",
        "page=0",
        "page=100000000000000000000",
        "page=1e3",
        "page=abc",
        "sort=password_hash",
        "order=sideways",
        "status=deleted",
        "search=" + "x" * 10_000,
    ],
)
def test_bad_query_strings_are_422(
    client: FlaskClient, headers: dict[str, str], query: str
) -> None:
    assert_error(client.get(f"{ITEMS}?{query}", headers=headers), 422, "validation_error")


@pytest.mark.parametrize("query", ["search=%00", "search=%FF%FE", "search=%ED%A0%80", "status=%00"])
def test_odd_query_strings_never_500(
    client: FlaskClient, headers: dict[str, str], query: str
) -> None:
    response = client.get(f"{ITEMS}?{query}", headers=headers)
    if response.status_code != 200:
        assert_client_error(response)
