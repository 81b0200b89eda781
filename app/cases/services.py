"""Case use cases: open a case, evaluate the policy, and every action of the state machine.

Each public function is one transaction: guard (readable reasons) → change → timeline event →
outbox messages for a linked ticket (``outbound.outbox``) → one commit. A guard failure raises
``InvalidTransitionError`` (409) with the reasons and changes nothing; a write based on a stale
version raises ``VersionConflict`` (409).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.exc import StaleDataError

from app.cases import money, schemas, states
from app.cases.models import CaseEvent, CaseLine, Evidence, PolicyVersion, ReasonCode, ReturnCase, Settlement
from app.cases.policy import CaseFacts, Decision, LineFacts, PolicyRules, evaluate
from app.cases.queries import current_policy, get_case
from app.cases.states import Action, CaseStatus
from app.errors import InvalidTransitionError, ValidationFailed, VersionConflict
from app.extensions import db, utcnow
from app.orders.models import Customer, Order, OrderLine
from app.outbound.events import enqueue_case_events
from app.outbound.outbox import enqueue_case_pushes
from app.tenants.models import Tenant

# Statuses whose lines no longer hold a claim on the order's quantities.
RELEASED_STATUSES = (CaseStatus.REJECTED, CaseStatus.CANCELLED, CaseStatus.EXPIRED)
MONEY_KINDS = {"refund", "store_credit", "exchange", "keep_item"}


@dataclass(frozen=True)
class Actor:
    """Who acts, and through which channel; recorded on every timeline event."""

    type: Literal["agent", "api", "system", "customer"]
    id: str | None = None
    channel: str = "api"


SYSTEM = Actor(type="system", id=None, channel="system")


# ---- opening a case -------------------------------------------------------------------------

@dataclass
class ResolvedLine:
    """A requested line after its order and reason were looked up."""

    data: schemas.CaseLineIn
    title: str
    unit_price: Decimal
    order: Order | None = None
    order_line: OrderLine | None = None
    reason: ReasonCode | None = None


@dataclass
class ResolvedRequest:
    lines: list[ResolvedLine]
    orders: dict[str, Order] = field(default_factory=dict)
    customer: Customer | None = None
    currency: str = "USD"


def _returned_quantities(order_line_ids: list[int]) -> dict[int, int]:
    """Quantities already claimed by live cases, per order line."""
    if not order_line_ids:
        return {}
    rows = db.session.execute(
        sa.select(CaseLine.order_line_id, sa.func.sum(CaseLine.qty_requested))
        .join(ReturnCase, ReturnCase.id == CaseLine.case_id)
        .where(CaseLine.order_line_id.in_(order_line_ids), ReturnCase.status.not_in(RELEASED_STATUSES))
        .group_by(CaseLine.order_line_id)
    )
    return {line_id: int(total) for line_id, total in rows}


def resolve_request(tenant: Tenant, data: schemas.CaseCreate) -> ResolvedRequest:
    """Look up the orders, order lines and reason codes a request names; stores nothing.

    :raise ValidationFailed: (422) an unknown order, SKU or reason, or more than is left to return.
    """
    errors: dict[str, list[str]] = defaultdict(list)
    numbers = {line.order_number for line in data.lines if line.order_number}
    orders: dict[str, Order] = {}
    if numbers:
        found = db.session.scalars(
            sa.select(Order)
            .where(Order.tenant_id == tenant.id, Order.number.in_(numbers))
            .options(selectinload(Order.lines), selectinload(Order.customer))
        )
        orders = {order.number: order for order in found}
    codes = {line.reason_code for line in data.lines if line.reason_code}
    reasons: dict[str, ReasonCode] = {}
    if codes:
        reasons = {
            reason.code: reason
            for reason in db.session.scalars(
                sa.select(ReasonCode).where(ReasonCode.tenant_id == tenant.id, ReasonCode.code.in_(codes))
            )
        }
    order_line_ids = [ol.id for order in orders.values() for ol in order.lines]
    already = _returned_quantities(order_line_ids)
    claimed_here: dict[int, int] = defaultdict(int)

    resolved: list[ResolvedLine] = []
    for index, line in enumerate(data.lines):
        where = f"lines.{index}"
        reason = reasons.get(line.reason_code) if line.reason_code else None
        if line.reason_code and (reason is None or not reason.active):
            errors[f"{where}.reason_code"].append(f"Unknown or inactive reason code {line.reason_code!r}.")
        if line.order_number is None:
            resolved.append(ResolvedLine(line, line.title or line.sku, line.unit_price or Decimal("0"), reason=reason))
            continue
        order = orders.get(line.order_number)
        if order is None:
            errors[f"{where}.order_number"].append(f"No order {line.order_number!r} is known.")
            continue
        order_line = next((ol for ol in order.lines if ol.sku == line.sku), None)
        if order_line is None:
            errors[f"{where}.sku"].append(f"Order {order.number} has no line with SKU {line.sku!r}.")
            continue
        taken = already.get(order_line.id, 0) + claimed_here[order_line.id]
        left = order_line.quantity - taken
        if line.quantity > left:
            errors[f"{where}.quantity"].append(
                f"Only {max(left, 0)} of SKU {line.sku} can still be returned on order {order.number}"
                f" (ordered {order_line.quantity}, already requested {taken})."
            )
        claimed_here[order_line.id] += line.quantity
        resolved.append(
            ResolvedLine(line, order_line.title, order_line.unit_price, order=order, order_line=order_line, reason=reason)
        )

    currencies = {order.currency for order in orders.values()}
    if len(currencies) > 1:
        errors["lines"].append(f"All orders of one case must share a currency; got {', '.join(sorted(currencies))}.")
    if data.currency and currencies and data.currency not in currencies:
        errors["currency"].append(f"The orders are in {currencies.pop()}, not {data.currency}.")
    if errors:
        raise ValidationFailed("The return request cannot be opened as given.", {"fields": dict(errors)})

    customer = None
    if data.customer_email:
        customer = db.session.scalar(
            sa.select(Customer).where(Customer.tenant_id == tenant.id, Customer.email == data.customer_email)
        )
    elif orders:
        customer = next(iter(orders.values())).customer
    currency = data.currency or (next(iter(currencies)) if currencies else tenant.default_currency)
    return ResolvedRequest(lines=resolved, orders=orders, customer=customer, currency=currency)


def _customer_returns_90_days(customer: Customer | None, exclude_case_id: int | None = None) -> int:
    if customer is None or customer.id is None:
        return 0
    since = utcnow() - timedelta(days=90)
    query = sa.select(sa.func.count(ReturnCase.id)).where(
        ReturnCase.tenant_id == customer.tenant_id,
        ReturnCase.customer_id == customer.id,
        ReturnCase.created_at >= since,
        ReturnCase.status != CaseStatus.CANCELLED,
    )
    if exclude_case_id is not None:
        query = query.where(ReturnCase.id != exclude_case_id)
    return db.session.scalar(query) or 0


def build_facts(request: ResolvedRequest, data: schemas.CaseCreate, today: date) -> CaseFacts:
    """The facts the pure policy needs, from a resolved request."""
    photo_everywhere = any(e.kind == "photo" and e.line_index is None for e in data.evidence)
    photo_lines = {e.line_index for e in data.evidence if e.kind == "photo" and e.line_index is not None}
    lines = []
    for index, line in enumerate(request.lines):
        order_line = line.order_line
        lines.append(
            LineFacts(
                key=str(index),
                sku=line.data.sku,
                title=line.title,
                quantity=line.data.quantity,
                unit_price=line.unit_price,
                category=order_line.category if order_line else None,
                tags=tuple(order_line.tags or ()) if order_line else (),
                final_sale=order_line.final_sale if order_line else False,
                reason_code=line.data.reason_code,
                reason_requires_photo=bool(line.reason and line.reason.requires_photo),
                has_photo=photo_everywhere or index in photo_lines,
                ordered_on=line.order.ordered_on if line.order else None,
                delivered_on=line.order.delivered_on if line.order else None,
                order_number=line.order.number if line.order else None,
            )
        )
    order_value = sum((order.total for order in request.orders.values()), Decimal("0"))
    return CaseFacts(
        today=today,
        lines=tuple(lines),
        order_value=order_value,
        customer_returns_90_days=_customer_returns_90_days(request.customer),
        preferred_resolution=data.preferred_resolution,
    )


def policy_rules(version: PolicyVersion) -> PolicyRules:
    return PolicyRules.model_validate(version.document)


def dry_run(tenant: Tenant, data: schemas.CaseCreate) -> tuple[Decision, int]:
    """Evaluate a hypothetical request against the policy in force; nothing is stored.

    :raise ValidationFailed: (422) the request names unknown orders, SKUs or reasons.
    """
    request = resolve_request(tenant, data)
    version = current_policy(tenant.id)
    decision = evaluate(build_facts(request, data, date.today()), policy_rules(version))
    db.session.rollback()
    return decision, version.version


def next_case_number(tenant_id: int) -> str:
    """Hand out the tenant's next case number.

    The counter row is incremented with one UPDATE … RETURNING: the row lock it takes makes
    concurrent creates queue for the number instead of both reading the same value. Call it
    last in the transaction so the lock is held as briefly as possible.
    """
    counter = db.session.execute(
        sa.update(Tenant)
        .where(Tenant.id == tenant_id)
        .values(case_counter=Tenant.case_counter + 1)
        .returning(Tenant.case_counter)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    config = current_app.config
    return f"{config['REBOUND_CASE_NUMBER_PREFIX']}{config['REBOUND_CASE_NUMBER_START'] + counter - 1}"


def _get_or_create_customer(tenant: Tenant, email: str, name: str | None) -> Customer:
    customer = db.session.scalar(sa.select(Customer).where(Customer.tenant_id == tenant.id, Customer.email == email))
    if customer is not None:
        if name and not customer.name:
            customer.name = name
        return customer
    try:
        # A savepoint, so a concurrent insert of the same address costs a retry, not the case.
        with db.session.begin_nested():
            customer = Customer(tenant_id=tenant.id, email=email, name=name)
            db.session.add(customer)
    except IntegrityError:
        customer = db.session.scalars(
            sa.select(Customer).where(Customer.tenant_id == tenant.id, Customer.email == email)
        ).one()
    return customer


def _event(case: ReturnCase, action: str, actor: Actor, *, from_status: str | None, to_status: str | None,
           reason: str | None = None, data: dict[str, Any] | None = None) -> CaseEvent:
    event = CaseEvent(
        tenant_id=case.tenant_id, case_id=case.id, action=action, from_status=from_status, to_status=to_status,
        actor_type=actor.type, actor_id=actor.id, channel=actor.channel, reason=reason, data=data or {},
    )
    db.session.add(event)
    return event


def queue_updates(case: ReturnCase, *events: CaseEvent) -> None:
    """Queue what ``events`` send out, in this transaction: the default ticket updates (linked
    tickets), else mail to the customer (cases in a mail thread), and the case events for the
    tenant's webhook subscriptions."""
    db.session.flush()  # the event ids are part of the messages' idempotency keys
    if case.ticket_id and case.integration_id:
        for event in events:
            enqueue_case_pushes(case, event)
    else:
        from app.email.outbound import enqueue_case_mail  # here: app.email imports intake, which imports this module

        enqueue_case_mail(case, *events)
    enqueue_case_events(case, events)


