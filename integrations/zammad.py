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
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from email.utils import parseaddr
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
DELIVERY_HEADER = "x-zammad-delivery"

_ROLES: dict[str, AuthorRole] = {"Customer": "customer", "Agent": "agent", "System": "system"}
_MAX_ID = 100  # the inbox stores ticket ids in 100 characters
_MAX_KEY = 128


class ZammadAdapter:
    """Zammad webhooks (Manage → Webhook) fired by a Trigger."""

    kind: ClassVar[str] = "zammad"
    #: The webhook's "HMAC SHA1 Signature Token".
    secret_names: ClassVar[Sequence[str]] = ("signing_secret",)

    def verify(self, request: InboundRequest, secrets: Sequence[str], now: datetime) -> None:
        # Zammad signs no timestamp: the delivery id is the replay guard. A webhook saved
        # without a token sends no signature at all, and is refused here.
        header = request.header(SIGNATURE_HEADER)
        if not header:
            raise SignatureError("Missing X-Hub-Signature header (set a signature token on the Zammad webhook).")
        algorithm, _, digest = header.partition("=")
        given = decode_hex(digest) if algorithm.strip().lower() == "sha1" else None
        if given is None:
            raise SignatureError("X-Hub-Signature is not sha1=<hex>.")
        require_any(secrets, lambda secret: equals(hmac_digest("sha1", secret, request.body), given), "Zammad")

    def handshake(self, request: InboundRequest, secrets: Sequence[str]) -> Handshake | None:
        return None  # Zammad validates nothing: any 2xx is a success

    def delivery_key(self, request: InboundRequest) -> str:
        """``X-Zammad-Delivery`` (the job id, kept across retries); the body hash without it."""
        delivery = (request.header(DELIVERY_HEADER) or "").strip()
        if delivery and len(delivery) <= _MAX_KEY and delivery.isprintable():
            return delivery
        return body_hash_key(request)

    def parse(self, request: InboundRequest) -> TicketEvent:
        data = _load(request)
        ticket = data.get("ticket")
        if not isinstance(ticket, dict):
            raise PayloadError("The Zammad payload has no ticket.", "ticket")
        ticket_id = _required_id(ticket.get("id"), "ticket.id")
        article = _object(data.get("article"))  # a trigger on a ticket change may carry none
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

        text = _article_text(article) if public and role == "customer" else None
        customer = _object(ticket.get("customer"))
        sender = article.get("from")
        # "Emily Adams <emily@example.com>"; only a customer's From names the customer.
        from_name, from_email = parseaddr(sender) if role == "customer" and isinstance(sender, str) else ("", "")
        name = " ".join(part for part in (_text_of(customer.get("firstname")), _text_of(customer.get("lastname")))
                        if part)
        return TicketEvent(
            provider=self.kind,
            ticket_id=ticket_id,
            event_type=event_type,
            ticket_url=None,  # the payload does not say where Zammad is hosted
            requester_email=_text_of(customer.get("email")) or (from_email.strip() or None),
            requester_name=name or (from_name.strip() or None),
            requester_id=_text_of(ticket.get("customer_id")) or _text_of(customer.get("id")),
            subject=_text_of(ticket.get("title")) or _text_of(article.get("subject")),
            message=text,
            message_id=_text_of(article.get("id")) if text else None,
            author_role=role,
            tags=_tags(ticket.get("tags")),
            custom_fields={"zammad_number": number} if (number := _text_of(ticket.get("number"))) else {},
            occurred_at=_when(article.get("created_at")) or _when(ticket.get("updated_at"))
            or _when(ticket.get("created_at")),
        )

    def sign(self, body: bytes, secret: str, now: datetime, delivery_id: str) -> dict[str, str]:
        """Zammad's headers for ``body`` (it signs no timestamp, so ``now`` is unused)."""
        return {
            "Content-Type": "application/json",
            "User-Agent": "Zammad User Agent",
            "X-Zammad-Trigger": "Rebound: new ticket",
            "X-Zammad-Delivery": delivery_id,
            "X-Hub-Signature": "sha1=" + hmac_digest("sha1", secret, body).hex(),
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
        raise PayloadError(f"The Zammad payload has no {field}.", field)
    if len(ident) > _MAX_ID:
        raise PayloadError(f"{field} is longer than {_MAX_ID} characters.", field)
    return ident


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
        return _html_to_text(body)
    return body.strip() or None


def _tags(value: Any) -> tuple[str, ...]:
    names = (item.get("name") if isinstance(item, dict) else item for item in value) if isinstance(value, list) else ()
    return tuple(dict.fromkeys(name for name in map(_text_of, names) if name))


def _when(value: Any) -> datetime | None:
    """Zammad's timestamps are ISO 8601 in UTC (``2020-11-13T14:34:35.282Z``)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


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


register(ZammadAdapter())
