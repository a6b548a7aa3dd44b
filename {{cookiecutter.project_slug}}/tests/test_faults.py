"""Faults a running service meets; each one answers an envelope with its code, never a 500.

Covered: backing services that go away and come back,
{%- if cookiecutter.use_auth %} forged tokens, roles, other users'
data,{% endif %} hostile input.
The outage tests put a TCP relay between the app and the real PostgreSQL (TEST_DATABASE_URL)
or Redis (TEST_REDIS_URL), cut it and restore it; without those URLs they skip, except under
CI=true, where a missing service fails the run.
"""

from __future__ import annotations
{% if cookiecutter.use_auth %}
import base64
{%- endif %}
import contextlib
{%- if cookiecutter.use_auth %}
import hashlib
import hmac
import json
{%- endif %}
import os
import socket
import threading
from collections.abc import Callable, Iterator
{%- if cookiecutter.use_auth %}
from datetime import timedelta
{%- endif %}
from typing import Any
from urllib.parse import urlsplit, urlunsplit
{%- if cookiecutter.use_auth %}
from uuid import uuid4
{%- endif %}

import pytest
from flask.testing import FlaskClient
{%- if cookiecutter.use_auth %}
from flask_jwt_extended import create_access_token
{%- endif %}
from flask_openapi3 import OpenAPI
from sqlalchemy.engine import make_url
from werkzeug.test import TestResponse
{%- if cookiecutter.use_auth %}

from .conftest import PASSWORD, bearer
{%- endif %}

ITEMS = "/api/v1/items"
{%- if cookiecutter.use_auth %}
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/users/me"
{%- endif %}
{%- if cookiecutter.ai_provider != "none" %}
CONVERSATIONS = "/api/v1/ai/conversations"
{%- endif %}

# Calls that all need the database: each answers 503 service_unavailable while it is away.
DATABASE_CALLS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", ITEMS, None),
    ("POST", ITEMS, {"title": "Written during an outage"}),
    ("GET", f"{ITEMS}/stats", None),
    ("GET", f"{ITEMS}/1", None),
{%- if cookiecutter.use_auth %}
    ("GET", ME, None),
    ("POST", "/api/v1/auth/login", {"email": "someone@example.com", "password": PASSWORD}),
{%- endif %}
{%- if cookiecutter.ai_provider != "none" %}
    ("GET", CONVERSATIONS, None),
{%- endif %}
]


def require(variable: str) -> str:
    """A real service's URL; skips without it, but fails under CI=true (CI has the services)."""
    value = os.environ.get(variable)
    if value:
        return value
    reason = f"{variable} is not set: set it to run the fault tests against a real service"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


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


# --- outages: a relay we can cut ------------------------------------------------------------


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the other side
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        _close(source)
        _close(sink)


class Relay:
    """A TCP relay on a loopback port in front of a real service.

    `cut()` closes the port and drops every open connection, as when the service goes away;
    `restore()` listens on the same port again.
    """

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self._listener: socket.socket | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            _close(connection)

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                self._connections |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()


@pytest.fixture
def database_relay(database_url: str) -> Iterator[tuple[Relay, str]]:
    """(relay, a DATABASE_URL through it) in front of the test PostgreSQL database."""
    require("TEST_DATABASE_URL")
    url = make_url(database_url)
    relay = Relay(url.host or "127.0.0.1", url.port or 5432)
    yield relay, url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
    relay.cut()


@pytest.fixture
def redis_relay() -> Iterator[tuple[Relay, str]]:
    """(relay, a REDIS_URL through it) in front of the test Redis."""
    url = urlsplit(require("TEST_REDIS_URL"))
    relay = Relay(url.hostname or "127.0.0.1", url.port or 6379)
    credentials = url.netloc.rpartition("@")[0]
    netloc = f"{credentials}@127.0.0.1:{relay.port}" if credentials else f"127.0.0.1:{relay.port}"
    yield relay, urlunsplit((url.scheme, netloc, url.path, url.query, url.fragment))
    relay.cut()


