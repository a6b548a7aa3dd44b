"""`flask ai`: test the connection to the provider, usage statistics, the response cache."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import click
from flask.cli import AppGroup

from ..core.cli import one_line_errors
from ..core.extensions import redis_store
from .base import Message, ProviderError
from .cache import cache_clear
from .completion import chat_request, get_provider, retry_policy
from .errors import to_api_error
from .retry import call_with_retries
from .settings import ai_settings
from .usage import usage_stats

ai_cli = AppGroup("ai", help="The AI provider: connection test, usage statistics, response cache.")


@dataclass(frozen=True)
class ConnectionCheck:
    provider: str
    model: str
    reply: str
    latency_ms: float


def check_connection() -> ConnectionCheck:
    """One small real call to the configured provider (not counted against any budget)."""
    provider = get_provider()
    request = chat_request([Message("user", "Reply with the word: pong")], max_tokens=5)
    started = time.perf_counter()
    try:
        response, _ = call_with_retries(lambda: provider.complete(request), retry_policy())
    except ProviderError as exc:
        raise to_api_error(exc) from exc
    return ConnectionCheck(
        provider=provider.name,
        model=response.model or request.model,
        reply=response.content.strip()[:80],
        latency_ms=round((time.perf_counter() - started) * 1000, 1),
    )


@ai_cli.command("test-connection")
@one_line_errors
def ai_test_connection() -> None:
    """Send one small real request to the AI provider; exit 1 if it fails or there is none."""
    if ai_settings().ai_offline:
        setting = "{{ 'AI_BASE_URL' if cookiecutter.ai_provider == 'ollama' else 'AI_API_KEY' }}"
        raise click.ClickException(
            f"not tested: only the offline provider is configured (set {setting} to reach it)"
        )
    check = check_connection()
    click.echo(
        f"OK: {check.provider} ({check.model}) answered in {check.latency_ms} ms: {check.reply!r}"
    )


@ai_cli.command("show-stats")
@one_line_errors
def ai_show_stats() -> None:
    """AI usage of every caller, by provider, model and outcome."""
    click.echo(json.dumps(usage_stats(), indent=2))


@ai_cli.command("clear-cache")
@one_line_errors
def ai_clear_cache() -> None:
    """Drop every cached AI response."""
    removed = cache_clear()
    if redis_store.client is None:
        click.echo(
            f"Removed {removed} cached AI responses of this process only: without REDIS_URL "
            "each process (every gunicorn worker) keeps its own cache."
        )
    else:
        click.echo(f"Removed {removed} cached AI responses.")
