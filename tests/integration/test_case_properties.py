"""Properties of the case services under random action sequences (hypothesis, real database)."""

from __future__ import annotations

import itertools
from decimal import Decimal

import sqlalchemy as sa
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.cases import schemas
from app.cases.models import CaseEvent, ReturnCase, Settlement
from app.cases.queries import get_case
from app.cases.services import ACTIONS, Actor, create_case, perform_action
from app.cases.states import Action, CaseStatus
from app.errors import AppError
from app.extensions import db
from app.orders.schemas import OrderUpsert
from app.orders.services import upsert_order
from app.tenants.services import create_tenant
from tests.factories import order_payload

AGENT = Actor(type="agent", id="prop", channel="agent")
_tenants = itertools.count()

REASONS = st.sampled_from([None, "damaged_in_transit", "too_small", "changed_mind"])
ACTION_NAMES = st.sampled_from([a for a in Action if a not in (Action.CUSTOMER_REPLIED, Action.EXPIRE)])


def _payload(action: Action, line_ids: list[int], draw_qty: int, kind: str) -> schemas.ActionIn:
    schema, _ = ACTIONS[action]
    lines = [{"line_id": i, "quantity": draw_qty} for i in line_ids]
    data: dict = {"reason": "Because the test says so"} if "reason" in schema.model_fields else {}
    if action is Action.APPROVE:
        data["lines"] = lines
    elif action is Action.REQUEST_INFO:
        data = {"message": "Please send a photo."}
    elif action is Action.ISSUE_LABEL:
        data = {"carrier": "DHL", "tracking_number": "T1"}
    elif action is Action.RECEIVE:
        data = {"lines": lines}
    elif action is Action.INSPECT:
        data = {"lines": [{"line_id": i, "condition_grade": "B", "disposition": "restock",
                           "quantity_accepted": draw_qty} for i in line_ids]}
    elif action is Action.RESOLVE:
        data = {"kind": kind, **({"exchange_value": "100.00"} if kind == "exchange" else {})}
    elif action is Action.SETTLE:
        data = {}
    return schema.model_validate(data)


def _snapshot(case_id: int) -> tuple:
    db.session.expire_all()
    case = db.session.get(ReturnCase, case_id)
    return (
        case.status, case.version, case.held_from,
        tuple((l.qty_authorized, l.qty_received, l.qty_accepted, l.reception_status, l.decision_status) for l in case.lines),
        db.session.scalar(sa.select(sa.func.count(CaseEvent.id)).where(CaseEvent.case_id == case_id)),
        db.session.scalar(sa.select(sa.func.count(Settlement.id)).where(Settlement.case_id == case_id)),
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    reason=REASONS,
    quantity=st.integers(1, 2),
    steps=st.lists(st.tuples(ACTION_NAMES, st.integers(0, 3), st.sampled_from(
        ["refund", "store_credit", "exchange", "keep_item", "replacement"])), min_size=1, max_size=14),
)
def test_random_action_sequences_keep_every_invariant(app: Flask, clean_db: None, reason, quantity, steps) -> None:
    """Statuses stay in the table, refused actions change nothing, amounts are never negative."""
    with app.app_context():
        tenant = create_tenant(f"Prop {next(_tenants)}").token.tenant
        upsert_order(tenant, OrderUpsert.model_validate(order_payload()))
        case = create_case(tenant, schemas.CaseCreate(lines=[
            {"order_number": "1001", "sku": "TENT-2P", "quantity": quantity, "reason_code": reason}]), AGENT)
        case_id, number = case.id, case.number
        for action, qty, kind in steps:
            line_ids = [line.id for line in get_case(tenant.id, number).lines]
            before = _snapshot(case_id)
            try:
                perform_action(tenant, number, action, _payload(action, line_ids, qty, kind), AGENT)
            except AppError as refused:
                assert refused.status == 409
                assert refused.details.get("reasons"), "a refusal always says why"
                assert _snapshot(case_id) == before, f"refused {action} changed the case"
            else:
                after = _snapshot(case_id)
                assert after[1] == before[1] + 1, "every accepted action bumps the version"
                assert after[4] == before[4] + 1, "every accepted action adds one event"
            stored = db.session.get(ReturnCase, case_id)
            assert CaseStatus(stored.status) in CaseStatus
            for line in stored.lines:
                assert 0 <= line.qty_accepted <= line.qty_authorized <= line.qty_requested
                assert line.qty_received <= line.qty_authorized
            for settlement in db.session.scalars(sa.select(Settlement).where(Settlement.case_id == case_id)):
                for amount in (settlement.gross, settlement.fees, settlement.bonus, settlement.amount):
                    assert isinstance(amount, Decimal) and amount >= 0
