"""The errors of AI calls: the daily budget, and the provider failing (502, 503, 504)."""

from __future__ import annotations

import math

from ..core.errors import APIError
from .base import ProviderError, ProviderTimeoutError, ProviderUnavailableError

DEFAULT_RETRY_AFTER = 5  # seconds suggested when the provider is unreachable and says nothing


class BudgetExceeded(APIError):
    status, code, message = 429, "budget_exceeded", "The daily token budget is used up."


class AIProviderError(APIError):
    status, code, message = 502, "ai_provider_error", "The AI provider returned an unusable reply."


class AIUnavailable(APIError):
    status, code, message = 503, "ai_unavailable", "The AI provider is unavailable."


class AITimeout(APIError):
    status, code, message = 504, "ai_timeout", "The AI provider did not answer in time."


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


def outcome(error: Exception) -> str:
    """The status a usage record and the metrics give a failed call."""
    return to_api_error(error).code if isinstance(error, ProviderError) else "error"
