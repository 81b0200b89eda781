"""Zendesk Support webhooks: signature check, the two payload styles, and the requester lookup.

A Zendesk webhook is either *subscribed to events* (a fixed JSON schema Zendesk chooses) or
*connected to a trigger* (a body we write with placeholders; ours is in docs/setup/zendesk.md).
Both are signed the same way. Event payloads carry the requester's id but not the address, so
``fetch_requester`` reads it from the Users API.

Vendor facts used here, and where they were checked:

- Signature ``base64(HMAC-SHA256(secret, timestamp + body))`` over the raw
  ``X-Zendesk-Webhook-Signature-Timestamp`` value and the raw body, no separator; headers
  ``X-Zendesk-Webhook-Signature``, ``…-Signature-Timestamp``, ``…-Invocation-Id``:
  developer.zendesk.com/documentation/webhooks/verifying/ [V].
- Event schema (``type``, ``id``, ``time``, ``subject: "zen:ticket:<id>"``, ``detail`` with
  actor_id, description, id, requester_id, subject, submitter_id, tags, updated_at, …; no
  requester email): developer.zendesk.com/api-reference/webhooks/event-types/ticket-events/ [V].
- ``ticket.comment_added`` puts the comment in ``event.comment`` {id, body, is_public,
  author {id, is_staff, name}}: two independent third-party parsers agree (dust-tt's Zendesk
  webhook schemas; skwashd's Zendesk→EventBridge Lambda) [S]; not in the excerpts of the
  official page we could read.
- Trigger placeholders ``ticket.id``, ``ticket.title``, ``ticket.link``,
  ``ticket.requester.email``/``name``, ``ticket.created_at_with_timestamp``: Zendesk
  placeholders reference (support.zendesk.com/hc/en-us/articles/4408886858138) [V];
  ``ticket.tags`` (space-separated), ``ticket.latest_public_comment``, ``ticket.status``,
  ``ticket.requester.id``/``locale``, ``ticket.updated_at_with_timestamp`` and
  ``current_user.role`` (renders End-user/Agent/Admin): many public trigger bodies agree [S].
  ``ticket.requester.locale`` rather than ``…language``, which is a preference's display name
  (e.g. "English") where intake wants a tag such as "en-US" [U for the exact rendering].
- Users API ``GET /api/v2/users/{id}.json`` answering ``{"user": {"email", "name", …}}`` with
  Basic auth ``{email}/token:{api_token}``: developer.zendesk.com Users and Ticket Comments
  reference [V].

Write-back (``ZendeskClient``), and where each fact was checked:

- Note, public reply, status and custom fields: ``PUT /api/v2/tickets/{id}.json`` with
  ``{"ticket": {"comment": {"body", "html_body", "public", "author_id"}, "status",
  "custom_status_id", "custom_fields": [{"id", "value"}]}}`` (Update Ticket reference; a
  ``custom_fields`` entry changes only that field) [S: reference §1.3, Pipedream's Zendesk
  actions; U for ``html_body``/``custom_status_id``, standard Ticket fields].
- Tags: ``PUT /api/v2/tickets/{id}/tags.json`` *adds* ``{"tags": [...]}`` and ``DELETE`` the
  same path *removes* them, keeping the others (``POST`` would replace the list); neither works
  on closed tickets: developer.zendesk.com Tags reference [V]. Both are idempotent, so no
  read-modify-write is needed.
- Idempotency: the ``Idempotency-Key`` header is documented for ticket *creation* only
  (developer.zendesk.com Ticketing API introduction, "Idempotency") [V]; we never create tickets,
  so only ``X-Rebound-Idempotency-Key`` (ignored by Zendesk) is sent. A comment has no field for
  our key, so a note whose answer was lost (timeout) can be posted twice on retry.
- Rate limits: account-wide per plan (e.g. 700/min on Suite Enterprise) and **Update Ticket
  100/min per account**, 429 with ``Retry-After`` seconds [V, reference §1.3] → ``RateLimit(100, 60)``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
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
    IntegrationError,
    OutboundAction,
    RateLimit,
    SignatureError,
    TicketEvent,
    body_hash_key,
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
    NUMERIC_ID,
    as_object,
    custom_fields,
    http_url,
    iso_time,
    json_object,
    peek_object,
    received_at,
    required_id,
    text,
    unique_texts,
    utc,
)
from integrations.signing import (
    check_window,
    decode_base64,
    encode_base64,
    hmac_digest,
    parse_iso_time,
    require_hmac,
)

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-zendesk-webhook-signature"
TIMESTAMP_HEADER = "x-zendesk-webhook-signature-timestamp"
INVOCATION_HEADER = "x-zendesk-webhook-invocation-id"

_EVENT_PREFIX = "zen:event-type:"
_TICKET_NUMBER = "Zendesk ticket number"
_SUBJECT_TICKET = re.compile(r"zen:ticket:([0-9]{1,20})")


class ZendeskAPIError(IntegrationError):
    """A call to the Zendesk API failed; ``retryable`` says whether trying later may help."""

    retryable: ClassVar[bool] = False

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class ZendeskAuthError(ZendeskAPIError):
    """The API email or token was refused (401/403): an admin must fix the credentials."""


class ZendeskNotFoundError(ZendeskAPIError):
    """The user does not exist (any more) in this Zendesk account."""


class ZendeskRateLimitError(ZendeskAPIError):
    """Zendesk answered 429; ``retry_after`` holds its Retry-After seconds when given."""

    retryable = True


class ZendeskUnavailableError(ZendeskAPIError):
    """Timeout, connection failure or a 5xx: worth retrying later."""

    retryable = True


class ZendeskAdapter:
    """Inbound webhooks from Zendesk Support (event subscriptions and trigger webhooks)."""

    kind: ClassVar[str] = "zendesk"
    # api_email and api_token are only needed by fetch_requester (event-subscription payloads).
    secret_names: ClassVar[Sequence[str]] = ("signing_secret", "api_email", "api_token")

    def complete(self, event: TicketEvent, base_url: str | None, credentials: Mapping[str, str]) -> TicketEvent:
        """Fill in the requester's address from the Users API when the payload has only the id.

        Without a base URL or API credentials, or when the user cannot be read (wrong credentials,
        deleted user), the event is returned as it is: intake then suggests instead of opening.

        :raise ZendeskAPIError: a retryable failure (rate limit, outage): process the event later.
        """
        if event.requester_email or not event.requester_id:
            return event
        if not (base_url and credentials.get("api_email") and credentials.get("api_token")):
            return event
        try:
            email, name = fetch_requester(base_url, credentials["api_email"], credentials["api_token"],
                                          event.requester_id)
        except ZendeskAPIError as exc:
            if exc.retryable:
                raise
            log.warning("Zendesk requester %s could not be read: %s", event.requester_id, exc)
            return event
        return TicketEvent.from_dict(event.to_dict() | {"requester_email": email,
                                                         "requester_name": event.requester_name or name})

    def verify(self, request: InboundRequest, secrets: Sequence[str], now: datetime) -> None:
        """Check the HMAC over timestamp + body, then that the timestamp is within 5 minutes.

        :raise SignatureError: a header is missing, no secret matches, or the timestamp is stale.
        """
        signature = (request.header(SIGNATURE_HEADER) or "").strip()
        stamp = (request.header(TIMESTAMP_HEADER) or "").strip()
        if not signature:
            raise SignatureError("Missing X-Zendesk-Webhook-Signature header.")
        if not stamp:
            raise SignatureError("Missing X-Zendesk-Webhook-Signature-Timestamp header.")
        # The raw header value is signed, so it is used as received, never re-formatted.
        message = stamp.encode("utf-8") + request.body
        require_hmac(secrets, "sha256", message, decode_base64(signature), "Zendesk")
        check_window(parse_iso_time(stamp, "X-Zendesk-Webhook-Signature-Timestamp"), now)

    def handshake(self, request: InboundRequest, secrets: Sequence[str]) -> Handshake | None:
        """Zendesk validates nothing by challenge."""
        return None

    def delivery_key(self, request: InboundRequest) -> str:
        """The invocation id (the same for every retry), else the event id, else the body hash."""
        invocation = (request.header(INVOCATION_HEADER) or "").strip()
        if invocation:
            return f"zendesk:invocation:{invocation[:150]}"
        payload = peek_object(request)
        event_id = text(payload.get("id")) if payload is not None and "type" in payload else None
        return f"zendesk:event:{event_id[:150]}" if event_id else body_hash_key(request)

    def parse(self, request: InboundRequest) -> TicketEvent:
        """Read an event-subscription payload (``type`` + ``detail``) or our trigger body.

        :raise PayloadError: malformed JSON, or no ticket id ("detail.id" or "ticket_id").
        """
        payload = json_object(request)
        if "detail" in payload or str(payload.get("type", "")).startswith(_EVENT_PREFIX):
            return _parse_event(payload, request)
        return _parse_trigger(payload, request)

    def sign(self, body: bytes, secret: str, now: datetime, delivery_id: str) -> dict[str, str]:
        """The headers Zendesk sends: signature, its timestamp and the invocation id."""
        stamp = utc(now).strftime("%Y-%m-%dT%H:%M:%SZ")
        digest = hmac_digest("sha256", secret, stamp.encode("utf-8") + body)
        return {
            "Content-Type": "application/json",
            "X-Zendesk-Webhook-Signature": encode_base64(digest),
            "X-Zendesk-Webhook-Signature-Timestamp": stamp,
            "X-Zendesk-Webhook-Invocation-Id": delivery_id,
        }

    def sample(self) -> bytes:
        """A ``zen:event-type:ticket.created`` event: a customer asks to return part of #1001."""
        return _SAMPLE


