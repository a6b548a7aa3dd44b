"""Provider modules, and the one function that builds the configured provider."""

from __future__ import annotations

from ..base import Provider
from ..settings import AISettings
from .fake import FakeProvider


def build_provider(settings: AISettings) -> Provider:
    """The offline provider when settings ask for it (or lack a key), else the real one."""
    if settings.ai_offline:
        return FakeProvider()
{%- if cookiecutter.ai_provider == "openai" %}
    from .openai import OpenAIProvider

    return OpenAIProvider(
        api_key=settings.ai_api_key, base_url=settings.ai_base_url, timeout=settings.ai_timeout
    )
{%- elif cookiecutter.ai_provider == "ollama" %}
    from .openai import OpenAIProvider

    # Ollama, vLLM and LM Studio ignore the key, but the SDK insists on one.
    return OpenAIProvider(
        name="ollama",
        api_key=settings.ai_api_key or "ollama",
        base_url=settings.ai_base_url,
        timeout=settings.ai_timeout,
        json_mode=False,
    )
{%- elif cookiecutter.ai_provider == "azure_openai" %}
    from .azure_openai import AzureOpenAIProvider

    return AzureOpenAIProvider(
        api_key=settings.ai_api_key,
        endpoint=settings.ai_base_url,
        api_version=settings.ai_api_version,
        timeout=settings.ai_timeout,
    )
{%- elif cookiecutter.ai_provider == "anthropic" %}
    from .anthropic import AnthropicProvider

    return AnthropicProvider(
        api_key=settings.ai_api_key, base_url=settings.ai_base_url, timeout=settings.ai_timeout
    )
{%- endif %}


__all__ = ["FakeProvider", "build_provider"]
