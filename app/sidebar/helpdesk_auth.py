"""Sidebar entry points of the helpdesks that vouch for the agent themselves, each checked the way
that helpdesk signs, each ending in a ``PanelContext`` (see ``context.py``):

- **Zendesk** (ZAF app with ``signedUrls``): ``POST /sidebar/zendesk/<key>`` carries an RS256 JWT in
  the form field ``token``; answered with a 303 to the panel.
- **Help Scout** (dynamic app): ``POST /sidebar/helpscout/<key>``, body signed with base64
  HMAC-SHA1 in ``X-HelpScout-Signature``; answered with ``{"html": …}``.
- **Intercom** (Canvas Kit, inbox "conversation details"): ``POST /sidebar/intercom/<key>/initialize``
  and ``/submit``, body signed with hex HMAC-SHA256 in ``X-Body-Signature``; answered with a canvas.
- **Gorgias** (HTTP widget): ``GET /sidebar/gorgias/<key>?ticket_id=…`` behind the integration's
  shared secret (``X-Rebound-Secret`` or Basic auth, as its webhooks); answered with JSON data.

Replays: a Zendesk token's ``jti`` (or, as Zendesk documents no ``jti``, the token's hash) is kept
in ``SeenNonce`` until the token expires. Help Scout and Intercom sign the body but send no
timestamp or delivery id, so the body's hash is the nonce, kept ``BODY_NONCE_SECONDS``: a captured
request can't be replayed within that window, and outside it only yields what the helpdesk would
show anyway. The window is short because the same agent opening the same conversation again sends
the very same body. Gorgias's widget is a read-only GET: nothing to replay.

Every refusal is a 401 in the JSON error shape (Zendesk's iframe gets a small HTML page instead)
and is counted in the integration's rejected-request log.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import time
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any
from urllib.parse import urlsplit

import jwt
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from flask import Response, current_app, g, jsonify, redirect, render_template_string, request, url_for
from pydantic import ConfigDict, Field

from app.cases import states
from app.cases.models import ReturnCase
from app.cases.schemas import ApproveIn, ReasonRequiredIn, RequestInfoIn
from app.cases.services import Actor, perform_action
from app.connectors.models import Integration
from app.connectors.services import credentials, find_by_key, signing_secrets
from app.errors import AppError, BadRequest, Conflict, NotFound, PayloadTooLarge, Unauthorized, ValidationFailed, \
    error_response
from app.extensions import db, utcnow
from app.inbound.services import record_rejection
from app.intake.models import Suggestion
from app.orders.models import Customer
from app.sidebar.blueprints import bp
from app.sidebar.nonces import use_once
from app.sidebar.context import PanelContext, issue_panel_token, read_panel_token
from app.tenants.models import Tenant
from app.validation import Schema, parse_json, parse_mapping, read_body
from integrations.base import InboundRequest, SignatureError
from integrations.signing import decode_base64, decode_hex, require_hmac, verify_shared_secret

ZAF_LEEWAY_SECONDS = 30  # clock skew allowed on exp/iat/nbf of a Zendesk token
BODY_NONCE_SECONDS = 60  # how long a signed Help Scout / Intercom body can't be used again
CANVAS_MAX_AGE_SECONDS = 30 * 60  # an Intercom card older than this is refreshed instead of acted on
NUMERIC_ID = re.compile(r"[0-9]{1,20}")
TICKET_ID = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
HELPSCOUT_ORIGIN = "https://secure.helpscout.net"
INTERCOM_ORIGIN = "https://app.intercom.com"


# ---- shared -------------------------------------------------------------------------------------


def _integration(key: str, kind: str) -> Integration:
    """:raise NotFound: (404) unknown key, another helpdesk's key, or a disabled integration."""
    integration = find_by_key(key)
    if integration is None or integration.kind != kind or not integration.enabled:
        raise NotFound("No sidebar integration has this URL.")
    return integration


def _refuse(integration: Integration, error: AppError, body_bytes: int | None = None) -> AppError:
    """Count ``error`` in the integration's rejected-request log and hand it back to raise."""
    record_rejection(integration.tenant_id, integration.id, error.status, error.code, error.message,
                     request.remote_addr, body_bytes)
    return error