def fetch_requester(
    base_url: str,
    email: str,
    api_token: str,
    requester_id: str,
    timeout: float = 5.0,
    session: requests.Session | None = None,
) -> tuple[str | None, str | None]:
    """The requester's ``(email, name)`` from ``GET {base_url}/api/v2/users/{id}.json``.

    :param base_url: the account's API origin, e.g. ``https://acme.zendesk.com``.
    :param email: the agent address the API token belongs to (Basic ``{email}/token:{api_token}``).
    :raise ZendeskAuthError: the credentials were refused (401/403).
    :raise ZendeskNotFoundError: no such user (404).
    :raise ZendeskRateLimitError: 429, with ``retry_after`` when Zendesk gave one.
    :raise ZendeskUnavailableError: timeout, connection failure or 5xx.
    :raise ZendeskAPIError: anything else (bad id or URL, redirect, unreadable answer).
    """
    requester_id = str(requester_id).strip()
    if not NUMERIC_ID.fullmatch(requester_id):
        raise ZendeskAPIError(f"Not a Zendesk user id: {requester_id[:40]!r}.")
    if not base_url.startswith(("https://", "http://")):
        raise ZendeskAPIError("The Zendesk base URL must start with https://.")
    url = f"{base_url.rstrip('/')}/api/v2/users/{requester_id}.json"
    http = session or requests.Session()
    try:
        # No redirects: they would carry the credentials somewhere we did not choose.
        response = http.get(url, auth=(f"{email}/token", api_token), timeout=timeout,
                            headers={"Accept": "application/json"}, allow_redirects=False)
    except requests.Timeout:
        raise ZendeskUnavailableError(f"Zendesk did not answer within {timeout} s.") from None
    except requests.RequestException as exc:
        raise ZendeskUnavailableError(f"Could not reach Zendesk: {type(exc).__name__}.") from None
    finally:
        if session is None:
            http.close()
    _raise_for_status(response)
    try:
        data = response.json()
    except ValueError:
        raise ZendeskAPIError("Zendesk answered with something that is not JSON.", response.status_code) from None
    user = data.get("user") if isinstance(data, dict) else None
    if not isinstance(user, dict):
        raise ZendeskAPIError("Zendesk's answer has no user object.", response.status_code)
    return text(user.get("email")), text(user.get("name"))


