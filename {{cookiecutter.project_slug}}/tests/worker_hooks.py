"""Fault injection for test_worker.py, imported by its Celery worker (`--include`), not by pytest.

While the Redis key named by WORKER_HOLD_KEY holds "before" (or "after"), a job stops before its
body runs (or after it ran, before its message is acknowledged), writes its id to
`<key>:holding` and waits until the key is deleted: the test kills the worker right then. A test
lets go of a job it is not waiting for by deleting `<key>:holding`.
`<key>:runs:<task id>` and `<key>:done:<task id>` count how often each job started and ended.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis
from celery.signals import task_postrun, task_prerun

HOLD_KEY = os.environ.get("WORKER_HOLD_KEY", "")
MAX_HOLD = 30.0  # seconds: a forgotten hold cannot wedge the worker for long


def hold(phase: str, task_id: str) -> None:
    with redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True) as client:
        # How often each job started and finished running.
        client.incr(f"{HOLD_KEY}:{'runs' if phase == 'before' else 'done'}:{task_id}")
        if client.get(HOLD_KEY) != phase:
            return
        holding = f"{HOLD_KEY}:holding"
        client.set(holding, task_id)
        deadline = time.monotonic() + MAX_HOLD
        while time.monotonic() < deadline and client.exists(HOLD_KEY):
            if client.get(holding) != task_id:
                return
            time.sleep(0.05)


def hold_before(task_id: str, **_: Any) -> None:
    hold("before", task_id)


def hold_after(task_id: str, **_: Any) -> None:
    hold("after", task_id)


if HOLD_KEY:
    task_prerun.connect(hold_before)
    task_postrun.connect(hold_after)