def create_case(tenant: Tenant, data: schemas.CaseCreate, actor: Actor, *, integration_id: int | None = None,
                commit: bool = True) -> ReturnCase:
    """Open a case, evaluate the policy and store its decision; auto-approve or queue for review.

    ``commit=False`` lets a caller that owns a larger transaction (intake) include the case in it.

    :raise ValidationFailed: (422) unknown order, SKU or reason; more than is left to return.
    """
    request = resolve_request(tenant, data)
    if data.customer_email:
        customer = _get_or_create_customer(tenant, data.customer_email, data.customer_name)
    else:
        customer = request.customer
    assert customer is not None  # the schema requires an email or an order, which has a customer
    request.customer = customer
    version = current_policy(tenant.id)
    decision = evaluate(build_facts(request, data, date.today()), policy_rules(version))

    case = ReturnCase(
        tenant_id=tenant.id, number="", status=CaseStatus.REQUESTED, type=data.type, channel=data.channel,
        customer=customer, locale=data.locale or tenant.default_locale, currency=request.currency,
        preferred_resolution=data.preferred_resolution, note=data.note,
        policy_version=version.version, policy_decision=decision.to_dict(),
    )
    if data.ticket:
        case.ticket_provider, case.ticket_id, case.ticket_url = data.ticket.provider, data.ticket.id, data.ticket.url
        case.integration_id = integration_id
    line_decisions = {line.key: line for line in decision.lines}
    for index, resolved in enumerate(request.lines):
        line_decision = line_decisions.get(str(index))
        eligible = line_decision.eligible if line_decision else False
        case.lines.append(
            CaseLine(
                tenant_id=tenant.id, position=index, order=resolved.order, order_line=resolved.order_line,
                sku=resolved.data.sku, title=resolved.title, unit_price=resolved.unit_price,
                qty_requested=resolved.data.quantity, reason_code=resolved.data.reason_code,
                customer_comment=resolved.data.comment, resolution_preference=resolved.data.resolution_preference,
                fault_party=resolved.reason.fault_party if resolved.reason else None,
                decision_status="pending" if eligible else "rejected",
                decision_results=[
                    {"rule": r.rule, "passed": r.passed, "why": r.why, "effect": r.effect}
                    for r in (line_decision.results if line_decision else ())
                ],
                fee_percent=money.quantize(line_decision.fee_percent) if line_decision else Decimal("0.00"),
            )
        )
    for item in data.evidence:
        case.evidence.append(
            Evidence(
                tenant_id=tenant.id, kind=item.kind, url=item.url, filename=item.filename,
                content_type=item.content_type, size_bytes=item.size_bytes, sha256=item.sha256,
                source=actor.channel,
            )
        )
    # The number is taken last, so the counter row stays locked only for the inserts below.
    case.number = next_case_number(tenant.id)
    db.session.add(case)
    db.session.flush()  # line ids, for the evidence that points at a line
    for item, evidence in zip(data.evidence, case.evidence):
        if item.line_index is not None:
            evidence.line_id = case.lines[item.line_index].id
    created = _event(case, "create", actor, from_status=None, to_status=CaseStatus.REQUESTED,
                     data={"policy_version": version.version, "outcome": decision.outcome})
    if decision.outcome == "approve":
        for line in case.lines:
            if line.decision_status == "pending":
                line.qty_authorized = line.qty_requested
        case.status = states.next_status(CaseStatus.REQUESTED, Action.APPROVE)
        decided = _event(case, Action.APPROVE, SYSTEM, from_status=CaseStatus.REQUESTED, to_status=case.status,
                         reason=f"Auto-approved by policy version {version.version}: {decision.summary}")
    else:
        # A policy "reject" also goes to review: refusing a customer is an agent's call.
        case.status = states.next_status(CaseStatus.REQUESTED, Action.FLAG)
        decided = _event(case, Action.FLAG, SYSTEM, from_status=CaseStatus.REQUESTED, to_status=case.status,
                         reason=decision.summary)
    queue_updates(case, created, decided)
    if commit:
        db.session.commit()
    else:
        db.session.flush()
    return case