def _json_error(error: AppError) -> Response:
    """The JSON error shape, built here so that the sidebar's HTML error pages never apply: these
    callers are helpdesk servers, not browsers."""
    return error_response(error.status, error.code, error.message, error.details)


def _signed_body(integration: Integration) -> bytes:
    """The raw body, bounded like a webhook's.

    :raise PayloadTooLarge: (413) over ``REBOUND_WEBHOOK_MAX_BYTES``.
    """
    try:
        return read_body(current_app.config["REBOUND_WEBHOOK_MAX_BYTES"], cache=True)
    except PayloadTooLarge as exc:
        raise _refuse(integration, exc, exc.details.get("bytes")) from None


def _secret(integration: Integration, name: str, what: str) -> str:
    """A sidebar credential; never skip a check because it is missing (that would be an open door).

    :raise Unauthorized: (401) the credential is not set.
    """
    value = credentials(integration).get(name)
    if not value:
        raise _refuse(integration, Unauthorized(
            f"The {what} is not configured for this integration (credential {name!r}).",
            {"reason": "not_configured", "credential": name}, code="invalid_signature"))
    return str(value)


def _verify_hmac(integration: Integration, body: bytes, secret: str, algorithm: str, given: bytes | None,
                 what: str) -> None:
    """:raise Unauthorized: (401) the signature is missing, malformed or wrong."""
    try:
        require_hmac([secret], algorithm, body, given, what)
    except SignatureError as exc:
        raise _refuse(integration, Unauthorized(str(exc), {"reason": "bad_signature"}, code="invalid_signature"),
                      len(body)) from None


def claim_nonce(integration: Integration, nonce: str, expires_at: datetime, *, count: bool = True) -> None:
    """``use_once``, with a replay counted in the integration's rejected-request log (``count``).

    :raise Unauthorized: (401) the value was already used (a replay).
    """
    try:
        use_once(integration.id, nonce, expires_at)
    except Unauthorized as error:
        raise (_refuse(integration, error) if count else error) from None


def _claim_body(integration: Integration, body: bytes, *, count: bool = True) -> None:
    """:raise Unauthorized: (401) the same signed body was seen within ``BODY_NONCE_SECONDS``."""
    claim_nonce(integration, "body:" + hashlib.sha256(body).hexdigest(),
                utcnow() + timedelta(seconds=BODY_NONCE_SECONDS), count=count)


def public_url(path: str) -> str:
    """``path`` under ``REBOUND_PUBLIC_URL``: the address the helpdesk was given, whatever Host
    header (or proxy) this request came through."""
    return current_app.config["REBOUND_PUBLIC_URL"].rstrip("/") + path


def panel_url(token: str, external: bool = False) -> str:
    """The panel's URL with its token in ``t``; ``external``: absolute, for a link opened elsewhere."""
    path = url_for("sidebar.panel", t=token)
    return public_url(path) if external else path


def linked_case(integration: Integration, ticket_id: str) -> ReturnCase | None:
    """The newest case of this ticket: opened through this integration, or by hand (API) with a
    ticket reference of this helpdesk."""
    return db.session.scalar(
        sa.select(ReturnCase)
        .where(ReturnCase.tenant_id == integration.tenant_id, ReturnCase.ticket_id == ticket_id,
               sa.or_(ReturnCase.integration_id == integration.id,
                      sa.and_(ReturnCase.integration_id.is_(None), ReturnCase.ticket_provider == integration.kind)))
        .order_by(ReturnCase.id.desc()).limit(1))


def open_suggestion(integration: Integration, ticket_id: str) -> Suggestion | None:
    """Intake's open suggestion for this ticket, if any."""
    return db.session.scalar(sa.select(Suggestion).where(
        Suggestion.tenant_id == integration.tenant_id, Suggestion.integration_id == integration.id,
        Suggestion.ticket_id == ticket_id, Suggestion.status == "open"))


def status_label(status: str) -> str:
    return status.replace("_", " ").capitalize()


def _origin(url: str | None) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL, or None."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


def _ticket_id(value: Any, pattern: re.Pattern[str], field: str) -> str:
    """:raise BadRequest: (400) missing or not an id of this helpdesk."""
    text = str(value).strip() if value is not None else ""
    if not pattern.fullmatch(text):
        raise BadRequest(f"{field} is missing or not a ticket id.", {"field": field}, code="invalid_ticket_id")
    return text


