"""InboundEvent (the inbox) and RejectedRequest (why a call was refused)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db, utcnow


class InboundEvent(db.Model):
    """A verified webhook delivery, stored before the 2xx; processed once, retried until then.

    Status: received → processed | ignored, or failed (retried with backoff) → dead.
    """

    __tablename__ = "inbound_events"
    __table_args__ = (
        sa.UniqueConstraint("integration_id", "delivery_key"),
        sa.Index("ix_inbound_events_due", "status", "next_attempt_at"),
        sa.Index("ix_inbound_events_tenant_id_id", "tenant_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"))
    integration_id: Mapped[int] = mapped_column(sa.ForeignKey("integrations.id", ondelete="CASCADE"))
    delivery_key: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(32))
    event_type: Mapped[str] = mapped_column(sa.String(32))
    ticket_id: Mapped[str | None] = mapped_column(sa.String(100))
    # The normalised TicketEvent, and the raw body so a fixed adapter could re-read it.
    event: Mapped[dict[str, Any]]
    body: Mapped[bytes] = mapped_column(sa.LargeBinary)
    status: Mapped[str] = mapped_column(sa.String(16), default="received")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    outcome: Mapped[dict[str, Any] | None]
    case_id: Mapped[int | None] = mapped_column(sa.ForeignKey("cases.id", ondelete="SET NULL"))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]


class RejectedRequest(db.Model):
    """A refused webhook call (bad signature, replay, bad payload, too large), per integration."""

    __tablename__ = "rejected_requests"
    __table_args__ = (sa.Index("ix_rejected_requests_integration_id_id", "integration_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"))
    integration_id: Mapped[int] = mapped_column(sa.ForeignKey("integrations.id", ondelete="CASCADE"))
    status_code: Mapped[int]
    code: Mapped[str] = mapped_column(sa.String(32))
    message: Mapped[str] = mapped_column(sa.String(500))
    remote_addr: Mapped[str | None] = mapped_column(sa.String(64))
    body_bytes: Mapped[int | None]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