def _raise_for_status(response: requests.Response) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    if status in (401, 403):
        raise ZendeskAuthError("Zendesk refused the API email or token.", status)
    if status == 404:
        raise ZendeskNotFoundError("Zendesk has no such user.", status)
    if status == 429:
        raise ZendeskRateLimitError("Zendesk's rate limit was reached.", status,
                                    _retry_after(response.headers.get("Retry-After")))
    if status >= 500:
        raise ZendeskUnavailableError(f"Zendesk answered {status}.", status)
    raise ZendeskAPIError(f"Zendesk answered {status}.", status)


def _retry_after(value: str | None) -> float | None:
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds < 86400 else None


# --- the event-subscription schema --------------------------------------------------------


def _parse_event(payload: Mapping[str, Any], request: InboundRequest) -> TicketEvent:
    detail = as_object(payload.get("detail"))
    event = as_object(payload.get("event"))
    kind = str(payload.get("type") or "").removeprefix(_EVENT_PREFIX)
    raw_id = detail.get("id")
    if raw_id in (None, "") and kind.startswith("ticket."):
        # subject is "zen:ticket:<id>" for ticket events: a second source for the same id.
        found = _SUBJECT_TICKET.fullmatch(str(payload.get("subject") or ""))
        raw_id = found.group(1) if found else None
    ticket_id = required_id(raw_id, "detail.id", _TICKET_NUMBER, NUMERIC_ID)
    requester_id = text(detail.get("requester_id"))
    actor_id = text(detail.get("actor_id"))

    event_type: EventType = "ticket.updated"
    role: AuthorRole = "customer" if actor_id and actor_id == requester_id else "unknown"
    message = message_id = None
    if not kind.startswith("ticket."):
        event_type, role = "other", "unknown"  # user.*, organization.*: not about a ticket
    elif kind == "ticket.created":
        event_type, message = "ticket.created", text(detail.get("description"))
        submitter_id = text(detail.get("submitter_id"))
        # An agent opening a ticket for a customer is the submitter, not the requester.
        role = "customer" if requester_id and submitter_id == requester_id else "unknown"
    elif kind == "ticket.comment_added":
        comment = as_object(event.get("comment"))
        author = as_object(comment.get("author"))
        staff = author.get("is_staff")
        role = "agent" if staff is True else "customer" if staff is False else "unknown"
        # Only a public comment by the customer is a new customer message; staff comments and
        # internal notes update the ticket but must never reach a case as the customer's words.
        if comment.get("is_public") is not False and role != "agent":
            event_type = "message.created"
            message, message_id = text(comment.get("body")), text(comment.get("id"))

    return TicketEvent(
        provider="zendesk",
        ticket_id=ticket_id,
        event_type=event_type,
        requester_id=requester_id,  # the address is not in the schema: fetch_requester reads it
        subject=text(detail.get("subject")),
        message=message,
        message_id=message_id,
        author_role=role,
        tags=_tags(detail.get("tags")),
        occurred_at=iso_time(payload.get("time")) or iso_time(detail.get("updated_at")) or received_at(request),
        external_event_id=text(payload.get("id")) or text(request.header(INVOCATION_HEADER)),
    )