def _settings(integration: Integration) -> dict[str, Any]:
    return integration.settings or {}


# ---- Zendesk ------------------------------------------------------------------------------------


def zendesk_issuer_host(integration: Integration) -> str | None:
    """The Zendesk account host a token must come from: setting ``zaf_issuer``, else ``base_url``."""
    configured = _settings(integration).get("zaf_issuer") or _settings(integration).get("base_url")
    if not configured:
        return None
    host = urlsplit(configured).hostname if "://" in configured else configured.strip().strip("/")
    return host.lower() if host else None


def zendesk_audience(integration: Integration) -> str:
    """The ``aud`` a token must carry: setting ``zaf_audience``, else this entry point's own URL."""
    return _settings(integration).get("zaf_audience") or public_url(
        url_for("sidebar.zendesk_entry", key=integration.public_key))


def verify_zaf_token(token: str, public_key_pem: str, audience: str, issuer_host: str) -> dict[str, Any]:
    """The claims of a ZAF signed-URL token, after every check: RS256 only (no ``none``, no HS256
    signed with the public key), signature, ``aud``, ``iss`` (``https://<host>`` or the bare host),
    ``exp`` and ``iat`` present, with ``ZAF_LEEWAY_SECONDS`` of clock skew.

    :raise Unauthorized: (401) with ``details.reason``: not_configured, expired, bad_audience,
        bad_issuer, bad_signature or malformed.
    """
    if not token:
        raise Unauthorized("No Zendesk token was posted (form field 'token'); enable signedUrls in the app.",
                           {"reason": "missing"}, code="invalid_token")
    try:
        key = load_pem_public_key(public_key_pem.encode("utf-8"))
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, RSAPublicKey):
        raise Unauthorized("The Zendesk app's public key (zaf_public_key) is missing or not an RSA PEM key.",
                           {"reason": "not_configured"}, code="invalid_token")
    try:
        claims = jwt.decode(token, key, algorithms=["RS256"], audience=audience, leeway=ZAF_LEEWAY_SECONDS,
                            options={"require": ["exp", "iat", "aud", "iss"]})
    except jwt.ExpiredSignatureError:
        raise Unauthorized("The Zendesk token has expired; reload the ticket.", {"reason": "expired"},
                           code="invalid_token") from None
    except jwt.InvalidAudienceError:
        raise Unauthorized("The Zendesk token is for another app installation (aud).", {"reason": "bad_audience"},
                           code="invalid_token") from None
    except jwt.ImmatureSignatureError:
        raise Unauthorized("The Zendesk token is not valid yet (iat/nbf).", {"reason": "not_yet_valid"},
                           code="invalid_token") from None
    except jwt.InvalidSignatureError:
        raise Unauthorized("The Zendesk token's signature does not match the app's public key.",
                           {"reason": "bad_signature"}, code="invalid_token") from None
    except jwt.InvalidAlgorithmError:
        raise Unauthorized("The Zendesk token is not signed with RS256.", {"reason": "bad_algorithm"},
                           code="invalid_token") from None
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"The Zendesk token is not valid: {exc}", {"reason": "malformed"},
                           code="invalid_token") from None
    iss = str(claims["iss"]).strip()
    given_host = (urlsplit(iss).hostname if "://" in iss else iss.strip("/")) or ""
    if "://" in iss and urlsplit(iss).scheme != "https" or given_host.lower() != issuer_host:
        raise Unauthorized("The Zendesk token comes from another Zendesk account (iss).", {"reason": "bad_issuer"},
                           code="invalid_token")
    return claims


def _zendesk_agent(claims: dict[str, Any]) -> str | None:
    """The agent's user id from ``sub`` (``…/users/<id>…`` or a bare id)."""
    sub = str(claims.get("sub") or "")
    match = re.search(r"/users/([0-9]{1,20})", sub) or re.fullmatch(r"([0-9]{1,20})", sub)
    return match.group(1) if match else (sub[:100] or None)


