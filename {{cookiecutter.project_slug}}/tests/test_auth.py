"""Registration, login, refresh rotation, logout and revocation, token errors, rate limits,
and the bearer scheme in the OpenAPI document."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import jwt
from flask.testing import FlaskClient
from flask_jwt_extended import create_access_token
from flask_openapi3 import OpenAPI

from .auth_fixtures import PASSWORD, bearer

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/users/me"


def test_register_returns_user_and_tokens(client: FlaskClient) -> None:
    response = client.post(
        REGISTER,
        json={"email": "New.User@Example.com", "password": PASSWORD, "full_name": "New User"},
    )
    assert response.status_code == 201
    body = response.json
    assert body is not None
    assert body["success"] is True
    data = body["data"]
    assert data["token_type"] == "bearer"
    assert data["expires_in"] > 0
    assert data["access_token"]
    assert data["refresh_token"]
    assert data["user"]["email"] == "new.user@example.com"
    assert data["user"]["role"] == "user"
    assert "password_hash" not in data["user"]


def test_register_never_makes_an_admin(client: FlaskClient) -> None:
    response = client.post(
        REGISTER,
        json={"email": "x@example.com", "password": PASSWORD, "full_name": "X", "role": "admin"},
    )
    assert response.status_code == 422
    assert response.json is not None
    assert response.json["details"]["errors"][0]["loc"] == ["role"]


def test_register_duplicate_email_is_409(
    client: FlaskClient, register: Callable[..., dict[str, Any]]
) -> None:
    register("dup@example.com")
    response = client.post(
        REGISTER, json={"email": "DUP@example.com", "password": PASSWORD, "full_name": "Dup"}
    )
    assert response.status_code == 409
    assert response.json is not None
    assert response.json["code"] == "conflict"


def test_register_rejects_short_password_and_bad_email(client: FlaskClient) -> None:
    response = client.post(
        REGISTER, json={"email": "not-an-email", "password": "short", "full_name": "Bad"}
    )
    assert response.status_code == 422
    assert response.json is not None
    locs = {tuple(error["loc"]) for error in response.json["details"]["errors"]}
    assert locs == {("email",), ("password",)}


def test_login_and_wrong_password(
    client: FlaskClient, register: Callable[..., dict[str, Any]]
) -> None:
    register("login@example.com")
    ok = client.post(LOGIN, json={"email": "login@example.com", "password": PASSWORD})
    assert ok.status_code == 200
    assert ok.json is not None
    assert client.get(ME, headers=bearer(ok.json["data"]["access_token"])).status_code == 200

    wrong = client.post(LOGIN, json={"email": "login@example.com", "password": "wrong-password"})
    unknown = client.post(LOGIN, json={"email": "nobody@example.com", "password": PASSWORD})
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.json is not None
        assert response.json["code"] == "invalid_credentials"


def test_missing_and_malformed_tokens_are_401(client: FlaskClient) -> None:
    missing = client.get(ME)
    assert missing.status_code == 401
    assert missing.json is not None
    assert missing.json["code"] == "unauthorized"
    garbage = client.get(ME, headers=bearer("not.a.jwt"))
    assert garbage.status_code == 401
    assert garbage.json is not None
    assert garbage.json["code"] == "unauthorized"


def test_expired_token_is_401_token_expired(
    app: OpenAPI, client: FlaskClient, register: Callable[..., dict[str, Any]]
) -> None:
    user_id = register()["user"]["id"]
    with app.app_context():
        token = create_access_token(identity=str(user_id), expires_delta=timedelta(seconds=-5))
    response = client.get(ME, headers=bearer(token))
    assert response.status_code == 401
    assert response.json is not None
    assert response.json["code"] == "token_expired"


def test_a_token_seen_before_is_still_refused_once_it_expires(
    app: OpenAPI, client: FlaskClient, register: Callable[..., dict[str, Any]]
) -> None:
    """The app verifies a token once and remembers it; its expiry counts all the same."""
    user_id = register()["user"]["id"]
    time.sleep(1 - time.time() % 1)  # at a whole second: `exp` (whole seconds) is 1 s away
    with app.app_context():
        token = create_access_token(identity=str(user_id), expires_delta=timedelta(seconds=1))
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    for _ in range(2):  # verified, then known
        assert client.get(ME, headers=bearer(token)).status_code == 200
    time.sleep(max(0.0, expires - time.time()) + 0.01)
    response = client.get(ME, headers=bearer(token))
    assert response.status_code == 401
    assert response.json is not None
    assert response.json["code"] == "token_expired"


def test_a_token_one_app_knows_is_refused_by_an_app_with_another_key(
    client: FlaskClient, make_app: Callable[..., OpenAPI], register: Callable[..., dict[str, Any]]
) -> None:
    """What an app remembers of the tokens it verified is its own, not the process's."""
    token = register()["access_token"]
    assert client.get(ME, headers=bearer(token)).status_code == 200
    other = make_app(jwt_secret_key="another-jwt-secret-key-that-is-long-enough-987654")
    response = other.test_client().get(ME, headers=bearer(token))
    assert response.status_code == 401
    assert response.json is not None
    assert response.json["code"] == "unauthorized"


