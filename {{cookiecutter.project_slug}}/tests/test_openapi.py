"""The OpenAPI document describes every route, well enough for a client generator or fuzzer."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from flask_openapi3 import OpenAPI

# Routes that are not part of the API description: the document itself and the UI.
UNDOCUMENTED = re.compile(r"^/(openapi\.json|docs|static)(/|$)")
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


def test_document_lists_every_route(app: OpenAPI, client: FlaskClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json
    assert spec is not None
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"]

    documented = {(path, method.upper()) for path, item in spec["paths"].items() for method in item}
    routes = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method)
        for rule in app.url_map.iter_rules()
        if not UNDOCUMENTED.match(rule.rule)
        for method in (rule.methods or set()) & METHODS
    }
    assert routes
    assert routes <= documented, routes - documented


def test_operations_have_responses_and_schemas(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").json
    assert spec is not None
    schemas = spec["components"]["schemas"]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            assert operation["responses"], (method, path)
            if path.startswith("/api/v1"):
                assert "422" in operation["responses"], (method, path)
            body = operation.get("requestBody")
            if body:
                ref = body["content"]["application/json"]["schema"]["$ref"]
                assert ref.rsplit("/", 1)[-1] in schemas


def test_answers_from_before_the_app_are_documented(client: FlaskClient) -> None:
    """What the HTTP server or the body guard answer on their own is in the document too, so a
    client (or a fuzzer) never meets an undocumented status."""
    spec = client.get("/openapi.json").json
    assert spec is not None
    listing = spec["paths"]["/api/v1/items"]["get"]["responses"]
    assert set(listing["414"]["content"]) == {"text/html"}
    create = spec["paths"]["/api/v1/items"]["post"]["responses"]
    assert {"400", "413", "415"} <= set(create)
    assert create["415"]["content"]["application/json"]["schema"]["$ref"].endswith("ErrorEnvelope")
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if operation.get("parameters"):
                assert "414" in operation["responses"], (method, path)


def test_docs_serve_swagger_ui(client: FlaskClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "swagger-ui" in html
    assert '<base href="/docs/">' in html
    asset = client.get("/docs/swagger/js/swagger-ui-bundle.js")
    assert asset.status_code == 200
