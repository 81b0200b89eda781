"""The one error hierarchy and the one JSON error shape.

Every failure a client can cause is an ``AppError`` (or a werkzeug ``HTTPException``) and leaves
as ``{"error": {"code": ..., "message": ..., "details": {...}}}``. Unexpected errors roll the
session back, are logged, and leave as a 500 in the same shape without internals.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from app.extensions import db

log = logging.getLogger(__name__)


class AppError(Exception):
    """Base of every error a client can cause; carries its HTTP status and a stable code."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, details: dict[str, Any] | None = None, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class BadRequest(AppError):
    status = 400
    code = "bad_request"


class MalformedJSON(AppError):
    status = 400
    code = "malformed_json"


class ValidationFailed(AppError):
    """Input that parsed but does not fit the schema; ``details.fields`` maps field → messages."""

    status = 422
    code = "validation_failed"


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"


class Forbidden(AppError):
    status = 403
    code = "forbidden"


class NotFound(AppError):
    status = 404
    code = "not_found"


class Conflict(AppError):
    status = 409
    code = "conflict"


class InvalidTransitionError(Conflict):
    """An action the case's status or its guards do not allow; ``details.reasons`` says why."""

    code = "invalid_transition"


class VersionConflict(Conflict):
    """A write based on a stale version; ``details.current_version`` is the one to retry with."""

    code = "version_conflict"


class PayloadTooLarge(AppError):
    status = 413
    code = "payload_too_large"


class IntegrationError(AppError):
    status = 502
    code = "integration_error"


def _code_for(exc: HTTPException) -> str:
    return re.sub(r"[^a-z0-9]+", "_", (exc.name or "error").lower()).strip("_")


def error_response(status: int, code: str, message: str, details: dict[str, Any] | None = None) -> Response:
    """Build a response in the project's one JSON error shape."""
    response = jsonify({"error": {"code": code, "message": message, "details": details or {}}})
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    """Turn every error into the JSON error shape (HTML pages come with the sidebar)."""

    @app.errorhandler(AppError)
    def handle_app_error(exc: AppError) -> Response:
        db.session.rollback()
        response = jsonify(exc.to_dict())
        response.status_code = exc.status
        return response

    @app.errorhandler(RequestEntityTooLarge)
    def handle_too_large(exc: RequestEntityTooLarge) -> Response:
        limit = app.config.get("MAX_CONTENT_LENGTH")
        return error_response(
            PayloadTooLarge.status, PayloadTooLarge.code,
            f"The request body is larger than the {limit} bytes allowed.", {"max_bytes": limit},
        )

    @app.errorhandler(HTTPException)
    def handle_http_exception(exc: HTTPException) -> Response:
        response = error_response(exc.code or 500, _code_for(exc), exc.description or exc.name)
        if exc.code == 405 and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception) -> Response:
        db.session.rollback()
        log.exception("Unhandled error")
        return error_response(500, "internal_error", "Something went wrong on our side; nothing was changed.")
