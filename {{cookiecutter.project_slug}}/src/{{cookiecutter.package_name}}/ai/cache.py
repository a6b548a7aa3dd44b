"""The response cache of deterministic (temperature 0) calls: Redis when REDIS_URL is set,
else a small LRU per process."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from typing import Any

import redis
from flask import current_app
from pydantic import BaseModel

from ..core.extensions import redis_store
from .base import ChatRequest, ChatResponse, Provider, Usage
from .settings import ai_settings
from .structured import parse_reply

logger = logging.getLogger(__name__)

CACHE_PREFIX = "ai:cache:"
MEMORY_CACHE_SIZE = 1024


def cache_key(parts: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
    return CACHE_PREFIX + digest


class MemoryCache:
    """A small LRU with expiry, for when REDIS_URL is unset (one per process)."""

    def __init__(self, size: int = MEMORY_CACHE_SIZE) -> None:
        self._items: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            if item[0] < time.monotonic():
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return item[1]

    def set(self, key: str, value: str, ttl: int) -> None:
        with self._lock:
            self._items[key] = (time.monotonic() + ttl, value)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> int:
        with self._lock:
            count = len(self._items)
            self._items.clear()
            return count


def _memory_cache() -> MemoryCache:
    cache: MemoryCache = current_app.extensions.setdefault("ai_cache", MemoryCache())
    return cache


def cache_get(key: str) -> dict[str, Any] | None:
    try:
        raw = (
            redis_store.client.get(key)
            if redis_store.client is not None
            else _memory_cache().get(key)
        )
    except redis.RedisError as exc:
        logger.warning("AI cache unavailable: %s", exc)
        return None
    if not isinstance(raw, str):
        return None
    value: dict[str, Any] = json.loads(raw)
    return value


def cache_set(key: str, value: dict[str, Any]) -> None:
    ttl = ai_settings().ai_cache_ttl
    if not ttl:
        return
    raw = json.dumps(value)
    try:
        if redis_store.client is not None:
            redis_store.client.set(key, raw, ex=ttl)
        else:
            _memory_cache().set(key, raw, ttl)
    except redis.RedisError as exc:
        logger.warning("AI cache unavailable: %s", exc)


def cache_clear() -> int:
    """Remove every cached AI response; returns how many."""
    if redis_store.client is None:
        return _memory_cache().clear()
    keys = list(redis_store.client.scan_iter(match=CACHE_PREFIX + "*", count=500))
    if keys:
        redis_store.client.delete(*keys)
    return len(keys)


def request_key(
    provider: Provider, request: ChatRequest, schema: dict[str, Any] | None
) -> str | None:
    # Only deterministic requests are worth replaying.
    if request.temperature != 0 or not ai_settings().ai_cache_ttl:
        return None
    return cache_key(
        {
            "provider": provider.name,
            "model": request.model,
            "messages": [[m.role, m.content] for m in request.messages],
            "max_tokens": request.max_tokens,
            "schema": schema,
        }
    )


def to_cached(response: ChatResponse) -> dict[str, Any]:
    return {
        "content": response.content,
        "finish_reason": response.finish_reason,
        "model": response.model,
        "usage": [response.usage.prompt_tokens, response.usage.completion_tokens],
    }


def from_cached(
    value: dict[str, Any], schema: dict[str, Any] | None, model: type[BaseModel] | None
) -> tuple[ChatResponse, Any]:
    response = ChatResponse(
        content=value["content"],
        finish_reason=value["finish_reason"],
        model=value["model"],
        usage=Usage(*value["usage"]),
    )
    return response, parse_reply(response.content, schema, model) if schema else None
