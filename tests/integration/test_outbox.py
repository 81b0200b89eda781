"""The transactional outbox: enqueue in the service's transaction, deliver in order, retry, dead-letter.

A fake Zendesk (pytest-httpserver on loopback) stands behind a zendesk integration; every write
it receives is logged with its idempotency key so the tests can check order and exactly-once.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from app.cases.schemas import ApproveIn, CaseCreate, ReasonOptionalIn
from app.cases.services import Actor, create_case, perform_action
from app.cases.states import Action
from app.connectors.schemas import IntegrationCreate, IntegrationSettings
from app.connectors.services import connect
from app.errors import InvalidTransitionError
from app.extensions import db, utcnow
from app.orders.schemas import OrderUpsert
from app.orders.services import upsert_order
from app.outbound import dispatcher, outbox
from app.outbound.models import DeliveryAttempt, OutboxMessage
from app.tenants.services import create_tenant
from integrations.base import TRACE_IDEMPOTENCY_HEADER, OutboundAction
from tests.conftest import database_kind
from tests.factories import case_payload, order_payload

AGENT = Actor(type="agent", id="agent-7", channel="sidebar")


class FakeHelpdesk:
    """Answers every write with the next scripted status (default 200) and logs what it got."""

    def __init__(self, server: HTTPServer):
        self.server = server
        self.script: list[tuple[int, dict[str, str]]] = []
        self.received: list[tuple[str, str, int]] = []  # (idempotency key, path, status answered)
        self.lock = threading.Lock()
        server.expect_request(__import__("re").compile(".*")).respond_with_handler(self.handle)

    def fail_next(self, *statuses: int | tuple[int, dict[str, str]]) -> None:
        self.script.extend(s if isinstance(s, tuple) else (s, {}) for s in statuses)

    def handle(self, request: Request) -> Response:
        with self.lock:
            status, headers = self.script.pop(0) if self.script else (200, {})
            self.received.append((request.headers.get(TRACE_IDEMPOTENCY_HEADER, ""), request.path, status))
        body = '{"ticket": {"id": 4242}, "audit": {"events": []}}' if status == 200 else '{"error": "nope"}'
        return Response(body, status=status, headers=headers, content_type="application/json")

    def delivered_keys(self) -> list[str]:
        return [key for key, _, status in self.received if status == 200]

    @property
    def url(self) -> str:
        return self.server.url_for("").rstrip("/")


@pytest.fixture()
def helpdesk(httpserver: HTTPServer) -> FakeHelpdesk:
    return FakeHelpdesk(httpserver)


@pytest.fixture()
def setup(app_ctx: Flask, helpdesk: FakeHelpdesk):
    tenant = create_tenant("Outbox", slug="outbox").token.tenant
    upsert_order(tenant, OrderUpsert.model_validate(order_payload()))
    integration = connect(tenant, IntegrationCreate(
        kind="zendesk", name="Support", credentials={"api_email": "agent@example.com", "api_token": "t0ken-for-tests"},
        settings=IntegrationSettings(base_url=helpdesk.url),
    )).integration
    return tenant, integration


def _open(tenant, integration, ticket: str = "4242", order: str = "1001"):
    data = CaseCreate.model_validate(case_payload(order, ticket={"provider": "zendesk", "id": ticket}))
    return create_case(tenant, data, AGENT, integration_id=integration.id)


def _approved(tenant, integration, ticket: str = "4242"):
    case = _open(tenant, integration, ticket)
    if case.status != "authorized":
        perform_action(tenant, case.number, Action.APPROVE, ApproveIn(), AGENT)
    return case


def _messages() -> list[OutboxMessage]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)))


def _drain_now() -> None:
    """Dispatch until nothing is due, pretending each retry's wait has passed."""
    for _ in range(50):
        for message in _messages():
            if message.status == "pending":
                message.next_attempt_at = utcnow()
        db.session.commit()
        if not dispatcher.dispatch_due():
            return


def test_approving_a_ticket_linked_case_enqueues_the_default_pushes(setup) -> None:
    tenant, integration = setup
    case = _approved(tenant, integration)
    messages = _messages()
    kinds = [m.action["kind"] for m in messages]
    assert kinds[-3:] == ["note", "tags", "status"]
    assert messages[-2].action["add_tags"] == ["rma-approved"] and messages[-1].action["status"] == "pending"
    assert all(m.status == "pending" and m.ordering_key == f"{integration.id}:4242" for m in messages)
    assert all(m.case_id == case.id for m in messages)
    assert len({m.idempotency_key for m in messages}) == len(messages)
    note = messages[-3].action["body_text"]
    assert note.startswith(f"{case.number} approved")


