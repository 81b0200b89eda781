"""Case events to the merchant's webhook subscriptions: queued in the service's transaction,
filtered, signed the Standard Webhooks way, delivered in order per case, retried, dead-lettered.

A merchant endpoint (pytest-httpserver on loopback) answers with scripted statuses and logs
every request, so the tests can verify signatures, order and exactly-once.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from pytest_httpserver import HTTPServer
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from werkzeug import Request, Response

from app.cases.schemas import ApproveIn, CaseCreate, IssueLabelIn, ReasonOptionalIn, ReasonRequiredIn
from app.cases.services import Actor, create_case, perform_action
from app.cases.states import Action
from app.connectors.schemas import IntegrationCreate, IntegrationSettings
from app.connectors.services import connect
from app.errors import InvalidTransitionError
from app.extensions import db, utcnow
from app.orders.schemas import OrderUpsert
from app.orders.services import upsert_order
from app.outbound import dispatcher, events, outbox
from app.outbound.event_schemas import SubscriptionCreate, SubscriptionFilters, SubscriptionUpdate
from app.outbound.models import DeliveryAttempt, OutboxMessage, WebhookSubscription
from app.tenants.services import create_tenant
from tests.factories import case_payload, order_payload

AGENT = Actor(type="agent", id="agent-7", channel="sidebar")


class Endpoint:
    """The merchant's receiver: answers the next scripted status (default 200) and logs each call."""

    def __init__(self, server: HTTPServer):
        self.server = server
        self.script: list[tuple[int, dict[str, str]]] = []
        self.received: list[tuple[dict[str, str], bytes, int]] = []
        self.lock = threading.Lock()
        server.expect_request("/hooks", method="POST").respond_with_handler(self.handle)

    def fail_next(self, *statuses: int | tuple[int, dict[str, str]]) -> None:
        self.script.extend(s if isinstance(s, tuple) else (s, {}) for s in statuses)

    def handle(self, request: Request) -> Response:
        with self.lock:
            status, headers = self.script.pop(0) if self.script else (200, {})
            self.received.append((dict(request.headers), request.get_data(), status))
        return Response("gone" if status == 410 else "", status=status, headers=headers)

    def delivered(self) -> list[tuple[dict[str, str], bytes]]:
        return [(headers, body) for headers, body, status in self.received if status == 200]

    def delivered_ids(self) -> list[str]:
        return [headers["Webhook-Id"] for headers, _ in self.delivered()]

    @property
    def url(self) -> str:
        return self.server.url_for("/hooks")


@pytest.fixture()
def endpoint(httpserver: HTTPServer) -> Endpoint:
    return Endpoint(httpserver)


@pytest.fixture()
def tenant(app_ctx: Flask):
    tenant = create_tenant("Hooks", slug="hooks").token.tenant
    upsert_order(tenant, OrderUpsert.model_validate(order_payload()))
    upsert_order(tenant, OrderUpsert.model_validate(order_payload("1002", email="sam@example.com")))
    return tenant


def _subscribe(tenant, url: str, **fields: Any) -> events.SubscriptionWithSecret:
    return events.create_subscription(tenant, SubscriptionCreate(url=url, **fields))


def _open(tenant, order: str = "1001", **overrides: Any):
    return create_case(tenant, CaseCreate.model_validate(case_payload(order, **overrides)), AGENT)


def _messages(subscription_id: int | None = None) -> list[OutboxMessage]:
    db.session.expire_all()
    query = sa.select(OutboxMessage).order_by(OutboxMessage.id)
    if subscription_id is not None:
        query = query.where(OutboxMessage.subscription_id == subscription_id)
    return list(db.session.scalars(query))


def _types(messages: list[OutboxMessage]) -> list[str]:
    return [m.action["event_type"] for m in messages]


def _drain_now() -> None:
    """Dispatch until nothing is due, pretending each retry's wait has passed."""
    for _ in range(50):
        for message in _messages():
            if message.status == "pending":
                message.next_attempt_at = utcnow()
        db.session.commit()
        if not dispatcher.dispatch_due():
            return


# ---- enqueueing ---------------------------------------------------------------------------

