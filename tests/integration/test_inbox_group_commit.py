"""Group commit of the inbox (``services.GroupWriter``, PostgreSQL): the requests of one process
share one INSERT and one commit, and each still learns exactly what happened to its own row.

The writer is held in a first batch (``held``) so that the deliveries under test pile up behind
it and are written together in the next one, as they would be under load.
"""

from __future__ import annotations

import json
import os
import pickle
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask

from app.connectors.models import Integration
from app.connectors.schemas import IntegrationCreate
from app.connectors.services import connect, set_enabled
from app.extensions import db
from app.inbound import services
from app.inbound.models import InboundEvent
from app.tenants.models import Tenant
from app.tenants.services import create_tenant
from integrations import TicketEvent, get_adapter
from tests.conftest import database_kind

pytestmark = pytest.mark.skipif(database_kind() != "postgresql", reason="group commit is PostgreSQL's")

ADAPTER = get_adapter("zendesk")


@dataclass
class Held:
    """The writer's batches (delivery keys per INSERT); the first waits until ``release`` is set."""

    batches: list[list[str]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture()
def held(app: Flask, clean_db: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Held]:
    state = Held()
    insert = services.GroupWriter._insert

    def holding(self: services.GroupWriter, rows: list[dict[str, Any]], notify: bool) -> dict[tuple[int, str], int]:
        state.batches.append([row["delivery_key"] for row in rows])
        if len(state.batches) == 1:
            assert state.release.wait(10)
        return insert(self, rows, notify)

    monkeypatch.setattr(services.GroupWriter, "_insert", holding)
    yield state
    state.release.set()  # never leave the writer thread stuck


def _integration(app: Flask, slug: str) -> tuple[str, int]:
    with app.app_context():
        tenant = create_tenant(slug.title(), slug=slug).token.tenant
        integration = connect(tenant, IntegrationCreate(kind="zendesk", name="Support")).integration
        return integration.public_key, integration.id


def _receiver(app: Flask, key: str) -> services.Receiver:
    with app.app_context():
        receiver = services.receiver_for(key, fresh=True)
        assert receiver is not None
        return receiver


def _event(ticket: str, event_type: str = "created") -> TicketEvent:
    return TicketEvent(provider="zendesk", ticket_id=ticket, event_type=event_type, message="Return please")  # type: ignore[arg-type]


def _writer(app: Flask) -> services.GroupWriter:
    with app.app_context():
        writer = services._group_writer()
        assert writer is not None  # PostgreSQL
        return writer


def _record_in_threads(app: Flask, calls: list[tuple[services.Receiver, str, TicketEvent]],
                       before: Callable[[], None] | None = None) -> list[Any]:
    """Run ``record_event`` for each call in a thread of its own; each result, or the exception raised."""
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        receiver, key, event = calls[index]
        with app.app_context():
            try:
                results[index] = services.record_event(receiver, key, event, f"body {key}".encode())
            except Exception as exc:  # noqa: BLE001  (the test inspects it)
                results[index] = exc

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    if before is not None:
        before()
    for thread in threads:
        thread.join(20)
        assert not thread.is_alive()
    return results


def _plug(app: Flask, receiver: services.Receiver, held: Held) -> threading.Thread:
    """A first delivery that holds the writer in its batch until ``held.release``: whatever comes
    next waits in the queue."""
    thread = threading.Thread(target=_record_in_threads, args=(app, [(receiver, "plug", _event("1"))]))
    thread.start()
    _wait_until(lambda: len(held.batches) == 1)
    return thread


def _record_behind_plug(app: Flask, plug_receiver: services.Receiver, held: Held,
                        calls: list[tuple[services.Receiver, str, TicketEvent]],
                        before_release: Callable[[], None] | None = None) -> list[Any]:
    """Hold the writer in a first batch (the plug), queue ``calls`` behind it, release it once all
    of them wait (after ``before_release``), so that they are written together; their results."""
    plug = _plug(app, plug_receiver, held)
    writer = _writer(app)

    def release_when_all_wait() -> None:
        _wait_queued(writer, len(calls))
        if before_release is not None:
            before_release()
        held.release.set()

    results = _record_in_threads(app, calls, release_when_all_wait)
    plug.join(10)
    return results


def _wait_queued(writer: services.GroupWriter, count: int) -> None:
    deadline = time.monotonic() + 10
    while writer.queued < count:
        assert time.monotonic() < deadline, f"{writer.queued} of {count} queued"
        time.sleep(0.01)


def _stored(app: Flask) -> dict[str, int]:
    with app.app_context():
        return {key: event_id for key, event_id in db.session.execute(
            sa.select(InboundEvent.delivery_key, InboundEvent.id))}


def test_concurrent_deliveries_share_one_commit_and_each_gets_its_own_id(app, held):
    key, _ = _integration(app, "group")
    receiver = _receiver(app, key)
    calls = [(receiver, f"d-{n}", _event(str(100 + n))) for n in range(30)]
    results = _record_behind_plug(app, receiver, held, calls)
    stored = _stored(app)
    assert [len(batch) for batch in held.batches] == [1, 30]  # the plug, then everyone together
    assert results == [(stored[f"d-{n}"], True) for n in range(30)]
    assert len(set(stored.values())) == 31
    # Ids follow the order in which the requests arrived at the writer.
    queued_order = held.batches[1]
    assert sorted(queued_order, key=stored.__getitem__) == queued_order
    with app.app_context():
        rows = db.session.execute(sa.select(InboundEvent.delivery_key, InboundEvent.body, InboundEvent.status,
                                            InboundEvent.attempts, InboundEvent.ticket_id)
                                  .where(InboundEvent.delivery_key == "d-7")).all()
    assert [tuple(row) for row in rows] == [("d-7", b"body d-7", "received", 0, "107")]


def test_repeats_within_one_batch_are_stored_once_and_one_is_told_it_created(app, held):
    key, _ = _integration(app, "repeats")
    receiver = _receiver(app, key)
    held.release.set()  # a delivery stored before the batch under test
    with app.app_context():
        earlier_id, created = services.record_event(receiver, "old", _event("5"), b"first")
    assert created
    held.batches.clear()  # that one was the first batch: hold the next
    held.release.clear()
    calls = [(receiver, "same", _event("9"))] * 6 + [(receiver, "old", _event("5"))] * 2 \
        + [(receiver, "new", _event("10"))]
    results = _record_behind_plug(app, receiver, held, calls)
    stored = _stored(app)
    assert sorted(held.batches[1]) == ["new", "old", "same"]  # each key once in the statement
    same = results[:6]
    assert sorted(created for _, created in same) == [False] * 5 + [True]
    assert {event_id for event_id, _ in same} == {stored["same"]}
    assert results[6:8] == [(earlier_id, False)] * 2
    assert results[8] == (stored["new"], True)
    assert sorted(stored) == ["new", "old", "plug", "same"]


def test_a_failing_batch_fails_every_request_in_it_and_stores_nothing(app, held, monkeypatch):
    key, _ = _integration(app, "failing")
    receiver = _receiver(app, key)
    insert = services.GroupWriter._insert

    def lost_connection(self, rows, notify):  # the server went away, twice: no retry left
        if len(rows) > 1:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return insert(self, rows, notify)

    calls = [(receiver, f"f-{n}", _event(str(n))) for n in range(5)]
    results = _record_behind_plug(app, receiver, held, calls, before_release=lambda: monkeypatch.setattr(
        services.GroupWriter, "_insert", lost_connection))
    assert all(isinstance(result, psycopg.OperationalError) for result in results), results
    assert sorted(_stored(app)) == ["plug"]
    with app.app_context():  # the writer carries on with the next delivery
        assert services.record_event(receiver, "f-0", _event("0"), b"again")[1] is True


def test_a_row_the_database_refuses_fails_only_its_own_request(app, held):
    """A value too long for its column fails the statement; the rest are written one by one."""
    key, _ = _integration(app, "refused")
    receiver = _receiver(app, key)
    calls = [(receiver, "ok-1", _event("1")), (receiver, "bad", _event("2", event_type="x" * 40)),
             (receiver, "ok-2", _event("3"))]
    results = _record_behind_plug(app, receiver, held, calls)
    stored = _stored(app)
    assert isinstance(results[1], psycopg.DataError)
    assert results[0] == (stored["ok-1"], True) and results[2] == (stored["ok-2"], True)
    assert "bad" not in stored


def test_a_stale_integration_in_a_batch_fails_only_its_own_requests(app, held):
    """Rows of an integration disabled since it was cached are not stored (StaleReceiver reaches
    their requests); the other integration's rows in the same statement are."""
    key_a, _ = _integration(app, "alpha")
    key_b, id_b = _integration(app, "beta")
    alpha, beta = _receiver(app, key_a), _receiver(app, key_b)
    with app.app_context():
        set_enabled(db.session.get(Tenant, beta.tenant_id), id_b, False)
    calls = [(alpha, "a-1", _event("1")), (beta, "b-1", _event("2")), (alpha, "a-2", _event("3")),
             (beta, "b-2", _event("4"))]
    results = _record_behind_plug(app, alpha, held, calls)
    stored = _stored(app)
    assert len(held.batches[1]) == 4  # one statement for both integrations
    assert results[0] == (stored["a-1"], True) and results[2] == (stored["a-2"], True)
    assert isinstance(results[1], services.StaleReceiver) and isinstance(results[3], services.StaleReceiver)
    assert sorted(stored) == ["a-1", "a-2", "plug"]


def test_a_backed_up_writer_answers_503_and_the_retry_finds_the_delivery(app, client, held, monkeypatch):
    key, integration_id = _integration(app, "busy")
    receiver = _receiver(app, key)
    with app.app_context():
        secret = services.signing_secrets(db.session.get(Integration, integration_id), datetime.now(timezone.utc))[0]
    monkeypatch.setattr(services, "GROUP_WAIT_SECONDS", 0.3)
    plug = _plug(app, receiver, held)
    body = json.dumps({"ticket_id": "77", "subject": "Return", "status": "open", "requester_email": "a@example.com",
                       "requester_name": "A", "tags": "", "event": "created", "author_role": "End-user",
                       "latest_comment": "Please take back the tent, I want a refund."}).encode()

    def deliver():
        return client.post(f"/webhooks/{key}", data=body,
                           headers=ADAPTER.sign(body, secret, datetime.now(timezone.utc), "slow-1"))

    response = deliver()
    assert response.status_code == 503
    assert response.json["error"]["code"] == "inbox_busy"
    held.release.set()
    plug.join(10)
    _wait_until(lambda: "zendesk:invocation:slow-1" in _stored(app))  # written once the writer moved on
    again = deliver()  # Zendesk retries: the row the 503 was waiting for is there now
    assert again.status_code == 200 and again.json["status"] == "duplicate"


def test_a_full_queue_is_refused_at_once(app, held, monkeypatch):
    key, _ = _integration(app, "full")
    receiver = _receiver(app, key)
    monkeypatch.setattr(services, "GROUP_QUEUE_MAX", 2)
    with app.app_context():
        app.extensions.pop("rebound.inbox_writer", None)  # a writer with the smaller queue
    plug = _plug(app, receiver, held)  # the plug is being written: the queue is empty
    writer = _writer(app)
    waiting = [threading.Thread(target=_record_in_threads, args=(app, [(receiver, f"q-{n}", _event(str(n)))]))
               for n in range(2)]
    for thread in waiting:
        thread.start()
    _wait_queued(writer, 2)
    started = time.monotonic()
    with app.app_context(), pytest.raises(services.InboxBusy):
        services.record_event(receiver, "q-3", _event("3"), b"one too many")
    assert time.monotonic() - started < 1
    held.release.set()
    for thread in [plug, *waiting]:
        thread.join(10)
    assert sorted(_stored(app)) == ["plug", "q-0", "q-1"]


def _first_delivery(app: Flask, slug: str) -> tuple[services.Receiver, services.GroupWriter]:
    """A new integration's first delivery (``<slug>-1``), written by a writer of its own; the
    integration's receiver and that writer."""
    key, _ = _integration(app, slug)
    receiver = _receiver(app, key)
    with app.app_context():
        app.extensions.pop("rebound.inbox_writer", None)
        assert services.record_event(receiver, f"{slug}-1", _event("1"), b"1")[1] is True
    return receiver, _writer(app)


def test_an_idle_writer_ends_and_the_next_delivery_starts_another(app, clean_db, monkeypatch):
    monkeypatch.setattr(services, "GROUP_IDLE_SECONDS", 0.05)
    receiver, writer = _first_delivery(app, "idle")
    _wait_until(lambda: writer._thread is None)
    with app.app_context():
        assert services.record_event(receiver, "idle-2", _event("2"), b"2")[1] is True
    assert sorted(_stored(app)) == ["idle-1", "idle-2"]


class _WakeRacingTheTimeout:
    """The writer's wake-up lock, whose first wait with a timeout runs out just as a delivery
    wakes the writer: ``deliver`` runs in another thread, and the wait reports a timeout only once
    that delivery is queued and has released the lock."""

    def __init__(self, lock: Any, deliver: Callable[[], None], queued: Callable[[], int]) -> None:
        self.lock, self.deliver, self.queued = lock, deliver, queued
        self.raced = False

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if timeout > 0 and not self.raced:
            self.raced = True
            threading.Thread(target=self.deliver).start()
            _wait_until(lambda: self.queued() == 1 and not self.lock.locked())
            return False
        return self.lock.acquire(blocking, timeout)

    def release(self) -> None:
        self.lock.release()

    def locked(self) -> bool:
        return self.lock.locked()


def test_a_delivery_that_wakes_the_writer_as_its_idle_wait_ends_is_written(app, clean_db):
    receiver, writer = _first_delivery(app, "race")
    results: list[Any] = []
    wake = _WakeRacingTheTimeout(
        writer._wake, lambda: results.extend(_record_in_threads(app, [(receiver, "race-2", _event("2"))])),
        lambda: writer.queued)
    writer._wake = wake  # the writer is waiting on the real lock: the swap takes effect at its next wait
    with app.app_context():  # one more delivery: the writer wakes, writes it, and next waits on the swapped lock
        assert services.record_event(receiver, "race-3", _event("3"), b"3")[1] is True
    _wait_until(lambda: len(results) == 1)
    assert results[0][1] is True  # stored, not lost between the timeout and the writer's exit
    assert sorted(_stored(app)) == ["race-1", "race-2", "race-3"]
    # The writer carries on and waits for the next delivery.
    assert writer._thread is not None and writer._thread.is_alive()
    _wait_until(lambda: wake.locked() and writer._asleep)


def test_a_forked_process_writes_with_a_writer_of_its_own(app, clean_db):
    """gunicorn forks its workers: a writer (and its thread) made before the fork is not used after it."""
    key, _ = _integration(app, "fork")
    receiver = _receiver(app, key)
    with app.app_context():
        assert services.record_event(receiver, "parent", _event("1"), b"p")[1] is True
    parent_writer = _writer(app)
    assert parent_writer._thread is not None
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answer through the pipe, never return into pytest
        code = 1
        try:
            with app.app_context():
                # Leave the parent's pooled connections to the parent (close=False), as a forking
                # server must; the child opens its own.
                services._inbox_engine().dispose(close=False)
                db.engine.dispose(close=False)
                result = services.record_event(receiver, "child", _event("2"), b"c")
                child_writer = services._group_writer()
                answer = (result, child_writer is not parent_writer, child_writer.forks == services._forks)
            os.write(write, pickle.dumps(answer))
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read, "rb") as pipe:
        answer = pickle.loads(pipe.read())
    assert os.waitstatus_to_exitcode(status) == 0
    stored = _stored(app)
    assert answer == ((stored["child"], True), True, True)
    with app.app_context():  # and the parent's writer still works
        assert services.record_event(receiver, "parent-2", _event("3"), b"p2")[1] is True
    assert _writer(app) is parent_writer


