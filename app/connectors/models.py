"""Integration: one connected helpdesk (or mailbox) of a tenant, and its count of refused calls."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, column_property, mapped_column

from app.extensions import db, utcnow


class Integration(db.Model):
    """A connected helpdesk. ``public_key`` is the unguessable part of its webhook URL.

    Secrets (signing secret, the previous one during a rotation, API credentials) are one
    Fernet-encrypted JSON document; see ``connectors.crypto``.
    """

    __tablename__ = "integrations"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    name: Mapped[str] = mapped_column(sa.String(200))
    public_key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    enabled: Mapped[bool] = mapped_column(default=True)
    secrets_encrypted: Mapped[str] = mapped_column(sa.Text)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    disabled_at: Mapped[datetime | None]


class RejectionCount(db.Model):
    """How many webhook calls an integration has refused, counted apart from the integration's row.

    The row's ``updated_at`` is the version every cached webhook receiver and every inbox INSERT
    checks, and any UPDATE of the row moves it. Refused calls (anyone can send them) must not
    look like a change of the integration, so their count lives here.
    """

    __tablename__ = "rejection_counts"

    integration_id: Mapped[int] = mapped_column(sa.ForeignKey("integrations.id", ondelete="CASCADE"),
                                                primary_key=True)
    count: Mapped[int] = mapped_column(default=0)


# Read with the integration, in the same SELECT: 0 until the first refused call.
Integration.rejected_count = column_property(
    sa.select(sa.func.coalesce(sa.func.max(RejectionCount.count), 0))
    .where(RejectionCount.integration_id == Integration.id)
    .correlate_except(RejectionCount)
    .scalar_subquery()
)