def test_opening_a_case_queues_its_events_with_a_case_summary(tenant, endpoint: Endpoint) -> None:
    sub = _subscribe(tenant, endpoint.url).subscription
    case = _open(tenant)
    messages = _messages()
    assert _types(messages)[0] == "case.created"
    decided = "case.approved" if case.status == "authorized" else "case.flagged"
    assert _types(messages) == ["case.created", decided, "case.status_changed"]
    assert all(m.subscription_id == sub.id and m.integration_id is None and m.case_id == case.id for m in messages)
    assert all(m.ordering_key == f"subscription:{sub.id}:{case.id}" and m.status == "pending" for m in messages)
    assert all(m.idempotency_key.startswith("msg_") for m in messages)
    assert len({m.idempotency_key for m in messages}) == 3

    created = messages[0].action["payload"]
    assert created["type"] == "case.created" and created["timestamp"].endswith("Z")
    data = created["data"]
    assert data["number"] == case.number and data["status"] == "requested" and data["previous_status"] is None
    assert data["channel"] == "api" and data["type"] == "return"
    assert data["customer"]["email"] == "maria.lopez@example.com"
    assert [(line["sku"], line["qty_requested"]) for line in data["lines"]] == [("TENT-2P", 1)]
    assert data["policy"]["outcome"] in {"approve", "review", "reject"} and data["policy"]["summary"]
    assert data["ticket"] is None
    assert data["event"]["action"] == "create" and data["event"]["actor"] == {"type": "agent", "id": "agent-7"}
    changed = messages[2].action["payload"]["data"]
    assert (changed["previous_status"], changed["status"]) == ("requested", case.status)


def test_the_webhook_id_is_derived_from_subscription_and_event(tenant, endpoint: Endpoint) -> None:
    sub = _subscribe(tenant, endpoint.url).subscription
    _open(tenant)
    first = _messages()[0]
    event_id = first.action["payload"]["data"]["event"]["id"]
    assert first.idempotency_key == events.message_id(sub, event_id, "case.created")
    assert first.idempotency_key != events.message_id(sub, event_id, "case.status_changed")
    # A subscription with the same id in another (or a restored) database gets other ids.
    twin = WebhookSubscription(id=sub.id, created_at=sub.created_at + timedelta(microseconds=1))
    assert events.message_id(twin, event_id, "case.created") != first.idempotency_key


def test_a_rolled_back_action_queues_nothing(tenant, endpoint: Endpoint) -> None:
    _subscribe(tenant, endpoint.url)
    case = _open(tenant)
    before = len(_messages())
    perform_action(tenant, case.number, Action.CANCEL, ReasonOptionalIn(reason="Changed mind"), AGENT, commit=False)
    assert len(_messages()) == before + 2  # case.cancelled and case.status_changed, inside the transaction…
    db.session.rollback()
    assert len(_messages()) == before  # …and gone with it


def test_a_refused_action_queues_nothing(tenant, endpoint: Endpoint) -> None:
    _subscribe(tenant, endpoint.url)
    case = _open(tenant)
    before = len(_messages())
    with pytest.raises(InvalidTransitionError):
        perform_action(tenant, case.number, Action.SETTLE, ReasonOptionalIn(), AGENT)
    db.session.rollback()
    assert len(_messages()) == before


def test_without_subscriptions_nothing_is_queued(tenant) -> None:
    _open(tenant)
    assert _messages() == []


def test_event_types_filter(tenant, endpoint: Endpoint) -> None:
    only_cancel = _subscribe(tenant, endpoint.url, event_types=["case.cancelled", "case.created"]).subscription
    case = _open(tenant)
    perform_action(tenant, case.number, Action.CANCEL, ReasonOptionalIn(), AGENT)
    assert _types(_messages(only_cancel.id)) == ["case.created", "case.cancelled"]


