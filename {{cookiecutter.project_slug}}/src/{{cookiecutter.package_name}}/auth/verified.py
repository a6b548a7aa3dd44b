"""Tokens verified once per app, not on each of their requests.

flask-jwt-extended parses a bearer token four times per request (twice unverified, to pick the
key, then to verify it), about 65 µs of CPU for a 400-character token, more than the rest of
the token's checks together. A token cannot change: what verifying it found holds for as long
as its expiry does. So each app keeps the claims of the tokens it has verified, and a known
token's next request only checks its expiry again. Revocation, the user's state and role are
not in the token: they are still read on every request (service._token_state).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from flask import Flask, current_app
from flask_jwt_extended import JWTManager
from flask_jwt_extended.config import config

# Enough for every user active on one worker at once; a token dropped is only verified again.
REMEMBERED_TOKENS = 2048


class VerifiedTokens:
    """The claims of up to `size` verified tokens, the least recently used dropped first."""

    def __init__(self, size: int = REMEMBERED_TOKENS) -> None:
        self.size = size
        self._claims: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()  # gthread workers serve requests on several threads

    def get(self, token: str, leeway: float) -> dict[str, Any] | None:
        """The claims of `token` if it was verified and has not expired since (PyJWT's rule:
        expired once `exp <= now - leeway`), else None."""
        with self._lock:
            claims = self._claims.get(token)
            if claims is None:
                return None
            expires = claims.get("exp")
            if isinstance(expires, int | float) and expires <= time.time() - leeway:
                del self._claims[token]
                return None
            self._claims.move_to_end(token)
        return dict(claims)  # the request's own copy

    def add(self, token: str, claims: dict[str, Any]) -> None:
        with self._lock:
            self._claims[token] = dict(claims)
            self._claims.move_to_end(token)
            while len(self._claims) > self.size:
                self._claims.popitem(last=False)


class VerifyOnceJWTManager(JWTManager):
    """flask-jwt-extended's manager, asking each app's `VerifiedTokens` before decoding.

    Only successful decodes are kept: a bad, expired or not yet valid token goes through the
    full decode (and its error) every time. Tokens checked against a CSRF value (cookies) or
    decoded with `allow_expired` are never looked up.
    """

    def init_app(self, app: Flask, add_context_processor: bool = False) -> None:
        super().init_app(app, add_context_processor)
        app.extensions["verified_tokens"] = VerifiedTokens()

    def _decode_jwt_from_config(
        self, encoded_token: str, csrf_value: str | None = None, allow_expired: bool = False
    ) -> dict[str, Any]:
        if csrf_value is not None or allow_expired:
            return super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)
        verified: VerifiedTokens = current_app.extensions["verified_tokens"]
        claims = verified.get(encoded_token, config.leeway)
        if claims is None:
            claims = super()._decode_jwt_from_config(encoded_token)
            verified.add(encoded_token, claims)
        return claims
