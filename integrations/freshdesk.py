"""Freshdesk automation-rule webhooks: a per-integration secret, and our JSON body template.

Freshdesk signs nothing and has no fixed webhook payload: an automation rule's "Trigger
webhook" action sends the body the admin writes. Ours (docs/setup/freshdesk.md) nests the
placeholders under ``"ticket"`` and names the rule in ``"event"``; the secret travels in the
``X-Rebound-Secret`` header or as the Basic-auth password.

Vendor facts used here, and where they were checked:

- "Trigger webhook" in rules on ticket creation or ticket updates; method, URL, optional
  username/password or API-key auth, custom headers, JSON content with placeholders; retries
  after 5, 30 and 60 minutes; calls count against the API rate limit: Freshdesk KB article
  132589 (via a partner-hosted copy) [S]. No signature scheme [V by absence].
- Placeholders ``{{ticket.id}}``, ``{{ticket.subject}}``, ``{{ticket.description}}``,
  ``{{ticket.url}}``, ``{{ticket.tags}}``, ``{{ticket.latest_public_comment}}``,
  ``{{ticket.status}}``, ``{{ticket.requester.name}}``, ``{{ticket.requester.email}}``,
  custom fields as ``{{ticket.cf_<name>}}``: Freshdesk's own placeholder list (helpkit
  source) and public rule bodies agree [S]. Description and comments render as HTML (a public
  delivery shows ``"<div>…</div>"``) [S]; the separator ``{{ticket.tags}}`` uses is [U], so
  commas and semicolons are both read as separators (Freshdesk tags may contain spaces).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, ClassVar
from urllib.parse import urlsplit

from integrations.base import (
    AuthorRole,
    EventType,
    Handshake,
    InboundRequest,
    PayloadError,
    TicketEvent,
    body_hash_key,
    register,
)
from integrations.gorgias import verify_shared_secret  # same scheme; see that module
from integrations.helpscout import html_to_text  # shared converter; see that module

_ID = re.compile(r"[0-9]{1,20}")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
# event → (event type, who wrote the message, the placeholder that holds it)
_EVENTS: dict[str, tuple[EventType, AuthorRole, str | None]] = {
    "ticket_created": ("ticket.created", "unknown", "description"),
    "customer_reply": ("message.created", "customer", "latest_public_comment"),
    "ticket_updated": ("ticket.updated", "unknown", None),
}


class FreshdeskAdapter:
    """Inbound calls from Freshdesk automation rules ("Trigger webhook")."""

    kind: ClassVar[str] = "freshdesk"
    secret_names: ClassVar[Sequence[str]] = ("shared_secret",)

    def verify(self, request: InboundRequest, secrets: Sequence[str], now: datetime) -> None:
        """Check the shared secret; Freshdesk sends no timestamp to check.

        :raise SignatureError: no secret sent, none configured, or none matches.
        """
        verify_shared_secret(request, secrets, "Freshdesk")

    def handshake(self, request: InboundRequest, secrets: Sequence[str]) -> Handshake | None:
        """Freshdesk validates nothing by challenge."""
        return None

    def delivery_key(self, request: InboundRequest) -> str:
        """Freshdesk sends no delivery or event id: the body's hash (retries resend it unchanged)."""
        return body_hash_key(request)

    def parse(self, request: InboundRequest) -> TicketEvent:
        """Read our template: ``{"event": …, "ticket": {"id": …, …}}``.

        :raise PayloadError: malformed JSON, or no ticket id ("ticket.id").
        """
        payload = _load_object(request)
        ticket = payload.get("ticket")
        ticket = ticket if isinstance(ticket, Mapping) else {}
        ticket_id = _ticket_id(ticket.get("id"), "ticket.id")
        event = (_text(payload.get("event")) or "ticket_updated").lower().replace("-", "_").replace(".", "_")
        event_type, role, source = _EVENTS.get(event, ("other", "unknown", None))
        # The creation rule reads the description; the reply rule reads the latest public comment.
        message = html_to_text(_text(ticket.get(source))) if source else None
        requester = ticket.get("requester")
        requester = requester if isinstance(requester, Mapping) else {}
        return TicketEvent(
            provider="freshdesk",
            ticket_id=ticket_id,
            event_type=event_type,
            ticket_url=_url(ticket.get("url")),
            requester_email=_text(requester.get("email")),
            requester_name=_text(requester.get("name")),
            subject=_text(ticket.get("subject")),
            message=message,
            author_role=role,
            tags=_tags(ticket.get("tags")),
            custom_fields=_custom_fields(ticket.get("custom_fields")),
            # Freshdesk has no verified time placeholder: the time we received it stands in.
            occurred_at=_received(request),
        )

    def sign(self, body: bytes, secret: str, now: datetime, delivery_id: str) -> dict[str, str]:
        """The headers our Freshdesk rule sends: the shared secret (Freshdesk signs nothing)."""
        return {"Content-Type": "application/json", "X-Rebound-Secret": secret}

    def sample(self) -> bytes:
        """Our template as the "ticket created" rule renders it: a return request for #1001."""
        return _SAMPLE