def test_status_channel_and_type_filters(tenant, endpoint: Endpoint) -> None:
    cancelled = _subscribe(tenant, endpoint.url, filters=SubscriptionFilters(statuses=["cancelled"])).subscription
    by_email = _subscribe(tenant, endpoint.url, filters=SubscriptionFilters(channels=["email"])).subscription
    warranty = _subscribe(tenant, endpoint.url, filters=SubscriptionFilters(types=["warranty"])).subscription
    case = _open(tenant)
    perform_action(tenant, case.number, Action.CANCEL, ReasonOptionalIn(), AGENT)
    assert _types(_messages(cancelled.id)) == ["case.cancelled", "case.status_changed"]
    assert all(m.action["payload"]["data"]["status"] == "cancelled" for m in _messages(cancelled.id))
    assert _messages(by_email.id) == [] and _messages(warranty.id) == []
    _open(tenant, "1002", channel="email", type="warranty")
    assert _types(_messages(by_email.id))[0] == "case.created"
    assert _types(_messages(warranty.id)) == _types(_messages(by_email.id))


def test_a_disabled_subscription_gets_no_new_events(tenant, endpoint: Endpoint) -> None:
    sub = _subscribe(tenant, endpoint.url, enabled=False).subscription
    assert sub.disabled_at is not None
    _open(tenant)
    assert _messages() == []


def test_events_of_another_tenant_are_not_sent(tenant, endpoint: Endpoint) -> None:
    other = create_tenant("Other", slug="other").token.tenant
    _subscribe(other, endpoint.url)
    _open(tenant)
    assert _messages() == []


def test_a_ticket_linked_case_queues_ticket_updates_and_events(tenant, endpoint: Endpoint) -> None:
    sub = _subscribe(tenant, endpoint.url).subscription
    integration = connect(tenant, IntegrationCreate(
        kind="zendesk", name="Support", credentials={"api_email": "a@example.com", "api_token": "t0ken-for-tests"},
        settings=IntegrationSettings(base_url="https://acme.zendesk.example"),
    )).integration
    data = CaseCreate.model_validate(case_payload(ticket={"provider": "zendesk", "id": "77",
                                                          "url": "https://acme.zendesk.example/agent/tickets/77"}))
    case = create_case(tenant, data, AGENT, integration_id=integration.id)
    messages = _messages()
    assert {m.integration_id for m in messages if m.subscription_id is None} == {integration.id}
    hooks = _messages(sub.id)
    assert hooks and hooks[0].action["payload"]["data"]["ticket"] == {
        "provider": "zendesk", "id": "77", "url": "https://acme.zendesk.example/agent/tickets/77"}
    assert all(m.case_id == case.id for m in messages)


# ---- delivery -------------------------------------------------------------------------------

def test_deliveries_are_signed_and_verify_with_the_subscription_secret(tenant, endpoint: Endpoint) -> None:
    created = _subscribe(tenant, endpoint.url)
    _open(tenant)
    messages = _messages()
    _drain_now()
    assert endpoint.delivered_ids() == [m.idempotency_key for m in messages]
    for (headers, body), message in zip(endpoint.delivered(), messages):
        payload = Webhook(created.secret).verify(body, headers)
        assert payload == message.action["payload"]
        assert headers["Content-Type"] == "application/json"
    assert {m.status for m in _messages()} == {"delivered"}
    attempts = db.session.scalars(sa.select(DeliveryAttempt)).all()
    assert len(attempts) == len(messages) and {a.status_code for a in attempts} == {200}


def test_a_wrong_secret_does_not_verify(tenant, endpoint: Endpoint) -> None:
    _subscribe(tenant, endpoint.url)
    _open(tenant)
    _drain_now()
    headers, body = endpoint.delivered()[0]
    with pytest.raises(WebhookVerificationError):
        Webhook(events.generate_secret()).verify(body, headers)


