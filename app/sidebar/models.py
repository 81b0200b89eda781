"""SeenNonce: one-time values of sidebar entry requests (a JWT's ``jti``, a link's nonce), kept
until they expire so that a captured request can't be replayed."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db, utcnow


class SeenNonce(db.Model):
    __tablename__ = "seen_nonces"
    __table_args__ = (sa.Index("ix_seen_nonces_expires_at", "expires_at"),)

    integration_id: Mapped[int] = mapped_column(sa.ForeignKey("integrations.id", ondelete="CASCADE"),
                                                primary_key=True)
    nonce: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
