"""Request ids, structured logging and Prometheus metrics."""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import time
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, request
from prometheus_client import Counter, Histogram

from .settings import Settings

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests handled.", ["method", "endpoint", "status"]
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency.",
    ["method", "endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

# A request's series, looked up once per (method, route, status): prometheus-client checks
# the label values and takes a lock on every `labels()` call.
_series: dict[tuple[str, str, str], tuple[Any, Any]] = {}


def _request_series(method: str, endpoint: str, status: str) -> tuple[Any, Any]:
    key = (method, endpoint, status)
    series = _series.get(key)
    if series is None:
        series = _series[key] = (
            HTTP_REQUESTS.labels(method, endpoint, status),
            HTTP_LATENCY.labels(method, endpoint),
        )
    return series


_STANDARD_RECORD_KEYS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with any `extra=` fields and the request id."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD_RECORD_KEYS})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            try:
                record.request_id = g.get("request_id")
            except RuntimeError:  # outside an app context
                record.request_id = None
        return True


# Filters added at run time (tracing's trace ids): they stay on when logging is set up again.
_log_filters: list[logging.Filter] = []


def add_log_filter(log_filter: logging.Filter) -> None:
    """Run `log_filter` on every log line from now on."""
    _log_filters.append(log_filter)
    for handler in logging.getLogger().handlers:
        handler.addFilter(log_filter)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stdout)
    if settings.log_style == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s")
        )
    handler.addFilter(RequestIdFilter())
    for log_filter in _log_filters:
        handler.addFilter(log_filter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    # Alembic narrates every step at INFO; `flask db` prints its own one-line summary.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # One line per request, ours (with its request id and duration), not also werkzeug's.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


access_log = logging.getLogger("access")


def init_observability(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if _VALID_REQUEST_ID.match(incoming) else secrets.token_hex(16)
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        request_id = g.get("request_id") or secrets.token_hex(16)
        response.headers[REQUEST_ID_HEADER] = request_id
        duration = time.perf_counter() - g.get("started", time.perf_counter())
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        count, latency = _request_series(request.method, endpoint, str(response.status_code))
        count.inc()
        latency.observe(duration)
        if not endpoint.startswith("/health") and access_log.isEnabledFor(logging.INFO):
            # The line is built here, once: no %-formatting later, no request id lookup.
            method, path, status = request.method, request.path, response.status_code
            milliseconds = round(duration * 1000, 2)
            access_log.info(
                f"{method} {path} {status} {milliseconds:.1f} ms",
                extra={
                    "request_id": request_id,
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_ms": milliseconds,
                },
            )
        return response
