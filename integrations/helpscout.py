"""Help Scout webhooks: ``X-HelpScout-Signature`` check and the v2 Conversation payload.

Vendor facts used here, and where they were checked:

- ``X-HelpScout-Signature = base64(HMAC-SHA1(secret_key, raw body))``; the event name is in
  ``X-HelpScout-Event``; conversation events send the v2 Conversation object, ``convo.deleted``
  only ``{id}``: developer.helpscout.com/webhooks [V]; the official helpscout-api-php
  ``IncomingWebhook`` computes the same and names the test event ``helpscout.test`` [V].
- Conversation fields (id, number, subject, createdAt, createdBy {type}, source.via,
  primaryCustomer, tags [{id, color, tag}], customFields [{id, name, value}],
  ``_embedded.threads`` [{id, type, state, body, createdBy, customer, createdAt}]):
  developer.helpscout.com/mailbox-api/endpoints/conversations/get/ and the official PHP
  client's test payloads [V]. Thread types customer/message/note/chat/phone…: the threads
  list endpoint [V, via a connector that quotes it].
- ``https://secure.helpscout.net/conversation/<id>/<number>/`` opens a conversation:
  developer.helpscout.com (legacy conversation object) [V]; ``_links.web.href`` [U].
- The order of ``_embedded.threads`` is not specified [S], so the newest thread is chosen by
  ``createdAt``; without one, the first thread wins (the API lists newest first [U]).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from html import unescape
from typing import Any, ClassVar

from integrations.base import (
    AuthorRole,
    EventType,
    Handshake,
    InboundRequest,
    PayloadError,
    SignatureError,
    TicketEvent,
    register,
)
from integrations.signing import decode_base64, equals, hmac_digest, require_any

SIGNATURE_HEADER = "x-helpscout-signature"
EVENT_HEADER = "x-helpscout-event"
TEST_EVENT = "helpscout.test"

_ID = re.compile(r"[0-9]{1,20}")
_CUSTOMER_THREADS = frozenset({"customer"})
_EITHER_SIDE_THREADS = frozenset({"chat", "beaconchat", "phone"})  # createdBy.type tells who


class HelpScoutAdapter:
    """Inbound webhooks from Help Scout's Webhooks app (v2 payloads)."""

    kind: ClassVar[str] = "helpscout"
    secret_names: ClassVar[Sequence[str]] = ("secret_key",)

    def verify(self, request: InboundRequest, secrets: Sequence[str], now: datetime) -> None:
        """Check the HMAC-SHA1 of the raw body. Help Scout sends no timestamp to check.

        :raise SignatureError: the header is missing or no secret matches.
        """
        signature = (request.header(SIGNATURE_HEADER) or "").strip()
        if not signature:
            raise SignatureError("Missing X-HelpScout-Signature header.")
        given = decode_base64(signature)

        def matches(secret: str) -> bool:
            return given is not None and equals(hmac_digest("sha1", secret, request.body), given)

        require_any(secrets, matches, "Help Scout")

    def handshake(self, request: InboundRequest, secrets: Sequence[str]) -> Handshake | None:
        """Help Scout validates nothing by challenge."""
        return None

    def delivery_key(self, request: InboundRequest) -> str:
        """Help Scout sends no delivery id: the event name and the body, hashed together.

        The same conversation body can arrive for two events (a reply, then its tags), so the
        event name is part of the key.
        """
        event = (request.header(EVENT_HEADER) or "").strip().encode("utf-8", "replace")
        return "sha256:" + hashlib.sha256(event + b"\x00" + request.body).hexdigest()

    def parse(self, request: InboundRequest) -> TicketEvent:
        """Read the conversation; the newest customer thread becomes the message (plain text).

        :raise PayloadError: malformed JSON, or no conversation ``id``.
        """
        event = (request.header(EVENT_HEADER) or "").strip()
        if event == TEST_EVENT:  # the "Test" button in Help Scout: answer it, whatever its body
            return TicketEvent(provider="helpscout", ticket_id="", event_type="ping", author_role="system")
        payload = _load_object(request)
        conversation_id = _conversation_id(payload.get("id"))

        event_type: EventType
        role: AuthorRole = "unknown"
        if event == "convo.created":
            event_type, role = "ticket.created", _creator_role(payload)
        elif event == "convo.customer.reply.created":
            event_type, role = "message.created", "customer"
        elif event in ("convo.agent.reply.created", "convo.note.created"):
            event_type, role = "ticket.updated", "agent"
        elif event.startswith("convo."):
            event_type = "ticket.updated"
        else:
            event_type = "other"  # customer.*, tag.*, satisfaction.*: not a conversation

        thread = None
        if event_type in ("ticket.created", "message.created") and role != "agent":
            # Only these events bring a new customer message; repeating it on a status change
            # would add it to the case timeline again.
            thread = _newest_customer_thread(payload)
        customer = _customer(payload, thread)
        return TicketEvent(
            provider="helpscout",
            ticket_id=conversation_id,
            event_type=event_type,
            ticket_url=_web_url(payload, conversation_id),
            requester_email=_text(customer.get("email")),
            requester_name=_name(customer),
            requester_id=_text(customer.get("id")),
            subject=_text(payload.get("subject")),
            message=html_to_text(_text(thread.get("body"))) if thread else None,
            message_id=_text(thread.get("id")) if thread else None,
            author_role=role,
            tags=_tags(payload.get("tags")),
            custom_fields=_custom_fields(payload.get("customFields")),
            occurred_at=(_time(thread.get("createdAt")) if thread else None)
            or (_time(payload.get("createdAt")) if event_type == "ticket.created" else None)
            or _time(payload.get("userUpdatedAt")) or _received(request),
        )

    def sign(self, body: bytes, secret: str, now: datetime, delivery_id: str) -> dict[str, str]:
        """The headers Help Scout sends (for a new conversation; change the event to taste)."""
        digest = hmac_digest("sha1", secret, body)
        return {
            "Content-Type": "application/json",
            "X-HelpScout-Event": "convo.created",
            "X-HelpScout-Signature": base64.b64encode(digest).decode("ascii"),
        }

    def sample(self) -> bytes:
        """A ``convo.created`` conversation: a customer asks to return an item from #1001."""
        return _SAMPLE