def test_a_refused_action_or_a_rolled_back_transaction_enqueues_nothing(setup) -> None:
    tenant, integration = setup
    case = _approved(tenant, integration)
    before = len(_messages())
    with pytest.raises(InvalidTransitionError):
        perform_action(tenant, case.number, Action.APPROVE, ApproveIn(), AGENT)  # already authorized
    db.session.rollback()
    assert len(_messages()) == before
    perform_action(tenant, case.number, Action.CANCEL, ReasonOptionalIn(reason="Changed mind"), AGENT, commit=False)
    assert len(_messages()) == before + 1  # visible inside the transaction…
    db.session.rollback()
    assert len(_messages()) == before  # …and gone with it


def test_a_case_without_a_ticket_enqueues_nothing(setup) -> None:
    tenant, _ = setup
    create_case(tenant, CaseCreate.model_validate(case_payload()), AGENT)
    assert _messages() == []


def test_enqueue_never_commits(setup) -> None:
    tenant, integration = setup
    outbox.enqueue(tenant_id=tenant.id, integration_id=integration.id,
                   action=OutboundAction(kind="note", ticket_id="1", idempotency_key="k", body_text="x"))
    db.session.rollback()
    assert _messages() == []


def test_dispatch_delivers_in_order_and_records_attempts(setup, helpdesk: FakeHelpdesk) -> None:
    tenant, integration = setup
    _approved(tenant, integration)
    messages = _messages()
    _drain_now()
    assert helpdesk.delivered_keys() == [m.idempotency_key for m in messages]
    assert {m.status for m in _messages()} == {"delivered"}
    assert all(m.delivered_at is not None and m.attempts == 1 for m in _messages())
    attempts = db.session.scalars(sa.select(DeliveryAttempt)).all()
    assert len(attempts) == len(messages) and {a.outcome for a in attempts} == {"delivered"}
    assert all(a.status_code == 200 and a.latency_ms >= 0 for a in attempts)


def test_a_500_then_recovery_delivers_each_message_once_in_order(setup, helpdesk: FakeHelpdesk) -> None:
    tenant, integration = setup
    _approved(tenant, integration)
    messages = _messages()
    helpdesk.fail_next(500, 503)
    assert dispatcher.dispatch_due() == 1  # only the head of the ticket's line is claimed
    first = _messages()[0]
    assert first.status == "pending" and first.attempts == 1 and first.last_status_code == 500
    assert first.next_attempt_at > utcnow()
    assert dispatcher.dispatch_due() == 0  # not due yet, and it blocks the rest of the ticket
    _drain_now()
    keys = helpdesk.delivered_keys()
    assert keys == [m.idempotency_key for m in messages]
    assert len(keys) == len(set(keys))
    assert _messages()[0].attempts == 3


def test_429_retry_after_is_honoured(setup, helpdesk: FakeHelpdesk) -> None:
    tenant, integration = setup
    _open(tenant, integration)
    helpdesk.fail_next((429, {"Retry-After": "2"}))
    started = utcnow()
    dispatcher.dispatch_due()
    message = _messages()[0]
    assert message.status == "pending" and message.last_status_code == 429
    assert message.next_attempt_at >= started + timedelta(seconds=2)
    assert dispatcher.dispatch_due() == 0
    assert dispatcher.dispatch_due(now=started + timedelta(seconds=1)) == 0
    time.sleep(max(0.0, (message.next_attempt_at - utcnow()).total_seconds()) + 0.05)
    assert dispatcher.dispatch_due() >= 1
    assert _messages()[0].status == "delivered"


def test_a_permanent_400_goes_dead_and_can_be_replayed_or_discarded(setup, helpdesk: FakeHelpdesk) -> None:
    tenant, integration = setup
    _open(tenant, integration)
    helpdesk.fail_next(400)
    dispatcher.dispatch_due()
    dead = _messages()[0]
    assert dead.status == "dead" and dead.attempts == 1 and dead.last_status_code == 400
    _drain_now()  # a dead message no longer holds up the ticket
    assert all(m.status == "delivered" for m in _messages()[1:])
    outbox.replay(tenant.id, dead.id)
    _drain_now()
    assert _messages()[0].status == "delivered"


def test_attempts_run_out_and_the_message_dies(setup, helpdesk: FakeHelpdesk, app_ctx: Flask) -> None:
    tenant, integration = setup
    _open(tenant, integration)
    app_ctx.config["REBOUND_OUTBOX_MAX_ATTEMPTS"] = 3
    try:
        helpdesk.fail_next(500, 500, 500)
        for _ in range(3):
            _messages()[0].next_attempt_at = utcnow()
            db.session.commit()
            dispatcher.dispatch_due(limit=1)
    finally:
        app_ctx.config["REBOUND_OUTBOX_MAX_ATTEMPTS"] = 10
    assert _messages()[0].status == "dead" and _messages()[0].attempts == 3


