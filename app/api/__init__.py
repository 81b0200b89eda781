"""The JSON API at ``/api/v1``: thin views — parse → service or query → serialise."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from app.api import canned, cases, docs, integrations, orders, policy  # noqa: E402,F401  (routes register on import)
from app.api import webhook_subscriptions  # noqa: E402,F401
