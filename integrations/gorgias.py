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

Write-back (``GorgiasClient``), and where each fact was checked:

- Messages: ``POST /api/tickets/{id}/messages`` (developers.gorgias.com "Create a message" and
  the "Create a new message in ticket via API" tutorial) [V]: ``channel`` and ``from_agent`` are
  required; an internal note is ``channel: "internal-note"`` (always outgoing, never sent to the
  customer); an outgoing reply has ``from_agent: true``, a ``sender`` that is a user, a
  ``receiver`` that is the customer, ``via: "api"``, a ``source`` with ``from``/``to`` addresses
  and ``body_text``/``body_html`` [V for the fields, U for which of them Gorgias insists on].
  ``external_id`` (≤ 255 characters, "not used by Gorgias, feel free to set it") carries our
  idempotency key [V] so a duplicate left by a lost answer can be recognised; Gorgias does not
  de-duplicate on it. The reply goes out on the ``email`` channel from ``from_address`` (a
  credential; default ``api_email``), which must be one of the account's email integrations [U].
- Status: ``PUT /api/tickets/{id}`` with ``{"status": "open"|"closed"}`` [S: reference §2.3 U,
  third-party OpenAPI-derived docs (withone.ai) list status in Update a Ticket].
- Tags: ``POST /api/tickets/{id}/tags`` adds ``{"names": [...]}`` and ``DELETE`` the same path
  removes them; ``PUT`` would replace the list [S: Pipedream issue #19169 quoting
  developers.gorgias.com endpoint names; withone.ai's OpenAPI-derived pages give the ``ids``/
  ``names`` bodies]. Both are idempotent.
