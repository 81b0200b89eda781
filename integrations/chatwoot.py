"""Chatwoot: account (or API-inbox) webhooks, verified and turned into one ``TicketEvent``.

Signing exists since Chatwoot 4.11.2 for account webhooks and 4.13.0 for API inboxes and agent
bots [V, chatwoot/chatwoot PR #13573 and #13892]; older releases send no authentication at all
and are refused here. Each request carries [V, PR #13573]:

- ``X-Chatwoot-Signature: sha256=<hex HMAC-SHA256(secret, "{timestamp}.{raw body}")>``,
- ``X-Chatwoot-Timestamp: <unix seconds>`` (part of the signed string; refuse beyond ~5 min),
- ``X-Chatwoot-Delivery: <uuid>``, generated at enqueue time and kept by Sidekiq retries.

Bodies are an object's ``webhook_data`` plus ``"event"`` [V, ``app/listeners/webhook_listener.rb``]:

- ``message_created``/``message_updated``: the message [V, ``Message#webhook_data``]: ``id``,
  ``content``, ``message_type`` ("incoming", "outgoing", "activity", "template"), ``private``,
  ``created_at`` (ISO 8601), ``sender`` (a contact ``{"type": "contact", "email", "name"}`` or an
  agent ``{"type": "user"}``), ``account`` ``{id, name}``, and ``conversation``.
- ``conversation_created``/``_status_changed``/``_updated``: the conversation itself
  [V, ``Conversations::EventDataPresenter#push_data``]: ``id`` (the per-account display id, the
  one in the app's URLs), ``labels``, ``custom_attributes``, ``meta.sender`` (the contact),
  ``messages`` (the newest, ``message_type`` as a number: 0 is incoming), ``created_at`` (Unix).

The payload does not say where Chatwoot is hosted, so no ticket URL is built.

Write-back (``ChatwootClient``), every request checked against the official OpenAPI document
``chatwoot/chatwoot`` ``swagger/swagger.json`` [V] (the tests validate each request the client
sends against it):

- Note / reply: ``POST /api/v1/accounts/{account_id}/conversations/{conversation_id}/messages``
  with ``{"content", "message_type": "outgoing", "private": true|false}``
  (``conversation_message_create_payload``; ``content`` required).
- Status: ``POST …/toggle_status`` with ``{"status": "open"|"resolved"|"pending"|"snoozed"}``
  (other values are refused before sending).
- Labels: ``POST …/labels`` ``{"labels": [...]}`` — "this API would overwrite the existing list
  of labels" — so read-modify-write from ``GET …/labels`` (``{"payload": [...]}``).
- Custom attributes: ``POST …/custom_attributes`` ``{"custom_attributes": {...}}``; whether it
  merges or replaces is not stated (the spec says "updates"), so the current ones are read
  from ``GET …/conversations/{conversation_id}`` and sent back with ours.
- Auth header ``api_access_token`` (security scheme ``userApiKey``); ids in the path are
  integers. No idempotency header in the spec → only ``X-Rebound-Idempotency-Key``.
- Rate limit: self-hosted default 3,000 requests/min per IP (rack-attack ``RACK_ATTACK_LIMIT``,
  can be off) [V, reference §8.3]; Chatwoot Cloud's is undocumented [U] → ``RateLimit(600, 60)``,
  a fifth of the self-hosted default, safe for Cloud and for installs that lowered it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
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
    merge_tags,
    plain_body,
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
    timestamp,
    unique_texts,
    utc,
)
from integrations.signing import check_window, parse_unix_time, prefixed_hex, read_prefixed_hex, require_hmac

SIGNATURE_HEADER = "X-Chatwoot-Signature"
TIMESTAMP_HEADER = "x-chatwoot-timestamp"
DELIVERY_HEADER = "x-chatwoot-delivery"

_MESSAGE_EVENTS = frozenset({"message_created", "message_updated"})
_CONVERSATION_EVENTS: dict[str, EventType] = {
    "conversation_created": "ticket.created",
    "conversation_status_changed": "ticket.updated",
    "conversation_updated": "ticket.updated",
}
_ROLES: dict[str, AuthorRole] = {
    "contact": "customer", "user": "agent", "agent_bot": "system", "captain_assistant": "system",
}
_INCOMING = ("incoming", 0)  # a message's type in message events, and in a conversation's ``messages``
_CONVERSATION_ID = "Chatwoot conversation id"


class ChatwootAdapter:
    """Chatwoot webhooks (Settings → Integrations → Webhooks, or an API inbox's webhook URL)."""

    kind: ClassVar[str] = "chatwoot"
    #: The webhook's secret, shown by Chatwoot when the webhook is created.
    secret_names: ClassVar[Sequence[str]] = ("signing_secret",)

    def verify(self, request: InboundRequest, secrets: Sequence[str], now: datetime) -> None:
        given = read_prefixed_hex(request, SIGNATURE_HEADER, "sha256", "Chatwoot signs from 4.11.2 on")
        stamp = request.header(TIMESTAMP_HEADER) or ""
        check_window(parse_unix_time(stamp, "X-Chatwoot-Timestamp"), now)
        message = stamp.encode() + b"." + request.body  # the header text is signed as sent
        require_hmac(secrets, "sha256", message, given, "Chatwoot")

    def handshake(self, request: InboundRequest, secrets: Sequence[str]) -> Handshake | None:
        return None  # Chatwoot validates nothing when a webhook is saved

    def delivery_key(self, request: InboundRequest) -> str:
        """``X-Chatwoot-Delivery``; without it, the event and object id of a ``*_created`` event
        (each object is created once), else the body hash."""
        if delivery := key_from_id(request.header(DELIVERY_HEADER)):
            return delivery
        data = peek_object(request) or {}
        event, ident = text(data.get("event")), text(data.get("id"))
        if event and ident and event.endswith("_created"):
            return key_from_id(f"{event}:{ident}") or body_hash_key(request)
        return body_hash_key(request)

    def parse(self, request: InboundRequest) -> TicketEvent:
        data = json_object(request)
        event = text(data.get("event"))
        if event is None:
            raise PayloadError("The Chatwoot payload has no event.", "event")

        if event in _MESSAGE_EVENTS:
            conversation = data.get("conversation")
            if not isinstance(conversation, dict):
                raise PayloadError("The Chatwoot message has no conversation.", "conversation")
            ticket_id = required_id(conversation.get("id"), "conversation.id", _CONVERSATION_ID)
            sender = as_object(data.get("sender"))
            incoming = data.get("message_type") in _INCOMING
            # An incoming message comes from the contact whatever the sender object says.
            role: AuthorRole = "customer" if incoming else _ROLES.get(str(sender.get("type")), "unknown")
            customer_said = incoming and data.get("private") is not True
            event_type: EventType = "message.created" if event == "message_created" and customer_said else "other"
            meta = as_object(conversation.get("meta"))
            contact = sender if sender.get("type") == "contact" else as_object(meta.get("sender"))
            message, message_id = (data.get("content"), data.get("id")) if customer_said else (None, None)
            occurred_at = timestamp(data.get("created_at"))
            account_id = as_object(data.get("account")).get("id")
        elif event in _CONVERSATION_EVENTS:
            conversation = data
            ticket_id = required_id(conversation.get("id"), "id", _CONVERSATION_ID)
            event_type = _CONVERSATION_EVENTS[event]
            contact = as_object(as_object(conversation.get("meta")).get("sender"))
            # A new conversation carries its first message: the customer's request, usually.
            first = _first_message(conversation) if event == "conversation_created" else {}
            role = "customer" if first else "unknown"
            message, message_id = first.get("content"), first.get("id")
            occurred_at = timestamp(conversation.get("created_at" if event == "conversation_created" else "updated_at"))
            account_id = conversation.get("account_id") or first.get("account_id")
        else:
            # Contacts, typing, widget events…: nothing intake opens a case from.
            reference = text(as_object(data.get("conversation")).get("id")) or ""
            return TicketEvent(provider=self.kind, ticket_id=reference if len(reference) <= MAX_ID else "",
                               event_type="other", occurred_at=timestamp(data.get("created_at")))

        said = text(message)
        attributes = as_object(conversation.get("additional_attributes"))
        return TicketEvent(
            provider=self.kind,
            ticket_id=ticket_id,
            event_type=event_type,
            requester_email=text(contact.get("email")),
            requester_name=text(contact.get("name")),
            requester_id=text(contact.get("id")),
            subject=text(attributes.get("mail_subject")),  # email inboxes only [S]
            message=said,
            message_id=text(message_id) if said else None,
            author_role=role,
            tags=_labels(conversation.get("labels")),
            custom_fields=custom_fields(conversation.get("custom_attributes"),
                                        chatwoot_account_id=account_id or as_object(data.get("account")).get("id")),
            language=_language(attributes.get("browser_language")),
            occurred_at=occurred_at or timestamp(conversation.get("timestamp")),
        )

    def sign(self, body: bytes, secret: str, now: datetime, delivery_id: str) -> dict[str, str]:
        stamp = str(int(utc(now).timestamp()))
        return {
            "Content-Type": "application/json",
            "X-Chatwoot-Timestamp": stamp,
            "X-Chatwoot-Delivery": delivery_id,
            "X-Chatwoot-Signature": prefixed_hex("sha256", secret, f"{stamp}.".encode() + body),
        }

    def sample(self) -> bytes:
        """``conversation_created``: a new email conversation asking to return an item."""
        contact = {
            "additional_attributes": {}, "custom_attributes": {}, "email": "dana.whitfield@example.com",
            "id": 42, "identifier": None, "name": "Dana Whitfield", "phone_number": None, "thumbnail": "",
            "blocked": False, "type": "contact",
        }
        first_message = {
            "id": 654, "content": "Hi, I'd like to return the hiking boots from order #1001 - they are a size "
                                  "too small. Can you send me a return label?\n\nThanks,\nDana",
            "account_id": 3, "inbox_id": 2, "conversation_id": 207, "message_type": 0, "created_at": 1764064800,
            "updated_at": "2025-11-25T10:00:00.421Z", "private": False, "status": "sent", "source_id": None,
            "content_type": "incoming_email", "content_attributes": {}, "sender_type": "Contact", "sender_id": 42,
            "external_source_ids": {}, "additional_attributes": {}, "processed_message_content": None,
            "sentiment": {}, "conversation": {"assignee_id": None, "unread_count": 1,
                                              "last_activity_at": 1764064800, "contact_inbox": {"source_id": None}},
            "sender": contact,
        }
        conversation = {
            "additional_attributes": {"mail_subject": "Return for order #1001"},
            "can_reply": True,
            "channel": "Channel::Email",
            "contact_inbox": {"id": 180, "contact_id": 42, "inbox_id": 2, "source_id": "dana.whitfield@example.com",
                              "created_at": "2025-11-25T10:00:00.210Z", "updated_at": "2025-11-25T10:00:00.210Z",
                              "hmac_verified": False, "pubsub_token": "wfTzyNgmiE8YagFL3m4JU8Fi"},
            "id": 207,
            "inbox_id": 2,
            "messages": [first_message],
            "labels": ["returns"],
            "meta": {"sender": contact, "assignee": None, "assignee_type": None, "team": None, "hmac_verified": False},
            "status": "open",
            "custom_attributes": {"order_number": "1001"},
            "snoozed_until": None,
            "unread_count": 1,
            "first_reply_created_at": None,
            "priority": None,
            "waiting_since": 1764064800,
            "agent_last_seen_at": 0,
            "contact_last_seen_at": 0,
            "last_activity_at": 1764064800,
            "timestamp": 1764064800,
            "created_at": 1764064800,
            "updated_at": 1764064800.421,
            "event": "conversation_created",
        }
        return json.dumps(conversation, indent=2).encode()


def _first_message(conversation: dict[str, Any]) -> dict[str, Any]:
    """The conversation's message if it is the contact's (public, incoming), else nothing."""
    messages = conversation.get("messages")
    first = messages[0] if isinstance(messages, list) and messages else None
    if isinstance(first, dict) and first.get("message_type") in _INCOMING and first.get("private") is not True:
        return first
    return {}


def _labels(value: Any) -> tuple[str, ...]:
    return unique_texts(value if isinstance(value, list) else ())


def _language(value: Any) -> str | None:
    tag = text(value)
    return tag if tag and len(tag) <= 35 else None  # a BCP 47 tag, not free text


register(ChatwootAdapter())


# --- write-back ---------------------------------------------------------------------------

_NUMBER = re.compile(r"[0-9]{1,18}")
_STATUSES = frozenset({"open", "resolved", "pending", "snoozed"})


class ChatwootClient:
    """Private notes, replies, status, labels and custom attributes on Chatwoot conversations."""

    kind: ClassVar[str] = "chatwoot"
    rate_limit: ClassVar[RateLimit] = RateLimit(600, 60.0)  # a fifth of the self-hosted default

    def deliver(self, action: OutboundAction, connection: Connection, session: requests.Session) -> DeliveryResult:
        token = (connection.credentials.get("api_access_token") or "").strip()
        exchange = Exchange(action, connection, session,
                            headers={"api_access_token": token, "Content-Type": "application/json"})
        return exchange.run(lambda: self._steps(action, connection, exchange))

    def _steps(self, action: OutboundAction, connection: Connection, exchange: Exchange) -> str | None:
        credential(connection, "api_access_token")
        account = segment(credential(connection, "account_id"), "Chatwoot account id", _NUMBER)
        conversation_id = segment(action.ticket_id, _CONVERSATION_ID, _NUMBER)
        conversation = f"/api/v1/accounts/{account}/conversations/{conversation_id}"
        if action.kind in ("note", "reply"):
            require_body(action)
            response = exchange.call("POST", f"{conversation}/messages", json={
                "content": plain_body(action), "message_type": "outgoing", "private": action.kind == "note"})
            return text_id(as_object(exchange.json(response)).get("id"))
        if action.kind == "status":
            status = require_status(action).lower()
            if status not in _STATUSES:
                raise ActionRefused(f"Not a Chatwoot status: {status[:40]!r} (open, resolved, pending, snoozed).")
            exchange.call("POST", f"{conversation}/toggle_status", json={"status": status})
            return None
        if action.kind == "tags":
            add, remove = tag_changes(action)
            listed = as_object(exchange.json(exchange.call("GET", f"{conversation}/labels"))).get("payload")
            current = [label for label in listed if isinstance(label, str)] if isinstance(listed, list) else []
            wanted = merge_tags(current, add, remove)
            if wanted != current:  # the POST overwrites the list
                exchange.call("POST", f"{conversation}/labels", json={"labels": wanted})
            return None
        if action.kind == "fields":
            found = as_object(exchange.json(exchange.call("GET", conversation))).get("custom_attributes")
            current_attributes = dict(found) if isinstance(found, dict) else {}
            merged = {**current_attributes, **require_fields(action)}
            if merged != current_attributes:
                exchange.call("POST", f"{conversation}/custom_attributes", json={"custom_attributes": merged})
            return None
        raise ValueError(f"unknown action kind {action.kind!r}")


register_client(ChatwootClient())
