"""The inbox: record a verified delivery once, process it once, retry what failed.

``record_event`` commits before the webhook answers 2xx, so a crash afterwards loses nothing.
``process_event`` claims the event with one conditional UPDATE (a second claimer, inline or in
a worker, finds it taken) and marks it processed in the same transaction that creates the
case: exactly once, or not at all and retried.

Where processing runs is ``REBOUND_INBOUND_PROCESSING``: ``inline`` (the webhook calls
``process_event`` right after the commit) or ``worker`` (``process_received_events``, a worker
job, takes new events). The request path is kept to one database statement: the integration
comes from a per-process cache (``receiver_for``), and the INSERT itself re-checks that the
cached integration is still enabled and unchanged, so a disable or a rotation elsewhere takes
effect on the very next request, in every process. On PostgreSQL the requests of one process
share that statement and its commit (``GroupWriter``: group commit).
"""

from __future__ import annotations

import collections
import functools
import logging
import os
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import psycopg
import sqlalchemy as sa
from flask import current_app

from app.connectors.models import Integration
from app.connectors.schemas import MAIL_KINDS
from app.connectors.services import credentials, find_by_key, signing_secrets
from app.errors import AppError
from app.extensions import db, utcnow
from app.email.services import MailResult, ingest_mail
from app.inbound.models import InboundEvent, RejectedRequest
from app.intake.services import IntakeResult, handle_ticket_event
from app.tenants.models import Tenant
from integrations.base import IntegrationError, TicketEvent, complete_event, get_adapter

log = logging.getLogger(__name__)

RETRYABLE = ("received", "failed")
KEEP_REJECTED_PER_INTEGRATION = 1000
# A cached integration is read again after this long even if nothing changed (bounds memory of
# removed integrations; correctness does not depend on it, see ``record_event``).
RECEIVER_TTL_SECONDS = 30.0
RECEIVER_CACHE_MAX = 4096
# Worker mode on PostgreSQL: recording an event NOTIFYs this channel to wake `flask worker`, at most
# once per NOTIFY_EVERY_SECONDS per process. NOTIFY takes a global lock at commit, so one per
# request would serialise the commits under load; while events keep coming the worker is busy
# (it looks again at once after every batch), and its 1-second poll covers the rest.
NOTIFY_CHANNEL = "rebound_inbound"
NOTIFY_EVERY_SECONDS = 0.25


@dataclass(frozen=True)
class Receiver:
    """What the webhook needs of an integration; enabled ones are cached per process.

    ``version`` is the integration's ``updated_at``: every change (disable, rotate, settings)
    moves it, and ``record_event`` stores nothing unless it still matches. Refused requests are
    counted in ``RejectionCount``, off the integration's row, so they never move it.
    """

    id: int
    tenant_id: int
    kind: str
    enabled: bool
    version: datetime
    secrets: tuple[str, ...]
    expires: float  # time.monotonic() after which the entry is read again


_receivers: dict[str, Receiver] = {}
_receivers_lock = threading.Lock()


def receiver_for(public_key: str, fresh: bool = False) -> Receiver | None:
    """The integration behind a webhook key (None if unknown): from the cache unless ``fresh``.

    Only enabled integrations are cached, so re-enabling one takes effect at once.
    """
    if not fresh:
        cached = _receivers.get(public_key)
        if cached is not None and cached.expires > time.monotonic():
            return cached
    integration = find_by_key(public_key)
    if integration is None:
        db.session.rollback()
        return None
    now = utcnow()
    expires = time.monotonic() + RECEIVER_TTL_SECONDS
    until = credentials(integration).get("previous_valid_until")
    if until:  # the previous secret stops working when its grace period ends: read again then
        left = (datetime.fromisoformat(until) - now).total_seconds()
        if left > 0:
            expires = min(expires, time.monotonic() + left)
    receiver = Receiver(integration.id, integration.tenant_id, integration.kind, integration.enabled,
                        integration.updated_at, tuple(signing_secrets(integration, now)), expires)
    db.session.rollback()  # end the read: the request path keeps no transaction open
    with _receivers_lock:
        if receiver.enabled:
            if len(_receivers) >= RECEIVER_CACHE_MAX:
                _receivers.clear()
            _receivers[public_key] = receiver
        else:
            _receivers.pop(public_key, None)
    return receiver


