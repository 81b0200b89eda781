"""The return case and everything that hangs off it: lines, evidence, settlements, events.

Also the tenant's reason codes and versioned policy documents. Models hold columns,
relationships and small invariants; the workflows live in ``services.py``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db, utcnow
from app.orders.models import Customer, Order, OrderLine


class ReasonCode(db.Model):
    """A return reason, two levels deep (``parent_id``), with what it requires and who is at fault."""

    __tablename__ = "reason_codes"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(sa.String(64))
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("reason_codes.id"))
    label: Mapped[str] = mapped_column(sa.String(200))
    requires_photo: Mapped[bool] = mapped_column(default=False)
    requires_note: Mapped[bool] = mapped_column(default=False)
    # customer, merchant, carrier or vendor: feeds fault attribution and fees.
    fault_party: Mapped[str] = mapped_column(sa.String(16), default="customer")
    active: Mapped[bool] = mapped_column(default=True)

    parent: Mapped[ReasonCode | None] = relationship(remote_side=[id])


class PolicyVersion(db.Model):
    """One version of a tenant's policy document; the highest version is in force."""

    __tablename__ = "policy_versions"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"))
    version: Mapped[int]
    document: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(sa.String(100))


class ReturnCase(db.Model):
    """A customer's return problem (an RMA). ``version`` guards against lost updates."""

    __tablename__ = "cases"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "number"),
        # List pages: newest first, optionally by status (keyset on id).
        sa.Index("ix_cases_tenant_id_id", "tenant_id", "id"),
        sa.Index("ix_cases_tenant_status_id", "tenant_id", "status", "id"),
        sa.Index("ix_cases_tenant_updated_at", "tenant_id", "updated_at"),
        sa.Index("ix_cases_tenant_ticket", "tenant_id", "ticket_id"),
        sa.Index("ix_cases_tenant_customer_id", "tenant_id", "customer_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"))
    number: Mapped[str] = mapped_column(sa.String(32))
    status: Mapped[str] = mapped_column(sa.String(32))
    # The status a held case returns to when released.
    held_from: Mapped[str | None] = mapped_column(sa.String(32))
    type: Mapped[str] = mapped_column(sa.String(16), default="return")
    channel: Mapped[str] = mapped_column(sa.String(16), default="api")
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"))
    locale: Mapped[str] = mapped_column(sa.String(16), default="en")
    currency: Mapped[str] = mapped_column(sa.String(3))
    preferred_resolution: Mapped[str | None] = mapped_column(sa.String(16))
    # The helpdesk integration the linked ticket lives in (ticket ids are unique only within one).
    integration_id: Mapped[int | None] = mapped_column(sa.ForeignKey("integrations.id", ondelete="SET NULL"))
    ticket_provider: Mapped[str | None] = mapped_column(sa.String(32))
    ticket_id: Mapped[str | None] = mapped_column(sa.String(100))
    ticket_url: Mapped[str | None] = mapped_column(sa.String(500))
    return_carrier: Mapped[str | None] = mapped_column(sa.String(64))
    return_tracking: Mapped[str | None] = mapped_column(sa.String(100))
    return_label_url: Mapped[str | None] = mapped_column(sa.String(1000))
    label_issued_at: Mapped[datetime | None]
    policy_version: Mapped[int | None]
    policy_decision: Mapped[dict[str, Any] | None]
    note: Mapped[str | None] = mapped_column(sa.Text)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    status_changed_at: Mapped[datetime] = mapped_column(default=utcnow)

    customer: Mapped[Customer] = relationship()
    lines: Mapped[list[CaseLine]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="CaseLine.position"
    )
    settlements: Mapped[list[Settlement]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="Settlement.id"
    )
    evidence: Mapped[list[Evidence]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="Evidence.id"
    )

    # The ORM adds "AND version = :old" to every UPDATE; a concurrent writer makes it fail
    # with StaleDataError instead of silently overwriting.
    __mapper_args__ = {"version_id_col": version}


