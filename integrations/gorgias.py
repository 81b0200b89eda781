"""Gorgias HTTP integrations: a per-integration secret header, and the ticket payload.

Gorgias signs nothing, so the admin puts our secret in the HTTP integration's headers
(``X-Rebound-Secret``) or in Basic auth. Two bodies are understood: our key/value form
(docs/setup/gorgias.md), one Gorgias variable per key, and a Gorgias Ticket object (bare or
under ``"ticket"``), as the REST API returns it and integrations that send the whole context do.

Vendor facts used here, and where they were checked:

- HTTP integration config: url, method, ``headers``, ``form`` (key → template),
  request_content_type, triggers ``ticket-created``/``ticket-updated``/
  ``ticket-message-created``; no signature; 100 failures in a row disable it:
  developers.gorgias.com (The Integration object, HTTP integrations) and Gorgias help [V].
- Ticket object: id, status, channel, via, from_agent (of the first message), customer {id,
  email, name, firstname, lastname}, language, subject, tags [{name}], messages, and
  created/updated datetimes written *without* a UTC offset ("2019-11-16T15:59:41.966927"):
  developers.gorgias.com/reference/the-ticket-object [V].
- TicketMessage: id, from_agent, body_text, body_html, sender, created_datetime; internal notes
  are always ``from_agent`` true: developers.gorgias.com/reference/the-ticketmessage-object [V].
- Variables ``{{ticket.id}}``, ``{{ticket.subject}}``, ``{{ticket.channel}}``,
  ``{{ticket.customer.email}}``, ``{{ticket.messages[-1].body_text}}`` (the last message, so
  messages are oldest first), ``{{ticket.created_datetime}}``, ``{{ticket.updated_datetime}}``
  and the ticket URL ``https://{{ticket.account.domain}}.gorgias.com/app/ticket/{{ticket.id}}``:
  docs.gorgias.com macro variables [V]. A whole object such as ``{{ticket.messages}}`` renders
  as a Python repr with True/False, not JSON (Pipedream's Gorgias source) [S], hence one
  variable per key; ``{{ticket.customer.name}}``, ``{{ticket.language}}``,
  ``{{ticket.messages[-1].id}}`` and ``{{ticket.messages[-1].from_agent}}`` follow the object
  fields [U as template variables].
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, ClassVar
from urllib.parse import urlsplit

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
from integrations.helpscout import html_to_text  # shared converter; see that module
from integrations.signing import decode_base64, equals, require_any

SECRET_HEADER = "x-rebound-secret"

_ID = re.compile(r"[0-9]{1,20}")
_EVENTS: dict[str, EventType] = {
    "ticket-created": "ticket.created",
    "ticket-message-created": "message.created",
    "ticket-updated": "ticket.updated",
}


def verify_shared_secret(request: InboundRequest, secrets: Sequence[str], what: str) -> None:
    """Accept ``X-Rebound-Secret: <secret>`` or HTTP Basic auth whose password is the secret.

    For helpdesks that sign nothing (Gorgias, Freshdesk). Compared in constant time, on
    SHA-256 digests so the comparison does not reveal the secret's length either.

    :raise SignatureError: neither credential was sent, no secret is configured, or none matches.
    """
    candidates: list[str] = []
    if header := (request.header(SECRET_HEADER) or "").strip():
        candidates.append(header)
    authorization = (request.header("authorization") or "").strip()
    if authorization[:6].lower() == "basic ":
        decoded = decode_base64(authorization[6:])
        if decoded is not None:
            _, colon, password = decoded.decode("utf-8", "replace").partition(":")
            if colon and password:
                candidates.append(password)
    if not candidates:
        raise SignatureError(f"Missing {SECRET_HEADER} header or Basic auth for {what}.")
    given = [hashlib.sha256(candidate.encode("utf-8")).digest() for candidate in candidates]

    def matches(secret: str) -> bool:
        expected = hashlib.sha256(secret.encode("utf-8")).digest()
        return any([equals(expected, digest) for digest in given])  # a list: no early exit

    require_any(secrets, matches, what)


class GorgiasAdapter:
    """Inbound calls from a Gorgias HTTP integration."""

    kind: ClassVar[str] = "gorgias"
    secret_names: ClassVar[Sequence[str]] = ("shared_secret",)

    def verify(self, request: InboundRequest, secrets: Sequence[str], now: datetime) -> None:
        """Check the shared secret; Gorgias sends no timestamp to check.

        :raise SignatureError: no secret sent, none configured, or none matches.
        """
        verify_shared_secret(request, secrets, "Gorgias")

    def handshake(self, request: InboundRequest, secrets: Sequence[str]) -> Handshake | None:
        """Gorgias validates nothing by challenge."""
        return None

    def delivery_key(self, request: InboundRequest) -> str:
        """Gorgias sends no delivery or event id: the body's hash (retries resend it unchanged)."""
        return body_hash_key(request)

    def parse(self, request: InboundRequest) -> TicketEvent:
        """Read our form (``ticket_id`` …) or a Ticket object (``id``, ``messages`` …).

        :raise PayloadError: malformed JSON, or no ticket id ("ticket_id" or "ticket.id").
        """
        payload = _load_object(request)
        if "ticket_id" in payload:
            ticket, field = _from_form(payload), "ticket_id"
        elif isinstance(payload.get("ticket"), Mapping):
            ticket, field = dict(payload["ticket"]), "ticket.id"
        else:
            ticket, field = payload, "ticket.id"
        ticket_id = _ticket_id(ticket.get("id"), field)

        messages = _messages(ticket.get("messages"))
        event_type = _event_type(_text(payload.get("event")), messages)
        role = _author(event_type, ticket, messages)
        if event_type == "message.created" and role == "agent":
            event_type = "ticket.updated"  # an agent's reply is not a customer message

        message = None
        if event_type in ("ticket.created", "message.created") and role != "agent":
            # The latest customer message: the last one not from an agent (messages are oldest
            # first); a form that leaves out message_from_agent still gets its message read.
            message = next((m for m in reversed(messages) if _flag(m.get("from_agent")) is not True), None)
        customer = ticket.get("customer") if isinstance(ticket.get("customer"), Mapping) else {}
        return TicketEvent(
            provider="gorgias",
            ticket_id=ticket_id,
            event_type=event_type,
            ticket_url=_url(ticket.get("url")),
            requester_email=_text(customer.get("email")),
            requester_name=_text(customer.get("name")) or _joined(customer.get("firstname"), customer.get("lastname")),
            requester_id=_text(customer.get("id")),
            subject=_text(ticket.get("subject")),
            message=_message_text(message) if message else None,
            message_id=_text(message.get("id")) if message else None,
            author_role=role,
            tags=_tags(ticket.get("tags")),
            language=_text(ticket.get("language")),
            custom_fields={"channel": channel} if (channel := _text(ticket.get("channel"))) else {},
            occurred_at=_occurred_at(event_type, ticket, message) or _received(request),
        )

    def sign(self, body: bytes, secret: str, now: datetime, delivery_id: str) -> dict[str, str]:
        """The headers our Gorgias setup sends: the shared secret (Gorgias signs nothing)."""
        return {"Content-Type": "application/json", "X-Rebound-Secret": secret}

    def sample(self) -> bytes:
        """Our form as Gorgias renders it on ``ticket-created``: a return request for #1001."""
        return _SAMPLE


