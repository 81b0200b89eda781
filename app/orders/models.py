"""Customer, Order and OrderLine: what was bought, at what price actually paid."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db, utcnow


class Customer(db.Model):
    """A customer of a tenant, identified by a normalised (lower-case, trimmed) email address."""

    __tablename__ = "customers"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(sa.String(320))
    name: Mapped[str | None] = mapped_column(sa.String(200))
    # Set when mail to this address bounced: automatic mail to it pauses until an agent clears it.
    mail_bouncing_since: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Order(db.Model):
    """An order, upserted by its number; ``total`` is the sum of its lines at the price paid."""

    __tablename__ = "orders"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"))
    number: Mapped[str] = mapped_column(sa.String(64))
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    currency: Mapped[str] = mapped_column(sa.String(3))
    ordered_on: Mapped[date]
    delivered_on: Mapped[date | None]
    total: Mapped[Decimal] = mapped_column(default=Decimal("0"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    customer: Mapped[Customer] = relationship()
    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderLine.id"
    )


class OrderLine(db.Model):
    """One SKU of an order; ``unit_price`` is what the customer actually paid per unit."""

    __tablename__ = "order_lines"
    __table_args__ = (sa.UniqueConstraint("order_id", "sku"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"))
    sku: Mapped[str] = mapped_column(sa.String(100))
    title: Mapped[str] = mapped_column(sa.String(300))
    quantity: Mapped[int]
    unit_price: Mapped[Decimal]
    category: Mapped[str | None] = mapped_column(sa.String(100))
    tags: Mapped[list[Any]] = mapped_column(default=list)
    final_sale: Mapped[bool] = mapped_column(default=False)

    order: Mapped[Order] = relationship(back_populates="lines")
