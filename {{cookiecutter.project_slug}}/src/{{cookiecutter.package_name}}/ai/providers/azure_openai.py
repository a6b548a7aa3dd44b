"""Azure OpenAI through the OpenAI SDK's Azure client: endpoint, deployment, API version.

The deployment name is `AI_MODEL`; requests go to
`{AI_BASE_URL}/openai/deployments/{AI_MODEL}/chat/completions?api-version={AI_API_VERSION}`.
"""

from __future__ import annotations

import openai

from ..base import sdk_client
from .openai import OpenAIProvider


class AzureOpenAIProvider(OpenAIProvider):
    """The same wire protocol as OpenAI; only the client (URLs, `api-key` header) differs."""

    def __init__(
        self, *, api_key: str | None, endpoint: str | None, api_version: str, timeout: float
    ) -> None:
        if not endpoint:
            raise ValueError("AI_BASE_URL must be set to the Azure OpenAI endpoint")
        client = sdk_client(
            openai.AzureOpenAI,
            api_key=api_key,
            azure_endpoint=endpoint,
            api_version=api_version,
            timeout=timeout,
            max_retries=0,
        )
        super().__init__(
            api_key=api_key, base_url=None, timeout=timeout, name="azure_openai", client=client
        )
