"""The one way an `/api/v1` blueprint is declared: its tag{% if cookiecutter.use_auth %}, the bearer token{% endif %} and the errors
every route of it can answer, so the OpenAPI document lists them once per blueprint."""

from __future__ import annotations

from flask_openapi3 import APIBlueprint, Tag

from ..responses import ErrorEnvelope

API_PREFIX = "/api/v1"
{%- if cookiecutter.use_auth %}
# Any route: no or a bad token (401), invalid input (422), too many requests (429).
COMMON_ERRORS = (401, 422, 429)
# Routes that change data also refuse read-only users.
WRITE_ERRORS = (403,)
{%- else %}
# Any route: invalid input (422), too many requests (429).
COMMON_ERRORS = (422, 429)
{%- endif %}


def api_blueprint(
    name: str, import_name: str, *, url_prefix: str | None = None, errors: tuple[int, ...] = ()
) -> APIBlueprint:
    """A blueprint under `/api/v1/<name>` (or `url_prefix`){% if cookiecutter.use_auth %} behind the bearer token{% endif %}, tagged
    `name`, documenting COMMON_ERRORS and `errors` on every route."""
    return APIBlueprint(
        name,
        import_name,
        url_prefix=url_prefix or f"{API_PREFIX}/{name}",
        abp_tags=[Tag(name=name)],
{%- if cookiecutter.use_auth %}
        abp_security=[{"bearer": []}],
{%- endif %}
        abp_responses=dict.fromkeys(sorted({*COMMON_ERRORS, *errors}), ErrorEnvelope),
    )