def forget_receiver(public_key: str) -> None:
    """Drop a cached integration (after its guard failed, or in tests)."""
    with _receivers_lock:
        _receivers.pop(public_key, None)


def record_rejection(tenant_id: int, integration_id: int, status: int, code: str, message: str,
                     remote_addr: str | None, body_bytes: int | None) -> None:
    """Count a refused call in the integration's rejected-request log (its own commit)."""
    db.session.rollback()
    db.session.add(RejectedRequest(
        tenant_id=tenant_id, integration_id=integration_id, status_code=status, code=code,
        message=message[:500], remote_addr=remote_addr, body_bytes=body_bytes,
    ))
    db.session.execute(_COUNT_REJECTION, {"integration_id": integration_id})
    db.session.commit()


# Upserted on its own row, not on the integration's (see ``RejectionCount``); the same SQL on
# PostgreSQL and SQLite.
_COUNT_REJECTION = sa.text(
    "INSERT INTO rejection_counts (integration_id, count) VALUES (:integration_id, 1) "
    "ON CONFLICT (integration_id) DO UPDATE SET count = rejection_counts.count + 1")


class StaleReceiver(Exception):
    """The cached integration changed (disabled, rotated, edited) since it was read: start over."""


_COLUMNS = ("tenant_id", "integration_id", "delivery_key", "kind", "event_type", "ticket_id", "event", "body",
            "status", "attempts", "received_at")


def _single_insert() -> sa.TextClause:
    """``INSERT … SELECT <values> FROM integrations WHERE <still enabled and unchanged>
    ON CONFLICT DO NOTHING RETURNING id``: one delivery on SQLite (PostgreSQL writes in groups,
    see ``GroupWriter``).

    Written as text with typed parameters because SQLAlchemy cannot cache the compiled form of a
    dialect INSERT … SELECT … ON CONFLICT, and compiling it on every request cost more than the
    round trip it saves.
    """
    table = InboundEvent.__table__
    sql = (f"INSERT INTO inbound_events ({', '.join(_COLUMNS)}) SELECT {', '.join(f':{name}' for name in _COLUMNS)} "
           "FROM integrations WHERE integrations.id = :guard_id AND integrations.enabled "
           "AND integrations.updated_at = :guard_version "
           "ON CONFLICT (integration_id, delivery_key) DO NOTHING RETURNING id")
    return sa.text(sql).bindparams(
        *(sa.bindparam(name, type_=table.c[name].type) for name in _COLUMNS),
        sa.bindparam("guard_id", type_=sa.Integer()),
        sa.bindparam("guard_version", type_=Integration.__table__.c.updated_at.type),
    )


_SINGLE_INSERT = _single_insert()
_last_notify = 0.0