ZENDESK_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Rebound</title><style>body{font:14px/1.4 system-ui,sans-serif;margin:12px;color:#2f3941}</style></head>
<body>
{% if error %}<h1 style="font-size:15px">Rebound could not open this ticket</h1><p>{{ error }}</p>
{% else %}<p>Opening the ticket in Rebound…</p>
<form id="f" method="post" action="{{ action }}">
<input type="hidden" name="panel_token" value="{{ token }}"><input type="hidden" name="ticket_id" id="ticket_id">
<noscript><p>Rebound needs JavaScript in this sidebar.</p></noscript></form>
<script src="https://static.zdassets.com/zendesk_app_framework_sdk/2.0/zaf_sdk.min.js"></script>
<script>
var client = ZAFClient.init();
client.get("ticket.id").then(function (data) {
  document.getElementById("ticket_id").value = data["ticket.id"];
  document.getElementById("f").submit();
});
</script>{% endif %}
</body></html>"""


def _zendesk_page(status: int, error: str | None = None, **values: Any) -> Response:
    """A page for Zendesk's iframe; ``frame_ancestors`` lets the account frame it only once
    ``g.panel`` names the account (after the token's check, or from the integration's settings)."""
    return Response(render_template_string(ZENDESK_PAGE, error=error, **values), status=status,
                    content_type="text/html; charset=utf-8")


@bp.post("/zendesk/<key>")
def zendesk_entry(key: str) -> Response:
    """Zendesk loads the app's page with a POST carrying a ZAF JWT (``signedUrls``): verify it,
    then send the agent to the panel for ``ticket_id`` (query or form: the app URL's template
    ``?ticket_id={{ticket.id}}``, or, when it is absent, read through the ZAF SDK by a tiny page)."""
    integration = _integration(key, "zendesk")
    issuer_host = zendesk_issuer_host(integration)
    if issuer_host:  # so that the account's iframe may show our error pages too
        g.panel = PanelContext(integration.tenant_id, integration.id, "", helpdesk_origin=f"https://{issuer_host}")
    try:
        if issuer_host is None:
            raise Unauthorized("Set the integration's zaf_issuer (https://<subdomain>.zendesk.com) or base_url.",
                               {"reason": "not_configured"}, code="invalid_token")
        public_key = (credentials(integration).get("zaf_public_key") or _settings(integration).get("zaf_public_key")
                      or "")
        token = request.form.get("token", "")
        claims = verify_zaf_token(token, public_key, zendesk_audience(integration), issuer_host)
    except Unauthorized as exc:
        _refuse(integration, exc, request.content_length)
        return _zendesk_page(401, exc.message)
    raw_ticket = (request.values.get("ticket_id") or "").strip()
    if raw_ticket and not NUMERIC_ID.fullmatch(raw_ticket):
        return _zendesk_page(400, "The ticket id sent with the page is not a Zendesk ticket id.")
    nonce = str(claims.get("jti") or "") or "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()
    # Kept until the token expires; a far-off exp (never Zendesk's) is bounded so the date stays valid.
    exp = min(int(claims["exp"]), int(time.time()) + 86_400)
    expires = datetime.fromtimestamp(exp, timezone.utc) + timedelta(seconds=ZAF_LEEWAY_SECONDS)
    try:
        claim_nonce(integration, "zaf:" + nonce, expires)
    except Unauthorized as exc:
        return _zendesk_page(401, exc.message)
    context = g.panel = PanelContext(
        tenant_id=integration.tenant_id, integration_id=integration.id,
        ticket_id=raw_ticket, agent_id=_zendesk_agent(claims),
        helpdesk_origin=f"https://{issuer_host}",
    )
    if not raw_ticket:  # a token for "this agent, no ticket yet": the page reads ticket.id and posts it
        return _zendesk_page(200, action=url_for("sidebar.zendesk_ticket", key=key),
                             token=issue_panel_token(context))
    return redirect(panel_url(issue_panel_token(context)), 303)


@bp.post("/zendesk/<key>/ticket")
def zendesk_ticket(key: str) -> Response:
    """Second step when the app URL carries no ticket id: the page posts the id it read through
    the ZAF SDK, with the ticketless panel token the first step issued."""
    integration = _integration(key, "zendesk")
    issuer_host = zendesk_issuer_host(integration)
    if issuer_host:
        g.panel = PanelContext(integration.tenant_id, integration.id, "", helpdesk_origin=f"https://{issuer_host}")
    try:
        context = read_panel_token(request.form.get("panel_token", ""))
        if context.integration_id != integration.id or context.ticket_id:
            raise Unauthorized("This token is not for this step.", {"reason": "wrong_token"})
    except Unauthorized as exc:
        _refuse(integration, exc, request.content_length)
        return _zendesk_page(401, exc.message)
    ticket = (request.form.get("ticket_id") or "").strip()
    if not NUMERIC_ID.fullmatch(ticket):
        return _zendesk_page(400, "Zendesk did not tell which ticket is open.")
    g.panel = dataclasses.replace(context, ticket_id=ticket)
    return redirect(panel_url(issue_panel_token(g.panel)), 303)


# ---- Help Scout ---------------------------------------------------------------------------------


class _Incoming(Schema):
    """A helpdesk's own payload: fields we don't read are ignored (they add some over time)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)



