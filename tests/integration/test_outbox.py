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
from pydantic import ValidationError

from app.connectors.schemas import IntegrationCreate, IntegrationSettings
from app.connectors.services import connect
from app.errors import InvalidTransitionError
from app.extensions import db, utcnow
from app.orders.schemas import OrderUpsert
from app.orders.services import upsert_order
from app.outbound import dispatcher, outbox
from app.outbound.models import DeliveryAttempt, DeliveryThrottle, OutboxMessage
from app.tenants.services import create_tenant
from integrations.base import TRACE_IDEMPOTENCY_HEADER, OutboundAction, RateLimit
from tests.conftest import database_kind
from tests.factories import case_payload, order_payload

AGENT = Actor(type="agent", id="agent-7", channel="sidebar")


class FakeHelpdesk:
    """Answers every write with the next scripted status (default 200) and logs what it got."""

    def __init__(self, server: HTTPServer):
        self.server = server
        self.script: list[tuple[int, dict[str, str]]] = []
        self.received: list[tuple[str, str, int]] = []  # (idempotency key, path, status answered)
        self.times: list[float] = []  # time.monotonic() of each request, beside ``received``
        self.lock = threading.Lock()
        server.expect_request(__import__("re").compile(".*")).respond_with_handler(self.handle)

    def fail_next(self, *statuses: int | tuple[int, dict[str, str]]) -> None:
        self.script.extend(s if isinstance(s, tuple) else (s, {}) for s in statuses)

    def handle(self, request: Request) -> Response:
        with self.lock:
            status, headers = self.script.pop(0) if self.script else (200, {})
            self.received.append((request.headers.get(TRACE_IDEMPOTENCY_HEADER, ""), request.path, status))
            self.times.append(time.monotonic())
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
    assert kinds[-4:] == ["note", "reply", "tags", "status"]  # the defaults (app/outbound/outbox.py)
    assert messages[-2].action["add_tags"] == ["rma-approved"] and messages[-1].action["status"] == "pending"
    assert all(m.status == "pending" and m.ordering_key == f"{integration.id}:4242" for m in messages)
    assert all(m.case_id == case.id for m in messages)
    assert len({m.idempotency_key for m in messages}) == len(messages)
    note = messages[-4].action["body_text"]
    assert note.startswith(f"{case.number} approved")
    assert case.number in messages[-3].action["body_text"]


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
    later = utcnow() + dispatcher.lease() + timedelta(seconds=1)
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
    inspected = api.get(f"/outbox/{second}").get_json()
    assert inspected["status"] == "dead" and inspected["action"]["kind"] == inspected["kind"]
    assert [(a["outcome"], a["status_code"]) for a in inspected["delivery_attempts"]] == [("permanent", 422)]
    assert inspected["delivery_attempts"][0]["error"] and inspected["delivery_attempts"][0]["latency_ms"] >= 0
    assert api.get("/outbox/999999").status_code == 404 and api.get("/outbox/x1").status_code == 404
    replayed = api.post(f"/outbox/{first}/replay")
    assert replayed.status_code == 200 and replayed.get_json()["status"] == "pending"
    assert api.post(f"/outbox/{first}/replay").status_code == 409  # no longer dead
    assert api.post("/outbox/999999/discard").status_code == 404
    assert api.post("/outbox/abc/discard").status_code == 404

    runner = app.test_cli_runner()
    listed = runner.invoke(args=["outbox", "dead", "acme"])
    assert listed.exit_code == 0
    assert [line.split("\t")[0] for line in listed.output.splitlines()] == [str(second)]
    shown = runner.invoke(args=["outbox", "show", "acme", str(second)])
    assert shown.exit_code == 0 and "permanent\t422" in shown.output and f"Message {second} (dead" in shown.output
    assert runner.invoke(args=["outbox", "show", "acme", "999999"]).exit_code != 0
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


# ---- pacing: one shared rate window per integration, Retry-After blocks the integration ---------

def _limit(integration, requests: int, per_seconds: float) -> None:
    integration.settings = {**integration.settings, "rate_limit": {"requests": requests, "per_seconds": per_seconds}}
    db.session.commit()


def _notes(tenant, integration, count: int, first_ticket: int = 100) -> list[str]:
    """``count`` notes, each on its own ticket (so all are heads of their line); their keys."""
    keys = []
    for n in range(count):
        key = f"pace-{first_ticket + n}"
        outbox.enqueue(tenant_id=tenant.id, integration_id=integration.id, action=OutboundAction(
            kind="note", ticket_id=str(first_ticket + n), idempotency_key=key, body_text=f"Note {n}"))
        keys.append(key)
    db.session.commit()
    return keys


