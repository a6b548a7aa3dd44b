"""AI calls as the API and background jobs need them: budget, cache, retries, structured output,
usage accounting, metrics, warnings, and the errors of `errors.py`.

Everything here needs an app context, never a request: `complete()` is what a background job
calls. The caller is identified by an `owner` key: `owner_for_user(id)` or `owner_for_client(ip)`.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from prometheus_client import Counter, Histogram
from pydantic import BaseModel

from ..ai.base import (
    ChatRequest,
    ChatResponse,
    Message,
    Provider,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    Usage,
    estimate_tokens,
)
from ..ai.providers import build_provider
from ..ai.retry import RetryPolicy, call_with_retries
from ..ai.structured import (
    InvalidOutputError,
    StructuredOutputError,
    complete_structured,
    parse_reply,
    prompt,
    structured_request,
)
from ..errors import AIProviderError, AITimeout, AIUnavailable, APIError
from ..extensions import get_settings
from ..models.ai import (
    CompletionOut,
    CompletionRequest,
    Recipe,
    RecipeOut,
    RecipeRequest,
    TokenUsage,
)
from ..responses import EnvelopeWarning
from . import ai_usage

logger = logging.getLogger(__name__)

AI_REQUESTS = Counter(
    "ai_requests_total", "AI calls by outcome.", ["provider", "model", "endpoint", "status"]
)
AI_TOKENS = Counter("ai_tokens_total", "Tokens used.", ["provider", "model", "kind"])
AI_LATENCY = Histogram(
    "ai_request_duration_seconds",
    "AI call latency (whole reply).",
    ["provider", "model"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120),
)
AI_TIME_TO_FIRST_TOKEN = Histogram(
    "ai_time_to_first_token_seconds",
    "Time until a streamed reply's first text.",
    ["provider", "model"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)

DEFAULT_RESERVE_TOKENS = 256  # budget reserved for a reply when the caller sets no max_tokens
DEFAULT_RETRY_AFTER = 5  # seconds suggested when the provider is unreachable and says nothing


def owner_for_user(user_id: int) -> str:
    return f"user:{user_id}"


def owner_for_client(address: str | None) -> str:
    return f"client:{address or 'unknown'}"


# -- provider and policy -------------------------------------------------------------------------


def get_provider() -> Provider:
    """The app's provider, built once from its settings."""
    provider: Provider | None = current_app.extensions.get("ai_provider")
    if provider is None:
        provider = build_provider(get_settings())
        current_app.extensions["ai_provider"] = provider
    return provider


def retry_policy() -> RetryPolicy:
    settings = get_settings()
    return RetryPolicy(
        max_retries=settings.ai_max_retries,
        backoff=settings.ai_retry_backoff,
        max_wait=settings.ai_timeout,
    )


def to_api_error(error: ProviderError) -> APIError:
    """Provider failures as the contract's 502 / 503 / 504."""
    details = {"attempts": error.attempts}
    if isinstance(error, ProviderTimeoutError):
        return AITimeout(details=details)
    if isinstance(error, ProviderUnavailableError):
        retry_after = error.retry_after if error.retry_after is not None else DEFAULT_RETRY_AFTER
        return AIUnavailable(
            error.message,
            details=details,
            headers={"Retry-After": str(max(1, math.ceil(retry_after)))},
        )
    return AIProviderError(error.message, details=details)


def _status(error: Exception) -> str:
    return to_api_error(error).code if isinstance(error, ProviderError) else "error"


# -- one completion ------------------------------------------------------------------------------


@dataclass
class CompletionResult:
    """What `complete()` returns: the envelope's `data` and `warnings`."""

    data: CompletionOut
    warnings: list[EnvelopeWarning] = field(default_factory=list)


def chat_request(
    messages: list[Message] | tuple[Message, ...],
    *,
    temperature: float | None = None,
    max_tokens: int | None = None,
) -> ChatRequest:
    return ChatRequest(
        messages=tuple(messages),
        model=get_settings().ai_model,
        temperature=temperature,
        max_tokens=max_tokens,
    )