# ---- actions ----------------------------------------------------------------------------

class Guard:
    """Collects the reasons an action cannot go ahead; raise them all at once."""

    def __init__(self, case: ReturnCase, action: Action):
        self.case, self.action, self.reasons = case, action, []

    def require(self, condition: bool, reason: str) -> bool:
        if not condition:
            self.reasons.append(reason)
        return condition

    def check(self) -> None:
        if self.reasons:
            raise InvalidTransitionError(
                f"Cannot {self.action.value.replace('_', ' ')} case {self.case.number}: {self.reasons[0]}",
                {"reasons": self.reasons, "status": self.case.status, "version": self.case.version},
            )


def _lines_by_id(case: ReturnCase) -> dict[int, CaseLine]:
    return {line.id: line for line in case.lines}


def _known_lines(guard: Guard, case: ReturnCase, ids: list[int]) -> dict[int, CaseLine]:
    lines = _lines_by_id(case)
    for line_id in ids:
        guard.require(line_id in lines, f"Line {line_id} is not part of case {case.number}.")
    seen: set[int] = set()
    for line_id in ids:
        guard.require(line_id not in seen, f"Line {line_id} is listed twice.")
        seen.add(line_id)
    return lines


def _approve(case: ReturnCase, p: schemas.ApproveIn, guard: Guard) -> dict[str, Any]:
    if p.lines is None:
        quantities = {line.id: line.qty_requested for line in case.lines if line.decision_status != "rejected"}
    else:
        lines = _known_lines(guard, case, [item.line_id for item in p.lines])
        quantities = {item.line_id: item.quantity for item in p.lines}
        for line_id, quantity in quantities.items():
            line = lines.get(line_id)
            if line is None:
                continue
            guard.require(quantity <= line.qty_requested,
                          f"Line {line_id} ({line.sku}): cannot authorize {quantity}, only {line.qty_requested} requested.")
            if line.decision_status == "rejected" and quantity > 0:
                guard.require(p.reason is not None,
                              f"Line {line_id} ({line.sku}) was refused by the policy; authorizing it needs a reason.")
    guard.require(sum(quantities.values()) > 0,
                  "Nothing to authorize: every line was refused by the policy. Name lines and give a reason to make an exception.")
    guard.check()
    exceptions = []
    for line in case.lines:
        line.qty_authorized = quantities.get(line.id, 0)
        if line.qty_authorized > 0 and line.decision_status == "rejected":
            exceptions.append(line.id)
            line.decision_status = "pending"
        elif line.qty_authorized == 0:
            line.decision_status = "rejected"
    return {"authorized": {str(k): v for k, v in quantities.items()}, "exception_lines": exceptions}


