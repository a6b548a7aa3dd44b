"""{{ cookiecutter.project_name }}: the application factory."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import click
from flask_openapi3 import Info, OpenAPI
from werkzeug.middleware.proxy_fix import ProxyFix
{% if cookiecutter.ai_provider != "none" %}
from .ai import init_app as init_ai
{%- endif %}
{%- if cookiecutter.ai_provider != "none" and cookiecutter.use_celery %}
from .ai.jobs import init_app as init_ai_jobs
{%- endif %}
{%- if cookiecutter.use_auth %}
from .auth import init_app as init_auth
{%- endif %}
from .core.api import finish_docs, init_api
from .core.cli import register_cli
from .core.deploy import init_deploy_checks
from .core.errors import register_error_handlers, validation_error_callback
from .core.extensions import NoCookieSessions, cors, db, limiter, redis_store
from .core.health import init_health
from .core.migrate import upgrade
from .core.observability import configure_logging, init_observability
from .core.settings import APP_VERSION, Settings, load_settings
from .core.tracing import init_tracing
from .items import init_app as init_items
{%- if cookiecutter.use_celery %}
from .jobs import init_app as init_jobs
{%- endif %}
{%- if cookiecutter.ai_provider != "none" %}
from .playground import init_app as init_playground
{%- endif %}
{%- if cookiecutter.use_rag %}
from .rag import init_app as init_rag
{%- endif %}

__version__ = APP_VERSION

# The features of this service, set up in this order (a feature may use those before it).
FEATURES: list[Callable[[OpenAPI], None]] = [
{%- if cookiecutter.use_auth %}
    init_auth,
{%- endif %}
    init_items,
{%- if cookiecutter.use_celery %}
    init_jobs,
{%- endif %}
{%- if cookiecutter.ai_provider != "none" %}
    init_ai,
    init_playground,
{%- endif %}
{%- if cookiecutter.ai_provider != "none" and cookiecutter.use_celery %}
    init_ai_jobs,
{%- endif %}
{%- if cookiecutter.use_rag %}
    init_rag,
{%- endif %}
]

TITLE = {{ cookiecutter.project_name | tojson }}
DESCRIPTION = (
    "Every `/api/v1` answer is an envelope: `success`, `message`, `data` and `warnings`, or on "
    "failure `success: false` with a stable `code` and `details`. Probes, `/metrics` and this "
    "document keep their own formats."
)


def create_app(config: Mapping[str, Any] | None = None) -> OpenAPI:
    """Build the app: settings, extensions, error handlers, then each feature's routes and CLI.

    `config` overrides settings from the environment and `.env` (tests use it).
    """
    overrides = dict(config or {})
    settings = load_settings(Settings, overrides)
    configure_logging(settings)

    app = OpenAPI(
        __name__,
        info=Info(title=TITLE, version=__version__, description=DESCRIPTION),
        security_schemes={},  # `null` is not valid OpenAPI; auth adds its bearer scheme
        validation_error_status=422,
        validation_error_callback=validation_error_callback,
        doc_prefix="/docs",
    )
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_content_length,
        TESTING=settings.app_env == "testing",
        RATELIMIT_STORAGE_URI=settings.redis_url or "memory://",
        RATELIMIT_HEADERS_ENABLED=True,
        RATELIMIT_SWALLOW_ERRORS=True,
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
    )
    app.extensions["settings"] = settings
    app.extensions["settings_overrides"] = overrides
    app.session_interface = NoCookieSessions()
    app.json.sort_keys = False  # type: ignore[attr-defined]  # envelopes read success-first
    if settings.trusted_proxy_hops:
        hops = settings.trusted_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    db.init_app(app, settings)
    init_tracing(app)  # before any other before_request hook: every request gets its span
    if settings.migrate_on_start and not _running_db_command():
        upgrade(settings.database_url)
    redis_store.init_app(app, settings)
    limiter.init_app(app)
    if settings.cors_origins:  # no origin allowed: no cross-origin headers, no per-request check
        cors.init_app(app, origins=settings.cors_origins, expose_headers=["X-Request-ID"])
    init_observability(app)
    init_health(app)
    register_error_handlers(app)
    init_api(app)
    register_cli(app)
    init_deploy_checks(app)
    for init_feature in FEATURES:
        init_feature(app)
    finish_docs(app)
    return app


def _running_db_command() -> bool:
    # `flask db ...` manages migrations itself (a downgrade must not be undone at start).
    context = click.get_current_context(silent=True)
    return context is not None and context.command_path.split()[1:2] == ["db"]
