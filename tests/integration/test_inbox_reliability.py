"""The inbox on PostgreSQL: concurrent duplicate deliveries and a crash between commit and processing."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest
import requests
import sqlalchemy as sa
from flask import Flask
from werkzeug.serving import make_server

from app.cases.models import ReturnCase
from app.connectors.schemas import IntegrationCreate
from app.connectors.services import connect
from app.extensions import db
from app.inbound import services as inbound_services
from app.inbound.models import InboundEvent
from app.orders.schemas import OrderUpsert
from app.orders.services import upsert_order
from app.tenants.services import create_tenant
from integrations import get_adapter
from tests.conftest import database_kind
from tests.factories import order_payload

pytestmark = pytest.mark.skipif(database_kind() != "postgresql", reason="real concurrency needs PostgreSQL")

BODY = json.dumps({
    "ticket_id": "777", "subject": "Return", "status": "open", "requester_email": "maria.lopez@example.com",
    "requester_name": "María López", "tags": "", "event": "created", "author_role": "End-user",
    "latest_comment": "Please take back the tent TENT-2P from order #1001, it is too small. I want a refund.",
}).encode()


def _setup(app: Flask) -> tuple[str, str]:
    with app.app_context():
        tenant = create_tenant("Inbox", slug="inbox").token.tenant
        upsert_order(tenant, OrderUpsert.model_validate(order_payload()))
        connected = connect(tenant, IntegrationCreate(kind="zendesk", name="Support"))
        return connected.integration.public_key, connected.signing_secret


def _counts(app: Flask) -> tuple[int, int]:
    with app.app_context():
        return (db.session.scalar(sa.select(sa.func.count(InboundEvent.id))),
                db.session.scalar(sa.select(sa.func.count(ReturnCase.id))))


def test_a_thousand_concurrent_copies_of_one_delivery_make_one_event_and_one_case(app: Flask, clean_db: None) -> None:
    """1,000 simultaneous deliveries of the same event, over real HTTP: exactly one event, one case."""
    key, secret = _setup(app)
    headers = {"Content-Type": "application/json",
               **get_adapter("zendesk").sign(BODY, secret, datetime.now(timezone.utc), "invocation-42")}
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/webhooks/{key}"
    local = threading.local()

    def deliver(_: int) -> int:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        return session.post(url, data=BODY, headers=headers, timeout=60).status_code

    try:
        with ThreadPoolExecutor(max_workers=50) as pool:
            statuses = list(pool.map(deliver, range(1000)))
    finally:
        server.shutdown()
    assert statuses.count(200) == 1000
    assert _counts(app) == (1, 1)


def test_a_crash_after_the_commit_is_finished_by_the_worker_once(app: Flask, clean_db: None, monkeypatch) -> None:
    """Processing dies after the event is committed: the 2xx still goes out, the worker opens the case once."""
    key, secret = _setup(app)

    def crash(event_id: int) -> str:
        raise RuntimeError("worker process killed")

    monkeypatch.setattr(inbound_services, "process_event", crash)
    headers = get_adapter("zendesk").sign(BODY, secret, datetime.now(timezone.utc), "invocation-43")
    response = app.test_client().post(f"/webhooks/{key}", data=BODY, headers={"Content-Type": "application/json", **headers})
    assert response.status_code == 200 and response.json["status"] == "queued"
    assert _counts(app) == (1, 0)
    monkeypatch.undo()
    app.config["REBOUND_INBOUND_STALE_SECONDS"] = 0
    try:
        with app.app_context():
            assert inbound_services.retry_due_events() == 1
            assert inbound_services.retry_due_events() == 0
            stored = db.session.scalar(sa.select(InboundEvent))
            assert stored.status == "processed" and stored.attempts == 1
    finally:
        app.config["REBOUND_INBOUND_STALE_SECONDS"] = 60
    assert _counts(app) == (1, 1)


def test_a_failing_intake_is_retried_with_backoff_until_it_succeeds(app: Flask, clean_db: None, monkeypatch) -> None:
    """An exception inside processing rolls its work back, records the error, and a later retry succeeds."""
    key, secret = _setup(app)
    calls = {"n": 0}
    real = inbound_services.handle_ticket_event

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("database hiccup")
        return real(*args, **kwargs)

    monkeypatch.setattr(inbound_services, "handle_ticket_event", flaky)
    headers = get_adapter("zendesk").sign(BODY, secret, datetime.now(timezone.utc), "invocation-44")
    response = app.test_client().post(f"/webhooks/{key}", data=BODY, headers={"Content-Type": "application/json", **headers})
    assert response.json["status"] == "failed"
    with app.app_context():
        stored = db.session.scalar(sa.select(InboundEvent))
        assert "database hiccup" in stored.last_error and stored.next_attempt_at is not None
        db.session.execute(sa.update(InboundEvent).values(next_attempt_at=datetime(2000, 1, 1, tzinfo=timezone.utc)))
        db.session.commit()
        assert inbound_services.retry_due_events() == 1
    assert _counts(app) == (1, 1)