def _request_info(case: ReturnCase, p: schemas.RequestInfoIn, guard: Guard) -> dict[str, Any]:
    return {"message": p.message}


def _customer_replied(case: ReturnCase, p: schemas.CustomerRepliedIn, guard: Guard) -> dict[str, Any]:
    return {"message": p.message} if p.message else {}


def _issue_label(case: ReturnCase, p: schemas.IssueLabelIn, guard: Guard) -> dict[str, Any]:
    guard.require(any(line.qty_authorized > 0 for line in case.lines), "No line is authorized, so there is nothing to ship.")
    guard.check()
    case.return_carrier, case.return_tracking, case.return_label_url = p.carrier, p.tracking_number, p.label_url
    case.label_issued_at = utcnow()
    return {"carrier": p.carrier, "tracking_number": p.tracking_number, "label_url": p.label_url}


def _ship(case: ReturnCase, p: schemas.ShipIn, guard: Guard) -> dict[str, Any]:
    if p.tracking_number:
        case.return_tracking = p.tracking_number
    for line in case.lines:
        if line.qty_authorized > 0:
            line.reception_status = "in_transit"
    return {"tracking_number": case.return_tracking}


def _receive(case: ReturnCase, p: schemas.ReceiveIn, guard: Guard) -> dict[str, Any]:
    authorized = [line for line in case.lines if line.qty_authorized > 0]
    if p.lines is None:
        received = {line.id: (line.qty_authorized, "received") for line in authorized}
    else:
        lines = _known_lines(guard, case, [item.line_id for item in p.lines])
        received = {item.line_id: (item.quantity, item.outcome) for item in p.lines}
        for item in p.lines:
            line = lines.get(item.line_id)
            if line is None:
                continue
            guard.require(line.qty_authorized > 0, f"Line {line.id} ({line.sku}) was not authorized for return.")
            guard.require(item.quantity <= line.qty_authorized,
                          f"Line {line.id} ({line.sku}): received {item.quantity}, but only {line.qty_authorized} authorized.")
            if item.outcome == "missing":
                guard.require(item.quantity == 0, f"Line {line.id} ({line.sku}) is marked missing but has a quantity.")
    guard.require(any(q > 0 or outcome == "wrong_item" for q, outcome in received.values()),
                  "Nothing was received. Record at least one unit, or mark the parcel lost instead.")
    guard.check()
    for line in authorized:
        quantity, outcome = received.get(line.id, (0, "missing"))
        line.qty_received = quantity
        if outcome == "wrong_item":
            line.reception_status = "wrong_item"
        elif quantity == 0:
            line.reception_status = "missing"
        elif quantity < line.qty_authorized:
            line.reception_status = "partially_received"
        else:
            line.reception_status = "received"
    return {"received": {str(k): {"quantity": q, "outcome": o} for k, (q, o) in received.items()}}


