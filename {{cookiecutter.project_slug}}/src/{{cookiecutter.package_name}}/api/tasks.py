"""Background jobs: queue one (202 with its status URL), then poll `/api/v1/tasks/{task_id}`."""

from __future__ import annotations

from flask import Response
{%- if cookiecutter.ai_provider != "none" %}
from flask_openapi3 import Tag

from ..models.ai import CompletionRequest
from ..models.task import TaskAccepted, TaskPath, TaskStatus
{%- else %}

from ..models.task import TaskAccepted, TaskPath, TaskStatus
{%- endif %}
from ..responses import Envelope, ErrorEnvelope, envelope
from ..services import tasks as service
{%- if cookiecutter.use_auth %}
from ..services.auth import current_user
{%- endif %}
{%- if cookiecutter.ai_provider != "none" %}
from .ai import caller
{%- endif %}
from .blueprint import API_PREFIX, api_blueprint

# Its routes live under /ai/jobs and /tasks; 503 while the broker is unreachable.
tasks_bp = api_blueprint("tasks", __name__, url_prefix=API_PREFIX, errors=(503,))


@tasks_bp.post("/tasks/items-report", responses={202: Envelope[TaskAccepted]})
def queue_items_report() -> Response:
    """Queue a report on {% if cookiecutter.use_auth %}your items (an admin's covers every item){% else %}the items{% endif %}; poll `status_url` for it."""
    accepted = service.queue_items_report({% if cookiecutter.use_auth %}current_user(){% endif %})
    return envelope(accepted, message="Report queued.", status=202)


@tasks_bp.get("/tasks/<task_id>", responses={200: Envelope[TaskStatus], 404: ErrorEnvelope})
def task_status(path: TaskPath) -> Response:
    """A job's status, and its result or error once finished{% if cookiecutter.use_auth %} (only your own jobs){% endif %}."""
    status, warnings = service.task_status(path.task_id{% if cookiecutter.use_auth %}, current_user(){% endif %})
    return envelope(status, warnings=warnings)
{%- if cookiecutter.ai_provider != "none" %}


@tasks_bp.post("/ai/jobs", tags=[Tag(name="ai")], responses={202: Envelope[TaskAccepted]})
def queue_ai_job(body: CompletionRequest) -> Response:
    """Queue a completion (the body of `/ai/complete`); its reply is the job's result."""
    accepted = service.queue_ai_completion(body, caller(){% if cookiecutter.use_auth %}, current_user(){% endif %})
    return envelope(accepted, message="Job queued.", status=202)
{%- endif %}
