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
from html.parser import HTMLParser
from typing import Any, ClassVar

from integrations.base import (
    AuthorRole,
    EventType,
    Handshake,
    InboundRequest,
    PayloadError,
    SignatureError,
    TicketEvent,
    body_hash_key,
    register,
)
from integrations.signing import decode_hex, equals, hmac_digest, require_any

SIGNATURE_HEADER = "x-hub-signature"

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
_MAX_ID = 100  # the inbox stores ticket ids in 100 characters
_MAX_KEY = 128


class IntercomAdapter:
    """Intercom webhook notifications (Developer Hub → your app → Webhooks)."""

    kind: ClassVar[str] = "intercom"
    #: The app's client secret, which Intercom signs notifications with.
    secret_names: ClassVar[Sequence[str]] = ("signing_secret",)

    def verify(self, request: InboundRequest, secrets: Sequence[str], now: datetime) -> None:
        # Intercom signs no timestamp: the notification id (delivery key) is the replay guard.
        header = request.header(SIGNATURE_HEADER)
        if not header:
            raise SignatureError("Missing X-Hub-Signature header.")
        algorithm, _, digest = header.partition("=")
        given = decode_hex(digest) if algorithm.strip().lower() == "sha1" else None
        if given is None:
            raise SignatureError("X-Hub-Signature is not sha1=<hex>.")
        require_any(secrets, lambda secret: equals(hmac_digest("sha1", secret, request.body), given),
                    "Intercom")

    def handshake(self, request: InboundRequest, secrets: Sequence[str]) -> Handshake | None:
        return None  # Intercom's ping is an ordinary signed notification, answered by any 2xx

    def delivery_key(self, request: InboundRequest) -> str:
        """The notification id (``notif_…``). Retries change ``delivery_attempts`` in the body,
        so the body hash is only the fallback (pings have no id)."""
        try:
            data = json.loads(request.body)
        except (ValueError, RecursionError):
            return body_hash_key(request)
        notification_id = _text_of(data.get("id")) if isinstance(data, dict) else None
        if notification_id and len(notification_id) <= _MAX_KEY:
            return notification_id
        return body_hash_key(request)

    def parse(self, request: InboundRequest) -> TicketEvent:
        data = _load(request)
        topic = _text_of(data.get("topic"))
        if topic is None:
            raise PayloadError("The Intercom notification has no topic.", "topic")
        notification_id = _text_of(data.get("id"))
        if topic == "ping":
            return TicketEvent(provider=self.kind, ticket_id="", event_type="ping",
                               occurred_at=_when(data.get("created_at")), external_event_id=notification_id)
        if not topic.startswith(("conversation.", "conversation_part.")):
            # Contacts, companies, Intercom tickets…: not a conversation intake could open a case from.
            return TicketEvent(provider=self.kind, ticket_id="", event_type="other",
                               occurred_at=_when(data.get("created_at")), external_event_id=notification_id)

        item = _object(data.get("data")).get("item")
        if not isinstance(item, dict):
            raise PayloadError("The Intercom notification has no conversation.", "data.item")
        ticket_id = _required_id(item.get("id"), "data.item.id")
        source = _object(item.get("source")) or _object(item.get("conversation_message"))
        event_type: EventType = _TOPIC_EVENTS.get(topic) or ("other" if topic in _AGENT_TOPICS else "ticket.updated")

        # The message this notification is about: the opening one for a new conversation,
        # otherwise the newest part (the one that triggered the notification).
        part = source if event_type == "ticket.created" else _newest_part(item, event_type == "message.created")
        author = _object(part.get("author"))
        role = _ROLES.get(str(author.get("type")), "unknown")
        text = _html_to_text(part["body"]) if role == "customer" and isinstance(part.get("body"), str) else None
        customer = _customer(author, source, item)
        app_id = _text_of(data.get("app_id"))
        return TicketEvent(
            provider=self.kind,
            ticket_id=ticket_id,
            event_type=event_type,
            ticket_url=_ticket_url(item, app_id, ticket_id),
            requester_email=_text_of(customer.get("email")),
            requester_name=_text_of(customer.get("name")),
            requester_id=_contact_id(item) or _text_of(customer.get("id")),
            subject=(_html_to_text(source["subject"]) if isinstance(source.get("subject"), str) else None)
            or _text_of(item.get("title")),
            message=text,
            message_id=_text_of(part.get("id")) if text else None,
            author_role=role,
            tags=_tags(item.get("tags")),
            custom_fields=_custom_fields(item.get("custom_attributes"), intercom_app_id=app_id),
            occurred_at=_when(part.get("created_at")) or _when(item.get("updated_at"))
            or _when(item.get("created_at")) or _when(data.get("created_at")),
            external_event_id=notification_id,
        )

    def sign(self, body: bytes, secret: str, now: datetime, delivery_id: str) -> dict[str, str]:
        """Intercom's headers for ``body``; its delivery id is the notification ``id`` inside the
        body, so ``delivery_id`` and ``now`` are unused."""
        return {"Content-Type": "application/json",
                "X-Hub-Signature": "sha1=" + hmac_digest("sha1", secret, body).hex()}

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


