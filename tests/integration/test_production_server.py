"""The README's production command, run for real: gunicorn with its options on PostgreSQL.

The tests run the group-commit writer as a thread; production runs it under gevent, where it is a
greenlet and psycopg waits for the server cooperatively. Here concurrent signed deliveries go
through the documented server: each distinct one is stored once and answered ``queued``, the
concurrent copies of one delivery store it once and the rest answer ``duplicate`` with its id,
and badly signed requests sent among them are refused and counted without disturbing the others.
"""

from __future__ import annotations

import http.client
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from app.connectors.models import Integration
from app.connectors.schemas import IntegrationCreate
from app.connectors.services import connect
from app.extensions import db
from app.inbound.models import InboundEvent
from app.tenants.services import create_tenant
from bench.common import Server, production_env, readme_gunicorn_args
from integrations import get_adapter
from tests.conftest import database_kind

pytestmark = pytest.mark.skipif(database_kind() != "postgresql", reason="the production server runs on PostgreSQL")

ADAPTER = get_adapter("zendesk")
DISTINCT = 120
COPIES = 40
FORGED = (DISTINCT + COPIES) // 4


def _body(ticket: str) -> bytes:
    return json.dumps({"ticket_id": ticket, "subject": "Where is my parcel?", "status": "open",
                       "requester_email": "sam@example.com", "requester_name": "Sam", "tags": "",
                       "event": "created", "author_role": "End-user", "latest_comment": "Any news?"}).encode()


def _post(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json", **headers})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


@pytest.fixture()
def server(app: Flask, clean_db: None, tmp_path: Path):
    """The README's gunicorn command serving this test database; (server, webhook path, secret, id)."""
    with app.app_context():
        tenant = create_tenant("Production", slug="production").token.tenant
        connected = connect(tenant, IntegrationCreate(kind="zendesk", name="Support"))
        key, secret, integration_id = (connected.integration.public_key, connected.signing_secret,
                                       connected.integration.id)
        url = db.engine.url.render_as_string(hide_password=False)
    options, _ = readme_gunicorn_args()
    running = Server("wsgi:app", options, production_env(url, app.config["REBOUND_ENCRYPTION_KEY"]),
                     tmp_path / "gunicorn.log")
    running.start()
    try:
        yield running, f"/webhooks/{key}", secret, integration_id
    finally:
        running.stop()
        with app.app_context():  # the server's connections are gone; drop the app's too before clean-up
            db.engine.dispose()


def test_the_production_server_stores_concurrent_deliveries_once_each(app, server):
    running, path, secret, integration_id = server
    now = datetime.now(timezone.utc)
    distinct = [(f"prod-{n}", _body(str(n))) for n in range(DISTINCT)]
    repeated = ("prod-repeated", _body("999999"))
    forged = [(f"forged-{n}", _body(str(n))) for n in range(FORGED)]
    sends: list[tuple[str, bytes]] = []
    for n, delivery in enumerate([*distinct, *[repeated] * COPIES]):  # a forged request after every fourth
        sends += [delivery, forged[n // 4]] if n % 4 == 3 else [delivery]

    def send(delivery: tuple[str, bytes]) -> tuple[str, int, dict]:
        invocation, body = delivery
        signed_with = "not-the-secret" if invocation.startswith("forged-") else secret
        status, answer = _post(running.port, path, body, ADAPTER.sign(body, signed_with, now, invocation))
        return invocation, status, answer

    with ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(send, sends))

    good = [(key, status, answer) for key, status, answer in results if not key.startswith("forged-")]
    assert all(status == 200 for _, status, _ in good), [r for r in good if r[1] != 200][:3]
    assert len(good) == DISTINCT + COPIES
    assert sorted(status for key, status, _ in results if key.startswith("forged-")) == [401] * FORGED
    assert {answer["status"] for key, _, answer in good if key != "prod-repeated"} == {"queued"}
    copies = [answer for key, _, answer in good if key == "prod-repeated"]
    assert sorted(answer["status"] for answer in copies) == ["duplicate"] * (COPIES - 1) + ["queued"]
    assert len({answer["event_id"] for answer in copies}) == 1
    with app.app_context():
        stored = db.session.execute(sa.select(InboundEvent.delivery_key, InboundEvent.id).where(
            InboundEvent.integration_id == integration_id)).all()
        assert db.session.get(Integration, integration_id).rejected_count == FORGED
    by_invocation = {key.removeprefix("zendesk:invocation:"): event_id for key, event_id in stored}
    assert len(by_invocation) == len(stored) == DISTINCT + 1
    assert sorted(by_invocation) == sorted([key for key, _ in distinct] + ["prod-repeated"])
    assert by_invocation["prod-repeated"] == copies[0]["event_id"]
    options = readme_gunicorn_args()[0]
    worker_class = options[options.index("--worker-class") + 1]
    assert f"Using worker: {worker_class}" in running.log_path.read_text()