def test_the_integration_setting_overrides_the_clients_documented_limit(setup) -> None:
    _, integration = setup
    assert dispatcher.rate_limit_for(integration) == RateLimit(100, 60.0)  # Zendesk's documented default
    _limit(integration, 1000, 10)
    assert dispatcher.rate_limit_for(integration) == RateLimit(1000, 10.0)
    integration.settings = {**integration.settings, "rate_limit": {"requests": "lots"}}  # a hand-edited row
    assert dispatcher.rate_limit_for(integration) == RateLimit(100, 60.0)


@pytest.mark.parametrize("value", [
    {"requests": 0, "per_seconds": 60}, {"requests": 10, "per_seconds": 0}, {"requests": -5, "per_seconds": 60},
    {"requests": 10}, {"requests": 10, "per_seconds": 60, "burst": 5}, {"requests": "many", "per_seconds": 60},
    {"requests": 10**9, "per_seconds": 60}, {"requests": 10, "per_seconds": 10**9}, "100/min", [100, 60],
])
def test_a_malformed_rate_limit_setting_is_refused(value) -> None:
    with pytest.raises(ValidationError):
        IntegrationSettings.model_validate({"rate_limit": value})


def test_the_rate_limit_setting_is_validated_through_the_api(api, helpdesk: FakeHelpdesk) -> None:
    created = api.post("/integrations", json={"kind": "zendesk", "name": "Support",
                                               "settings": {"base_url": helpdesk.url}})
    assert created.status_code == 201, created.get_json()
    path = f"/integrations/{created.get_json()['id']}/settings"
    refused = api.put(path, json={"base_url": helpdesk.url, "rate_limit": {"requests": 0, "per_seconds": 60}})
    assert refused.status_code == 422 and "rate_limit" in str(refused.get_json()["error"]["details"])
    accepted = api.put(path, json={"base_url": helpdesk.url, "rate_limit": {"requests": 400, "per_seconds": 60}})
    assert accepted.status_code == 200, accepted.get_json()


def test_a_claim_takes_only_what_the_window_has_left(setup, helpdesk: FakeHelpdesk) -> None:
    """Limit 3 per minute, 5 messages: 3 go now, 2 wait (no attempt counted) for the next window."""
    tenant, integration = setup
    _limit(integration, 3, 60)
    keys = _notes(tenant, integration, 5)
    assert dispatcher.dispatch_due() == 3
    assert dispatcher.dispatch_due() == 0  # the window is spent, for every worker
    assert helpdesk.delivered_keys() == keys[:3]
    waiting = [m for m in _messages() if m.status == "pending"]
    assert [m.idempotency_key for m in waiting] == keys[3:] and all(m.attempts == 0 for m in waiting)
    throttle = db.session.get(DeliveryThrottle, f"integration:{integration.id}")
    assert throttle.sent_in_window == 3
    assert dispatcher.dispatch_due(now=utcnow() + timedelta(seconds=59)) == 0
    assert dispatcher.dispatch_due(now=utcnow() + timedelta(seconds=61)) == 2  # a new window
    assert helpdesk.delivered_keys() == keys
    assert {m.status for m in _messages()} == {"delivered"}


def test_another_integrations_window_is_its_own(setup, helpdesk: FakeHelpdesk) -> None:
    tenant, integration = setup
    _limit(integration, 1, 60)
    other = connect(tenant, IntegrationCreate(
        kind="zendesk", name="Second desk", credentials={"api_email": "a@example.com", "api_token": "t0ken-for-tests"},
        settings=IntegrationSettings(base_url=helpdesk.url),
    )).integration
    _notes(tenant, integration, 3)
    _notes(tenant, other, 3, first_ticket=200)
    assert dispatcher.dispatch_due() == 4  # 1 of the first (spent), all 3 of the second
    assert sorted(helpdesk.delivered_keys()) == ["pace-100", "pace-200", "pace-201", "pace-202"]


def test_a_tag_update_that_adds_and_removes_counts_two_requests(setup, helpdesk: FakeHelpdesk) -> None:
    tenant, integration = setup
    _limit(integration, 3, 60)
    outbox.enqueue(tenant_id=tenant.id, integration_id=integration.id, action=OutboundAction(
        kind="tags", ticket_id="99", idempotency_key="tags-1", add_tags=("rma",), remove_tags=("new",)))
    db.session.commit()
    _notes(tenant, integration, 2)
    assert dispatcher.dispatch_due() == 2  # the tags (2 requests) and one note (1): the window's 3
    assert len(helpdesk.received) == 3
    assert db.session.get(DeliveryThrottle, f"integration:{integration.id}").sent_in_window == 3


