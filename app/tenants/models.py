"""Tenant and ApiToken: every other record belongs to a tenant."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db, utcnow


class Tenant(db.Model):
    """A merchant. ``case_counter`` hands out case numbers; see ``cases.services.next_case_number``."""

    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    slug: Mapped[str] = mapped_column(sa.String(100), unique=True)
    default_locale: Mapped[str] = mapped_column(sa.String(16), default="en")
    default_currency: Mapped[str] = mapped_column(sa.String(3), default="USD")
    case_counter: Mapped[int] = mapped_column(default=0)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="tenant", cascade="all, delete-orphan")


class ApiToken(db.Model):
    """An API token, stored as a SHA-256 hash; the plain token is shown once, at creation."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    # The first characters of the token, so a person can tell tokens apart in a list.
    prefix: Mapped[str] = mapped_column(sa.String(16))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    tenant: Mapped[Tenant] = relationship(back_populates="tokens")

    @property
    def active(self) -> bool:
        return self.revoked_at is None