def record_event(receiver: Receiver, delivery_key: str, event: TicketEvent, body: bytes) -> tuple[int, bool]:
    """Store a verified delivery; returns (event id, created). A repeat delivery returns the first's id.

    Durable when it returns (``synchronous_commit`` is left on): ``INSERT … ON CONFLICT DO
    NOTHING``, so concurrent copies of a delivery never raise and exactly one of them is told it
    created the row. The INSERT only happens while the integration is still enabled and at the
    version the cache holds. On PostgreSQL the row goes through the process's ``GroupWriter``,
    which stores it with the other requests' rows waiting at that moment, in one statement and
    one commit; on SQLite (one writer anyway) it is one autocommit statement of its own.

    :raise StaleReceiver: the integration changed since ``receiver`` was read (nothing stored).
    :raise InboxBusy: (503) the process's writer is backed up; nothing is known to be stored.
    """
    key = delivery_key[:200]
    writer = _group_writer()
    params: dict[str, Any] = dict(
        tenant_id=receiver.tenant_id, integration_id=receiver.id, delivery_key=key, kind=receiver.kind,
        event_type=event.event_type, ticket_id=event.ticket_id[:100], event=event.to_dict(), body=body,
        received_at=utcnow(), guard_version=receiver.version,
    )
    if writer is not None:
        # Serialised here, in the request's own thread: the writer's thread is the one every
        # request of the process waits for, so it does as little as it can.
        params["event"] = orjson.dumps(params["event"]).decode()  # compact, ten times as fast as json.dumps
        worker_mode = current_app.config["REBOUND_INBOUND_PROCESSING"] == "worker"
        event_id = writer.write(params, notify=worker_mode)
        engine = writer.engine
    else:
        engine = _inbox_engine()
        with engine.connect() as connection:
            event_id = connection.execute(_SINGLE_INSERT,
                                          params | {"status": "received", "attempts": 0,
                                                    "guard_id": receiver.id}).scalar_one_or_none()
    if event_id is not None:
        return event_id, True
    # Nothing inserted: a duplicate, or the integration changed. Rare, so two more reads.
    with engine.connect() as connection:
        current = connection.execute(sa.select(Integration.enabled, Integration.updated_at)
                                     .where(Integration.id == receiver.id)).one_or_none()
        if current is None or not current.enabled or current.updated_at != receiver.version:
            raise StaleReceiver(receiver.id)
        existing = connection.scalar(sa.select(InboundEvent.id).where(
            InboundEvent.integration_id == receiver.id, InboundEvent.delivery_key == key))
    if existing is None:  # cannot happen: the conflicting row is committed
        raise RuntimeError("inbound event could not be stored")
    return existing, False


class InboxBusy(AppError):
    """The process's inbox writer did not store the delivery in time: the sender retries."""

    status = 503
    code = "inbox_busy"


# Group commit (PostgreSQL): rows that wait while a batch is being written go in the next one.
GROUP_MAX_ROWS = 100  # rows per statement
GROUP_QUEUE_MAX = 2000  # rows waiting in one process before requests are answered 503
GROUP_WAIT_SECONDS = 10.0  # a request waits this long for its batch's commit, then answers 503
GROUP_IDLE_SECONDS = 30.0  # an idle writer thread ends; the next delivery starts another

# One statement per batch: ``INSERT … SELECT … FROM (VALUES <one row of scalar parameters per
# delivery>) JOIN integrations … ON CONFLICT DO NOTHING RETURNING``, one round trip in autocommit.
# The join is each row's guard (still enabled, unchanged). The text depends only on the number of
# rows, so each size is prepared once per connection; the forms measured before it (a pipeline of
# single-row INSERTs, one INSERT from ``unnest`` arrays) cost more client CPU per row (docs/ingest.md).
# The placeholders are PostgreSQL's own ($1, $2, …), run through psycopg's ``RawCursor``: with
# ``%s`` psycopg parses the text again on every execute once it has more than 50 parameters.
_GROUP_COLUMNS = (("tenant_id", "integer"), ("integration_id", "integer"), ("delivery_key", "varchar"),
                  ("kind", "varchar"), ("event_type", "varchar"), ("ticket_id", "varchar"), ("event", "jsonb"),
                  ("body", "bytea"), ("received_at", "timestamptz"), ("guard_version", "timestamptz"))