class CaseLine(db.Model):
    """One returned item: quantities at each step, reception and decision status, grading."""

    __tablename__ = "case_lines"
    __table_args__ = (
        sa.CheckConstraint("qty_requested > 0", name="qty_requested_positive"),
        sa.CheckConstraint(
            "qty_authorized >= 0 AND qty_received >= 0 AND qty_accepted >= 0", name="qty_non_negative"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    order_id: Mapped[int | None] = mapped_column(sa.ForeignKey("orders.id"), index=True)
    order_line_id: Mapped[int | None] = mapped_column(sa.ForeignKey("order_lines.id"), index=True)
    sku: Mapped[str] = mapped_column(sa.String(100))
    title: Mapped[str] = mapped_column(sa.String(300))
    unit_price: Mapped[Decimal]
    qty_requested: Mapped[int]
    qty_authorized: Mapped[int] = mapped_column(default=0)
    qty_received: Mapped[int] = mapped_column(default=0)
    qty_accepted: Mapped[int] = mapped_column(default=0)
    reason_code: Mapped[str | None] = mapped_column(sa.String(64))
    customer_comment: Mapped[str | None] = mapped_column(sa.Text)
    reception_status: Mapped[str] = mapped_column(sa.String(24), default="awaiting")
    decision_status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    # The policy's rule results for this line, as readable sentences.
    decision_results: Mapped[list[Any]] = mapped_column(default=list)
    fee_percent: Mapped[Decimal] = mapped_column(sa.Numeric(5, 2), default=Decimal("0"))
    condition_grade: Mapped[str | None] = mapped_column(sa.String(16))
    disposition: Mapped[str | None] = mapped_column(sa.String(24))
    resolution_preference: Mapped[str | None] = mapped_column(sa.String(16))
    fault_party: Mapped[str | None] = mapped_column(sa.String(16))
    inspection_note: Mapped[str | None] = mapped_column(sa.Text)

    case: Mapped[ReturnCase] = relationship(back_populates="lines")
    order: Mapped[Order | None] = relationship()
    order_line: Mapped[OrderLine | None] = relationship()


class Evidence(db.Model):
    """A photo, video or document supporting a case (metadata; the bytes live in a blob store)."""

    __tablename__ = "evidence"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    line_id: Mapped[int | None] = mapped_column(sa.ForeignKey("case_lines.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(sa.String(16))
    filename: Mapped[str | None] = mapped_column(sa.String(255))
    content_type: Mapped[str | None] = mapped_column(sa.String(100))
    size_bytes: Mapped[int | None]
    sha256: Mapped[str | None] = mapped_column(sa.String(64))
    url: Mapped[str | None] = mapped_column(sa.String(1000))
    source: Mapped[str] = mapped_column(sa.String(32), default="api")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    case: Mapped[ReturnCase] = relationship(back_populates="evidence")


class Settlement(db.Model):
    """Money (or goods) owed to the customer for a case, with its own status."""

    __tablename__ = "settlements"
    __table_args__ = (
        sa.CheckConstraint(
            "gross >= 0 AND fees >= 0 AND bonus >= 0 AND amount >= 0 AND price_difference >= 0"
            " AND customer_owes >= 0",
            name="amounts_non_negative",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    currency: Mapped[str] = mapped_column(sa.String(3))
    gross: Mapped[Decimal]
    fees: Mapped[Decimal]
    bonus: Mapped[Decimal]
    amount: Mapped[Decimal]
    price_difference: Mapped[Decimal] = mapped_column(default=Decimal("0"))
    customer_owes: Mapped[Decimal] = mapped_column(default=Decimal("0"))
    external_ref: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    case: Mapped[ReturnCase] = relationship(back_populates="settlements")


class CaseEvent(db.Model):
    """One entry of a case's append-only timeline: who did what, through which channel, why."""

    __tablename__ = "case_events"
    __table_args__ = (sa.Index("ix_case_events_case_id_id", "case_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(sa.String(32))
    from_status: Mapped[str | None] = mapped_column(sa.String(32))
    to_status: Mapped[str | None] = mapped_column(sa.String(32))
    actor_type: Mapped[str] = mapped_column(sa.String(16))
    actor_id: Mapped[str | None] = mapped_column(sa.String(100))
    channel: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


@event.listens_for(CaseEvent, "before_update")
@event.listens_for(CaseEvent, "before_delete")
def _timeline_is_append_only(mapper: Any, connection: Any, target: CaseEvent) -> None:
    raise RuntimeError("case_events is append-only: an event cannot be changed or deleted")
