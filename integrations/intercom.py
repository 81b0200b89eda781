"""Intercom: webhook notifications, verified and turned into one ``TicketEvent``.

Signature: ``X-Hub-Signature: sha1=<hex HMAC-SHA1(key, raw body)>``, no timestamp
[V for the format, Intercom's "Signed Notifications" reference]. The key is the app's
``client_secret`` (Developer Hub → Basic information) [S: hookdeck, pipedream and other
implementations; the old reference called it the subscription's ``hub_secret``].

Every notification is one envelope [V, same reference; S for the delivery fields]:
``{"type": "notification_event", "id": "notif_…", "topic": "conversation.user.created",
"app_id": "…", "created_at": …, "delivery_attempts": 1, "first_sent_at": …,
"data": {"type": "notification_event_data", "item": {…}}}``. For conversation topics the item
is a Conversation as in the REST API [V, Intercom OpenAPI 2.16 ``conversation``]: ``id``,
``title``, ``source`` (the opening message: ``subject``, ``body``, ``author`` with
``type``/``email``/``name``), ``contacts.contacts[]``, ``conversation_parts.conversation_parts[]``,
``tags.tags[].name``, ``custom_attributes``, ``created_at``/``updated_at`` (Unix seconds).
Payloads of the older webhook API use ``conversation_message`` and ``user`` instead of
``source`` and ``contacts`` [S: zulip/zulip's Intercom fixtures]; both are read. Bodies are
HTML, or plain text for API version 2.15+ [V, OpenAPI 2.16]; either way they become text.
The ``ping`` topic tests the endpoint and carries ``"id": null`` [S: zulip fixtures].

Write-back (``IntercomClient``), every request checked against the official OpenAPI document
``intercom/Intercom-OpenAPI`` ``descriptions/2.16/api.intercom.io.yaml`` [V] (the tests validate
each request the client sends against it):

- Note / reply: ``POST /conversations/{conversation_id}/reply`` with ``{"message_type": "note" |
  "comment", "type": "admin", "admin_id", "body"}`` (``admin_reply_conversation_request``).
- Status: ``POST /conversations/{conversation_id}/parts`` with ``{"message_type": "close",
  "type": "admin", "admin_id"}`` or ``{"message_type": "open", "admin_id"}``. Snoozing needs a
  ``snoozed_until`` time the action cannot carry, so ``snoozed`` is refused.
- Tags: ``POST /conversations/{conversation_id}/tags`` ``{"id", "admin_id"}`` and ``DELETE
  /conversations/{conversation_id}/tags/{tag_id}`` ``{"admin_id"}`` take tag *ids*. The
  conversation's own tags come with ``GET /conversations/{conversation_id}``; a name not on it
  is turned into an id with ``POST /tags`` ``{"name"}``, which creates the tag "if not found"
  and answers it (names are case-insensitive), so no tag list is paged through. Only missing
  tags are attached and only present ones detached: a retry is harmless.
- Custom attributes: ``PUT /conversations/{conversation_id}`` ``{"custom_attributes": {...}}``
  (the path id is an integer there, so conversation ids must be numeric).
- Headers: Bearer token and ``Intercom-Version: 2.16``. No idempotency header in the spec →
  only ``X-Rebound-Idempotency-Key``; a reply has no field for our key.
- Rate limit: not in the spec. Intercom's "Rate Limiting" page: 10,000 calls per minute per app
  and 25,000 per workspace, enforced in 10-second windows, 429 with ``X-RateLimit-*``
  [S: developers.intercom.com (2.17 page) and api-evangelist's transcription agree] →
  ``RateLimit(166, 10)``: the page's own example of 1,000/min (167 per window) less one — a tenth
  of the default, leaving the workspace budget to the other apps.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime, timezone
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
    key_from_id,
    register,
    register_client,
)
from integrations.outbound import (
    ActionRefused,
    Exchange,
    credential,
    html_body,
    require_body,
    require_fields,
    require_status,
    segment,
    tag_changes,
    text_id,
)
from integrations.payload import (
    MAX_ID,
    as_object,
    custom_fields,
    json_object,
    peek_object,
    required_id,
    text,
    unique_texts,
    unix_time,
)
from integrations.signing import prefixed_hex, read_prefixed_hex, require_hmac
from integrations.text import html_to_text

SIGNATURE_HEADER = "X-Hub-Signature"

_TOPIC_EVENTS: dict[str, EventType] = {
    "conversation.user.created": "ticket.created",
    "conversation.user.replied": "message.created",
}
# Teammates talking: nothing for intake to act on. Every other conversation topic (assigned,
# closed, opened, snoozed, tagged, priority, …) changes the conversation.
_AGENT_TOPICS = frozenset({
    "conversation.admin.replied", "conversation.admin.noted", "conversation.admin.single.created",
    "conversation.operator.replied",
})
# Author ``type`` values of conversation parts and sources [V, OpenAPI 2.16; S for "lead"].
_ROLES: dict[str, AuthorRole] = {
    "user": "customer", "lead": "customer", "contact": "customer",
    "admin": "agent", "team": "agent", "bot": "system",
}


class IntercomAdapter:
    """Intercom webhook notifications (Developer Hub → your app → Webhooks)."""

    kind: ClassVar[str] = "intercom"
    #: The app's client secret, which Intercom signs notifications with.
    secret_names: ClassVar[Sequence[str]] = ("signing_secret",)

    def verify(self, request: InboundRequest, secrets: Sequence[str], now: datetime) -> None:
        # Intercom signs no timestamp: the notification id (delivery key) is the replay guard.
        given = read_prefixed_hex(request, SIGNATURE_HEADER, "sha1")
        require_hmac(secrets, "sha1", request.body, given, "Intercom")

    def handshake(self, request: InboundRequest, secrets: Sequence[str]) -> Handshake | None:
        return None  # Intercom's ping is an ordinary signed notification, answered by any 2xx

    def delivery_key(self, request: InboundRequest) -> str:
        """The notification id (``notif_…``). Retries change ``delivery_attempts`` in the body,
        so the body hash is only the fallback (pings have no id)."""
        data = peek_object(request)
        return key_from_id(text(data.get("id")) if data is not None else None) or body_hash_key(request)

    def parse(self, request: InboundRequest) -> TicketEvent:
        data = json_object(request)
        topic = text(data.get("topic"))
        if topic is None:
            raise PayloadError("The Intercom notification has no topic.", "topic")
        notification_id = text(data.get("id"))
        if topic == "ping":
            return TicketEvent(provider=self.kind, ticket_id="", event_type="ping",
                               occurred_at=unix_time(data.get("created_at")), external_event_id=notification_id)
        if not topic.startswith(("conversation.", "conversation_part.")):
            # Contacts, companies, Intercom tickets…: not a conversation intake could open a case from.
            return TicketEvent(provider=self.kind, ticket_id="", event_type="other",
                               occurred_at=unix_time(data.get("created_at")), external_event_id=notification_id)

        item = as_object(data.get("data")).get("item")
        if not isinstance(item, dict):
            raise PayloadError("The Intercom notification has no conversation.", "data.item")
        ticket_id = required_id(item.get("id"), "data.item.id", "Intercom conversation id")
        source = as_object(item.get("source")) or as_object(item.get("conversation_message"))
        event_type: EventType = _TOPIC_EVENTS.get(topic) or ("other" if topic in _AGENT_TOPICS else "ticket.updated")

        # The message this notification is about: the opening one for a new conversation,
        # otherwise the newest part (the one that triggered the notification).
        part = source if event_type == "ticket.created" else _newest_part(item, event_type == "message.created")
        author = as_object(part.get("author"))
        role = _ROLES.get(str(author.get("type")), "unknown")
        said = html_to_text(part["body"]) if role == "customer" and isinstance(part.get("body"), str) else None
        customer = _customer(author, source, item)
        app_id = text(data.get("app_id"))
        return TicketEvent(
            provider=self.kind,
            ticket_id=ticket_id,
            event_type=event_type,
            ticket_url=_ticket_url(item, app_id, ticket_id),
            requester_email=text(customer.get("email")),
            requester_name=text(customer.get("name")),
            requester_id=_contact_id(item) or text(customer.get("id")),
            subject=(html_to_text(source["subject"]) if isinstance(source.get("subject"), str) else None)
            or text(item.get("title")),
            message=said,
            message_id=text(part.get("id")) if said else None,
            author_role=role,
            tags=_tags(item.get("tags")),
            custom_fields=custom_fields(item.get("custom_attributes"), intercom_app_id=app_id),
            occurred_at=unix_time(part.get("created_at")) or unix_time(item.get("updated_at"))
            or unix_time(item.get("created_at")) or unix_time(data.get("created_at")),
            external_event_id=notification_id,
        )

    def sign(self, body: bytes, secret: str, now: datetime, delivery_id: str) -> dict[str, str]:
        """Intercom's headers for ``body``; its delivery id is the notification ``id`` inside the
        body, so ``delivery_id`` and ``now`` are unused."""
        return {"Content-Type": "application/json",
                "X-Hub-Signature": prefixed_hex("sha1", secret, body)}

    def sample(self) -> bytes:
        """``conversation.user.created``: a customer asks to return an item."""
        customer = {"type": "user", "id": "6643f1c2a1b2c3d4e5f60718", "name": "Dana Whitfield",
                    "email": "dana.whitfield@example.com"}
        conversation = {
            "type": "conversation",
            "id": "215472586117934",
            "title": None,
            "created_at": 1764064800,
            "updated_at": 1764064800,
            "waiting_since": 1764064800,
            "open": True,
            "state": "open",
            "read": False,
            "priority": "none",
            "admin_assignee_id": None,
            "team_assignee_id": None,
            "tags": {"type": "tag.list", "tags": [{"type": "tag", "id": "9124071", "name": "returns"}]},
            "source": {
                "type": "conversation",
                "id": "2318724781",
                "delivered_as": "customer_initiated",
                "subject": "",
                "body": "<p>Hi, I'd like to return the hiking boots from order #1001 - they are a size "
                        "too small. Can you send me a return label?</p>",
                "author": customer,
                "attachments": [],
                "url": "https://shop.outfitters.example/orders/1001",
                "redacted": False,
            },
            "contacts": {"type": "contact.list",
                         "contacts": [{"type": "contact", "id": customer["id"], "external_id": "cust_5567"}]},
            "custom_attributes": {"Order number": "1001", "Language": "en"},
            "conversation_parts": {"type": "conversation_part.list", "conversation_parts": [], "total_count": 0},
        }
        notification = {
            "type": "notification_event",
            "app_id": "q3x8zk2m",
            "data": {"type": "notification_event_data", "item": conversation},
            "links": {},
            "id": "notif_8a1f3c52-7d4e-4b0a-9f21-5c6d7e8f9a0b",
            "topic": "conversation.user.created",
            "delivery_status": "pending",
            "delivery_attempts": 1,
            "delivered_at": 0,
            "first_sent_at": 1764064801,
            "created_at": 1764064801,
            "self": None,
        }
        return json.dumps(notification, indent=2).encode()


def _parts(item: dict[str, Any]) -> list[dict[str, Any]]:
    parts = as_object(item.get("conversation_parts")).get("conversation_parts")
    return [part for part in parts if isinstance(part, dict)] if isinstance(parts, list) else []


def _newest_part(item: dict[str, Any], prefer_customer: bool) -> dict[str, Any]:
    """The newest part; with ``prefer_customer`` the newest customer comment, since a reply
    notification may carry several parts."""
    parts = sorted(_parts(item), key=lambda part: unix_time(part.get("created_at")) or datetime.min.replace(
        tzinfo=timezone.utc))
    if prefer_customer:
        for part in reversed(parts):
            if _ROLES.get(str(as_object(part.get("author")).get("type"))) == "customer" and part.get("body"):
                return part
    return parts[-1] if parts else {}


def _customer(author: dict[str, Any], source: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """Who the customer is: the message's author if a contact, else the conversation's opener,
    else the old API's ``user``; the first of them that has an email address, if any has one
    (the old API's authors carry only an id)."""
    candidates = [candidate for candidate in (author, as_object(source.get("author")), as_object(item.get("user")))
                  if _ROLES.get(str(candidate.get("type"))) == "customer"]
    with_email = [candidate for candidate in candidates if text(candidate.get("email"))]
    return (with_email or candidates or [{}])[0]


def _contact_id(item: dict[str, Any]) -> str | None:
    contacts = as_object(item.get("contacts")).get("contacts")
    first = contacts[0] if isinstance(contacts, list) and contacts else None
    ident = text(first.get("id")) if isinstance(first, dict) else None
    return ident if ident and len(ident) <= MAX_ID else None


def _ticket_url(item: dict[str, Any], app_id: str | None, ticket_id: str) -> str | None:
    # Older payloads carry the inbox link; its form, with the app id, builds it otherwise [S].
    link = text(as_object(item.get("links")).get("conversation_web"))
    if link and link.startswith("https://"):
        return link
    if app_id and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", app_id) and re.fullmatch(r"[0-9]+", ticket_id):
        return f"https://app.intercom.com/a/apps/{app_id}/conversations/{ticket_id}"
    return None


def _tags(value: Any) -> tuple[str, ...]:
    tags = as_object(value).get("tags")
    return unique_texts(tag.get("name") for tag in tags if isinstance(tag, dict)) if isinstance(tags, list) else ()


register(IntercomAdapter())


# --- write-back ---------------------------------------------------------------------------

API_VERSION = "2.16"
_CONVERSATION_ID = re.compile(r"[0-9]{1,30}")
_CLOSE = frozenset({"close", "closed"})
_OPEN = frozenset({"open", "opened", "reopen"})


class IntercomClient:
    """Notes, replies, open/close, tags and custom attributes on Intercom conversations."""

    kind: ClassVar[str] = "intercom"
    rate_limit: ClassVar[RateLimit] = RateLimit(166, 10.0)  # a tenth of 10,000/min per app

    def deliver(self, action: OutboundAction, connection: Connection, session: requests.Session) -> DeliveryResult:
        token = (connection.credentials.get("access_token") or "").strip()
        exchange = Exchange(action, connection, session, headers={
            "Authorization": f"Bearer {token}", "Intercom-Version": API_VERSION, "Content-Type": "application/json"})
        return exchange.run(lambda: self._steps(action, connection, exchange))

    def _steps(self, action: OutboundAction, connection: Connection, exchange: Exchange) -> str | None:
        credential(connection, "access_token")
        conversation = f"/conversations/{segment(action.ticket_id, 'Intercom conversation id', _CONVERSATION_ID)}"
        if action.kind == "fields":
            exchange.call("PUT", conversation, json={"custom_attributes": require_fields(action)})
            return None
        admin_id = (action.author_id or "").strip() or credential(connection, "admin_id")
        if action.kind in ("note", "reply"):
            require_body(action)
            response = exchange.call("POST", f"{conversation}/reply", json={
                "message_type": "note" if action.kind == "note" else "comment",
                "type": "admin", "admin_id": admin_id, "body": html_body(action)})
            return _last_part_id(exchange.json(response))
        if action.kind == "status":
            status = require_status(action).lower()
            if status in _CLOSE:
                body: dict[str, Any] = {"message_type": "close", "type": "admin", "admin_id": admin_id}
            elif status in _OPEN:
                body = {"message_type": "open", "admin_id": admin_id}
            else:
                raise ActionRefused(f"Intercom write-back sets open or closed, not {status[:40]!r} "
                                    "(snoozing needs a time).")
            exchange.call("POST", f"{conversation}/parts", json=body)
            return None
        if action.kind == "tags":
            add, remove = tag_changes(action)
            tags = as_object(as_object(exchange.json(exchange.call("GET", conversation))).get("tags")).get("tags")
            present: dict[str, str] = {}  # name (folded) → id
            for tag in tags if isinstance(tags, list) else []:
                tag = as_object(tag)
                if (tag_id := text_id(tag.get("id"))) and (name := text(tag.get("name"))):
                    present[name.casefold()] = tag_id
            for name in add:
                if name.casefold() in present:
                    continue
                # Creates the tag if the workspace has none of that name, else answers it.
                tag_id = text_id(as_object(exchange.json(exchange.call("POST", "/tags", json={"name": name}))).get("id"))
                if not tag_id:
                    raise ActionRefused(f"Intercom answered no id for tag {name[:40]!r}.")
                if tag_id not in present.values():
                    exchange.call("POST", f"{conversation}/tags", json={"id": tag_id, "admin_id": admin_id})
                    present[name.casefold()] = tag_id
            for name in remove:
                if tag_id := present.pop(name.casefold(), None):
                    exchange.call("DELETE", f"{conversation}/tags/{segment(tag_id, 'Intercom tag id')}",
                                  json={"admin_id": admin_id})
            return None
        raise ValueError(f"unknown action kind {action.kind!r}")


def _last_part_id(data: Any) -> str | None:
    """The id of the part our reply created: the conversation comes back with its parts, oldest
    first [S: Intercom's reply examples]."""
    parts = as_object(as_object(data).get("conversation_parts")).get("conversation_parts")
    if isinstance(parts, list) and parts and isinstance(parts[-1], dict):
        return text_id(parts[-1].get("id"))
    return None


register_client(IntercomClient())