@functools.lru_cache(maxsize=GROUP_MAX_ROWS * 2)
def _group_insert(rows: int, notify: bool) -> str:
    """The statement for a batch of ``rows``; with ``notify``, it also wakes ``flask worker``
    (PostgreSQL delivers one notification per channel and payload per transaction)."""
    casts = [*(kind for _, kind in _GROUP_COLUMNS), "integer"]  # and the row's place in the batch
    values = ", ".join(
        "(" + ", ".join(f"${row * len(casts) + n + 1}::{kind}" for n, kind in enumerate(casts)) + ")"
        for row in range(rows))
    sql = (
        f"INSERT INTO inbound_events ({', '.join(_COLUMNS)}) "
        "SELECT v.tenant_id, v.integration_id, v.delivery_key, v.kind, v.event_type, v.ticket_id, v.event, v.body, "
        "'received', 0, v.received_at "
        f"FROM (VALUES {values}) "
        f"AS v({', '.join(name for name, _ in _GROUP_COLUMNS)}, arrival) "
        "JOIN integrations ON integrations.id = v.integration_id AND integrations.enabled "
        "AND integrations.updated_at = v.guard_version "
        "ORDER BY v.arrival "  # ids in order of arrival: the worker takes the oldest first
        "ON CONFLICT (integration_id, delivery_key) DO NOTHING RETURNING id, integration_id, delivery_key"
    )
    if notify:
        sql = (f"WITH stored AS ({sql}) "
               f"SELECT id, integration_id, delivery_key, pg_notify('{NOTIFY_CHANNEL}', '') FROM stored")
    return sql


class _Pending:
    """One request's row, waiting for the commit of the batch that holds it."""

    __slots__ = ("params", "notify", "done", "event_id", "error")

    def __init__(self, params: dict[str, Any], notify: bool) -> None:
        self.params, self.notify = params, notify
        self.done = threading.Lock()  # held until the writer has an answer: the cheapest wake-up
        self.done.acquire()
        self.event_id: int | None = None
        self.error: BaseException | None = None


