"""Settings, read once from the environment and `.env` (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

INSTANCE_DIR = Path.cwd() / "instance"
DEFAULT_SECRET = "change-me"  # noqa: S105 - the placeholder that production refuses
MIN_SECRET_LENGTH = 32


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
    ai_token_budget_daily: int = Field(default=100_000, ge=0)
    ai_cache_ttl: int = Field(default=3600, ge=0)
    rate_limit_ai: str = "30 per minute"
{%- endif %}
{%- if cookiecutter.use_celery %}

    celery_broker_url: str | None = None
    celery_result_backend: str | None = None
{%- endif %}

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

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
{%- if cookiecutter.use_celery %}

    @property
    def broker_url(self) -> str | None:
        return self.celery_broker_url or self.redis_url

    @property
    def result_backend(self) -> str | None:
        return self.celery_result_backend or self.redis_url
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
{%- endif %}
        return self
