"""Who is calling: the one question every feature asks about a request.

Without sign-in the caller is the client address, allowed everything. A feature that signs
callers in (auth) installs its own loader with `set_caller_loader`, and every feature that
owns data or counts usage follows it without knowing how callers are identified.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, current_app, request

from .errors import Forbidden


@dataclass(frozen=True)
class Caller:
    """`key` owns usage, budgets, jobs and conversations ("user:7", "client:10.0.0.5");
    `user_id` is None without sign-in, where everything is shared."""

    key: str
    user_id: int | None = None
    is_admin: bool = False
    read_only: bool = False

    def sees_all(self) -> bool:
        """Whether this caller sees every owner's records (no sign-in, or an admin)."""
        return self.user_id is None or self.is_admin


CallerLoader = Callable[[], Caller]


def client_caller() -> Caller:
    return Caller(key=f"client:{request.remote_addr or 'unknown'}")


def set_caller_loader(app: Flask, loader: CallerLoader) -> None:
    app.extensions["caller_loader"] = loader


def current_caller(*, writes: bool = False) -> Caller:
    """The caller of this request (401 when sign-in is required and missing); with `writes`,
    403 for a caller who may only read."""
    loader: CallerLoader = current_app.extensions.get("caller_loader", client_caller)
    caller = loader()
    if writes and caller.read_only:
        raise Forbidden("Read-only users cannot change data.")
    return caller
