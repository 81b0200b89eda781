"""The job table and the worker loop. Only ``flask worker`` starts the scheduler.

Each job is a row of ``JOBS``: a stable id, the function, and its interval. Every run happens
inside an app context and calls a service; ``max_instances=1`` and ``coalesce=True`` stop a slow
run from piling up copies of itself. A job with a ``listen`` channel runs in a loop of its own
instead, woken by PostgreSQL ``NOTIFY`` (new webhook events in worker mode), so it starts within
milliseconds rather than at its next interval.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
import sqlalchemy as sa
from flask import Flask, current_app
from psycopg import sql

from app.cases.models import ReturnCase
from app.cases.services import SYSTEM, perform_action
from app.cases.schemas import ReasonOptionalIn
from app.cases.states import Action, CaseStatus
from app.errors import Conflict
from app.extensions import db, utcnow
from app.inbound.services import NOTIFY_CHANNEL, process_received_events, prune_rejected_requests, retry_due_events
from app.email.mailbox import poll_mailboxes
from app.outbound.dispatcher import dispatch_due
from app.tenants.models import Tenant

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    id: str
    func: Callable[[], int]
    interval_config: str  # config key holding the interval in seconds
    description: str
    # Run only when this config key has this value (None: always).
    only_if: tuple[str, str] | None = None
    # A PostgreSQL NOTIFY channel: the job then runs in a loop of its own, at once when notified,
    # again at once while it finds work, and at least every interval (the polling fallback).
    listen: str | None = None

    def wanted(self, config: Mapping[str, Any]) -> bool:
        return self.only_if is None or config.get(self.only_if[0]) == self.only_if[1]


def expire_stale_cases(batch: int = 200) -> int:
    """Expire cases whose customer went silent or whose label went unused; returns how many."""
    config = current_app.config
    now = utcnow()
    silent_before = now - timedelta(days=config["REBOUND_CUSTOMER_SILENCE_DAYS"])
    label_before = now - timedelta(days=config["REBOUND_LABEL_EXPIRY_DAYS"])
    rows = db.session.execute(
        sa.select(ReturnCase.tenant_id, ReturnCase.number, ReturnCase.status)
        .where(
            sa.or_(
                sa.and_(ReturnCase.status == CaseStatus.AWAITING_CUSTOMER, ReturnCase.status_changed_at < silent_before),
                sa.and_(ReturnCase.status == CaseStatus.AWAITING_SHIPMENT, ReturnCase.status_changed_at < label_before),
            )
        )
        .order_by(ReturnCase.id)
        .limit(batch)
    ).all()
    expired = 0
    for tenant_id, number, status in rows:
        tenant = db.session.get(Tenant, tenant_id)
        why = "The customer did not answer in time." if status == CaseStatus.AWAITING_CUSTOMER else "The return label was not used in time."
        try:
            perform_action(tenant, number, Action.EXPIRE, ReasonOptionalIn(reason=why), SYSTEM)
            expired += 1
        except Conflict:  # someone acted on it meanwhile; the next run looks again
            db.session.rollback()
    return expired


DISPATCH_RUN_SECONDS = 30.0


def dispatch_outbox() -> int:
    """Deliver batches until nothing is due or ``DISPATCH_RUN_SECONDS`` have passed; returns attempts.

    One batch per tick would cap a worker at a batch per ``REBOUND_OUTBOX_INTERVAL_SECONDS``;
    a backlog is worked off at the dispatcher's own speed, and the next tick goes on.
    """
    deadline = time.monotonic() + DISPATCH_RUN_SECONDS
    total = 0
    while time.monotonic() < deadline:
        count = dispatch_due()
        if not count:
            break
        total += count
    return total


JOBS: tuple[Job, ...] = (
    Job("expire-stale-cases", expire_stale_cases, "REBOUND_WORKER_INTERVAL_SECONDS",
        "Expire cases waiting too long for the customer or for the parcel."),
    Job("process-inbound-events", process_received_events, "REBOUND_INBOUND_POLL_SECONDS",
        "Process newly received webhook events (REBOUND_INBOUND_PROCESSING=worker).",
        only_if=("REBOUND_INBOUND_PROCESSING", "worker"), listen=NOTIFY_CHANNEL),
    Job("retry-inbound-events", retry_due_events, "REBOUND_INBOUND_RETRY_INTERVAL_SECONDS",
        "Process webhook events that failed or were interrupted, with backoff."),
    Job("dispatch-outbox", dispatch_outbox, "REBOUND_OUTBOX_INTERVAL_SECONDS",
        "Deliver due outbox messages to the helpdesks, in order per ticket, with retries."),
    Job("poll-mailboxes", poll_mailboxes, "REBOUND_MAIL_POLL_SECONDS",
        "Read new mail from IMAP mailboxes (one poller per mailbox across workers)."),
    Job("prune-rejected-requests", prune_rejected_requests, "REBOUND_WORKER_INTERVAL_SECONDS",
        "Keep the newest refused webhook calls per integration."),
)


def run_job(app: Flask, job: Job) -> int:
    """Run one job inside an app context, logging (not raising) its failure; returns its count."""
    with app.app_context():
        try:
            count = job.func()
            if count:
                log.info("job %s handled %d item(s)", job.id, count)
            return count
        except Exception:  # a failing job must not stop the worker; it runs again next interval
            db.session.rollback()
            log.exception("job %s failed", job.id)
            return 0
        finally:
            db.session.remove()


def _listen(conninfo: str, channel: str, wake: threading.Event) -> None:
    """Set ``wake`` on every NOTIFY on ``channel``; reconnect after a failure (polling covers the gap)."""
    while True:
        try:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                wake.set()  # anything recorded while we were not listening
                for _ in conn.notifies():
                    wake.set()
        except psycopg.Error:
            log.warning("listening on %s failed; polling until it works again", channel, exc_info=True)
            time.sleep(5)


def _loop(app: Flask, job: Job, wake: threading.Event) -> None:
    interval = app.config[job.interval_config]
    while True:
        if run_job(app, job):
            continue  # there may be more: look again at once
        wake.wait(interval)
        wake.clear()


def _start_listening_jobs(app: Flask, jobs: list[Job]) -> list[Job]:
    """Start the loop of each job that listens (on PostgreSQL); returns the jobs left to the scheduler."""
    with app.app_context():
        url = db.engine.url
    if url.get_backend_name() != "postgresql":
        return jobs
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    rest = []
    for job in jobs:
        if job.listen is None:
            rest.append(job)
            continue
        wake = threading.Event()
        threading.Thread(target=_listen, args=(conninfo, job.listen, wake), name=f"{job.id}-listen", daemon=True).start()
        threading.Thread(target=_loop, args=(app, job, wake), name=job.id, daemon=True).start()
    return rest


def run_worker(once: bool = False) -> None:
    """Run the job table: once, or forever under APScheduler until SIGTERM/SIGINT."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    jobs = [job for job in JOBS if job.wanted(app.config)]
    if once:
        for job in jobs:
            run_job(app, job)
        return
    from apscheduler.schedulers.blocking import BlockingScheduler

    scheduler = BlockingScheduler(timezone="UTC")
    names = [job.id for job in jobs]
    jobs = _start_listening_jobs(app, jobs)
    for job in jobs:
        scheduler.add_job(run_job, "interval", args=(app, job), id=job.id, name=job.id, seconds=app.config[job.interval_config],
                          max_instances=1, coalesce=True, next_run_time=utcnow())
    signal.signal(signal.SIGTERM, lambda *_: scheduler.shutdown(wait=False))
    log.info("worker started with job(s): %s", ", ".join(names))
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
