"""The errors of sign-in and tokens (401s the client can tell apart)."""

from __future__ import annotations

from ..core.errors import APIError


class InvalidCredentials(APIError):
    status, code, message = 401, "invalid_credentials", "Invalid email or password."


class TokenExpired(APIError):
    status, code, message = 401, "token_expired", "The token has expired."


class TokenRevoked(APIError):
    status, code, message = 401, "token_revoked", "The token has been revoked."
