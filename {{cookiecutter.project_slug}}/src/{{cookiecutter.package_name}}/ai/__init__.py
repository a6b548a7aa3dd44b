"""The AI feature: completions, streaming, structured output, conversations, usage and budgets
(`/api/v1/ai`, `/api/v1/recipes`, `flask ai`).

The LLM layer underneath (`base.py`, `providers/`, `retry.py`, `structured.py`) knows nothing
about Flask: a small provider protocol, one module per provider, retries and structured output.
"""

from __future__ import annotations

import logging
from typing import Any

from flask_openapi3 import OpenAPI
from flask_openapi3.models.media_type import MediaType
from flask_openapi3.models.request_body import RequestBody

from ..core.deploy import add_deploy_check
from ..core.errors import APIError
from ..core.health import Check, add_check, add_warm_up
from ..core.settings import init_feature_settings
from ..core.tracing import tracing_enabled
from .api import SSE_DOC, ai_bp, recipes_bp
from .cli import ai_cli, check_connection
from .providers import build_provider
from .settings import AISettings, ai_settings
from .usage import init_accounting
from .warmup import warm_up_sdk


def init_app(app: OpenAPI) -> None:
    settings = init_feature_settings(app, AISettings)
    # Built now, not on the first call: the SDK's client is ready before any traffic.
    provider = build_provider(settings)
    if tracing_enabled(app):
        from .tracing import TracedProvider  # imports OpenTelemetry: only when tracing is on

        provider = TracedProvider(provider)
    app.extensions["ai_provider"] = provider
    # The SDK's HTTP client (httpx2) logs every call at INFO: the access log and the AI metrics
    # already record each one.
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    init_accounting(app, settings.database_url)
    app.register_api(ai_bp)
    app.register_api(recipes_bp)
    app.cli.add_command(ai_cli)
    add_check(app, "ai_service", check_ai_service)
    add_deploy_check(app, check_ai_provider)
    add_warm_up(app, warm_up_sdk)
    document_streams(app)


def check_ai_provider() -> list[str]:
    """The real provider is configured and answers one small request."""
    settings = ai_settings()
    if settings.ai_offline:
        setting = "{{ 'AI_BASE_URL' if cookiecutter.ai_provider == 'ollama' else 'AI_API_KEY' }}"
        return [f"the offline provider answers: set {setting} to reach the real one"]
    try:
        check_connection()
    except APIError as exc:
        return [f"the AI provider does not answer: {exc.message}"]
    return []


def check_ai_service() -> Check:
    """Configuration only: a real call on every probe would cost money and hide nothing new."""
    settings = ai_settings()
    if settings.ai_offline:
        return Check(status="ok", detail=f"offline provider, model {settings.ai_model}")
{%- if cookiecutter.ai_provider == "azure_openai" %}
    if not settings.ai_base_url:
        return Check(status="error", detail="AI_BASE_URL (the Azure endpoint) is not set")
{%- endif %}
    return Check(status="ok", detail=f"provider {settings.ai_provider}, model {settings.ai_model}")


def document_streams(app: OpenAPI) -> None:
    """A body with a `stream` flag can turn the JSON reply into server-sent events: the 200
    response of such an operation documents both media types."""
    documented: Any = SSE_DOC["content"]
    events = MediaType.model_validate(documented["text/event-stream"])
    for item in app.paths.values():
        operation = item.post
        if operation is None or not isinstance(operation.requestBody, RequestBody):
            continue
        body = operation.requestBody.content.get("application/json")
        ref = getattr(body.media_type_schema, "ref", None) if body is not None else None
        if not ref:
            continue
        schema = app.components_schemas.get(ref.rsplit("/", 1)[-1])
        ok = (operation.responses or {}).get("200")
        if schema is None or ok is None or ok.content is None:
            continue
        if "stream" in (schema.properties or {}):
            ok.content.setdefault("text/event-stream", events)
