"""The inbox: record a verified delivery once, process it once, retry what failed.

``record_event`` commits before the webhook answers 2xx, so a crash afterwards loses nothing.
``process_event`` claims the event with one conditional UPDATE (a second claimer, inline or in
a worker, finds it taken) and marks it processed in the same transaction that creates the
case: exactly once, or not at all and retried.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite

from app.connectors.models import Integration
from app.connectors.services import credentials
from app.extensions import db, utcnow
from app.inbound.models import InboundEvent, RejectedRequest
from app.intake.services import handle_ticket_event
from app.tenants.models import Tenant
from integrations.base import IntegrationError, TicketEvent, complete_event, get_adapter

log = logging.getLogger(__name__)

RETRYABLE = ("received", "failed")
KEEP_REJECTED_PER_INTEGRATION = 1000


def record_rejection(integration: Integration, status: int, code: str, message: str,
                     remote_addr: str | None, body_bytes: int | None) -> None:
    """Count a refused call in the integration's rejected-request log (its own commit)."""
    db.session.rollback()
    db.session.add(RejectedRequest(
        tenant_id=integration.tenant_id, integration_id=integration.id, status_code=status, code=code,
        message=message[:500], remote_addr=remote_addr, body_bytes=body_bytes,
    ))
    db.session.execute(sa.update(Integration).where(Integration.id == integration.id)
                       .values(rejected_count=Integration.rejected_count + 1))
    db.session.commit()


def record_event(integration: Integration, delivery_key: str, event: TicketEvent, body: bytes) -> tuple[int, bool]:
    """Store a verified delivery; returns (event id, created). A repeat delivery returns the first's id.

    One ``INSERT … ON CONFLICT DO NOTHING``: concurrent copies of a delivery never raise, and
    exactly one of them is told it created the row.
    """
    key = delivery_key[:200]
    values = dict(
        tenant_id=integration.tenant_id, integration_id=integration.id, delivery_key=key,
        kind=integration.kind, event_type=event.event_type, ticket_id=event.ticket_id[:100],
        event=event.to_dict(), body=body, status="received", attempts=0, received_at=utcnow(),
    )
    insert = postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert
    statement = (insert(InboundEvent).values(**values)
                 .on_conflict_do_nothing(index_elements=["integration_id", "delivery_key"])
                 .returning(InboundEvent.id))
    event_id = db.session.execute(statement).scalar_one_or_none()
    db.session.commit()
    if event_id is not None:
        return event_id, True
    existing = db.session.scalar(sa.select(InboundEvent.id).where(
        InboundEvent.integration_id == integration.id, InboundEvent.delivery_key == key))
    if existing is None:  # cannot happen: the conflicting row is committed
        raise RuntimeError("inbound event could not be stored")
    return existing, False


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
    stored = db.session.scalars(
        sa.update(InboundEvent)
        .where(InboundEvent.id == event_id, InboundEvent.status.in_(RETRYABLE))
        .values(status="processing", attempts=InboundEvent.attempts + 1)
        .returning(InboundEvent)
        .execution_options(populate_existing=True)
    ).one_or_none()
    if stored is None:
        db.session.rollback()
        return "skipped"
    integration = db.session.get(Integration, stored.integration_id)
    tenant = db.session.get(Tenant, stored.tenant_id)
    try:
        event = complete_event(get_adapter(integration.kind), TicketEvent.from_dict(stored.event),
                               (integration.settings or {}).get("base_url"), credentials(integration))
        result = handle_ticket_event(tenant, integration, event)
        stored.status = "ignored" if result.outcome == "ignored" else "processed"
        stored.outcome = result.to_dict()
        stored.case_id = result.case.id if result.case else None
        stored.processed_at, stored.last_error, stored.next_attempt_at = utcnow(), None, None
        db.session.commit()
        return stored.status
    except Exception as exc:  # any failure: undo the work and the claim, then record it
        db.session.rollback()
        if not isinstance(exc, IntegrationError):
            log.exception("processing inbound event %s failed", event_id)
        return _record_failure(event_id, exc)


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
