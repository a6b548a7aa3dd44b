"""The LLM layer: a small provider protocol, one module per provider, retries and structured output.

Nothing here knows about Flask or HTTP requests; `services/ai.py` adds budgets, caching,
accounting and the envelope.
"""

from .base import (
    ChatRequest,
    ChatResponse,
    Message,
    Provider,
    ProviderBadReplyError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    StreamChunk,
    Usage,
)

__all__ = [
    "ChatRequest",
    "ChatResponse",
    "Message",
    "Provider",
    "ProviderBadReplyError",
    "ProviderError",
    "ProviderTimeoutError",
    "ProviderUnavailableError",
    "StreamChunk",
    "Usage",
]
