"""The sidebar's blueprints: ``sidebar`` (entry points per helpdesk and the panel, under /sidebar)
and ``demo`` (the stand-in helpdesk at /). Route modules attach to them on import."""

from __future__ import annotations

from flask import Blueprint, Response, g

bp = Blueprint("sidebar", __name__, url_prefix="/sidebar")
demo_bp = Blueprint("demo", __name__)


@bp.after_request
def frame_ancestors(response: Response) -> Response:
    """Only the integration's helpdesk (and we) may frame the panel."""
    panel = getattr(g, "panel", None)
    # Pages framed before a panel token exists (Chatwoot's dashboard app page) set g.helpdesk_origin.
    origin = panel.helpdesk_origin if panel is not None else g.get("helpdesk_origin")
    response.headers["Content-Security-Policy"] = f"frame-ancestors 'self'{' ' + origin if origin else ''}"
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response