def _from_form(form: Mapping[str, Any]) -> dict[str, Any]:
    """Our flat form (docs/setup/gorgias.md) as the Ticket-object shape the parser reads."""
    message = {"id": form.get("message_id"), "body_text": form.get("message"),
               "from_agent": form.get("message_from_agent"), "created_datetime": None}
    return {
        "id": form.get("ticket_id"),
        "url": form.get("ticket_url"),
        "subject": form.get("subject"),
        "channel": form.get("channel"),
        "language": form.get("language"),
        "tags": form.get("tags"),
        "customer": {"id": form.get("customer_id"), "email": form.get("customer_email"),
                     "name": form.get("customer_name")},
        "messages": [message] if _text(form.get("message")) else [],
        "created_datetime": form.get("created_datetime"),
        "updated_datetime": form.get("updated_datetime"),
    }


def _messages(value: Any) -> list[Mapping[str, Any]]:
    return [message for message in value if isinstance(message, Mapping)] if isinstance(value, list) else []


def _event_type(event: str | None, messages: list[Mapping[str, Any]]) -> EventType:
    if event:
        # Accept the API's dashes and the older API's underscores (ticket_created).
        return _EVENTS.get(event.lower().replace("_", "-"), "other")
    # No event named: infer it from the messages (oldest first).
    last_by_customer = bool(messages) and _flag(messages[-1].get("from_agent")) is False
    if last_by_customer and len(messages) == 1:
        return "ticket.created"
    return "message.created" if last_by_customer else "ticket.updated"


