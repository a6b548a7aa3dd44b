"""Settings, read once from the environment and `.env` (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

APP_VERSION = "{{ cookiecutter.version }}"
INSTANCE_DIR = Path.cwd() / "instance"
DEFAULT_SECRET = "change-me"  # noqa: S105 - the placeholder that production refuses
MIN_SECRET_LENGTH = 32


def normalize_database_url(url: str) -> str:
    """`postgres://` and `postgresql://` URLs use psycopg 3, the driver the project installs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    app_env: Literal["development", "testing", "production"] = "development"
    secret_key: str = DEFAULT_SECRET
{%- if cookiecutter.use_auth %}
    jwt_secret_key: str = DEFAULT_SECRET
    jwt_access_token_expires: int = Field(default=900, gt=0, description="seconds")
    jwt_refresh_token_expires: int = Field(default=30 * 24 * 3600, gt=0, description="seconds")
{%- endif %}

    database_url: str = f"sqlite:///{INSTANCE_DIR / 'app.db'}"
    # Apply migrations when the app starts; unset = only in development on SQLite.
    auto_migrate: bool | None = None
    redis_url: str | None = None

    rate_limit_default: str = "200 per minute"
{%- if cookiecutter.use_auth %}
    rate_limit_auth: str = "10 per minute"
{%- endif %}
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_content_length: int = Field(default=1024 * 1024, gt=0)
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"
{%- if cookiecutter.ai_provider != "none" %}

    ai_provider: Literal["{{ cookiecutter.ai_provider }}", "fake"] = "{{ cookiecutter.ai_provider }}"
    ai_api_key: str | None = None
    ai_model: str = "{{ {'openai': 'gpt-4o-mini', 'azure_openai': 'gpt-4o-mini', 'anthropic': 'claude-3-5-haiku-latest', 'ollama': 'llama3.2'}[cookiecutter.ai_provider] }}"
    ai_base_url: str | None = None
{%- if cookiecutter.ai_provider == "azure_openai" %}
    ai_api_version: str = "2024-10-21"
{%- endif %}
    ai_timeout: float = Field(default=30.0, gt=0)
    ai_max_retries: int = Field(default=2, ge=0, le=10)
    ai_token_budget_daily: int = Field(
        default=100_000, ge=0, le=10**12, description="tokens per caller per UTC day; 0: no budget"
    )
    ai_cache_ttl: int = Field(default=3600, ge=0, description="seconds; 0 turns the cache off")
    ai_retry_backoff: float = Field(default=0.5, ge=0, description="first retry wait, seconds")
    rate_limit_ai: str = "30 per minute"
{%- endif %}
{%- if cookiecutter.use_celery %}

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
{%- endif %}

    @field_validator("database_url")
    @classmethod
    def _psycopg_driver(cls, value: str) -> str:
        return normalize_database_url(value)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        # CORS_ORIGINS=https://a.example,https://b.example
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

{%- if cookiecutter.ai_provider != "none" %}

    @property
    def ai_offline(self) -> bool:
        """The offline provider answers: asked for{% if cookiecutter.ai_provider != "ollama" %}, or no API key to reach the real one{% endif %}."""
{%- if cookiecutter.ai_provider == "ollama" %}
        return self.ai_provider == "fake"
{%- else %}
        return self.ai_provider == "fake" or not self.ai_api_key
{%- endif %}
{%- endif %}

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def migrate_on_start(self) -> bool:
        if self.auto_migrate is not None:
            return self.auto_migrate
        return self.app_env == "development" and self.is_sqlite
{%- if cookiecutter.use_celery %}

    @property
    def broker_url(self) -> str | None:
        return self.celery_broker_url or self.redis_url

    @property
    def result_backend(self) -> str | None:
        return self.celery_result_backend or self.redis_url
{%- endif %}

{%- if cookiecutter.use_celery %}

    @model_validator(mode="after")
    def _check_celery(self) -> Settings:
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
{%- endif %}

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if not self.is_production:
            return self
        secrets = {"SECRET_KEY": self.secret_key}
{%- if cookiecutter.use_auth %}
        secrets["JWT_SECRET_KEY"] = self.jwt_secret_key
{%- endif %}
        for name, value in secrets.items():
            if not value or value == DEFAULT_SECRET or len(value) < MIN_SECRET_LENGTH:
                raise ValueError(
                    f"{name} must be set to a random value of at least {MIN_SECRET_LENGTH} "
                    "characters in production"
                )
{%- if cookiecutter.ai_provider != "none" %}
        if self.ai_provider == "fake":
            raise ValueError("AI_PROVIDER=fake (the offline provider) is not allowed in production")
{%- if cookiecutter.ai_provider != "ollama" %}
        if not self.ai_api_key:
            raise ValueError(
                "AI_API_KEY must be set in production (without it the offline provider answers)"
            )
{%- endif %}
{%- if cookiecutter.ai_provider == "azure_openai" %}
        if not self.ai_base_url:
            raise ValueError("AI_BASE_URL must be set to the Azure OpenAI endpoint in production")
{%- endif %}
{%- endif %}
        return self
