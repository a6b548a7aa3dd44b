"""Users and revoked tokens: the tables, and the models the auth and user endpoints use."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints
from sqlalchemy import Column, DateTime
from sqlmodel import Field, SQLModel

from ..core.models import Page, PageQuery, StrictBody, UTCDateTime, utcnow

Role = Literal["admin", "user", "readonly"]
ROLES: tuple[Role, ...] = ("admin", "user", "readonly")

# Deliberately loose: one @, no spaces, a dot in the domain. Delivery is the real check.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128

Email = Annotated[str, StringConstraints(min_length=3, max_length=320, pattern=EMAIL_PATTERN)]


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True, index=True)
    full_name: str = Field(max_length=200)
    password_hash: str = Field(max_length=255)
    role: str = Field(default="user", max_length=20)
    is_active: bool = Field(default=True)
    # Carried in every token as `ver`; raising it (a password change) revokes all older tokens.
    token_version: int = Field(default=0)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class RevokedToken(SQLModel, table=True):
    """Revoked JWT ids, used when there is no Redis; rows past `expires_at` can go."""

    __tablename__ = "revoked_tokens"

    id: int | None = Field(default=None, primary_key=True)
    jti: str = Field(max_length=64, unique=True, index=True)
    expires_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, index=True)
    )


class RegisterRequest(StrictBody):
    email: Email
    password: str = Field(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH)
    full_name: str = Field(min_length=1, max_length=200)


class LoginRequest(StrictBody):
    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)


class ProfileUpdate(StrictBody):
    full_name: str = Field(min_length=1, max_length=200)


class PasswordChange(StrictBody):
    current_password: str = Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)
    new_password: str = Field(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH)


class UserAdminUpdate(StrictBody):
    role: Role | None = None
    is_active: bool | None = None


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    full_name: str
    role: Role
    is_active: bool
    created_at: UTCDateTime


class TokenPair(BaseModel):
    user: UserOut
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int


class UserQuery(PageQuery):
    role: Role | None = None
    search: str | None = Field(default=None, max_length=200)


UserPage = Page[UserOut]


class UserPath(BaseModel):
    user_id: int = Field(ge=1, le=2**31 - 1)