def reserve_estimate(request: ChatRequest) -> int:
    prompt_tokens = sum(estimate_tokens(m.content) + 4 for m in request.messages)
    return prompt_tokens + (request.max_tokens or DEFAULT_RESERVE_TOKENS)


def complete(
    body: CompletionRequest, owner: str, *, request_id: str | None = None
) -> CompletionResult:
    """Run one completion for `owner` (budget, cache, retries, structured output, accounting).

    Raises BudgetExceeded (429), AIProviderError (502), AIUnavailable (503, Retry-After) or
    AITimeout (504). With `request_id`, a repeated call (a re-delivered job) is counted once.
    """
    request = chat_request(
        [Message(m.role, m.content) for m in body.messages],
        temperature=body.temperature,
        max_tokens=body.max_tokens,
    )
    return run(
        request, owner, endpoint="complete", schema=body.response_schema, request_id=request_id
    )


def run(
    request: ChatRequest,
    owner: str,
    *,
    endpoint: str,
    schema: dict[str, Any] | None = None,
    model: type[BaseModel] | None = None,
    request_id: str | None = None,
) -> CompletionResult:
    """The shared path of every non-streamed call."""
    provider = get_provider()
    reservation = ai_usage.reserve(owner, reserve_estimate(request))
    record = ai_usage.UsageRecord(
        endpoint=endpoint, provider=provider.name, model=request.model, request_id=request_id
    )
    started = time.perf_counter()
    attempts = 1
    record.status = "error"  # until the call has an outcome
    try:
        key = _cache_key(provider, request, schema)
        cached = ai_usage.cache_get(key) if key else None
        if cached is not None:
            response, parsed = _from_cache(cached, schema, model)
            record.cached = True
        else:
            response, parsed, attempts = _call(provider, request, schema, model)
            record.prompt_tokens = response.usage.prompt_tokens
            record.completion_tokens = response.usage.completion_tokens
            if key:
                ai_usage.cache_set(key, _to_cache(response))
        record.model = response.model or request.model
        record.status = "ok"
    except StructuredOutputError as exc:
        record.status = AIProviderError.code
        record.prompt_tokens = exc.usage.prompt_tokens
        record.completion_tokens = exc.usage.completion_tokens
        raise AIProviderError(
            "The model's reply did not match the schema.",
            details={
                "errors": exc.errors,
                "attempts": exc.attempts,
                "usage": _token_usage(exc.usage).model_dump(),
            },
        ) from exc
    except ProviderError as exc:
        record.status = _status(exc)
        logger.warning("AI call failed: %s", exc.message, extra={"attempts": exc.attempts})
        raise to_api_error(exc) from exc
    finally:
        record.latency_ms = (time.perf_counter() - started) * 1000
        today = ai_usage.settle(reservation, record)
        _observe(record)
    data = CompletionOut(
        content=response.content,
        finish_reason=response.finish_reason,
        model=record.model,
        usage=_token_usage(response.usage),
        parsed=parsed.model_dump(mode="json") if isinstance(parsed, BaseModel) else parsed,
        cached=record.cached,
    )
    return CompletionResult(data, build_warnings(provider, response.finish_reason, attempts, today))


def _call(
    provider: Provider,
    request: ChatRequest,
    schema: dict[str, Any] | None,
    model: type[BaseModel] | None,
) -> tuple[ChatResponse, Any, int]:
    policy = retry_policy()

    def call(current: ChatRequest) -> tuple[ChatResponse, int]:
        return call_with_retries(lambda: provider.complete(current), policy)

    if schema is None:
        response, attempts = call(request)
        return response, None, attempts
    result = complete_structured(
        call, request, schema, max_reasks=get_settings().ai_max_retries, model=model
    )
    return result.response, result.parsed, result.attempts


def _cache_key(
    provider: Provider, request: ChatRequest, schema: dict[str, Any] | None
) -> str | None:
    # Only deterministic requests are worth replaying.
    if request.temperature != 0 or not get_settings().ai_cache_ttl:
        return None
    return ai_usage.cache_key(
        {
            "provider": provider.name,
            "model": request.model,
            "messages": [[m.role, m.content] for m in request.messages],
            "max_tokens": request.max_tokens,
            "schema": schema,
        }
    )


