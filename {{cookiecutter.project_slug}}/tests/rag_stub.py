"""The stub provider's embeddings (`POST .../embeddings` in OpenAI's wire format, which other
OpenAI-compatible embeddings APIs speak too): deterministic vectors, a hashed dimension per word."""

from __future__ import annotations

import base64
import re
import struct
import zlib
from typing import Any

MODEL = "test-model"
# The vector size the service expects unless a request names one (`dimensions`).
EMBEDDING_DIMENSIONS = {{ {'openai': 1536, 'azure_openai': 1536, 'anthropic': 1024, 'ollama': 768}.get(cookiecutter.ai_provider) }}


def embedding(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector per text: one hashed dimension per word."""
    vector = [0.0] * dimensions
    for word in re.findall(r"\w+", text.lower()):
        vector[zlib.crc32(word.encode()) % dimensions] += 1.0
    norm = sum(value * value for value in vector) ** 0.5 or 1.0
    return [value / norm for value in vector] if any(vector) else [1.0] + [0.0] * (dimensions - 1)


def encoded(vector: list[float], encoding_format: str | None) -> list[float] | str:
    """A vector as JSON numbers, or with `encoding_format: base64` as OpenAI sends it: the
    base64 of its little-endian float32 values."""
    if encoding_format == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return vector


def embeddings_payload(body: dict[str, Any]) -> dict[str, Any]:
    """The answer of OpenAI's `POST /embeddings`."""
    texts = body.get("input") or []
    texts = [texts] if isinstance(texts, str) else texts
    dimensions = int(body.get("dimensions") or EMBEDDING_DIMENSIONS)
    tokens = sum(max(1, len(str(text)) // 4) for text in texts)
    form = body.get("encoding_format")
    vectors = [encoded(embedding(str(text), dimensions), form) for text in texts]
    return embeddings_answer(vectors, body.get("model", MODEL), tokens)


def embeddings_answer(vectors: list[Any], model: str = MODEL, tokens: int = 1) -> dict[str, Any]:
    """OpenAI's embeddings answer around `vectors`, whatever they are (tests send bad ones)."""
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": index, "embedding": vector}
            for index, vector in enumerate(vectors)
        ],
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
