"""The errors of documents: what cannot be read, and what is too big."""

from __future__ import annotations

from ..core.errors import PayloadTooLarge, RequestValidationFailed, UnsupportedMediaType


class UnsupportedDocumentType(UnsupportedMediaType):
    message = "Send text/plain, text/markdown or application/pdf, or JSON {title, text}."


class DocumentTooLarge(PayloadTooLarge):
    message = "The document is too long."


class UnreadableDocument(RequestValidationFailed):
    """A file we accept by type but cannot read: 422 naming the `file` field."""

    message = "The document could not be read."

    def __init__(self, message: str) -> None:
        error = {"loc": ["file"], "msg": message, "type": "value_error"}
        super().__init__(message, details={"errors": [error]})


def invalid(field: str, message: str, kind: str = "value_error") -> RequestValidationFailed:
    """A 422 naming the field, shaped like the request validation's."""
    return RequestValidationFailed(
        f"{field}: {message}", details={"errors": [{"loc": [field], "msg": message, "type": kind}]}
    )
