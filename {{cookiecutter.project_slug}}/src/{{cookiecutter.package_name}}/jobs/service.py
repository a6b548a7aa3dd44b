"""Queueing background jobs and reporting their status to the caller who queued them."""

from __future__ import annotations

import uuid
from typing import Any

import redis
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from flask import current_app
from kombu.exceptions import OperationalError

from ..core.errors import APIError, NotFound, ServiceUnavailable
from ..core.identity import Caller
from ..core.responses import EnvelopeWarning
from .celery_app import FlaskCelery
from .models import TaskAccepted, TaskError, TaskState, TaskStatus

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
    caller: Caller,
    kwargs: dict[str, Any] | None = None,
) -> TaskAccepted:
    """Record who queued the job, then queue it; 503 when the queue is unreachable."""
    app = celery()
    task_id = str(uuid.uuid4())
    try:
        app.jobs.put_record(task_id, {"task": task_name, "owner": caller.key})
        app.tasks[task_name].apply_async(kwargs=kwargs or {}, task_id=task_id)
    except _QUEUE_DOWN as exc:
        raise ServiceUnavailable("The job queue is unavailable.") from exc
    app.jobs.count(task_name, "queued")
    return TaskAccepted(task_id=task_id, status_url=STATUS_URL.format(task_id=task_id))


def task_status(task_id: str, caller: Caller) -> tuple[TaskStatus, list[EnvelopeWarning]]:
    """The job's state, its result or error once it has one, and the result's warnings.

    404 for an unknown id or a job the caller may not see (another user's).
    """
    app = celery()
    try:
        record = app.jobs.record(task_id)
        if record is None or not (caller.sees_all() or record["owner"] == caller.key):
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