def test_refresh_token_is_not_an_access_token(
    client: FlaskClient, register: Callable[..., dict[str, Any]]
) -> None:
    tokens = register()
    assert client.get(ME, headers=bearer(tokens["refresh_token"])).status_code == 401
    assert client.post(REFRESH, headers=bearer(tokens["access_token"])).status_code == 401


def test_refresh_rotates_and_revokes_the_old_token(
    client: FlaskClient, register: Callable[..., dict[str, Any]]
) -> None:
    tokens = register()
    # No body and no Content-Type: the endpoint takes no input.
    first = client.post(REFRESH, headers=bearer(tokens["refresh_token"]))
    assert first.status_code == 200
    assert first.json is not None
    new = first.json["data"]
    assert new["refresh_token"] != tokens["refresh_token"]
    assert client.get(ME, headers=bearer(new["access_token"])).status_code == 200

    reused = client.post(REFRESH, headers=bearer(tokens["refresh_token"]))
    assert reused.status_code == 401
    assert reused.json is not None
    assert reused.json["code"] == "token_revoked"
    assert client.post(REFRESH, headers=bearer(new["refresh_token"])).status_code == 200


def test_logout_revokes_the_access_token_at_once(
    client: FlaskClient, auth_headers: dict[str, str]
) -> None:
    assert client.get(ME, headers=auth_headers).status_code == 200
    response = client.post(LOGOUT, headers=auth_headers)
    assert response.status_code == 200
    after = client.get(ME, headers=auth_headers)
    assert after.status_code == 401
    assert after.json is not None
    assert after.json["code"] == "token_revoked"


def test_logout_ends_the_session_refresh_token_included(
    client: FlaskClient, register: Callable[..., dict[str, Any]]
) -> None:
    tokens = register()
    other = client.post(REFRESH, headers=bearer(register()["refresh_token"]))

    assert client.post(LOGOUT, headers=bearer(tokens["access_token"])).status_code == 200

    refused = client.post(REFRESH, headers=bearer(tokens["refresh_token"]))
    assert refused.status_code == 401
    assert refused.json is not None
    assert refused.json["code"] == "token_revoked"
    assert other.status_code == 200  # another session is untouched
    assert other.json is not None
    assert client.get(ME, headers=bearer(other.json["data"]["access_token"])).status_code == 200


def test_logout_accepts_an_empty_json_body(
    client: FlaskClient, auth_headers: dict[str, str]
) -> None:
    response = client.post(LOGOUT, headers=auth_headers, json={})
    assert response.status_code == 200


def test_revocation_fails_closed_when_redis_is_down(
    make_app: Callable[..., OpenAPI], register: Callable[..., dict[str, Any]]
) -> None:
    headers = bearer(register()["access_token"])
    # Nothing listens on port 1: the token store is unreachable.
    broken = make_app(redis_url="redis://127.0.0.1:1/0").test_client()
    response = broken.get(ME, headers=headers)
    assert response.status_code == 503
    assert response.json is not None
    assert response.json["code"] == "service_unavailable"


def test_disabled_user_loses_access(
    client: FlaskClient,
    register: Callable[..., dict[str, Any]],
    admin_headers: dict[str, str],
) -> None:
    tokens = register("gone@example.com")
    user_id = tokens["user"]["id"]
    patched = client.patch(
        f"/api/v1/users/{user_id}", headers=admin_headers, json={"is_active": False}
    )
    assert patched.status_code == 200
    assert client.get(ME, headers=bearer(tokens["access_token"])).status_code == 401
    login = client.post(LOGIN, json={"email": "gone@example.com", "password": PASSWORD})
    assert login.status_code == 403


def test_login_is_rate_limited_per_ip(make_app: Callable[..., OpenAPI]) -> None:
    client = make_app(rate_limit_auth="2 per minute").test_client()
    body = {"email": "nobody@example.com", "password": PASSWORD}
    statuses = [client.post(LOGIN, json=body).status_code for _ in range(3)]
    assert statuses == [401, 401, 429]
    limited = client.post(LOGIN, json=body)
    assert limited.json is not None
    assert limited.json["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) > 0


def test_bearer_security_is_declared(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").json
    assert spec is not None
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    protected = spec["paths"]["/api/v1/items"]["get"]
    assert protected["security"] == [{"bearer": []}]
    assert "security" not in spec["paths"]["/api/v1/auth/login"]["post"]
    assert spec["paths"]["/api/v1/auth/refresh"]["post"]["security"] == [{"bearer": []}]
