"""The outbox dispatcher: claim due messages, deliver them through ``integrations/``, record the outcome.

A claim sets ``sending`` and a lease and is committed before any HTTP call; the calls happen
outside every transaction; the outcomes are written in transactions of their own, a few at a
time (``RECORD_EVERY``). Only the head of each ordering key (one ticket) is claimable, so a
ticket's updates arrive in the order they were made. A worker killed mid-batch leaves
``sending`` rows whose lease expires; they are claimed again, so a message whose outcome was
not yet written may arrive twice (at least once; the idempotency key travels with it).

On PostgreSQL the claim is ``SELECT … FOR UPDATE SKIP LOCKED``, so any number of workers share
the queue; on SQLite (one writer) a conditional ``UPDATE`` per row is enough.

Pacing: every destination (``integration:{id}``, ``subscription:{id}``) has one
``DeliveryThrottle`` row shared by all workers. A claim locks it and takes at most what is left
of the destination's fixed window (the helpdesk client's documented ``rate_limit``, or the
integration's ``settings.rate_limit``), counted in requests: a message costs one request, a
read-modify-write tag update two, and a delivery that needed more is charged the rest when its
outcome is recorded. What does not fit stays pending, its attempt not counted. An answer with
``Retry-After`` (a 429, a 503) blocks the whole destination until then (``blocked_until``).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import requests
import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased

from app.connectors.models import Integration
from app.connectors.schemas import MAIL_KINDS
from app.connectors.services import credentials
from app.email import outbound as mail_outbound
from app.extensions import UTCDateTime, db, utcnow
from app.outbound import events
from app.outbound.models import DeliveryAttempt, DeliveryThrottle, OutboxMessage
from app.outbound.outbox import action_from_dict
from integrations import get_client
from integrations.base import MAX_ERROR, Connection, DeliveryResult, OutboundAction, RateLimit

log = logging.getLogger(__name__)

BACKOFF_CAP_SECONDS = 3600.0
# Outcomes written per commit. A worker killed mid-batch re-sends at most these (and the one in
# flight); one commit per message would cost more than the HTTP call it records.
RECORD_EVERY = 50
RECORD_AT_LEAST_EVERY_SECONDS = 1.0
# Helpdesk clients whose tag update reads the ticket's tags, then writes the whole list.
READ_MODIFY_WRITE_TAGS = frozenset({"front", "freshdesk", "chatwoot"})
# Merchant webhook endpoints document no limit: they are not paced, but a 429 still blocks them.
SUBSCRIPTION_RATE_LIMIT: RateLimit | None = None


@dataclass(frozen=True)
class Claimed:
    message_id: int
    kind: str
    connection: Connection | None
    problem: str | None  # why it cannot be delivered at all (no base URL, no client)
    destination: str = ""  # the DeliveryThrottle it is paced by, e.g. "integration:12"
    action: OutboundAction | None = None  # loaded with the claim, so delivering reads nothing
    cost: int = 1  # requests charged to the destination's window when claimed


def lease() -> timedelta:
    """How long a claim is the claiming worker's (``REBOUND_OUTBOX_LEASE_SECONDS``)."""
    return timedelta(seconds=current_app.config.get("REBOUND_OUTBOX_LEASE_SECONDS", 60))