def _author(event_type: EventType, ticket: Mapping[str, Any], messages: list[Mapping[str, Any]]) -> AuthorRole:
    """Who wrote what the event is about: the first message of a new ticket, else the last one."""
    if event_type == "ticket.created":
        by_agent = _flag(ticket.get("from_agent"))  # the ticket's from_agent is its first message's
        if by_agent is None and messages:
            by_agent = _flag(messages[0].get("from_agent"))
    elif event_type == "message.created" and messages:
        by_agent = _flag(messages[-1].get("from_agent"))
    else:
        return "unknown"
    return "agent" if by_agent else "customer" if by_agent is False else "unknown"


def _occurred_at(event_type: EventType, ticket: Mapping[str, Any],
                 message: Mapping[str, Any] | None) -> datetime | None:
    """The message's time, else the ticket's creation (new ticket) or last update."""
    if message and (moment := _time(message.get("created_datetime"))):
        return moment
    if event_type == "ticket.created" and (moment := _time(ticket.get("created_datetime"))):
        return moment
    return _time(ticket.get("updated_datetime"))


def _message_text(message: Mapping[str, Any]) -> str | None:
    text = _text(message.get("body_text"))
    return text if text is not None else html_to_text(_text(message.get("body_html")))


def _flag(value: Any) -> bool | None:
    """A JSON boolean, or the "True"/"False" a Gorgias template renders (a Python repr)."""
    if isinstance(value, bool):
        return value
    text = (_text(value) or "").lower()
    return True if text in ("true", "1", "yes") else False if text in ("false", "0", "no") else None


def _tags(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):  # a form value: comma-separated names
        items: list[Any] = value.split(",")
    else:
        items = value if isinstance(value, list) else []
    names = (_text(item.get("name")) if isinstance(item, Mapping) else _text(item) for item in items)
    return tuple(dict.fromkeys(name for name in names if name))


def _joined(*parts: Any) -> str | None:
    return " ".join(text for text in map(_text, parts) if text) or None


def _url(value: Any) -> str | None:
    text = _text(value)
    if not text or any(c.isspace() for c in text):
        return None
    try:
        parts = urlsplit(text)
        port_ok = parts.port is None or parts.port > 0  # .port raises on "host:alert(1)"
    except ValueError:
        return None
    return text if port_ok and parts.scheme in ("https", "http") and parts.hostname else None


def _ticket_id(value: Any, field: str) -> str:
    text = _text(value)
    if not text:
        raise PayloadError(f"The payload has no ticket id ({field}).", field)
    if not _ID.fullmatch(text):
        # e.g. an unrendered "{{ticket.id}}" from a mistyped form
        raise PayloadError(f"{field} is not a Gorgias ticket id: {text[:40]!r}.", field)
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
    """Gorgias writes UTC times without an offset; they are read as UTC."""
    text = _text(value)
    try:
        moment = datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment and not moment.tzinfo else moment


def _received(request: InboundRequest) -> datetime | None:
    moment = request.received_at
    return moment.replace(tzinfo=timezone.utc) if moment and not moment.tzinfo else moment


_SAMPLE = b"""{"event":"ticket-created","ticket_id":"48213907",\
"ticket_url":"https://acme-outdoor.gorgias.com/app/ticket/48213907",\
"subject":"Return request - order #1001","channel":"email","language":"en",\
"customer_id":"3924","customer_email":"maria.lopez@example.com","customer_name":"Maria Lopez",\
"message_id":"112233445","message":"Hi, I received order #1001 last week. The rain jacket \
(size M) is too big, I would like to return it and get a refund. Thanks, Maria",\
"message_from_agent":"False","created_datetime":"2026-03-02T09:14:05.120331",\
"updated_datetime":"2026-03-02T09:14:05.120331"}
"""

register(GorgiasAdapter())