def sign_in(client: FlaskClient) -> dict[str, str]:
{%- if cookiecutter.use_auth %}
    """Register a new user through this client; its Authorization header."""
    response = client.post(
        "/api/v1/auth/register",
        json={
            "email": f"fault-{uuid4().hex[:10]}@example.com",
            "password": PASSWORD,
            "full_name": "Fault Test",
        },
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    return bearer(response.json["data"]["access_token"])  # type: ignore[index]
{%- else %}
    """Every route is open in this service: no header needed."""
    del client
    return {}
{%- endif %}


def test_database_outage_is_503_and_the_service_recovers(
    make_app: Callable[..., OpenAPI], database_relay: tuple[Relay, str]
) -> None:
    relay, url = database_relay
    client = make_app(database_url=url).test_client()
    headers = sign_in(client)
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
    for method, path, body in DATABASE_CALLS:
        assert_error(
            client.open(path, method=method, json=body, headers=headers),
            503,
            "service_unavailable",
        )

    relay.restore()
    assert client.get("/health/ready").status_code == 200
    assert client.get(ITEMS, headers=headers).status_code == 200
    created = client.post(ITEMS, json={"title": "After the outage"}, headers=headers)
    assert created.status_code == 201


def test_redis_outage_keeps_the_service_answering(
    make_app: Callable[..., OpenAPI], redis_relay: tuple[Relay, str]
) -> None:
    relay, url = redis_relay
    client = make_app(redis_url=url).test_client()
    headers = sign_in(client)
    assert client.get(ITEMS, headers=headers).status_code == 200

    relay.cut()
    assert client.get("/health/live").status_code == 200
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json is not None
    assert health.json["status"] == "degraded"
    assert health.json["checks"]["redis"]["status"] == "error"
{%- if cookiecutter.use_auth %}
    # Revocations live in Redis: unable to check them, the service accepts no token at all.
    assert_error(client.get(ITEMS, headers=headers), 503, "service_unavailable")
    assert_error(client.post(LOGOUT, headers=headers), 503, "service_unavailable")
    # What needs no token goes on; the rate limiter falls back to memory.
    fresh = sign_in(client)
{%- else %}
    # The rate limiter falls back to memory; reads and writes go on.
    assert client.get(ITEMS).status_code == 200
    assert client.post(ITEMS, json={"title": "Written without Redis"}).status_code == 201
{%- endif %}

    relay.restore()
    assert client.get(ITEMS, headers=headers).status_code == 200
{%- if cookiecutter.use_auth %}
    assert client.get(ITEMS, headers=fresh).status_code == 200
{%- endif %}
    recovered = client.get("/health")
    assert recovered.json is not None
    assert recovered.json["checks"]["redis"]["status"] == "ok"


def test_probes_are_never_rate_limited(make_app: Callable[..., OpenAPI]) -> None:
    # Per day: a fixed window that cannot roll over in the middle of the test.
    client = make_app(rate_limit_default="2 per day").test_client()
    for _ in range(5):
        assert client.get("/health/live").status_code == 200
        assert client.get("/health/ready").status_code == 200
    headers = sign_in(client)
    statuses = [client.get(ITEMS, headers=headers).status_code for _ in range(3)]
    assert statuses[-1] == 429  # the limit itself is in force elsewhere
{%- if cookiecutter.use_auth %}


# --- tokens ---------------------------------------------------------------------------------

# Routes that need a token: each one must refuse every bad token the same way.
PROTECTED_CALLS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", ITEMS, None),
    ("POST", ITEMS, {"title": "Forged"}),
    ("GET", ME, None),
{%- if cookiecutter.ai_provider != "none" %}
    ("POST", "/api/v1/ai/complete", {"messages": [{"role": "user", "content": "Hi"}]}),
    ("GET", CONVERSATIONS, None),
{%- endif %}
]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _hs256(header: dict[str, Any], claims: dict[str, Any], key: bytes) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def forge(kind: str, app: OpenAPI, client: FlaskClient, tokens: dict[str, Any]) -> str:
    """A token that must be refused, built from a real user's tokens."""
    access: str = tokens["access_token"]
    header, payload, signature = access.split(".")
    claims = json.loads(_unb64(payload))
    if kind == "tampered_claims":  # the original signature over changed claims
        return f"{header}.{_b64(json.dumps({**claims, 'role': 'admin'}).encode())}.{signature}"
    if kind == "tampered_signature":
        raw = bytearray(_unb64(signature))
        raw[0] ^= 0xFF
        return f"{header}.{payload}.{_b64(bytes(raw))}"
    if kind == "alg_none":
        return f"{_b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{payload}."
    if kind == "wrong_key":
        return _hs256({"alg": "HS256", "typ": "JWT"}, claims, b"another-key-" + b"x" * 40)
    if kind == "expired":
        with app.app_context():
            expired: str = create_access_token(
                identity=claims["sub"], expires_delta=timedelta(seconds=-5)
            )
        return expired
    if kind == "refresh_as_access":
        refresh: str = tokens["refresh_token"]
        return refresh
    if kind == "revoked":
        assert client.post(LOGOUT, headers=bearer(access)).status_code == 200
        return access
    raise AssertionError(kind)


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("tampered_claims", "unauthorized"),
        ("tampered_signature", "unauthorized"),
        ("alg_none", "unauthorized"),
        ("wrong_key", "unauthorized"),
        ("expired", "token_expired"),
        ("refresh_as_access", "unauthorized"),
        ("revoked", "token_revoked"),
    ],
)
def test_bad_tokens_are_401_everywhere(
    kind: str,
    code: str,
    app: OpenAPI,
    client: FlaskClient,
    register: Callable[..., dict[str, Any]],
) -> None:
    headers = bearer(forge(kind, app, client, register()))
    for method, path, body in PROTECTED_CALLS:
        assert_error(client.open(path, method=method, json=body, headers=headers), 401, code)


