"""Reading an uploaded file, and ingesting a document: chunks, embeddings, the vector store.

Ingestion runs {{ 'on the worker (`tasks.py`)' if cookiecutter.use_celery else 'inside the request (`inline.py`)' }} or from `flask rag reindex`. A document deleted
while it is ingested stays deleted: its chunks are refused by the foreign key, or go with it.
"""

from __future__ import annotations

import io
import logging

from pypdf import PdfReader
from pypdf.errors import PyPdfError
from sqlalchemy import update
from sqlmodel import col
from werkzeug.datastructures import FileStorage

from ..core.extensions import db
from ..core.models import utcnow
from .chunking import split_text
from .errors import UnreadableDocument, UnsupportedDocumentType
from .models import Document
from .service import embed_texts, get_store
from .settings import rag_settings
from .store import ChunkVector, DocumentGone

logger = logging.getLogger(__name__)

TEXT_TYPES = {"text/plain", "text/markdown", "text/x-markdown"}
PDF_TYPE = "application/pdf"
# Browsers and curl often send a generic type: the file name's extension decides then.
EXTENSIONS = {
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".pdf": PDF_TYPE,
}


def file_type(upload: FileStorage) -> str:
    declared = (upload.mimetype or "").lower()
    if declared in TEXT_TYPES or declared == PDF_TYPE:
        return declared
    name = (upload.filename or "").lower()
    if declared in ("", "application/octet-stream"):
        for extension, kind in EXTENSIONS.items():
            if name.endswith(extension):
                return kind
    raise UnsupportedDocumentType(
        f"Files of type {declared or 'unknown'} cannot be added: send text/plain, text/markdown "
        "or application/pdf.",
        details={"content_type": declared or None},
    )


def read_file(upload: FileStorage) -> str:
    """The text of an uploaded file (415 for a type we do not read, 422 when unreadable)."""
    kind = file_type(upload)
    data = upload.read()
    if kind == PDF_TYPE:
        return pdf_text(data)
    try:
        text: str = data.decode("utf-8-sig")
        return text
    except UnicodeDecodeError:
        raise UnreadableDocument("The file is not UTF-8 text.") from None


def pdf_text(data: bytes) -> str:
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise UnreadableDocument("The PDF is encrypted: upload a copy without a password.")
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise UnreadableDocument(f"The PDF could not be read: {exc}") from None
    # Some PDFs encode spaces as NUL characters, which PostgreSQL cannot store.
    text = "\n\n".join(page.replace("\x00", " ").strip() for page in pages if page.strip())
    if not text:
        raise UnreadableDocument("The PDF has no text to extract (a scan needs OCR first).")
    return text


def ingest(document_id: int) -> Document | None:
    """Chunk, embed and store a document, which becomes `ready`.

    Returns the document, or None when it was deleted meanwhile. Raises the APIError of a
    failed embeddings call (budget, provider) and leaves the document as it was.
    """
    document = db.session.get(Document, document_id)
    if document is None:
        return None
    settings = rag_settings()
    pieces = split_text(document.text, settings.rag_chunk_size, settings.rag_chunk_overlap)
    vectors = embed_texts(pieces, document.owner_key, endpoint="embeddings")
    chunks = [
        ChunkVector(index, piece, vector)
        for index, (piece, vector) in enumerate(zip(pieces, vectors, strict=True))
    ]
    try:
        with db.engine.begin() as connection:
            get_store().replace_chunks(connection, document_id, chunks)
            updated = connection.execute(
                update(Document)
                .where(col(Document.id) == document_id)
                .values(status="ready", error=None, chunks=len(chunks), updated_at=utcnow())
            ).rowcount
            if not updated:
                raise DocumentGone(document_id)
    except DocumentGone:
        logger.info("document %s was deleted during its ingestion", document_id)
        return None
    db.session.commit()  # end the session's transaction: the next read sees the new state
    db.session.refresh(document)
    return document
