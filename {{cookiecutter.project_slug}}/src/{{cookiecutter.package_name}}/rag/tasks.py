"""Ingestion on the worker: a new document is `pending` until its job makes it `ready`, or
`failed` with the reason once no retry is left. Nothing else is lost when a job fails."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, update
from sqlmodel import col

from ..core.errors import APIError
from ..core.extensions import db
from ..core.identity import Caller
from ..core.models import utcnow
from ..jobs.celery_app import PACKAGE, JobTask, is_transient, job
from ..jobs.service import celery, queue_job
from .ingest import ingest
from .models import Document

RAG_INGEST = f"{PACKAGE}.rag_ingest"


def queue_ingestion(document: Document, caller: Caller) -> Document:
    """Queue the document's ingestion (503, and no document, when the queue is down)."""
    try:
        queue_job(RAG_INGEST, caller=caller, kwargs={"document_id": document.id})
    except APIError:
        db.session.execute(delete(Document).where(col(Document.id) == document.id))
        db.session.commit()
        raise
    if celery().conf.task_always_eager:  # no broker: the job has already run
        db.session.refresh(document)
    # With a broker the answer is the document as stored, `pending`: a worker may already be
    # done with it, which the caller learns by polling, not from a race with this response.
    return document


@job(RAG_INGEST)
def rag_ingest(task: JobTask, document_id: int) -> dict[str, Any]:
    """Chunk, embed and store one document. A transient failure (provider or database busy or
    down) is retried; the last failure, or any other, marks the document `failed`."""
    try:
        document = ingest(document_id)
    except APIError as exc:
        retries_left = task.request.retries < task.app.service_settings.celery_max_retries
        if not (is_transient(exc) and retries_left):
            mark_failed(document_id, exc.message)
        raise
    if document is None:
        return {"document_id": document_id, "status": "deleted"}
    return {"document_id": document_id, "status": document.status, "chunks": document.chunks}


def mark_failed(document_id: int, reason: str) -> None:
    with db.engine.begin() as connection:
        connection.execute(
            update(Document)
            .where(col(Document.id) == document_id)
            .values(status="failed", error=reason[:1000], updated_at=utcnow())
        )
