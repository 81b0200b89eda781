"""OutboxMessage (one change to push to a helpdesk ticket) and DeliveryAttempt (each try)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db, utcnow

STATUSES = ("pending", "sending", "delivered", "dead", "discarded")


class OutboxMessage(db.Model):
    """An ``OutboundAction`` waiting to be delivered, added in the transaction that caused it.

    Status: pending → sending (claimed, with a lease) → delivered | pending (retry) | dead;
    dead → pending (replay) | discarded. Delivery is in order per ``ordering_key`` (one ticket).
    """

    __tablename__ = "outbox_messages"
    __table_args__ = (
        sa.Index("ix_outbox_messages_due", "status", "next_attempt_at"),
        sa.Index("ix_outbox_messages_ordering_key_id", "ordering_key", "id"),
        sa.Index("ix_outbox_messages_tenant_id_id", "tenant_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"))
    integration_id: Mapped[int] = mapped_column(sa.ForeignKey("integrations.id", ondelete="CASCADE"))
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
