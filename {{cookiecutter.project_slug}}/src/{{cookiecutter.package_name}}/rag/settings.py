"""The settings of documents, embeddings and retrieval."""

from __future__ import annotations

from pydantic import Field, model_validator

from ..core.settings import Settings, feature_settings


class RAGSettings(Settings):
    # Unset key and base URL: the AI provider's (AI_API_KEY, AI_BASE_URL).
    embeddings_model: str = "{{ {'openai': 'text-embedding-3-small', 'azure_openai': 'text-embedding-3-small', 'anthropic': 'voyage-3.5-lite', 'ollama': 'nomic-embed-text'}.get(cookiecutter.ai_provider) }}"
    embeddings_dimensions: int = Field(default={{ {'openai': 1536, 'azure_openai': 1536, 'anthropic': 1024, 'ollama': 768}.get(cookiecutter.ai_provider) }}, ge=8, le=2000)
{%- if cookiecutter.ai_provider == "anthropic" %}
    # Anthropic has no embeddings API: any OpenAI-compatible one (Voyage AI, OpenAI, ...).
    embeddings_base_url: str | None = "https://api.voyageai.com/v1"
{%- else %}
    embeddings_base_url: str | None = None
{%- endif %}
    embeddings_api_key: str | None = None
    embeddings_batch_size: int = Field(default=64, ge=1, le=2048)
    # The longest text (in tokens, about four characters each) the embeddings model accepts.
    embeddings_max_tokens: int = Field(default=8000, ge=16)
    rag_chunk_size: int = Field(default=1000, ge=100, le=20_000, description="characters")
    rag_chunk_overlap: int = Field(default=150, ge=0, description="characters")
    # The longest document text accepted (413 above it){% if not cookiecutter.use_celery %}: it is ingested inside the request{% endif %}.
    rag_max_document_chars: int = Field(default=200_000, ge=1000)
    # Chunks scoring below this are not relevant enough to ground an answer on.
    rag_min_score: float = Field(default=0.2, ge=0, le=1)

    @model_validator(mode="after")
    def _overlap_below_size(self) -> RAGSettings:
        if self.rag_chunk_overlap >= self.rag_chunk_size:
            raise ValueError("RAG_CHUNK_OVERLAP must be smaller than RAG_CHUNK_SIZE")
        return self


def rag_settings() -> RAGSettings:
    return feature_settings(RAGSettings)