def test_readonly_users_cannot_write(
    client: FlaskClient, auth_headers: dict[str, str], readonly_headers: dict[str, str]
) -> None:
    created = client.post(ITEMS, json={"title": "Someone's item"}, headers=auth_headers)
    item = f"{ITEMS}/{created.json['data']['id']}"  # type: ignore[index]
    writes: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", ITEMS, {"title": "Not allowed"}),
        ("PATCH", item, {"title": "Not allowed"}),
        ("DELETE", item, None),
{%- if cookiecutter.ai_provider != "none" %}
        ("POST", CONVERSATIONS, {"title": "Not allowed"}),
{%- endif %}
    ]
    for method, path, body in writes:
        assert_error(
            client.open(path, method=method, json=body, headers=readonly_headers), 403, "forbidden"
        )
    assert client.get(ITEMS, headers=readonly_headers).status_code == 200


def test_other_users_resources_are_404(
    client: FlaskClient, auth_headers: dict[str, str], other_headers: dict[str, str]
) -> None:
    created = client.post(ITEMS, json={"title": "Mine"}, headers=auth_headers)
    item = f"{ITEMS}/{created.json['data']['id']}"  # type: ignore[index]
    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", item, None),
        ("PATCH", item, {"title": "Taken"}),
        ("DELETE", item, None),
    ]
{%- if cookiecutter.ai_provider != "none" %}
    started = client.post(CONVERSATIONS, json={"title": "Private"}, headers=auth_headers)
    assert started.status_code == 201, started.get_data(as_text=True)
    conversation = f"{CONVERSATIONS}/{started.json['data']['id']}"  # type: ignore[index]
    calls += [
        ("GET", conversation, None),
        ("POST", f"{conversation}/messages", {"content": "Hello?"}),
    ]
{%- endif %}
    for method, path, body in calls:
        assert_error(
            client.open(path, method=method, json=body, headers=other_headers), 404, "not_found"
        )
    mine = client.get(item, headers=auth_headers)
    assert mine.status_code == 200
    assert mine.json["data"]["title"] == "Mine"  # type: ignore[index]
{%- endif %}


# --- hostile input --------------------------------------------------------------------------


@pytest.fixture
def headers(client: FlaskClient) -> dict[str, str]:
    return sign_in(client)


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


def test_oversize_body_is_413(make_app: Callable[..., OpenAPI]) -> None:
    client = make_app(max_content_length=2048).test_client()
    headers = sign_in(client)
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