ExternalId = Annotated[int | str, Field(union_mode="left_to_right")]
Name = Annotated[str | None, Field(default=None, max_length=200)]


class HelpScoutTicket(_Incoming):
    id: ExternalId
    number: ExternalId | None = None
    subject: str | None = Field(default=None, max_length=1000)


class HelpScoutCustomer(_Incoming):
    id: ExternalId | None = None
    fname: Name = None
    lname: Name = None
    email: str | None = Field(default=None, max_length=320)
    emails: list[Annotated[str, Field(max_length=320)]] = Field(default_factory=list, max_length=100)


class HelpScoutUser(_Incoming):
    id: ExternalId | None = None
    fname: Name = None
    lname: Name = None


class HelpScoutRequest(_Incoming):
    """What a Help Scout dynamic app is posted when an agent opens a conversation."""

    ticket: HelpScoutTicket
    customer: HelpScoutCustomer = Field(default_factory=HelpScoutCustomer)
    user: HelpScoutUser = Field(default_factory=HelpScoutUser)


def _full_name(first: str | None, last: str | None) -> str | None:
    return " ".join(part for part in (first, last) if part) or None


HELPSCOUT_HTML = """<div class="c"><h4>Rebound</h4>
{%- if case %}
<p><strong>{{ case.number }}</strong> · {{ label }}</p>
<p>{{ next_step }}</p>
{%- if summary %}<p class="muted">{{ summary }}</p>{% endif %}
{%- elif suggestion %}
<p><strong>Probable return</strong> ({{ confidence }}% sure){% if orders %}, order {{ orders }}{% endif %}.</p>
<p>Open Rebound to create the case.</p>
{%- else %}
<p>No return case for this conversation.</p>
{%- endif %}
{%- if link %}
<p><a href="{{ link }}" target="_blank" rel="noopener noreferrer">Open in Rebound</a></p>
{%- else %}
<p>Reload the conversation to get a link to the full panel.</p>
{%- endif %}</div>"""


@bp.post("/helpscout/<key>")
def helpscout_entry(key: str) -> Response:
    """A Help Scout dynamic app: verify the signed POST, answer ``{"html": …}`` with the case of
    the conversation (or intake's suggestion) and a link that opens the full panel."""
    try:
        integration = _integration(key, "helpscout")
        body = _signed_body(integration)
        secret = _secret(integration, "helpscout_app_secret", "Help Scout app secret")
        given = decode_base64(request.headers.get("X-HelpScout-Signature", ""))
        _verify_hmac(integration, body, secret, "sha1", given or None, "Help Scout")
        data = parse_json(HelpScoutRequest, body)
        ticket_id = _ticket_id(data.ticket.id, NUMERIC_ID, "ticket.id")
    except AppError as exc:
        return _json_error(exc)
    # Help Scout signs no timestamp, and calls again whenever the agent comes back to the
    # conversation: a repeated body still gets the read-only summary, but only the first one
    # within the window carries a link that signs the agent into the panel.
    try:
        _claim_body(integration, body, count=False)  # a repeat view is no attack: not counted
        first_use = True
    except Unauthorized:
        first_use = False
    customer = data.customer
    context = PanelContext(
        tenant_id=integration.tenant_id, integration_id=integration.id, ticket_id=ticket_id,
        agent_id=str(data.user.id) if data.user.id is not None else None,
        agent_name=_full_name(data.user.fname, data.user.lname),
        requester_email=customer.email or (customer.emails[0] if customer.emails else None),
        requester_name=_full_name(customer.fname, customer.lname), subject=data.ticket.subject,
        helpdesk_origin=HELPSCOUT_ORIGIN,
    )
    case = linked_case(integration, ticket_id)
    suggestion = None if case else open_suggestion(integration, ticket_id)
    html = render_template_string(
        HELPSCOUT_HTML, case=case, label=status_label(case.status) if case else "",
        next_step=states.NEXT_STEP[states.CaseStatus(case.status)] if case else "",
        summary=(case.policy_decision or {}).get("summary") if case else None,
        suggestion=suggestion, confidence=round((suggestion.confidence if suggestion else 0) * 100),
        orders=", ".join(str(n) for n in (suggestion.order_numbers if suggestion else []) or []),
        link=panel_url(issue_panel_token(context), external=True) if first_use else None,
    )
    return jsonify({"html": html})


