"""`/api/v1/auth`: register, login, refresh (rotating) and logout."""

from __future__ import annotations

from flask import Response
from flask_openapi3 import APIBlueprint, Tag

from ..core.blueprint import operation_id
from ..core.extensions import limiter
from ..core.responses import Envelope, ErrorEnvelope, envelope
from . import service
from .models import LoginRequest, RegisterRequest, TokenPair
from .settings import auth_settings

auth_bp = APIBlueprint(
    "auth",
    __name__,
    url_prefix="/api/v1/auth",
    abp_tags=[Tag(name="auth")],
    abp_responses={422: ErrorEnvelope, 429: ErrorEnvelope},
    operation_id_callback=operation_id,
)

BEARER: list[dict[str, list[str]]] = [{"bearer": []}]


def _auth_rate_limit() -> str:
    return auth_settings().rate_limit_auth


@auth_bp.post("/register", responses={201: Envelope[TokenPair], 409: ErrorEnvelope})
@limiter.limit(_auth_rate_limit)
def register(body: RegisterRequest) -> Response:
    """Create an account and return its first tokens.

    New accounts have the role `user`."""
    return envelope(service.register(body), message="Account created.", status=201)


@auth_bp.post(
    "/login", responses={200: Envelope[TokenPair], 401: ErrorEnvelope, 403: ErrorEnvelope}
)
@limiter.limit(_auth_rate_limit)
def login(body: LoginRequest) -> Response:
    """Exchange email and password for an access and a refresh token."""
    return envelope(service.login(body))


@auth_bp.post("/refresh", security=BEARER, responses={200: Envelope[TokenPair], 401: ErrorEnvelope})
def refresh() -> Response:
    """Exchange a refresh token for a new pair; the old one is revoked.

    Send the refresh token as `Authorization: Bearer`."""
    return envelope(service.refresh())


@auth_bp.post("/logout", security=BEARER, responses={200: Envelope[None], 401: ErrorEnvelope})
def logout() -> Response:
    """End the session of this access token: it and its refresh token are revoked at once."""
    service.logout()
    return envelope(None, message="Logged out.")
