"""What the service keeps about its jobs beside Celery's own results."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any, Literal

import redis

from .settings import JobsSettings

logger = logging.getLogger(__name__)

JobEvent = Literal["queued", "started", "retried", "succeeded", "failed"]
JOB_EVENTS: tuple[JobEvent, ...] = ("queued", "started", "retried", "succeeded", "failed")


class JobStore:
    """What the service keeps about its jobs, beside Celery's own results.

    Records (who queued a job), finished results (so that a redelivered job returns the first
    outcome instead of running again), event counts and the worker heartbeat. In Redis (the
    result backend) when there is a broker; in process memory when jobs run eagerly.
    """

    def __init__(self, settings: JobsSettings) -> None:
        self.prefix = f"{settings.celery_queue}:jobs:"
        self.expires = settings.celery_result_expires
        backend = settings.result_backend if settings.broker_url else None
        self.client: redis.Redis | MemoryKV = (
            redis.Redis.from_url(
                backend, decode_responses=True, socket_timeout=3, socket_connect_timeout=3
            )
            if backend
            else MemoryKV()
        )

    def put_record(self, task_id: str, record: dict[str, Any]) -> None:
        self.client.set(f"{self.prefix}record:{task_id}", json.dumps(record), ex=self.expires)

    def record(self, task_id: str) -> dict[str, Any] | None:
        return _loads(self.client.get(f"{self.prefix}record:{task_id}"))

    def put_result(self, task_id: str, result: dict[str, Any]) -> None:
        self.client.set(f"{self.prefix}result:{task_id}", json.dumps(result), ex=self.expires)

    def result(self, task_id: str) -> dict[str, Any] | None:
        return _loads(self.client.get(f"{self.prefix}result:{task_id}"))

    def count(self, task_name: str, event: JobEvent) -> None:
        try:
            self.client.incr(f"{self.prefix}count:{task_name}:{event}")
        except redis.RedisError:
            logger.warning("could not count job event %s of %s", event, task_name)

    def counts(self, task_names: list[str]) -> dict[tuple[str, JobEvent], int]:
        keys = [(name, event) for name in task_names for event in JOB_EVENTS]
        values = self.client.mget([f"{self.prefix}count:{name}:{event}" for name, event in keys])
        return {key: int(value or 0) for key, value in zip(keys, values, strict=True)}

    def beat(self, hostname: str) -> None:
        heartbeat = {"hostname": hostname, "at": time.time()}
        self.client.set(f"{self.prefix}heartbeat", json.dumps(heartbeat), ex=self.expires)

    def heartbeat(self) -> dict[str, Any] | None:
        return _loads(self.client.get(f"{self.prefix}heartbeat"))


class MemoryKV:
    """The few Redis commands JobStore uses, in process memory (eager mode)."""

    def __init__(self) -> None:
        self._data: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        return self._data.get(key)

    def mget(self, keys: list[str]) -> list[str | None]:
        return [self._data.get(key) for key in keys]

    def set(self, key: str, value: str, ex: int | None = None) -> bool:
        self._data[key] = value
        return True

    def incr(self, key: str) -> int:
        with self._lock:
            value = int(self._data.get(key, 0)) + 1
            self._data[key] = str(value)
        return value


def _loads(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    loaded: dict[str, Any] = json.loads(value)
    return loaded
