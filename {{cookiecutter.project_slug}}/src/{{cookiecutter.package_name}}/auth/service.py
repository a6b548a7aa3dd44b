"""Authentication: passwords, tokens, revocation, and the current user of a request."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import cache
from typing import Any

import redis
from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Response, g
from flask_jwt_extended import (
    JWTManager,
    create_access_token,
    create_refresh_token,
    decode_token,
    get_current_user,
    get_jwt,
    verify_jwt_in_request,
)
from sqlalchemy import func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete, select

from ..core.errors import (
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
    error_response,
)
from ..core.extensions import db, redis_store
from ..core.identity import Caller
from ..core.models import paginate
from .errors import InvalidCredentials, TokenExpired, TokenRevoked
from .models import (
    LoginRequest,
    PasswordChange,
    ProfileUpdate,
    RegisterRequest,
    RevokedToken,
    Role,
    TokenPair,
    User,
    UserAdminUpdate,
    UserOut,
    UserPage,
    UserQuery,
)
from .settings import auth_settings

REVOKED_KEY_PREFIX = "auth:revoked:"

_HASHER = PasswordHasher()  # argon2id, RFC 9106 low-memory profile
# Test suites hash hundreds of passwords: only APP_ENV=testing uses the cheapest parameters.
_TEST_HASHER = PasswordHasher.from_parameters(profiles.CHEAPEST)


# --- passwords -------------------------------------------------------------------------------


def _hasher() -> PasswordHasher:
    return _TEST_HASHER if auth_settings().app_env == "testing" else _HASHER


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@cache
def _dummy_hash() -> str:
    # Checked against when the email is unknown, so that both failures take as long.
    return _HASHER.hash("unknown-user-placeholder")


def normalize_email(email: str) -> str:
    return email.strip().lower()


# --- users -----------------------------------------------------------------------------------


def find_user(email: str) -> User | None:
    return db.session.exec(select(User).where(User.email == normalize_email(email))).first()


def create_user(email: str, password: str, full_name: str, role: Role = "user") -> User:
    """Add a user; 409 when the email is taken. Used by registration and the CLI."""
    if find_user(email) is not None:
        raise Conflict("A user with this email already exists.")
    user = User(
        email=normalize_email(email),
        full_name=full_name.strip(),
        password_hash=hash_password(password),
        role=role,
    )
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError as exc:  # a concurrent registration won the race
        db.session.rollback()
        raise Conflict("A user with this email already exists.") from exc
    return user


def register(data: RegisterRequest) -> TokenPair:
    """Self-service sign-up: always the `user` role (admins come from the CLI)."""
    user = create_user(data.email, data.password, data.full_name, role="user")
    return issue_tokens(user)


def login(data: LoginRequest) -> TokenPair:
    user = find_user(data.email)
    if user is None:
        verify_password(_dummy_hash(), data.password)
        raise InvalidCredentials()
    if not verify_password(user.password_hash, data.password):
        raise InvalidCredentials()
    if not user.is_active:
        raise Forbidden("This account is disabled.")
    if _hasher().check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(data.password)
        db.session.add(user)
        db.session.commit()
    return issue_tokens(user)


def update_profile(user: User, data: ProfileUpdate) -> User:
    user.full_name = data.full_name.strip()
    db.session.add(user)
    db.session.commit()
    return user


def change_password(user: User, data: PasswordChange) -> TokenPair:
    """Set a new password and sign out every session (all earlier tokens are revoked); returns
    a fresh pair for the caller."""
    if not verify_password(user.password_hash, data.current_password):
        raise InvalidCredentials("The current password is wrong.")
    user.password_hash = hash_password(data.new_password)
    user.token_version += 1
    db.session.add(user)
    db.session.commit()
    return issue_tokens(user)


def deactivate(user: User) -> None:
    """Deactivate the account and revoke every token issued to it (a raised token version)."""
    user.is_active = False
    user.token_version += 1
    db.session.add(user)
    db.session.commit()


def list_users(query: UserQuery) -> UserPage:
    conditions = []
    if query.role:
        conditions.append(col(User.role) == query.role)
    if query.search:
        pattern = f"%{query.search.lower()}%"
        conditions.append(
            or_(func.lower(User.email).like(pattern), func.lower(User.full_name).like(pattern))
        )
    return paginate(db.session, User, conditions, query, UserOut.model_validate, [col(User.id)])


def admin_update_user(admin: User, user_id: int, data: UserAdminUpdate) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(f"User {user_id} not found.")
    demotes_self = data.role is not None and data.role != "admin"
    if user.id == admin.id and (demotes_self or data.is_active is False):
        # Otherwise the last admin could lock everyone out of administration.
        raise Conflict("You cannot demote or deactivate your own account.")
    if data.role is not None:
        user.role = data.role
    if data.is_active is not None:
        user.is_active = data.is_active
    db.session.add(user)
    db.session.commit()
    return user


# --- tokens ----------------------------------------------------------------------------------


def issue_tokens(user: User) -> TokenPair:
    """An access and a refresh token. The access token names its refresh token (`rjti`), so that
    logging out with it ends the whole session."""
    identity = str(user.id)
    claims = {"role": user.role, "ver": user.token_version}
    refresh_token = create_refresh_token(identity=identity, additional_claims=claims)
    session = {**claims, "rjti": decode_token(refresh_token)["jti"]}
    return TokenPair(
        user=UserOut.model_validate(user),
        access_token=create_access_token(identity=identity, additional_claims=session),
        refresh_token=refresh_token,
        expires_in=auth_settings().jwt_access_token_expires,
    )


def refresh() -> TokenPair:
    """Trade a refresh token for a new pair; the old refresh token is revoked (rotation)."""
    verify_jwt_in_request(refresh=True)
    user: User = get_current_user()
    if not revoke_token(get_jwt()):
        raise TokenRevoked()  # a concurrent refresh with the same token got there first
    return issue_tokens(user)


def logout() -> None:
    """End the session: revoke the request's access token and its refresh token, at once."""
    verify_jwt_in_request()
    claims = get_jwt()
    revoke_token(claims)
    refresh_jti = claims.get("rjti")
    if isinstance(refresh_jti, str):
        expires = int(time.time()) + auth_settings().jwt_refresh_token_expires
        revoke_token({"jti": refresh_jti, "exp": expires})


