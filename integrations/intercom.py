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
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, ClassVar

from integrations.base import (
    AuthorRole,
    EventType,
    Handshake,
    InboundRequest,
    PayloadError,
    TicketEvent,
    body_hash_key,
    key_from_id,
    register,
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