def _wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_under_load_the_writer_lingers_for_the_next_deliveries_and_a_lone_one_is_written_at_once(app, clean_db,
                                                                                                  monkeypatch):
    """After a batch of several rows the writer waits ``linger_seconds`` after the next batch's first
    row, so a delivery arriving a moment later joins it; after a lone row it does not wait."""
    batches: list[list[str]] = []
    insert = services.GroupWriter._insert

    def recording(self: services.GroupWriter, rows: list[dict[str, Any]], notify: bool) -> dict[tuple[int, str], int]:
        batches.append([row["delivery_key"] for row in rows])
        return insert(self, rows, notify)

    monkeypatch.setattr(services.GroupWriter, "_insert", recording)
    key, _ = _integration(app, "linger")
    receiver = _receiver(app, key)
    writer = _writer(app)
    writer.linger_seconds = 0.5

    def one_now_one_later(first: str, second: str) -> None:
        later = threading.Timer(0.1, _record_in_threads, args=(app, [(receiver, second, _event(second))]))
        later.start()
        _record_in_threads(app, [(receiver, first, _event(first))])
        later.join(10)

    writer._last_batch_rows = 1  # quiet: the first row is written at once, the second on its own
    one_now_one_later("quiet-1", "quiet-2")
    assert batches == [["quiet-1"], ["quiet-2"]]
    writer._last_batch_rows = 5  # busy: the writer waits for the row 0.1 s behind the first
    one_now_one_later("busy-1", "busy-2")
    assert batches[2:] == [["busy-1", "busy-2"]]
    assert set(_stored(app)) == {"quiet-1", "quiet-2", "busy-1", "busy-2"}
