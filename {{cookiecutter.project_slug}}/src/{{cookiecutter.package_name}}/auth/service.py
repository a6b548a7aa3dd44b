"""Authentication: passwords, tokens, revocation, and the current user of a request."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import redis
from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Response, g, request
from flask_jwt_extended import (
    JWTManager,
    create_access_token,
    create_refresh_token,
    decode_token,
    get_current_user,
    get_jwt,
    verify_jwt_in_request,
)
from jwt.utils import base64url_decode
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
from ..core.extensions import db, first_hit_values, redis_store
from ..core.identity import Caller
from ..core.models import page_statement, paginate
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

logger = logging.getLogger(__name__)

REVOKED_KEY_PREFIX = "auth:revoked:"
# What a request needs to know about its user (token version, active, role), kept in Redis
# beside the revocation list so that one MGET answers both. Written after every change of those
# three; filled from the database on a miss. The expiry bounds how long a change whose write
# failed (Redis down at that moment) can go unseen.
USER_STATE_KEY_PREFIX = "auth:user:"
USER_STATE_TTL = 300

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
    # Only overwrites what an earlier user of this id left (after a database reset); with Redis
    # down, sign-up still works and no token is accepted until it is back.
    publish_user_state(user, required=False)
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
    publish_user_state(user)
    return issue_tokens(user)


def deactivate(user: User) -> None:
    """Deactivate the account and revoke every token issued to it (a raised token version)."""
    user.is_active = False
    user.token_version += 1
    db.session.add(user)
    db.session.commit()
    publish_user_state(user)


def list_users(query: UserQuery) -> UserPage:
    conditions = []
    if query.role:
        conditions.append(col(User.role) == query.role)
    if query.search:
        pattern = f"%{query.search.lower()}%"
        conditions.append(
            or_(func.lower(User.email).like(pattern), func.lower(User.full_name).like(pattern))
        )
    statement = page_statement(User, UserOut, conditions, [col(User.id)])
    return paginate(db.session.connection(), statement, UserOut, query)


def admin_update_user(admin: TokenUser, user_id: int, data: UserAdminUpdate) -> User:
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
    publish_user_state(user)
    return user


def change_role(user: User, role: Role) -> None:
    user.role = role
    db.session.add(user)
    db.session.commit()
    publish_user_state(user)


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
    user = _load_user(get_current_user())
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


@dataclass(frozen=True)
class TokenUser:
    """The user of a token as a request sees it: enough for roles and revocation."""

    id: int
    role: Role
    is_active: bool
    token_version: int

    @classmethod
    def of(cls, user: User) -> TokenUser:
        assert user.id is not None
        return cls(user.id, user.role, user.is_active, user.token_version)  # type: ignore[arg-type]

    def encode(self) -> str:
        return f"{self.token_version}:{int(self.is_active)}:{self.role}"

    @classmethod
    def decode(cls, user_id: int, raw: bytes | str) -> TokenUser | None:
        text = raw.decode() if isinstance(raw, bytes) else raw
        try:
            version, active, role = text.split(":")
            return cls(user_id, role, active == "1", int(version))  # type: ignore[arg-type]
        except ValueError:
            return None


def publish_user_state(user: User, *, required: bool = True) -> None:
    """After a change of the user's role, active flag or token version: every token of the user
    sees it on its next request. When Redis is configured but down, `required` answers 503 (the
    change is saved; the expiry of the cached state bounds how long it can go unseen)."""
    client = redis_store.client
    if client is None:
        return
    state = TokenUser.of(user)
    try:
        client.set(USER_STATE_KEY_PREFIX + str(state.id), state.encode(), ex=USER_STATE_TTL)
    except redis.RedisError as exc:
        if required:
            raise ServiceUnavailable("The token store is unavailable.") from exc
        logger.warning("could not cache the state of user %s: %s", state.id, exc)


def _token_state(payload: dict[str, Any]) -> tuple[bool, TokenUser | None]:
    """Whether the token is revoked, and its user: with Redis one round trip (MGET of the
    revocation key and the user's state), the database only when the state is not cached.
    Checked once per request (the revocation check and the user lookup both need it).
    Fails closed: when Redis is configured but down, no token is accepted (503)."""
    jti = str(payload.get("jti", ""))
    cached: tuple[str, bool, TokenUser | None] | None = g.get("token_state")
    if cached is not None and cached[0] == jti:
        return cached[1], cached[2]
    try:
        user_id = int(payload["sub"])
    except (KeyError, TypeError, ValueError):
        g.token_state = (jti, True, None)
        return True, None
    client = redis_store.client
    state: TokenUser | None = None
    if client is not None:
        revoked_key, key = token_state_keys(jti, user_id)
        try:
            read = first_hit_values(revoked_key, key) or client.mget(revoked_key, key)
            revoked_raw, state_raw = read
            revoked = revoked_raw is not None
            if state_raw is not None:
                state = TokenUser.decode(user_id, state_raw)
            if state is None and not revoked:
                user = db.session.get(User, user_id)
                if user is not None:
                    state = TokenUser.of(user)
                    # NX: a change published meanwhile wins over what was just read.
                    client.set(key, state.encode(), ex=USER_STATE_TTL, nx=True)
        except redis.RedisError as exc:
            raise ServiceUnavailable("The token store is unavailable.") from exc
    else:
        found = db.session.exec(select(RevokedToken.id).where(RevokedToken.jti == jti)).first()
        revoked = found is not None
        user = db.session.get(User, user_id)
        state = TokenUser.of(user) if user is not None else None
    g.token_state = (jti, revoked, state)
    return revoked, state


def token_state_keys(jti: str, user_id: int) -> tuple[str, str]:
    """The Redis keys of a token's state: its revocation and its user's state."""
    return REVOKED_KEY_PREFIX + jti, USER_STATE_KEY_PREFIX + str(user_id)


def bearer_token_state_keys() -> list[str]:
    """The keys `_token_state` will read for this request's bearer token, named before the
    request's first rate-limit hit so that it reads them (`read_with_first_hit`). The token is
    only looked into here, not verified: what is read counts only once it is."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or token.count(".") != 2:
        return []
    try:
        claims = json.loads(base64url_decode(token.split(".")[1]))
        jti, user_id = str(claims["jti"]), int(claims["sub"])
    except (ValueError, TypeError, KeyError, RecursionError):  # not a token of ours
        return []
    return list(token_state_keys(jti, user_id))


def is_token_revoked(payload: dict[str, Any]) -> bool:
    """Revoked by logout or rotation, or issued before its user's last password change."""
    revoked, state = _token_state(payload)
    return revoked or (state is not None and payload.get("ver", 0) != state.token_version)


def _load_user(state: TokenUser) -> User:
    """The full row, for the routes that show or change the account itself."""
    user = db.session.get(User, state.id)
    if user is None or not user.is_active:
        raise Unauthorized("The user of this token is unknown or disabled.")
    return user


# --- the current user ------------------------------------------------------------------------


def current_token_user() -> TokenUser:
    """The active user of a valid, unrevoked access token; 401 otherwise.

    Role, active flag and token version are checked on every request (see `_token_state`), so
    role changes and deactivation apply at once.
    """
    verify_jwt_in_request()
    user: TokenUser = get_current_user()
    return user


def current_user() -> User:
    """The current user's row (the account routes show and change it)."""
    return _load_user(current_token_user())


def user_caller() -> Caller:
    """The signed-in caller, as every feature sees it (see core/identity.py)."""
    user = current_token_user()
    return Caller(
        key=f"user:{user.id}",
        user_id=user.id,
        is_admin=user.role == "admin",
        read_only=user.role == "readonly",
    )


def current_admin() -> TokenUser:
    user = current_token_user()
    if user.role != "admin":
        raise Forbidden("This needs the admin role.")
    return user


def configure_jwt(manager: JWTManager) -> None:
    """Check revocation and the user's state for every token; errors become envelopes."""

    @manager.user_lookup_loader
    def _lookup_user(_header: dict[str, Any], payload: dict[str, Any]) -> TokenUser | None:
        _revoked, user = _token_state(payload)
        return user if user is not None and user.is_active else None

    @manager.token_in_blocklist_loader
    def _is_revoked(_header: dict[str, Any], payload: dict[str, Any]) -> bool:
        return is_token_revoked(payload)

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
