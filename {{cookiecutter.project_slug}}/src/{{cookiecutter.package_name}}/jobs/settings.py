"""The settings of the Celery worker and background jobs."""

from __future__ import annotations

from pydantic import Field, model_validator

from ..core.settings import Settings, feature_settings


class JobsSettings(Settings):
    celery_broker_url: str | None = None
    celery_result_backend: str | None = None
    # The queue of this service's jobs, also the prefix of its keys in the result backend.
    celery_queue: str = Field(
        default="{{ cookiecutter.package_name }}",
        pattern=r"^[A-Za-z0-9_.-]+$",
    )
    celery_max_retries: int = Field(default=3, ge=0, le=20)
    celery_retry_backoff: float = Field(default=2.0, gt=0, description="first retry wait, seconds")
    celery_retry_backoff_max: float = Field(default=60.0, gt=0, description="seconds")
    celery_task_soft_time_limit: int = Field(default=300, gt=0, description="seconds")
    celery_task_time_limit: int = Field(default=330, gt=0, description="seconds")
    # An unacknowledged job goes back on the queue after this long (its worker is presumed
    # dead): keep it above the longest job and retry wait.
    celery_visibility_timeout: int = Field(default=3600, gt=0, description="seconds")
    celery_result_expires: int = Field(default=24 * 3600, gt=0, description="seconds")

    @property
    def broker_url(self) -> str | None:
        return self.celery_broker_url or self.redis_url

    @property
    def result_backend(self) -> str | None:
        return self.celery_result_backend or self.redis_url

    @model_validator(mode="after")
    def _check_celery(self) -> JobsSettings:
        if self.celery_task_time_limit <= self.celery_task_soft_time_limit:
            raise ValueError(
                "CELERY_TASK_TIME_LIMIT must be longer than CELERY_TASK_SOFT_TIME_LIMIT"
            )
        backend = self.result_backend or ""
        if self.broker_url and not backend.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(
                "CELERY_RESULT_BACKEND (or REDIS_URL) must be a Redis URL when a broker is set: "
                "job status and records are kept there"
            )
        return self


def jobs_settings() -> JobsSettings:
    return feature_settings(JobsSettings)