def _tags(value: Any) -> tuple[str, ...]:
    items = re.split(r"[,;]", value) if isinstance(value, str) else value if isinstance(value, list) else []
    return tuple(dict.fromkeys(tag for tag in map(_text, items) if tag))


def _custom_fields(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(key)[:100]: text for key, raw in value.items() if (text := _text(raw))}


def _url(value: Any) -> str | None:
    """An http(s) URL to show agents; values without a scheme ({{ticket.url}}) get https://."""
    text = _text(value)
    if not text or any(c.isspace() for c in text):
        return None
    if not _SCHEME.match(text):
        text = "https://" + text
    try:
        parts = urlsplit(text)
        port_ok = parts.port is None or parts.port > 0  # .port raises on "host:alert(1)"
    except ValueError:
        return None
    return text if port_ok and parts.scheme in ("https", "http") and parts.hostname else None


def _ticket_id(value: Any, field: str) -> str:
    text = _text(value)
    if not text:
        raise PayloadError(f"The payload has no ticket id ({field}).", field)
    if not _ID.fullmatch(text):
        # e.g. an unrendered "{{ticket.id}}" from a mistyped template
        raise PayloadError(f"{field} is not a Freshdesk ticket number: {text[:40]!r}.", field)
    return text


def _load_object(request: InboundRequest) -> dict[str, Any]:
    try:
        payload = request.json()
    except RecursionError:  # json.loads on absurdly deep nesting
        raise PayloadError("The body is nested too deeply.", "body") from None
    if not isinstance(payload, dict):
        raise PayloadError("The body must be a JSON object.", "body")
    return payload


def _text(value: Any) -> str | None:
    """A trimmed string from a JSON string or integer; None for anything else or blank."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    # NUL and lone surrogates would break the database and UTF-8 encoding downstream.
    text = str(value).replace("\x00", "").encode("utf-8", "replace").decode("utf-8").strip()
    return text or None


def _received(request: InboundRequest) -> datetime | None:
    moment = request.received_at
    return moment.replace(tzinfo=timezone.utc) if moment and not moment.tzinfo else moment


_SAMPLE = b"""{"event":"ticket_created","ticket":{"id":"1287","subject":"Return - order #1001",\
"status":"Open","url":"https://acme-outdoor.freshdesk.com/helpdesk/tickets/1287",\
"tags":"returns,web","description":"<div>Hello,</div><div><br></div><div>I'd like to return \
the trail backpack from order #1001, the zipper broke after two days. Could you send me a \
return label?</div><div><br></div><div>Best regards,<br>Maria Lopez</div>",\
"latest_public_comment":"","requester":{"email":"maria.lopez@example.com","name":"Maria Lopez"},\
"custom_fields":{"order_number":"1001"}}}
"""

register(FreshdeskAdapter())
