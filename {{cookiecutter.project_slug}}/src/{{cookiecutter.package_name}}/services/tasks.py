"""Queueing background jobs and reporting their status{% if cookiecutter.use_auth %}, to the user who queued them{% endif %}."""

from __future__ import annotations

import uuid
from typing import Any

import redis
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from flask import current_app
from kombu.exceptions import OperationalError

from ..errors import APIError, {% if cookiecutter.ai_provider != "none" %}BudgetExceeded, {% endif %}NotFound, ServiceUnavailable
{%- if cookiecutter.ai_provider != "none" %}
from ..models.ai import CompletionRequest
{%- endif %}
from ..models.task import TaskAccepted, TaskError, TaskState, TaskStatus
{%- if cookiecutter.use_auth %}
from ..models.user import User
{%- endif %}
from ..responses import EnvelopeWarning
{%- if cookiecutter.ai_provider != "none" %}
from ..tasks import AI_COMPLETION, ITEMS_REPORT, FlaskCelery
from .ai_usage import seconds_to_midnight, usage_summary
{%- else %}
from ..tasks import ITEMS_REPORT, FlaskCelery
{%- endif %}

STATUS_URL = "/api/v1/tasks/{task_id}"
# Celery's other states, as the five the API reports.
_STATES: dict[str, TaskState] = {
    "PENDING": "PENDING",
    "RECEIVED": "PENDING",
    "STARTED": "STARTED",
    "RETRY": "RETRY",
    "SUCCESS": "SUCCESS",
    "FAILURE": "FAILURE",
    "REVOKED": "FAILURE",
    "REJECTED": "FAILURE",
}
_QUEUE_DOWN = (redis.RedisError, OperationalError, OSError)


def celery() -> FlaskCelery:
    app: FlaskCelery = current_app.extensions["celery"]
    return app


def queue_job(
    task_name: str,
    *,
    owner_id: int | None,
    kwargs: dict[str, Any] | None = None,
) -> TaskAccepted:
    """Record who queued the job, then queue it; 503 when the queue is unreachable."""
    app = celery()
    task_id = str(uuid.uuid4())
    try:
        app.jobs.put_record(task_id, {"task": task_name, "owner_id": owner_id})
        app.tasks[task_name].apply_async(kwargs=kwargs or {}, task_id=task_id)
    except _QUEUE_DOWN as exc:
        raise ServiceUnavailable("The job queue is unavailable.") from exc
    app.jobs.count(task_name, "queued")
    return TaskAccepted(task_id=task_id, status_url=STATUS_URL.format(task_id=task_id))


def queue_items_report({% if cookiecutter.use_auth %}user: User{% endif %}) -> TaskAccepted:
{%- if cookiecutter.use_auth %}
    return queue_job(ITEMS_REPORT, owner_id=user.id, kwargs={"user_id": user.id})
{%- else %}
    return queue_job(ITEMS_REPORT, owner_id=None)
{%- endif %}
{%- if cookiecutter.ai_provider != "none" %}


def queue_ai_completion(body: CompletionRequest, owner: str{% if cookiecutter.use_auth %}, user: User{% endif %}) -> TaskAccepted:
    """Queue a completion for `owner`; refused at once (429) when today's budget is spent."""
    usage = usage_summary(owner)
    if usage.remaining == 0:
        raise BudgetExceeded(
            details={"budget": usage.budget, "resets_in_seconds": seconds_to_midnight()},
            headers={"Retry-After": str(seconds_to_midnight())},
        )
    return queue_job(
        AI_COMPLETION,
        owner_id={% if cookiecutter.use_auth %}user.id{% else %}None{% endif %},
        kwargs={"body": body.model_dump_json(exclude_unset=True), "owner": owner},
    )
{%- endif %}


def task_status(task_id: str{% if cookiecutter.use_auth %}, user: User{% endif %}) -> tuple[TaskStatus, list[EnvelopeWarning]]:
    """The job's state, its result or error once it has one, and the result's warnings.

    404 for an unknown id{% if cookiecutter.use_auth %} or another user's job (admins see every job){% endif %}.
    """
    app = celery()
    try:
        record = app.jobs.record(task_id)
{%- if cookiecutter.use_auth %}
        if record is None or (record["owner_id"] != user.id and user.role != "admin"):
{%- else %}
        if record is None:
{%- endif %}
            raise NotFound(f"Task {task_id} not found.")
        result = app.AsyncResult(task_id)
        state = _STATES.get(result.state, "PENDING")
        outcome, retries = result.result, result.retries or 0
    except _QUEUE_DOWN as exc:
        raise ServiceUnavailable("The job queue is unavailable.") from exc
    status = TaskStatus(task_id=task_id, status=state, retries=retries)
    warnings: list[EnvelopeWarning] = []
    if state == "SUCCESS" and isinstance(outcome, dict):
        # A job's result may carry the warnings its envelope would have had.
        warnings = [EnvelopeWarning(**warning) for warning in outcome.pop("warnings", [])]
        status.result = outcome
    elif state in ("FAILURE", "RETRY"):
        status.error = describe_error(outcome)
    return status, warnings


def describe_error(exc: object) -> TaskError:
    """What a client may learn about a failure: our error codes; nothing internal."""
    if isinstance(exc, APIError):
        return TaskError(code=exc.code, message=exc.message)
    if isinstance(exc, SoftTimeLimitExceeded | TimeLimitExceeded):
        return TaskError(code="job_timeout", message="The job ran out of time.")
    return TaskError(code="internal_error", message="The job failed.")
