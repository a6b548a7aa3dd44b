"""Documents, embeddings, vector search and grounded answers (`/api/v1/documents`,
`/api/v1/ai/ask`, `flask rag`, the `search_documents` tool).

The vector store is PostgreSQL with pgvector, or SQLite with sqlite-vec on the embedded
default; both behind `store.VectorStore`.
"""

from __future__ import annotations

from typing import Any

from flask_openapi3 import OpenAPI
from flask_openapi3.models.media_type import MediaType
from flask_openapi3.models.request_body import RequestBody
from flask_openapi3.models.response import Response as OpenAPIResponse
from flask_openapi3.models.schema import Schema

from ..ai.settings import AISettings
from ..core.api import accept_uploads
from ..core.deploy import add_deploy_check
from ..core.extensions import db
from ..core.health import Check, add_check
from ..core.settings import init_feature_settings
from . import tool  # noqa: F401 - registers the search_documents tool
from .api import UPLOAD_DOC, ask_bp, documents_bp
from .cli import rag_cli
from .embeddings import build_embedder
from .models import DocumentCreate
from .service import get_store
from .settings import RAGSettings
from .store import PgVectorStore, SqliteVecStore, load_sqlite_vec, sqlite_loads_extensions

SQLITE_WITHOUT_EXTENSIONS = (
    "use_rag: this Python's sqlite3 cannot load extensions, so sqlite-vec (the vector store "
    "of a SQLite DATABASE_URL) cannot run: set DATABASE_URL to PostgreSQL with pgvector, or use "
    "a Python built with loadable SQLite extensions (e.g. the system's python3, or pyenv with "
    'PYTHON_CONFIGURE_OPTS="--enable-loadable-sqlite-extensions")'
)


def init_app(app: OpenAPI) -> None:
    settings = init_feature_settings(app, RAGSettings)
    ai = app.extensions["feature_settings"][AISettings]
    app.extensions["rag_embedder"] = build_embedder(settings, ai)
    if settings.is_sqlite:
        if not sqlite_loads_extensions():
            raise SystemExit(SQLITE_WITHOUT_EXTENSIONS)
        load_sqlite_vec(app.extensions["database_engine"])
        app.extensions["rag_store"] = SqliteVecStore()
    else:
        app.extensions["rag_store"] = PgVectorStore()
    app.register_api(documents_bp)
    app.register_api(ask_bp)
    accept_uploads(app, "documents.create_document")
    document_upload(app)
    document_ask_stream(app)
    app.cli.add_command(rag_cli)
    add_check(app, "vector_store", check_vector_store)
    add_deploy_check(app, check_vector_extension)


def check_vector_store() -> Check:
    store = get_store()
    try:
        with db.engine.connect() as connection:
            problem = store.check(connection)
    except Exception as exc:  # the database check says why the database is unreachable
        return Check(status="error", detail=type(exc).__name__)
    return Check(status="error" if problem else "ok", detail=problem or store.name)


def check_vector_extension() -> list[str]:
    """pgvector is installed in the database (PostgreSQL), sqlite-vec loads (SQLite)."""
    try:
        with db.engine.connect() as connection:
            problem = get_store().check(connection)
    except Exception:  # the database check of the core reports an unreachable database
        return []
    return [problem] if problem else []


# One server-sent event, as clients and checkers parse the stream (see ai/api.py, SSE_DOC).
ASK_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "enum": ["citations", "delta", "done", "error"]},
        "data": {"type": "string"},
    },
}


def document_ask_stream(app: OpenAPI) -> None:
    """`POST /ai/ask` answers an envelope, or with `stream: true` server-sent events."""
    operation = app.paths["/api/v1/ai/ask"].post
    if operation is None or operation.responses is None:
        return
    answer = operation.responses["200"]
    if isinstance(answer, OpenAPIResponse) and answer.content is not None:
        answer.content["text/event-stream"] = MediaType.model_validate({"schema": ASK_EVENT})


def document_upload(app: OpenAPI) -> None:
    """`POST /documents` reads JSON or a multipart form itself: document both bodies."""
    body: Any = UPLOAD_DOC
    operation = app.paths["/api/v1/documents"].post
    if operation is not None:
        operation.requestBody = RequestBody.model_validate(body)
    app.components_schemas.setdefault(
        "DocumentCreate", Schema.model_validate(DocumentCreate.model_json_schema())
    )
