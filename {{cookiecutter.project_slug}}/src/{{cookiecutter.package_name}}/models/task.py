"""Background jobs: what queueing one returns, its status, and the items report it can compute."""

from __future__ import annotations

from datetime import datetime
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


class ItemsReport(BaseModel):
    """Counts and prices of the items in scope, as of `generated_at`."""

    scope: Literal["own", "all"]
    total: int
    draft: int
    published: int
    archived: int
    priced: int
    total_value: float
    average_price: float | None
    min_price: float | None
    max_price: float | None
    first_created_at: datetime | None
    last_updated_at: datetime | None
    generated_at: datetime
