"""Suggestion: a probable return the intake was not sure enough to open, offered to the agent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db, utcnow


class Suggestion(db.Model):
    """What intake made of a ticket: a prefilled case the sidebar offers with one click."""

    __tablename__ = "suggestions"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "integration_id", "ticket_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"))
    integration_id: Mapped[int | None] = mapped_column(sa.ForeignKey("integrations.id", ondelete="CASCADE"))
    ticket_id: Mapped[str] = mapped_column(sa.String(100))
    status: Mapped[str] = mapped_column(sa.String(16), default="open")
    confidence: Mapped[float] = mapped_column(sa.Float)
    kind: Mapped[str | None] = mapped_column(sa.String(32))
    reason_code: Mapped[str | None] = mapped_column(sa.String(64))
    language: Mapped[str | None] = mapped_column(sa.String(8))
    customer_email: Mapped[str | None] = mapped_column(sa.String(320))
    order_numbers: Mapped[list[Any]] = mapped_column(default=list)
    # A CaseCreate-shaped draft the agent can confirm or edit.
    proposal: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Why intake suggested instead of opening: the matched phrases and what was missing.
    why: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