def test_an_expired_lease_is_claimed_again(setup, helpdesk: FakeHelpdesk) -> None:
    tenant, integration = setup
    _open(tenant, integration)
    claimed = dispatcher.claim(10)  # the worker dies right after its claim
    assert len(claimed) == 1
    assert dispatcher.claim(10) == []  # leased: nobody else takes it, nor the messages behind it
    later = utcnow() + dispatcher.LEASE + timedelta(seconds=1)
    again = dispatcher.claim(10, now=later)
    assert [c.message_id for c in again] == [claimed[0].message_id]
    assert _messages()[0].attempts == 2


@pytest.mark.skipif(database_kind() != "postgresql", reason="concurrent claims need PostgreSQL")
def test_two_dispatchers_deliver_every_message_exactly_once(app: Flask, setup, helpdesk: FakeHelpdesk) -> None:
    tenant, integration = setup
    for ticket in range(10):
        upsert_order(tenant, OrderUpsert.model_validate(order_payload(str(2000 + ticket))))
        _open(tenant, integration, ticket=str(5000 + ticket), order=str(2000 + ticket))
    expected = {m.idempotency_key: m.ordering_key for m in _messages()}
    db.session.remove()

    def work() -> None:
        with app.app_context():
            idle = 0
            while idle < 3:
                idle = 0 if dispatcher.dispatch_due(limit=3) else idle + 1
            db.session.remove()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    keys = helpdesk.delivered_keys()
    assert sorted(keys) == sorted(expected)
    for ordering_key in set(expected.values()):  # and in order per ticket
        mine = [k for k in keys if expected[k] == ordering_key]
        assert mine == [k for k in expected if expected[k] == ordering_key]
    assert {m.status for m in _messages()} == {"delivered"}


def test_dead_letters_through_the_api_and_the_cli(app: Flask, api, helpdesk: FakeHelpdesk) -> None:
    from app.tenants.models import Tenant

    with app.app_context():
        tenant = db.session.scalar(sa.select(Tenant).where(Tenant.slug == "acme"))
        upsert_order(tenant, OrderUpsert.model_validate(order_payload()))
        integration = connect(tenant, IntegrationCreate(
            kind="zendesk", name="Support", credentials={"api_email": "agent@example.com", "api_token": "t0ken-for-tests"},
            settings=IntegrationSettings(base_url=helpdesk.url),
        )).integration
        _open(tenant, integration)
        total = len(_messages())
        helpdesk.fail_next(400, 422)
        dispatcher.dispatch_due(limit=1)
        dispatcher.dispatch_due(limit=1)
        db.session.remove()

    dead = api.get("/outbox?status=dead").get_json()["items"]
    assert len(dead) == 2 and {m["last_status_code"] for m in dead} == {400, 422}
    assert api.get("/outbox").status_code == 200 and len(api.get("/outbox").get_json()["items"]) == total
    first, second = sorted(m["id"] for m in dead)
    replayed = api.post(f"/outbox/{first}/replay")
    assert replayed.status_code == 200 and replayed.get_json()["status"] == "pending"
    assert api.post(f"/outbox/{first}/replay").status_code == 409  # no longer dead
    assert api.post("/outbox/999999/discard").status_code == 404
    assert api.post("/outbox/abc/discard").status_code == 404

    runner = app.test_cli_runner()
    listed = runner.invoke(args=["outbox", "dead", "acme"])
    assert listed.exit_code == 0
    assert [line.split("\t")[0] for line in listed.output.splitlines()] == [str(second)]
    assert runner.invoke(args=["outbox", "discard", "acme", str(second)]).exit_code == 0
    assert runner.invoke(args=["outbox", "replay", "acme", str(second)]).exit_code != 0  # discarded, not dead
    drained = runner.invoke(args=["outbox", "drain"])
    assert drained.exit_code == 0, drained.output
    statuses = {m["id"]: m["status"] for m in api.get("/outbox").get_json()["items"]}
    assert statuses[first] == "delivered" and statuses[second] == "discarded"
    assert set(statuses.values()) <= {"delivered", "discarded"}


def test_an_integration_without_write_back_gets_no_messages(setup) -> None:
    tenant, integration = setup
    integration.settings = {}
    db.session.commit()
    _approved(tenant, integration)
    assert _messages() == []
