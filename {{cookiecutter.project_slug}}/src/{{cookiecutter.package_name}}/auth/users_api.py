"""`/api/v1/users`: the caller's own account, and user administration (admin only)."""

from __future__ import annotations

from flask import Response

from ..core.blueprint import api_blueprint
from ..core.responses import Envelope, ErrorEnvelope, envelope
from . import service
from .models import (
    PasswordChange,
    ProfileUpdate,
    TokenPair,
    UserAdminUpdate,
    UserOut,
    UserPage,
    UserPath,
    UserQuery,
)

users_bp = api_blueprint("users", __name__)


@users_bp.get("/me", responses={200: Envelope[UserOut]})
def get_me() -> Response:
    """The caller's account."""
    return envelope(UserOut.model_validate(service.current_user()))


@users_bp.patch("/me", responses={200: Envelope[UserOut]})
def update_me(body: ProfileUpdate) -> Response:
    """Change the caller's name."""
    user = service.update_profile(service.current_user(), body)
    return envelope(UserOut.model_validate(user), message="Profile updated.")


@users_bp.delete("/me", responses={200: Envelope[None]})
def delete_me() -> Response:
    """Close the caller's account: it is deactivated and every token of it is revoked at once.
    An admin can activate it again."""
    service.deactivate(service.current_user())
    return envelope(None, message="Account closed; all sessions are signed out.")


@users_bp.put("/me/password", responses={200: Envelope[TokenPair]})
def change_password(body: PasswordChange) -> Response:
    """Change the caller's password (the current one is required). Every session is signed out;
    the answer carries a new token pair for this one."""
    tokens = service.change_password(service.current_user(), body)
    return envelope(tokens, message="Password changed; all other sessions are signed out.")


@users_bp.get("", responses={200: Envelope[UserPage], 403: ErrorEnvelope})
def list_users(query: UserQuery) -> Response:
    """Every user, paginated (admin only)."""
    service.current_admin()
    return envelope(service.list_users(query))


@users_bp.patch(
    "/<int:user_id>",
    responses={200: Envelope[UserOut], 403: ErrorEnvelope, 404: ErrorEnvelope, 409: ErrorEnvelope},
)
def update_user(path: UserPath, body: UserAdminUpdate) -> Response:
    """Change a user's role or active flag (admin only; not your own)."""
    user = service.admin_update_user(service.current_admin(), path.user_id, body)
    return envelope(UserOut.model_validate(user), message="User updated.")
