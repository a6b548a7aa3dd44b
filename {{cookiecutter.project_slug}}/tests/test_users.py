"""The caller's account, and administration of users and roles (API and `flask users`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI

from .auth_fixtures import PASSWORD, bearer
from .test_cli import run

ME = "/api/v1/users/me"
USERS = "/api/v1/users"
REFRESH = "/api/v1/auth/refresh"


def test_me_and_profile_update(client: FlaskClient, auth_headers: dict[str, str]) -> None:
    me = client.get(ME, headers=auth_headers)
    assert me.status_code == 200
    assert me.json is not None
    assert me.json["data"]["full_name"] == "Test User"

    patched = client.patch(ME, headers=auth_headers, json={"full_name": "Renamed"})
    assert patched.status_code == 200
    assert patched.json is not None
    assert patched.json["data"]["full_name"] == "Renamed"

    sneaky = client.patch(ME, headers=auth_headers, json={"full_name": "X", "role": "admin"})
    assert sneaky.status_code == 422


def test_change_password(client: FlaskClient, register: Callable[..., dict[str, Any]]) -> None:
    headers = bearer(register("pw@example.com")["access_token"])
    wrong = client.put(
        f"{ME}/password",
        headers=headers,
        json={"current_password": "not-it-at-all", "new_password": "another-password"},
    )
    assert wrong.status_code == 401
    assert wrong.json is not None
    assert wrong.json["code"] == "invalid_credentials"

    ok = client.put(
        f"{ME}/password",
        headers=headers,
        json={"current_password": PASSWORD, "new_password": "another-password"},
    )
    assert ok.status_code == 200
    assert ok.json is not None
    assert client.get(ME, headers=bearer(ok.json["data"]["access_token"])).status_code == 200
    old = client.post("/api/v1/auth/login", json={"email": "pw@example.com", "password": PASSWORD})
    assert old.status_code == 401
    new = client.post(
        "/api/v1/auth/login", json={"email": "pw@example.com", "password": "another-password"}
    )
    assert new.status_code == 200


def test_only_admins_list_users(
    client: FlaskClient, auth_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    forbidden = client.get(USERS, headers=auth_headers)
    assert forbidden.status_code == 403
    assert forbidden.json is not None
    assert forbidden.json["code"] == "forbidden"

    listed = client.get(USERS, headers=admin_headers, query_string={"role": "admin"})
    assert listed.status_code == 200
    assert listed.json is not None
    page = listed.json["data"]
    assert page["total"] == 1
    assert page["items"][0]["role"] == "admin"
    assert client.get(USERS, headers=admin_headers).json["data"]["total"] == 2  # type: ignore[index]


def test_role_change_applies_to_the_next_request(
    client: FlaskClient, register: Callable[..., dict[str, Any]], admin_headers: dict[str, str]
) -> None:
    tokens = register()
    headers = bearer(tokens["access_token"])
    assert client.get(USERS, headers=headers).status_code == 403
    promoted = client.patch(
        f"{USERS}/{tokens['user']['id']}", headers=admin_headers, json={"role": "admin"}
    )
    assert promoted.status_code == 200
    assert promoted.json is not None
    assert promoted.json["data"]["role"] == "admin"
    assert client.get(USERS, headers=headers).status_code == 200


def test_admin_updates_are_validated(
    client: FlaskClient, admin_headers: dict[str, str], auth_headers: dict[str, str]
) -> None:
    assert client.patch(f"{USERS}/999999", headers=admin_headers, json={}).status_code == 404
    bad_role = client.patch(f"{USERS}/1", headers=admin_headers, json={"role": "root"})
    assert bad_role.status_code == 422
    me = client.get(ME, headers=admin_headers).json["data"]  # type: ignore[index]
    demote_self = client.patch(f"{USERS}/{me['id']}", headers=admin_headers, json={"role": "user"})
    assert demote_self.status_code == 409
    not_admin = client.patch(f"{USERS}/{me['id']}", headers=auth_headers, json={"role": "user"})
    assert not_admin.status_code == 403


def test_changing_the_password_signs_out_every_other_session(
    client: FlaskClient, register: Callable[..., dict[str, Any]]
) -> None:
    laptop = register("two@example.com")
    login = client.post(
        "/api/v1/auth/login", json={"email": "two@example.com", "password": PASSWORD}
    )
    assert login.json is not None
    phone = login.json["data"]

    changed = client.put(
        f"{ME}/password",
        headers=bearer(laptop["access_token"]),
        json={"current_password": PASSWORD, "new_password": "another-password"},
    )
    assert changed.status_code == 200
    assert changed.json is not None
    fresh = changed.json["data"]

    for token in (phone["access_token"], laptop["access_token"]):
        refused = client.get(ME, headers=bearer(token))
        assert refused.status_code == 401
        assert refused.json is not None
        assert refused.json["code"] == "token_revoked"
    for token in (phone["refresh_token"], laptop["refresh_token"]):
        assert client.post(REFRESH, headers=bearer(token)).status_code == 401
    assert client.get(ME, headers=bearer(fresh["access_token"])).status_code == 200
    assert client.post(REFRESH, headers=bearer(fresh["refresh_token"])).status_code == 200


def test_users_create_list_and_change_role(app: OpenAPI) -> None:
    code, output = run(
        app,
        "users", "create",
        "--email", "Boss@Example.com",
        "--password", "a-good-password",
        "--full-name", "The Boss",
        "--role", "admin",
    )  # fmt: skip
    assert code == 0, output
    assert "admin boss@example.com" in output

    code, output = run(app, "users", "change-role", "boss@example.com", "--role", "readonly")
    assert code == 0, output
    code, output = run(app, "users", "list")
    assert code == 0
    assert "boss@example.com\treadonly\tactive\tThe Boss" in output


def test_users_errors_are_one_line(app: OpenAPI) -> None:
    args = ["users", "create", "--email", "a@example.com", "--full-name", "A"]
    assert run(app, *args, "--password", "a-good-password")[0] == 0
    code, output = run(app, *args, "--password", "a-good-password")
    assert (code, output.strip()) == (1, "Error: A user with this email already exists.")
    code, output = run(app, *args[:3], "b@example.com", *args[4:], "--password", "short")
    assert (code, output.strip()) == (1, "Error: the password needs 8 characters or more")
    code, output = run(app, "users", "change-role", "nobody@example.com", "--role", "admin")
    assert (code, output.strip()) == (1, "Error: no user with email nobody@example.com")
