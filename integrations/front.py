"""Front: rule webhooks and application webhooks, verified and turned into one ``TicketEvent``.

Front signs in two ways, told apart by the headers it sends:

- **Rule webhooks** (a rule's "Send to a webhook" action): ``X-Front-Signature`` is
  base64(HMAC-SHA1(API secret, body)), with no timestamp [V, dev.frontapp.com/docs/rule-webhooks].
- **Application webhooks** (a feature of an app in Developer settings): ``X-Front-Signature`` is
  base64(HMAC-SHA256(app secret, X-Front-Request-Timestamp + ":" + body)), the timestamp in
  milliseconds; Front recommends refusing timestamps older than 5 minutes
  [V, dev.frontapp.com/docs/application-webhooks].

Saving an application webhook first sends a signed ``{"type": "sync", ...}`` with an
``X-Front-Challenge`` header [V, same page]; the endpoint must answer 200 echoing the challenge.
The answer's exact shape is not on the fetched part of the page: ``{"challenge": "<value>"}`` as
JSON is what Front's own sample app (github.com/dugjason/front-webhook-application) and the
other public implementations send [S].

A rule webhook's body is the event itself: ``{"id": "evt_…", "type": "inbound", "emitted_at",
"conversation", "source", "target": {"_meta": {"type": "message"}, "data": {…message…}}}``
[S: zulip/zulip's Front fixtures, meya's Front tests, the Front API's Event schema], complete
when the Webhooks app's "Send Full Event Data" is on [V, Front help center]. An application
webhook wraps an event preview: ``{"type": "inbound_received", "authorization": {"id": "cmp_…"},
"payload": {…event…}}``, which may lack the message text and the sender's address
[S: skillrecordings/support]. Both shapes are read here.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from html.parser import HTMLParser
from typing import Any, ClassVar, Literal

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
from integrations.signing import check_window, decode_base64, equals, hmac_digest, require_any

SIGNATURE_HEADER = "x-front-signature"
TIMESTAMP_HEADER = "x-front-request-timestamp"
CHALLENGE_HEADER = "x-front-challenge"

# Application webhooks name their events differently from the API's event types [S].
_APP_EVENT_TYPES = {
    "inbound_received": "inbound", "outbound_sent": "outbound", "new_comment_added": "comment",
    "conversation_archived": "archive", "conversation_reopened": "reopen", "conversation_deleted": "trash",
    "conversation_restored": "restore", "conversation_snooze_expired": "reminder", "tag_added": "tag",
    "tag_removed": "untag", "conversation_moved": "move", "message_delivery_failed": "sending_error",
}
# Events that change the conversation rather than add a customer message [V, dev.frontapp.com
# "Events" table]; anything else (outbound replies, comments, mentions) is "other" for intake.
_UPDATE_TYPES = frozenset({
    "assign", "unassign", "archive", "reopen", "trash", "restore", "move", "tag", "untag",
    "link_added", "link_removed", "reminder", "conversations_merged", "assignee_changed", "conversation_snoozed",
})
_AGENT_TYPES = frozenset({"outbound", "out_reply", "forward", "comment", "mention"})
_MAX_ID = 100  # the inbox stores ticket ids in 100 characters
_MAX_KEY = 128


class FrontAdapter:
    """Front rule and application webhooks."""

    kind: ClassVar[str] = "front"
    #: The rule webhooks' API secret, or the application's signing secret.
    secret_names: ClassVar[Sequence[str]] = ("signing_secret",)

    def verify(self, request: InboundRequest, secrets: Sequence[str], now: datetime) -> None:
        given = _signature(request)
        stamp = request.header(TIMESTAMP_HEADER)
        if stamp is None:
            # Rule webhooks carry no timestamp, so nothing bounds a replay but the delivery key.
            require_any(secrets, lambda secret: equals(hmac_digest("sha1", secret, request.body), given),
                        "Front rule webhook")
            return
        # A timestamp header, even an empty one, means the application scheme: never fall back
        # to the weaker rule scheme because a header is malformed.
        check_window(_millis(stamp), now)
        _require_app_signature(request, stamp, given, secrets)

    def handshake(self, request: InboundRequest, secrets: Sequence[str]) -> Handshake | None:
        challenge = request.header(CHALLENGE_HEADER)
        if not challenge:
            return None
        # verify() has already checked the timestamp window; the signature is checked again so
        # that an unsigned challenge is never echoed whoever calls this.
        stamp = request.header(TIMESTAMP_HEADER)
        if stamp is None:
            raise SignatureError("A Front challenge must come signed as an application webhook.")
        _millis(stamp)
        _require_app_signature(request, stamp, _signature(request), secrets)
        return Handshake(status=200, body=json.dumps({"challenge": challenge}), content_type="application/json")

    def delivery_key(self, request: InboundRequest) -> str:
        """The event id (``evt_…``): the same for every retry of one event."""
        try:
            data = json.loads(request.body)
        except (ValueError, RecursionError):
            return body_hash_key(request)
        event_id = _text_of(_event(data).get("id")) if isinstance(data, dict) else None
        if event_id and len(event_id) <= _MAX_KEY:
            return event_id
        return body_hash_key(request)

    def parse(self, request: InboundRequest) -> TicketEvent:
        data = _load(request)
        if data.get("type") == "sync":  # the validation request: no conversation in it
            return TicketEvent(provider=self.kind, ticket_id="", event_type="ping")
        event = _event(data)
        conversation = event.get("conversation")
        if not isinstance(conversation, dict):
            raise PayloadError("The Front event has no conversation.", "conversation")
        ticket_id = _required_id(conversation.get("id"), "conversation.id")

        front_type = _text_of(event.get("type")) or _text_of(data.get("type")) or ""
        front_type = _APP_EVENT_TYPES.get(front_type, front_type)
        target = _object(event.get("target"))
        message = _object(target.get("data")) if _object(target.get("_meta")).get("type") == "message" else {}
        inbound = front_type == "inbound" or message.get("is_inbound") is True

        event_type: EventType
        role: AuthorRole
        if front_type == "inbound":
            # Front has no "conversation created" event: an inbound message that replies to no
            # earlier message opens the conversation (``_links.related.message_replied_to`` is
            # set on replies [S: Front API message samples]).
            replied_to = _object(_object(message.get("_links")).get("related")).get("message_replied_to")
            event_type, role = ("message.created" if replied_to else "ticket.created"), "customer"
        elif front_type in _UPDATE_TYPES:
            event_type, role = "ticket.updated", "unknown"
        elif front_type in _AGENT_TYPES:
            event_type, role = "other", "agent"
        else:
            event_type, role = "other", "unknown"

        contact = _sender(message) if inbound else None
        contact = contact or _object(conversation.get("recipient"))
        handle = _text_of(contact.get("handle"))
        text = _message_text(message) if role == "customer" else None
        return TicketEvent(
            provider=self.kind,
            ticket_id=ticket_id,
            event_type=event_type,
            ticket_url=f"https://app.frontapp.com/open/{ticket_id}",  # Front's permalink form [S]
            requester_email=handle if handle and _looks_like_email(handle) else None,
            requester_name=_text_of(contact.get("name")),
            requester_id=_contact_id(contact),
            subject=_text_of(conversation.get("subject")) or _text_of(message.get("subject")),
            message=text,
            message_id=_text_of(message.get("id")) if text else None,
            author_role=role,
            tags=_tags(conversation.get("tags")),
            custom_fields=_custom_fields(conversation.get("custom_fields"),
                                         front_company_id=_object(data.get("authorization")).get("id")),
            occurred_at=_when(event.get("emitted_at")) or _when(message.get("created_at"))
            or _when(conversation.get("created_at")),
            external_event_id=_text_of(event.get("id")),
        )

    def sign(self, body: bytes, secret: str, now: datetime, delivery_id: str, *,
             scheme: Literal["app", "rule"] = "app") -> dict[str, str]:
        """Front's headers for ``body``: an application webhook (timestamped, so a stale one is
        refused) unless ``scheme="rule"``. Front sends no delivery id header: the event id is in
        the body, so ``delivery_id`` is unused."""
        headers = {"Content-Type": "application/json"}
        if scheme == "rule":
            headers["X-Front-Signature"] = _b64(hmac_digest("sha1", secret, body))
            return headers
        stamp = str(int(now.timestamp() * 1000))
        headers["X-Front-Request-Timestamp"] = stamp
        headers["X-Front-Signature"] = _b64(hmac_digest("sha256", secret, stamp.encode() + b":" + body))
        return headers

    def sample(self) -> bytes:
        """An application webhook: a new email conversation asking to return an item."""
        customer = {"_links": {"related": {"contact": "https://api2.frontapp.com/contacts/crd_2x7kq1"}},
                    "name": "Dana Whitfield", "handle": "dana.whitfield@example.com", "role": "from"}
        message = {
            "_links": {
                "self": "https://api2.frontapp.com/messages/msg_1q15qmtq",
                "related": {"conversation": "https://api2.frontapp.com/conversations/cnv_yo1kg5q"},
            },
            "id": "msg_1q15qmtq",
            "type": "email",
            "is_inbound": True,
            "created_at": 1764064800.12,
            "subject": "Return for order #1001",
            "blurb": "Hi, I'd like to return the hiking boots from order #1001.",
            "body": "<div>Hi,</div><div>I'd like to return the hiking boots from order #1001 &ndash; "
                    "they are a size too small.</div><div>Thanks,<br>Dana</div>",
            "text": "Hi,\nI'd like to return the hiking boots from order #1001 – they are a size too small.\n"
                    "Thanks,\nDana\n",
            "author": None,
            "recipients": [
                customer,
                {"_links": {"related": {"contact": None}},
                 "name": "Support", "handle": "support@outfitters.example", "role": "to"},
            ],
            "attachments": [],
            "metadata": {},
        }
        event = {
            "_links": {"self": "https://api2.frontapp.com/events/evt_6bd2ptay"},
            "id": "evt_6bd2ptay",
            "type": "inbound",
            "emitted_at": 1764064801.004,
            "conversation": {
                "_links": {"self": "https://api2.frontapp.com/conversations/cnv_yo1kg5q"},
                "id": "cnv_yo1kg5q",
                "subject": "Return for order #1001",
                "status": "unassigned",
                "assignee": None,
                "recipient": customer,
                "tags": [{"_links": {"self": "https://api2.frontapp.com/tags/tag_2oxhvy"},
                          "id": "tag_2oxhvy", "name": "returns"}],
                "custom_fields": {"Order number": "#1001"},
                "created_at": 1764064800.87,
                "is_private": False,
            },
            "source": {"_meta": {"type": "inboxes"},
                       "data": [{"id": "inb_6j96", "name": "Support", "address": "support@outfitters.example"}]},
            "target": {"_meta": {"type": "message"}, "data": message},
        }
        payload = {"type": "inbound_received", "authorization": {"id": "cmp_4d8a2"}, "payload": event}
        return json.dumps(payload, indent=2).encode()


def _signature(request: InboundRequest) -> bytes:
    header = request.header(SIGNATURE_HEADER)
    if not header:
        raise SignatureError("Missing X-Front-Signature header.")
    given = decode_base64(header)
    if given is None:
        raise SignatureError("X-Front-Signature is not base64.")
    return given


def _require_app_signature(request: InboundRequest, stamp: str, given: bytes, secrets: Sequence[str]) -> None:
    message = stamp.encode() + b":" + request.body  # the stamp is digits: _millis checked it
    require_any(secrets, lambda secret: equals(hmac_digest("sha256", secret, message), given),
                "Front application webhook")


def _millis(value: str) -> datetime:
    """:raise SignatureError: not a whole number of milliseconds."""
    if not (value.isascii() and value.isdigit() and len(value) <= 16):
        raise SignatureError("X-Front-Request-Timestamp is not a timestamp in milliseconds.")
    return datetime.fromtimestamp(int(value) / 1000, tz=timezone.utc)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _load(request: InboundRequest) -> dict[str, Any]:
    try:
        data = request.json()
    except RecursionError:  # json.loads gives up on very deep nesting with RecursionError
        raise PayloadError("The body is nested too deeply.", "body") from None
    if not isinstance(data, dict):
        raise PayloadError("The body is not a JSON object.", "body")
    return data


def _event(data: dict[str, Any]) -> dict[str, Any]:
    """The event: the body itself (rule webhook) or its ``payload`` (application webhook)."""
    payload = data.get("payload")
    return payload if isinstance(payload, dict) else data


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
        raise PayloadError(f"The Front event has no {field}.", field)
    if len(ident) > _MAX_ID:
        raise PayloadError(f"{field} is longer than {_MAX_ID} characters.", field)
    return ident


def _sender(message: dict[str, Any]) -> dict[str, Any] | None:
    recipients = message.get("recipients")
    for recipient in recipients if isinstance(recipients, list) else ():
        if isinstance(recipient, dict) and recipient.get("role") == "from":
            return recipient
    return None


def _contact_id(contact: Mapping[str, Any]) -> str | None:
    """The ``crd_…`` id at the end of the contact link, when Front matched a contact."""
    link = _text_of(_object(_object(contact.get("_links")).get("related")).get("contact"))
    tail = link.rstrip("/").rsplit("/", 1)[-1] if link else None
    return tail if tail and len(tail) <= _MAX_ID else None


def _looks_like_email(handle: str) -> bool:
    # Handles can be phone numbers or channel ids; only an address is an email.
    return len(handle) <= 254 and re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", handle) is not None


def _message_text(message: dict[str, Any]) -> str | None:
    # Front gives a plain ``text`` next to the HTML ``body``; the blurb is a truncated preview.
    text = _text_of(message.get("text"))
    if text is None and isinstance(message.get("body"), str):
        text = _html_to_text(message["body"])
    return text or _text_of(message.get("blurb"))


def _tags(value: Any) -> tuple[str, ...]:
    names = (item.get("name") if isinstance(item, dict) else item for item in value) if isinstance(value, list) else ()
    return tuple(dict.fromkeys(name for name in map(_text_of, names) if name))


def _custom_fields(value: Any, **context: Any) -> dict[str, str]:
    """Scalar custom fields as strings, plus provider context TicketEvent has no field for."""
    fields = {str(key): text for key, item in _object(value).items() if (text := _text_of(item)) is not None}
    fields.update({key: text for key, item in context.items() if (text := _text_of(item)) is not None})
    return fields


def _when(value: Any) -> datetime | None:
    """Front's timestamps are Unix seconds with a fraction."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
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


register(FrontAdapter())
