"""Read-only case queries shared by the API and (later) the sidebar; every one scoped by tenant."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import defer, joinedload, selectinload

from app.cases.models import CaseEvent, CaseLine, PolicyVersion, ReasonCode, ReturnCase
from app.errors import NotFound, ValidationFailed
from app.extensions import db
from app.orders.models import Customer, Order


def get_case(tenant_id: int, number: str) -> ReturnCase:
    """The tenant's case with this number, with lines, settlements, evidence and customer.

    :raise NotFound: (404) no such case for this tenant (another tenant's number included).
    """
    case = db.session.scalar(
        sa.select(ReturnCase)
        .where(ReturnCase.tenant_id == tenant_id, ReturnCase.number == number)
        .options(
            joinedload(ReturnCase.customer),
            selectinload(ReturnCase.lines).joinedload(CaseLine.order),
            selectinload(ReturnCase.settlements),
            selectinload(ReturnCase.evidence),
        )
    )
    if case is None:
        raise NotFound(f"No case {number!r}.", {"number": number})
    return case


def current_policy(tenant_id: int) -> PolicyVersion:
    """The policy version in force (the highest)."""
    version = db.session.scalar(
        sa.select(PolicyVersion)
        .where(PolicyVersion.tenant_id == tenant_id)
        .order_by(PolicyVersion.version.desc())
        .limit(1)
    )
    if version is None:  # every tenant is created with version 1; this is a broken tenant
        raise NotFound("This tenant has no policy.")
    return version


@dataclass(frozen=True)
class CaseFilter:
    statuses: tuple[str, ...] = ()
    customer_email: str | None = None
    order_number: str | None = None
    ticket_id: str | None = None
    updated_since: datetime | None = None
    q: str | None = None
    limit: int = 50
    cursor: str | None = None


def encode_cursor(case_id: int) -> str:
    return base64.urlsafe_b64encode(f"c:{case_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """:raise ValidationFailed: (422) a cursor this API did not hand out."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, value = raw.split(":", 1)
        case_id = int(value)
        if prefix != "c" or not 0 < case_id < 2**31:  # ids are 32-bit integers
            raise ValueError(raw)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValidationFailed("Invalid cursor.", {"fields": {"cursor": ["Use the next_cursor of a previous page."]}}) from None
    return case_id


def list_cases(tenant_id: int, f: CaseFilter) -> tuple[list[ReturnCase], str | None]:
    """A page of the tenant's cases, newest first, and the cursor of the next page (or None).

    Keyset pagination on id: stable while cases change status, and as fast on page 1,000 as on 1.
    """
    query = sa.select(ReturnCase).where(ReturnCase.tenant_id == tenant_id).options(
        joinedload(ReturnCase.customer),
        defer(ReturnCase.policy_decision),  # ~3 KB of JSON per row that a list page never shows
    )
    if f.statuses:
        query = query.where(ReturnCase.status.in_(f.statuses))
    if f.customer_email:
        query = query.where(ReturnCase.customer_id == _customer_id(tenant_id, f.customer_email))
    if f.order_number:
        query = query.where(ReturnCase.id.in_(_case_ids_for_order(tenant_id, f.order_number)))
    if f.ticket_id:
        query = query.where(ReturnCase.ticket_id == f.ticket_id)
    if f.updated_since:
        query = query.where(ReturnCase.updated_at >= f.updated_since)
    if f.q:
        query = query.where(_search(tenant_id, f.q))
    if f.cursor:
        query = query.where(ReturnCase.id < decode_cursor(f.cursor))
    rows = list(db.session.scalars(query.order_by(ReturnCase.id.desc()).limit(f.limit + 1)).unique())
    next_cursor = encode_cursor(rows[f.limit - 1].id) if len(rows) > f.limit else None
    return rows[: f.limit], next_cursor


def _customer_id(tenant_id: int, email: str) -> sa.ScalarSelect:
    return (
        sa.select(Customer.id)
        .where(Customer.tenant_id == tenant_id, Customer.email == email.strip().lower())
        .scalar_subquery()
    )


def _case_ids_for_order(tenant_id: int, order_number: str) -> sa.Select:
    return (
        sa.select(CaseLine.case_id)
        .join(Order, Order.id == CaseLine.order_id)
        .where(Order.tenant_id == tenant_id, Order.number == order_number)
    )


def _search(tenant_id: int, q: str) -> sa.ColumnElement[bool]:
    """One search box: an RMA number, a customer email, or an order number."""
    q = q.strip()
    if "@" in q:
        return ReturnCase.customer_id == _customer_id(tenant_id, q)
    # A UNION of two index lookups: "number = q OR id IN (…)" would make PostgreSQL scan every case.
    by_number = sa.select(ReturnCase.id).where(ReturnCase.tenant_id == tenant_id, ReturnCase.number == q.upper())
    return ReturnCase.id.in_(sa.union(by_number, _case_ids_for_order(tenant_id, q)))


def timeline(case: ReturnCase) -> list[CaseEvent]:
    """Every event of the case, oldest first."""
    return list(
        db.session.scalars(
            sa.select(CaseEvent)
            .where(CaseEvent.tenant_id == case.tenant_id, CaseEvent.case_id == case.id)
            .order_by(CaseEvent.id)
        )
    )


def reason_codes(tenant_id: int) -> list[ReasonCode]:
    return list(
        db.session.scalars(
            sa.select(ReasonCode).where(ReasonCode.tenant_id == tenant_id).order_by(ReasonCode.id)
        )
    )


def get_order(tenant_id: int, number: str) -> Order:
    """:raise NotFound: (404) no such order for this tenant."""
    order = db.session.scalar(
        sa.select(Order)
        .where(Order.tenant_id == tenant_id, Order.number == number)
        .options(selectinload(Order.lines), joinedload(Order.customer))
    )
    if order is None:
        raise NotFound(f"No order {number!r}.", {"number": number})
    return order
