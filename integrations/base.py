"""The interface every provider adapter implements, and the values that cross it.

An inbound webhook goes: ``verify`` (signature, timestamp) → ``handshake`` (providers that
validate an endpoint by challenge) → ``delivery_key`` (idempotency) → ``parse`` (into one
``TicketEvent``). Adapters raise ``SignatureError`` (→ 401) or ``PayloadError`` (→ 400) and
never a provider-specific exception.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal, Protocol

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
    headers: Mapping[str, str]  # keys lower-cased
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)
    received_at: datetime | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The body as JSON.

        :raise PayloadError: the body is empty or not JSON.
        """
        if not self.body.strip():
            raise PayloadError("The request body is empty.", "body")
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


def body_hash_key(request: InboundRequest) -> str:
    """Fallback delivery key for helpdesks that send no delivery id: the body's SHA-256."""
    return "sha256:" + hashlib.sha256(request.body).hexdigest()


MAX_DELIVERY_ID = 128


def key_from_id(value: str | None) -> str | None:
    """A helpdesk's delivery or event id fit to be a delivery key: trimmed, printable and at most
    ``MAX_DELIVERY_ID`` characters; None otherwise (the caller falls back to ``body_hash_key``)."""
    value = (value or "").strip()
    return value if value and len(value) <= MAX_DELIVERY_ID and value.isprintable() else None


_REGISTRY: dict[str, WebhookAdapter] = {}
_MODULES = ("zendesk", "gorgias", "freshdesk", "helpscout", "front", "intercom", "zammad", "chatwoot", "generic")


def register(adapter: WebhookAdapter) -> WebhookAdapter:
    """Add an adapter to the registry under its ``kind``; returns it (usable as a decorator)."""
    _REGISTRY[adapter.kind] = adapter
    return adapter


def _load_all() -> None:
    for name in _MODULES:
        try:
            importlib.import_module(f"integrations.{name}")
        except ModuleNotFoundError as exc:  # an adapter not written yet must not hide the others
            if exc.name != f"integrations.{name}":
                raise


def get_adapter(kind: str) -> WebhookAdapter:
    """The adapter registered for ``kind``.

    :raise KeyError: no adapter of that kind.
    """
    if kind not in _REGISTRY:
        _load_all()
    return _REGISTRY[kind]


def registered_kinds() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)
