"""The caller's account, and administration of users and roles."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient

from .conftest import PASSWORD, bearer

ME = "/api/v1/users/me"
USERS = "/api/v1/users"


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
