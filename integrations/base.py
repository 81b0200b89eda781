"""The interface every provider adapter implements, and the values that cross it.

An inbound webhook goes: ``verify`` (signature, timestamp) → ``handshake`` (providers that
validate an endpoint by challenge) → ``delivery_key`` (idempotency) → ``parse`` (into one
``TicketEvent``). Adapters raise ``SignatureError`` (→ 401) or ``PayloadError`` (→ 400) and
never a provider-specific exception.

Write-back goes the other way: the app builds one ``OutboundAction`` (a note, a public reply, a
status, tags, custom fields) and hands it with the helpdesk's ``Connection`` to the
``HelpdeskClient`` of that kind (``get_client``). ``deliver`` never raises: it answers one
``DeliveryResult`` whose ``outcome`` says whether the action is done (``delivered``), worth
trying again later (``retry``, with ``retry_after`` when the helpdesk said how long) or will
never succeed as it is (``permanent``). ``classify`` is the one place that maps an HTTP answer
or a transport exception to an outcome.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar

import orjson
import requests

EventType = Literal["ticket.created", "ticket.updated", "message.created", "ping", "other"]
AuthorRole = Literal["customer", "agent", "system", "unknown"]


class IntegrationError(Exception):
    """Base of every error an adapter raises."""


class SignatureError(IntegrationError):
    """The request is not authentic: missing or wrong signature, or a stale timestamp."""


class PayloadError(IntegrationError):
    """The payload is malformed or lacks a required field; ``field`` names it."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class InboundRequest:
    """What an adapter sees of an HTTP request: the raw body bytes, never re-serialised JSON."""

    method: str
    path: str
    # Read through ``header``, which looks a name up in lower case: the webhook passes werkzeug's
    # request headers as they are (case-insensitive, nothing copied); tests pass dicts keyed in lower case.
    headers: Mapping[str, str]
    body: bytes
    received_at: datetime | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The body as JSON: read by orjson, about three times as fast as the standard library on a
        webhook's body; what orjson refuses is read again by the standard library, which accepts
        lone surrogate escapes (``clean`` replaces them later) and ``NaN``, and words the error.
        (orjson reads an integer beyond 64 bits as a float; no helpdesk sends one.)

        :raise PayloadError: the body is empty or not JSON.
        """
        if not self.body.strip():
            raise PayloadError("The request body is empty.", "body")
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            pass
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PayloadError(f"The body is not valid JSON: {exc}", "body") from None
        except RecursionError:  # thousands of nested brackets: refuse, don't crash
            raise PayloadError("The body nests too deeply to read.", "body") from None


@dataclass(frozen=True)
class Handshake:
    """A reply the provider expects instead of normal processing (e.g. Front's challenge)."""

    status: int
    body: str
    content_type: str = "text/plain"


@dataclass(frozen=True)
class TicketEvent:
    """One helpdesk event, normalised: what intake needs, whichever helpdesk sent it."""

    provider: str
    ticket_id: str
    event_type: EventType
    ticket_url: str | None = None
    requester_email: str | None = None
    requester_name: str | None = None
    requester_id: str | None = None  # for adapters that must fetch the requester (Zendesk)
    subject: str | None = None
    message: str | None = None  # the newest customer message, as plain text
    message_id: str | None = None
    author_role: AuthorRole = "unknown"
    tags: tuple[str, ...] = ()
    custom_fields: Mapping[str, str] = field(default_factory=dict)
    language: str | None = None
    occurred_at: datetime | None = None
    external_event_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider, "ticket_id": self.ticket_id, "event_type": self.event_type,
            "ticket_url": self.ticket_url, "requester_email": self.requester_email,
            "requester_name": self.requester_name, "requester_id": self.requester_id, "subject": self.subject,
            "message": self.message, "message_id": self.message_id, "author_role": self.author_role,
            "tags": list(self.tags), "custom_fields": dict(self.custom_fields), "language": self.language,
            "occurred_at": self.occurred_at.isoformat() if self.occurred_at else None,
            "external_event_id": self.external_event_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TicketEvent:
        values = dict(data)
        values["tags"] = tuple(values.get("tags") or ())
        values["custom_fields"] = dict(values.get("custom_fields") or {})
        if values.get("occurred_at"):
            values["occurred_at"] = datetime.fromisoformat(values["occurred_at"])
        return cls(**values)


@dataclass(frozen=True)
class RequesterLookup:
    """Credentials to read a ticket's requester through the helpdesk's API."""

    base_url: str
    credentials: Mapping[str, str]
    timeout: float = 5.0


class WebhookAdapter(Protocol):
    """What every helpdesk adapter provides for inbound webhooks."""

    kind: ClassVar[str]
    #: Secret names this adapter uses (shown to admins, stored encrypted).
    secret_names: ClassVar[Sequence[str]]

    def verify(self, request: InboundRequest, secrets: Sequence[str], now: datetime) -> None:
        """Check the request is authentic with any one of ``secrets`` (current, then previous).

        :raise SignatureError: missing or wrong signature, or timestamp outside the window.
        """

    def handshake(self, request: InboundRequest, secrets: Sequence[str]) -> Handshake | None:
        """A reply for a validation request, or None for a normal event."""

    def delivery_key(self, request: InboundRequest) -> str:
        """A key that is the same for every retry of one delivery (idempotency)."""

    def parse(self, request: InboundRequest) -> TicketEvent:
        """The request as one normalised event.

        :raise PayloadError: malformed JSON or a missing required field (named).
        """

    def sign(self, body: bytes, secret: str, now: datetime, delivery_id: str) -> dict[str, str]:
        """The headers this helpdesk would send with ``body`` (tests, benchmarks, the README's curl)."""

    def sample(self) -> bytes:
        """A realistic payload for a new ticket in which a customer asks to return an item."""

    # Optional: ``complete(event, base_url, credentials) -> TicketEvent`` reads what the payload
    # lacks (e.g. Zendesk's requester address) through the helpdesk's API; see ``complete_event``.


def complete_event(adapter: WebhookAdapter, event: TicketEvent, base_url: str | None,
                   credentials: Mapping[str, str]) -> TicketEvent:
    """The event with what the adapter can add through the helpdesk's API (unchanged if nothing)."""
    complete = getattr(adapter, "complete", None)
    return complete(event, base_url, credentials) if complete is not None else event


def body_hash_key(request: InboundRequest) -> str:
    """Fallback delivery key for helpdesks that send no delivery id: the body's SHA-256."""
    return "sha256:" + hashlib.sha256(request.body).hexdigest()


MAX_DELIVERY_ID = 128


def key_from_id(value: str | None) -> str | None:
    """A helpdesk's delivery or event id fit to be a delivery key: trimmed, printable and at most
    ``MAX_DELIVERY_ID`` characters; None otherwise (the caller falls back to ``body_hash_key``)."""
    value = (value or "").strip()
    return value if value and len(value) <= MAX_DELIVERY_ID and value.isprintable() else None


class Kinded(Protocol):
    kind: ClassVar[str]


T = TypeVar("T", bound=Kinded)


class Registry(Generic[T]):
    """Providers of one interface, by ``kind``. A provider registers itself when its module is
    imported; the modules are imported on the first lookup that misses."""

    def __init__(self, package: str, modules: Sequence[str]):
        self.package, self.modules = package, tuple(modules)
        self._items: dict[str, T] = {}

    def register(self, item: T) -> T:
        self._items[item.kind] = item
        return item

    def _load_all(self) -> None:
        for name in self.modules:
            module = f"{self.package}.{name}"
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:  # a provider not written yet must not hide the others
                if exc.name != module:
                    raise

    def get(self, kind: str) -> T:
        """:raise KeyError: nothing of that kind."""
        if kind not in self._items:
            self._load_all()
        return self._items[kind]

    def kinds(self) -> list[str]:
        self._load_all()
        return sorted(self._items)


_MODULES = ("zendesk", "gorgias", "freshdesk", "helpscout", "front", "intercom", "zammad", "chatwoot", "generic")
_ADAPTERS: Registry[WebhookAdapter] = Registry("integrations", _MODULES)
_CLIENTS: Registry[HelpdeskClient] = Registry("integrations", _MODULES)  # the same modules hold both


def register(adapter: WebhookAdapter) -> WebhookAdapter:
    """Add an adapter to the registry under its ``kind``; returns it (usable as a decorator)."""
    return _ADAPTERS.register(adapter)


def get_adapter(kind: str) -> WebhookAdapter:
    """The adapter registered for ``kind``.

    :raise KeyError: no adapter of that kind.
    """
    return _ADAPTERS.get(kind)


def registered_kinds() -> list[str]:
    return _ADAPTERS.kinds()


# --- write-back: actions sent to a helpdesk ----------------------------------------------------

OutboundKind = Literal["note", "reply", "status", "tags", "fields"]
Outcome = Literal["delivered", "retry", "permanent"]

#: Header that carries ``OutboundAction.idempotency_key`` to helpdesks that document no
#: idempotency header for the endpoints we call (all eight, see each client's docstring): it is
#: ignored by them and lets their support staff and our logs match a request to its action.
#: ``Idempotency-Key`` itself is sent only where a helpdesk documents it for the endpoint used.
IDEMPOTENCY_HEADER = "Idempotency-Key"
TRACE_IDEMPOTENCY_HEADER = "X-Rebound-Idempotency-Key"
MAX_ERROR = 500  # characters of an error body or exception kept in DeliveryResult.error
MAX_RETRY_AFTER = 86_400.0  # a Retry-After beyond a day is capped: the queue decides what to do


@dataclass(frozen=True)
class OutboundAction:
    """One change to write to a helpdesk ticket; ``kind`` says which fields matter.

    - ``note``: ``body_text`` and/or ``body_html``, visible to agents only.
    - ``reply``: the same, sent to the customer (``recipient_email`` where the API needs it).
    - ``status``: ``status``, in the helpdesk's own vocabulary (the app maps a case to it).
    - ``tags``: ``add_tags`` and ``remove_tags`` (a tag in both ends up removed).
    - ``fields``: ``fields``, custom field id (or name, where the helpdesk keys them by name) → value.
    """

    kind: OutboundKind
    ticket_id: str
    idempotency_key: str  # stable across retries of the same message
    body_text: str | None = None  # note/reply text (plain)
    body_html: str | None = None  # optional HTML version
    status: str | None = None  # the helpdesk's own status value (the app maps case → ticket statuses)
    add_tags: tuple[str, ...] = ()
    remove_tags: tuple[str, ...] = ()
    fields: Mapping[str, str] = field(default_factory=dict)  # helpdesk custom field id/name → value
    recipient_email: str | None = None  # for public replies where the API needs the customer
    author_id: str | None = None  # agent/admin id where the API needs one (Intercom admin_id, Front author_id, Gorgias sender)


@dataclass(frozen=True)
class Connection:
    """Where a helpdesk's API is and how to authenticate to it.

    ``base_url`` is the API origin, with no trailing path for hosted helpdesks
    (``https://acme.zendesk.com``, ``https://api.intercom.io``, ``https://acme.gorgias.com``) and
    the install's root for self-hosted ones (``https://chat.example.com`` for Chatwoot).
    ``credentials`` per helpdesk: zendesk ``api_email`` + ``api_token``; gorgias ``api_email`` +
    ``api_key``; freshdesk ``api_key``; helpscout ``access_token``; front ``api_token``; intercom
    ``access_token`` (+ ``admin_id``); zammad ``api_token``; chatwoot ``api_access_token`` +
    ``account_id``.
    """

    base_url: str
    credentials: Mapping[str, str]
    timeout: float = 10.0


@dataclass(frozen=True)
class DeliveryResult:
    """What became of one ``OutboundAction``.

    ``status_code`` is that of the last HTTP answer (None when the last call got no answer, or
    none was made); ``requests_made`` counts every HTTP call the action needed (reads for
    read-modify-write and tag lookups included) and may be 0 when the action was refused before
    any call.
    """

    outcome: Outcome
    status_code: int | None
    latency_ms: float
    retry_after: float | None = None  # seconds, from Retry-After / X-RateLimit-Retry-After (HTTP-date or seconds)
    external_id: str | None = None  # created note/message id where the API returns one
    error: str | None = None  # short excerpt (≤ 500 chars) of the error body or exception
    requests_made: int = 1


@dataclass(frozen=True)
class RateLimit:
    """A helpdesk's documented request budget, for the app's sender to pace itself by."""

    requests: int
    per_seconds: float  # the documented limit, e.g. Gorgias API key: 40 per 20 s


class HelpdeskClient(Protocol):
    """What every helpdesk's write-back client provides."""

    kind: ClassVar[str]
    rate_limit: ClassVar[RateLimit]

    def deliver(self, action: OutboundAction, connection: Connection, session: requests.Session) -> DeliveryResult:
        """Carry out ``action`` on the helpdesk with ``session``; never raises.

        Every call uses ``timeout=connection.timeout`` and follows no redirect to another
        origin. An action that needs several calls is safe to repeat after a failure part-way:
        read-modify-write steps recompute from the helpdesk's current state.
        """


_DELTA_SECONDS = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,6})?")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After``-style header: delta-seconds (ASCII digits, a decimal
    part tolerated) or an HTTP-date; None when missing or unreadable. Dates in the past give 0;
    values are capped at a day.
    """
    value = (value or "").strip()
    if not value:
        return None
    if _DELTA_SECONDS.fullmatch(value):
        seconds = float(value)
    else:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if moment is None:
            return None
        if moment.tzinfo is None:  # "-0000" or an obsolete zone: RFC 9110 dates are GMT
            moment = moment.replace(tzinfo=timezone.utc)
        seconds = (moment - (now or datetime.now(timezone.utc))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def response_retry_after(response: requests.Response, now: datetime | None = None) -> float | None:
    """``Retry-After``, else Help Scout's ``X-RateLimit-Retry-After``, in seconds."""
    for name in ("Retry-After", "X-RateLimit-Retry-After"):
        seconds = parse_retry_after(response.headers.get(name), now)
        if seconds is not None:
            return seconds
    return None


