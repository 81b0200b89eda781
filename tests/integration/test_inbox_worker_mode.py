"""``REBOUND_INBOUND_PROCESSING=worker``: the request verifies and records, the worker processes.

Also the cached integration lookup on the request path: one SQL statement per accepted
delivery, and a disable (through the API or straight in the database, as another process
would) refuses the very next delivery.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

import config
from app.cases.models import ReturnCase
from app.connectors.models import Integration
from app.connectors.schemas import IntegrationCreate
from app.connectors.services import connect, set_enabled
from app.extensions import db
from app.inbound import services as inbound_services
from app.inbound.models import InboundEvent, RejectedRequest
from app.jobs import JOBS
from app.orders.schemas import OrderUpsert
from app.orders.services import upsert_order
from app.tenants.models import Tenant
from app.tenants.services import create_tenant
from integrations import get_adapter
from tests.conftest import database_kind
from tests.factories import order_payload

ADAPTER = get_adapter("zendesk")


def _body(ticket: str, text: str = "Please take back the tent TENT-2P from order #1001, it is too small. "
                                    "I want a refund.") -> bytes:
    return json.dumps({
        "ticket_id": ticket, "subject": "Return", "status": "open", "requester_email": "maria.lopez@example.com",
        "requester_name": "María López", "tags": "", "event": "created", "author_role": "End-user",
        "latest_comment": text,
    }).encode()


@pytest.fixture()
def worker_mode(app: Flask, clean_db: None) -> Iterator[None]:
    app.config["REBOUND_INBOUND_PROCESSING"] = "worker"
    try:
        yield
    finally:
        app.config["REBOUND_INBOUND_PROCESSING"] = "inline"


@pytest.fixture()
def zendesk(app: Flask, clean_db: None) -> tuple[str, str, int]:
    """A tenant with order #1001 and a Zendesk integration: (webhook key, signing secret, integration id)."""
    with app.app_context():
        tenant = create_tenant("Inbox", slug="inbox").token.tenant
        upsert_order(tenant, OrderUpsert.model_validate(order_payload()))
        connected = connect(tenant, IntegrationCreate(kind="zendesk", name="Support"))
        return connected.integration.public_key, connected.signing_secret, connected.integration.id


def _deliver(client: FlaskClient, key: str, secret: str, body: bytes, delivery: str):
    headers = ADAPTER.sign(body, secret, datetime.now(timezone.utc), delivery)
    return client.post(f"/webhooks/{key}", data=body, headers=headers)


def _events(app: Flask) -> list[InboundEvent]:
    with app.app_context():
        events = list(db.session.scalars(sa.select(InboundEvent).order_by(InboundEvent.id)))
        db.session.expunge_all()
        return events


def _count(app: Flask, model: type) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def _process(app: Flask) -> int:
    with app.app_context():
        try:
            return inbound_services.process_received_events()
        finally:
            db.session.remove()


def test_the_request_records_and_the_worker_processes_once(app, client, zendesk, worker_mode):
    """In worker mode the answer is "queued" and no case exists yet; the job opens it, once."""
    key, secret, _ = zendesk
    response = _deliver(client, key, secret, _body("501"), "w-1")
    assert response.status_code == 200 and response.json["status"] == "queued"
    [event] = _events(app)
    assert (event.status, event.attempts, event.case_id) == ("received", 0, None)
    assert _count(app, ReturnCase) == 0
    again = _deliver(client, key, secret, _body("501"), "w-1")
    assert again.json == {"status": "duplicate", "event_id": event.id}

    assert _process(app) == 1
    [event] = _events(app)
    assert event.status == "processed" and event.attempts == 1 and event.case_id is not None
    assert _count(app, ReturnCase) == 1
    assert _process(app) == 0  # nothing left: a second run changes nothing
    assert _events(app)[0].attempts == 1 and _count(app, ReturnCase) == 1


def test_flask_worker_once_processes_queued_events(app, client, zendesk, worker_mode, runner):
    """`flask worker --once` (cron style) runs the job too, in worker mode."""
    key, secret, _ = zendesk
    _deliver(client, key, secret, _body("520"), "once-1")
    result = runner.invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    [event] = _events(app)
    assert event.status == "processed" and _count(app, ReturnCase) == 1