def test_events_of_one_case_arrive_in_order_even_after_a_500(tenant, endpoint: Endpoint) -> None:
    _subscribe(tenant, endpoint.url)
    first = _open(tenant)
    perform_action(tenant, first.number, Action.HOLD, ReasonRequiredIn(reason="Fraud check"), AGENT)
    perform_action(tenant, first.number, Action.RELEASE, ReasonOptionalIn(), AGENT)
    second = _open(tenant, "1002")
    messages = _messages()
    endpoint.fail_next(500, 503)
    _drain_now()
    ids = endpoint.delivered_ids()
    assert sorted(ids) == sorted(m.idempotency_key for m in messages) and len(ids) == len(set(ids))
    everything = [headers["Webhook-Id"] for headers, _, _ in endpoint.received]  # failed tries included
    for case in (first, second):
        expected = [m.idempotency_key for m in messages if m.case_id == case.id]
        assert [i for i in ids if i in expected] == expected
        tries = [i for i in everything if i in expected]
        # A refused event is tried again before anything after it: nothing overtakes it.
        assert [i for n, i in enumerate(tries) if n == 0 or tries[n - 1] != i] == expected
    assert len(everything) == len(messages) + 2
    assert {m.status for m in _messages()} == {"delivered"}
    assert sum(m.attempts for m in _messages()) == len(messages) + 2


def test_the_webhook_id_and_body_are_the_same_on_every_retry(tenant, endpoint: Endpoint) -> None:
    created = _subscribe(tenant, endpoint.url)
    _open(tenant)
    endpoint.fail_next(502)
    _drain_now()
    (failed_headers, failed_body, _), (ok_headers, ok_body, _) = endpoint.received[:2]
    assert failed_headers["Webhook-Id"] == ok_headers["Webhook-Id"] and failed_body == ok_body
    Webhook(created.secret).verify(ok_body, ok_headers)


@pytest.mark.parametrize("status", [410, 400])
def test_a_permanent_answer_goes_dead_without_blocking_the_case(tenant, endpoint: Endpoint, status: int) -> None:
    sub = _subscribe(tenant, endpoint.url).subscription
    _open(tenant)
    endpoint.fail_next(status)
    _drain_now()
    head, *rest = _messages()
    assert head.status == "dead" and head.attempts == 1 and head.last_status_code == status
    assert head.last_error.startswith(f"HTTP {status}")
    assert {m.status for m in rest} == {"delivered"}
    assert [m.id for m in events.list_deliveries(tenant.id, sub.id, status="dead")] == [head.id]
    outbox.replay(tenant.id, head.id)
    _drain_now()
    assert _messages()[0].status == "delivered"


def test_pending_events_of_a_disabled_subscription_go_dead_with_the_reason(tenant, endpoint: Endpoint) -> None:
    sub = _subscribe(tenant, endpoint.url).subscription
    _open(tenant)
    events.update_subscription(tenant, sub.id, SubscriptionUpdate(enabled=False))
    _drain_now()
    assert endpoint.received == []
    messages = _messages()
    assert {m.status for m in messages} == {"dead"}
    assert all("disabled" in m.last_error for m in messages)
    events.update_subscription(tenant, sub.id, SubscriptionUpdate(enabled=True))
    for message in messages:
        outbox.replay(tenant.id, message.id)
    _drain_now()
    assert len(endpoint.delivered()) == len(messages)


def test_deleting_a_subscription_drops_its_queued_events(tenant, endpoint: Endpoint) -> None:
    sub = _subscribe(tenant, endpoint.url).subscription
    keep = _subscribe(tenant, endpoint.url, event_types=["case.created"]).subscription
    _open(tenant)
    _drain_now()  # some history too
    _open(tenant, "1002")
    events.delete_subscription(tenant, sub.id)
    assert {m.subscription_id for m in _messages()} == {keep.id}
    assert all(db.session.get(OutboxMessage, a.message_id) for a in db.session.scalars(sa.select(DeliveryAttempt)))


def test_a_url_that_now_resolves_privately_is_refused_at_delivery(app: Flask, tenant, endpoint: Endpoint) -> None:
    _subscribe(tenant, endpoint.url)
    _open(tenant)
    app.config["REBOUND_ALLOW_PRIVATE_URLS"] = False
    try:
        _drain_now()
    finally:
        app.config["REBOUND_ALLOW_PRIVATE_URLS"] = True
    assert endpoint.received == []
    assert all(m.status == "dead" and "private" in m.last_error for m in _messages())


