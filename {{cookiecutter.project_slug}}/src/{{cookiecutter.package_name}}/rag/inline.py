"""Ingestion inside the request that adds the document (there is no worker)."""

from __future__ import annotations

from sqlalchemy import delete
from sqlmodel import col

from ..core.errors import APIError, NotFound
from ..core.extensions import db
from ..core.identity import Caller
from .ingest import ingest
from .models import Document


def ingest_now(document: Document, caller: Caller) -> Document:
    """Ingest at once. When the embeddings fail the document is removed again and the error
    answered: the client has nothing half-made to clean up."""
    del caller  # the document names whose budget its embeddings count against
    document_id = document.id
    assert document_id is not None
    try:
        ingested = ingest(document_id)
    except APIError:
        db.session.rollback()
        db.session.execute(delete(Document).where(col(Document.id) == document_id))
        db.session.commit()
        raise
    if ingested is None:  # deleted by another request meanwhile
        raise NotFound(f"Document {document_id} was deleted while it was being added.")
    return ingested