def _due(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(
        sa.and_(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now),
        sa.and_(OutboxMessage.status == "sending", OutboxMessage.lease_until < now),
    )


_EARLIER = aliased(OutboxMessage)  # built once: building an alias costs more than the rest of a claim


def _is_head() -> sa.ColumnElement[bool]:
    earlier = _EARLIER
    return ~sa.exists().where(
        earlier.ordering_key == OutboxMessage.ordering_key,
        earlier.id < OutboxMessage.id,
        earlier.status.in_(("pending", "sending")),
    )


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with full jitter between half and all of ``2 ** (attempts - 1)`` s, capped."""
    ceiling = min(BACKOFF_CAP_SECONDS, 2.0 ** max(attempts - 1, 0))
    return random.uniform(ceiling / 2, ceiling)


# ---- pacing -----------------------------------------------------------------------------------

def destination_of(message: OutboxMessage) -> str:
    """The throttle key of a message: its integration's, or its webhook subscription's."""
    if message.integration_id is not None:
        return f"integration:{message.integration_id}"
    return f"subscription:{message.subscription_id}"


def rate_limit_for(integration: Integration | None) -> RateLimit | None:
    """The integration's ``settings.rate_limit`` if set, else its client's documented default;
    None (unpaced) when there is no client for its kind."""
    if integration is None:
        return None
    override = (integration.settings or {}).get("rate_limit")
    if isinstance(override, dict):
        try:
            requests_, per_seconds = int(override["requests"]), float(override["per_seconds"])
            if requests_ >= 1 and per_seconds > 0:
                return RateLimit(requests_, per_seconds)
        except (KeyError, TypeError, ValueError):
            pass  # validated on the way in; a hand-edited row falls back to the default
    try:
        return get_client(integration.kind).rate_limit
    except KeyError:
        return None


def request_cost(kind: str, action: dict[str, Any]) -> int:
    """Requests one action is expected to make: two for a read-modify-write tag update or a
    tag update that both adds and removes, else one (``record`` charges any excess)."""
    if action.get("kind") != "tags":
        return 1
    if kind in READ_MODIFY_WRITE_TAGS or (action.get("add_tags") and action.get("remove_tags")):
        return 2
    return 1


def _insert(model: type[Any]) -> Any:
    """An INSERT that can say ``ON CONFLICT`` on this database."""
    return (postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert)(model)


class _Limits:
    """Rate limits and integrations for one claim, loaded fresh (settings may have changed)."""

    def __init__(self) -> None:
        self.integrations: dict[int, Integration | None] = {}

    def load(self, ids: Iterable[int]) -> None:
        missing = {i for i in ids if i not in self.integrations}
        if not missing:
            return
        found = {i.id: i for i in db.session.scalars(
            sa.select(Integration).where(Integration.id.in_(missing)).execution_options(populate_existing=True))}
        self.integrations.update({i: found.get(i) for i in missing})

    def of(self, destination: str) -> RateLimit | None:
        kind, _, ident = destination.partition(":")
        if kind == "integration" and ident.isdigit():
            return rate_limit_for(self.integrations.get(int(ident)))
        return SUBSCRIPTION_RATE_LIMIT


def _closed(limits: _Limits, now: datetime) -> set[str]:
    """Destinations that are blocked or have spent their window, as last committed (a hint that
    keeps them from crowding out the others; the locked check in ``_allowance`` decides)."""
    rows = db.session.execute(sa.select(
        DeliveryThrottle.destination, DeliveryThrottle.window_started_at, DeliveryThrottle.sent_in_window,
        DeliveryThrottle.blocked_until,
    ).where(sa.or_(DeliveryThrottle.blocked_until > now, DeliveryThrottle.sent_in_window > 0))).all()
    limits.load(int(r.destination.split(":")[1]) for r in rows if r.destination.startswith("integration:")
                and r.destination.split(":")[1].isdigit())
    closed = set()
    for row in rows:
        rate = limits.of(row.destination)
        if row.blocked_until is not None and row.blocked_until > now:
            closed.add(row.destination)
        elif rate is not None and now < row.window_started_at + timedelta(seconds=rate.per_seconds) \
                and row.sent_in_window >= rate.requests:
            closed.add(row.destination)
    return closed


def _allowance(destination: str, rate: RateLimit, now: datetime) -> tuple[DeliveryThrottle, int]:
    """Lock the destination's throttle row (created on first use) and return it with the
    requests its current window has left (0 while blocked); starts a new window when due."""
    locked = (sa.select(DeliveryThrottle).where(DeliveryThrottle.destination == destination)
              .with_for_update().execution_options(populate_existing=True))
    throttle = db.session.scalars(locked).one_or_none()
    if throttle is None:  # first use; a concurrent first use inserts it too, and one of them waits
        db.session.execute(_insert(DeliveryThrottle).values(
            destination=destination, window_started_at=now, sent_in_window=0).on_conflict_do_nothing(
            index_elements=["destination"]))
        throttle = db.session.scalars(locked).one()
    if throttle.blocked_until is not None and throttle.blocked_until > now:
        return throttle, 0
    if now >= throttle.window_started_at + timedelta(seconds=rate.per_seconds):
        throttle.window_started_at, throttle.sent_in_window = now, 0
    return throttle, max(0, rate.requests - throttle.sent_in_window)


# ---- claim, deliver, record -------------------------------------------------------------------

def claim(limit: int, now: datetime | None = None) -> list[Claimed]:
    """Claim up to ``limit`` due head-of-line messages (status sending, a lease) and commit.

    Per destination, at most what its rate window has left; none of a blocked destination.
    """
    now = now or utcnow()
    until = now + lease()
    limits = _Limits()
    closed = _closed(limits, now)
    query = sa.select(OutboxMessage).where(_is_head())
    closed_integrations = [int(d.split(":")[1]) for d in closed if d.startswith("integration:")]
    closed_subscriptions = [int(d.split(":")[1]) for d in closed if d.startswith("subscription:")]
    if closed_integrations:
        query = query.where(sa.or_(OutboxMessage.integration_id.is_(None),
                                   OutboxMessage.integration_id.not_in(closed_integrations)))
    if closed_subscriptions:
        query = query.where(sa.or_(OutboxMessage.subscription_id.is_(None),
                                   OutboxMessage.subscription_id.not_in(closed_subscriptions)))
    query = query.order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(limit)
    postgres = db.engine.dialect.name == "postgresql"
    if postgres:
        query = query.with_for_update(skip_locked=True, of=OutboxMessage)
    # Due pending messages and expired leases in two queries: each walks an index in order and
    # stops at ``limit`` heads, where one query with OR sorts every pending row (10 ms at 10k).
    candidates = sorted(
        [*db.session.scalars(query.where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)),
         *db.session.scalars(query.where(OutboxMessage.status == "sending", OutboxMessage.lease_until < now))],
        key=lambda m: (m.next_attempt_at, m.id))[:limit]
    limits.load(m.integration_id for m in candidates if m.integration_id is not None)

    groups: dict[str, list[OutboxMessage]] = {}
    for message in candidates:
        groups.setdefault(destination_of(message), []).append(message)
    claimed: list[tuple[OutboxMessage, int]] = []
    for destination in sorted(groups):  # one lock order for every worker: no deadlock
        rate = limits.of(destination)
        throttle, left = _allowance(destination, rate, now) if rate is not None else (None, None)
        kind = _kind(limits, groups[destination][0])
        spent = 0
        for message in groups[destination]:
            # A message never costs more than a whole window, or it could never be sent.
            cost = min(request_cost(kind, message.action), rate.requests) if rate is not None else 1
            if left is not None and spent + cost > left:
                break  # the rest waits for the next window, in order
            if postgres:
                won = True  # locked by the SELECT; one UPDATE for the batch below
            else:
                won = bool(db.session.execute(
                    sa.update(OutboxMessage)
                    .where(OutboxMessage.id == message.id, _due(now))
                    .values(status="sending", lease_until=until, attempts=OutboxMessage.attempts + 1)
                    .execution_options(synchronize_session=False)
                ).rowcount)
            if won:
                claimed.append((message, cost))
                spent += cost
        if throttle is not None:
            throttle.sent_in_window += spent
    if postgres and claimed:
        db.session.execute(
            sa.update(OutboxMessage).where(OutboxMessage.id.in_([m.id for m, _ in claimed]))
            .values(status="sending", lease_until=until, attempts=OutboxMessage.attempts + 1)
            .execution_options(synchronize_session=False))
    result = []
    connections: dict[int | None, Claimed] = {}  # one decryption of credentials per integration
    for message, cost in claimed:
        if message.subscription_id is not None:  # a case event for a merchant's webhook subscription
            result.append(Claimed(message.id, events.KIND, *events.delivery_target(message),
                                  destination=destination_of(message), cost=cost))
            continue
        if _kind(limits, message) in MAIL_KINDS:  # a mail to the customer: SMTP, no base_url nor client
            result.append(Claimed(message.id, mail_outbound.KIND, None, None, destination=destination_of(message),
                                  cost=cost))
            continue
        if message.integration_id not in connections:
            integration = limits.integrations.get(message.integration_id) if message.integration_id is not None else None
            connections[message.integration_id] = _connection_for(message.id, integration)
        result.append(replace(connections[message.integration_id], message_id=message.id,
                              destination=destination_of(message), action=action_from_dict(message.action), cost=cost))
    db.session.commit()
    return result


def _kind(limits: _Limits, message: OutboxMessage) -> str:
    integration = limits.integrations.get(message.integration_id) if message.integration_id is not None else None
    return integration.kind if integration is not None else ""


def _connection_for(message_id: int, integration: Integration | None) -> Claimed:
    if integration is None:
        return Claimed(message_id, "", None, "The integration no longer exists.")
    base_url = (integration.settings or {}).get("base_url")
    if not base_url:
        return Claimed(message_id, integration.kind, None, f"Integration {integration.id} has no settings.base_url.")
    try:
        get_client(integration.kind)
    except KeyError:
        return Claimed(message_id, integration.kind, None, f"No write-back client for {integration.kind!r}.")
    secrets = {k: str(v) for k, v in credentials(integration).items() if isinstance(v, str)}
    return Claimed(message_id, integration.kind, Connection(base_url=base_url, credentials=secrets), None)


def deliver(claimed: Claimed, session: requests.Session) -> DeliveryResult:
    """Carry out one claimed message; runs outside any transaction and never raises."""
    if claimed.kind == mail_outbound.KIND:  # reads, sends outside any transaction, records; never raises
        return mail_outbound.deliver_mail(claimed.message_id)
    if claimed.connection is None:
        return DeliveryResult("permanent", None, 0.0, error=claimed.problem, requests_made=0)
    if claimed.kind == events.KIND:  # a signed Standard Webhooks POST; never raises
        message = db.session.get(OutboxMessage, claimed.message_id)
        assert message is not None
        body, webhook_id = events.event_body(message), message.idempotency_key
        db.session.rollback()
        return events.send(claimed.connection, body, webhook_id, session)
    action = claimed.action
    if action is None:
        message = db.session.get(OutboxMessage, claimed.message_id)
        assert message is not None
        action = action_from_dict(message.action)
    db.session.rollback()  # hold no transaction (nor, on SQLite, a read lock) during the call
    try:
        return get_client(claimed.kind).deliver(action, claimed.connection, session)
    except Exception as exc:  # a client bug must not kill the dispatcher; the message is retried
        log.exception("outbox message %s: client raised", claimed.message_id)
        return DeliveryResult("retry", None, 0.0, error=f"{type(exc).__name__}: {exc}"[:MAX_ERROR])


def _apply(message: OutboxMessage, result: DeliveryResult, now: datetime, config: Any) -> None:
    if message.status in ("delivered", "discarded"):
        return  # our lease ran out and another worker (or an admin) settled it: keep their outcome
    message.last_status_code, message.lease_until = result.status_code, None
    message.last_error = (result.error or None) and result.error[:MAX_ERROR]
    if result.outcome == "delivered":
        message.status, message.delivered_at, message.last_error = "delivered", now, None
    elif result.outcome == "permanent":
        message.status = "dead"
    elif (message.attempts >= config["REBOUND_OUTBOX_MAX_ATTEMPTS"]
          or now - message.created_at > timedelta(seconds=config["REBOUND_OUTBOX_MAX_AGE_SECONDS"])):
        message.status = "dead"
    else:
        wait = max(result.retry_after or 0.0, backoff_seconds(message.attempts))
        message.status, message.next_attempt_at = "pending", now + timedelta(seconds=wait)


def _charge(destination: str, extra_requests: int, blocked_until: datetime | None, now: datetime) -> None:
    """Add requests a delivery made beyond its claim's estimate, and/or block the destination."""
    col = DeliveryThrottle.__table__.c
    changes: dict[str, Any] = {}
    if extra_requests:
        changes["sent_in_window"] = col.sent_in_window + extra_requests
    if blocked_until is not None:
        until = sa.literal(blocked_until, UTCDateTime())
        changes["blocked_until"] = sa.case(
            (sa.or_(col.blocked_until.is_(None), col.blocked_until < until), until), else_=col.blocked_until)
    if changes:
        db.session.execute(_insert(DeliveryThrottle).values(
            destination=destination, window_started_at=now, sent_in_window=extra_requests,
            blocked_until=blocked_until,
        ).on_conflict_do_update(index_elements=["destination"], set_=changes))


def record_many(outcomes: Sequence[tuple[Claimed, DeliveryResult]], now: datetime | None = None) -> dict[int, str]:
    """Store the attempts and each message's next status, charge and block destinations; one
    commit. Returns the new status by message id."""
    if not outcomes:
        return {}
    now = now or utcnow()
    config = current_app.config
    statuses: dict[int, str] = {}
    # The common case, a delivery, in two statements for the lot; the rest through the ORM.
    delivered: dict[int | None, list[int]] = {}
    for claimed, result in outcomes:
        if result.outcome == "delivered":
            delivered.setdefault(result.status_code, []).append(claimed.message_id)
    for status_code, ids in delivered.items():
        # Not one another worker (after our lease ran out) or an admin settled, nor a deleted one.
        updated = db.session.scalars(
            sa.update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids), OutboxMessage.status.not_in(("delivered", "discarded")))
            .values(status="delivered", delivered_at=now, last_error=None, last_status_code=status_code,
                    lease_until=None)
            .returning(OutboxMessage.id)
            .execution_options(synchronize_session=False)).all()
        statuses.update(dict.fromkeys(updated, "delivered"))
    others = [c.message_id for c, r in outcomes if r.outcome != "delivered"]
    messages = {m.id: m for m in db.session.scalars(
        sa.select(OutboxMessage).where(OutboxMessage.id.in_(others)).execution_options(populate_existing=True))
    } if others else {}
    known = set(statuses) | set(messages)
    if known:
        db.session.execute(sa.insert(DeliveryAttempt), [
            {"message_id": c.message_id, "attempted_at": now, "status_code": r.status_code,
             "latency_ms": r.latency_ms, "outcome": r.outcome,
             "error": (r.error or None) and r.error[:MAX_ERROR]}
            for c, r in outcomes if c.message_id in known])
    extra: dict[str, int] = {}
    blocks: dict[str, datetime] = {}
    for claimed, result in outcomes:
        message = messages.get(claimed.message_id)
        if message is not None:
            _apply(message, result, now, config)
            statuses[message.id] = message.status
        elif claimed.message_id not in statuses:
            continue
        destination = claimed.destination or (destination_of(message) if message is not None else "")
        if not destination:
            continue  # record() of a delivery: no destination to charge (pacing is the claim's)
        if result.requests_made > claimed.cost:
            extra[destination] = extra.get(destination, 0) + result.requests_made - claimed.cost
        if result.retry_after:
            until = now + timedelta(seconds=result.retry_after)
            blocks[destination] = max(until, blocks.get(destination, until))
    db.session.flush()  # message rows first, throttle rows after, in one order: no deadlock
    for destination in sorted(set(extra) | set(blocks)):
        _charge(destination, extra.get(destination, 0), blocks.get(destination), now)
    db.session.commit()
    for message in messages.values():
        if message.status == "dead":
            log.warning("outbox message %s is dead after %d attempt(s): %s", message.id, message.attempts,
                        message.last_error)
    return statuses


