"""The outbox with real worker processes on PostgreSQL: a worker killed mid-batch, three at once.

Each worker is a subprocess running the real dispatcher (``dispatch_due`` in a loop until no
message is pending or sending) against this test process's database; the helpdesk is a local
threaded HTTP server that answers like Zendesk and counts what it gets by idempotency key.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from werkzeug import Request, Response
from werkzeug.serving import make_server

from app.connectors.schemas import IntegrationCreate, IntegrationSettings, RateLimitSetting
from app.connectors.services import connect
from app.extensions import db
from app.outbound import outbox
from app.outbound.models import DeliveryAttempt, OutboxMessage
from app.tenants.services import create_tenant
from integrations.base import TRACE_IDEMPOTENCY_HEADER, OutboundAction
from tests.conftest import database_kind

pytestmark = pytest.mark.skipif(database_kind() != "postgresql", reason="worker processes need PostgreSQL")

ROOT = Path(__file__).resolve().parents[2]

# One worker process: the real dispatcher until the outbox holds nothing pending or sending.
WORKER = """
import sys, time
import sqlalchemy as sa
from app import create_app
from app.extensions import db
from app.outbound import dispatcher
from app.outbound.models import OutboxMessage
from config import TestingConfig

url, lease, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=url, REBOUND_OUTBOX_LEASE_SECONDS=lease)
with app.app_context():
    while True:
        if dispatcher.dispatch_due(limit):
            continue
        left = db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)
                                 .where(OutboxMessage.status.in_(("pending", "sending"))))
        db.session.rollback()
        if not left:
            break
        time.sleep(0.05)
"""


class CountingHelpdesk:
    """A Zendesk stand-in on its own threads: answers 200 after ``delay`` s, logs (key, ticket)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.lock = threading.Lock()
        self.log: list[tuple[str, str]] = []
        self.server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @Request.application
    def wsgi(self, request: Request) -> Response:
        request.get_data()
        time.sleep(self.delay)
        ticket = request.path.rsplit("/", 1)[-1].split(".")[0]
        with self.lock:
            self.log.append((request.headers.get(TRACE_IDEMPOTENCY_HEADER, ""), ticket))
        return Response('{"ticket": {"id": 1}, "audit": {"events": []}}', content_type="application/json")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def counts(self) -> Counter[str]:
        with self.lock:
            return Counter(key for key, _ in self.log)

    def arrivals(self) -> list[tuple[str, str]]:
        with self.lock:
            return list(self.log)


@pytest.fixture()
def helpdesk_factory() -> Iterator[type]:
    started: list[CountingHelpdesk] = []

    def start(delay: float) -> CountingHelpdesk:
        helpdesk = CountingHelpdesk(delay)
        helpdesk.thread.start()
        started.append(helpdesk)
        return helpdesk

    yield start  # type: ignore[misc]
    for helpdesk in started:
        helpdesk.server.shutdown()


def _enqueue(app: Flask, helpdesk: CountingHelpdesk, tickets: int, per_ticket: int) -> dict[str, list[str]]:
    """``per_ticket`` notes on each of ``tickets`` tickets, interleaved; the keys per ticket in order."""
    with app.app_context():
        tenant = create_tenant("Workers", slug="workers").token.tenant
        integration = connect(tenant, IntegrationCreate(
            kind="zendesk", name="Support", credentials={"api_email": "a@example.com", "api_token": "t0ken-for-tests"},
            # Far above Zendesk's 100/min default: these tests are about workers, not pacing.
            settings=IntegrationSettings(base_url=helpdesk.url,
                                         rate_limit=RateLimitSetting(requests=100_000, per_seconds=1)),
        )).integration
        expected: dict[str, list[str]] = {}
        for n in range(per_ticket):
            for t in range(tickets):
                ticket, key = str(1000 + t), f"w-{1000 + t}-{n}"
                outbox.enqueue(tenant_id=tenant.id, integration_id=integration.id, action=OutboundAction(
                    kind="note", ticket_id=ticket, idempotency_key=key, body_text=f"Update {n} on {ticket}"))
                expected.setdefault(ticket, []).append(key)
        db.session.commit()
        db.session.remove()
    return expected


