"""One exception hierarchy, and the one place that turns it into the response envelope.

Features add their own errors (subclasses of `APIError`) in their `errors.py`.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, request
from pydantic import ValidationError
from pydantic_core import ErrorDetails
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

logger = logging.getLogger(__name__)


class APIError(Exception):
    """An error the client should see: status, stable code, message and optional details."""

    status = 500
    code = "internal_error"
    message = "Internal server error."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.details = details
        self.headers = headers or {}


class BadRequest(APIError):
    status, code, message = 400, "bad_request", "The request body is not valid JSON."


class Unauthorized(APIError):
    status, code, message = 401, "unauthorized", "Authentication required."


class Forbidden(APIError):
    status, code, message = 403, "forbidden", "You are not allowed to do this."


class NotFound(APIError):
    status, code, message = 404, "not_found", "Resource not found."


class MethodNotAllowed(APIError):
    status, code, message = 405, "method_not_allowed", "Method not allowed."


class Conflict(APIError):
    status, code, message = 409, "conflict", "The resource already exists."


class PayloadTooLarge(APIError):
    status, code, message = 413, "payload_too_large", "The request body is too large."


class UnsupportedMediaType(APIError):
    status, code, message = 415, "unsupported_media_type", "Send the body as application/json."


class RequestValidationFailed(APIError):
    status, code, message = 422, "validation_error", "The request is invalid."


class RateLimited(APIError):
    status, code, message = 429, "rate_limited", "Too many requests."


class ServiceUnavailable(APIError):
    status, code, message = 503, "service_unavailable", "A backing service is unavailable."


# Werkzeug's HTTP errors (routing, body size, ...) mapped onto ours by status.
_HTTP_ERRORS: dict[int, type[APIError]] = {
    error.status: error
    for error in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        PayloadTooLarge,
        UnsupportedMediaType,
        RequestValidationFailed,
        RateLimited,
        ServiceUnavailable,
    )
}


def validation_details(exc: ValidationError) -> dict[str, Any]:
    """pydantic errors as the contract's `details.errors` list of {loc, msg, type}, with
    messages a person can act on (no class names, no regular expressions)."""
    return {
        "errors": [
            {"loc": list(error["loc"]), "msg": readable(error), "type": error["type"]}
            for error in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
    }


# pydantic's messages that name a class or show a pattern, in words a client can act on.
_MESSAGES = {
    "model_type": "a JSON object is required",
    "model_attributes_type": "a JSON object is required",
    "dict_type": "a JSON object is required",
    "missing": "this field is required",
    "extra_forbidden": "unknown field: remove it",
}


def readable(error: ErrorDetails) -> str:
    if error["type"] == "string_pattern_mismatch":
        field = str(error["loc"][-1]) if error["loc"] else ""
        if "email" in field:
            return "not a valid email address"
        return "does not have the expected format"
    return _MESSAGES.get(error["type"], error["msg"].removeprefix("Value error, "))


def error_response(error: APIError) -> Response:
    body = {
        "success": False,
        "message": error.message,
        "code": error.code,
        "details": error.details,
    }
    response = jsonify(body)
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def _from_http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    error_class = _HTTP_ERRORS.get(status)
    if error_class is None:
        error: APIError = APIError(exc.description)
        error.status = status
        error.code = (exc.name or "error").lower().replace(" ", "_")
    else:
        error = error_class()
    headers = {}
    if status == 405 and exc.valid_methods:  # type: ignore[attr-defined]
        headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
    error.headers = headers
    return error_response(error)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(APIError)
    def _api_error(exc: APIError) -> Response:
        return error_response(exc)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        if isinstance(exc.response, Response) and exc.response.is_json:
            return exc.response  # already an envelope (validation errors abort with one)
        return _from_http_exception(exc)

    @app.errorhandler(OperationalError)
    def _database_down(exc: OperationalError) -> Response:
        logger.error("database unavailable: %s", exc.orig, extra={"path": request.path})
        return error_response(ServiceUnavailable("The database is unavailable."))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(APIError())


def validation_error_callback(exc: ValidationError) -> Response:
    """flask-openapi3's hook: request validation failures become our 422 envelope."""
    return error_response(RequestValidationFailed(details=validation_details(exc)))
