"""Zammad: a Webhook fired by a Trigger, verified and turned into one ``TicketEvent``.

Zammad's source fixes the request [V, zammad/zammad ``app/jobs/trigger_webhook_job.rb`` and
``lib/user_agent.rb``]: a JSON POST with ``X-Zammad-Trigger: <trigger name>``,
``X-Zammad-Delivery: <job id>`` and, when the webhook has a signature token and the body is
not empty, ``X-Hub-Signature: sha1=<hex HMAC-SHA1(token, body)>``. A failed delivery is
retried by the same job (``retry_on``, 5 attempts), which keeps its id, so the delivery header
is stable across retries [V for the header; S that ActiveJob keeps the id on ``retry_on``].

The default body is ``{"ticket": {…}, "article": {…}}`` [V, Zammad admin documentation
"Webhook Payload" sample, and ``TriggerWebhookJob::RecordPayload``]: the ticket's attributes
(``id``, ``number``, ``title``, ``article_ids``, ``article_count``, ``created_at``…) with its
``customer``, ``owner``, ``group``… resolved to full objects, so the requester's address is
``ticket.customer.email`` (with ``firstname``/``lastname``). The article has ``body``,
``content_type`` (``text/html`` or ``text/plain``), ``sender`` ("Customer", "Agent" or
"System"), ``from``, ``internal`` and ``created_at``. Tags are not in the default payload
[V: absent from the sample]; a custom payload may add a ``tags`` list, which is read.

Write-back (``ZammadClient``), and where each fact was checked:

- Articles: ``POST /api/v1/ticket_articles`` with ``{"ticket_id", "body", "content_type":
  "text/html"|"text/plain", "type", "internal"}`` (plus ``to``/``cc``/``subject``), answering
  201 with the article: zammad-documentation ``api/ticket/articles.rst`` [V]. A note is
  ``type: "note", internal: true``; a public reply is ``type: "email", internal: false`` with
  ``to`` (``recipient_email``, required) and ``subject`` — the ticket's title, read with ``GET
  /api/v1/tickets/{id}`` [V for the article fields, U for which Zammad requires on email].
- State and custom attributes: ``PUT /api/v1/tickets/{id}`` with ``{"state": "open"|"closed"|…}``
  (names, not ids) and object-manager attributes by name at the top level:
  zammad-documentation ``api/ticket/index.rst`` Update [V for state, U for custom attributes].
- Tags: ``GET /api/v1/tags?object=Ticket&o_id={id}`` lists ``{"tags": [...]}``; ``POST
  /api/v1/tags/add`` and ``DELETE /api/v1/tags/remove`` each take one ``{"item", "object":
  "Ticket", "o_id"}`` (add creates unknown tags): ``api/ticket/tags.rst`` [V]. Only missing tags
  are added and present ones removed, so a retry is harmless.
- Auth: ``Authorization: Token token=<token>`` [V, reference §7.3]. Idempotency header: none
  documented → only ``X-Rebound-Idempotency-Key``.
- Rate limit: none documented for self-hosted Zammad [U] → a generous ``RateLimit(600, 60)``
  so one install is not flooded by our queue.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from email.utils import parseaddr
from typing import Any, ClassVar

import requests

from integrations.base import (
    AuthorRole,
    Connection,
    DeliveryResult,
    EventType,
    Handshake,
    InboundRequest,
    OutboundAction,
    PayloadError,
    RateLimit,
    TicketEvent,
    body_hash_key,
    register_client,
    key_from_id,
    register,
)
from integrations.outbound import (
    ActionRefused,
    Exchange,
    credential,
    html_body,
    plain_body,
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
    iso_time,
    joined,
    json_object,
    required_id,
    text,
    unique_texts,
)
from integrations.signing import prefixed_hex, read_prefixed_hex, require_hmac
from integrations.text import html_to_text

SIGNATURE_HEADER = "X-Hub-Signature"
DELIVERY_HEADER = "x-zammad-delivery"

_ROLES: dict[str, AuthorRole] = {"Customer": "customer", "Agent": "agent", "System": "system"}


class ZammadAdapter:
    """Zammad webhooks (Manage → Webhook) fired by a Trigger."""

    kind: ClassVar[str] = "zammad"
    #: The webhook's "HMAC SHA1 Signature Token".
    secret_names: ClassVar[Sequence[str]] = ("signing_secret",)

    def verify(self, request: InboundRequest, secrets: Sequence[str], now: datetime) -> None:
        # Zammad signs no timestamp: the delivery id is the replay guard. A webhook saved
        # without a token sends no signature at all, and is refused here.
        given = read_prefixed_hex(request, SIGNATURE_HEADER, "sha1",
                                  "set a signature token on the Zammad webhook")
        require_hmac(secrets, "sha1", request.body, given, "Zammad")

    def handshake(self, request: InboundRequest, secrets: Sequence[str]) -> Handshake | None:
        return None  # Zammad validates nothing: any 2xx is a success

    def delivery_key(self, request: InboundRequest) -> str:
        """``X-Zammad-Delivery`` (the job id, kept across retries); the body hash without it."""
        return key_from_id(request.header(DELIVERY_HEADER)) or body_hash_key(request)

    def parse(self, request: InboundRequest) -> TicketEvent:
        data = json_object(request)
        ticket = data.get("ticket")
        if not isinstance(ticket, dict):
            raise PayloadError("The Zammad payload has no ticket.", "ticket")
        ticket_id = required_id(ticket.get("id"), "ticket.id", "Zammad ticket id")
        article = as_object(data.get("article"))  # a trigger on a ticket change may carry none
        role = _ROLES.get(str(article.get("sender")), "unknown") if article else "unknown"
        public = article.get("internal") is not True

        # The trigger's conditions are not in the payload, so the event type is read from the
        # article: the ticket's first article opens it, a later customer article is a message,
        # anything else (an agent's reply, a note, a state change) updates the ticket.
        event_type: EventType
        if article and _is_first_article(article, ticket):
            event_type = "ticket.created"
        elif article and public and role == "customer":
            event_type = "message.created"
        else:
            event_type = "ticket.updated"

        said = _article_text(article) if public and role == "customer" else None
        customer = as_object(ticket.get("customer"))
        sender = article.get("from")
        # "Emily Adams <emily@example.com>"; only a customer's From names the customer.
        from_name, from_email = parseaddr(sender) if role == "customer" and isinstance(sender, str) else ("", "")
        name = joined(customer.get("firstname"), customer.get("lastname"))
        return TicketEvent(
            provider=self.kind,
            ticket_id=ticket_id,
            event_type=event_type,
            ticket_url=None,  # the payload does not say where Zammad is hosted
            requester_email=text(customer.get("email")) or (from_email.strip() or None),
            requester_name=name or (from_name.strip() or None),
            requester_id=text(ticket.get("customer_id")) or text(customer.get("id")),
            subject=text(ticket.get("title")) or text(article.get("subject")),
            message=said,
            message_id=text(article.get("id")) if said else None,
            author_role=role,
            tags=_tags(ticket.get("tags")),
            custom_fields={"zammad_number": number} if (number := text(ticket.get("number"))) else {},
            # ISO 8601 in UTC ("2020-11-13T14:34:35.282Z").
            occurred_at=iso_time(article.get("created_at")) or iso_time(ticket.get("updated_at"))
            or iso_time(ticket.get("created_at")),
        )

    def sign(self, body: bytes, secret: str, now: datetime, delivery_id: str) -> dict[str, str]:
        """Zammad's headers for ``body`` (it signs no timestamp, so ``now`` is unused)."""
        return {
            "Content-Type": "application/json",
            "User-Agent": "Zammad User Agent",
            "X-Zammad-Trigger": "Rebound: new ticket",
            "X-Zammad-Delivery": delivery_id,
            "X-Hub-Signature": prefixed_hex("sha1", secret, body),
        }

    def sample(self) -> bytes:
        """A new email ticket in which a customer asks to return an item (default payload)."""
        customer = {
            "active": True, "id": 8, "login": "dana.whitfield@example.com", "email": "dana.whitfield@example.com",
            "firstname": "Dana", "lastname": "Whitfield", "organization_id": None, "role_ids": [3],
            "roles": ["Customer"], "verified": False, "vip": False,
            "created_at": "2025-11-25T10:00:00.412Z", "updated_at": "2025-11-25T10:00:00.412Z",
        }
        ticket = {
            "id": 81, "number": "10081", "title": "Return for order #1001",
            "article_count": 1, "article_ids": [104],
            "create_article_sender": "Customer", "create_article_type": "email",
            "customer_id": 8, "customer": customer,
            "group_id": 1, "group": {"id": 1, "name": "Users", "active": True},
            "owner_id": 1, "owner": {},
            "priority_id": 2, "priority": {"id": 2, "name": "2 normal", "active": True},
            "state": "new", "state_id": 1,
            "created_at": "2025-11-25T10:00:00.561Z", "updated_at": "2025-11-25T10:00:00.612Z",
        }
        article = {
            "id": 104, "ticket_id": 81, "type": "email", "type_id": 1,
            "sender": "Customer", "sender_id": 2, "internal": False,
            "from": "Dana Whitfield <dana.whitfield@example.com>", "to": "support@outfitters.example",
            "subject": "Return for order #1001", "content_type": "text/html",
            "body": "<div>Hello,</div><div><br></div><div>I'd like to return the hiking boots from order "
                    "#1001 &ndash; they are a size too small.</div><div><br></div><div>Thanks,<br>Dana</div>",
            "message_id": "<CAF7x2=aB9@mail.example.com>", "attachments": [],
            "created_by_id": 8, "created_by": customer, "origin_by_id": None,
            "created_at": "2025-11-25T10:00:00.561Z", "updated_at": "2025-11-25T10:00:00.561Z",
            "accounted_time": 0,
        }
        return json.dumps({"ticket": ticket, "article": article}, indent=2).encode()


