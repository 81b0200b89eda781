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

Write-back (``FrontClient``, Core API at ``https://api2.frontapp.com``), and where each fact was
checked:

- Comment (our note): ``POST /conversations/{id}/comments`` with ``{"body"}`` (markdown; only
  ``body`` required; optional ``author_id``, else it posts as the token) [V: reference §5.3,
  read from Front's core-api spec; withone.ai's OpenAPI-derived page agrees].
- Reply: ``POST /conversations/{id}/messages`` ("Create message reply", scope
  ``messages:send``) with ``{"body"}`` (only ``body`` required; ``text`` is the plain version
  for email; optional ``author_id``) [V: reference §5.3, aprovanlabs' registry of the spec].
  Front replies to the conversation's recipients, so ``recipient_email`` is not needed.
- Status, custom fields: ``PATCH /conversations/{id}`` with ``status`` (archived, open,
  deleted, spam) or ``status_id`` (ticketing statuses, ``sts_…``); ``custom_fields`` is keyed
  by field *name* and **replaces all of them** ("if you send only the custom fields you want to
  update, the other custom fields will be erased"): dev.frontapp.com Update conversation [V]
  → read-modify-write from ``GET /conversations/{id}``.
- Tags: ``POST /conversations/{id}/tags`` adds and ``DELETE /conversations/{id}/tags`` removes
  ``{"tag_ids": [...]}`` without touching the others (``tag_ids`` in the PATCH would replace the
  list) [V: reference §5.3; withone.ai's pages]. Names are turned into ids: tags already on the
  conversation come with it; other names are looked up in ``GET /tags`` (paginated through
  ``_pagination.next``, followed only on the same host); **a name unknown to Front is created**
  with ``POST /tags`` ``{"name"}`` (a company tag) — chosen over failing so that an RMA tag
  works on first use; removing an unknown name is a no-op. A value starting ``tag_`` is an id.
  Only tags missing from (or present on) the conversation are sent, so a retry is harmless.
- Merged conversations answer 301 to their new location [V]; we follow it on the same host only.
- Idempotency header: none documented → only ``X-Rebound-Idempotency-Key``.
- Rate limit: per company 50 (Starter) / 100 / 200 requests per minute, 429 with
  ``Retry-After`` seconds; some routes have a burst limit: dev.frontapp.com/docs/rate-limiting
  [V] → ``RateLimit(50, 60)``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, Literal

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
    SignatureError,
    TicketEvent,
    body_hash_key,
    key_from_id,
    register,
    register_client,
)
from integrations.outbound import (
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
    MAX_ID,
    as_object,
    custom_fields,
    json_object,
    peek_object,
    required_id,
    text,
    unique_texts,
    unix_time,
    utc,
)
from integrations.signing import (
    check_window,
    decode_base64,
    encode_base64,
    hmac_digest,
    parse_unix_time,
    require_hmac,
)
from integrations.text import html_to_text

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
            require_hmac(secrets, "sha1", request.body, given, "Front rule webhook")
            return
        # A timestamp header, even an empty one, means the application scheme: never fall back
        # to the weaker rule scheme because a header is malformed.
        check_window(_sent_at(stamp), now)
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
        _sent_at(stamp)
        _require_app_signature(request, stamp, _signature(request), secrets)
        return Handshake(status=200, body=json.dumps({"challenge": challenge}), content_type="application/json")

    def delivery_key(self, request: InboundRequest) -> str:
        """The event id (``evt_…``): the same for every retry of one event."""
        data = peek_object(request)
        return key_from_id(text(_event(data).get("id")) if data is not None else None) or body_hash_key(request)

    def parse(self, request: InboundRequest) -> TicketEvent:
        data = json_object(request)
        if data.get("type") == "sync":  # the validation request: no conversation in it
            return TicketEvent(provider=self.kind, ticket_id="", event_type="ping")
        event = _event(data)
        conversation = event.get("conversation")
        if not isinstance(conversation, dict):
            raise PayloadError("The Front event has no conversation.", "conversation")
        ticket_id = required_id(conversation.get("id"), "conversation.id", "Front conversation id")

        front_type = text(event.get("type")) or text(data.get("type")) or ""
        front_type = _APP_EVENT_TYPES.get(front_type, front_type)
        target = as_object(event.get("target"))
        message = as_object(target.get("data")) if as_object(target.get("_meta")).get("type") == "message" else {}
        inbound = front_type == "inbound" or message.get("is_inbound") is True

        event_type: EventType
        role: AuthorRole
        if front_type == "inbound":
            # Front has no "conversation created" event: an inbound message that replies to no
            # earlier message opens the conversation (``_links.related.message_replied_to`` is
            # set on replies [S: Front API message samples]).
            replied_to = as_object(as_object(message.get("_links")).get("related")).get("message_replied_to")
            event_type, role = ("message.created" if replied_to else "ticket.created"), "customer"
        elif front_type in _UPDATE_TYPES:
            event_type, role = "ticket.updated", "unknown"
        elif front_type in _AGENT_TYPES:
            event_type, role = "other", "agent"
        else:
            event_type, role = "other", "unknown"

        contact = _sender(message) if inbound else None
        contact = contact or as_object(conversation.get("recipient"))
        handle = text(contact.get("handle"))
        said = _message_text(message) if role == "customer" else None
        return TicketEvent(
            provider=self.kind,
            ticket_id=ticket_id,
            event_type=event_type,
            ticket_url=f"https://app.frontapp.com/open/{ticket_id}",  # Front's permalink form [S]
            requester_email=handle if handle and _looks_like_email(handle) else None,
            requester_name=text(contact.get("name")),
            requester_id=_contact_id(contact),
            subject=text(conversation.get("subject")) or text(message.get("subject")),
            message=said,
            message_id=text(message.get("id")) if said else None,
            author_role=role,
            tags=_tags(conversation.get("tags")),
            custom_fields=custom_fields(conversation.get("custom_fields"),
                                        front_company_id=as_object(data.get("authorization")).get("id")),
            # Front's timestamps are Unix seconds with a fraction.
            occurred_at=unix_time(event.get("emitted_at")) or unix_time(message.get("created_at"))
            or unix_time(conversation.get("created_at")),
            external_event_id=text(event.get("id")),
        )

    def sign(self, body: bytes, secret: str, now: datetime, delivery_id: str, *,
             scheme: Literal["app", "rule"] = "app") -> dict[str, str]:
        """Front's headers for ``body``: an application webhook (timestamped, so a stale one is
        refused) unless ``scheme="rule"``. Front sends no delivery id header: the event id is in
        the body, so ``delivery_id`` is unused."""
        headers = {"Content-Type": "application/json"}
        if scheme == "rule":
            headers["X-Front-Signature"] = encode_base64(hmac_digest("sha1", secret, body))
            return headers
        stamp = str(int(utc(now).timestamp() * 1000))
        headers["X-Front-Request-Timestamp"] = stamp
        headers["X-Front-Signature"] = encode_base64(hmac_digest("sha256", secret, stamp.encode() + b":" + body))
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
    message = stamp.encode() + b":" + request.body  # the stamp is digits: _sent_at checked it
    require_hmac(secrets, "sha256", message, given, "Front application webhook")


def _sent_at(stamp: str) -> datetime:
    """:raise SignatureError: not a whole number of milliseconds."""
    return parse_unix_time(stamp, "X-Front-Request-Timestamp", millis=True)


def _event(data: dict[str, Any]) -> dict[str, Any]:
    """The event: the body itself (rule webhook) or its ``payload`` (application webhook)."""
    payload = data.get("payload")
    return payload if isinstance(payload, dict) else data


def _sender(message: dict[str, Any]) -> dict[str, Any] | None:
    recipients = message.get("recipients")
    for recipient in recipients if isinstance(recipients, list) else ():
        if isinstance(recipient, dict) and recipient.get("role") == "from":
            return recipient
    return None


def _contact_id(contact: Mapping[str, Any]) -> str | None:
    """The ``crd_…`` id at the end of the contact link, when Front matched a contact."""
    link = text(as_object(as_object(contact.get("_links")).get("related")).get("contact"))
    tail = link.rstrip("/").rsplit("/", 1)[-1] if link else None
    return tail if tail and len(tail) <= MAX_ID else None


def _looks_like_email(handle: str) -> bool:
    # Handles can be phone numbers or channel ids; only an address is an email.
    return len(handle) <= 254 and re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", handle) is not None


def _message_text(message: dict[str, Any]) -> str | None:
    # Front gives a plain ``text`` next to the HTML ``body``; the blurb is a truncated preview.
    plain = text(message.get("text"))
    if plain is None and isinstance(message.get("body"), str):
        plain = html_to_text(message["body"])
    return plain or text(message.get("blurb"))


def _tags(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else []
    return unique_texts(item.get("name") if isinstance(item, dict) else item for item in items)


register(FrontAdapter())


# --- write-back ---------------------------------------------------------------------------

_MAX_TAG_PAGES = 20  # 100 tags a page: 2,000 tags looked through at most


class FrontClient:
    """Comments, replies, status, tags and custom fields on Front conversations."""

    kind: ClassVar[str] = "front"
    rate_limit: ClassVar[RateLimit] = RateLimit(50, 60.0)  # Starter plan, the lowest

    def deliver(self, action: OutboundAction, connection: Connection, session: requests.Session) -> DeliveryResult:
        token = (connection.credentials.get("api_token") or "").strip()
        exchange = Exchange(action, connection, session,
                            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        return exchange.run(lambda: self._steps(action, connection, exchange))

    def _steps(self, action: OutboundAction, connection: Connection, exchange: Exchange) -> str | None:
        credential(connection, "api_token")
        conversation = f"/conversations/{segment(action.ticket_id, 'Front conversation id')}"
        author = {"author_id": action.author_id.strip()} if (action.author_id or "").strip() else {}
        if action.kind == "note":
            require_body(action)
            response = exchange.call("POST", f"{conversation}/comments", json={"body": plain_body(action), **author})
            return text_id(as_object(exchange.json(response)).get("id"))
        if action.kind == "reply":
            require_body(action)
            response = exchange.call("POST", f"{conversation}/messages",
                                     json={"body": html_body(action), "text": plain_body(action), **author})
            data = as_object(exchange.json(response)) if response.content.strip() else {}
            return text_id(data.get("id")) or text_id(data.get("message_uid"))
        if action.kind == "status":
            status = require_status(action)
            exchange.call("PATCH", conversation, json={"status_id" if status.startswith("sts_") else "status": status})
            return None
        if action.kind == "fields":
            found = as_object(exchange.json(exchange.call("GET", conversation))).get("custom_fields")
            current = dict(found) if isinstance(found, Mapping) else {}
            merged = {**current, **require_fields(action)}
            if merged != current:  # custom_fields replaces them all: send every one back
                exchange.call("PATCH", conversation, json={"custom_fields": merged})
            return None
        if action.kind == "tags":
            add, remove = tag_changes(action)
            on_conversation = _tag_objects(as_object(exchange.json(exchange.call("GET", conversation))).get("tags"))
            present_ids = {tag_id for tag_id, _name in on_conversation}
            present_names = {name.casefold(): tag_id for tag_id, name in on_conversation}
            remove_ids = [tag_id for tag_id in dict.fromkeys(
                tag if tag.startswith("tag_") else present_names.get(tag.casefold(), "") for tag in remove)
                if tag_id in present_ids]
            missing = [tag for tag in add if tag not in present_ids and tag.casefold() not in present_names]
            add_ids = [tag_id for tag_id in dict.fromkeys(self._tag_ids(exchange, missing)) if tag_id not in present_ids]
            if add_ids:
                exchange.call("POST", f"{conversation}/tags", json={"tag_ids": add_ids})
            if remove_ids:
                exchange.call("DELETE", f"{conversation}/tags", json={"tag_ids": remove_ids})
            return None
        raise ValueError(f"unknown action kind {action.kind!r}")

    def _tag_ids(self, exchange: Exchange, names: list[str]) -> list[str]:
        """Ids for tag ``names`` (values starting ``tag_`` are ids already), creating those Front
        does not know."""
        ids = {name: name for name in names if name.startswith("tag_")}
        wanted = {name.casefold(): name for name in names if name not in ids}
        next_url: str | None = "/tags?limit=100" if wanted else None
        for _page in range(_MAX_TAG_PAGES):
            if not next_url:
                break
            page = as_object(exchange.json(exchange.call("GET", next_url)))
            for tag_id, name in _tag_objects(page.get("_results")):
                if (original := wanted.pop(name.casefold(), None)) is not None:
                    ids[original] = tag_id
            next_url = text(as_object(page.get("_pagination")).get("next")) if wanted else None
        for name in wanted.values():  # not in Front yet: create it (a company tag)
            created = as_object(exchange.json(exchange.call("POST", "/tags", json={"name": name})))
            if tag_id := text_id(created.get("id")):
                ids[name] = tag_id
        return [ids[name] for name in names if name in ids]


def _tag_objects(value: Any) -> list[tuple[str, str]]:
    """``(id, name)`` of a list of Front tag objects."""
    out = []
    for tag in value if isinstance(value, list) else []:
        tag = as_object(tag)
        if (tag_id := text_id(tag.get("id"))) and (name := text(tag.get("name"))):
            out.append((tag_id, name))
    return out


register_client(FrontClient())