# ---- Intercom (Canvas Kit) ----------------------------------------------------------------------


class IntercomAdmin(_Incoming):
    id: ExternalId | None = None
    name: Name = None


class IntercomContact(_Incoming):
    email: str | None = Field(default=None, max_length=320)
    name: Name = None


class IntercomConversation(_Incoming):
    id: ExternalId


class IntercomCanvas(_Incoming):
    stored_data: dict[str, Any] | None = None


class IntercomRequest(_Incoming):
    """An initialize or submit request of a Canvas Kit inbox app (submit adds the component and
    the inputs, and echoes the canvas we answered last, with its ``stored_data``)."""

    admin: IntercomAdmin = Field(default_factory=IntercomAdmin)
    conversation: IntercomConversation
    contact: IntercomContact = Field(default_factory=IntercomContact)
    component_id: str | None = Field(default=None, max_length=100)
    input_values: dict[str, Any] = Field(default_factory=dict)
    current_canvas: IntercomCanvas | None = None
    stored_data: dict[str, Any] | None = None

    def stored(self) -> dict[str, Any]:
        """Our ``stored_data`` from the previous canvas: signed along with the body by Intercom."""
        if self.stored_data:
            return self.stored_data
        return (self.current_canvas.stored_data if self.current_canvas else None) or {}


_MARKDOWN = re.compile(r"([\\`*_\[\]()#<>!])")


def markdown_text(value: Any) -> str:
    """Text for a Canvas Kit text component, which renders Markdown links and bold: escape them so
    that a customer's name or a reason can't become a link."""
    return _MARKDOWN.sub(r"\\\1", str(value))


CANVAS_ACTIONS = {"approve": states.Action.APPROVE, "reject": states.Action.REJECT,
                  "request_info": states.Action.REQUEST_INFO}


def _text(text: str, style: str = "paragraph", component_id: str | None = None) -> dict[str, Any]:
    component: dict[str, Any] = {"type": "text", "text": text, "style": style}
    if component_id:
        component["id"] = component_id
    return component


def intercom_canvas(integration: Integration, context: PanelContext, case: ReturnCase | None, *,
                    notice: str | None = None, error: str | None = None) -> dict[str, Any]:
    """The card: status and policy summary, then the main actions the case's status allows
    (approve; reject with a required reason; request info with a message), and a link to the panel."""
    components: list[dict[str, Any]] = []
    if error:
        components.append(_text(markdown_text(error), "error", "error"))
    if notice:
        components.append(_text(markdown_text(notice), "muted", "notice"))
    stored: dict[str, Any] = {"issued_at": int(time.time())}
    if case is None:
        suggestion = open_suggestion(integration, context.ticket_id)
        if suggestion is not None:
            components.append(_text(f"**Probable return** ({round(suggestion.confidence * 100)}% sure)", "header"))
            components.append(_text("Open Rebound to create the case."))
        else:
            components.append(_text("No return case for this conversation."))
    else:
        status = states.CaseStatus(case.status)
        stored.update(case=case.number, version=case.version)
        components.append(_text(f"{markdown_text(case.number)} · {status_label(case.status)}", "header", "status"))
        components.append(_text(markdown_text(states.NEXT_STEP[status]), "muted", "next_step"))
        summary = (case.policy_decision or {}).get("summary")
        if summary:
            components.append(_text(markdown_text(summary), "paragraph", "policy"))
        allowed = {a.value for a in states.allowed_actions(status, case.held_from)}
        if "approve" in allowed:
            components.append({"type": "button", "id": "approve", "label": "Approve", "style": "primary",
                               "action": {"type": "submit"}})
        if "reject" in allowed:
            components.append({"type": "input", "id": "reason", "label": "Reason (required to reject)",
                               "placeholder": "e.g. Outside the return window"})
            components.append({"type": "button", "id": "reject", "label": "Reject", "style": "secondary",
                               "action": {"type": "submit"}})
        if "request_info" in allowed:
            components.append({"type": "textarea", "id": "message", "label": "Message to the customer",
                               "placeholder": "What do you need from them?"})
            components.append({"type": "button", "id": "request_info", "label": "Request info", "style": "secondary",
                               "action": {"type": "submit"}})
    components.append({"type": "divider"})
    components.append({"type": "button", "id": "open", "label": "Open in Rebound", "style": "link",
                       "action": {"type": "url", "url": panel_url(issue_panel_token(context), external=True)}})
    return {"canvas": {"content": {"components": components}, "stored_data": stored}}


