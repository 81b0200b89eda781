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

Write-back (``HelpScoutClient``, Mailbox/Inbox API 2.0), and where each fact was checked:

- Note: ``POST /v2/conversations/{id}/notes`` with ``{"text"}`` (optional ``user``); reply:
  ``POST /v2/conversations/{id}/reply`` with ``{"customer": {"id"}, "text"}`` — ``customer`` and
  ``text`` are required, ``draft``/``user``/``status`` optional; both answer 201 with the new
  thread's id in ``Resource-ID``: developer.helpscout.com/mailbox-api (Create Note, Create
  Reply Thread) [V]. The customer's id is read from the conversation's ``primaryCustomer``
  (``GET /v2/conversations/{id}``, [V] by the webhook payload above); without one,
  ``{"email": recipient_email}`` is sent [U: the Create Conversation form of a customer].
- Status: ``PATCH /v2/conversations/{id}`` with the JSON Patch ``{"op": "replace", "path":
  "/status", "value": "active"|"pending"|"closed"|"spam"}`` [S: reference §4.3 U; a public
  client's schema lists the paths /subject, /mailboxId, /status, /assignTo].
- Tags: ``PUT /v2/conversations/{id}/tags`` with ``{"tags": [...]}``; "the entire tag list …
  must be sent … tags not part of the payload will be removed"; unknown tags are created:
  developer.helpscout.com Update Tags [V] → read-modify-write from the conversation's ``tags``
  (``[{"id", "tag"}]``).
- Custom fields: ``PUT /v2/conversations/{id}/fields`` with ``{"fields": [{"id", "value"}]}``
  [S: reference §4.3 U; a public client puts ``conversations/{id}/fields``]. Whether it replaces
  unlisted fields is not documented, so it is read-modify-written from ``customFields``
  (``[{"id", "name", "value"}]``) too; fields may be named by id or by name.
- Auth: OAuth2 bearer ``access_token`` [V]. Idempotency header: none documented → only
  ``X-Rebound-Idempotency-Key``.
- Rate limit: per account, by plan; **writes count as 2**; 429 with
  ``X-RateLimit-Retry-After`` (seconds): developer.helpscout.com/mailbox-api/overview/rate-limiting
  [V]; the legacy 200/min → ``RateLimit(100, 60)`` (100 writes fill 200).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
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
    RateLimit,
    SignatureError,
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
    iso_time,
    joined,
    json_object,
    received_at,
    required_id,
    text,
    unique_texts,
)
from integrations.signing import decode_base64, encode_base64, hmac_digest, require_hmac
from integrations.text import html_to_text

SIGNATURE_HEADER = "x-helpscout-signature"
EVENT_HEADER = "x-helpscout-event"
TEST_EVENT = "helpscout.test"

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
        require_hmac(secrets, "sha1", request.body, decode_base64(signature), "Help Scout")

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
        payload = json_object(request)
        conversation_id = required_id(payload.get("id"), "id", "Help Scout conversation id", NUMERIC_ID)

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
            requester_email=text(customer.get("email")),
            requester_name=_name(customer),
            requester_id=text(customer.get("id")),
            subject=text(payload.get("subject")),
            message=html_to_text(text(thread.get("body"))) if thread else None,
            message_id=text(thread.get("id")) if thread else None,
            author_role=role,
            tags=_tags(payload.get("tags")),
            custom_fields=_custom_fields(payload.get("customFields")),
            occurred_at=(iso_time(thread.get("createdAt")) if thread else None)
            or (iso_time(payload.get("createdAt")) if event_type == "ticket.created" else None)
            or iso_time(payload.get("userUpdatedAt")) or received_at(request),
        )

    def sign(self, body: bytes, secret: str, now: datetime, delivery_id: str) -> dict[str, str]:
        """The headers Help Scout sends (for a new conversation; change the event to taste)."""
        return {
            "Content-Type": "application/json",
            "X-HelpScout-Event": "convo.created",
            "X-HelpScout-Signature": encode_base64(hmac_digest("sha1", secret, body)),
        }

    def sample(self) -> bytes:
        """A ``convo.created`` conversation: a customer asks to return an item from #1001."""
        return _SAMPLE


def _newest_customer_thread(payload: Mapping[str, Any]) -> Mapping[str, Any] | None:
    embedded = payload.get("_embedded")
    threads = embedded.get("threads") if isinstance(embedded, Mapping) else None
    if not isinstance(threads, list):
        return None
    candidates: list[tuple[datetime, int, Mapping[str, Any]]] = []
    for index, thread in enumerate(threads):
        if not isinstance(thread, Mapping) or thread.get("state") in ("draft", "hidden"):
            continue
        kind = text(thread.get("type"))  # a string, or None: never an unhashable JSON value
        author = thread.get("createdBy")
        by_customer = isinstance(author, Mapping) and author.get("type") == "customer"
        if kind in _CUSTOMER_THREADS or (kind in _EITHER_SIDE_THREADS and by_customer):
            when = iso_time(thread.get("createdAt")) or datetime.min.replace(tzinfo=timezone.utc)
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
    return joined(person.get("first"), person.get("last")) or text(person.get("name"))


