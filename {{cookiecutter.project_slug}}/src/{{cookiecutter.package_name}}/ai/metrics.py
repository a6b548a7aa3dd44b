"""Prometheus metrics of AI calls (counts by outcome, tokens, latency, time to first token) and
of the tools they call."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter, Histogram

from .usage import UsageRecord

if TYPE_CHECKING:
    from .agent import Step

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


def observe(record: UsageRecord, first_token_after: float | None = None) -> None:
    AI_REQUESTS.labels(record.provider, record.model, record.endpoint, record.status).inc()
    AI_TOKENS.labels(record.provider, record.model, "prompt").inc(record.prompt_tokens)
    AI_TOKENS.labels(record.provider, record.model, "completion").inc(record.completion_tokens)
    if not record.cached:
        AI_LATENCY.labels(record.provider, record.model).observe(record.latency_ms / 1000)
    if first_token_after is not None:
        AI_TIME_TO_FIRST_TOKEN.labels(record.provider, record.model).observe(first_token_after)


AI_TOOL_CALLS = Counter(
    "ai_tool_calls_total", "Tool calls by tool and outcome.", ["tool", "outcome"]
)

AI_TOOL_DURATION = Histogram(
    "ai_tool_duration_seconds",
    "Time a tool took (until its timeout, when it overran).",
    ["tool"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)


def observe_tool(tool: str, step: Step) -> None:
    """`tool` is "unknown" for a name that was not offered, so the labels stay bounded."""
    AI_TOOL_CALLS.labels(tool, step.outcome).inc()
    AI_TOOL_DURATION.labels(tool).observe(step.duration_ms / 1000)
