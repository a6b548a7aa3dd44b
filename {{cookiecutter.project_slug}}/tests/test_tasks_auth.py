"""Background jobs with users: a token is needed, each user sees their own jobs and reports,
admins see all."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI

from .test_tasks import EAGER, REPORT_URL, add_items, queue_report, task_data


@pytest.fixture
def app(make_app: Callable[..., OpenAPI]) -> OpenAPI:
    return make_app(**EAGER)


def test_tasks_need_a_token(client: FlaskClient, headers: dict[str, str]) -> None:
    url = queue_report(client, headers)
    assert client.post(REPORT_URL).status_code == 401
    assert client.get(url).status_code == 401


def test_another_users_task_is_404_and_admin_sees_it(
    client: FlaskClient,
    auth_headers: dict[str, str],
    other_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    url = queue_report(client, auth_headers)
    response = client.get(url, headers=other_headers)
    assert response.status_code == 404
    assert response.json["code"] == "not_found"  # type: ignore[index]
    assert task_data(client, url, admin_headers)["status"] == "SUCCESS"


def test_report_covers_own_items_and_admin_sees_all(
    client: FlaskClient,
    auth_headers: dict[str, str],
    other_headers: dict[str, str],
    admin_headers: dict[str, str],
    readonly_headers: dict[str, str],
) -> None:
    add_items(client, auth_headers, {"title": "mine", "price": 1})
    add_items(client, other_headers, {"title": "theirs", "price": 2}, {"title": "also"})

    mine = task_data(client, queue_report(client, auth_headers), auth_headers)["result"]
    every = task_data(client, queue_report(client, admin_headers), admin_headers)["result"]
    nothing = task_data(client, queue_report(client, readonly_headers), readonly_headers)["result"]

    assert (mine["scope"], mine["total"], mine["total_value"]) == ("own", 1, 1)
    assert (every["scope"], every["total"], every["total_value"]) == ("all", 3, 3)
    assert (nothing["scope"], nothing["total"]) == ("own", 0)