def _web_url(payload: Mapping[str, Any], conversation_id: str) -> str | None:
    href = text(as_object(as_object(payload.get("_links")).get("web")).get("href"))
    if href and href.startswith("https://") and not any(c.isspace() for c in href):
        return href
    number = text(payload.get("number"))
    if number and NUMERIC_ID.fullmatch(number):
        return f"https://secure.helpscout.net/conversation/{conversation_id}/{number}/"
    return None


def _tags(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else []
    return unique_texts(item.get("tag") or item.get("name") if isinstance(item, Mapping) else item for item in items)


def _custom_fields(value: Any) -> dict[str, str]:
    fields: dict[str, str] = {}
    for item in value if isinstance(value, list) else []:
        if isinstance(item, Mapping) and (name := text(item.get("name"))):
            # Dropdown fields carry an option id in ``value`` and the label in ``text``.
            if (shown := text(item.get("text")) or text(item.get("value"))) is not None:
                fields[name[:100]] = shown
    return fields


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


# --- write-back ---------------------------------------------------------------------------


class HelpScoutClient:
    """Notes, replies, status, tags and custom fields on Help Scout conversations."""

    kind: ClassVar[str] = "helpscout"
    rate_limit: ClassVar[RateLimit] = RateLimit(100, 60.0)  # 200/min, writes count 2

    def deliver(self, action: OutboundAction, connection: Connection, session: requests.Session) -> DeliveryResult:
        token = (connection.credentials.get("access_token") or "").strip()
        exchange = Exchange(action, connection, session,
                            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        return exchange.run(lambda: self._steps(action, connection, exchange))

    def _steps(self, action: OutboundAction, connection: Connection, exchange: Exchange) -> str | None:
        credential(connection, "access_token")
        conversation = f"/v2/conversations/{segment(action.ticket_id, 'Help Scout conversation id', NUMERIC_ID)}"
        author = (action.author_id or "").strip()
        user = {"user": int(author)} if NUMERIC_ID.fullmatch(author) else {}
        if action.kind == "note":
            require_body(action)
            response = exchange.call("POST", f"{conversation}/notes", json={"text": html_body(action), **user})
            return text_id(response.headers.get("Resource-ID"))
        if action.kind == "reply":
            require_body(action)
            found = as_object(exchange.json(exchange.call("GET", conversation)))
            customer_id = as_object(found.get("primaryCustomer")).get("id")
            if isinstance(customer_id, int) and not isinstance(customer_id, bool):
                customer: dict[str, Any] = {"id": customer_id}
            elif (action.recipient_email or "").strip():
                customer = {"email": (action.recipient_email or "").strip()}
            else:
                raise ActionRefused("The Help Scout conversation has no primary customer to reply to.")
            response = exchange.call("POST", f"{conversation}/reply",
                                     json={"customer": customer, "text": html_body(action), **user})
            return text_id(response.headers.get("Resource-ID"))
        if action.kind == "status":
            exchange.call("PATCH", conversation,
                          json={"op": "replace", "path": "/status", "value": require_status(action)})
            return None
        if action.kind == "tags":
            add, remove = tag_changes(action)
            current = list(_tags(as_object(exchange.json(exchange.call("GET", conversation))).get("tags")))
            wanted = merge_tags(current, add, remove)
            if wanted != current:
                exchange.call("PUT", f"{conversation}/tags", json={"tags": wanted})
            return None
        if action.kind == "fields":
            updates = require_fields(action)
            found = as_object(exchange.json(exchange.call("GET", conversation))).get("customFields")
            current: dict[int, Any] = {}
            by_name: dict[str, int] = {}
            for item in found if isinstance(found, list) else []:
                item = as_object(item)
                field_id = item.get("id")
                if isinstance(field_id, int) and not isinstance(field_id, bool):
                    current[field_id] = item.get("value")
                    if name := text(item.get("name")):
                        by_name[name.casefold()] = field_id
            merged = dict(current)
            for key, value in updates.items():
                field_id = int(key) if NUMERIC_ID.fullmatch(key) else by_name.get(key.casefold())
                if field_id is None:
                    raise ActionRefused(f"No Help Scout custom field {key[:40]!r} on this conversation; use its id.")
                merged[field_id] = value
            if merged != current:
                exchange.call("PUT", f"{conversation}/fields", json={"fields": [
                    {"id": field_id, "value": value} for field_id, value in merged.items() if value is not None]})
            return None
        raise ValueError(f"unknown action kind {action.kind!r}")


register_client(HelpScoutClient())
