"""`/recipes/generate`: the structured-output example, validated and re-asked on failure."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI

from .upstream import OFFLINE, Text, Upstream, sent_messages

REQUEST = {
    "ingredients": ["tomato", "basil"],
    "dietary_restrictions": ["vegetarian"],
    "cuisine_type": "Italian",
    "cooking_time_max": 30,
}
RECIPE = {
    "title": "Tomato basil salad",
    "ingredients": [
        {"item": "tomato", "amount": "4", "unit": "pieces"},
        {"item": "basil", "amount": "1", "unit": "bunch"},
    ],
    "instructions": ["Slice the tomatoes.", "Add the basil."],
    "metadata": {"servings": "2", "total_time": "10 minutes"},
}


def generate(client: FlaskClient, headers: dict[str, str], body: dict[str, Any]) -> Any:
    return client.post("/api/v1/recipes/generate", json=body, headers=headers)


def test_recipe_valid_first_time(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    upstream.queue(Text(json.dumps(RECIPE)))

    response = generate(ai_client, ai_headers, REQUEST)

    assert response.status_code == 200, response.json
    data = response.json["data"]
    assert data["recipe"] == RECIPE
    assert data["confidence_score"] == 1.0
    assert response.json["warnings"] == []
    prompt = sent_messages(upstream.requests[0])[-1]["content"]
    assert "tomato, basil" in prompt
    assert "vegetarian" in prompt
    assert "Italian" in prompt
    assert "30 minutes" in prompt


def test_recipe_with_an_extra_key_is_reasked(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    upstream.queue(Text(json.dumps({**RECIPE, "calories": "300"})), Text(json.dumps(RECIPE)))

    response = generate(ai_client, ai_headers, REQUEST)

    assert response.status_code == 200, response.json
    assert response.json["data"]["recipe"] == RECIPE
    assert response.json["data"]["confidence_score"] == 0.9  # one re-ask
    assert [w["code"] for w in response.json["warnings"]] == ["retried"]
    reask = sent_messages(upstream.requests[1])[-1]["content"]
    assert "'calories' was unexpected" in reask


def test_recipe_with_non_string_amounts_is_reasked(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    numeric = {**RECIPE, "ingredients": [{"item": "tomato", "amount": 4, "unit": "pieces"}]}
    upstream.queue(Text(json.dumps(numeric)), Text(json.dumps(RECIPE)))

    response = generate(ai_client, ai_headers, REQUEST)

    assert response.status_code == 200
    assert "$.ingredients[0].amount" in sent_messages(upstream.requests[1])[-1]["content"]


def test_recipe_never_valid_is_502(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    upstream.queue(*[Text('{"title": "Soup"}', prompt_tokens=30, completion_tokens=10)] * 3)

    response = generate(ai_client, ai_headers, REQUEST)

    assert response.status_code == 502
    assert response.json["code"] == "ai_provider_error"
    assert {"path": "$", "message": "'ingredients' is a required property"} in response.json[
        "details"
    ]["errors"]
    assert response.json["details"]["usage"]["total_tokens"] == 120


def test_confidence_reflects_missing_ingredients(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str]
) -> None:
    upstream.queue(Text(json.dumps(RECIPE)))

    response = generate(ai_client, ai_headers, {"ingredients": ["tomato", "saffron"]})

    assert response.json["data"]["confidence_score"] == 0.5


@pytest.mark.parametrize(
    "body",
    [
        {"ingredients": []},
        {"ingredients": [""]},
        {"ingredients": "tomato"},
        {"ingredients": ["tomato"], "cooking_time_max": 0},
        {"ingredients": ["tomato"], "servings": 2},
    ],
)
def test_invalid_recipe_requests_are_422(
    ai_client: FlaskClient, upstream: Upstream, ai_headers: dict[str, str], body: dict[str, Any]
) -> None:
    response = generate(ai_client, ai_headers, body)

    assert response.status_code == 422
    assert upstream.requests == []


def test_offline_provider_still_returns_a_valid_recipe(
    make_app: Callable[..., OpenAPI], ai_headers: dict[str, str]
) -> None:
    client = make_app(**OFFLINE).test_client()

    response = generate(client, ai_headers, REQUEST)

    assert response.status_code == 200, response.json
    keys = {"title", "ingredients", "instructions", "metadata"}
    assert set(response.json["data"]["recipe"]) == keys
    assert [w["code"] for w in response.json["warnings"]] == ["offline_provider"]