def test_requests_beyond_the_estimate_are_charged_when_recorded(setup, helpdesk: FakeHelpdesk, monkeypatch) -> None:
    """A delivery that made more requests than its claim reserved spends the rest of the window."""
    tenant, integration = setup
    _limit(integration, 5, 60)
    _notes(tenant, integration, 1)
    real = dispatcher.deliver

    def costly(claimed, session):
        result = real(claimed, session)
        return dispatcher.DeliveryResult(result.outcome, result.status_code, result.latency_ms, requests_made=4)

    monkeypatch.setattr(dispatcher, "deliver", costly)
    assert dispatcher.dispatch_due() == 1
    assert db.session.get(DeliveryThrottle, f"integration:{integration.id}",
                          populate_existing=True).sent_in_window == 4


def test_pacing_holds_in_real_time(setup, helpdesk: FakeHelpdesk) -> None:
    """2 requests per second, 5 messages: no 1-second span sees more than 2 requests."""
    tenant, integration = setup
    _limit(integration, 2, 1)
    keys = _notes(tenant, integration, 5)
    deadline = time.monotonic() + 10
    while len(helpdesk.delivered_keys()) < len(keys) and time.monotonic() < deadline:
        dispatcher.dispatch_due()
        time.sleep(0.02)
    assert sorted(helpdesk.delivered_keys()) == keys
    times = helpdesk.times
    assert all(times[i + 2] - times[i] >= 0.9 for i in range(len(times) - 2)), times
    assert times[-1] - times[0] >= 1.9  # three windows were needed


def test_429_retry_after_blocks_the_whole_integration(setup, helpdesk: FakeHelpdesk) -> None:
    """Two tickets: the first gets 429 with Retry-After: 2; no request goes to either before 2 s."""
    tenant, integration = setup
    keys = _notes(tenant, integration, 2)
    helpdesk.fail_next((429, {"Retry-After": "2"}))
    assert dispatcher.dispatch_due() == 1  # the second ticket's message is held back, not attempted
    refused_at = helpdesk.times[0]
    second = _messages()[1]
    assert second.status == "pending" and second.attempts == 0
    throttle = db.session.get(DeliveryThrottle, f"integration:{integration.id}", populate_existing=True)
    assert throttle.blocked_until >= utcnow() + timedelta(seconds=1.5)
    deadline = time.monotonic() + 10
    while len(helpdesk.delivered_keys()) < 2 and time.monotonic() < deadline:
        _drain_now()  # even a message whose own retry is due waits for the integration
        time.sleep(0.05)
    assert sorted(helpdesk.delivered_keys()) == keys
    assert len(helpdesk.times) == 3
    assert all(t - refused_at >= 1.95 for t in helpdesk.times[1:]), helpdesk.times


def test_a_block_set_by_one_worker_is_honoured_by_another(setup, helpdesk: FakeHelpdesk) -> None:
    tenant, integration = setup
    _notes(tenant, integration, 1)
    db.session.add(DeliveryThrottle(destination=f"integration:{integration.id}", window_started_at=utcnow(),
                                    sent_in_window=0, blocked_until=utcnow() + timedelta(seconds=30)))
    db.session.commit()
    assert dispatcher.dispatch_due() == 0 and helpdesk.received == []
    assert dispatcher.dispatch_due(now=utcnow() + timedelta(seconds=31)) == 1


def test_a_lease_comes_from_the_configuration(app_ctx: Flask) -> None:
    app_ctx.config["REBOUND_OUTBOX_LEASE_SECONDS"] = 5
    try:
        assert dispatcher.lease() == timedelta(seconds=5)
    finally:
        app_ctx.config["REBOUND_OUTBOX_LEASE_SECONDS"] = 60


def test_the_worker_job_works_off_a_backlog_beyond_one_batch(setup, helpdesk) -> None:
    """One tick of the dispatch job delivers more than one claim batch (it loops while work is due)."""
    from app.jobs import dispatch_outbox

    tenant, integration = setup
    integration.settings = {**integration.settings, "rate_limit": {"requests": 10_000, "per_seconds": 60}}
    db.session.commit()
    for n in range(30):  # 30 tickets × their pushes: well over the 50 a claim takes
        upsert_order(tenant, OrderUpsert.model_validate(order_payload(f"20{n:02d}")))
        case = _open(tenant, integration, ticket=f"9{n:03d}", order=f"20{n:02d}")
        if case.status != "authorized":
            perform_action(tenant, case.number, Action.APPROVE, ApproveIn(), AGENT)
    pending = [m for m in _messages() if m.status == "pending"]
    assert len(pending) > 50
    assert dispatch_outbox() >= len(pending)
    assert {(m.status, m.last_error) for m in _messages()} == {("delivered", None)}
