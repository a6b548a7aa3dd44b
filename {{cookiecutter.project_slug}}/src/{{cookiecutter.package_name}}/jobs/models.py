"""Background jobs: what queueing one returns, and its status."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

TaskState = Literal["PENDING", "STARTED", "RETRY", "SUCCESS", "FAILURE"]


class TaskPath(BaseModel):
    task_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class TaskAccepted(BaseModel):
    task_id: str
    status_url: str


class TaskError(BaseModel):
    code: str
    message: str


class TaskStatus(BaseModel):
    task_id: str
    status: TaskState
    result: dict[str, Any] | None = None
    error: TaskError | None = None
    retries: int = 0
