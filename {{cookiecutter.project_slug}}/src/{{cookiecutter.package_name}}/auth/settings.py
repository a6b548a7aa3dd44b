"""The settings of sign-in and tokens."""

from __future__ import annotations

from pydantic import Field, model_validator

from ..core.settings import DEFAULT_SECRET, Settings, check_secret, feature_settings


class AuthSettings(Settings):
    jwt_secret_key: str = DEFAULT_SECRET
    jwt_access_token_expires: int = Field(default=900, gt=0, description="seconds")
    jwt_refresh_token_expires: int = Field(default=30 * 24 * 3600, gt=0, description="seconds")
    rate_limit_auth: str = "10 per minute"

    @model_validator(mode="after")
    def _refuse_weak_jwt_secret(self) -> AuthSettings:
        if self.is_production:
            check_secret("JWT_SECRET_KEY", self.jwt_secret_key)
        return self


def auth_settings() -> AuthSettings:
    return feature_settings(AuthSettings)
