"""Signed, expiring context links (Front, Freshdesk, Zammad) and Chatwoot's re-checked context.

What belongs here: how a helpdesk that cannot sign a request of its own opens the agent's panel.

- **Context links** ``GET /sidebar/open/<key>?ticket=&email=&agent=&exp=&nonce=&sig=``: ``sig`` is
  the hex HMAC-SHA256 of ``canonical(...)`` (every other field, in a fixed order) keyed with the
  integration's sidebar secret (``sidebar_secret``). A link expires at ``exp`` (never more than
  ``MAX_LINK_SECONDS`` ahead) and works once: its nonce is kept in ``SeenNonce`` until ``exp``.
  Who signs: Rebound itself (``make_context_link``: links in Front comments and Zammad notes, the
  demo helpdesk, ``GET /api/v1/integrations/<id>/sidebar-link``) or a Freshdesk app's serverless
  function holding the secret as a secure installation parameter. See
  docs/sidebar.md and docs/setup/<kind>.md for each helpdesk's setup.
- **Chatwoot dashboard apps**: the app's URL is static and Chatwoot hands the page its context
  (conversation, contact, current agent) by an unauthenticated ``postMessage`` [V, chatwoot
  ``DashboardApp/Frame.vue``]. The page (``templates/sidebar/chatwoot.html`` +
  ``app/static/sidebar/chatwoot.js``) posts that context back with a single-use page nonce, and
  the server believes it only once Chatwoot's API confirms it: the conversation exists in the
  integration's account, its contact has the claimed email, and the claimed agent is an agent
  of that account.

Both end with a panel token (``context.issue_panel_token``) whose ``helpdesk_origin`` is the only
origin besides ours that may frame the panel.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets as random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from flask import current_app, g, jsonify, redirect, render_template, request, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from pydantic import BaseModel, Field
from werkzeug.wrappers import Response

from app.connectors.models import Integration
from app.connectors.schemas import MAIL_KINDS
from app.connectors.services import credentials, find_by_key, signing_secrets
from app.errors import IntegrationError, NotFound, Unauthorized
from app.extensions import utcnow
from app.sidebar.blueprints import bp
from app.sidebar.nonces import use_once
from app.sidebar.context import PanelContext, issue_panel_token
from app.validation import Schema, parse_json

MAX_LINK_SECONDS = 86_400  # a link further in the future is refused: links are for one visit, not bookmarks
# A reusable link (no nonce) lives in a ticket's internal note, where only the helpdesk's agents see
# it; it opens the panel as often as needed until it expires (Zammad and Front have no signed sidebar).
NOTE_LINK_SECONDS = 30 * 86_400
# Helpdesks whose agents reach the panel through a link Rebound writes into the ticket's first note.
NOTE_LINK_KINDS = frozenset({"zammad", "front"})
DEFAULT_LINK_SECONDS = 15 * 60
CLOCK_SKEW_SECONDS = 60  # a signer's clock (Freshworks' serverless runtime) may run a little ahead of ours
PAGE_NONCE_SECONDS = 10 * 60  # how long the Chatwoot page may wait for Chatwoot's context
CHATWOOT_TIMEOUT = 5.0
LINK_VERSION = "rebound-sidebar-link-v1"
_DERIVE_LABEL = b"rebound.sidebar-link.v1"
_PAGE_SALT = "rebound.sidebar.chatwoot-page.v1"
FRONT_ORIGINS = "https://*.frontapp.com https://*.frontapplication.com"  # Front's own advice [V, reference §5.2]

_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
_SIG = re.compile(r"[0-9a-f]{64}")
_EXP = re.compile(r"[0-9]{1,12}")
_ID = re.compile(r"[^\x00-\x1f\x7f]{1,128}")  # printable: the canonical string is line-based
_EMAIL = re.compile(r"[^\x00-\x20\x7f]{3,320}")
_NUMBER = re.compile(r"[0-9]{1,18}")


# --- secrets and canonical form ---------------------------------------------------------------


def sidebar_secrets(integration: Integration) -> list[str]:
    """The keys a context link may be signed with, the one to sign with first.

    The credential ``sidebar_secret`` when the tenant set one (needed where someone else signs:
    the Freshdesk app's secure iparam holds the same value). Otherwise a key derived from the
    signing secret by HMAC, so every integration can sign its own links without a migration,
    and rotating the signing secret retires old links with it (the previous secret's key is
    accepted during the rotation's grace period, like webhooks).
    """
    own = credentials(integration).get("sidebar_secret")
    if own:
        return [own]
    return [hmac.new(secret.encode(), _DERIVE_LABEL, hashlib.sha256).hexdigest()
            for secret in signing_secrets(integration)]


def canonical(key: str, ticket: str, email: str, agent: str, exp: int | str, nonce: str) -> bytes:
    """What ``sig`` signs: a version line, then one ``name=value`` line per field, in this order.

    No value may hold a line break (``open_link`` refuses those), so no two links share a string.
    """
    lines = [LINK_VERSION, f"key={key}", f"ticket={ticket}", f"email={email}", f"agent={agent}",
             f"exp={exp}", f"nonce={nonce}"]
    return "\n".join(lines).encode()


def sign(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ContextLink:
    url: str
    expires_at: datetime


def make_context_link(integration: Integration, ticket_id: str, email: str | None = None,
                      agent: str | None = None, ttl: int = DEFAULT_LINK_SECONDS, *,
                      external: bool = True, reusable: bool = False) -> ContextLink:
    """A signed link that opens the panel for ``ticket_id``, once, within ``ttl`` seconds.

    :param external: an absolute URL (``REBOUND_PUBLIC_URL``) for helpdesk notes and the API; a
        path for pages Rebound serves itself (the demo helpdesk).
    :param reusable: no nonce: it opens the panel any number of times until it expires (at most
        ``NOTE_LINK_SECONDS``), for a ticket's internal note. The signature covers the empty nonce,
        so a single-use link can't be turned into one.
    :raise ValueError: ``ttl`` outside 1 s…``MAX_LINK_SECONDS`` (``NOTE_LINK_SECONDS`` when
        reusable), or a value a link cannot carry.
    """
    longest = NOTE_LINK_SECONDS if reusable else MAX_LINK_SECONDS
    if not 1 <= ttl <= longest:
        raise ValueError(f"ttl must be between 1 and {longest} seconds")
    email, agent = email or "", agent or ""
    if not _ID.fullmatch(ticket_id) or (email and not _EMAIL.fullmatch(email)) or (agent and not _ID.fullmatch(agent)):
        raise ValueError("ticket, email and agent must be printable, ticket and agent at most 128 characters")
    exp = int(time.time()) + ttl
    nonce = "" if reusable else random.token_urlsafe(18)
    sig = sign(sidebar_secrets(integration)[0], canonical(integration.public_key, ticket_id, email, agent, exp, nonce))
    query = urlencode({"ticket": ticket_id, "email": email, "agent": agent, "exp": exp, "nonce": nonce, "sig": sig})
    path = f"/sidebar/open/{integration.public_key}?{query}"
    url = current_app.config["REBOUND_PUBLIC_URL"].rstrip("/") + path if external else path
    return ContextLink(url, datetime.fromtimestamp(exp, timezone.utc))


class SidebarLinkQuery(Schema):
    """``GET /api/v1/integrations/{id}/sidebar-link``: who opens which ticket, for how long."""

    ticket: str = Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$",
                        description="The helpdesk's ticket (conversation) id.")
    email: str | None = Field(default=None, min_length=3, max_length=320, pattern=r"^[^\x00-\x20\x7f]+$",
                              description="The requester's email address.")
    agent: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$",
                              description="The agent's id in the helpdesk.")
    ttl: int = Field(default=DEFAULT_LINK_SECONDS, ge=1, le=MAX_LINK_SECONDS,
                     description="Seconds until the link expires.")


class SidebarLinkOut(BaseModel):
    url: str = Field(description="Opens the panel once, until expires_at.")
    expires_at: datetime


# --- shared steps -----------------------------------------------------------------------------


def _integration(public_key: str, kinds: frozenset[str] | None = None) -> Integration:
    """The enabled helpdesk integration behind ``public_key``; 404 otherwise (like webhooks)."""
    integration = find_by_key(public_key)
    if (integration is None or not integration.enabled or integration.kind in MAIL_KINDS
            or (kinds is not None and integration.kind not in kinds)):
        raise NotFound("No such sidebar.")
    return integration


def helpdesk_origin(integration: Integration) -> str | None:
    """The origins that may frame this integration's panel: the ``helpdesk_origin`` setting, else
    Front's own two for Front, else the origin of ``base_url``."""
    settings = integration.settings or {}
    if settings.get("helpdesk_origin"):
        return str(settings["helpdesk_origin"])
    if integration.kind == "front":
        return FRONT_ORIGINS
    parts = urlsplit(settings.get("base_url") or "")
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else None


def consume_nonce(integration: Integration, nonce: str, expires_at: datetime) -> None:
    """:raise Unauthorized: (401, ``reason: replayed``) the nonce was used before."""
    use_once(integration.id, nonce, expires_at, "This link was already used; open the panel again from the ticket.")


def _refuse(reason: str, message: str = "This sidebar link is not valid.") -> Unauthorized:
    return Unauthorized(message, {"reason": reason})


# --- context links ----------------------------------------------------------------------------


@bp.get("/open/<key>")
def open_link(key: str) -> Response:
    """Check a context link and send the agent to the panel (303), or answer 401.

    Malformed, forged, expired and replayed links are all 401 with ``details.reason``
    (``malformed``, ``bad_signature``, ``expired``, ``too_far_ahead``, ``replayed``).
    """
    integration = _integration(key)
    args = request.args
    ticket, email, agent = args.get("ticket", ""), args.get("email", ""), args.get("agent", "")
    exp_text, nonce, sig = args.get("exp", ""), args.get("nonce", ""), args.get("sig", "").lower()
    if not (_ID.fullmatch(ticket) and _EXP.fullmatch(exp_text) and (not nonce or _NONCE.fullmatch(nonce))
            and _SIG.fullmatch(sig)
            and (not email or _EMAIL.fullmatch(email)) and (not agent or _ID.fullmatch(agent))):
        raise _refuse("malformed", "This sidebar link is incomplete or malformed.")
    message = canonical(key, ticket, email, agent, exp_text, nonce)
    # Every candidate key is tried, so the time taken does not say which one came close.
    matches = [hmac.compare_digest(sign(secret, message), sig) for secret in sidebar_secrets(integration)]
    if not any(matches):
        raise _refuse("bad_signature")
    # Expiry after the signature: only a genuine link learns that it merely expired.
    exp, now = int(exp_text), time.time()
    if exp <= now:
        raise _refuse("expired", "This sidebar link has expired; open the panel again from the ticket.")
    longest = MAX_LINK_SECONDS if nonce else NOTE_LINK_SECONDS
    if exp > now + longest + CLOCK_SKEW_SECONDS:
        raise _refuse("too_far_ahead", f"Sidebar links may live at most {longest} seconds.")
    if nonce:  # a single-use link; one without a nonce is a note's reusable link
        consume_nonce(integration, nonce, datetime.fromtimestamp(exp, timezone.utc))
    context = PanelContext(tenant_id=integration.tenant_id, integration_id=integration.id, ticket_id=ticket,
                           agent_id=agent or None, requester_email=email or None,
                           helpdesk_origin=helpdesk_origin(integration))
    return redirect(url_for("sidebar.panel", t=issue_panel_token(context)), 303)


# --- Chatwoot dashboard app ---------------------------------------------------------------------


def _page_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_PAGE_SALT)


@bp.get("/chatwoot/<key>")
def chatwoot_page(key: str) -> str:
    """The page Chatwoot frames (its dashboard app URL): it waits for Chatwoot's ``appContext``
    and exchanges it, with the single-use page nonce rendered here, for a panel URL."""
    integration = _integration(key, frozenset({"chatwoot"}))
    origin = helpdesk_origin(integration)
    g.helpdesk_origin = origin  # for frame-ancestors: this page is framed by Chatwoot before any panel token exists
    page = _page_serializer().dumps({"i": integration.id, "n": random.token_urlsafe(18)})
    return render_template("sidebar/chatwoot.html", page_token=page, chatwoot_origin=origin or "",
                           context_url=url_for("sidebar.chatwoot_context", key=key))


class ChatwootClaim(Schema):
    """What the page read from Chatwoot's ``appContext`` message, with the page's nonce."""

    page: str = Field(min_length=10, max_length=500, description="The page token the GET rendered.")
    conversation_id: int = Field(ge=1, le=10**15, description="``data.conversation.id`` (the display id).")
    email: str = Field(min_length=3, max_length=320, description="``data.contact.email``.")
    agent_id: int = Field(ge=1, le=10**15, description="``data.currentAgent.id``.")
    agent_name: str | None = Field(default=None, max_length=200)


class PanelUrl(BaseModel):
    panel_url: str


@bp.post("/chatwoot/<key>/context")
def chatwoot_context(key: str) -> Response:
    """Check the page nonce (once), then Chatwoot's claimed context against its API; answer
    ``{"panel_url": …}`` (401 on a forged, expired or replayed claim; 502 when Chatwoot can't say)."""
    integration = _integration(key, frozenset({"chatwoot"}))
    claim = parse_json(ChatwootClaim, request.get_data())
    try:
        page = _page_serializer().loads(claim.page, max_age=PAGE_NONCE_SECONDS)
    except SignatureExpired:
        raise _refuse("expired", "The page waited too long for Chatwoot; reload the tab.") from None
    except BadSignature:
        raise _refuse("bad_signature", "The page token is not valid.") from None
    if not isinstance(page, dict) or page.get("i") != integration.id or not isinstance(page.get("n"), str):
        raise _refuse("bad_signature", "The page token belongs to another sidebar.")
    # The nonce is spent before Chatwoot is asked, so a captured claim can't make us call it twice.
    consume_nonce(integration, "cw:" + page["n"], utcnow() + timedelta(seconds=PAGE_NONCE_SECONDS))
    contact_email, agent = _confirm_with_chatwoot(integration, claim)
    context = PanelContext(
        tenant_id=integration.tenant_id, integration_id=integration.id, ticket_id=str(claim.conversation_id),
        agent_id=str(claim.agent_id), agent_name=str(agent.get("name") or claim.agent_name or "") or None,
        requester_email=contact_email, helpdesk_origin=helpdesk_origin(integration),
    )
    return jsonify(PanelUrl(panel_url=url_for("sidebar.panel", t=issue_panel_token(context))).model_dump())


def _confirm_with_chatwoot(integration: Integration, claim: ChatwootClaim) -> tuple[str, dict[str, Any]]:
    """The contact's email and the agent, as Chatwoot's API states them.

    :raise Unauthorized: (401) no such conversation, another contact's email, or no such agent.
    :raise IntegrationError: (502) Chatwoot unreachable, failing, refusing our token, or not set up.
    """
    stored = credentials(integration)
    base_url = (integration.settings or {}).get("base_url")
    token, account = (stored.get("api_access_token") or "").strip(), str(stored.get("account_id") or "")
    if not base_url or not token or not _NUMBER.fullmatch(account):
        raise IntegrationError("This Chatwoot integration needs settings.base_url and the credentials "
                               "api_access_token and account_id to check the sidebar's context.",
                               code="helpdesk_not_configured")
    root = f"{base_url.rstrip('/')}/api/v1/accounts/{account}"
    conversation = _chatwoot_get(f"{root}/conversations/{claim.conversation_id}", token)
    if conversation is None:
        raise _refuse("unknown_conversation", "Chatwoot has no such conversation.")
    sender = (conversation.get("meta") or {}).get("sender") or {}
    email = sender.get("email") if isinstance(sender, dict) else None
    if not isinstance(email, str) or not hmac.compare_digest(email.strip().lower().encode(),
                                                             claim.email.strip().lower().encode()):
        raise _refuse("context_mismatch", "The conversation's contact is not the one the sidebar named.")
    agents = _chatwoot_get(f"{root}/agents", token)
    listed = agents if isinstance(agents, list) else []
    agent = next((a for a in listed if isinstance(a, dict) and a.get("id") == claim.agent_id), None)
    if agent is None:
        raise _refuse("unknown_agent", "The agent the sidebar named is not an agent of this Chatwoot account.")
    return email.strip(), agent


def _chatwoot_get(url: str, token: str) -> Any:
    """The JSON at ``url``; None on 404.

    :raise IntegrationError: (502) no answer, a 5xx, a refused token, or not JSON.
    """
    try:
        response = requests.get(url, headers={"api_access_token": token, "Accept": "application/json"},
                                timeout=CHATWOOT_TIMEOUT, allow_redirects=False)
    except requests.RequestException as exc:
        raise IntegrationError("Chatwoot did not answer; the sidebar can't check its context now. Try again.",
                               {"error": type(exc).__name__}, code="helpdesk_unavailable") from None
    if response.status_code == 404:
        return None
    if response.status_code in (401, 403):
        raise IntegrationError("Chatwoot refused the integration's api_access_token.",
                               {"status": response.status_code}, code="helpdesk_refused")
    if response.status_code != 200:
        raise IntegrationError("Chatwoot failed to answer; the sidebar can't check its context now. Try again.",
                               {"status": response.status_code}, code="helpdesk_unavailable")
    try:
        return response.json()
    except ValueError:
        raise IntegrationError("Chatwoot answered something other than JSON.", {"status": 200},
                               code="helpdesk_unavailable") from None
