"""What goes out, and how it is paced.

OutboxMessage (one change for a helpdesk ticket, or one event for a merchant's webhook
subscription), DeliveryAttempt (each try), DeliveryThrottle (one shared rate window per
destination, so that every worker process together keeps within a helpdesk's limits),
CannedTemplate (a tenant's edit of a shipped canned response) and WebhookSubscription.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db, utcnow

STATUSES = ("pending", "sending", "delivered", "dead", "discarded")


class OutboxMessage(db.Model):
    """An ``OutboundAction`` for a ticket (``integration_id``) or a case event for a merchant's
    endpoint (``subscription_id``), added in the transaction that caused it; exactly one is set.

    Status: pending → sending (claimed, with a lease) → delivered | pending (retry) | dead;
    dead → pending (replay) | discarded. Delivery is in order per ``ordering_key`` (one ticket).
    """

    __tablename__ = "outbox_messages"
    __table_args__ = (
        sa.Index("ix_outbox_messages_due", "status", "next_attempt_at"),
        sa.Index("ix_outbox_messages_ordering_key_id", "ordering_key", "id"),
        sa.Index("ix_outbox_messages_tenant_id_id", "tenant_id", "id"),
        sa.CheckConstraint("(integration_id IS NULL) <> (subscription_id IS NULL)", name="one_destination"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"))
    integration_id: Mapped[int | None] = mapped_column(sa.ForeignKey("integrations.id", ondelete="CASCADE"))
    subscription_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"))
    case_id: Mapped[int | None] = mapped_column(sa.ForeignKey("cases.id", ondelete="SET NULL"))
    ordering_key: Mapped[str] = mapped_column(sa.String(200))
    action: Mapped[dict[str, Any]]
    idempotency_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]


class DeliveryAttempt(db.Model):
    """One try at delivering an outbox message: what the helpdesk answered, and how fast."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (sa.Index("ix_delivery_attempts_message_id_id", "message_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(sa.ForeignKey("outbox_messages.id", ondelete="CASCADE"))
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None]
    latency_ms: Mapped[float] = mapped_column(sa.Float)
    outcome: Mapped[str] = mapped_column(sa.String(16))
    error: Mapped[str | None] = mapped_column(sa.String(500))


class DeliveryThrottle(db.Model):
    """One destination's shared rate window (``destination`` is e.g. ``integration:12``).

    Claims lock this row, count what they take against ``limit`` per window, and skip the
    destination while ``blocked_until`` (a 429's ``Retry-After``) lies ahead.
    """

    __tablename__ = "delivery_throttles"

    destination: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    window_started_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_in_window: Mapped[int] = mapped_column(default=0)
    blocked_until: Mapped[datetime | None]


class CannedTemplate(db.Model):
    """A tenant's own version of a canned response (the shipped default lives in ``templates/canned/``)."""

    __tablename__ = "canned_templates"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "key", "locale"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(sa.String(64))
    locale: Mapped[str] = mapped_column(sa.String(16))
    subject: Mapped[str | None] = mapped_column(sa.String(300))
    body: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookSubscription(db.Model):
    """A merchant's endpoint for case events, signed with the Standard Webhooks scheme.

    ``event_types`` lists what it wants (``case.created``, ``case.status_changed``, …; empty means
    all); ``filters`` narrows further (e.g. ``{"statuses": [...], "channels": [...]}``). The signing
    secret (``whsec_…``) is Fernet-encrypted like integration secrets.
    """

    __tablename__ = "webhook_subscriptions"
    __table_args__ = (sa.Index("ix_webhook_subscriptions_tenant_id_id", "tenant_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(sa.String(500))
    description: Mapped[str | None] = mapped_column(sa.String(200))
    event_types: Mapped[list[Any]] = mapped_column(default=list)
    filters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    secret_encrypted: Mapped[str] = mapped_column(sa.Text)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    disabled_at: Mapped[datetime | None]
