"""The panel's own session: a short-lived signed token naming tenant, integration, ticket and agent.

Helpdesks authenticate only the first load of the panel (a ZAF JWT, a signed POST, a signed context
link); browsers block third-party cookies in iframes. So after that first load the panel carries
this token: in the ``X-Panel-Token`` header (htmx requests) or a hidden ``panel_token`` form field
(plain form posts), never in a cookie. State-changing requests accept it only from the header or
the form body, so a cross-site page can't forge them (CSRF): it can neither read the token nor set
the header. GET pages may take it from the ``t`` query parameter (the iframe's first URL).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from flask import current_app, g, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from app.errors import Unauthorized

TOKEN_SALT = "rebound.panel.v1"
HEADER = "X-Panel-Token"
FORM_FIELD = "panel_token"
QUERY_PARAM = "t"

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class PanelContext:
    """Who is looking at which ticket, as the helpdesk vouched for it on the first load."""

    tenant_id: int
    integration_id: int
    ticket_id: str
    agent_id: str | None = None
    agent_name: str | None = None
    requester_email: str | None = None
    requester_name: str | None = None
    subject: str | None = None
    helpdesk_origin: str | None = None  # for Content-Security-Policy frame-ancestors


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=TOKEN_SALT)


def issue_panel_token(context: PanelContext) -> str:
    """A token for ``context``, valid for ``REBOUND_PANEL_TOKEN_SECONDS``."""
    return _serializer().dumps(asdict(context))


def read_panel_token(token: str) -> PanelContext:
    """The context a token names.

    :raise Unauthorized: (401) missing, forged, or expired (the panel then asks the agent to reload).
    """
    if not token:
        raise Unauthorized("The panel's session token is missing; reload the ticket.")
    try:
        data = _serializer().loads(token, max_age=current_app.config["REBOUND_PANEL_TOKEN_SECONDS"])
    except SignatureExpired:
        raise Unauthorized("The panel's session has expired; reload the ticket.", {"reason": "expired"}) from None
    except BadSignature:
        raise Unauthorized("The panel's session token is not valid.", {"reason": "bad_signature"}) from None
    try:
        return PanelContext(**data)
    except TypeError:
        raise Unauthorized("The panel's session token is not valid.", {"reason": "bad_payload"}) from None


def token_from_request() -> str:
    """The token of this request: header, then form field; the query only for safe methods."""
    token = request.headers.get(HEADER) or (request.form.get(FORM_FIELD) if request.method == "POST" else None)
    if not token and request.method in ("GET", "HEAD"):
        token = request.args.get(QUERY_PARAM)
    return token or ""


def panel_required(view: F) -> F:
    """Run ``view`` only with a valid panel token; ``g.panel`` is its ``PanelContext``."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        g.panel = read_panel_token(token_from_request())
        g.panel_token = issue_panel_token(g.panel)  # refreshed on every request: an active panel stays signed in
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