def _to_cache(response: ChatResponse) -> dict[str, Any]:
    return {
        "content": response.content,
        "finish_reason": response.finish_reason,
        "model": response.model,
        "usage": [response.usage.prompt_tokens, response.usage.completion_tokens],
    }


def _from_cache(
    value: dict[str, Any], schema: dict[str, Any] | None, model: type[BaseModel] | None
) -> tuple[ChatResponse, Any]:
    response = ChatResponse(
        content=value["content"],
        finish_reason=value["finish_reason"],
        model=value["model"],
        usage=Usage(*value["usage"]),
    )
    return response, parse_reply(response.content, schema, model) if schema else None


def _token_usage(usage: Usage) -> TokenUsage:
    return TokenUsage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )


def _observe(record: ai_usage.UsageRecord, first_token_after: float | None = None) -> None:
    AI_REQUESTS.labels(record.provider, record.model, record.endpoint, record.status).inc()
    AI_TOKENS.labels(record.provider, record.model, "prompt").inc(record.prompt_tokens)
    AI_TOKENS.labels(record.provider, record.model, "completion").inc(record.completion_tokens)
    if not record.cached:
        AI_LATENCY.labels(record.provider, record.model).observe(record.latency_ms / 1000)
    if first_token_after is not None:
        AI_TIME_TO_FIRST_TOKEN.labels(record.provider, record.model).observe(first_token_after)


def build_warnings(
    provider: Provider, finish_reason: str | None, attempts: int, today_tokens: int
) -> list[EnvelopeWarning]:
    warnings = []
    if provider.name == "fake":
        warnings.append(
            EnvelopeWarning(
                code="offline_provider",
                message="The offline provider answered (AI_PROVIDER=fake, or no AI_API_KEY "
                "is set); these are not real model replies.",
            )
        )
    if finish_reason == "length":
        warnings.append(
            EnvelopeWarning(
                code="truncated",
                message="The reply was cut off at max_tokens; raise max_tokens for a full reply.",
            )
        )
    if attempts > 1:
        warnings.append(
            EnvelopeWarning(
                code="retried",
                message=f"The reply took {attempts} calls to the provider (retries or re-asks).",
            )
        )
    if ai_usage.high_usage(today_tokens):
        budget = get_settings().ai_token_budget_daily
        warnings.append(
            EnvelopeWarning(
                code="high_token_usage",
                message=f"{today_tokens} of today's {budget} tokens are used.",
            )
        )
    return warnings


# -- streaming -----------------------------------------------------------------------------------


def sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def open_stream(
    request: ChatRequest,
    owner: str,
    *,
    endpoint: str = "stream",
    schema: dict[str, Any] | None = None,
    on_done: Callable[[ChatResponse], None] | None = None,
) -> Iterator[str]:
    """Admit the call and open the upstream stream now, so that everything that can fail before
    the first token raises an APIError; then return the server-sent events as they come.

    `on_done` runs with the whole reply once the stream has finished successfully.
    """
    provider = get_provider()
    reservation = ai_usage.reserve(owner, reserve_estimate(request))
    record = ai_usage.UsageRecord(endpoint=endpoint, provider=provider.name, model=request.model)
    started = time.perf_counter()
    if schema is not None:
        request = structured_request(request, schema)
    try:
        chunks, attempts = call_with_retries(lambda: provider.stream(request), retry_policy())
    except ProviderError as exc:
        record.status = _status(exc)
        record.latency_ms = (time.perf_counter() - started) * 1000
        ai_usage.settle(reservation, record)
        _observe(record)
        raise to_api_error(exc) from exc
    return _events(
        chunks, provider, request, reservation, record, started, attempts, schema, on_done
    )


