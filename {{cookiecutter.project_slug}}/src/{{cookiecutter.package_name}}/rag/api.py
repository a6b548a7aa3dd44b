"""`/api/v1/documents`: add, list, read, delete and search documents; `/api/v1/ai/ask`: answers
grounded in them, with citations."""

from __future__ import annotations

from typing import Any

from flask import Response, request
from pydantic import ValidationError

from ..ai.api import AI_ERRORS, caller, event_stream
from ..ai.usage import write_after_response
from ..core.blueprint import API_PREFIX, api_blueprint
from ..core.errors import RequestValidationFailed, validation_details
from ..core.identity import current_caller
from ..core.responses import Envelope, ErrorEnvelope, envelope
from . import service
from .ask import ask, stream_ask
from .errors import invalid
from .ingest import read_file
{%- if not cookiecutter.use_celery %}
from .inline import ingest_now as start_ingestion
{%- endif %}
from .models import (
    AskOut,
    AskRequest,
    DocumentCreate,
    DocumentOut,
    DocumentPage,
    DocumentPath,
    DocumentQuery,
    SearchRequest,
    SearchResults,
)
from .service import new_document
from .settings import rag_settings
{%- if cookiecutter.use_celery %}
from .tasks import queue_ingestion as start_ingestion
{%- endif %}

documents_bp = api_blueprint("documents", __name__, writes=True, errors=(502, 503, 504))
ask_bp = api_blueprint("ask", __name__, url_prefix=f"{API_PREFIX}/ai", tag="ai")
# Embeddings and answers count in the token budget: written once the response is sent.
documents_bp.after_request(write_after_response)
ask_bp.after_request(write_after_response)


def upload() -> DocumentCreate:
    """The new document: a JSON body, or a multipart form with a `file` (and a `title`)."""
    if request.is_json:
        try:
            return DocumentCreate.model_validate_json(request.get_data(cache=True))
        except ValidationError as exc:
            raise RequestValidationFailed(details=validation_details(exc)) from None
    if request.mimetype != "multipart/form-data":
        raise RequestValidationFailed(
            details={"errors": [{"loc": [], "msg": "a JSON object is required", "type": "missing"}]}
        )
    file = request.files.get("file")
    if file is None:
        raise invalid("file", "this field is required: the document to add", "missing")
    title = (request.form.get("title") or file.filename or "").strip()
    if not title:
        raise invalid("title", "give a title, or a file name")
    text = read_file(file)
    for field, value in (("title", title), ("file", text)):
        if "\x00" in value:  # PostgreSQL cannot store it
            raise invalid(field, "NUL characters are not allowed", "string_nul")
    # The size limit first: a long document is refused for its size, whatever it holds.
    limit = rag_settings().rag_max_document_chars
    if len(text) <= limit and not text.strip():
        raise invalid("file", "the file has no text")
    return DocumentCreate(title=title[:200], text=text)


@documents_bp.post("", responses={201: Envelope[DocumentOut]})
def create_document() -> Response:
    """Add a document, as JSON or as an uploaded file.

    JSON {title, text, metadata?}, or a multipart form with a `file` (text/plain,
    text/markdown or application/pdf) and an optional `title` (default: the file name).

{%- if cookiecutter.use_celery %}
    The worker ingests it: `pending`, then `ready`, or `failed` with the reason (poll
    `GET /documents/{id}`).
{%- else %}
    It is chunked, embedded and stored before the answer comes: `ready`.
{%- endif %}
    """
    who = caller(writes=True)
    data = upload()
    document = new_document(data.title, data.text, data.metadata, who)
    document = start_ingestion(document, who)
    return envelope(DocumentOut.of(document), message="Document added.", status=201)


@documents_bp.get("", responses={200: Envelope[DocumentPage]})
def list_documents(query: DocumentQuery) -> Response:
    """List documents, newest first, paginated."""
    return envelope(service.list_documents(query, current_caller()))


@documents_bp.get("/<int:document_id>", responses={200: Envelope[DocumentOut], 404: ErrorEnvelope})
def get_document(path: DocumentPath) -> Response:
    """One document, with its ingestion status."""
    return envelope(DocumentOut.of(service.get_document(path.document_id, current_caller())))


@documents_bp.delete("/<int:document_id>", responses={200: Envelope[None], 404: ErrorEnvelope})
def delete_document(path: DocumentPath) -> Response:
    """Delete a document with its chunks and their vectors."""
    service.delete_document(path.document_id, current_caller(writes=True))
    return envelope(None, message="Document deleted.")


@documents_bp.post("/search", responses={200: Envelope[SearchResults]})
def search_documents(body: SearchRequest) -> Response:
    """The chunks closest to the query, best first.

    `score` is the cosine similarity of the chunk and the query, in [0, 1]."""
    hits = service.search(body.query, body.k, caller())
    return envelope(SearchResults(results=hits))


@ask_bp.post("/ask", responses={200: Envelope[AskOut], **AI_ERRORS})
def ask_documents(body: AskRequest) -> Response:
    """An answer grounded in the caller's documents, citing the chunks it was given.

    Streamed as server-sent events with `stream: true`: a `citations` event comes first.
    Warning `no_context` when no document is relevant."""
    who = caller()
    if body.stream:
        return event_stream(stream_ask(body, who))
    data, warnings = ask(body, who)
    return envelope(data, warnings=warnings)


# The request body of `POST /documents`, documented by hand: the view reads JSON or a form.
UPLOAD_DOC: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/DocumentCreate"}},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "title": {"type": "string", "maxLength": 200},
                },
            }
        },
    },
}
