"""``GET /api/v1/openapi.json``: the document built from the same schemas the views validate with."""

from __future__ import annotations

from flask import jsonify, Response

from app.api import bp
from app.api.openapi import build_document
from app.api.schemas import ErrorResponse


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """The OpenAPI 3.1 description of this API (no token needed)."""
    return jsonify(build_document(ErrorResponse, "Rebound API", "1.0.0", "/api/v1"))
