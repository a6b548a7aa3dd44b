"""`/api/v1/users`: the caller's own account, and user administration (admin only)."""

from __future__ import annotations

from flask import Response
from flask_openapi3 import APIBlueprint, Tag

from ..models.user import (
    PasswordChange,
    ProfileUpdate,
    UserAdminUpdate,
    UserOut,
    UserPage,
    UserPath,
    UserQuery,
)
from ..responses import Envelope, ErrorEnvelope, envelope
from ..services import auth as service

users_bp = APIBlueprint(
    "users",
    __name__,
    url_prefix="/api/v1/users",
    abp_tags=[Tag(name="users")],
    abp_security=[{"bearer": []}],
    abp_responses={401: ErrorEnvelope, 403: ErrorEnvelope, 422: ErrorEnvelope, 429: ErrorEnvelope},
)


@users_bp.get("/me", responses={200: Envelope[UserOut]})
def me() -> Response:
    """The caller's account."""
    return envelope(UserOut.model_validate(service.current_user()))


@users_bp.patch("/me", responses={200: Envelope[UserOut]})
def update_me(body: ProfileUpdate) -> Response:
    """Change the caller's name."""
    user = service.update_profile(service.current_user(), body)
    return envelope(UserOut.model_validate(user), message="Profile updated.")


@users_bp.put("/me/password", responses={200: Envelope[None]})
def change_password(body: PasswordChange) -> Response:
    """Change the caller's password (the current one is required)."""
    service.change_password(service.current_user(), body)
    return envelope(None, message="Password changed.")


@users_bp.get("", responses={200: Envelope[UserPage]})
def list_users(query: UserQuery) -> Response:
    """Every user, paginated (admin only)."""
    service.current_admin()
    return envelope(service.list_users(query))


@users_bp.patch(
    "/<int:user_id>",
    responses={200: Envelope[UserOut], 404: ErrorEnvelope, 409: ErrorEnvelope},
)
def update_user(path: UserPath, body: UserAdminUpdate) -> Response:
    """Change a user's role or active flag (admin only; not your own)."""
    user = service.admin_update_user(service.current_admin(), path.user_id, body)
    return envelope(UserOut.model_validate(user), message="User updated.")
