"""Retries and backoff for every provider, in one place."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from .base import ProviderError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """`max_retries` extra attempts after the first; waits grow from `backoff` seconds.

    A `Retry-After` from the provider is honoured when it is no longer than `max_wait`;
    a longer one is passed on to the client instead of holding a worker.
    """

    max_retries: int
    backoff: float
    max_wait: float

    def delay(self, attempt: int, error: ProviderError) -> float:
        if error.retry_after is not None:
            return error.retry_after
        # Full jitter keeps many clients from retrying in lockstep.
        return self.backoff * (2.0**attempt) * random.uniform(0.5, 1.0)  # noqa: S311


def call_with_retries(
    call: Callable[[], T], policy: RetryPolicy, sleep: Callable[[float], None] = time.sleep
) -> tuple[T, int]:
    """Run `call`, retrying retryable provider errors. Returns the result and the attempts made.

    The error that ends the loop gets an `attempts` attribute.
    """
    attempt = 0
    while True:
        try:
            return call(), attempt + 1
        except ProviderError as error:
            wait = policy.delay(attempt, error)
            if not error.retryable or attempt >= policy.max_retries or wait > policy.max_wait:
                error.attempts = attempt + 1
                raise
            sleep(wait)
            attempt += 1