def revoke_token(claims: dict[str, Any]) -> bool:
    """Record the token's id until it expires; False when it was already revoked."""
    jti = str(claims["jti"])
    expires = int(claims.get("exp", time.time() + 1))
    client = redis_store.client
    if client is not None:
        ttl = max(expires - int(time.time()), 1)
        try:
            return bool(client.set(REVOKED_KEY_PREFIX + jti, "1", ex=ttl, nx=True))
        except redis.RedisError as exc:
            raise ServiceUnavailable("The token store is unavailable.") from exc
    session = db.session
    now = datetime.now(UTC)
    session.exec(delete(RevokedToken).where(col(RevokedToken.expires_at) < now))
    session.add(RevokedToken(jti=jti, expires_at=datetime.fromtimestamp(expires, UTC)))
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        return False
    return True


def _token_user(payload: dict[str, Any]) -> User | None:
    """The user a token names, loaded once per request: the revocation check and the user
    lookup both need it."""
    cached: tuple[object, User | None] | None = g.get("token_user")
    if cached is not None and cached[0] == payload.get("jti"):
        return cached[1]
    try:
        user = db.session.get(User, int(payload["sub"]))
    except (KeyError, TypeError, ValueError):
        user = None
    g.token_user = (payload.get("jti"), user)
    return user


def _older_than_password(payload: dict[str, Any]) -> bool:
    """A token issued before its user's last password change."""
    user = _token_user(payload)
    return user is not None and payload.get("ver", 0) != user.token_version


def is_token_revoked(jti: str) -> bool:
    """Fails closed: when Redis is configured but down, no token is accepted (503)."""
    client = redis_store.client
    if client is not None:
        try:
            return bool(client.exists(REVOKED_KEY_PREFIX + jti))
        except redis.RedisError as exc:
            raise ServiceUnavailable("The token store is unavailable.") from exc
    found = db.session.exec(select(RevokedToken.id).where(RevokedToken.jti == jti)).first()
    return found is not None


# --- the current user ------------------------------------------------------------------------


def current_user() -> User:
    """The active user of a valid, unrevoked access token; 401 otherwise.

    The user is loaded on every request, so role changes and deactivation apply at once.
    """
    verify_jwt_in_request()
    user: User = get_current_user()
    return user


def current_writer() -> User:
    """The current user, if allowed to change data (403 for `readonly`)."""
    user = current_user()
    if user.role == "readonly":
        raise Forbidden("Read-only users cannot change data.")
    return user


def user_caller() -> Caller:
    """The signed-in caller, as every feature sees it (see core/identity.py)."""
    user = current_user()
    assert user.id is not None
    return Caller(
        key=f"user:{user.id}",
        user_id=user.id,
        is_admin=user.role == "admin",
        read_only=user.role == "readonly",
    )


def current_admin() -> User:
    user = current_user()
    if user.role != "admin":
        raise Forbidden("This needs the admin role.")
    return user


def configure_jwt(manager: JWTManager) -> None:
    """Load users and check revocation for every token; errors become envelopes."""

    @manager.user_lookup_loader
    def _load_user(_header: dict[str, Any], payload: dict[str, Any]) -> User | None:
        user = _token_user(payload)
        return user if user is not None and user.is_active else None

    @manager.token_in_blocklist_loader
    def _is_revoked(_header: dict[str, Any], payload: dict[str, Any]) -> bool:
        return is_token_revoked(str(payload.get("jti", ""))) or _older_than_password(payload)

    @manager.unauthorized_loader
    def _missing(reason: str) -> Response:
        return error_response(Unauthorized(f"Authentication required: {reason}"))

    @manager.invalid_token_loader
    def _invalid(reason: str) -> Response:
        return error_response(Unauthorized(f"Invalid token: {reason}"))

    @manager.expired_token_loader
    def _expired(_header: dict[str, Any], _payload: dict[str, Any]) -> Response:
        return error_response(TokenExpired())

    @manager.revoked_token_loader
    def _revoked(_header: dict[str, Any], _payload: dict[str, Any]) -> Response:
        return error_response(TokenRevoked())

    @manager.user_lookup_error_loader
    def _unknown_user(_header: dict[str, Any], _payload: dict[str, Any]) -> Response:
        return error_response(Unauthorized("The user of this token is unknown or disabled."))

    @manager.token_verification_failed_loader
    def _claims_rejected(_header: dict[str, Any], _payload: dict[str, Any]) -> Response:
        return error_response(Unauthorized("The token's claims were rejected."))