def _load(request: InboundRequest) -> dict[str, Any]:
    try:
        data = request.json()
    except RecursionError:  # json.loads gives up on very deep nesting with RecursionError
        raise PayloadError("The body is nested too deeply.", "body") from None
    if not isinstance(data, dict):
        raise PayloadError("The body is not a JSON object.", "body")
    return data


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text_of(value: Any) -> str | None:
    """A trimmed string from a string or a number; None for anything else or blank."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return value.strip() or None
    return None


def _required_id(value: Any, field: str) -> str:
    ident = _text_of(value) if not isinstance(value, float) else None
    if ident is None:
        raise PayloadError(f"The Intercom notification has no {field}.", field)
    if len(ident) > _MAX_ID:
        raise PayloadError(f"{field} is longer than {_MAX_ID} characters.", field)
    return ident


def _parts(item: dict[str, Any]) -> list[dict[str, Any]]:
    parts = _object(item.get("conversation_parts")).get("conversation_parts")
    return [part for part in parts if isinstance(part, dict)] if isinstance(parts, list) else []


def _newest_part(item: dict[str, Any], prefer_customer: bool) -> dict[str, Any]:
    """The newest part; with ``prefer_customer`` the newest customer comment, since a reply
    notification may carry several parts."""
    parts = sorted(_parts(item), key=lambda part: _when(part.get("created_at")) or datetime.min.replace(
        tzinfo=timezone.utc))
    if prefer_customer:
        for part in reversed(parts):
            if _ROLES.get(str(_object(part.get("author")).get("type"))) == "customer" and part.get("body"):
                return part
    return parts[-1] if parts else {}


def _customer(author: dict[str, Any], source: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """Who the customer is: the message's author if a contact, else the conversation's opener,
    else the old API's ``user``; the first of them that has an email address, if any has one
    (the old API's authors carry only an id)."""
    candidates = [candidate for candidate in (author, _object(source.get("author")), _object(item.get("user")))
                  if _ROLES.get(str(candidate.get("type"))) == "customer"]
    with_email = [candidate for candidate in candidates if _text_of(candidate.get("email"))]
    return (with_email or candidates or [{}])[0]


def _contact_id(item: dict[str, Any]) -> str | None:
    contacts = _object(item.get("contacts")).get("contacts")
    first = contacts[0] if isinstance(contacts, list) and contacts else None
    ident = _text_of(first.get("id")) if isinstance(first, dict) else None
    return ident if ident and len(ident) <= _MAX_ID else None


def _ticket_url(item: dict[str, Any], app_id: str | None, ticket_id: str) -> str | None:
    # Older payloads carry the inbox link; its form, with the app id, builds it otherwise [S].
    link = _text_of(_object(item.get("links")).get("conversation_web"))
    if link and link.startswith("https://"):
        return link
    if app_id and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", app_id) and re.fullmatch(r"[0-9]+", ticket_id):
        return f"https://app.intercom.com/a/apps/{app_id}/conversations/{ticket_id}"
    return None


def _tags(value: Any) -> tuple[str, ...]:
    tags = _object(value).get("tags")
    names = (tag.get("name") for tag in tags if isinstance(tag, dict)) if isinstance(tags, list) else ()
    return tuple(dict.fromkeys(name for name in map(_text_of, names) if name))


def _custom_fields(value: Any, **context: Any) -> dict[str, str]:
    """Scalar custom attributes as strings, plus provider context TicketEvent has no field for."""
    fields = {str(key): text for key, item in _object(value).items() if (text := _text_of(item)) is not None}
    fields.update({key: text for key, item in context.items() if (text := _text_of(item)) is not None})
    return fields


def _when(value: Any) -> datetime | None:
    """Intercom's timestamps are Unix seconds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    try:
        return datetime.fromtimestamp(value, tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None


class _TextExtractor(HTMLParser):
    """Collects the visible text of an HTML fragment, with a line break per block."""

    _BLOCKS = frozenset({"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre"})
    _HIDDEN = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def _html_to_text(html: str) -> str | None:
    try:
        text = _extract(html)
    except AssertionError:
        # HTMLParser asserts on some malformed "<!" declarations ("<![x["): read those as text.
        text = _extract(re.sub(r"<!(?!--)", "&lt;!", html))
    lines = (" ".join(line.split()) for line in text.splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() or None


def _extract(html: str) -> str:
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    return "".join(extractor.parts)


register(IntercomAdapter())