class GroupWriter:
    """Group commit for ``record_event`` in one process: a thread writes every row waiting at that
    moment (up to ``GROUP_MAX_ROWS``) with one statement and one commit, then wakes each request
    with its event id (None: not stored, a duplicate or a stale integration). Under the gevent
    server of "Running in production", which patches ``threading`` and ``time``, the
    thread is a greenlet and psycopg waits for the server cooperatively: the same code, without
    the GIL handed between threads at every wake-up.

    A commit waits ~2 ms for PostgreSQL's WAL flush; one per request made that the bulk of a
    delivery's cost under load. Each request still answers only after the commit that holds its
    row, and a batch is one statement in autocommit: stored whole or not at all, its error
    raised in every request that waited for it (but a row the database refuses is written alone,
    so that it fails only its own request). The thread starts on first use in the process that
    writes (after gunicorn's fork) and ends when idle.
    """

    def __init__(self, engine: sa.Engine, linger_seconds: float = 0.0) -> None:
        self.engine = engine
        # Under load (the last batch held more than one row) the writer sleeps this long after a
        # batch's first row for the requests a moment behind it, as PostgreSQL's commit_delay does
        # for commits: larger batches cost less CPU per row, which the other requests are short of
        # on a busy machine. Even 0 sleeps: under gevent, ``sleep(0)`` lets every request that is
        # ready to run reach the queue first; with threads it offers them the GIL. A lone delivery
        # is written at once.
        self.linger_seconds = linger_seconds
        self.forks = _forks  # the process it was made in (see ``_group_writer``)
        # The rows waiting for the next batch, and the writer's own alarm clock. Both are guarded by
        # ``_lock``: a plain deque and one lock cost a request a few microseconds less than
        # ``queue.Queue``, whose put and get each take a condition's lock and notify through it.
        self._waiting: collections.deque[_Pending] = collections.deque()
        self._lock = threading.Lock()
        self._wake = threading.Lock()  # held while nothing has woken the writer; released to wake it
        self._wake.acquire()
        self._asleep = False  # the writer waits on ``_wake`` (or is about to)
        self._thread: threading.Thread | None = None
        self._last_batch_rows = 0

    @property
    def queued(self) -> int:
        """How many rows wait for the next batch."""
        return len(self._waiting)

    def write(self, params: dict[str, Any], notify: bool) -> int | None:
        """Store one row with the next batch; its event id, or None if nothing was stored.

        :raise InboxBusy: the queue is full, or the batch did not commit within ``GROUP_WAIT_SECONDS``.
        """
        pending = _Pending(params, notify)
        with self._lock:
            if len(self._waiting) >= GROUP_QUEUE_MAX:
                raise InboxBusy("Too many deliveries are waiting to be stored; retry later.")
            self._waiting.append(pending)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="rebound-inbox-writer", daemon=True)
                self._thread.start()
            elif self._asleep:
                self._asleep = False
                self._wake.release()
        if not pending.done.acquire(timeout=GROUP_WAIT_SECONDS):
            # It may still be stored: the sender's retry then finds it and is told "duplicate".
            raise InboxBusy("The delivery could not be stored in time; retry later.")
        if pending.error is not None:
            raise pending.error
        return pending.event_id

    def _run(self) -> None:
        while True:
            with self._lock:  # ``write`` appends under this lock: nothing slips in unseen
                asleep = self._asleep = not self._waiting
            if asleep:
                if not self._wake.acquire(timeout=GROUP_IDLE_SECONDS):
                    with self._lock:
                        if self._asleep:  # still nothing: end; the next delivery starts another writer
                            self._asleep = False
                            self._thread = None
                            return
                    # A delivery woke the writer just as the wait ran out: take that wake-up, so
                    # that the next wait blocks.
                    self._wake.acquire()
                continue
            if self._last_batch_rows > 1:
                time.sleep(self.linger_seconds)
            with self._lock:
                batch = [self._waiting.popleft() for _ in range(min(len(self._waiting), GROUP_MAX_ROWS))]
            self._last_batch_rows = len(batch)
            self._write_batch(batch)

    def _write_batch(self, batch: list[_Pending]) -> None:
        # Repeats of one delivery within the batch: the first is written, the rest are told "not
        # stored" and find it as a duplicate once it is committed.
        first: dict[tuple[int, str], _Pending] = {}
        for pending in batch:
            first.setdefault((pending.params["integration_id"], pending.params["delivery_key"]), pending)
        notify = any(pending.notify for pending in batch)
        try:
            stored = self._insert([pending.params for pending in first.values()], notify)
            for key, pending in first.items():
                pending.event_id = stored.get(key)
        except psycopg.DatabaseError as exc:
            if isinstance(exc, psycopg.OperationalError) or len(first) == 1:
                self._fail(batch, exc)
                return
            # A row the database refuses (a value too long, say) fails the statement, which stored
            # nothing: write the rows one by one, so that only its own request fails.
            for key, pending in first.items():
                try:
                    pending.event_id = self._insert([pending.params], notify).get(key)
                except Exception as row_exc:
                    pending.error = row_exc
        except BaseException as exc:
            self._fail(batch, exc)
            return
        for pending in batch:
            original = first[(pending.params["integration_id"], pending.params["delivery_key"])]
            if original is not pending:
                pending.error = original.error
            pending.done.release()

    @staticmethod
    def _fail(batch: list[_Pending], exc: BaseException) -> None:
        """Nothing of the batch is stored: every request in it fails (and its sender retries)."""
        log.warning("storing %d inbound events failed: %s", len(batch), exc)
        for pending in batch:
            pending.error = exc
            pending.done.release()

    def _insert(self, rows: list[dict[str, Any]], notify: bool) -> dict[tuple[int, str], int]:
        """One INSERT for all ``rows`` in autocommit, prepared, on the driver's connection; returns
        the stored rows' ids by (integration id, delivery key).

        A pooled connection the server has closed (restart, idle timeout) is dropped and the batch
        tried once more on a new one; should the lost attempt have committed, the second finds the
        rows and reports duplicates, and the worker processes the events all the same.
        """
        global _last_notify
        if notify:  # NOTIFY serialises commits: at most every NOTIFY_EVERY_SECONDS per process
            notify = time.monotonic() - _last_notify >= NOTIFY_EVERY_SECONDS
            if notify:
                _last_notify = time.monotonic()
        params: list[Any] = []
        for arrival, row in enumerate(rows):
            params += [row[name] for name, _ in _GROUP_COLUMNS]
            params.append(arrival)
        sql = _group_insert(len(rows), notify)
        for attempt in (1, 2):
            pooled = self.engine.raw_connection()
            try:
                with psycopg.RawCursor(pooled.driver_connection) as cursor:
                    result = cursor.execute(sql, params, prepare=True).fetchall()
            except psycopg.OperationalError:
                pooled.invalidate()
                if attempt == 2:
                    raise
                continue
            finally:
                if pooled.dbapi_connection is not None:  # not invalidated: back to the pool
                    pooled.close()
            return {(row[1], row[2]): row[0] for row in result}
        return {}  # not reached


