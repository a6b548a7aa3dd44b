"""One AI completion as the API and background jobs need it: budget, cache, retries,
structured output, the tool loop, usage accounting, metrics and the envelope's warnings.

Everything here needs an app context, never a request: `complete()` is what a background job
calls. The caller is identified by an `owner` key (`Caller.key`); tools run for the `Caller`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from pydantic import BaseModel

from ..core.identity import Caller
from ..core.responses import EnvelopeWarning
from . import cache, usage
from .agent import AgentRun, Toolbox
from .base import (
    ChatRequest,
    ChatResponse,
    Message,
    Provider,
    ProviderError,
    Usage,
    message_tokens,
)
from .errors import AIProviderError, outcome, to_api_error
from .metrics import observe
from .models import CompletionOut, CompletionRequest, TokenUsage, ToolStep
from .retry import RetryPolicy, call_with_retries
from .settings import ai_settings
from .structured import StructuredOutputError, complete_structured
from .tools import get_tools

logger = logging.getLogger(__name__)

DEFAULT_RESERVE_TOKENS = 256  # budget reserved for a reply when the caller sets no max_tokens


def get_provider() -> Provider:
    """The app's provider (built from its settings when the app was)."""
    provider: Provider = current_app.extensions["ai_provider"]
    return provider


def retry_policy() -> RetryPolicy:
    settings = ai_settings()
    return RetryPolicy(
        max_retries=settings.ai_max_retries,
        backoff=settings.ai_retry_backoff,
        max_wait=settings.ai_timeout,
    )


@dataclass
class CompletionResult:
    """What `complete()` returns: the envelope's `data` and `warnings`, and the messages of the
    tool loop (each turn's tool calls and their results) for a conversation to keep."""

    data: CompletionOut
    warnings: list[EnvelopeWarning] = field(default_factory=list)
    turns: list[Message] = field(default_factory=list)


def chat_request(
    messages: Sequence[Message],
    *,
    temperature: float | None = None,
    max_tokens: int | None = None,
) -> ChatRequest:
    return ChatRequest(
        messages=tuple(messages),
        model=ai_settings().ai_model,
        temperature=temperature,
        max_tokens=max_tokens,
    )


def reserve_estimate(request: ChatRequest) -> int:
    prompt_tokens = sum(message_tokens(m) + 4 for m in request.messages)
    return prompt_tokens + (request.max_tokens or DEFAULT_RESERVE_TOKENS)


def toolbox(names: Sequence[str] | None, caller: Caller, max_steps: int) -> Toolbox | None:
    """The tools a request offers (their names are validated with the request body)."""
    if not names:
        return None
    return Toolbox(get_tools(names), caller, max_steps)


def complete(
    body: CompletionRequest, caller: Caller, *, request_id: str | None = None
) -> CompletionResult:
    """Run one completion for `caller` (budget, cache, retries, structured output, tools,
    accounting).

    Raises BudgetExceeded (429), AIProviderError (502), AIUnavailable (503, Retry-After) or
    AITimeout (504). With `request_id`, a repeated call (a re-delivered job) is counted once.
    """
    request = chat_request(
        [Message(m.role, m.content) for m in body.messages],
        temperature=body.temperature,
        max_tokens=body.max_tokens,
    )
    return run(
        request,
        caller.key,
        endpoint="complete",
        schema=body.response_schema,
        request_id=request_id,
        tools=toolbox(body.tools, caller, body.max_steps),
    )


def run(
    request: ChatRequest,
    owner: str,
    *,
    endpoint: str,
    schema: dict[str, Any] | None = None,
    model: type[BaseModel] | None = None,
    request_id: str | None = None,
    tools: Toolbox | None = None,
) -> CompletionResult:
    """The shared path of every non-streamed call. With `tools` the model may call them."""
    provider = get_provider()
    agent = AgentRun(provider, tools, retry_policy()) if tools is not None else None
    reservation = usage.reserve(owner, reserve_estimate(request))
    record = usage.UsageRecord(
        endpoint=endpoint, provider=provider.name, model=request.model, request_id=request_id
    )
    started = time.perf_counter()
    attempts = 1
    record.status = "error"  # until the call has an outcome
    try:
        # A tool's result may change from one call to the next: such replies are not cached.
        key = None if agent is not None else cache.request_key(provider, request, schema)
        cached = cache.cache_get(key) if key else None
        if cached is not None:
            response, parsed = cache.from_cached(cached, schema, model)
            record.cached = True
        else:
            response, parsed, attempts = _call(provider, request, schema, model, agent)
            record.prompt_tokens = response.usage.prompt_tokens
            record.completion_tokens = response.usage.completion_tokens
            if key:
                cache.cache_set(key, cache.to_cached(response))
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
                "usage": token_usage(exc.usage).model_dump(),
            },
        ) from exc
    except ProviderError as exc:
        record.status = outcome(exc)
        logger.warning("AI call failed: %s", exc.message, extra={"attempts": exc.attempts})
        error = to_api_error(exc)
        if agent is not None:  # the model calls that did finish still count
            record.prompt_tokens = agent.usage.prompt_tokens
            record.completion_tokens = agent.usage.completion_tokens
            error.details = {
                **(error.details or {}),
                "steps": len(agent.steps),
                "usage": token_usage(agent.usage).model_dump(),
            }
        raise error from exc
    finally:
        record.latency_ms = (time.perf_counter() - started) * 1000
        today = usage.settle(reservation, record)
        observe(record)
    data = CompletionOut(
        content=response.content,
        finish_reason=response.finish_reason,
        model=record.model,
        usage=token_usage(response.usage),
        parsed=parsed.model_dump(mode="json") if isinstance(parsed, BaseModel) else parsed,
        cached=record.cached,
        steps=[ToolStep(**step.as_dict()) for step in agent.steps] if agent else [],
    )
    warnings = build_warnings(provider, response.finish_reason, attempts, today)
    if agent is None:
        return CompletionResult(data, warnings)
    return CompletionResult(data, warnings + agent.warnings(), agent.turns)


def _call(
    provider: Provider,
    request: ChatRequest,
    schema: dict[str, Any] | None,
    model: type[BaseModel] | None,
    agent: AgentRun | None,
) -> tuple[ChatResponse, Any, int]:
    policy = retry_policy()

    def call(current: ChatRequest) -> tuple[ChatResponse, int]:
        if agent is not None:
            return agent.complete(current)
        return call_with_retries(lambda: provider.complete(current), policy)

    if schema is None:
        response, attempts = call(request)
        return response, None, attempts
    result = complete_structured(
        call, request, schema, max_reasks=ai_settings().ai_max_retries, model=model
    )
    return result.response, result.parsed, result.attempts


def token_usage(usage: Usage) -> TokenUsage:
    return TokenUsage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )


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
    if usage.high_usage(today_tokens):
        budget = ai_settings().ai_token_budget_daily
        warnings.append(
            EnvelopeWarning(
                code="high_token_usage",
                message=f"{today_tokens} of today's {budget} tokens are used.",
            )
        )
    return warnings
