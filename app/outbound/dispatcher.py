"""The outbox dispatcher: claim due messages, deliver them through ``integrations/``, record the outcome.

A claim sets ``sending`` and a lease and is committed before any HTTP call; the call happens
outside every transaction; the outcome is written in a transaction of its own. Only the head of
each ordering key (one ticket) is claimable, so a ticket's updates arrive in the order they were
made. A worker killed mid-send leaves a ``sending`` row whose lease expires; it is claimed again.

On PostgreSQL the claim is ``SELECT … FOR UPDATE SKIP LOCKED``, so any number of workers share
the queue; on SQLite (one writer) a conditional ``UPDATE`` per row is enough.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import aliased

from app.connectors.models import Integration
from app.connectors.services import credentials
from app.extensions import db, utcnow
from app.outbound.models import DeliveryAttempt, OutboxMessage
from app.outbound.outbox import action_from_dict
from integrations import get_client
from integrations.base import MAX_ERROR, Connection, DeliveryResult

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
BACKOFF_CAP_SECONDS = 3600.0


@dataclass(frozen=True)
class Claimed:
    message_id: int
    kind: str
    connection: Connection | None
    problem: str | None  # why it cannot be delivered at all (no base URL, no client)


def _due(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(
        sa.and_(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now),
        sa.and_(OutboxMessage.status == "sending", OutboxMessage.lease_until < now),
    )


def _is_head() -> sa.ColumnElement[bool]:
    earlier = aliased(OutboxMessage)
    return ~sa.exists().where(
        earlier.ordering_key == OutboxMessage.ordering_key,
        earlier.id < OutboxMessage.id,
        earlier.status.in_(("pending", "sending")),
    )


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with full jitter between half and all of ``2 ** (attempts - 1)`` s, capped."""
    ceiling = min(BACKOFF_CAP_SECONDS, 2.0 ** max(attempts - 1, 0))
    return random.uniform(ceiling / 2, ceiling)


def claim(limit: int, now: datetime | None = None) -> list[Claimed]:
    """Claim up to ``limit`` due head-of-line messages (status sending, a lease) and commit."""
    now = now or utcnow()
    query = (
        sa.select(OutboxMessage)
        .where(_due(now), _is_head())
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
    )
    claimed: list[OutboxMessage] = []
    if db.engine.dialect.name == "postgresql":
        claimed = list(db.session.scalars(query.with_for_update(skip_locked=True, of=OutboxMessage)))
        for message in claimed:
            message.status, message.lease_until, message.attempts = "sending", now + LEASE, message.attempts + 1
    else:
        for message in db.session.scalars(query).all():
            won = db.session.execute(
                sa.update(OutboxMessage)
                .where(OutboxMessage.id == message.id, _due(now))
                .values(status="sending", lease_until=now + LEASE, attempts=OutboxMessage.attempts + 1)
                .execution_options(synchronize_session=False)
            ).rowcount
            if won:
                claimed.append(message)
    result = []
    integrations = {}
    for message in claimed:
        integration = integrations.get(message.integration_id) or db.session.get(Integration, message.integration_id)
        integrations[message.integration_id] = integration
        result.append(_connection_for(message.id, integration))
    db.session.commit()
    return result


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
    if claimed.connection is None:
        return DeliveryResult("permanent", None, 0.0, error=claimed.problem, requests_made=0)
    message = db.session.get(OutboxMessage, claimed.message_id)
    assert message is not None
    action = action_from_dict(message.action)
    db.session.rollback()  # hold no transaction (nor, on SQLite, a read lock) during the call
    try:
        return get_client(claimed.kind).deliver(action, claimed.connection, session)
    except Exception as exc:  # a client bug must not kill the dispatcher; the message is retried
        log.exception("outbox message %s: client raised", claimed.message_id)
        return DeliveryResult("retry", None, 0.0, error=f"{type(exc).__name__}: {exc}"[:MAX_ERROR])


def record(message_id: int, result: DeliveryResult, now: datetime | None = None) -> str:
    """Store the attempt and the message's next status; commit. Returns the new status."""
    now = now or utcnow()
    config = current_app.config
    message = db.session.get(OutboxMessage, message_id, populate_existing=True)
    assert message is not None
    db.session.add(DeliveryAttempt(
        message_id=message.id, attempted_at=now, status_code=result.status_code, latency_ms=result.latency_ms,
        outcome=result.outcome, error=(result.error or None) and result.error[:MAX_ERROR],
    ))
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
    db.session.commit()
    if message.status == "dead":
        log.warning("outbox message %s is dead after %d attempt(s): %s", message.id, message.attempts, message.last_error)
    return message.status


def dispatch_due(limit: int = 50, now: datetime | None = None) -> int:
    """Claim and deliver up to ``limit`` due messages; returns how many were attempted."""
    batch = claim(limit, now)
    if not batch:
        return 0
    with requests.Session() as session:
        for claimed in batch:
            result = deliver(claimed, session)
            record(claimed.message_id, result)
    return len(batch)


def drain(limit: int = 50, max_rounds: int = 10_000) -> int:
    """Dispatch until nothing is due (messages waiting for a later retry stay); returns attempts made."""
    total = 0
    for _ in range(max_rounds):
        count = dispatch_due(limit)
        if not count:
            break
        total += count
    return total