def test_inline_mode_still_processes_in_the_request(app, client, zendesk):
    """The default (development, tests): the case exists when the webhook answers."""
    key, secret, _ = zendesk
    assert app.config["REBOUND_INBOUND_PROCESSING"] == "inline"
    response = _deliver(client, key, secret, _body("502"), "i-1")
    assert response.json["status"] == "processed"
    assert _count(app, ReturnCase) == 1
    assert _process(app) == 0


def test_the_job_runs_only_in_worker_mode(app, worker_mode):
    """``flask worker`` schedules process-inbound-events only when the web nodes leave the work to it."""
    job = next(j for j in JOBS if j.id == "process-inbound-events")
    assert job.wanted(app.config)
    app.config["REBOUND_INBOUND_PROCESSING"] = "inline"
    assert not job.wanted(app.config)
    assert all(j.wanted(app.config) for j in JOBS if j.id != "process-inbound-events")


def test_a_failing_event_is_retried_by_the_retry_job_not_lost(app, client, zendesk, worker_mode, monkeypatch):
    """A processing error in the worker marks the event failed with a retry time; nothing is half done."""
    key, secret, _ = zendesk
    _deliver(client, key, secret, _body("503"), "w-3")

    def boom(*args, **kwargs):
        raise ConnectionError("database hiccup")

    monkeypatch.setattr(inbound_services, "handle_ticket_event", boom)
    assert _process(app) == 1
    [event] = _events(app)
    assert event.status == "failed" and "database hiccup" in event.last_error and event.next_attempt_at
    assert _count(app, ReturnCase) == 0
    assert _process(app) == 0  # the new-event job leaves failed events to the retry job and its backoff


def test_bad_deliveries_are_refused_the_same_in_worker_mode(app, client, zendesk, worker_mode):
    """Verification is not weakened: a wrong signature is 401, counted, and nothing is queued."""
    key, secret, _ = zendesk
    body = _body("504")
    response = _deliver(client, key, secret[::-1] + "x", body, "w-4")
    assert response.status_code == 401 and response.json["error"]["code"] == "invalid_signature"
    tampered = ADAPTER.sign(body, secret, datetime.now(timezone.utc), "w-5")
    assert client.post(f"/webhooks/{key}", data=body + b" ", headers=tampered).status_code == 401
    assert client.post(f"/webhooks/{key}", data=b'{"ticket_id": ', headers=ADAPTER.sign(
        b'{"ticket_id": ', secret, datetime.now(timezone.utc), "w-6")).status_code == 400
    assert _count(app, InboundEvent) == 0 and _count(app, RejectedRequest) == 3


def test_an_accepted_delivery_costs_one_sql_statement(app, client, zendesk, worker_mode, monkeypatch):
    """With the integration cached, the request path is the INSERT and nothing else."""
    import psycopg

    key, secret, _ = zendesk
    _deliver(client, key, secret, _body("505"), "w-7")  # fills the cache
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    driver_execute = psycopg.Cursor.execute

    def counted(self, query, *args, **kwargs):
        statements.append(str(query))
        return driver_execute(self, query, *args, **kwargs)

    if database_kind() == "postgresql":  # the driver's cursors: every engine's, the inbox's raw cursor included
        monkeypatch.setattr(psycopg.Cursor, "execute", counted)
    else:
        sa.event.listen(sa.Engine, "before_cursor_execute", count)
    try:
        response = _deliver(client, key, secret, _body("506"), "w-8")
    finally:
        if sa.event.contains(sa.Engine, "before_cursor_execute", count):
            sa.event.remove(sa.Engine, "before_cursor_execute", count)
    assert response.json["status"] == "queued"
    assert len(statements) == 1 and "INSERT INTO inbound_events" in statements[0], statements


def test_a_disabled_integration_is_refused_on_the_next_delivery(app, client, zendesk, worker_mode):
    """The cache never outlives a disable: through the API, or straight in the database as another
    web process would see it, the very next delivery is 404 (and counted); re-enabled, it is 200."""
    key, secret, integration_id = zendesk
    assert _deliver(client, key, secret, _body("507"), "w-9").status_code == 200  # cached now
    with app.app_context():
        tenant = db.session.get(Tenant, db.session.get(Integration, integration_id).tenant_id)
        set_enabled(tenant, integration_id, False)
    refused = _deliver(client, key, secret, _body("508"), "w-10")
    assert refused.status_code == 404 and refused.json["error"]["code"] == "not_found"
    with app.app_context():
        set_enabled(tenant, integration_id, True)
    assert _deliver(client, key, secret, _body("509"), "w-11").status_code == 200  # cached again

    with app.app_context():  # another process flips the flag and nothing else
        with db.engine.begin() as conn:
            conn.execute(sa.text("UPDATE integrations SET enabled = false WHERE id = :id"), {"id": integration_id})
    assert _deliver(client, key, secret, _body("510"), "w-12").status_code == 404
    assert {e.delivery_key for e in _events(app)} == {"zendesk:invocation:w-9", "zendesk:invocation:w-11"}
    assert _count(app, RejectedRequest) == 2


