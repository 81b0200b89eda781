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
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from integrations.base import (
    AuthorRole,
    EventType,
    Handshake,
    InboundRequest,
    TicketEvent,
    body_hash_key,
    register,
)
from integrations.payload import (
    NUMERIC_ID,
    as_object,
    custom_fields,
    http_url,
    json_object,
    received_at,
    required_id,
    text,
    unique_texts,
)
from integrations.signing import shared_secret_headers, verify_shared_secret
from integrations.text import html_to_text

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
        payload = json_object(request)
        ticket = as_object(payload.get("ticket"))
        ticket_id = required_id(ticket.get("id"), "ticket.id", "Freshdesk ticket number", NUMERIC_ID)
        event = (text(payload.get("event")) or "ticket_updated").lower().replace("-", "_").replace(".", "_")
        event_type, role, source = _EVENTS.get(event, ("other", "unknown", None))
        # The creation rule reads the description; the reply rule reads the latest public comment.
        message = html_to_text(text(ticket.get(source))) if source else None
        requester = as_object(ticket.get("requester"))
        return TicketEvent(
            provider="freshdesk",
            ticket_id=ticket_id,
            event_type=event_type,
            ticket_url=http_url(ticket.get("url"), add_scheme=True),
            requester_email=text(requester.get("email")),
            requester_name=text(requester.get("name")),
            subject=text(ticket.get("subject")),
            message=message,
            author_role=role,
            tags=_tags(ticket.get("tags")),
            custom_fields=custom_fields(ticket.get("custom_fields")),
            # Freshdesk has no verified time placeholder: the time we received it stands in.
            occurred_at=received_at(request),
        )

    def sign(self, body: bytes, secret: str, now: datetime, delivery_id: str) -> dict[str, str]:
        """The headers our Freshdesk rule sends: the shared secret (Freshdesk signs nothing)."""
        return shared_secret_headers(secret)

    def sample(self) -> bytes:
        """Our template as the "ticket created" rule renders it: a return request for #1001."""
        return _SAMPLE


def _tags(value: Any) -> tuple[str, ...]:
    items = re.split(r"[,;]", value) if isinstance(value, str) else value if isinstance(value, list) else []
    return unique_texts(items)


_SAMPLE = b"""{"event":"ticket_created","ticket":{"id":"1287","subject":"Return - order #1001",\
"status":"Open","url":"https://acme-outdoor.freshdesk.com/helpdesk/tickets/1287",\
"tags":"returns,web","description":"<div>Hello,</div><div><br></div><div>I'd like to return \
the trail backpack from order #1001, the zipper broke after two days. Could you send me a \
return label?</div><div><br></div><div>Best regards,<br>Maria Lopez</div>",\
"latest_public_comment":"","requester":{"email":"maria.lopez@example.com","name":"Maria Lopez"},\
"custom_fields":{"order_number":"1001"}}}
"""

register(FreshdeskAdapter())
