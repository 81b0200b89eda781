"""Request and response schemas of the webhook subscription API (``/api/v1/webhook-subscriptions``).

The event catalogue and the matching rules live in ``app/outbound/events.py``; the literals here
are what a request may name, so a typo is a 422 before anything is stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator

from app.cases.schemas import CaseType, Channel
from app.validation import Schema

EventType = Literal[
    "case.created", "case.status_changed", "case.approved", "case.flagged", "case.rejected", "case.info_requested",
    "case.message_received", "case.label_issued", "case.shipped", "case.received", "case.inspected",
    "case.resolution_started", "case.resolved", "case.closed", "case.reopened", "case.cancelled", "case.expired",
    "case.held", "case.released", "case.lost",
]
StatusName = Literal[
    "requested", "pending_review", "awaiting_customer", "authorized", "awaiting_shipment", "in_transit", "received",
    "inspected", "resolving", "resolved", "closed", "rejected", "cancelled", "expired", "on_hold", "exception",
]
DeliveryStatus = Literal["pending", "sending", "delivered", "dead", "discarded"]


def _checked_url(value: str) -> str:
    """Syntax only (http(s), a host, a port that parses, no blanks); addresses are checked by the service."""
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise ValueError("must not contain spaces or control characters")
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises on "host:99999" or "host:-1"
    except ValueError as exc:
        raise ValueError(f"is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL with a host name")
    return value


class SubscriptionFilters(Schema):
    """Narrow a subscription further; every filter given must match (an absent one matches all)."""

    statuses: list[StatusName] | None = Field(
        default=None, min_length=1, max_length=16, description="The case's status right after the event.")
    channels: list[Channel] | None = Field(default=None, min_length=1, max_length=8,
                                           description="Where the case was opened.")
    types: list[CaseType] | None = Field(default=None, min_length=1, max_length=8, description="The case type.")


class SubscriptionCreate(Schema):
    url: str = Field(min_length=1, max_length=500, description="https URL that receives the POSTs.")
    description: str | None = Field(default=None, max_length=200)
    event_types: list[EventType] = Field(default_factory=list, max_length=32,
                                         description="Events to receive; empty means every event.")
    filters: SubscriptionFilters = Field(default_factory=SubscriptionFilters)
    enabled: bool = True

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _checked_url(value)


class SubscriptionUpdate(Schema):
    """PATCH: only the fields sent change (``description: null`` clears it)."""

    url: str | None = Field(default=None, min_length=1, max_length=500)
    description: str | None = Field(default=None, max_length=200)
    event_types: list[EventType] | None = Field(default=None, max_length=32)
    filters: SubscriptionFilters | None = None
    enabled: bool | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _checked_url(value)


class RotateQuery(Schema):
    grace_seconds: int = Field(default=86_400, ge=0, le=7 * 86_400,
                               description="How long deliveries stay signed with the old secret too.")


class DeliveryQuery(Schema):
    status: DeliveryStatus | None = None
    limit: int = Field(default=50, ge=1, le=200)


class SubscriptionOut(BaseModel):
    id: int
    url: str
    description: str | None
    event_types: list[str]
    filters: dict[str, Any]
    enabled: bool
    created_at: datetime
    updated_at: datetime
    disabled_at: datetime | None

    @classmethod
    def from_model(cls, s: Any) -> SubscriptionOut:
        return cls(id=s.id, url=s.url, description=s.description, event_types=list(s.event_types or []),
                   filters=dict(s.filters or {}), enabled=s.enabled, created_at=s.created_at,
                   updated_at=s.updated_at, disabled_at=s.disabled_at)


class SubscriptionWithSecret(SubscriptionOut):
    secret: str = Field(description="The whsec_ signing secret; shown only now. Verify with any Standard Webhooks "
                                    "library.")


class SubscriptionList(BaseModel):
    items: list[SubscriptionOut]


class DeliveryOut(BaseModel):
    id: int
    webhook_id: str = Field(description="The webhook-id header: the same on every retry of this event.")
    event_type: str
    case_id: int | None
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def from_model(cls, m: Any) -> DeliveryOut:
        return cls(id=m.id, webhook_id=m.idempotency_key, event_type=str(m.action.get("event_type", "")),
                   case_id=m.case_id, status=m.status, attempts=m.attempts, next_attempt_at=m.next_attempt_at,
                   last_status_code=m.last_status_code, last_error=m.last_error, created_at=m.created_at,
                   delivered_at=m.delivered_at)


class DeliveryList(BaseModel):
    items: list[DeliveryOut]


class EventTypeOut(BaseModel):
    type: str
    description: str


class EventTypeList(BaseModel):
    items: list[EventTypeOut]
