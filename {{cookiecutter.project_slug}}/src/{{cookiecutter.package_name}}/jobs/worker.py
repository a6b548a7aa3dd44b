"""The worker process: `celery -A {{ cookiecutter.package_name }}.tasks worker` loads this module.

Its Celery app reads the settings from the environment when a worker starts, never in the web
process (which has its own app). The signal handlers below only ever run in a worker: they set
up logging like the web app's, build the Flask app before the first job, and send the heartbeat
that `/health` reads.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import redis
from celery.signals import (
    setup_logging,
    worker_init,
    worker_process_init,
    worker_ready,
    worker_shutdown,
)

from ..core.observability import configure_logging
from ..core.settings import load_settings
from .celery_app import FlaskCelery, worker_flask_app
from .health import HEARTBEAT_INTERVAL
from .settings import JobsSettings
from .store import JobStore

logger = logging.getLogger(__name__)

celery_app = FlaskCelery(lambda: load_settings(JobsSettings))


def _worker_logging(**_: Any) -> None:
    # The worker logs like the web app (LOG_FORMAT, LOG_LEVEL) instead of Celery's own format.
    configure_logging(celery_app.service_settings)


def _warm_up(**_: Any) -> None:
    # Build the app as the worker starts: bad settings fail at once, and the first job is not
    # slowed down by imports (a provider's SDK among them).
    worker_flask_app()


_heartbeat_stop = threading.Event()


def _start_heartbeat(sender: Any, **_: Any) -> None:
    """Tell `/health` that a worker is up, every HEARTBEAT_INTERVAL seconds."""
    store: JobStore = sender.app.jobs
    hostname = str(sender.hostname)

    def beat() -> None:
        while True:
            try:
                store.beat(hostname)
            except redis.RedisError as exc:
                logger.warning("worker heartbeat failed: %s", exc)
            if _heartbeat_stop.wait(HEARTBEAT_INTERVAL):
                return

    _heartbeat_stop.clear()
    threading.Thread(target=beat, name="heartbeat", daemon=True).start()


def _stop_heartbeat(**_: Any) -> None:
    _heartbeat_stop.set()


setup_logging.connect(_worker_logging)
worker_init.connect(_warm_up)  # the solo and threads pools run jobs in this process
worker_process_init.connect(_warm_up)  # each prefork child
worker_ready.connect(_start_heartbeat)
worker_shutdown.connect(_stop_heartbeat)