def test_a_secret_rotated_elsewhere_is_used_on_the_next_delivery(app, client, zendesk, worker_mode, api):
    """A delivery signed with a secret the cache has not seen yet is checked against fresh secrets."""
    key, secret, integration_id = zendesk
    assert _deliver(client, key, secret, _body("511"), "w-13").status_code == 200  # cached now
    with app.app_context():
        stored = db.session.get(Integration, integration_id)
        from app.connectors.crypto import decrypt_secrets, encrypt_secrets

        secrets = decrypt_secrets(stored.secrets_encrypted) | {"signing_secret": "brand-new-secret"}
        with db.engine.begin() as conn:  # as another process's rotation would leave it (no grace)
            conn.execute(sa.update(Integration).where(Integration.id == integration_id)
                         .values(secrets_encrypted=encrypt_secrets(secrets)))
    assert _deliver(client, key, "brand-new-secret", _body("512"), "w-14").status_code == 200
    assert _deliver(client, key, secret, _body("513"), "w-15").status_code == 401


@pytest.mark.skipif(database_kind() != "postgresql", reason="concurrent workers need PostgreSQL")
def test_two_workers_never_process_an_event_twice(app, client, zendesk, worker_mode):
    """Two workers drain 30 new events at once: every event is processed exactly once."""
    key, secret, _ = zendesk
    for n in range(30):
        text = "Please take back the tent TENT-2P from order #1001." if n % 3 == 0 else "When do you open?"
        assert _deliver(client, key, secret, _body(str(600 + n), text), f"two-{n}").json["status"] == "queued"
    handled: list[int] = []
    start = threading.Barrier(2)

    def worker() -> None:
        start.wait()
        handled.append(_process(app))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sum(handled) == 30
    events = _events(app)
    assert all(e.attempts == 1 and e.status in {"processed", "ignored"} for e in events), \
        [(e.id, e.status, e.attempts) for e in events]
    assert _count(app, ReturnCase) == len({e.case_id for e in events if e.case_id})


@pytest.mark.skipif(database_kind() != "postgresql", reason="row locks need PostgreSQL")
def test_a_worker_passes_over_an_event_another_worker_holds(app, client, zendesk, worker_mode):
    """An event locked by another worker is skipped, not waited for, and processed once it is free."""
    key, secret, _ = zendesk
    for n in range(3):
        _deliver(client, key, secret, _body(str(700 + n), "When do you open?"), f"lock-{n}")
    held = _events(app)[0].id
    with app.app_context():
        other = db.engine.connect()
    try:
        other.execute(sa.text("SELECT id FROM inbound_events WHERE id = :id FOR UPDATE"), {"id": held})
        assert _process(app) == 2
        assert [e.status for e in _events(app)] == ["received", "ignored", "ignored"]
    finally:
        other.rollback()
        other.close()
    assert _process(app) == 1
    assert all(e.attempts == 1 for e in _events(app))


@pytest.mark.skipif(database_kind() != "postgresql", reason="NOTIFY is PostgreSQL's")
def test_a_new_event_wakes_the_worker_by_notify_at_most_every_quarter_second(app, client, zendesk, worker_mode,
                                                                            monkeypatch):
    """The INSERT notifies `flask worker` (only when it stored a row), throttled per process."""
    key, secret, _ = zendesk
    monkeypatch.setattr(inbound_services, "_last_notify", 0.0)
    with app.app_context():
        url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    import psycopg

    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute(f"LISTEN {inbound_services.NOTIFY_CHANNEL}")
        assert _deliver(client, key, secret, _body("801"), "n-1").json["status"] == "queued"
        assert _deliver(client, key, secret, _body("802"), "n-2").json["status"] == "queued"  # within 0.25 s
        assert len(list(listener.notifies(timeout=2))) == 1
        monkeypatch.setattr(inbound_services, "_last_notify", 0.0)
        assert _deliver(client, key, secret, _body("801"), "n-1").json["status"] == "duplicate"
        assert list(listener.notifies(timeout=0.5)) == []  # nothing stored, nothing to wake for
        assert _deliver(client, key, secret, _body("803"), "n-3").json["status"] == "queued"
        assert len(list(listener.notifies(timeout=2))) == 1