# --- our trigger body (docs/setup/zendesk.md) ---------------------------------------------


def _parse_trigger(payload: Mapping[str, Any], request: InboundRequest) -> TicketEvent:
    ticket_id = required_id(payload.get("ticket_id"), "ticket_id", _TICKET_NUMBER, NUMERIC_ID)
    kind = (text(payload.get("event")) or "updated").lower().removeprefix("ticket.")
    role = _role(payload.get("author_role"))
    message = text(payload.get("latest_comment"))
    if kind == "created":
        event_type: EventType = "ticket.created"
    elif kind in ("updated", "comment", "comment_added") and message and role != "agent":
        event_type = "message.created"
    elif kind in ("updated", "comment", "comment_added"):
        event_type = "ticket.updated"
    else:
        event_type = "other"
    if role == "agent" or event_type not in ("ticket.created", "message.created"):
        message = None  # an agent's words or an old comment are not a new customer message
    return TicketEvent(
        provider="zendesk",
        ticket_id=ticket_id,
        event_type=event_type,
        ticket_url=http_url(payload.get("ticket_url"), add_scheme=True),
        requester_email=text(payload.get("requester_email")),
        requester_name=text(payload.get("requester_name")),
        requester_id=text(payload.get("requester_id")),
        subject=text(payload.get("subject")),
        message=message,
        author_role=role,
        tags=_tags(payload.get("tags")),
        custom_fields=custom_fields(payload.get("custom_fields")),
        language=text(payload.get("locale")),
        occurred_at=iso_time(payload.get("updated_at")) or iso_time(payload.get("created_at")) or received_at(request),
        external_event_id=text(request.header(INVOCATION_HEADER)),
    )


def _role(value: Any) -> AuthorRole:
    """``{{current_user.role}}`` renders End-user, Agent or Admin."""
    role = (text(value) or "").lower().replace("_", "-").replace(" ", "-")
    if role in ("end-user", "enduser", "customer", "requester"):
        return "customer"
    if role in ("agent", "admin", "administrator", "staff"):
        return "agent"
    return "unknown"


# --- small readers shared by both styles --------------------------------------------------


def _tags(value: Any) -> tuple[str, ...]:
    """Tags from a JSON list, or from ``{{ticket.tags}}`` which renders them space-separated."""
    return unique_texts(value.split() if isinstance(value, str) else value if isinstance(value, list) else [])


