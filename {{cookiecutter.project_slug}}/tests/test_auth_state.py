"""A user's role, active flag and sessions are checked on every request, also on routes that
never load the user's row (items, AI): a change applies to the very next request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI

from .auth_fixtures import bearer

ITEMS = "/api/v1/items"
USERS = "/api/v1/users"


def test_deactivation_applies_at_once_on_every_route(
    client: FlaskClient, register: Callable[..., dict[str, Any]], admin_headers: dict[str, str]
) -> None:
    tokens = register()
    headers = bearer(tokens["access_token"])
    assert client.get(ITEMS, headers=headers).status_code == 200
    patched = client.patch(
        f"{USERS}/{tokens['user']['id']}", headers=admin_headers, json={"is_active": False}
    )
    assert patched.status_code == 200
    assert client.get(ITEMS, headers=headers).status_code == 401
    patched = client.patch(
        f"{USERS}/{tokens['user']['id']}", headers=admin_headers, json={"is_active": True}
    )
    assert client.get(ITEMS, headers=headers).status_code == 200


def test_a_role_changed_from_the_command_line_applies_at_once(
    app: OpenAPI, client: FlaskClient, register: Callable[..., dict[str, Any]]
) -> None:
    tokens = register()
    headers = bearer(tokens["access_token"])
    created = client.post(ITEMS, headers=headers, json={"title": "Mine"})
    assert created.status_code == 201
    result = app.test_cli_runner().invoke(
        args=["users", "change-role", tokens["user"]["email"], "--role", "readonly"]
    )
    assert result.exit_code == 0, result.output
    refused = client.post(ITEMS, headers=headers, json={"title": "Not any more"})
    assert refused.status_code == 403
    assert client.get(ITEMS, headers=headers).status_code == 200


def test_a_demoted_admin_loses_admin_routes_at_once(
    client: FlaskClient,
    make_user: Callable[[str], dict[str, str]],
    admin_headers: dict[str, str],
) -> None:
    other_admin = make_user("admin")
    assert client.get(USERS, headers=other_admin).status_code == 200
    me = client.get(f"{USERS}/me", headers=other_admin).json
    assert me is not None
    demoted = client.patch(
        f"{USERS}/{me['data']['id']}", headers=admin_headers, json={"role": "user"}
    )
    assert demoted.status_code == 200
    assert client.get(USERS, headers=other_admin).status_code == 403


def test_a_password_change_signs_out_item_requests_of_older_tokens(
    client: FlaskClient, register: Callable[..., dict[str, Any]]
) -> None:
    tokens = register(password="first-password-1")
    old = bearer(tokens["access_token"])
    assert client.get(ITEMS, headers=old).status_code == 200
    changed = client.put(
        f"{USERS}/me/password",
        headers=old,
        json={"current_password": "first-password-1", "new_password": "second-password-2"},
    )
    assert changed.status_code == 200
    assert client.get(ITEMS, headers=old).status_code == 401
    fresh = bearer(changed.json["data"]["access_token"])  # type: ignore[index]
    assert client.get(ITEMS, headers=fresh).status_code == 200