def test_after_a_rotation_both_secrets_verify_during_the_grace_period(tenant, endpoint: Endpoint) -> None:
    created = _subscribe(tenant, endpoint.url)
    rotated = events.rotate_secret(tenant, created.subscription.id, grace_seconds=3600)
    assert rotated.secret != created.secret and rotated.secret.startswith("whsec_")
    _open(tenant)
    _drain_now()
    headers, body = endpoint.delivered()[0]
    Webhook(rotated.secret).verify(body, headers)
    Webhook(created.secret).verify(body, headers)
    no_grace = events.rotate_secret(tenant, created.subscription.id, grace_seconds=0)
    assert events.signing_secrets(db.session.get(WebhookSubscription, created.subscription.id)) == [
        no_grace.secret]


def test_a_ping_is_delivered_whatever_the_filters(tenant, endpoint: Endpoint) -> None:
    created = _subscribe(tenant, endpoint.url, event_types=["case.closed"])
    message = events.send_ping(tenant, created.subscription.id)
    assert message.action["event_type"] == "ping" and message.case_id is None
    _drain_now()
    (headers, body), = endpoint.delivered()
    payload = Webhook(created.secret).verify(body, headers)
    assert payload["type"] == "ping" and payload["data"]["subscription_id"] == created.subscription.id


def test_later_steps_carry_the_case_as_it_is_then(tenant, endpoint: Endpoint) -> None:
    _subscribe(tenant, endpoint.url, event_types=["case.label_issued"])
    case = _open(tenant)
    if case.status != "authorized":
        perform_action(tenant, case.number, Action.APPROVE, ApproveIn(), AGENT)
    perform_action(tenant, case.number, Action.ISSUE_LABEL,
                   IssueLabelIn(carrier="DHL", tracking_number="JD0001", label_url="https://labels.example/1.pdf"),
                   AGENT)
    (message,) = _messages()
    data = message.action["payload"]["data"]
    assert data["status"] == "awaiting_shipment" and data["previous_status"] == "authorized"
    assert data["return_shipment"] == {"carrier": "DHL", "tracking": "JD0001",
                                       "label_url": "https://labels.example/1.pdf"}
    assert json.loads(events.event_body(message)) == message.action["payload"]


def test_every_action_maps_to_a_catalogued_event() -> None:
    """The catalogue documents every event that can be sent, and the API accepts exactly those."""
    from typing import get_args

    from app.outbound.event_schemas import EventType

    assert set(events.ACTION_EVENTS.values()) | {"case.created", "case.status_changed"} == set(events.CATALOGUE)
    assert set(get_args(EventType)) == set(events.CATALOGUE)
    # customer_replied is a status change only: the message itself sends case.message_received.
    assert {a.value for a in Action} - {"customer_replied"} <= set(events.ACTION_EVENTS)


@pytest.fixture(autouse=True)
def _private_urls_allowed(app: Flask) -> Iterator[None]:
    assert app.config["REBOUND_ALLOW_PRIVATE_URLS"]  # the endpoint is on loopback
    yield


def test_a_customer_message_sends_one_message_received_event(app_ctx, api) -> None:
    """A ticket or mail message on a case reaches subscribers once, with its text; an answer to an
    info request adds the status change, not a second message event."""
    from app.cases.models import ReturnCase
    from app.intake.services import append_message
    from app.outbound.models import OutboxMessage
    from integrations.base import TicketEvent

    api.post("/orders", json=order_payload())
    created = api.post("/webhook-subscriptions", json={"url": "https://hooks.example.com/rebound"})
    assert created.status_code == 201, created.json
    number = api.post("/cases", json=case_payload(sku="STOVE")).json["number"]
    api.action(number, "request_info", {"message": "A photo please"})
    case = db.session.scalar(sa.select(ReturnCase).where(ReturnCase.number == number))
    before = db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage))
    append_message(case, TicketEvent(provider="email", ticket_id="mail:x", event_type="message.created",
                                     message="Here it is", author_role="customer"), "email")
    db.session.commit()
    sent = db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id).offset(before)).all()
    types = [m.action["payload"]["type"] if "payload" in m.action else m.action.get("type") for m in sent]
    assert types.count("case.message_received") == 1, types
    assert "case.status_changed" in types
