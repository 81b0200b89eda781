"""The job table and the worker loop. Only ``flask worker`` starts the scheduler.

Each job is a row of ``JOBS``: a stable id, the function, and its interval. Every run happens
inside an app context and calls a service; ``max_instances=1`` and ``coalesce=True`` stop a slow
run from piling up copies of itself.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask import Flask, current_app

from app.cases.models import ReturnCase
from app.cases.services import SYSTEM, perform_action
from app.cases.schemas import ReasonOptionalIn
from app.cases.states import Action, CaseStatus
from app.errors import Conflict
from app.extensions import db, utcnow
from app.inbound.services import prune_rejected_requests, retry_due_events
from app.outbound.dispatcher import dispatch_due
from app.tenants.models import Tenant

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    id: str
    func: Callable[[], int]
    interval_config: str  # config key holding the interval in seconds
    description: str


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


JOBS: tuple[Job, ...] = (
    Job("expire-stale-cases", expire_stale_cases, "REBOUND_WORKER_INTERVAL_SECONDS",
        "Expire cases waiting too long for the customer or for the parcel."),
    Job("retry-inbound-events", retry_due_events, "REBOUND_INBOUND_RETRY_INTERVAL_SECONDS",
        "Process webhook events that failed or were interrupted, with backoff."),
    Job("dispatch-outbox", dispatch_due, "REBOUND_OUTBOX_INTERVAL_SECONDS",
        "Deliver due outbox messages to the helpdesks, in order per ticket, with retries."),
    Job("prune-rejected-requests", prune_rejected_requests, "REBOUND_WORKER_INTERVAL_SECONDS",
        "Keep the newest refused webhook calls per integration."),
)


def run_job(app: Flask, job: Job) -> None:
    """Run one job inside an app context, logging (not raising) its failure."""
    with app.app_context():
        try:
            count = job.func()
            if count:
                log.info("job %s handled %d item(s)", job.id, count)
        except Exception:  # a failing job must not stop the worker; it runs again next interval
            db.session.rollback()
            log.exception("job %s failed", job.id)
        finally:
            db.session.remove()


def run_worker(once: bool = False) -> None:
    """Run the job table: once, or forever under APScheduler until SIGTERM/SIGINT."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if once:
        for job in JOBS:
            run_job(app, job)
        return
    from apscheduler.schedulers.blocking import BlockingScheduler

    scheduler = BlockingScheduler(timezone="UTC")
    for job in JOBS:
        scheduler.add_job(run_job, "interval", args=(app, job), id=job.id, name=job.id, seconds=app.config[job.interval_config],
                          max_instances=1, coalesce=True, next_run_time=utcnow())
    signal.signal(signal.SIGTERM, lambda *_: scheduler.shutdown(wait=False))
    log.info("worker started with %d job(s): %s", len(JOBS), ", ".join(job.id for job in JOBS))
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
