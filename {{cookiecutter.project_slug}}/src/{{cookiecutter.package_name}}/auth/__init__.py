"""Sign-in: users, roles, JWT access and refresh tokens, revocation (`/api/v1/auth`,
`/api/v1/users`, `flask users`)."""

from __future__ import annotations

from flask_openapi3 import OpenAPI

from ..core.deploy import add_deploy_check, weak_secret
from ..core.extensions import read_with_first_hit
from ..core.identity import set_caller_loader
from ..core.settings import init_feature_settings
from .api import auth_bp
from .cli import users_cli
from .service import bearer_token_state_keys, configure_jwt, user_caller
from .settings import AuthSettings, auth_settings
from .users_api import users_bp
from .verified import VerifyOnceJWTManager

jwt = VerifyOnceJWTManager()
configure_jwt(jwt)


def init_app(app: OpenAPI) -> None:
    settings = init_feature_settings(app, AuthSettings)
    app.config.update(
        JWT_SECRET_KEY=settings.jwt_secret_key,
        JWT_ACCESS_TOKEN_EXPIRES=settings.jwt_access_token_expires,
        JWT_REFRESH_TOKEN_EXPIRES=settings.jwt_refresh_token_expires,
    )
    jwt.init_app(app)
    set_caller_loader(app, user_caller)
    # A signed-in request's token state (revocation, role) comes with its first rate-limit hit.
    read_with_first_hit(app, bearer_token_state_keys)
    # Protected routes take `Authorization: Bearer <access token>`.
    app.security_schemes = {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
    app.register_api(auth_bp)
    app.register_api(users_bp)
    app.cli.add_command(users_cli)
    add_deploy_check(app, check_jwt_secret)


def check_jwt_secret() -> list[str]:
    return weak_secret("JWT_SECRET_KEY", auth_settings().jwt_secret_key)