def _is_first_article(article: dict[str, Any], ticket: dict[str, Any]) -> bool:
    """Whether ``article`` opened the ticket: its only article, or the lowest article id."""
    if ticket.get("article_count") == 1:
        return True
    ids = ticket.get("article_ids")
    numbers = [i for i in ids if isinstance(i, int) and not isinstance(i, bool)] if isinstance(ids, list) else []
    return bool(numbers) and article.get("id") == min(numbers)


def _article_text(article: dict[str, Any]) -> str | None:
    body = article.get("body")
    if not isinstance(body, str):
        return None
    if "html" in str(article.get("content_type", "")).lower():
        return html_to_text(body)
    return text(body)


def _tags(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else []
    return unique_texts(item.get("name") if isinstance(item, dict) else item for item in items)


register(ZammadAdapter())


# --- write-back ---------------------------------------------------------------------------

_NOT_FIELDS = frozenset({"id", "article", "number", "created_at", "updated_at"})


class ZammadClient:
    """Internal notes, email replies, state, tags and attributes on Zammad tickets."""

    kind: ClassVar[str] = "zammad"
    rate_limit: ClassVar[RateLimit] = RateLimit(600, 60.0)  # none documented: generous

    def deliver(self, action: OutboundAction, connection: Connection, session: requests.Session) -> DeliveryResult:
        token = (connection.credentials.get("api_token") or "").strip()
        exchange = Exchange(action, connection, session, headers={
            "Authorization": f"Token token={token}", "Content-Type": "application/json"})
        return exchange.run(lambda: self._steps(action, connection, exchange))

    def _steps(self, action: OutboundAction, connection: Connection, exchange: Exchange) -> str | None:
        credential(connection, "api_token")
        ticket_id = segment(action.ticket_id, "Zammad ticket id", NUMERIC_ID)
        ticket = f"/api/v1/tickets/{ticket_id}"
        if action.kind in ("note", "reply"):
            require_body(action)
            has_html = bool((action.body_html or "").strip())
            article: dict[str, Any] = {
                "ticket_id": int(ticket_id),
                "body": html_body(action) if has_html else plain_body(action),
                "content_type": "text/html" if has_html else "text/plain",
            }
            if action.kind == "note":
                article.update(type="note", internal=True)
            else:
                to = (action.recipient_email or "").strip()
                if not to:
                    raise ActionRefused("A Zammad email reply needs recipient_email.")
                title = text(as_object(exchange.json(exchange.call("GET", ticket))).get("title"))
                article.update(type="email", internal=False, to=to, subject=title or f"Ticket {ticket_id}")
            response = exchange.call("POST", "/api/v1/ticket_articles", json=article)
            return text_id(as_object(exchange.json(response)).get("id"))
        if action.kind == "status":
            exchange.call("PUT", ticket, json={"state": require_status(action)})
            return None
        if action.kind == "fields":
            fields = require_fields(action)
            if refused := sorted(_NOT_FIELDS & set(fields)):
                raise ActionRefused(f"Not custom attributes: {', '.join(refused)}.")
            exchange.call("PUT", ticket, json=fields)
            return None
        if action.kind == "tags":
            add, remove = tag_changes(action)
            listed = as_object(exchange.json(exchange.call(
                "GET", "/api/v1/tags", params={"object": "Ticket", "o_id": ticket_id}))).get("tags")
            present = {tag.casefold(): tag for tag in listed if isinstance(tag, str)} if isinstance(listed, list) else {}
            for tag in add:
                if tag.casefold() not in present:
                    exchange.call("POST", "/api/v1/tags/add",
                                  json={"item": tag, "object": "Ticket", "o_id": int(ticket_id)})
            for tag in remove:
                if (existing := present.get(tag.casefold())) is not None:
                    exchange.call("DELETE", "/api/v1/tags/remove",
                                  json={"item": existing, "object": "Ticket", "o_id": int(ticket_id)})
            return None
        raise ValueError(f"unknown action kind {action.kind!r}")


register_client(ZammadClient())