_writer_lock = threading.Lock()
# Counted up in a child after every fork: a writer made before the fork has no thread in the
# child. A counter rather than os.getpid(), which is a system call, on every delivery.
_forks = 0


def _group_writer() -> GroupWriter | None:
    """This process's writer for the app's database (None on SQLite: one writer anyway); a new
    one after a fork, since the parent's thread is not in the child."""
    writer: GroupWriter | None = current_app.extensions.get("rebound.inbox_writer")
    if writer is not None and writer.forks == _forks:
        return writer
    if db.engine.dialect.name != "postgresql":
        return None
    engine = _inbox_engine()
    with _writer_lock:
        writer = current_app.extensions.get("rebound.inbox_writer")
        if writer is None or writer.forks != _forks:
            writer = current_app.extensions["rebound.inbox_writer"] = GroupWriter(
                engine, current_app.config["REBOUND_INBOX_LINGER_MS"] / 1000)
    return writer


def _after_fork_in_child() -> None:
    global _writer_lock, _forks
    _writer_lock = threading.Lock()  # a thread of the parent may have held it at the fork
    _forks += 1


os.register_at_fork(after_in_child=_after_fork_in_child)


def _inbox_engine() -> sa.Engine:
    """The engine ``record_event`` writes with: on PostgreSQL one of its own in autocommit and
    without the pool's pre-ping, so that recording a delivery is exactly one round trip (a dead
    pooled connection is handled by retrying once instead). SQLite has no server: the app's engine."""
    engine = db.engine
    if engine.dialect.name != "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    made_for, inbox = current_app.extensions.get("rebound.inbox_engine", (None, None))
    if made_for is not engine:
        inbox = sa.create_engine(engine.url, isolation_level="AUTOCOMMIT", pool_pre_ping=False)
        current_app.extensions["rebound.inbox_engine"] = (engine, inbox)
        # Whoever disposes of the app's connections (tests, a fork) means these as well.
        sa.event.listen(engine, "engine_disposed", lambda _: inbox.dispose())
    return inbox


def _backoff(attempts: int) -> timedelta:
    """Exponential backoff with jitter: 30 s, 1 min, 2 min … capped at 6 h."""
    base = min(30 * 2 ** max(attempts - 1, 0), 6 * 3600)
    return timedelta(seconds=base * random.uniform(0.8, 1.2))