def html_to_text(html: str | None) -> str | None:
    """Plain text from an HTML message body: blocks and ``<br>`` become line breaks.

    Text without tags is returned as it is (trimmed), so plain bodies keep their line breaks.
    Runs in linear time and never raises, whatever the markup: ``html.parser`` was dropped
    because inputs such as ``"<a " * 10_000`` make it take minutes.
    """
    if html is None:
        return None
    if not _MARKUP.search(html):
        return unescape(html).strip() or None
    parts: list[str] = []
    pos, size = 0, len(html)
    while pos < size:
        start = html.find("<", pos)
        if start < 0:
            parts.append(_inline(html[pos:]))
            break
        parts.append(_inline(html[pos:start]))
        if html.startswith("<!--", start):
            end = html.find("-->", start + 4)
            pos = size if end < 0 else end + 3
            continue
        tag = _TAG.match(html, start)
        if tag is None:  # a lone "<" is text
            parts.append("<")
            pos = start + 1
            continue
        pos = tag.end()
        name = (tag.group("name") or "").lower()
        if name in _HIDDEN and not tag.group("close"):
            close = re.compile(rf"</{name}\b[^<>]*+>", re.IGNORECASE).search(html, pos)
            pos = size if close is None else close.end()
        elif name in _BLOCKS or (name in _BREAKS and not tag.group("close")):
            parts.append("\n")
    lines = (line.strip() for line in "".join(parts).split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() or None


def _inline(text: str) -> str:
    # In HTML a line break in the source is just a space; only tags make new lines.
    return re.sub(r"\s+", " ", unescape(text)) if text else ""


_MARKUP = re.compile(r"<[A-Za-z/!?]")
# Possessive quantifiers (Python 3.11+) keep a tag that never closes from being re-scanned.
_TAG = re.compile(r"<(?:(?P<close>/?)(?P<name>[A-Za-z][A-Za-z0-9:-]*+)|[!?])[^<>]*+>")
_BLOCKS = frozenset({
    "address", "article", "blockquote", "dd", "div", "dl", "dt", "footer", "h1", "h2", "h3", "h4",
    "h5", "h6", "header", "li", "ol", "p", "pre", "section", "table", "tr", "ul",
})
_BREAKS = frozenset({"br", "hr"})  # void elements: one line break, and no closing one
_HIDDEN = frozenset({"head", "script", "style", "template", "title"})


def _newest_customer_thread(payload: Mapping[str, Any]) -> Mapping[str, Any] | None:
    embedded = payload.get("_embedded")
    threads = embedded.get("threads") if isinstance(embedded, Mapping) else None
    if not isinstance(threads, list):
        return None
    candidates: list[tuple[datetime, int, Mapping[str, Any]]] = []
    for index, thread in enumerate(threads):
        if not isinstance(thread, Mapping) or thread.get("state") in ("draft", "hidden"):
            continue
        kind = _text(thread.get("type"))  # a string, or None: never an unhashable JSON value
        author = thread.get("createdBy")
        by_customer = isinstance(author, Mapping) and author.get("type") == "customer"
        if kind in _CUSTOMER_THREADS or (kind in _EITHER_SIDE_THREADS and by_customer):
            when = _time(thread.get("createdAt")) or datetime.min.replace(tzinfo=timezone.utc)
            candidates.append((when, -index, thread))
    return max(candidates, key=lambda c: (c[0], c[1]))[2] if candidates else None


def _creator_role(payload: Mapping[str, Any]) -> AuthorRole:
    """Who opened the conversation: ``source.via`` is customer or user (an agent)."""
    source = payload.get("source")
    author = payload.get("createdBy")
    via = source.get("via") if isinstance(source, Mapping) else None
    via = via or (author.get("type") if isinstance(author, Mapping) else None)
    return "customer" if via == "customer" else "agent" if via == "user" else "unknown"


def _customer(payload: Mapping[str, Any], thread: Mapping[str, Any] | None) -> Mapping[str, Any]:
    for candidate in (payload.get("primaryCustomer"), payload.get("customer"),
                      thread.get("customer") if thread else None):
        if isinstance(candidate, Mapping) and candidate.get("email"):
            return candidate
    for candidate in (payload.get("primaryCustomer"), payload.get("customer")):
        if isinstance(candidate, Mapping):
            return candidate
    return {}


def _name(person: Mapping[str, Any]) -> str | None:
    parts = [_text(person.get(key)) for key in ("first", "last")]
    return " ".join(part for part in parts if part) or _text(person.get("name"))


def _web_url(payload: Mapping[str, Any], conversation_id: str) -> str | None:
    links = payload.get("_links")
    web = links.get("web") if isinstance(links, Mapping) else None
    href = _text(web.get("href")) if isinstance(web, Mapping) else None
    if href and href.startswith("https://") and not any(c.isspace() for c in href):
        return href
    number = _text(payload.get("number"))
    if number and _ID.fullmatch(number):
        return f"https://secure.helpscout.net/conversation/{conversation_id}/{number}/"
    return None


def _tags(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else []
    names = (_text(item.get("tag") or item.get("name")) if isinstance(item, Mapping) else _text(item)
             for item in items)
    return tuple(dict.fromkeys(name for name in names if name))


def _custom_fields(value: Any) -> dict[str, str]:
    fields: dict[str, str] = {}
    for item in value if isinstance(value, list) else []:
        if isinstance(item, Mapping) and (name := _text(item.get("name"))):
            # Dropdown fields carry an option id in ``value`` and the label in ``text``.
            if (shown := _text(item.get("text")) or _text(item.get("value"))) is not None:
                fields[name[:100]] = shown
    return fields


def _conversation_id(value: Any) -> str:
    text = _text(value)
    if not text:
        raise PayloadError("The payload has no conversation id (id).", "id")
    if not _ID.fullmatch(text):
        raise PayloadError(f"id is not a Help Scout conversation id: {text[:40]!r}.", "id")
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


def _time(value: Any) -> datetime | None:
    text = _text(value)
    try:
        moment = datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment and not moment.tzinfo else moment


def _received(request: InboundRequest) -> datetime | None:
    moment = request.received_at
    return moment.replace(tzinfo=timezone.utc) if moment and not moment.tzinfo else moment


_SAMPLE = b"""{"id":2391938111,"number":349,"threads":1,"type":"email","folderId":1234567,\
"status":"active","state":"published","subject":"Return for order #1001",\
"preview":"Hello, I received order #1001 on Monday but the running shoes are too small.",\
"mailboxId":85,"createdBy":{"id":238604,"type":"customer","first":"Maria","last":"Lopez",\
"email":"maria.lopez@example.com"},"createdAt":"2026-03-02T09:14:05Z",\
"userUpdatedAt":"2026-03-02T09:14:05Z","customerWaitingSince":{"time":"2026-03-02T09:14:05Z",\
"friendly":"Just now","latestReplyFrom":"customer"},"source":{"type":"email","via":"customer"},\
"tags":[{"id":9150,"color":"#929499","tag":"returns"}],"cc":[],"bcc":[],\
"primaryCustomer":{"id":238604,"type":"customer","first":"Maria","last":"Lopez",\
"email":"maria.lopez@example.com"},"customFields":[{"id":6688,"name":"Order number",\
"value":"1001","text":"1001"}],"_embedded":{"threads":[{"id":88171881,"type":"customer",\
"status":"active","state":"published","action":{"type":"default","associatedEntities":{}},\
"body":"<div>Hello,</div><div><br></div><div>I received order #1001 on Monday but the running \
shoes are too small. I would like to return them for a refund.</div><div><br></div>\
<div>Thanks,<br>Maria</div>","source":{"type":"email","via":"customer"},\
"customer":{"id":238604,"first":"Maria","last":"Lopez","email":"maria.lopez@example.com"},\
"createdBy":{"id":238604,"type":"customer","first":"Maria","last":"Lopez",\
"email":"maria.lopez@example.com"},"to":[],"cc":[],"bcc":[],"createdAt":"2026-03-02T09:14:05Z",\
"_embedded":{"attachments":[]}}]},"_links":{"web":{"href":\
"https://secure.helpscout.net/conversation/2391938111/349/"},"self":{"href":\
"https://api.helpscout.net/v2/conversations/2391938111"},"mailbox":{"href":\
"https://api.helpscout.net/v2/mailboxes/85"},"primaryCustomer":{"href":\
"https://api.helpscout.net/v2/customers/238604"}}}
"""

register(HelpScoutAdapter())