def _inspect(case: ReturnCase, p: schemas.InspectIn, guard: Guard) -> dict[str, Any]:
    lines = _known_lines(guard, case, [item.line_id for item in p.lines])
    given = {item.line_id: item for item in p.lines}
    for line in case.lines:
        if line.qty_received > 0 or line.reception_status == "wrong_item":
            guard.require(line.id in given, f"Line {line.id} ({line.sku}) was received but is not inspected.")
    for item in p.lines:
        line = lines.get(item.line_id)
        if line is None:
            continue
        guard.require(item.quantity_accepted <= line.qty_received,
                      f"Line {line.id} ({line.sku}): cannot accept {item.quantity_accepted}, only {line.qty_received} received.")
    guard.check()
    for item in p.lines:
        line = lines[item.line_id]
        line.condition_grade, line.disposition = item.condition_grade, item.disposition
        line.qty_accepted, line.inspection_note = item.quantity_accepted, item.note
        line.decision_status = "accepted" if item.quantity_accepted > 0 else "rejected"
    return {"inspected": {str(i.line_id): {"grade": i.condition_grade, "disposition": i.disposition,
                                           "accepted": i.quantity_accepted} for i in p.lines}}


def policy_options(case: ReturnCase) -> tuple[list[str], Decimal]:
    decision = case.policy_decision or {}
    return list(decision.get("options", [])), Decimal(str(decision.get("store_credit_bonus_percent", "0")))


