"""Integration: one connected helpdesk (or mailbox) of a tenant."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

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
    rejected_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    disabled_at: Mapped[datetime | None]