def process_event(event_id: int) -> str:
    """Process one inbox event exactly once; returns its status afterwards.

    The claim (``UPDATE … WHERE status IN (received, failed) RETURNING``) and the work commit
    together. A failure rolls both back, then records the error and schedules a retry in a
    transaction of its own; after ``REBOUND_INBOUND_MAX_ATTEMPTS`` the event is ``dead``.
    """
    claimed = _claim(InboundEvent.id == event_id, InboundEvent.status.in_(RETRYABLE))
    if not claimed:
        db.session.rollback()
        return "skipped"
    [stored] = claimed
    try:
        result = _work(stored, _senders(claimed)[stored.integration_id])
        db.session.flush()  # the outcome names the rows the work made
        _finish(stored, result)
        db.session.commit()
        return stored.status
    except Exception as exc:  # any failure: undo the work and the claim, then record it
        db.session.rollback()
        if not isinstance(exc, IntegrationError):
            log.exception("processing inbound event %s failed", event_id)
        return _record_failure(event_id, exc)


def process_events(event_ids: list[int]) -> int:
    """Process these inbox events (those still waiting) as one batch; returns how many were handled.
    See ``_process_batch``."""
    if not event_ids:
        return 0
    return _process_batch(_claim(InboundEvent.id.in_(event_ids), InboundEvent.status.in_(RETRYABLE)))


def _claim(*where: sa.ColumnElement[bool]) -> list[InboundEvent]:
    """Mark the events matching ``where`` as being processed, in this transaction, oldest first."""
    claimed = db.session.scalars(
        sa.update(InboundEvent)
        .where(*where)
        .values(status="processing", attempts=InboundEvent.attempts + 1)
        .returning(InboundEvent)
        .execution_options(populate_existing=True)
    ).all()
    return sorted(claimed, key=lambda stored: stored.id)


def _senders(claimed: list[InboundEvent]) -> dict[int, tuple[Integration, Tenant]]:
    """The integration and tenant of each claimed event, in one round trip for all of them."""
    rows = db.session.execute(
        sa.select(Integration, Tenant).join(Tenant, Tenant.id == Integration.tenant_id)
        .where(Integration.id.in_({stored.integration_id for stored in claimed}))
    ).all()
    return {integration.id: (integration, tenant) for integration, tenant in rows}


def _work(stored: InboundEvent, sender: tuple[Integration, Tenant]) -> MailResult | IntakeResult:
    """The processing itself: mail through the mail pipeline, tickets through intake; no commit."""
    integration, tenant = sender
    if integration.kind in MAIL_KINDS:  # the body is the raw message
        return ingest_mail(tenant, integration, stored.body, inbound_event_id=stored.id)
    event = complete_event(get_adapter(integration.kind), TicketEvent.from_dict(stored.event),
                           (integration.settings or {}).get("base_url"), credentials(integration))
    return handle_ticket_event(tenant, integration, event)


def _finish(stored: InboundEvent, result: MailResult | IntakeResult) -> None:
    stored.status = "ignored" if result.outcome == "ignored" else "processed"
    stored.outcome = result.to_dict()
    stored.case_id = result.case.id if result.case else None
    stored.processed_at, stored.last_error, stored.next_attempt_at = utcnow(), None, None


def _process_batch(claimed: list[InboundEvent]) -> int:
    """Process claimed events in one transaction: one commit for the batch instead of one per event
    (on PostgreSQL a commit waits for the WAL to reach the disk, the largest single cost of a small
    event). Each event still sees the ones before it (a reply finds the case its first mail opened).

    Should any of them fail, the whole batch is rolled back and redone one event per transaction
    (``process_event``), so a bad event fails alone, with its error recorded, and the others are
    processed as they would have been. Returns how many events were handled.
    """
    if not claimed:
        db.session.rollback()
        return 0
    ids = [stored.id for stored in claimed]
    try:
        senders = _senders(claimed)
        results = [_work(stored, senders[stored.integration_id]) for stored in claimed]
        # Marked done together at the end: one executemany UPDATE, not one per event (a change
        # made earlier would be flushed by the next event's first query, a round trip each). The
        # flush first: the outcomes name the rows the work made.
        db.session.flush()
        for stored, result in zip(claimed, results):
            _finish(stored, result)
        db.session.commit()
        return len(ids)
    except Exception:
        db.session.rollback()
        log.info("a batch of %d inbound events failed; processing them one at a time", len(ids))
        return sum(process_event(event_id) != "skipped" for event_id in ids)


