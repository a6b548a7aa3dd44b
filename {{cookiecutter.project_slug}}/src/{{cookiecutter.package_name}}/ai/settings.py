"""The settings of the AI provider, its budget, cache and rate limit."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..core.settings import Settings, feature_settings


class AISettings(Settings):
    ai_provider: Literal["{{ cookiecutter.ai_provider }}", "fake"] = "{{ cookiecutter.ai_provider }}"
    ai_api_key: str | None = None
    ai_model: str = "{{ {'openai': 'gpt-4o-mini', 'azure_openai': 'gpt-4o-mini', 'anthropic': 'claude-3-5-haiku-latest', 'ollama': 'llama3.2'}.get(cookiecutter.ai_provider) }}"
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
    ai_tool_timeout: float = Field(default=10.0, gt=0, le=600, description="seconds a tool may run")
    rate_limit_ai: str = "30 per minute"

    @property
    def ai_offline(self) -> bool:
        """The offline provider answers: asked for, or no {{ 'AI_BASE_URL to reach a server' if cookiecutter.ai_provider == 'ollama' else 'AI_API_KEY to reach the real one' }}."""
        return self.ai_provider == "fake" or not self.{{ 'ai_base_url' if cookiecutter.ai_provider == 'ollama' else 'ai_api_key' }}

    @model_validator(mode="after")
    def _refuse_offline_in_production(self) -> AISettings:
        if not self.is_production:
            return self
        if self.ai_provider == "fake":
            raise ValueError("AI_PROVIDER=fake (the offline provider) is not allowed in production")
{%- if cookiecutter.ai_provider == "ollama" %}
        if not self.ai_base_url:
            raise ValueError(
                "AI_BASE_URL must be set in production (without it the offline provider answers)"
            )
{%- else %}
        if not self.ai_api_key:
            raise ValueError(
                "AI_API_KEY must be set in production (without it the offline provider answers)"
            )
{%- endif %}
{%- if cookiecutter.ai_provider == "azure_openai" %}
        if not self.ai_base_url:
            raise ValueError("AI_BASE_URL must be set to the Azure OpenAI endpoint in production")
{%- endif %}
        return self


def ai_settings() -> AISettings:
    return feature_settings(AISettings)
