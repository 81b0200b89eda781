"""Concurrent writers on PostgreSQL: case numbers are never duplicated, updates are never lost."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from flask import Flask

from app.cases import schemas
from app.cases.models import ReturnCase
from app.cases.services import Actor, create_case, perform_action
from app.cases.states import Action
from app.errors import VersionConflict
from app.extensions import db
from app.orders.schemas import OrderUpsert
from app.orders.services import upsert_order
from app.tenants.models import Tenant
from app.tenants.services import create_tenant
from tests.conftest import database_kind
from tests.factories import order_payload

pytestmark = pytest.mark.skipif(database_kind() != "postgresql", reason="needs PostgreSQL row locks and real concurrency")

ACTOR = Actor(type="api", id="test", channel="api")


def _setup(app: Flask) -> int:
    with app.app_context():
        tenant = create_tenant("Concurrent", slug="concurrent").token.tenant
        upsert_order(tenant, OrderUpsert.model_validate(order_payload(lines=[
            {"sku": "BULK", "title": "Bulk item", "quantity": 1000, "unit_price": "10.00"}])))
        return tenant.id


def test_twenty_concurrent_creates_get_twenty_distinct_numbers(app: Flask, clean_db: None) -> None:
    """20 threads opening cases at the same instant get 20 consecutive, distinct numbers."""
    tenant_id = _setup(app)
    barrier = threading.Barrier(20)

    def open_one(_: int) -> str:
        data = schemas.CaseCreate(lines=[{"order_number": "1001", "sku": "BULK", "quantity": 1}])
        # Wait before touching the database: the pool has fewer connections than threads.
        barrier.wait()
        with app.app_context():
            tenant = db.session.get(Tenant, tenant_id)
            return create_case(tenant, data, ACTOR).number

    with ThreadPoolExecutor(max_workers=20) as pool:
        numbers = list(pool.map(open_one, range(20)))
    assert len(set(numbers)) == 20
    assert sorted(numbers) == [f"RMA-{10001 + i}" for i in range(20)]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(ReturnCase.id))) == 20


def test_two_agents_acting_at_once_one_wins_the_other_gets_a_version_conflict(app: Flask, clean_db: None) -> None:
    """Two concurrent writes from the same version: exactly one commits, the other is a 409, nothing lost."""
    tenant_id = _setup(app)
    with app.app_context():
        tenant = db.session.get(Tenant, tenant_id)
        case = create_case(tenant, schemas.CaseCreate(
            lines=[{"order_number": "1001", "sku": "BULK", "quantity": 1, "reason_code": "damaged"}]), ACTOR)
        number, version = case.number, case.version
    barrier = threading.Barrier(2)

    def act(action: Action, payload: schemas.ActionIn) -> str:
        with app.app_context():
            tenant = db.session.get(Tenant, tenant_id)
            # Both load the same version before either writes.
            perform_loaded = db.session.scalar(sa.select(ReturnCase).where(ReturnCase.number == number))
            assert perform_loaded.version == version
            barrier.wait()
            try:
                perform_action(tenant, number, action, payload, ACTOR)
                return "ok"
            except VersionConflict as exc:
                assert exc.details["current_version"] == version + 1
                return "conflict"

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda args: act(*args), [
            (Action.APPROVE, schemas.ApproveIn(version=None)),
            (Action.REJECT, schemas.ReasonRequiredIn(reason="Not eligible at all")),
        ]))
    assert sorted(results) == ["conflict", "ok"]
    with app.app_context():
        stored = db.session.scalar(sa.select(ReturnCase).where(ReturnCase.number == number))
        assert stored.version == version + 1
        assert stored.status in {"authorized", "rejected"}
