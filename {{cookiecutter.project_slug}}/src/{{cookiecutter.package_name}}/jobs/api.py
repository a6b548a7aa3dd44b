"""Background jobs: queue one (202 with its status URL), then poll `/api/v1/tasks/{task_id}`."""

from __future__ import annotations

from flask import Response

from ..core.blueprint import API_PREFIX, api_blueprint
from ..core.identity import current_caller
from ..core.responses import Envelope, ErrorEnvelope, envelope
from . import reports, service
from .models import TaskAccepted, TaskPath, TaskStatus

# 503 while the broker is unreachable.
tasks_bp = api_blueprint("tasks", __name__, url_prefix=f"{API_PREFIX}/tasks", errors=(503,))


@tasks_bp.post("/items-report", responses={202: Envelope[TaskAccepted]})
def queue_items_report() -> Response:
    """Queue a report on the items you may see.

    Poll `status_url` for it."""
    accepted = reports.queue_items_report(current_caller())
    return envelope(accepted, message="Report queued.", status=202)


@tasks_bp.get("/<task_id>", responses={200: Envelope[TaskStatus], 404: ErrorEnvelope})
def get_task_status(path: TaskPath) -> Response:
    """A job's status, and its result or error once finished (only jobs you may see)."""
    status, warnings = service.task_status(path.task_id, current_caller())
    return envelope(status, warnings=warnings)
