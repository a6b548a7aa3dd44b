"""The success half of the response envelope, and its schema for the OpenAPI document.

errors.py holds the error half; `ErrorEnvelope` documents it.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from flask import Response, jsonify
from pydantic import BaseModel

T = TypeVar("T")


class EnvelopeWarning(BaseModel):
    code: str
    message: str


class Envelope(BaseModel, Generic[T]):
    success: Literal[True]
    message: str | None
    data: T
    warnings: list[EnvelopeWarning]


class ErrorEnvelope(BaseModel):
    success: Literal[False]
    message: str
    code: str
    details: dict[str, Any] | None


def envelope(
    data: Any = None,
    *,
    message: str | None = None,
    status: int = 200,
    warnings: list[EnvelopeWarning] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    response = jsonify(
        {
            "success": True,
            "message": message,
            "data": data,
            "warnings": [warning.model_dump() for warning in warnings or []],
        }
    )
    response.status_code = status
    if headers:
        response.headers.update(headers)
    return response
