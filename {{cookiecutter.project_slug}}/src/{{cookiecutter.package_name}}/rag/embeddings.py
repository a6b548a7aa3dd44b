"""Embeddings: text to vectors through an OpenAI-compatible embeddings endpoint, or offline and
deterministic (`FakeEmbeddings`) when the AI provider is the offline one.
{%- if cookiecutter.ai_provider == "anthropic" %}

Anthropic has no embeddings API: the SDK calls an OpenAI-compatible one (EMBEDDINGS_BASE_URL,
Voyage AI by default).
{%- endif %}
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import openai

from ..ai.base import (
    ProviderBadReplyError,
    as_count,
    as_object,
    as_objects,
    estimate_tokens,
    sdk_client,
    translate_sdk_error,
)
from ..ai.settings import AISettings
from .settings import RAGSettings

# What the SDK's embeddings.create() sends: the bearer key (not an admin key).
_OPTIONS: openai.RequestOptions = {"security": {"bearer_auth": True}}


@dataclass(frozen=True)
class Embedded:
    vectors: list[list[float]]
    tokens: int


class Embedder(Protocol):
    name: str
    model: str

    def embed(self, texts: Sequence[str]) -> Embedded: ...


# Words that say little about what a text is about; the offline embeddings ignore them.
STOPWORDS = frozenset(
    """a about after all also an and any are as at be been before but by can could did do does
    for from had has have how i if in into is it its may me more most my no not of on or our
    should so such than that the their them then there these they this those to up us was we
    were what when where which while who why will with would you your""".split()  # noqa: SIM905
)
WORD = re.compile(r"[a-z0-9]+")
SUFFIXES = ("ations", "ation", "ings", "ing", "ies", "ed", "es", "ly", "s")


def stem(word: str) -> str:
    """A crude stemmer: enough for `refunds`, `refunded` and `refund` to be one word."""
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def terms(text: str) -> list[str]:
    return [stem(word) for word in WORD.findall(text.lower()) if word not in STOPWORDS]


class FakeEmbeddings:
    """Offline, deterministic, lexical: each word (stemmed, stop words left out) adds to one
    hashed dimension, so texts that share words are close and texts that share none score 0.
    Good enough to try retrieval without an API key; not a language model."""

    name = "fake"

    def __init__(self, model: str, dimensions: int) -> None:
        self.model = model
        self.dimensions = dimensions

    def embed(self, texts: Sequence[str]) -> Embedded:
        return Embedded([self._vector(text) for text in texts], sum(map(estimate_tokens, texts)))

    def _vector(self, text: str) -> list[float]:
        counts: dict[int, float] = {}
        for term in terms(text):
            digest = hashlib.blake2b(term.encode(), digest_size=8).digest()
            index = int.from_bytes(digest, "big") % self.dimensions
            counts[index] = counts.get(index, 0.0) + 1.0
        vector = [0.0] * self.dimensions
        for index, count in counts.items():
            vector[index] = 1.0 + math.log(count)  # a word said often counts, not linearly
        norm = math.sqrt(sum(value * value for value in vector)) or 1.0
        return [value / norm for value in vector]


class SDKEmbeddings:
    """The embeddings endpoint through the OpenAI SDK client's `post()`, the reply read as plain
    JSON, like the chat providers (`ai/providers/openai.py`): the SDK does the URL, auth,
    timeouts and HTTP errors, without its typed layer. Retries are ours (`ai/retry.py`)."""

    def __init__(self, client: openai.OpenAI, *, name: str, model: str, dimensions: int) -> None:
        self._client = client
        self.name = name
        self.model = model
        self.dimensions = dimensions

    def embed(self, texts: Sequence[str]) -> Embedded:
        body: dict[str, object] = {
            "model": self.model,
            "input": list(texts),
{%- if cookiecutter.ai_provider == "ollama" %}
            # Floats: what every OpenAI-compatible server sends.
            "encoding_format": "float",
{%- else %}
            # Base64 of little-endian float32s, decoded in one step (as JSON numbers the reply
            # is three times longer and parsed one float at a time).
            "encoding_format": "base64",
{%- endif %}
        }
        # Only OpenAI's third-generation models can shorten their vectors.
        if self.model.startswith("text-embedding-3"):
            body["dimensions"] = self.dimensions
        try:
            reply = self._client.post("/embeddings", body=body, cast_to=object, options=_OPTIONS)
        except Exception as exc:
            raise translate_sdk_error(exc, openai) from exc
        payload = as_object(reply)
        data = sorted(as_objects(payload.get("data")), key=lambda item: as_count(item.get("index")))
        if len(data) != len(texts):
            raise ProviderBadReplyError(
                f"The embeddings endpoint returned {len(data)} vectors for {len(texts)} texts."
            )
        vectors = [_vector(item.get("embedding")) for item in data]
        wrong = next((len(vector) for vector in vectors if len(vector) != self.dimensions), None)
        if wrong is not None:
            raise ProviderBadReplyError(
                f"The embeddings model {self.model} returned {wrong} dimensions, not "
                f"{self.dimensions}: set EMBEDDINGS_DIMENSIONS to match it."
            )
        tokens = as_object(payload.get("usage")).get("prompt_tokens")
        if not isinstance(tokens, int):
            tokens = sum(map(estimate_tokens, texts))
        return Embedded(vectors, tokens)


def _vector(embedding: object) -> list[float]:
    """One embedding as floats: a list of JSON numbers, or base64 of little-endian float32s."""
    if isinstance(embedding, str):
        try:
            raw = base64.b64decode(embedding, validate=True)
            return list(struct.unpack(f"<{len(raw) // 4}f", raw))
        except (binascii.Error, struct.error) as exc:  # not base64, or not whole float32s
            raise ProviderBadReplyError("The embeddings endpoint sent a malformed vector.") from exc
    if isinstance(embedding, list) and all(
        isinstance(value, int | float) and not isinstance(value, bool) for value in embedding
    ):
        return [float(value) for value in embedding]
    raise ProviderBadReplyError("The embeddings endpoint sent a vector that is not numbers.")


def embeddings_api_key(settings: RAGSettings, ai: AISettings) -> str | None:
    """EMBEDDINGS_API_KEY; without it the AI provider's key, but only for the AI provider's own
    endpoint: a key never goes to another service."""
    if settings.embeddings_api_key:
        return settings.embeddings_api_key
    if settings.embeddings_base_url in (None, ai.ai_base_url):
        return ai.ai_api_key
    return None


def build_embedder(settings: RAGSettings, ai: AISettings) -> Embedder:
    """Offline embeddings with the offline AI provider, else the SDK's."""
    if ai.ai_offline:
        return FakeEmbeddings(settings.embeddings_model, settings.embeddings_dimensions)
    api_key = embeddings_api_key(settings, ai)
    if api_key is None:
        raise SystemExit(
            f"Invalid settings: EMBEDDINGS_API_KEY: the embeddings endpoint "
            f"{settings.embeddings_base_url} is not the AI provider's and needs a key of its own "
            "(the AI provider's key is never sent there)"
        )
{%- if cookiecutter.ai_provider == "azure_openai" %}
    endpoint = settings.embeddings_base_url or ai.ai_base_url
    if not endpoint:
        raise ValueError("AI_BASE_URL must be set to the Azure OpenAI endpoint")
    # The deployment of the embeddings model is EMBEDDINGS_MODEL.
    client: openai.OpenAI = sdk_client(
        openai.AzureOpenAI,
        api_key=api_key,
        azure_endpoint=endpoint,
        api_version=ai.ai_api_version,
        timeout=ai.ai_timeout,
        max_retries=0,
    )
{%- elif cookiecutter.ai_provider == "anthropic" %}
    client = sdk_client(
        openai.OpenAI,
        api_key=api_key,
        base_url=settings.embeddings_base_url,
        timeout=ai.ai_timeout,
        max_retries=0,
    )
{%- else %}
    client = sdk_client(
        openai.OpenAI,
        api_key=api_key{{ ' or "ollama"' if cookiecutter.ai_provider == 'ollama' else '' }},
        base_url=settings.embeddings_base_url or ai.ai_base_url,
        timeout=ai.ai_timeout,
        max_retries=0,
    )
{%- endif %}
    return SDKEmbeddings(
        client,
        name="{{ cookiecutter.ai_provider }}",
        model=settings.embeddings_model,
        dimensions=settings.embeddings_dimensions,
    )