def _intercom_request(key: str) -> tuple[Integration, IntercomRequest, PanelContext]:
    """Verify and read a Canvas Kit request.

    :raise AppError: 404 unknown key; 401 bad signature or a replay; 400/422 bad body.
    """
    integration = _integration(key, "intercom")
    body = _signed_body(integration)
    secret = _secret(integration, "intercom_client_secret", "Intercom client secret")
    given = decode_hex(request.headers.get("X-Body-Signature", ""))
    _verify_hmac(integration, body, secret, "sha256", given or None, "Intercom")
    data = parse_json(IntercomRequest, body)
    ticket_id = _ticket_id(data.conversation.id, TICKET_ID, "conversation.id")
    _claim_body(integration, body)
    context = PanelContext(
        tenant_id=integration.tenant_id, integration_id=integration.id, ticket_id=ticket_id,
        agent_id=str(data.admin.id) if data.admin.id is not None else None, agent_name=data.admin.name,
        requester_email=data.contact.email, requester_name=data.contact.name, helpdesk_origin=INTERCOM_ORIGIN,
    )
    return integration, data, context


@bp.post("/intercom/<key>/initialize")
def intercom_initialize(key: str) -> Response:
    """Canvas Kit initialize: the card for the conversation the agent opened."""
    try:
        integration, _, context = _intercom_request(key)
    except AppError as exc:
        return _json_error(exc)
    return jsonify(intercom_canvas(integration, context, linked_case(integration, context.ticket_id)))


@bp.post("/intercom/<key>/submit")
def intercom_submit(key: str) -> Response:
    """Canvas Kit submit: run the button's action as the agent and answer the updated card; a
    refusal (version conflict, a status that doesn't allow it, a missing reason) answers the card
    with the reason instead."""
    try:
        integration, data, context = _intercom_request(key)
    except AppError as exc:
        return _json_error(exc)
    case = linked_case(integration, context.ticket_id)
    action = CANVAS_ACTIONS.get(data.component_id or "")
    if action is None or case is None:
        return jsonify(intercom_canvas(integration, context, case))
    stored = data.stored()
    issued = stored.get("issued_at")
    if not isinstance(issued, int) or time.time() - issued > CANVAS_MAX_AGE_SECONDS:
        return jsonify(intercom_canvas(integration, context, case, notice=(
            "This card was out of date, so nothing was done. Check the case and try again.")))
    if stored.get("case") != case.number:
        return jsonify(intercom_canvas(integration, context, case, notice=(
            "Another case is now linked to this conversation, so nothing was done. Check it and try again.")))
    version = stored.get("version") if isinstance(stored.get("version"), int) else None
    inputs = data.input_values
    tenant = db.session.get(Tenant, integration.tenant_id)
    actor = Actor(type="agent", id=context.agent_id, channel="intercom")
    try:
        if action is states.Action.APPROVE:
            payload: Any = parse_mapping(ApproveIn, {"version": version}, "action")
        elif action is states.Action.REJECT:
            payload = parse_mapping(ReasonRequiredIn, {"version": version, "reason": inputs.get("reason")}, "action")
        else:
            payload = parse_mapping(RequestInfoIn, {"version": version, "message": inputs.get("message")}, "action")
        case = perform_action(tenant, case.number, action, payload, actor)
    except ValidationFailed as exc:
        db.session.rollback()
        fields = exc.details.get("fields", {})
        need = "a reason" if "reason" in fields else "a message of at least 3 characters" if "message" in fields \
            else "valid input"
        return jsonify(intercom_canvas(integration, context, linked_case(integration, context.ticket_id),
                                       error=f"{status_label(action.value)} needs {need}."))
    except (Conflict, NotFound) as exc:
        db.session.rollback()
        reasons = exc.details.get("reasons") or []
        message = " ".join([exc.message, *[str(r) for r in reasons if str(r) not in exc.message]])
        return jsonify(intercom_canvas(integration, context, linked_case(integration, context.ticket_id),
                                       error=message))
    done = {"approve": "Approved.", "reject": "Rejected.", "request_info": "Information requested."}[action.value]
    return jsonify(intercom_canvas(integration, context, case, notice=done))


