"""The one way an `/api/v1` blueprint is declared: its tag, {% if cookiecutter.use_auth %}the bearer token, {% endif %}readable operation ids
and the errors every route of it can answer, so the OpenAPI document lists them once."""

from __future__ import annotations

from flask_openapi3 import APIBlueprint, Tag

from .responses import ErrorEnvelope

API_PREFIX = "/api/v1"
{%- if cookiecutter.use_auth %}
# Any route: no or a bad token (401), invalid input (422), too many requests (429); routes that
# change data also refuse read-only users (403).
COMMON_ERRORS = (401, 422, 429)
WRITE_ERRORS = (403,)
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]
{%- else %}
# Any route: invalid input (422), too many requests (429).
COMMON_ERRORS = (422, 429)
WRITE_ERRORS = ()
SECURITY: list[dict[str, list[str]]] = []
{%- endif %}


def operation_id(*, name: str, path: str, method: str) -> str:
    """The view function's name in camelCase: `list_items` -> `listItems`."""
    del path, method
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)


def api_blueprint(
    name: str,
    import_name: str,
    *,
    url_prefix: str | None = None,
    errors: tuple[int, ...] = (),
    writes: bool = False,
    public: bool = False,
    tag: str | None = None,
) -> APIBlueprint:
    """A blueprint under `/api/v1/<name>` (or `url_prefix`), tagged `name`, documenting
    COMMON_ERRORS, `errors` and, when some of its routes change data (`writes`), WRITE_ERRORS
    on every route. `public` blueprints need no token; `tag` files them under another name."""
    documented = {*COMMON_ERRORS, *errors, *(WRITE_ERRORS if writes else ())}
    return APIBlueprint(
        name,
        import_name,
        url_prefix=url_prefix or f"{API_PREFIX}/{name}",
        abp_tags=[Tag(name=tag or name)],
        abp_security=[] if public else SECURITY,
        abp_responses=dict.fromkeys(sorted(documented), ErrorEnvelope),
        operation_id_callback=operation_id,
    )
