"""{{ cookiecutter.project_name }}: the application factory."""

from __future__ import annotations

from typing import Any

import click
from flask_openapi3 import Info, OpenAPI
from pydantic import ValidationError
from pydantic_core import ErrorDetails
{%- if cookiecutter.use_nginx %}
from werkzeug.middleware.proxy_fix import ProxyFix
{%- endif %}

from .api import register_api
from .cli import register_cli
from .errors import register_error_handlers, validation_error_callback
from .extensions import NoCookieSessions, cors, db{% if cookiecutter.use_auth %}, jwt{% endif %}, limiter, redis_store
from .migrate import upgrade
from .observability import configure_logging, init_observability
{%- if cookiecutter.use_auth %}
from .services.auth import configure_jwt
{%- endif %}
from .settings import APP_VERSION, Settings
{%- if cookiecutter.use_celery %}
from .tasks import init_celery
{%- endif %}

__version__ = APP_VERSION
{%- if cookiecutter.use_auth %}

# Protected routes take `Authorization: Bearer <access token>`.
SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
}
{%- else %}

SECURITY_SCHEMES: dict[str, Any] = {}
{%- endif %}


def create_app(config: Settings | dict[str, Any] | None = None) -> OpenAPI:
    """Build the app: settings, extensions, error handlers, routes, CLI."""
    settings = load_settings(config)
    configure_logging(settings)

    app = OpenAPI(
        __name__,
        info=Info(title={{ cookiecutter.project_name | tojson }}, version=__version__),
        security_schemes=SECURITY_SCHEMES,  # {} without auth: `null` is not valid OpenAPI
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
{%- if cookiecutter.use_auth %}
        JWT_SECRET_KEY=settings.jwt_secret_key,
        JWT_ACCESS_TOKEN_EXPIRES=settings.jwt_access_token_expires,
        JWT_REFRESH_TOKEN_EXPIRES=settings.jwt_refresh_token_expires,
{%- endif %}
    )
    app.extensions["settings"] = settings
    app.session_interface = NoCookieSessions()
    app.json.sort_keys = False  # type: ignore[attr-defined]  # envelopes read success-first
{%- if cookiecutter.use_nginx %}
    # Behind the bundled nginx: trust exactly one proxy hop for client address and scheme.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]
{%- endif %}

    db.init_app(app, settings)
    if settings.migrate_on_start and not _running_db_command():
        upgrade(settings.database_url)
    redis_store.init_app(app, settings)
    limiter.init_app(app)
    if settings.cors_origins:  # no origin allowed: no cross-origin headers, no per-request check
        cors.init_app(app, origins=settings.cors_origins, expose_headers=["X-Request-ID"])
{%- if cookiecutter.use_auth %}
    configure_jwt(jwt)
    jwt.init_app(app)
{%- endif %}

{%- if cookiecutter.use_celery %}
    init_celery(app)  # each Flask app gets its own Celery app, from its settings
{%- endif %}
    init_observability(app)
    register_error_handlers(app)
    register_api(app)
    register_cli(app)
    return app


def load_settings(config: Settings | dict[str, Any] | None) -> Settings:
    """Settings from the environment, `.env` and `config`; refuse to start when invalid."""
    if isinstance(config, Settings):
        return config
    try:
        return Settings(**(config or {}))
    except ValidationError as exc:
        problems = "; ".join(_describe(error) for error in exc.errors())
        raise SystemExit(f"Invalid settings: {problems}") from None


def _describe(error: ErrorDetails) -> str:
    setting = "_".join(str(part) for part in error["loc"]).upper()
    message = error["msg"].removeprefix("Value error, ")
    return f"{setting}: {message}" if setting else message


def _running_db_command() -> bool:
    # `flask db ...` manages migrations itself (a downgrade must not be undone at start).
    context = click.get_current_context(silent=True)
    return context is not None and context.command_path.split()[1:2] == ["db"]
