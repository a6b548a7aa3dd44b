"""`flask rag`: re-ingest documents (after changing the embeddings model or chunking) and
show what the store holds."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup
from sqlalchemy import func
from sqlmodel import col, select

from ..core.cli import one_line_errors
from ..core.errors import APIError
from ..core.extensions import db
from .ingest import ingest
from .models import Document, DocumentChunk
from .service import get_embedder, get_store

rag_cli = AppGroup("rag", help="Documents and their vectors: reindex, statistics.")


@rag_cli.command("reindex")
@click.option(
    "--document", "document_ids", type=int, multiple=True, help="Only this document (repeatable)."
)
@click.option("--failed-only", is_flag=True, help="Only documents whose ingestion failed.")
@one_line_errors
def rag_reindex(document_ids: tuple[int, ...], failed_only: bool) -> None:
    """Chunk and embed documents again with the current settings (their embeddings count
    toward their owners' budgets); exit 1 if any fails."""
    statement = select(Document.id).order_by(col(Document.id))
    if document_ids:
        statement = statement.where(col(Document.id).in_(document_ids))
    if failed_only:
        statement = statement.where(col(Document.status) == "failed")
    ids = [document_id for document_id in db.session.exec(statement).all() if document_id]
    failures = 0
    for document_id in ids:
        try:
            document = ingest(document_id)
        except APIError as exc:
            failures += 1
            click.echo(f"document {document_id}: failed: {exc.message}")
            continue
        if document is not None:
            click.echo(f"document {document_id}: {document.chunks} chunks")
    click.echo(f"Reindexed {len(ids) - failures} of {len(ids)} documents.")
    if failures:
        raise click.ClickException(f"{failures} document(s) could not be reindexed")


@rag_cli.command("stats")
@one_line_errors
def rag_stats() -> None:
    """Documents by status, chunks, the store and the embeddings model."""
    by_status = dict(
        db.session.exec(select(Document.status, func.count()).group_by(col(Document.status))).all()
    )
    chunks = db.session.exec(select(func.count()).select_from(DocumentChunk)).one()
    embedder = get_embedder()
    click.echo(
        json.dumps(
            {
                "documents": sum(by_status.values()),
                "by_status": by_status,
                "chunks": chunks,
                "store": get_store().name,
                "embeddings": {"provider": embedder.name, "model": embedder.model},
            },
            indent=2,
        )
    )