def record(message_id: int, result: DeliveryResult, now: datetime | None = None) -> str:
    """Store one attempt and the message's next status; commit. Returns the new status."""
    statuses = record_many([(Claimed(message_id, "", None, None), result)], now)
    return statuses.get(message_id, "")


def release(batch: Sequence[Claimed]) -> None:
    """Give back claimed messages that were not attempted (their destination got blocked, or the
    lease ran short): pending again, the attempt not counted."""
    if not batch:
        return
    db.session.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.id.in_([c.message_id for c in batch]), OutboxMessage.status == "sending")
        .values(status="pending", lease_until=None, attempts=OutboxMessage.attempts - 1)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def dispatch_due(limit: int = 50, now: datetime | None = None) -> int:
    """Claim and deliver up to ``limit`` due messages; returns how many were attempted."""
    batch = claim(limit, now)
    if not batch:
        return 0
    lease_seconds = lease().total_seconds()
    # Start no delivery that might outlive the lease: another worker would send it too.
    stop_at = time.monotonic() + lease_seconds - min(lease_seconds / 2, 10.0)
    outcomes: list[tuple[Claimed, DeliveryResult]] = []
    blocked: set[str] = set()
    held: list[Claimed] = []
    written = time.monotonic()
    with requests.Session() as session:
        for claimed in batch:
            if claimed.destination in blocked or time.monotonic() > stop_at:
                held.append(claimed)
                continue
            result = deliver(claimed, session)
            outcomes.append((claimed, result))
            if result.retry_after:
                blocked.add(claimed.destination)  # no more requests there from this batch either
            if (len(outcomes) >= RECORD_EVERY or result.retry_after
                    or time.monotonic() - written >= RECORD_AT_LEAST_EVERY_SECONDS):
                record_many(outcomes)
                outcomes, written = [], time.monotonic()
    record_many(outcomes)
    release(held)
    return len(batch) - len(held)


def drain(limit: int = 50, max_rounds: int = 10_000) -> int:
    """Dispatch until nothing is due (messages waiting for a later retry stay); returns attempts made."""
    total = 0
    for _ in range(max_rounds):
        count = dispatch_due(limit)
        if not count:
            break
        total += count
    return total