def _record_failure(event_id: int, exc: Exception) -> str:
    stored = db.session.get(InboundEvent, event_id, populate_existing=True)
    stored.attempts += 1
    dead = stored.attempts >= current_app.config["REBOUND_INBOUND_MAX_ATTEMPTS"]
    stored.status = "dead" if dead else "failed"
    stored.last_error = f"{type(exc).__name__}: {exc}"[:2000]
    stored.next_attempt_at = None if dead else utcnow() + _backoff(stored.attempts)
    db.session.commit()
    return stored.status


def due_event_ids(limit: int = 100, now: datetime | None = None) -> list[int]:
    """Events to (re)process: failed ones whose retry time has come, and received ones whose
    inline processing never finished (the process died between commit and processing)."""
    now = now or utcnow()
    stale_before = now - timedelta(seconds=current_app.config["REBOUND_INBOUND_STALE_SECONDS"])
    return list(db.session.scalars(
        sa.select(InboundEvent.id)
        .where(sa.or_(
            sa.and_(InboundEvent.status == "failed", InboundEvent.next_attempt_at <= now),
            sa.and_(InboundEvent.status == "received", InboundEvent.received_at <= stale_before),
        ))
        .order_by(InboundEvent.id)
        .limit(limit)
    ))


def retry_due_events(limit: int = 100) -> int:
    """Worker job: process every due event; returns how many were handled."""
    handled = 0
    for event_id in due_event_ids(limit):
        if process_event(event_id) != "skipped":
            handled += 1
    return handled


def process_received_events(batch: int = 25, limit: int = 2000) -> int:
    """Worker job (``REBOUND_INBOUND_PROCESSING=worker``): process new events in batches of
    ``batch`` (``_process_batch``), at most ``limit`` per run; returns how many were handled.

    Several workers may run it at once: the claim takes its batch with ``FOR UPDATE SKIP LOCKED``
    (PostgreSQL; SQLite has one writer anyway), so a worker passes over what another is processing,
    and the claim's status check still stops a second run of an event already done.
    """
    handled = 0
    while handled < limit:
        # The status index hands events over roughly in arrival order; within a batch it is exact.
        waiting = (sa.select(InboundEvent.id).where(InboundEvent.status == "received")
                   .limit(min(batch, limit - handled)).with_for_update(skip_locked=True))
        if db.session.get_bind().dialect.name == "postgresql":
            # As a plain IN-subquery PostgreSQL may run the locking SELECT more than once, and the
            # batch grows past its LIMIT; a MATERIALIZED CTE runs it once. (Not for SQLite, whose
            # driver opens no transaction for a statement that starts with WITH.)
            picked = waiting.cte("waiting").prefix_with("MATERIALIZED")
            waiting = sa.select(picked.c.id)
        claimed = _claim(InboundEvent.id.in_(waiting), InboundEvent.status == "received")
        if not claimed:  # nothing waiting, or everything in sight belongs to other workers
            db.session.rollback()
            break
        handled += _process_batch(claimed)
    return handled


def prune_rejected_requests() -> int:
    """Worker job: keep only the newest rejected requests per integration; returns rows removed."""
    removed = 0
    for integration_id in db.session.scalars(sa.select(Integration.id)):
        cutoff = db.session.scalar(
            sa.select(RejectedRequest.id).where(RejectedRequest.integration_id == integration_id)
            .order_by(RejectedRequest.id.desc()).offset(KEEP_REJECTED_PER_INTEGRATION).limit(1))
        if cutoff is not None:
            removed += db.session.execute(sa.delete(RejectedRequest).where(
                RejectedRequest.integration_id == integration_id, RejectedRequest.id <= cutoff)).rowcount
    db.session.commit()
    return removed
