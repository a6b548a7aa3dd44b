"""Items with users: a token is needed, items belong to their creator, admins see all,
read-only users only read."""

from __future__ import annotations

from flask.testing import FlaskClient

from .test_items import ITEMS, create


def test_items_need_a_token(client: FlaskClient) -> None:
    response = client.get(ITEMS)
    assert response.status_code == 401
    assert response.json is not None
    assert response.json["code"] == "unauthorized"


def test_another_users_item_is_404(
    client: FlaskClient, auth_headers: dict[str, str], other_headers: dict[str, str]
) -> None:
    item = create(client, auth_headers, title="Mine")
    url = f"{ITEMS}/{item['id']}"
    assert client.get(url, headers=other_headers).status_code == 404
    assert client.patch(url, headers=other_headers, json={"title": "Theirs"}).status_code == 404
    assert client.delete(url, headers=other_headers).status_code == 404
    listed = client.get(ITEMS, headers=other_headers).json
    assert listed is not None
    assert listed["data"]["total"] == 0
    assert client.get(url, headers=auth_headers).json["data"]["title"] == "Mine"  # type: ignore[index]


def test_admin_sees_every_item(
    client: FlaskClient, auth_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    item = create(client, auth_headers, title="User's")
    listed = client.get(ITEMS, headers=admin_headers).json
    assert listed is not None
    assert [row["id"] for row in listed["data"]["items"]] == [item["id"]]
    stats = client.get(f"{ITEMS}/stats", headers=admin_headers).json
    assert stats is not None
    assert stats["data"]["total"] == 1


def test_readonly_users_only_read(
    client: FlaskClient, readonly_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    assert client.get(ITEMS, headers=readonly_headers).status_code == 200
    refused = client.post(ITEMS, headers=readonly_headers, json={"title": "Nope"})
    assert refused.status_code == 403
    assert refused.json is not None
    assert refused.json["code"] == "forbidden"
    item = create(client, admin_headers, title="Admin's")
    url = f"{ITEMS}/{item['id']}"
    assert client.patch(url, headers=readonly_headers, json={"title": "x"}).status_code == 403
    assert client.delete(url, headers=readonly_headers).status_code == 403