def settlement_preview(case: ReturnCase, kind: str, exchange_value: Decimal | None = None) -> money.Amounts:
    """What a settlement of ``kind`` would pay now, from accepted quantities and stored fees."""
    _, bonus = policy_options(case)
    lost = case.status == CaseStatus.EXCEPTION
    lines = [
        money.SettlementLine(
            unit_price=line.unit_price,
            # A lost parcel is settled on what was authorized (a carrier claim), not on receipt.
            quantity=line.qty_authorized if lost or kind == "keep_item" else line.qty_accepted,
            fee_percent=line.fee_percent,
        )
        for line in case.lines
    ]
    return money.settlement_amounts(lines, kind, bonus_percent=bonus, exchange_value=exchange_value)  # type: ignore[arg-type]


def _add_settlement(case: ReturnCase, kind: str, amounts: money.Amounts) -> Settlement:
    settlement = Settlement(
        tenant_id=case.tenant_id, kind=kind, currency=case.currency, gross=amounts.gross, fees=amounts.fees,
        bonus=amounts.bonus, amount=amounts.amount, price_difference=amounts.price_difference,
        customer_owes=amounts.customer_owes,
    )
    case.settlements.append(settlement)
    return settlement


def _resolve(case: ReturnCase, p: schemas.ResolveIn, guard: Guard) -> dict[str, Any]:
    options, _ = policy_options(case)
    if p.kind not in options:
        guard.require(p.reason is not None,
                      f"The policy does not offer {p.kind.replace('_', ' ')} for this case"
                      f" (offered: {', '.join(options) or 'none'}); give a reason to make an exception.")
    if p.kind == "exchange":
        guard.require(p.exchange_value is not None, "An exchange needs the exchange_value of the new item.")
    guard.require(not any(s.status == "pending" for s in case.settlements),
                  "A settlement is already pending; settle it first.")
    amounts = settlement_preview(case, p.kind, p.exchange_value)
    if p.kind in MONEY_KINDS:
        guard.require(amounts.gross > 0 or p.reason is not None,
                      "No unit was accepted at inspection, so there is nothing to pay; give a reason to settle anyway.")
    guard.check()
    if case.status == CaseStatus.EXCEPTION:
        for line in case.lines:
            if line.qty_authorized > 0:
                line.reception_status, line.qty_accepted = "lost_in_transit", line.qty_authorized
    settlement = _add_settlement(case, p.kind, amounts)
    return {"settlement": {"kind": p.kind, **amounts.to_dict()}, "exception": p.kind not in options}