def test_the_processing_setting_is_checked(monkeypatch):
    """Production defaults to worker, development to inline; a typo stops start-up."""
    assert config.ProductionConfig.REBOUND_INBOUND_PROCESSING == "worker"
    assert config.DevelopmentConfig.REBOUND_INBOUND_PROCESSING == "inline"
    assert config.TestingConfig.REBOUND_INBOUND_PROCESSING == "inline"
    monkeypatch.setenv("REBOUND_INBOUND_PROCESSING", " Worker ")
    assert config._env_choice("REBOUND_INBOUND_PROCESSING", "inline", config.INBOUND_PROCESSING_MODES) == "worker"
    monkeypatch.setenv("REBOUND_INBOUND_PROCESSING", "later")
    with pytest.raises(RuntimeError, match="REBOUND_INBOUND_PROCESSING"):
        config._env_choice("REBOUND_INBOUND_PROCESSING", "inline", config.INBOUND_PROCESSING_MODES)


def test_the_worker_commits_a_batch_of_events_once(app, client, zendesk, worker_mode):
    """Ten waiting events are claimed together and committed together: one COMMIT, not ten."""
    key, secret, _ = zendesk
    for n in range(10):
        text = "Please take back the tent TENT-2P from order #1001." if n == 0 else "When do you open?"
        _deliver(client, key, secret, _body(str(900 + n), text), f"batch-{n}")
    commits: list[object] = []

    def count(connection) -> None:
        commits.append(connection)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "commit", count)
    try:
        assert _process(app) == 10
    finally:
        sa.event.remove(engine, "commit", count)
    assert len(commits) == 1
    events = _events(app)
    assert [e.status for e in events] == ["processed"] + ["ignored"] * 9 and all(e.attempts == 1 for e in events)
    assert _count(app, ReturnCase) == 1


def test_a_claim_takes_no_more_than_its_batch(app, client, zendesk, worker_mode):
    """The claim locks at most ``batch`` events (a plain IN-subquery let PostgreSQL take more)."""
    key, secret, _ = zendesk
    for n in range(12):
        _deliver(client, key, secret, _body(str(920 + n), "When do you open?"), f"claim-{n}")
    with app.app_context():
        try:
            assert inbound_services.process_received_events(batch=5, limit=5) == 5
        finally:
            db.session.remove()
    assert [e.status for e in _events(app)].count("received") == 7
    assert _process(app) == 7


def test_one_bad_event_in_a_batch_fails_alone(app, client, zendesk, worker_mode, monkeypatch):
    """A failure rolls the batch back and it is redone one event per transaction: the others are
    processed once, and only the bad one is failed, with its error, for the retry job."""
    key, secret, _ = zendesk
    for n in range(5):
        text = "Please take back the tent TENT-2P from order #1001." if n == 4 else "When do you open?"
        _deliver(client, key, secret, _body(str(940 + n), text), f"bad-{n}")
    real = inbound_services.handle_ticket_event

    def fails_for_942(tenant, integration, event, **kwargs):
        if event.ticket_id == "942":
            raise ValueError("ticket 942 is poison")
        return real(tenant, integration, event, **kwargs)

    monkeypatch.setattr(inbound_services, "handle_ticket_event", fails_for_942)
    assert _process(app) == 5
    by_ticket = {e.ticket_id: e for e in _events(app)}
    assert by_ticket["942"].status == "failed" and "poison" in by_ticket["942"].last_error
    assert by_ticket["942"].next_attempt_at is not None
    assert {t: e.status for t, e in by_ticket.items() if t != "942"} == {
        "940": "ignored", "941": "ignored", "943": "ignored", "944": "processed"}
    assert all(e.attempts == 1 for e in by_ticket.values())  # the rolled-back batch left no trace
    assert _count(app, ReturnCase) == 1
