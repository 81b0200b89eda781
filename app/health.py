"""``GET /healthz``: is the app up, and can it reach its database."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, Response, jsonify

from app.extensions import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """200 with ``{"status": "ok"}`` when the database answers, 503 otherwise."""
    try:
        db.session.execute(sa.text("SELECT 1"))
        database = "ok"
    except sa.exc.SQLAlchemyError as exc:
        db.session.rollback()
        return jsonify({"status": "unavailable", "database": "unreachable", "error": type(exc).__name__}), 503
    return jsonify({"status": "ok", "database": database}), 200
