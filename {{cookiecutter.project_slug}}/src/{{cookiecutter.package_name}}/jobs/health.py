"""The worker's heartbeat as `/health` sees it, and the job counts on `/metrics`."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import redis
from flask import current_app, has_app_context
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from ..core.health import Check, elapsed_ms
from .celery_app import PACKAGE, FlaskCelery

logger = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = 10.0  # seconds between a worker's heartbeats
HEARTBEAT_MAX_AGE = 3 * HEARTBEAT_INTERVAL  # older than this: the worker is presumed gone


def check_worker() -> Check:
    """A Celery worker has reported in lately (disabled when jobs run in the web process)."""
    started = time.perf_counter()
    celery: FlaskCelery = current_app.extensions["celery"]
    if celery.service_settings.broker_url is None:
        return Check(
            status="disabled", detail="no broker: jobs run inside the web process (eager mode)"
        )
    try:
        heartbeat = celery.jobs.heartbeat()
    except redis.RedisError as exc:
        return Check(status="error", detail=type(exc).__name__)
    if heartbeat is None:
        return Check(status="error", detail="no worker has reported in")
    age = time.time() - float(heartbeat["at"])
    if age > HEARTBEAT_MAX_AGE:
        return Check(status="error", detail=f"the last worker heartbeat is {age:.0f} s old")
    detail = f"{heartbeat['hostname']} reported {age:.0f} s ago"
    return Check(status="ok", detail=detail, latency_ms=elapsed_ms(started))


class JobMetrics(Collector):
    """`background_jobs_total{task,event}` on `/metrics`, counted by every process in the store.

    Read at scrape time, so the web app reports what its workers did.
    """

    def describe(self) -> Iterator[CounterMetricFamily]:
        yield self._family()

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = self._family()
        if has_app_context() and "celery" in current_app.extensions:
            celery: FlaskCelery = current_app.extensions["celery"]
            names = sorted(name for name in celery.tasks if name.startswith(f"{PACKAGE}."))
            try:
                counts = celery.jobs.counts(names)
            except redis.RedisError as exc:
                logger.warning("job metrics unavailable: %s", exc)
                counts = {}
            for (name, event), value in counts.items():
                family.add_metric([name.removeprefix(f"{PACKAGE}."), event], value)
        yield family

    @staticmethod
    def _family() -> CounterMetricFamily:
        return CounterMetricFamily(
            "background_jobs", "Background jobs by task and event.", labels=["task", "event"]
        )
