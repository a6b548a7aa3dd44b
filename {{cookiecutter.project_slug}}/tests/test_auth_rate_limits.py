"""RATE_LIMIT_AUTH limits registration per client address, as it does login (tests/test_auth.py):
account creation cannot be scripted from one address."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import uuid4

from flask_openapi3 import OpenAPI

from .auth_fixtures import PASSWORD

REGISTER = "/api/v1/auth/register"


def new_account() -> dict[str, Any]:
    return {
        "email": f"user-{uuid4().hex[:10]}@example.com",
        "password": PASSWORD,
        "full_name": "New User",
    }


def test_register_is_rate_limited_per_address(make_app: Callable[..., OpenAPI]) -> None:
    client = make_app(rate_limit_auth="2 per minute").test_client()

    statuses = [client.post(REGISTER, json=new_account()).status_code for _ in range(3)]
    limited = client.post(REGISTER, json=new_account())
    elsewhere = client.post(
        REGISTER, json=new_account(), environ_base={"REMOTE_ADDR": "198.51.100.7"}
    )

    assert statuses == [201, 201, 429]
    assert limited.json is not None
    assert limited.json["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) > 0
    assert elsewhere.status_code == 201
