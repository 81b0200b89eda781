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

Write-back (``FreshdeskClient``), and where each fact was checked:

- Private note: ``POST /api/v2/tickets/{id}/notes`` with ``{"body": "<html>", "private": true}``
  (notes are private by default); public reply: ``POST /api/v2/tickets/{id}/reply`` with
  ``{"body": "<html>"}``; both take an optional agent ``user_id``: developers.freshdesk.com
  ("Create a Note", "Reply to a ticket") as quoted by several tools that agree [S].
- Status and custom fields: ``PUT /api/v2/tickets/{id}`` with ``{"status": 2|3|4|5}`` (Open,
  Pending, Resolved, Closed) and ``{"custom_fields": {"cf_…": value}}`` [S: reference §3.3,
  Freshdesk KB 216548 on custom fields via API]. Named statuses are mapped to those numbers;
  a number (a custom status) is sent as is.
- Tags: ``tags`` in the same ``PUT`` **replaces** the list [S] → read-modify-write: ``GET
  /api/v2/tickets/{id}``, merge, ``PUT {"tags": [...]}`` (skipped when nothing changes).
- Auth: Basic with the API key as user and ``X`` as password [S].
- Idempotency header: none documented → only ``X-Rebound-Idempotency-Key``; notes have no
  field for our key.
- Rate limits: per minute per account by plan (Growth 200, Pro 400, Enterprise 700) and per
  endpoint (Ticket Update 80/160/280), 429 with ``Retry-After`` [V, reference §3.3] →
  ``RateLimit(80, 60)``, the Growth Ticket Update cap.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import requests

from integrations.base import (
    AuthorRole,
    Connection,
    DeliveryResult,
    EventType,
    InboundRequest,
    OutboundAction,
    RateLimit,
    TicketEvent,
    register,
    register_client,
)
from integrations.outbound import (
    ActionRefused,
    Exchange,
    credential,
    html_body,
    merge_tags,
    require_body,
    require_fields,
    require_status,
    segment,
    tag_changes,
    text_id,
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
from integrations.signing import SharedSecretWebhook
from integrations.text import html_to_text

# event → (event type, who wrote the message, the placeholder that holds it)
_EVENTS: dict[str, tuple[EventType, AuthorRole, str | None]] = {
    "ticket_created": ("ticket.created", "unknown", "description"),
    "customer_reply": ("message.created", "customer", "latest_public_comment"),
    "ticket_updated": ("ticket.updated", "unknown", None),
}


class FreshdeskAdapter(SharedSecretWebhook):
    """Inbound calls from Freshdesk automation rules ("Trigger webhook")."""

    kind: ClassVar[str] = "freshdesk"
    vendor: ClassVar[str] = "Freshdesk"

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


# --- write-back ---------------------------------------------------------------------------

_STATUSES = {"open": 2, "pending": 3, "resolved": 4, "closed": 5}


class FreshdeskClient:
    """Private notes, replies, status, tags and custom fields on Freshdesk tickets (API v2)."""

    kind: ClassVar[str] = "freshdesk"
    rate_limit: ClassVar[RateLimit] = RateLimit(80, 60.0)  # Ticket Update cap on Growth

    def deliver(self, action: OutboundAction, connection: Connection, session: requests.Session) -> DeliveryResult:
        key = (connection.credentials.get("api_key") or "").strip()
        exchange = Exchange(action, connection, session, auth=(key, "X"),
                            headers={"Content-Type": "application/json"})
        return exchange.run(lambda: self._steps(action, connection, exchange))

    def _steps(self, action: OutboundAction, connection: Connection, exchange: Exchange) -> str | None:
        credential(connection, "api_key")
        ticket = f"/api/v2/tickets/{segment(action.ticket_id, 'Freshdesk ticket number', NUMERIC_ID)}"
        if action.kind in ("note", "reply"):
            require_body(action)
            body: dict[str, Any] = {"body": html_body(action)}
            if action.kind == "note":
                body["private"] = True
            author = (action.author_id or "").strip()
            if NUMERIC_ID.fullmatch(author):
                body["user_id"] = int(author)
            path = f"{ticket}/notes" if action.kind == "note" else f"{ticket}/reply"
            response = exchange.call("POST", path, json=body)
            return text_id(as_object(exchange.json(response)).get("id"))
        if action.kind == "status":
            exchange.call("PUT", ticket, json={"status": _status(require_status(action))})
            return None
        if action.kind == "fields":
            exchange.call("PUT", ticket, json={"custom_fields": require_fields(action)})
            return None
        if action.kind == "tags":
            add, remove = tag_changes(action)
            # tags in an update replace the list: read it, change it, write it back.
            current = as_object(exchange.json(exchange.call("GET", ticket))).get("tags")
            current_tags = [tag for tag in current if isinstance(tag, str)] if isinstance(current, list) else []
            wanted = merge_tags(current_tags, add, remove)
            if wanted != current_tags:
                exchange.call("PUT", ticket, json={"tags": wanted})
            return None
        raise ValueError(f"unknown action kind {action.kind!r}")


def _status(value: str) -> int:
    if NUMERIC_ID.fullmatch(value):
        return int(value)
    if value.lower() in _STATUSES:
        return _STATUSES[value.lower()]
    raise ActionRefused(f"Not a Freshdesk status: {value[:40]!r} (use 2-5 or open/pending/resolved/closed).")


register_client(FreshdeskClient())