def _worker(database_url: str, tmp_path: Path, name: str, lease: int, limit: int) -> subprocess.Popen[bytes]:
    log = (tmp_path / f"{name}.log").open("wb")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-c", WORKER, database_url, str(lease), str(limit)], cwd=ROOT,
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return process


def _wait(process: subprocess.Popen[bytes], tmp_path: Path, name: str, timeout: float) -> None:
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"worker {name} did not finish in {timeout:.0f} s:\n{(tmp_path / f'{name}.log').read_text()}")
    assert code == 0, (tmp_path / f"{name}.log").read_text()


def _statuses(app: Flask) -> Counter[str]:
    with app.app_context():
        rows = db.session.scalars(sa.select(OutboxMessage.status)).all()
        db.session.remove()
        return Counter(rows)


def _in_order(arrivals: list[tuple[str, str]], expected: dict[str, list[str]]) -> None:
    """Each ticket's updates first arrived in the order they were made."""
    for ticket, keys in expected.items():
        firsts = list(dict.fromkeys(key for key, t in arrivals if t == ticket))
        assert firsts == keys, f"ticket {ticket}: {firsts} != {keys}"


def test_a_worker_killed_mid_batch_loses_nothing(app: Flask, clean_db: None, database_url: str, tmp_path: Path,
                                                 helpdesk_factory) -> None:
    """SIGKILL in the middle of a batch; a new worker delivers every message; only the killed
    batch's may arrive twice."""
    batch, lease = 10, 2
    helpdesk = helpdesk_factory(0.08)
    expected = _enqueue(app, helpdesk, tickets=20, per_ticket=3)
    keys = [key for ticket_keys in expected.values() for key in ticket_keys]

    first = _worker(database_url, tmp_path, "first", lease, batch)
    deadline = time.monotonic() + 20
    while sum(helpdesk.counts().values()) < batch + batch // 2 and time.monotonic() < deadline:
        time.sleep(0.01)  # into its second batch
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    sent_before = sum(helpdesk.counts().values())
    assert batch < sent_before < len(keys), "the kill must come mid-run"
    assert _statuses(app)["sending"] > 0, "the kill must leave a claimed batch behind"

    second = _worker(database_url, tmp_path, "second", lease, batch)
    _wait(second, tmp_path, "second", timeout=30)

    counts = helpdesk.counts()
    assert set(counts) == set(keys), f"missing: {sorted(set(keys) - set(counts))}"
    duplicates = sum(n - 1 for n in counts.values())
    assert duplicates <= batch, counts
    assert _statuses(app) == Counter({"delivered": len(keys)})
    _in_order(helpdesk.arrivals(), expected)


def test_three_workers_deliver_every_message_exactly_once_in_order(app: Flask, clean_db: None, database_url: str,
                                                                   tmp_path: Path, helpdesk_factory) -> None:
    """Three worker processes on one database, 300 messages over 60 tickets: each once, in order."""
    helpdesk = helpdesk_factory(0.005)
    expected = _enqueue(app, helpdesk, tickets=60, per_ticket=5)
    keys = {key for ticket_keys in expected.values() for key in ticket_keys}

    workers = [_worker(database_url, tmp_path, f"w{n}", 30, 10) for n in range(3)]
    for n, worker in enumerate(workers):
        _wait(worker, tmp_path, f"w{n}", timeout=45)

    counts = helpdesk.counts()
    assert set(counts) == keys and set(counts.values()) == {1}, [k for k, n in counts.items() if n > 1]
    _in_order(helpdesk.arrivals(), expected)
    assert _statuses(app) == Counter({"delivered": len(keys)})
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(DeliveryAttempt.id))) == len(keys)
        db.session.remove()