def _events(
    chunks: Iterator[Any],
    provider: Provider,
    request: ChatRequest,
    reservation: ai_usage.Reservation,
    record: ai_usage.UsageRecord,
    started: float,
    attempts: int,
    schema: dict[str, Any] | None,
    on_done: Callable[[ChatResponse], None] | None,
) -> Iterator[str]:
    parts: list[str] = []
    usage: Usage | None = None
    finish_reason = "stop"
    first_token_after: float | None = None
    record.status = "client_closed"  # until the stream ends one way or the other
    settled: list[int] = []

    def settle() -> int:
        if not settled:
            record.latency_ms = (time.perf_counter() - started) * 1000
            settled.append(ai_usage.settle(reservation, record))
            _observe(record, first_token_after)
        return settled[0]

    try:
        for chunk in chunks:
            if chunk.model:
                record.model = chunk.model
            if chunk.usage is not None:
                usage = chunk.usage
            if chunk.finish_reason:
                finish_reason = chunk.finish_reason
            if chunk.delta:
                if first_token_after is None:
                    first_token_after = time.perf_counter() - started
                parts.append(chunk.delta)
                yield sse("delta", {"content": chunk.delta})
        content = "".join(parts)
        usage = usage or Usage(
            sum(estimate_tokens(m.content) for m in request.messages), estimate_tokens(content)
        )
        done: dict[str, Any] = {
            "finish_reason": finish_reason,
            "usage": _token_usage(usage).model_dump(),
            "model": record.model,
        }
        if schema is not None:
            done["parsed"] = parse_reply(content, schema)
        record.status = "ok"
        record.prompt_tokens, record.completion_tokens = (
            usage.prompt_tokens,
            usage.completion_tokens,
        )
        if on_done is not None:
            on_done(ChatResponse(content, finish_reason, record.model, usage))
        today = settle()
        warnings = build_warnings(provider, finish_reason, attempts, today)
        done["warnings"] = [w.model_dump() for w in warnings]
        yield sse("done", done)
    except InvalidOutputError as exc:
        record.status = AIProviderError.code
        yield sse(
            "error",
            {
                "code": AIProviderError.code,
                "message": "The model's reply did not match the schema.",
                "details": {"errors": exc.errors},
            },
        )
    except ProviderError as exc:
        error = to_api_error(exc)
        record.status = error.code
        yield sse("error", {"code": error.code, "message": error.message})
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # the client may have gone: stop the upstream call too
        if not settled and usage is None and parts:  # cut short: count what was generated
            record.prompt_tokens = sum(estimate_tokens(m.content) for m in request.messages)
            record.completion_tokens = estimate_tokens("".join(parts))
        settle()


# -- recipes -------------------------------------------------------------------------------------


def generate_recipe(body: RecipeRequest, owner: str) -> tuple[RecipeOut, list[EnvelopeWarning]]:
    """A validated recipe from the ingredients; re-asked like any structured output."""
    user_prompt = prompt("recipe").format(
        ingredients=", ".join(body.ingredients),
        dietary_restrictions=", ".join(body.dietary_restrictions) or "none",
        cuisine_type=body.cuisine_type or "any",
        cooking_time_max=f"{body.cooking_time_max} minutes" if body.cooking_time_max else "any",
    )
    request = chat_request(
        [Message("system", prompt("system")), Message("user", user_prompt)], temperature=0.7
    )
    result = run(request, owner, endpoint="recipe", schema=Recipe.model_json_schema(), model=Recipe)
    recipe = Recipe.model_validate(result.data.parsed)
    return RecipeOut(
        recipe=recipe, confidence_score=confidence(body, recipe, result)
    ), result.warnings


def confidence(body: RecipeRequest, recipe: Recipe, result: CompletionResult) -> float:
    """How well the recipe answers the request: the share of the asked-for ingredients it uses,
    less a tenth if it needed retries or re-asks and a quarter if it was cut off."""
    used = " ".join(i.item.lower() for i in recipe.ingredients)
    covered = sum(1 for wanted in body.ingredients if wanted.strip().lower() in used)
    score = covered / len(body.ingredients)
    score -= 0.1 * sum(1 for w in result.warnings if w.code == "retried")
    if result.data.finish_reason == "length":
        score -= 0.25
    return round(min(1.0, max(0.0, score)), 2)


# -- operations ----------------------------------------------------------------------------------


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
