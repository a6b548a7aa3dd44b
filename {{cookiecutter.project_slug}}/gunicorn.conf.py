"""Gunicorn settings, all overridable from the environment.

    gunicorn -c gunicorn.conf.py "{{ cookiecutter.package_name }}:create_app()"

Threaded workers (gthread): an AI call or a stream waits on the network, so a thread per
request keeps a worker responsive without an async stack.
"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path
from typing import Any


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


bind = os.environ.get("GUNICORN_BIND") or f"0.0.0.0:{_int('PORT', 8000)}"
worker_class = "gthread"
# WEB_CONCURRENCY is the usual knob of container platforms; cap the default for small hosts.
workers = _int("WEB_CONCURRENCY", min(multiprocessing.cpu_count() * 2 + 1, 8))
threads = _int("GUNICORN_THREADS", 8)

# A gthread worker keeps reporting while its threads wait, so `timeout` only catches a hung
# process{% if cookiecutter.ai_provider != "none" %}; slow AI calls are bounded by AI_TIMEOUT in the app{% endif %}.
timeout = _int("GUNICORN_TIMEOUT", 120)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Longer than a reverse proxy's idle upstream keepalive (60 s), so the proxy closes first.
keepalive = _int("GUNICORN_KEEPALIVE", 75)

# Worker recycling is off (gunicorn's default): a new worker imports the whole app again, which
# stalls its requests for a second or so. Set GUNICORN_MAX_REQUESTS to bound a slow leak; the
# jitter keeps workers from restarting all at once.
max_requests = _int("GUNICORN_MAX_REQUESTS", 0)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 100)

# Each worker builds its own app after the fork: its database pool and, with tracing on, the
# thread that exports its spans belong to the process that uses them.
preload_app = False

# The app writes its own JSON access log line per request; gunicorn's would repeat it.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()

# Heartbeat files on tmpfs: a container's overlay filesystem can stall the heartbeat.
if Path("/dev/shm").is_dir():  # noqa: S108 - a directory, not a temp file name
    worker_tmp_dir = "/dev/shm"  # noqa: S108


def post_worker_init(worker: Any) -> None:
    """Run the app's warm-ups (see core/health.py) after the app is loaded and before this
    worker accepts a request, so that no user waits for them."""
    app = worker.wsgi
    if "warm_ups" in getattr(app, "extensions", {}):  # this service's app (not another one)
        from {{ cookiecutter.package_name }}.core.health import warm_up

        warm_up(app)
