"""Every blueprint is registered here, and the request guards that apply to all of them."""

from __future__ import annotations

import json

from flask import Response, jsonify, render_template_string, request
from flask_openapi3 import OpenAPI
from flask_openapi3_swagger.templates import swagger_html_string

from ..errors import BadRequest, UnsupportedMediaType
{%- if cookiecutter.ai_provider != "none" %}
from .ai import ai_bp
{%- endif %}
{%- if cookiecutter.use_auth %}
from .auth import auth_bp
{%- endif %}
from .health import health_bp
from .items import items_bp
{%- if cookiecutter.ai_provider != "none" %}
from .recipes import recipes_bp
{%- endif %}
{%- if cookiecutter.use_celery %}
from .tasks import tasks_bp
{%- endif %}
{%- if cookiecutter.use_auth %}
from .users import users_bp
{%- endif %}

API_PREFIX = "/api/v1"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def check_json_body() -> None:
    """Reject a body that is not JSON (415) or not well-formed JSON (400) before validation.

    An empty body passes: endpoints without input accept it, the others answer 422.
    """
    if request.method not in _BODY_METHODS or not request.path.startswith(API_PREFIX):
        return
    if not request.content_length and not request.get_data(cache=True):
        return
    if not request.is_json:
        raise UnsupportedMediaType()
    try:
        json.loads(request.get_data(cache=True))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(details={"error": str(exc)}) from exc


def register_docs(app: OpenAPI) -> None:
    """`/openapi.json` and `/docs` (Swagger UI) at the root; flask-openapi3 serves the UI's
    assets and its own copies under `/docs/`."""

    def openapi_json() -> Response:
        return jsonify(app.api_doc)

    # The UI page refers to its assets relatively; <base> makes them resolve under /docs/.
    page = swagger_html_string.replace("<head>", '<head>\n    <base href="/docs/">', 1)

    def swagger_ui() -> str:
        return render_template_string(page, doc_url="/openapi.json")

    app.add_url_rule("/openapi.json", "openapi_json", openapi_json)
    app.add_url_rule("/docs", "swagger_ui", swagger_ui)


def register_api(app: OpenAPI) -> None:
    app.before_request(check_json_body)
    register_docs(app)
    app.register_api(health_bp)
    for blueprint in (
{%- if cookiecutter.use_auth %}
        auth_bp,
        users_bp,
{%- endif %}
        items_bp,
{%- if cookiecutter.ai_provider != "none" %}
        ai_bp,
        recipes_bp,
{%- endif %}
{%- if cookiecutter.use_celery %}
        tasks_bp,
{%- endif %}
    ):
        app.register_api(blueprint)