# ---- Gorgias (HTTP widget) ----------------------------------------------------------------------


class GorgiasQuery(Schema):
    ticket_id: str = Field(pattern=f"^{NUMERIC_ID.pattern}$", description="Gorgias ticket id ({{ticket.id}}).")
    email: str | None = Field(default=None, max_length=320, description="{{ticket.customer.email}}")


def case_summary(case: ReturnCase, link: str) -> dict[str, Any]:
    """What the Gorgias widget shows of a case."""
    status = states.CaseStatus(case.status)
    decision = case.policy_decision or {}
    return {
        "number": case.number, "status": case.status, "status_label": status_label(case.status),
        "status_description": states.STATUS_DESCRIPTIONS[status], "next_step": states.NEXT_STEP[status],
        "allowed_actions": [a.value for a in states.allowed_actions(status, case.held_from)],
        "version": case.version, "updated_at": case.updated_at.isoformat(),
        "lines": [{"sku": line.sku, "title": line.title, "qty_requested": line.qty_requested,
                   "qty_authorized": line.qty_authorized, "qty_received": line.qty_received,
                   "reception_status": line.reception_status, "decision_status": line.decision_status}
                  for line in case.lines],
        "policy": {"outcome": decision.get("outcome"), "summary": decision.get("summary"),
                   "what_would_change": decision.get("what_would_change") or []},
        "panel_url": link,
    }


@bp.get("/gorgias/<key>")
def gorgias_widget(key: str) -> Response:
    """A Gorgias HTTP widget's data: the case of the ticket (or intake's suggestion, or the
    customer's other cases), behind the integration's shared secret. Read-only, so a repeated
    fetch is harmless and no nonce is kept."""
    try:
        integration = _integration(key, "gorgias")
        inbound = InboundRequest(method="GET", path=request.path, body=b"", headers=request.headers)
        try:
            verify_shared_secret(inbound, signing_secrets(integration), "Gorgias")
        except SignatureError as exc:
            raise _refuse(integration, Unauthorized(str(exc), {"reason": "bad_secret"}, code="invalid_signature")) \
                from None
        query = parse_mapping(GorgiasQuery, request.args.to_dict(flat=True))
    except AppError as exc:
        return _json_error(exc)
    email = (query.email or "").strip().lower() or None
    context = PanelContext(tenant_id=integration.tenant_id, integration_id=integration.id, ticket_id=query.ticket_id,
                           requester_email=email, helpdesk_origin=_settings(integration).get("helpdesk_origin")
                           or _origin(_settings(integration).get("base_url")))
    link = panel_url(issue_panel_token(context), external=True)
    case = linked_case(integration, query.ticket_id)
    suggestion = None if case else open_suggestion(integration, query.ticket_id)
    others: list[dict[str, Any]] = []
    if email:
        rows = db.session.scalars(
            sa.select(ReturnCase).join(Customer, Customer.id == ReturnCase.customer_id)
            .where(ReturnCase.tenant_id == integration.tenant_id, Customer.tenant_id == integration.tenant_id,
                   Customer.email == email)
            .order_by(ReturnCase.id.desc()).limit(6))
        others = [{"number": c.number, "status": c.status, "status_label": status_label(c.status)}
                  for c in rows if case is None or c.id != case.id][:5]
    return jsonify({
        "ticket_id": query.ticket_id,
        "case": case_summary(case, link) if case else None,
        "suggestion": {"confidence": suggestion.confidence, "order_numbers": suggestion.order_numbers,
                       "reason_code": suggestion.reason_code} if suggestion else None,
        "other_cases": others,
        "panel_url": link,
    })