- Custom fields: ``PUT /api/tickets/{id}/custom-fields`` **replaces all values** ("any field
  that currently has a value on the ticket but is not included in the request body will be
  deleted"; safe pattern: GET, merge, PUT the full list of ``{"id", "value"}``):
  developers.gorgias.com/reference/update-ticket-custom-fields [V]. So fields are
  read-modify-write; the GET answers a list of ``{"field": {"id"}, "value"}`` [S], read also
  under ``"data"``.
- Idempotency header: none documented → only ``X-Rebound-Idempotency-Key``.
- Rate limit: API key 40 requests per 20 s (OAuth 80), 429 with ``Retry-after`` [V, reference
  §2.3] → ``RateLimit(40, 20)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

import requests

from integrations.base import (
    AuthorRole,
    Connection,
    DeliveryResult,
    EventType,
    InboundRequest,
    OutboundAction,
    RateLimit,
    TicketEvent,
    register,
    register_client,
)
from integrations.outbound import (
    ActionRefused,
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
    http_url,
    iso_time,
    joined,
    json_object,
    received_at,
    required_id,
    text,
    unique_texts,
)
from integrations.signing import SharedSecretWebhook
from integrations.text import html_to_text

_EVENTS: dict[str, EventType] = {
    "ticket-created": "ticket.created",
    "ticket-message-created": "message.created",
    "ticket-updated": "ticket.updated",
}


class GorgiasAdapter(SharedSecretWebhook):
    """Inbound calls from a Gorgias HTTP integration."""

    kind: ClassVar[str] = "gorgias"
    vendor: ClassVar[str] = "Gorgias"

    def parse(self, request: InboundRequest) -> TicketEvent:
        """Read our form (``ticket_id`` …) or a Ticket object (``id``, ``messages`` …).

        :raise PayloadError: malformed JSON, or no ticket id ("ticket_id" or "ticket.id").
        """
        payload = json_object(request)
        if "ticket_id" in payload:
            ticket, field = _from_form(payload), "ticket_id"
        elif isinstance(payload.get("ticket"), Mapping):
            ticket, field = dict(payload["ticket"]), "ticket.id"
        else:
            ticket, field = payload, "ticket.id"
        ticket_id = required_id(ticket.get("id"), field, "Gorgias ticket id", NUMERIC_ID)

        messages = _messages(ticket.get("messages"))
        event_type = _event_type(text(payload.get("event")), messages)
        role = _author(event_type, ticket, messages)
        if event_type == "message.created" and role == "agent":
            event_type = "ticket.updated"  # an agent's reply is not a customer message

        message = None
        if event_type in ("ticket.created", "message.created") and role != "agent":
            # The latest customer message: the last one not from an agent (messages are oldest
            # first); a form that leaves out message_from_agent still gets its message read.
            message = next((m for m in reversed(messages) if _flag(m.get("from_agent")) is not True), None)
        customer = as_object(ticket.get("customer"))
        return TicketEvent(
            provider="gorgias",
            ticket_id=ticket_id,
            event_type=event_type,
            ticket_url=http_url(ticket.get("url")),
            requester_email=text(customer.get("email")),
            requester_name=text(customer.get("name")) or joined(customer.get("firstname"), customer.get("lastname")),
            requester_id=text(customer.get("id")),
            subject=text(ticket.get("subject")),
            message=_message_text(message) if message else None,
            message_id=text(message.get("id")) if message else None,
            author_role=role,
            tags=_tags(ticket.get("tags")),
            language=text(ticket.get("language")),
            custom_fields={"channel": channel} if (channel := text(ticket.get("channel"))) else {},
            occurred_at=_occurred_at(event_type, ticket, message) or received_at(request),
        )

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
        "messages": [message] if text(form.get("message")) else [],
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
    if message and (moment := iso_time(message.get("created_datetime"))):
        return moment
    if event_type == "ticket.created" and (moment := iso_time(ticket.get("created_datetime"))):
        return moment
    return iso_time(ticket.get("updated_datetime"))


def _message_text(message: Mapping[str, Any]) -> str | None:
    plain = text(message.get("body_text"))
    return plain if plain is not None else html_to_text(text(message.get("body_html")))


def _flag(value: Any) -> bool | None:
    """A JSON boolean, or the "True"/"False" a Gorgias template renders (a Python repr)."""
    if isinstance(value, bool):
        return value
    word = (text(value) or "").lower()
    return True if word in ("true", "1", "yes") else False if word in ("false", "0", "no") else None


def _tags(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):  # a form value: comma-separated names
        items: list[Any] = value.split(",")
    else:
        items = value if isinstance(value, list) else []
    return unique_texts(item.get("name") if isinstance(item, Mapping) else item for item in items)


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


# --- write-back ---------------------------------------------------------------------------

_MAX_EXTERNAL_ID = 255


class GorgiasClient:
    """Internal notes, replies, status, tags and custom fields on Gorgias tickets."""

    kind: ClassVar[str] = "gorgias"
    rate_limit: ClassVar[RateLimit] = RateLimit(40, 20.0)  # API key: 40 per 20 s window

    def deliver(self, action: OutboundAction, connection: Connection, session: requests.Session) -> DeliveryResult:
        email = (connection.credentials.get("api_email") or "").strip()
        key = (connection.credentials.get("api_key") or "").strip()
        exchange = Exchange(action, connection, session, auth=(email, key),
                            headers={"Content-Type": "application/json"})
        return exchange.run(lambda: self._steps(action, connection, exchange))

    def _steps(self, action: OutboundAction, connection: Connection, exchange: Exchange) -> str | None:
        email = credential(connection, "api_email")
        credential(connection, "api_key")
        ticket = f"/api/tickets/{segment(action.ticket_id, 'Gorgias ticket id', NUMERIC_ID)}"
        if action.kind in ("note", "reply"):
            require_body(action)
            author = (action.author_id or "").strip()
            message: dict[str, Any] = {
                "from_agent": True,
                "via": "api",
                "sender": {"id": int(author)} if NUMERIC_ID.fullmatch(author) else {"email": email},
                "body_text": plain_body(action),
                "body_html": html_body(action),
                "external_id": _external_id(action.idempotency_key),
            }
            if action.kind == "note":
                message.update(channel="internal-note", source={"type": "internal-note"})
            else:
                to = (action.recipient_email or "").strip()
                if not to:
                    raise ActionRefused("A Gorgias reply needs recipient_email (the customer's address).")
                sender = (connection.credentials.get("from_address") or "").strip() or email
                message.update(channel="email", receiver={"email": to},
                               source={"type": "email", "from": {"address": sender}, "to": [{"address": to}]})
            response = exchange.call("POST", f"{ticket}/messages", json=message)
            return text_id(as_object(exchange.json(response)).get("id"))
        if action.kind == "status":
            exchange.call("PUT", ticket, json={"status": require_status(action)})
            return None
        if action.kind == "tags":
            add, remove = tag_changes(action)
            if add:
                exchange.call("POST", f"{ticket}/tags", json={"names": add})
            if remove:
                exchange.call("DELETE", f"{ticket}/tags", json={"names": remove})
            return None
        if action.kind == "fields":
            updates = {}
            for key, value in require_fields(action).items():
                if not NUMERIC_ID.fullmatch(key):
                    raise ActionRefused(f"Gorgias custom fields are set by numeric id, not {key[:40]!r}.")
                updates[int(key)] = value
            # PUT replaces every value: read the current ones and send them back with ours.
            current = _field_values(exchange.json(exchange.call("GET", f"{ticket}/custom-fields")))
            merged = {**current, **updates}
            if merged != current:
                exchange.call("PUT", f"{ticket}/custom-fields",
                              json=[{"id": field_id, "value": value} for field_id, value in merged.items()])
            return None
        raise ValueError(f"unknown action kind {action.kind!r}")


def _external_id(key: str) -> str:
    key = (key or "").strip()
    return key if len(key) <= _MAX_EXTERNAL_ID else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _field_values(data: Any) -> dict[int, Any]:
    """``{field id: value}`` from List ticket field values: a list (or ``{"data": list}``) of
    ``{"field": {"id"}, "value"}``; entries without a value are left out."""
    items = data.get("data") if isinstance(data, Mapping) else data
    values: dict[int, Any] = {}
    for item in items if isinstance(items, list) else []:
        item = as_object(item)
        field_id = as_object(item.get("field")).get("id", item.get("field_id"))
        if isinstance(field_id, int) and not isinstance(field_id, bool) and item.get("value") is not None:
            values[field_id] = item["value"]
    return values


register_client(GorgiasClient())