def _approve_returnless(case: ReturnCase, p: schemas.ReasonOptionalIn, guard: Guard) -> dict[str, Any]:
    options, _ = policy_options(case)
    guard.require("keep_item" in options or p.reason is not None,
                  "The policy does not let the customer keep the item here; give a reason to make an exception.")
    guard.require(any(line.qty_authorized > 0 for line in case.lines), "No line is authorized.")
    guard.check()
    for line in case.lines:
        if line.qty_authorized > 0:
            line.reception_status, line.qty_accepted, line.decision_status = "given_to_customer", line.qty_authorized, "accepted"
    amounts = settlement_preview(case, "keep_item")
    _add_settlement(case, "keep_item", amounts)
    return {"settlement": {"kind": "keep_item", **amounts.to_dict()}}


def _settle(case: ReturnCase, p: schemas.SettleIn, guard: Guard) -> dict[str, Any]:
    pending = [s for s in case.settlements if s.status == "pending"]
    guard.require(bool(pending), "There is no pending settlement to mark as paid.")
    guard.check()
    for settlement in pending:
        settlement.status = "succeeded"
        settlement.external_ref = p.external_ref or settlement.external_ref
    return {"settled": [s.id for s in pending], "external_ref": p.external_ref}


def _cancel(case: ReturnCase, p: schemas.ReasonOptionalIn, guard: Guard) -> dict[str, Any]:
    for line in case.lines:
        if line.reception_status == "awaiting":
            line.reception_status = "cancelled"
    return {}


def _mark_lost(case: ReturnCase, p: schemas.ReasonOptionalIn, guard: Guard) -> dict[str, Any]:
    for line in case.lines:
        if line.reception_status == "in_transit":
            line.reception_status = "lost_in_transit"
    return {}


def _nothing(case: ReturnCase, p: schemas.ActionIn, guard: Guard) -> dict[str, Any]:
    return {}


Handler = Callable[[ReturnCase, Any, Guard], dict[str, Any]]

# action → (payload schema, handler). The API documents one path per action from this table.
ACTIONS: dict[Action, tuple[type[schemas.ActionIn], Handler]] = {
    Action.APPROVE: (schemas.ApproveIn, _approve),
    Action.FLAG: (schemas.ReasonOptionalIn, _nothing),
    Action.REJECT: (schemas.ReasonRequiredIn, _nothing),
    Action.REQUEST_INFO: (schemas.RequestInfoIn, _request_info),
    Action.CUSTOMER_REPLIED: (schemas.CustomerRepliedIn, _customer_replied),
    Action.ISSUE_LABEL: (schemas.IssueLabelIn, _issue_label),
    Action.SHIP: (schemas.ShipIn, _ship),
    Action.RECEIVE: (schemas.ReceiveIn, _receive),
    Action.INSPECT: (schemas.InspectIn, _inspect),
    Action.APPROVE_RETURNLESS: (schemas.ReasonOptionalIn, _approve_returnless),
    Action.RESOLVE: (schemas.ResolveIn, _resolve),
    Action.SETTLE: (schemas.SettleIn, _settle),
    Action.CLOSE: (schemas.ReasonOptionalIn, _nothing),
    Action.REOPEN: (schemas.ReasonRequiredIn, _nothing),
    Action.CANCEL: (schemas.ReasonOptionalIn, _cancel),
    Action.EXPIRE: (schemas.ReasonOptionalIn, _nothing),
    Action.HOLD: (schemas.ReasonRequiredIn, _nothing),
    Action.RELEASE: (schemas.ReasonOptionalIn, _nothing),
    Action.MARK_LOST: (schemas.ReasonOptionalIn, _mark_lost),
}


