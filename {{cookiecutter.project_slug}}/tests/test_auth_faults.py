"""Faults of the auth feature: forged tokens, roles, other users' data, its calls during outages,
weak secrets. Each one answers an envelope with its code, never a 500."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
from flask.testing import FlaskClient
from flask_jwt_extended import create_access_token
from flask_openapi3 import OpenAPI

from {{ cookiecutter.package_name }} import create_app

from .auth_fixtures import PASSWORD, bearer
from .relay import Relay
from .test_faults import ITEMS, assert_database_calls_fail, assert_error

LOGIN = "/api/v1/auth/login"
LOGOUT = "/api/v1/auth/logout"
REGISTER = "/api/v1/auth/register"
ME = "/api/v1/users/me"

# Routes that need a token: each one must refuse every bad token the same way.
PROTECTED_CALLS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", ITEMS, None),
    ("POST", ITEMS, {"title": "Forged"}),
    ("GET", ME, None),
]
BAD_TOKENS = [
    ("tampered_claims", "unauthorized"),
    ("tampered_signature", "unauthorized"),
    ("alg_none", "unauthorized"),
    ("wrong_key", "unauthorized"),
    ("expired", "token_expired"),
    ("refresh_as_access", "unauthorized"),
    ("revoked", "token_revoked"),
    # Claims a request's first rate-limit hit cannot make sense of (it looks into the token
    # for the keys of its state before the token is verified).
    ("claims_not_json", "unauthorized"),
    ("claims_nested_deep", "unauthorized"),
    ("another_users_state", "unauthorized"),
]


def register_through(client: FlaskClient) -> dict[str, str]:
    """Register a new user through this client; its Authorization header."""
    response = client.post(
        REGISTER,
        json={
            "email": f"fault-{uuid4().hex[:10]}@example.com",
            "password": PASSWORD,
            "full_name": "Fault Test",
        },
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    return bearer(response.json["data"]["access_token"])  # type: ignore[index]


# --- outages --------------------------------------------------------------------------------


def test_database_outage_is_503_for_auth_calls(
    make_app: Callable[..., OpenAPI], database_relay: tuple[Relay, str]
) -> None:
    relay, url = database_relay
    client = make_app(database_url=url).test_client()
    headers = register_through(client)

    relay.cut()
    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", ME, None),
        ("POST", LOGIN, {"email": "someone@example.com", "password": PASSWORD}),
    ]
    assert_database_calls_fail(client, headers, calls)

    relay.restore()
    assert client.get(ME, headers=headers).status_code == 200


def test_redis_outage_refuses_tokens_but_not_registration(
    make_app: Callable[..., OpenAPI], redis_relay: tuple[Relay, str]
) -> None:
    relay, url = redis_relay
    client = make_app(redis_url=url).test_client()
    headers = register_through(client)
    assert client.get(ITEMS, headers=headers).status_code == 200

    relay.cut()
    # Revocations live in Redis: unable to check them, the service accepts no token at all.
    assert_error(client.get(ITEMS, headers=headers), 503, "service_unavailable")
    assert_error(client.post(LOGOUT, headers=headers), 503, "service_unavailable")
    # What needs no token goes on; the rate limiter falls back to memory.
    fresh = register_through(client)

    relay.restore()
    assert client.get(ITEMS, headers=headers).status_code == 200
    assert client.get(ITEMS, headers=fresh).status_code == 200


def test_login_with_the_database_down_is_503(make_app: Callable[..., OpenAPI]) -> None:
    client = make_app(database_url="postgresql://nobody@127.0.0.1:1/none").test_client()
    response = client.post(LOGIN, json={"email": "a@example.com", "password": "whatever-it-is"})
    assert_error(response, 503, "service_unavailable")


# --- tokens ---------------------------------------------------------------------------------


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
    if kind == "claims_not_json":
        return f"{header}.{_b64(b'not json at all')}.{signature}"
    if kind == "claims_nested_deep":
        return f"{header}.{_b64(b'[' * 3000 + b']' * 3000)}.{signature}"
    if kind == "another_users_state":  # names an admin's state; its signature gives it away
        other = json.dumps({**claims, "sub": "1", "jti": "x"}).encode()
        return f"{header}.{_b64(other)}.{signature}"
    raise AssertionError(kind)


@pytest.mark.parametrize(("kind", "code"), BAD_TOKENS)
def test_bad_tokens_are_401_everywhere(
    kind: str,
    code: str,
    app: OpenAPI,
    client: FlaskClient,
    register: Callable[..., dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    headers = bearer(forge(kind, app, client, register()))
    for method, path, body in PROTECTED_CALLS:
        assert_error(client.open(path, method=method, json=body, headers=headers), 401, code)
    # Nor did the token upset the rate limiter (it would fall back to counting in memory).
    assert [r.getMessage() for r in caplog.records if r.name == "flask-limiter"] == []


def test_readonly_users_cannot_write(
    client: FlaskClient, auth_headers: dict[str, str], readonly_headers: dict[str, str]
) -> None:
    created = client.post(ITEMS, json={"title": "Someone's item"}, headers=auth_headers)
    item = f"{ITEMS}/{created.json['data']['id']}"  # type: ignore[index]
    writes: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", ITEMS, {"title": "Not allowed"}),
        ("PATCH", item, {"title": "Not allowed"}),
        ("DELETE", item, None),
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
    for method, path, body in calls:
        assert_error(
            client.open(path, method=method, json=body, headers=other_headers), 404, "not_found"
        )
    mine = client.get(item, headers=auth_headers)
    assert mine.status_code == 200
    assert mine.json["data"]["title"] == "Mine"  # type: ignore[index]


# --- bad input and settings -----------------------------------------------------------------


def test_auth_bodies_are_checked_before_anything_else(make_app: Callable[..., OpenAPI]) -> None:
    client = make_app(max_content_length=1024).test_client()
    assert_error(
        client.post(REGISTER, data="{not json", content_type="application/json"), 400, "bad_request"
    )
    assert_error(
        client.post(REGISTER, data="a=b", content_type="application/x-www-form-urlencoded"),
        415,
        "unsupported_media_type",
    )
    assert_error(client.post(REGISTER, json={"email": "x" * 4096}), 413, "payload_too_large")


def test_production_refuses_a_weak_jwt_secret(test_settings: dict[str, Any]) -> None:
    config = {**test_settings, "app_env": "production", "jwt_secret_key": "change-me"}
    with pytest.raises(SystemExit, match=r"Invalid settings: .*JWT_SECRET_KEY"):
        create_app(config)
