"""IMAP mailboxes: the worker job that polls each one, with one poller per mailbox across workers.

A poll stores each new message in the inbox (``InboundEvent``, delivery key
``imap:<uidvalidity>:<uid>``, the raw message as its body) and commits, then advances the cursor,
then marks the messages processed on the server, then processes the events like webhook ones. A
crash anywhere leaves nothing lost: unmarked messages are fetched again and their inbox rows
already exist (the unique delivery key), and unprocessed events are retried by the inbox job.

On PostgreSQL each mailbox is polled under a session advisory lock, so any number of worker
processes can run the job and only one talks to a given mailbox at a time; SQLite has one worker.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from flask import current_app

from app.connectors.models import Integration
from app.connectors.services import credentials
from app.email.models import MailboxCursor
from app.errors import ValidationFailed
from app.extensions import db, utcnow
from app.inbound.models import InboundEvent
from app.inbound.services import process_events
from integrations.mail.imap import ImapCursor, ImapSettings, MailboxError, mark_processed, poll

log = logging.getLogger(__name__)

ADVISORY_LOCK_NAMESPACE = 0x5242  # "RB": the first half of the two-int advisory lock key
MAX_BATCHES_PER_RUN = 20


def imap_settings(integration: Integration) -> ImapSettings:
    """The mailbox's connection settings (password from the encrypted credentials)."""
    settings = dict((integration.settings or {}).get("imap") or {})
    password = str(credentials(integration).get("imap_password") or credentials(integration).get("password") or "")
    return ImapSettings(password=password, **settings)


@contextmanager
def _poller_lock(integration_id: int) -> Iterator[bool]:
    """Hold the mailbox's advisory lock for the duration (PostgreSQL); yields whether we got it."""
    if db.engine.dialect.name != "postgresql":
        yield True
        return
    with db.engine.connect() as connection:
        got = connection.execute(sa.select(sa.func.pg_try_advisory_lock(ADVISORY_LOCK_NAMESPACE, integration_id))).scalar()
        connection.commit()
        try:
            yield bool(got)
        finally:
            if got:
                connection.execute(sa.select(sa.func.pg_advisory_unlock(ADVISORY_LOCK_NAMESPACE, integration_id)))
                connection.commit()


def poll_mailboxes() -> int:
    """Worker job: poll every enabled IMAP mailbox; returns how many messages were stored."""
    ids = list(db.session.scalars(
        sa.select(Integration.id).where(Integration.kind == "imap", Integration.enabled.is_(True))))
    db.session.rollback()
    stored = 0
    for integration_id in ids:
        with _poller_lock(integration_id) as mine:
            if not mine:
                continue  # another worker is polling this mailbox right now
            try:
                stored += poll_mailbox(integration_id)
            except MailboxError as exc:
                db.session.rollback()
                _remember_error(integration_id, f"{type(exc).__name__}: {exc}")
                log.warning("mailbox %s: %s", integration_id, exc)
    return stored


def poll_mailbox(integration_id: int) -> int:
    """Fetch, store, mark and process the new messages of one mailbox; returns how many were stored.

    :raise MailboxError: the server could not be reached or refused us (nothing is lost).
    """
    stored_total = 0
    for _ in range(MAX_BATCHES_PER_RUN):
        integration = db.session.get(Integration, integration_id)
        if integration is None or not integration.enabled:
            return stored_total
        settings = imap_settings(integration)
        cursor_row = db.session.get(MailboxCursor, integration_id)
        cursor = (ImapCursor(cursor_row.uidvalidity, cursor_row.last_uid)
                  if cursor_row is not None and cursor_row.uidvalidity is not None else None)
        db.session.rollback()  # no transaction open while we talk to the server
        result = poll(settings, cursor, max_bytes=current_app.config["REBOUND_MAIL_MAX_BYTES"])

        event_ids = []
        for uid, raw in result.messages:
            event_id = _store(integration, f"imap:{result.cursor.uidvalidity}:{uid}", raw)
            if event_id is not None:
                event_ids.append(event_id)
        for uid, size in result.oversized:
            _store(integration, f"imap:{result.cursor.uidvalidity}:{uid}", b"", rejected=(
                f"The message is {size} bytes, over the limit of {current_app.config['REBOUND_MAIL_MAX_BYTES']}; "
                "it was left in the mailbox."))
        row = db.session.get(MailboxCursor, integration_id) or MailboxCursor(integration_id=integration_id)
        row.uidvalidity, row.last_uid = result.cursor.uidvalidity, result.cursor.last_uid
        row.last_polled_at, row.last_error = utcnow(), None
        db.session.add(row)
        db.session.commit()  # the messages are ours now: only then are they marked on the server

        done = [uid for uid, _ in result.messages] + [uid for uid, _ in result.oversized]
        if done:
            mark_processed(settings, done, uidvalidity=result.cursor.uidvalidity)
        process_events(event_ids)
        stored_total += len(result.messages)
        if not result.more:
            break
    return stored_total


def _store(integration: Integration, delivery_key: str, raw: bytes, rejected: str | None = None) -> int | None:
    """Add the message to the inbox unless it is there already; returns the new event's id."""
    exists = db.session.scalar(sa.select(InboundEvent.id).where(
        InboundEvent.integration_id == integration.id, InboundEvent.delivery_key == delivery_key))
    if exists is not None:
        return None
    event = InboundEvent(
        tenant_id=integration.tenant_id, integration_id=integration.id, delivery_key=delivery_key,
        kind=integration.kind, event_type="message.created", ticket_id=None,
        event={"provider": "imap", "delivery_key": delivery_key, "bytes": len(raw)}, body=raw,
        status="rejected" if rejected else "received", attempts=0, last_error=rejected, received_at=utcnow(),
    )
    db.session.add(event)
    db.session.flush()
    return None if rejected else event.id


def mailbox_status(integration: Integration) -> MailboxCursor | None:
    """How far the mailbox has been read and the last poll's error (None before the first poll).

    :raise ValidationFailed: (422) the integration is not an IMAP mailbox.
    """
    if integration.kind != "imap":
        raise ValidationFailed(f"Integration {integration.id} is {integration.kind!r}, not an IMAP mailbox.",
                               code="not_a_mailbox")
    return db.session.get(MailboxCursor, integration.id)


def _remember_error(integration_id: int, error: str) -> None:
    row = db.session.get(MailboxCursor, integration_id) or MailboxCursor(integration_id=integration_id)
    row.last_error, row.last_polled_at = error[:500], utcnow()
    db.session.add(row)
    db.session.commit()