def error_excerpt(text: str | None) -> str | None:
    """At most ``MAX_ERROR`` characters of an error body or message, without NULs; None if blank."""
    text = (text or "").replace("\x00", "").strip()
    return text[:MAX_ERROR] or None


#: Transport failures that say nothing about the request itself: trying again may succeed.
_TRANSIENT_ERRORS = (
    requests.Timeout,
    requests.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


def classify(
    outcome: requests.Response | BaseException,
    *,
    latency_ms: float = 0.0,
    requests_made: int = 1,
    external_id: str | None = None,
    now: datetime | None = None,
) -> DeliveryResult:
    """The ``DeliveryResult`` for an HTTP answer or a transport exception.

    2xx → delivered; 429, 5xx, timeouts and connection errors → retry (``retry_after`` from
    ``Retry-After`` or ``X-RateLimit-Retry-After``, seconds or HTTP-date); any other answer
    (4xx, an unfollowed 3xx) or exception (a malformed URL …) → permanent. ``error`` holds up to
    500 characters of the body or exception.
    """
    if isinstance(outcome, BaseException):
        retry = isinstance(outcome, _TRANSIENT_ERRORS)
        return DeliveryResult(
            outcome="retry" if retry else "permanent",
            status_code=None,
            latency_ms=latency_ms,
            error=error_excerpt(f"{type(outcome).__name__}: {outcome}"),
            requests_made=requests_made,
        )
    status = outcome.status_code
    if 200 <= status < 300:
        return DeliveryResult("delivered", status, latency_ms, external_id=external_id, requests_made=requests_made)
    retry = status == 429 or status >= 500
    error = _response_error(outcome)
    return DeliveryResult(
        outcome="retry" if retry else "permanent",
        status_code=status,
        latency_ms=latency_ms,
        retry_after=response_retry_after(outcome, now) if retry else None,
        error=error,
        requests_made=requests_made,
    )


def _response_error(response: requests.Response) -> str:
    status = response.status_code
    if 300 <= status < 400:
        location = response.headers.get("Location") or "no Location"
        return error_excerpt(f"HTTP {status}: redirect to {location} not followed") or ""
    try:
        body = response.text
    except (RuntimeError, ValueError):  # a body already consumed or undecodable
        body = ""
    return error_excerpt(f"HTTP {status}: {body}") or f"HTTP {status}"


def register_client(client: HelpdeskClient) -> HelpdeskClient:
    """Add a write-back client to the registry under its ``kind``; returns it."""
    return _CLIENTS.register(client)


def get_client(kind: str) -> HelpdeskClient:
    """The write-back client registered for ``kind``.

    :raise KeyError: no client of that kind (``generic`` has none: it is inbound only).
    """
    return _CLIENTS.get(kind)


def registered_client_kinds() -> list[str]:
    return _CLIENTS.kinds()
