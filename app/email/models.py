"""MailMessage (every mail in or out, threaded to a case or not) and MailboxCursor (IMAP progress)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db, utcnow


class MailMessage(db.Model):
    """One mail, inbound or outbound, with the parts threading and the timeline need.

    The raw message is stored once: an inbound mail's in its inbox event (``inbound_event_id``),
    any other in the content-addressed store (``raw_sha256``, the sha256 of the raw bytes either
    way; ``services.raw_message`` reads it from where it is). This row keeps the
    headers used for threading, the reply split apart from signature and quoted history, the
    sanitized HTML for display, and what became of it (``status``, ``automation``).

    Inbound status: received → threaded | case_created | suggested | ignored | recorded (an
    automatic mail kept on the case without an answer) | rejected (with ``rejection_reason``).
    Outbound status: queued → sent | failed.
    """

    __tablename__ = "mail_messages"
    __table_args__ = (
        sa.Index("ix_mail_messages_tenant_message_id", "tenant_id", "message_id"),
        sa.Index("ix_mail_messages_case_id_id", "case_id", "id"),
        sa.Index("ix_mail_messages_tenant_id_id", "tenant_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"))
    integration_id: Mapped[int | None] = mapped_column(sa.ForeignKey("integrations.id", ondelete="SET NULL"))
    case_id: Mapped[int | None] = mapped_column(sa.ForeignKey("cases.id", ondelete="SET NULL"))
    inbound_event_id: Mapped[int | None] = mapped_column(sa.ForeignKey("inbound_events.id", ondelete="SET NULL"))
    direction: Mapped[str] = mapped_column(sa.String(8))  # in | out
    status: Mapped[str] = mapped_column(sa.String(16), default="received")
    automation: Mapped[str] = mapped_column(sa.String(16), default="none")
    matched_by: Mapped[str | None] = mapped_column(sa.String(16))  # token | references | subject | ticket
    message_id: Mapped[str | None] = mapped_column(sa.String(500))
    in_reply_to: Mapped[str | None] = mapped_column(sa.String(500))
    references: Mapped[list[Any]] = mapped_column(default=list)
    subject: Mapped[str | None] = mapped_column(sa.String(500))
    from_address: Mapped[str | None] = mapped_column(sa.String(320))
    from_name: Mapped[str | None] = mapped_column(sa.String(200))
    to_addresses: Mapped[list[Any]] = mapped_column(default=list)
    reply_text: Mapped[str | None] = mapped_column(sa.Text)
    signature_text: Mapped[str | None] = mapped_column(sa.Text)
    quoted_text: Mapped[str | None] = mapped_column(sa.Text)
    full_text: Mapped[str | None] = mapped_column(sa.Text)
    html_sanitized: Mapped[str | None] = mapped_column(sa.Text)
    raw_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    size_bytes: Mapped[int | None]
    defects: Mapped[list[Any]] = mapped_column(default=list)
    rejection_reason: Mapped[str | None] = mapped_column(sa.String(500))
    sent_at: Mapped[datetime | None]  # the Date header (inbound) or when it left (outbound)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MailboxCursor(db.Model):
    """How far an IMAP mailbox integration has been read (one row per integration)."""

    __tablename__ = "mailbox_cursors"

    integration_id: Mapped[int] = mapped_column(sa.ForeignKey("integrations.id", ondelete="CASCADE"),
                                                primary_key=True)
    uidvalidity: Mapped[int | None] = mapped_column(sa.BigInteger)
    last_uid: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    last_polled_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
