"""AI completions as background jobs: `POST /api/v1/ai/jobs` queues one for the worker, with the
body of `/ai/complete`; its reply is the job's result."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_openapi3 import OpenAPI

from ..core.blueprint import API_PREFIX, api_blueprint
from ..core.identity import current_caller
from ..core.responses import Envelope, envelope
from ..jobs.celery_app import PACKAGE, JobTask, job
from ..jobs.models import TaskAccepted
from ..jobs.service import queue_job
from ..jobs.store import JobStore
from .api import caller
from .completion import complete
from .models import CompletionRequest
from .usage import check_budget

AI_COMPLETION = f"{PACKAGE}.ai_completion"

# Under the `ai` tag with the other AI routes; 503 while the broker is unreachable.
ai_jobs_bp = api_blueprint(
    "ai_jobs", __name__, url_prefix=f"{API_PREFIX}/ai/jobs", errors=(503,), tag="ai"
)


@ai_jobs_bp.post("", responses={202: Envelope[TaskAccepted]})
def queue_completion(body: CompletionRequest) -> Response:
    """Queue a completion for the worker; its reply is the job's result.

    The body is that of `/ai/complete`. Refused at once (429) when today's budget is spent."""
    owner = caller()
    check_budget(owner)
    accepted = queue_job(
        AI_COMPLETION,
        caller=current_caller(),
        kwargs={"body": body.model_dump_json(exclude_unset=True), "owner": owner},
    )
    return envelope(accepted, message="Job queued.", status=202)


@job(AI_COMPLETION)
def ai_completion(task: JobTask, body: str, owner: str) -> dict[str, Any]:
    """One completion, as `POST /ai/complete` answers it, plus the warnings of its envelope.

    Never counted twice: a redelivered job that had finished returns its first result, and
    usage is recorded once per attempt (keyed by task id and attempt number).
    """
    task_id: str = task.request.id
    store: JobStore = task.app.jobs
    finished = store.result(task_id)
    if finished is not None:
        return finished
    result = complete(
        CompletionRequest.model_validate_json(body),
        owner,
        request_id=f"{task_id}:{task.request.retries}",
    )
    data = result.data.model_dump(mode="json")
    data["warnings"] = [warning.model_dump() for warning in result.warnings]
    store.put_result(task_id, data)
    return data


def init_app(app: OpenAPI) -> None:
    app.register_api(ai_jobs_bp)
