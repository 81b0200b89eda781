"""Order use cases: upsert an order, with its customer and lines, by order number."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from app.cases.models import CaseLine, ReturnCase
from app.errors import Conflict
from app.extensions import db
from app.orders.models import Customer, Order, OrderLine
from app.orders.schemas import OrderUpsert
from app.tenants.models import Tenant


def _customer(tenant: Tenant, email: str, name: str | None) -> Customer:
    customer = db.session.scalar(sa.select(Customer).where(Customer.tenant_id == tenant.id, Customer.email == email))
    if customer is None:
        customer = Customer(tenant_id=tenant.id, email=email, name=name)
        db.session.add(customer)
    elif name:
        customer.name = name
    return customer


def upsert_order(tenant: Tenant, data: OrderUpsert) -> tuple[Order, bool]:
    """Create or replace the order with ``data.number``; returns (order, created).

    Lines are matched by SKU: existing ones are updated, new ones added, and ones no longer
    listed removed, unless a case already returns them.

    :raise Conflict: (409) a line to remove is part of a case, or a concurrent upsert won.
    """
    order = db.session.scalar(
        sa.select(Order)
        .where(Order.tenant_id == tenant.id, Order.number == data.number)
        .options(selectinload(Order.lines))
    )
    customer = _customer(tenant, data.customer.email, data.customer.name)
    created = order is None
    if order is None:
        order = Order(tenant_id=tenant.id, number=data.number)
        db.session.add(order)
    order.customer = customer
    order.currency, order.ordered_on, order.delivered_on = data.currency, data.ordered_on, data.delivered_on

    existing = {line.sku: line for line in order.lines}
    wanted = {line.sku for line in data.lines}
    removed = [line for sku, line in existing.items() if sku not in wanted]
    if removed:
        in_use = db.session.execute(
            sa.select(CaseLine.sku, ReturnCase.number)
            .join(ReturnCase, ReturnCase.id == CaseLine.case_id)
            .where(CaseLine.order_line_id.in_([line.id for line in removed]))
        ).all()
        if in_use:
            db.session.rollback()
            raise Conflict(
                "Some order lines cannot be removed because cases return them.",
                {"lines": [{"sku": sku, "case": number} for sku, number in in_use]},
            )
        for line in removed:
            order.lines.remove(line)
    for item in data.lines:
        line = existing.get(item.sku)
        if line is None:
            line = OrderLine(tenant_id=tenant.id, sku=item.sku)
            order.lines.append(line)
        line.title, line.quantity, line.unit_price = item.title, item.quantity, item.unit_price
        line.category, line.tags, line.final_sale = item.category, list(item.tags), item.final_sale
    order.total = sum((item.unit_price * item.quantity for item in data.lines), Decimal("0"))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(f"Order {data.number} was written by another request at the same time; retry.") from None
    return order, created
