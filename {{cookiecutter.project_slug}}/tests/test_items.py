"""Items: CRUD, filters, sorting, pagination, validation."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

ITEMS = "/api/v1/items"


def create(client: FlaskClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    response = client.post(ITEMS, headers=headers, json={"title": "An item", **fields})
    assert response.status_code == 201, response.json
    data: dict[str, Any] = response.json["data"]  # type: ignore[index]
    return data


def test_create_read_update_delete(client: FlaskClient, headers: dict[str, str]) -> None:
    item = create(
        client, headers, title="Lamp", price=12.5, status="published", properties={"color": "red"}
    )
    assert item["title"] == "Lamp"
    assert item["status"] == "published"
    assert item["properties"] == {"color": "red"}

    url = f"{ITEMS}/{item['id']}"
    fetched = client.get(url, headers=headers)
    assert fetched.status_code == 200
    assert fetched.json is not None
    assert fetched.json["data"] == item

    patched = client.patch(url, headers=headers, json={"title": "Desk lamp", "price": None})
    assert patched.status_code == 200
    assert patched.json is not None
    assert patched.json["data"]["title"] == "Desk lamp"
    assert patched.json["data"]["price"] is None
    assert patched.json["data"]["status"] == "published"

    deleted = client.delete(url, headers=headers)
    assert deleted.status_code == 200
    assert deleted.json is not None
    assert deleted.json["success"] is True
    gone = client.get(url, headers=headers)
    assert gone.status_code == 404
    assert gone.json is not None
    assert gone.json["code"] == "not_found"
    # Soft delete: the item no longer counts anywhere.
    listed = client.get(ITEMS, headers=headers).json
    assert listed is not None
    assert listed["data"]["total"] == 0


def test_pagination_filters_search_and_sort(client: FlaskClient, headers: dict[str, str]) -> None:
    for number in range(5):
        create(client, headers, title=f"Item {number}", price=float(number), status="draft")
    create(client, headers, title="Special thing", description="Has a Needle", status="published")

    first = client.get(ITEMS, headers=headers, query_string={"page": 1, "size": 2}).json
    assert first is not None
    page = first["data"]
    assert (page["total"], page["page"], page["size"], page["has_more"]) == (6, 1, 2, True)
    assert len(page["items"]) == 2
    last = client.get(ITEMS, headers=headers, query_string={"page": 3, "size": 2}).json
    assert last is not None
    assert last["data"]["has_more"] is False

    drafts = client.get(ITEMS, headers=headers, query_string={"status": "draft"}).json
    assert drafts is not None
    assert drafts["data"]["total"] == 5
    found = client.get(ITEMS, headers=headers, query_string={"search": "needle"}).json
    assert found is not None
    assert [item["title"] for item in found["data"]["items"]] == ["Special thing"]

    by_price = client.get(
        ITEMS, headers=headers, query_string={"sort": "price", "order": "asc", "status": "draft"}
    ).json
    assert by_price is not None
    assert [item["price"] for item in by_price["data"]["items"]] == [0.0, 1.0, 2.0, 3.0, 4.0]

    stats = client.get(f"{ITEMS}/stats", headers=headers).json
    assert stats is not None
    assert stats["data"] == {"total": 6, "draft": 5, "published": 1, "archived": 0}


def test_query_strings_are_parsed_and_checked(client: FlaskClient, headers: dict[str, str]) -> None:
    response = client.get(ITEMS, headers=headers, query_string={"page": "zero", "size": 500})
    assert response.status_code == 422
    assert response.json is not None
    locs = {tuple(error["loc"]) for error in response.json["details"]["errors"]}
    assert locs == {("page",), ("size",)}


def test_validation_errors_name_the_field(client: FlaskClient, headers: dict[str, str]) -> None:
    response = client.post(ITEMS, headers=headers, json={"title": "", "status": "lost"})
    assert response.status_code == 422
    assert response.json is not None
    assert response.json["code"] == "validation_error"
    errors = response.json["details"]["errors"]
    assert {tuple(error["loc"]) for error in errors} == {("title",), ("status",)}
    assert all(error["msg"] and error["type"] for error in errors)


def test_bodies_are_strict(client: FlaskClient, headers: dict[str, str]) -> None:
    # No coercion ("12" is not a number) and no unknown fields.
    response = client.post(ITEMS, headers=headers, json={"title": "X", "price": "12", "x": 1})
    assert response.status_code == 422
    assert response.json is not None
    locs = {tuple(error["loc"]) for error in response.json["details"]["errors"]}
    assert locs == {("price",), ("x",)}
    missing = client.post(ITEMS, headers=headers)
    assert missing.status_code == 422


def test_unknown_item_is_404(client: FlaskClient, headers: dict[str, str]) -> None:
    for method in ("get", "patch", "delete"):
        kwargs: dict[str, Any] = {"json": {}} if method == "patch" else {}
        response = getattr(client, method)(f"{ITEMS}/424242", headers=headers, **kwargs)
        assert response.status_code == 404, method
