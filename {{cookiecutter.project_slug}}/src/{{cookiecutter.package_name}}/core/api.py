"""What every `/api/v1` route shares: the JSON body checks, the docs pages, the probes, and the
answers documented on every operation."""

from __future__ import annotations

import json

from flask import Flask, Response, current_app, jsonify, render_template_string, request
from flask_openapi3 import OpenAPI
from flask_openapi3.models.response import Response as OpenAPIResponse
from flask_openapi3_swagger.templates import swagger_html_string

from .blueprint import API_PREFIX
from .errors import BadRequest, RequestValidationFailed, UnsupportedMediaType
from .probes import health_bp

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Deeper bodies are refused: Python's parser and pydantic's serializer both give out past a few
# hundred levels, and a stored value too deep to serialize would break every later read of it.
MAX_JSON_DEPTH = 64


def check_json_body() -> None:
    """Reject, before validation: a body that is not JSON (415), not well-formed JSON or nested
    deeper than MAX_JSON_DEPTH (400), and NUL characters in the query or body (422), which
    PostgreSQL cannot store and would otherwise fail deep inside a query.

    An empty body passes: endpoints without input accept it, the others answer 422.
    """
    if not request.path.startswith(API_PREFIX):
        return
    for name, value in request.args.items(multi=True):
        if "\x00" in name or "\x00" in value:
            raise nul_error([name])
    if request.method not in _BODY_METHODS:
        return
    if not request.content_length and not request.get_data(cache=True):
        return
    if not request.is_json:
        if request.mimetype == "multipart/form-data" and takes_uploads(request.endpoint):
            return  # the view reads the form itself
        raise UnsupportedMediaType()
    try:
        body = json.loads(request.get_data(cache=True))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise BadRequest(details={"error": str(exc)[:200]}) from exc
    depth, nul_at = scan_json(body)
    if depth > MAX_JSON_DEPTH:
        raise BadRequest(f"The JSON body is nested more than {MAX_JSON_DEPTH} levels deep.")
    if nul_at is not None:
        raise nul_error(nul_at)


def accept_uploads(app: Flask, endpoint: str) -> None:
    """Let one route take `multipart/form-data` (file uploads) besides JSON."""
    app.extensions.setdefault("upload_endpoints", set()).add(endpoint)


def takes_uploads(endpoint: str | None) -> bool:
    return endpoint in current_app.extensions.get("upload_endpoints", ())


def scan_json(value: object) -> tuple[int, list[str | int] | None]:
    """(how deeply arrays and objects nest, where the first NUL character is, or None).

    Iterative, so that no body is too deep to scan.
    """
    deepest, nul_at = 0, None
    stack: list[tuple[object, list[str | int]]] = [(value, [])]
    while stack:
        node, loc = stack.pop()
        if isinstance(node, dict):
            deepest = max(deepest, len(loc) + 1)
            for key, child in node.items():
                if nul_at is None and "\x00" in key:
                    nul_at = [*loc, key]
                stack.append((child, [*loc, key]))
        elif isinstance(node, list):
            deepest = max(deepest, len(loc) + 1)
            stack.extend((child, [*loc, index]) for index, child in enumerate(node))
        elif isinstance(node, str) and nul_at is None and "\x00" in node:
            nul_at = loc
    return deepest, nul_at


def nul_error(loc: list[str | int]) -> RequestValidationFailed:
    error = {"loc": loc, "msg": "NUL characters are not allowed", "type": "string_nul"}
    return RequestValidationFailed(details={"errors": [error]})


def register_docs(app: OpenAPI) -> None:
    """`/openapi.json` and `/docs` (Swagger UI) at the root; flask-openapi3 serves the UI's
    assets and its own copies under `/docs/`."""

    def openapi_json() -> Response:
        return jsonify(app.api_doc)

    # The UI page refers to its assets relatively; <base> makes them resolve under /docs/.
    page = swagger_html_string.replace("<head>", '<head>\n    <base href="/docs/">', 1)

    def swagger_ui() -> str:
        return render_template_string(
            page,
            doc_url="/openapi.json",
            swagger_config=app.config.get("SWAGGER_CONFIG"),
            oauth_config=app.config.get("OAUTH_CONFIG"),
        )

    app.add_url_rule("/openapi.json", "openapi_json", openapi_json)
    app.add_url_rule("/docs", "swagger_ui", swagger_ui)
    # flask-openapi3's own `/docs/` lists its UI plugins: show the same page there.
    app.view_functions["openapi.openapi"] = swagger_ui


def init_api(app: OpenAPI) -> None:
    """The request checks, the documentation pages and the probes: what every feature's
    routes are added to."""
    app.before_request(check_json_body)
    register_docs(app)
    app.register_api(health_bp)


def finish_docs(app: OpenAPI) -> None:
    """Once every feature's routes are in: document the answers any route may give."""
    document_body_errors(app)
    document_uri_limit(app)


# What check_json_body (and MAX_CONTENT_LENGTH) may answer to any request that can carry a body.
BODY_ERRORS = {"400": "Bad Request", "413": "Content Too Large", "415": "Unsupported Media Type"}


def document_body_errors(app: OpenAPI) -> None:
    """Add BODY_ERRORS to every POST, PUT and PATCH operation of the OpenAPI document."""
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}
    for item in app.paths.values():
        for operation in (item.post, item.put, item.patch):
            if operation is None:
                continue
            if operation.responses is None:
                operation.responses = {}
            for status, description in BODY_ERRORS.items():
                if status not in operation.responses:
                    operation.responses[status] = OpenAPIResponse.model_validate(
                        {"description": description, "content": error}
                    )


# The HTTP server, not the app, answers a request line longer than it accepts (gunicorn's
# limit_request_line, 4094 bytes by default; nginx's large_client_header_buffers, 8 KiB) with a
# short HTML page: no envelope is possible there, so it is documented as what it is.
URI_TOO_LONG = {
    "description": "URI Too Long: the request line is longer than the HTTP server accepts",
    "content": {"text/html": {"schema": {"type": "string"}}},
}


def document_uri_limit(app: OpenAPI) -> None:
    """Add 414 to every operation whose URL carries parameters (path or query)."""
    for item in app.paths.values():
        for operation in (item.get, item.post, item.put, item.patch, item.delete):
            if operation is None or not operation.parameters:
                continue
            if operation.responses is None:
                operation.responses = {}
            operation.responses.setdefault("414", OpenAPIResponse.model_validate(URI_TOO_LONG))
