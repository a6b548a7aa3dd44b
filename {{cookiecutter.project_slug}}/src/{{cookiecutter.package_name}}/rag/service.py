"""Documents and retrieval, scoped to the caller: adding, listing, deleting, searching, and the
embeddings they need (counted in the caller's token budget, query vectors cached)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from functools import partial

from flask import current_app
from sqlalchemy import ColumnElement, delete
from sqlmodel import col, select

from ..ai import cache, usage
from ..ai.base import ProviderError, estimate_tokens
from ..ai.completion import retry_policy
from ..ai.errors import outcome, to_api_error
from ..ai.metrics import observe
from ..ai.retry import call_with_retries
from ..core.errors import NotFound
from ..core.extensions import db
from ..core.identity import Caller
from ..core.models import page_statement, paginate
from .embeddings import Embedder
from .errors import DocumentTooLarge, invalid
from .models import Document, DocumentChunk, DocumentOut, DocumentPage, DocumentQuery, SearchHit
from .settings import rag_settings
from .store import VectorStore

logger = logging.getLogger(__name__)


def get_embedder() -> Embedder:
    embedder: Embedder = current_app.extensions["rag_embedder"]
    return embedder


def get_store() -> VectorStore:
    store: VectorStore = current_app.extensions["rag_store"]
    return store


# -- embeddings ----------------------------------------------------------------------------------


def embed_texts(texts: Sequence[str], owner: str, *, endpoint: str) -> list[list[float]]:
    """Vectors for `texts`, in batches of EMBEDDINGS_BATCH_SIZE, counted in `owner`'s budget
    (429 `budget_exceeded` before the call when it is spent; 502/503/504 when the provider
    fails)."""
    if not texts:
        return []
    embedder = get_embedder()
    settings = rag_settings()
    reservation = usage.reserve(owner, sum(map(estimate_tokens, texts)))
    record = usage.UsageRecord(endpoint=endpoint, provider=embedder.name, model=embedder.model)
    started = time.perf_counter()
    vectors: list[list[float]] = []
    record.status = "error"  # until the call has an outcome
    try:
        for start in range(0, len(texts), settings.embeddings_batch_size):
            batch = texts[start : start + settings.embeddings_batch_size]
            embedded, _ = call_with_retries(partial(embedder.embed, batch), retry_policy())
            vectors.extend(embedded.vectors)
            record.prompt_tokens += embedded.tokens
        record.status = "ok"
    except ProviderError as exc:
        record.status = outcome(exc)
        logger.warning("embeddings failed: %s", exc.message, extra={"attempts": exc.attempts})
        raise to_api_error(exc) from exc
    finally:
        record.latency_ms = (time.perf_counter() - started) * 1000
        usage.settle(reservation, record)
        observe(record)
    return vectors


def embed_query(query: str, owner: str) -> list[float]:
    """The vector of a search query or question; the same text is embedded once per cache TTL."""
    settings = rag_settings()
    if estimate_tokens(query) > settings.embeddings_max_tokens:
        raise invalid(
            "query",
            f"too long for the embeddings model (about {estimate_tokens(query)} tokens; at most "
            f"{settings.embeddings_max_tokens})",
            "string_too_long",
        )
    embedder = get_embedder()
    key = cache.cache_key({"embedding": embedder.name, "model": embedder.model, "text": query})
    cached = cache.cache_get(key)
    if cached is not None and isinstance(cached.get("vector"), list):
        return [float(value) for value in cached["vector"]]
    (vector,) = embed_texts([query], owner, endpoint="embeddings")
    cache.cache_set(key, {"vector": vector})
    return vector


# -- documents -----------------------------------------------------------------------------------


def visible_to(caller: Caller) -> list[ColumnElement[bool]]:
    """What the caller may see: {{ 'their own documents unless admin' if cookiecutter.use_auth else 'every document (there are no owners)' }}."""
    conditions: list[ColumnElement[bool]] = []
{%- if cookiecutter.use_auth %}
    if not caller.sees_all():
        conditions.append(col(Document.owner_id) == caller.user_id)
{%- endif %}
    return conditions


def new_document(title: str, text: str, metadata: dict[str, str], caller: Caller) -> Document:
    """Store a document `pending` its ingestion (413 when its text is too long)."""
    limit = rag_settings().rag_max_document_chars
    if len(text) > limit:
        raise DocumentTooLarge(
            f"The document has {len(text)} characters; at most {limit} are accepted "
            "(RAG_MAX_DOCUMENT_CHARS).",
            details={"characters": len(text), "limit": limit},
        )
    if not text.strip():
        raise invalid("text", "the document has no text")
    values = {
        "title": title.strip()[:200],
        "text": text,
        "characters": len(text),
        "properties": metadata,
        "owner_key": caller.key,
    }
{%- if cookiecutter.use_auth %}
    values["owner_id"] = caller.user_id
{%- endif %}
    document = Document.model_validate(values)
    db.session.add(document)
    db.session.commit()
    return document


def list_documents(query: DocumentQuery, caller: Caller) -> DocumentPage:
    conditions = visible_to(caller)
    if query.status:
        conditions.append(col(Document.status) == query.status)
    ordering = [col(Document.created_at).desc(), col(Document.id).desc()]
    statement = page_statement(Document, DocumentOut, conditions, ordering)
    return paginate(db.session.connection(), statement, DocumentOut, query)


def get_document(document_id: int, caller: Caller) -> Document:
    """The document, or 404 when it does not exist or the caller may not see it."""
    statement = select(Document).where(*visible_to(caller), col(Document.id) == document_id)
    document = db.session.exec(statement).first()
    if document is None:
        raise NotFound(f"Document {document_id} not found.")
    return document


def delete_document(document_id: int, caller: Caller) -> None:
    """Delete the document with its chunks and their vectors (also while it is ingested)."""
    document = get_document(document_id, caller)
    db.session.exec(delete(DocumentChunk).where(col(DocumentChunk.document_id) == document.id))
    db.session.delete(document)
    db.session.commit()


def search(query: str, k: int, caller: Caller) -> list[SearchHit]:
    """The `k` chunks closest to `query` among the caller's ready documents, best first."""
    vector = embed_query(query, caller.key)
{%- if cookiecutter.use_auth %}
    owner_id = None if caller.sees_all() else caller.user_id
{%- else %}
    owner_id = None  # no owners: every document is shared
{%- endif %}
    with db.engine.begin() as connection:
        return get_store().search(connection, vector, k, owner_id)