def perform_action(tenant: Tenant, number: str, action: Action, payload: schemas.ActionIn, actor: Actor, *,
                   commit: bool = True) -> ReturnCase:
    """Run one action on a case: state check, guards, change, timeline event, one commit.

    ``commit=False`` leaves the commit to a caller that owns a larger transaction (intake).

    :raise NotFound: (404) the tenant has no such case.
    :raise VersionConflict: (409) ``payload.version`` is not the case's current version, or
        another writer committed first.
    :raise InvalidTransitionError: (409) the status or a guard refuses; nothing is changed.
    """
    case = get_case(tenant.id, number)
    if payload.version is not None and payload.version != case.version:
        raise VersionConflict(
            f"Case {case.number} has changed since version {payload.version}; reload and retry.",
            {"current_version": case.version, "your_version": payload.version, "status": case.status},
        )
    guard = Guard(case, action)
    transition = states.TRANSITIONS[action]
    reasons = states.blocking_reasons(case.status, action, case.held_from)
    if transition.system_only and actor.type != "system":
        reasons.append(f"Only Rebound itself performs {action.value.replace('_', ' ')}.")
    for reason in reasons:
        guard.require(False, reason)
    guard.check()

    _, handler = ACTIONS[action]
    from_status = case.status
    data = handler(case, payload, guard)
    to_status = states.next_status(case.status, action, case.held_from)
    case.held_from = from_status if action == Action.HOLD else None if action == Action.RELEASE else case.held_from
    case.status = to_status
    case.status_changed_at = case.updated_at = utcnow()
    if payload.note:
        data["note"] = payload.note
    reason = getattr(payload, "reason", None) or getattr(payload, "message", None)
    event = _event(case, action, actor, from_status=from_status, to_status=to_status, reason=reason, data=data)
    if commit:
        commit_case(case, event)
    else:
        db.session.flush()
        queue_updates(case, event)
    return case


def commit_case(case: ReturnCase, *events: CaseEvent) -> None:
    """Queue the ticket updates for ``events`` and commit, turning a concurrent writer's win
    into a ``VersionConflict`` with the fresh version."""
    try:
        queue_updates(case, *events)
        db.session.commit()
    except StaleDataError:
        db.session.rollback()
        current = db.session.scalar(sa.select(ReturnCase.version).where(ReturnCase.id == case.id))
        raise VersionConflict(
            f"Case {case.number} was changed by someone else at the same time; reload and retry.",
            {"current_version": current},
        ) from None


def replace_policy(tenant: Tenant, rules: PolicyRules, author: str | None) -> PolicyVersion:
    """Store ``rules`` as the tenant's next policy version (older versions are kept)."""
    latest = current_policy(tenant.id)
    version = PolicyVersion(
        tenant_id=tenant.id, version=latest.version + 1, document=rules.model_dump(mode="json"), created_by=author
    )
    db.session.add(version)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise VersionConflict("Another policy version was saved at the same time; reload and retry.") from None
    return version


def upsert_reason_code(tenant: Tenant, data: schemas.ReasonCodeIn) -> ReasonCode:
    """Create or update a reason code; a parent must exist and be top-level (two levels).

    :raise ValidationFailed: (422) unknown parent, or a parent that is itself a child.
    """
    reason = db.session.scalar(sa.select(ReasonCode).where(ReasonCode.tenant_id == tenant.id, ReasonCode.code == data.code))
    parent = None
    if data.parent:
        parent = db.session.scalar(sa.select(ReasonCode).where(ReasonCode.tenant_id == tenant.id, ReasonCode.code == data.parent))
        problem = None
        if data.parent == data.code:
            problem = "A reason code cannot be its own parent."
        elif parent is None or parent.parent_id is not None:
            problem = f"{data.parent!r} is not a top-level reason code."
        elif reason is not None and db.session.scalar(
                sa.select(sa.func.count(ReasonCode.id)).where(ReasonCode.parent_id == reason.id)):
            problem = f"{data.code!r} has sub-reasons of its own, so it cannot become one (two levels only)."
        if problem:
            raise ValidationFailed("Reason codes have two levels.", {"fields": {"parent": [problem]}})
    if reason is None:
        reason = ReasonCode(tenant_id=tenant.id, code=data.code)
        db.session.add(reason)
    reason.label, reason.parent = data.label, parent
    reason.requires_photo, reason.requires_note = data.requires_photo, data.requires_note
    reason.fault_party, reason.active = data.fault_party, data.active
    db.session.commit()
    return reason