_SAMPLE = b"""{"type":"zen:event-type:ticket.created","account_id":22129848,\
"id":"4f8a2c7e-9b1d-4e3f-a6c5-0d2e8b7f1a93","time":"2026-03-02T09:14:07Z",\
"zendesk_event_version":"2022-11-06","subject":"zen:ticket:35436",\
"detail":{"actor_id":"8447388090494","assignee_id":"","brand_id":"360001234567",\
"created_at":"2026-03-02T09:14:05Z","custom_status":"360012345678",\
"description":"Hi, I'd like to return the blue hoodie (size S) from order #1001. It is too small. \
Can I get a refund, or swap it for a size M?\\n\\nThanks,\\nMaria Lopez","external_id":null,\
"form_id":"360000123456","group_id":"360009876543","id":"35436","is_public":true,\
"organization_id":"","priority":"NORMAL","requester_id":"8447388090494","status":"NEW",\
"subject":"Return request for order #1001","submitter_id":"8447388090494",\
"tags":["return","web_widget"],"type":"QUESTION","updated_at":"2026-03-02T09:14:05Z",\
"via":{"channel":"web_form"}},\
"event":{"meta":{"sequence":{"id":"CE4A698AF24F35B3208649C6951E000E","position":1,"total":1}}}}
"""

register(ZendeskAdapter())


# --- write-back ---------------------------------------------------------------------------


class ZendeskClient:
    """Notes, public replies, status, tags and custom fields on Zendesk Support tickets."""

    kind: ClassVar[str] = "zendesk"
    rate_limit: ClassVar[RateLimit] = RateLimit(100, 60.0)  # Update Ticket: 100/min per account

    def deliver(self, action: OutboundAction, connection: Connection, session: requests.Session) -> DeliveryResult:
        email = (connection.credentials.get("api_email") or "").strip()
        token = (connection.credentials.get("api_token") or "").strip()
        exchange = Exchange(action, connection, session, auth=(f"{email}/token", token),
                            headers={"Content-Type": "application/json"})
        return exchange.run(lambda: self._steps(action, connection, exchange))

    def _steps(self, action: OutboundAction, connection: Connection, exchange: Exchange) -> str | None:
        credential(connection, "api_email")
        credential(connection, "api_token")
        ticket = segment(action.ticket_id, _TICKET_NUMBER, NUMERIC_ID)
        path = f"/api/v2/tickets/{ticket}.json"
        if action.kind in ("note", "reply"):
            require_body(action)
            comment: dict[str, Any] = {"public": action.kind == "reply"}
            if (action.body_html or "").strip():
                comment["html_body"] = html_body(action)
            if (action.body_text or "").strip() or "html_body" not in comment:
                comment["body"] = plain_body(action)
            if author := _numeric(action.author_id):
                comment["author_id"] = author
            response = exchange.call("PUT", path, json={"ticket": {"comment": comment}})
            return _comment_id(exchange.json(response))
        if action.kind == "status":
            status = require_status(action)
            # A number is a custom ticket status id; a word is a standard status (open, pending…).
            change = {"custom_status_id": int(status)} if NUMERIC_ID.fullmatch(status) else {"status": status}
            exchange.call("PUT", path, json={"ticket": change})
            return None
        if action.kind == "fields":
            fields = [{"id": _numeric(key) or key, "value": value} for key, value in require_fields(action).items()]
            exchange.call("PUT", path, json={"ticket": {"custom_fields": fields}})
            return None
        if action.kind == "tags":
            add, remove = tag_changes(action)
            tags_path = f"/api/v2/tickets/{ticket}/tags.json"
            if add:
                exchange.call("PUT", tags_path, json={"tags": add})
            if remove:
                exchange.call("DELETE", tags_path, json={"tags": remove})
            return None
        raise ValueError(f"unknown action kind {action.kind!r}")


def _numeric(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if NUMERIC_ID.fullmatch(value) else None


def _comment_id(data: Any) -> str | None:
    """The new comment's id: Update Ticket answers with the ticket and an ``audit`` whose
    ``events`` include the ``Comment`` (the audit shape is [U])."""
    audit = as_object(as_object(data).get("audit"))
    events = audit.get("events")
    for event in events if isinstance(events, list) else []:
        if isinstance(event, Mapping) and event.get("type") == "Comment":
            return text_id(event.get("id"))
    return None


register_client(ZendeskClient())
