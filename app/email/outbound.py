"""Outbound mail for cases that live in a mail thread: queued in the caller's transaction, sent
over SMTP by the outbox dispatcher.

What belongs here: deciding whether a case answers by mail (``mail_thread``), turning a case
action's ``reply`` pushes into mails (``enqueue_case_mail``, called from every case transaction)
and an agent's reply into one (``queue_mail_reply``), the loop rules for sending (no mail to a
bouncing address, automatic mail rate-limited per case and recipient), and carrying a queued mail
out (``deliver_mail``, called by the dispatcher outside any transaction).

A queued mail is frozen at enqueue time: the whole message (our Message-ID, threading headers,
Reply-To token address, text and HTML) is built then, stored content-addressed (``raw_sha256``)
with a ``MailMessage`` row (direction ``out``, status ``queued``), and the ``OutboxMessage``
only names that row (``{"kind": "email", "mail_id": …}``), so a retry sends the same bytes.
Building mail is ``compose.py``'s; talking SMTP is ``integrations.mail.smtp``'s.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses
from typing import Any

import sqlalchemy as sa
from flask import current_app

from app.cases.models import CaseEvent, ReturnCase
from app.connectors.models import Integration
from app.connectors.schemas import MAIL_KINDS
from app.connectors.services import credentials
from app.email.compose import Parent, build_mail
from app.email.models import MailMessage
from app.email.services import attachment_store, loop_marker, raw_message, token_key
from app.email.threading import case_token, reply_address
from app.errors import AppError, ValidationFailed
from app.extensions import db, utcnow
from app.outbound import outbox
from app.outbound.canned import Rendered
from app.outbound.canned_store import Overrides, overrides, render_for_case
from app.outbound.models import OutboxMessage
from app.tenants.models import Tenant
from integrations.base import DeliveryResult
from integrations.mail import smtp

log = logging.getLogger(__name__)

KIND = "email"  # OutboxMessage.action["kind"] of a mail
# Actors whose case actions send automatic mail (no person wrote or chose it): the policy and the
# workers (system), and a customer's own request (its acknowledgement answers their mail). An
# agent's or an API client's action is someone's decision: its mail is not "automatic".
AUTOMATIC_ACTORS = frozenset({"system", "customer"})
_HEADERS_ONLY = BytesParser(policy=policy.default)


@dataclass(frozen=True)
class MailThread:
    """Where a case's mail goes: the mailbox that sends it, and the customer mail it answers."""

    integration: Integration
    address: str  # our mailbox address (From, and the base of the token Reply-To)
    parent: MailMessage | None  # the customer's last mail (a person's, not an auto-reply)


def _can_send(integration: Integration | None) -> bool:
    settings = (integration.settings or {}) if integration is not None else {}
    return (integration is not None and integration.enabled and integration.kind in MAIL_KINDS
            and bool(settings.get("address")) and isinstance(settings.get("smtp"), dict))


def _customer_mails(case: ReturnCase) -> list[MailMessage]:
    """The case's inbound mail, newest first; while intake opens the case, the mail doing so
    (not yet linked to it: ``ingest_mail`` links it after intake returns)."""
    query = sa.select(MailMessage).where(MailMessage.tenant_id == case.tenant_id, MailMessage.direction == "in")
    rows = list(db.session.scalars(
        query.where(MailMessage.case_id == case.id).order_by(MailMessage.id.desc()).limit(50)))
    if rows or case.channel != "email" or case.customer is None:
        return rows
    return list(db.session.scalars(query.where(
        MailMessage.case_id.is_(None), MailMessage.status == "received",
        MailMessage.from_address == case.customer.email).order_by(MailMessage.id.desc()).limit(1)))


def mail_thread(case: ReturnCase) -> MailThread | None:
    """The case's mail thread; None when its replies go elsewhere or nowhere.

    A case linked to a helpdesk ticket keeps its replies there. Otherwise it answers by mail when
    it has inbound mail or came in by email, through the mailbox of its latest mail (else the
    tenant's only mailbox that can send: an enabled mail integration with ``address`` and ``smtp``).
    """
    if case.ticket_id:
        return None
    mails = _customer_mails(case)
    if not mails and case.channel != "email":
        return None
    integration = None
    for candidate_id in (mails[0].integration_id if mails else None, case.integration_id):
        candidate = db.session.get(Integration, candidate_id) if candidate_id is not None else None
        if _can_send(candidate):
            integration = candidate
            break
    if integration is None:
        senders = [i for i in db.session.scalars(sa.select(Integration).where(
            Integration.tenant_id == case.tenant_id, Integration.kind.in_(MAIL_KINDS))) if _can_send(i)]
        if len(senders) != 1:
            return None  # none configured, or several and nothing says which: send nothing rather than guess
        integration = senders[0]
    parent = next((m for m in mails if m.automation == "none" and m.message_id), None)
    return MailThread(integration, str(integration.settings["address"]).lower(), parent)


# ---- queuing -----------------------------------------------------------------------------------

def _recipient(case: ReturnCase, parent: MailMessage | None) -> tuple[str | None, str | None]:
    """Who the mail goes to: the Reply-To of the customer's last mail when it had one, else the
    case's customer (address, display name)."""
    name = case.customer.name if case.customer else None
    if parent is not None:
        try:
            headers = _HEADERS_ONLY.parsebytes(raw_message(parent), headersonly=True)
            found = [(n, a) for n, a in getaddresses([str(v) for v in headers.get_all("Reply-To") or []])
                     if "@" in a]
        except (AppError, OSError, ValueError, TypeError):
            found = []  # the raw mail is gone or its header unreadable: the customer's own address will do
        if found:
            return found[0][1].strip().lower(), found[0][0] or name
    return (case.customer.email if case.customer else None), name


def _subject(parent: MailMessage | None, fallback: str) -> str:
    """Answering the customer's mail keeps its subject (Gmail threads by subject and References)."""
    if parent is None or not (parent.subject or "").strip():
        return fallback
    subject = " ".join(parent.subject.split())
    return subject if subject.lower().startswith("re:") else f"Re: {subject}"


def _skip(case: ReturnCase, why: str, code: str, data: dict[str, Any]) -> None:
    db.session.add(CaseEvent(tenant_id=case.tenant_id, case_id=case.id, action="mail_skipped", actor_type="system",
                             channel="email", reason=why, data={"code": code, **data}))


def _over_limit(case: ReturnCase, recipient: str, now: datetime) -> str | None:
    """Why one more automatic mail to ``recipient`` about ``case`` is too many, or None."""
    config = current_app.config
    rows = db.session.execute(sa.select(MailMessage.created_at, MailMessage.to_addresses).where(
        MailMessage.tenant_id == case.tenant_id, MailMessage.case_id == case.id, MailMessage.direction == "out",
        MailMessage.automation != "none", MailMessage.status != "failed",
        MailMessage.created_at >= now - timedelta(days=1))).all()
    sent = [created for created, to in rows if recipient in (to or [])]
    per_hour, per_day = config["REBOUND_MAIL_AUTO_PER_HOUR"], config["REBOUND_MAIL_AUTO_PER_DAY"]
    hour = sum(1 for created in sent if created >= now - timedelta(hours=1))
    if hour >= per_hour:
        return f"{hour} automatic mail(s) to {recipient} about {case.number} in the last hour (limit {per_hour})."
    if len(sent) >= per_day:
        return f"{len(sent)} automatic mail(s) to {recipient} about {case.number} in the last day (limit {per_day})."
    return None


def bouncing(case: ReturnCase) -> bool:
    return bool(case.customer is not None and case.customer.mail_bouncing_since is not None)


def _queue(case: ReturnCase, thread: MailThread, *, subject: str, text: str, html: str | None, automatic: bool,
           idempotency_key: str, force: bool = False) -> tuple[MailMessage, OutboxMessage] | None:
    """Build, store and queue one mail; None (recorded on the timeline) when the loop rules stop it:
    the customer's address bounces (unless ``force``), or automatic mail is over its rate limit."""
    to_address, to_name = _recipient(case, thread.parent)
    if to_address is None:
        _skip(case, "No mail was sent: the case has no customer address.", "no_recipient", {"subject": subject})
        return None
    now = utcnow()
    if bouncing(case) and not force:
        _skip(case, f"No mail was sent: mail to {case.customer.email} bounced "
                    f"(since {case.customer.mail_bouncing_since:%Y-%m-%d %H:%M} UTC); mail to it is paused until "
                    f"the address is fixed.", "bouncing", {"subject": subject, "to": to_address})
        return None
    if automatic:
        over = _over_limit(case, to_address, now)
        if over:
            _skip(case, f"No automatic mail was sent: {over}", "rate_limited", {"subject": subject, "to": to_address})
            return None
    settings = thread.integration.settings or {}
    parent = thread.parent
    message = build_mail(
        case_id=case.id, case_number=case.number, from_address=thread.address, from_name=settings.get("from_name"),
        to_address=to_address, to_name=to_name,
        reply_to=reply_address(thread.address, case_token(token_key(), case.tenant_id, case.id)),
        subject=subject, text=text, html=html,
        parent=Parent(parent.message_id, tuple(parent.references or ())) if parent and parent.message_id else None,
        automatic=automatic, loop_marker=loop_marker(case.tenant_id), now=now,
    )
    raw = bytes(message)
    mail = MailMessage(
        tenant_id=case.tenant_id, integration_id=thread.integration.id, case_id=case.id, direction="out",
        status="queued", automation=str(message.get("Auto-Submitted") or "none").replace("-", "_"),
        message_id=str(message["Message-ID"]), in_reply_to=parent.message_id if parent else None,
        references=(message.get("References") or "").split(), subject=str(message["Subject"])[:500],
        from_address=thread.address, from_name=settings.get("from_name"), to_addresses=[to_address],
        full_text=text, raw_sha256=attachment_store().put(raw), size_bytes=len(raw), created_at=now,
    )
    db.session.add(mail)
    db.session.flush()  # the mail id goes into the outbox message
    outgoing = OutboxMessage(
        tenant_id=case.tenant_id, integration_id=thread.integration.id, case_id=case.id,
        ordering_key=f"mail:{case.id}", action={"kind": KIND, "mail_id": mail.id},
        idempotency_key=idempotency_key, status="pending",
    )
    db.session.add(outgoing)
    return mail, outgoing


def _render(case: ReturnCase, tenant: Tenant, key: str, event: Any, templates: Overrides) -> Rendered | None:
    """The canned reply for the case: the tenant's version, else the shipped one (a broken tenant
    template must not silence the mail), else None with the reason on the timeline."""
    for candidate in ((templates, {}) if templates else ({},)):
        try:
            return render_for_case(case, tenant, key, event=event, tenant_templates=candidate)
        except (AppError, ValueError, TypeError) as exc:
            problem = getattr(exc, "message", None) or str(exc)
    _skip(case, f"No {key!r} mail was sent: the canned response failed ({problem}).", "template_failed",
          {"template": key})
    return None


def enqueue_case_mail(case: ReturnCase, *events: CaseEvent) -> list[OutboxMessage]:
    """Queue one mail per ``reply`` push the tenant's push settings give each of ``events`` (see
    ``outbox.DEFAULT_PUSHES``), for a case that answers by mail; in the caller's transaction.
    The case's mail thread is looked up once for all of them.

    Idempotency key: ``{case_id}:{event_id}:mail:{n}``.
    """
    thread = mail_thread(case)
    if thread is None:
        return []
    return [message for event in events for message in _mail_for_event(case, event, thread)]


def _mail_for_event(case: ReturnCase, event: CaseEvent, thread: MailThread) -> list[OutboxMessage]:
    tenant = db.session.get(Tenant, case.tenant_id)
    assert tenant is not None
    pushes = outbox.effective_pushes(outbox.stored_push_settings(tenant)).get(str(event.action),
                                                                             list(outbox.DEFAULT_PUSH))
    # As in ``outbox.plan_case_pushes``: when a case was opened and decided in one transaction, the
    # decision's mail says everything the opening one would have.
    to_status = event.to_status or case.status
    moved_on = to_status != case.status and case.status != "pending_review"
    settlement_kind = case.settlements[-1].kind if case.settlements else None
    automatic = event.actor_type in AUTOMATIC_ACTORS
    templates: Overrides | None = None
    queued = []
    for push in pushes:
        if push.kind != "reply" or not push.template or moved_on:
            continue
        if push.settlement_kinds and settlement_kind not in push.settlement_kinds:
            continue
        templates = overrides(tenant.id) if templates is None else templates
        rendered = _render(case, tenant, push.template, event, templates)
        if rendered is None:
            continue
        made = _queue(case, thread, subject=_subject(thread.parent, rendered.subject), text=rendered.text,
                      html=rendered.html, automatic=automatic,
                      idempotency_key=f"{case.id}:{event.id}:mail:{len(queued)}")
        if made is not None:
            queued.append(made[1])
    return queued


def check_manual_reply(case: ReturnCase, force: bool) -> None:
    """Refuse an agent's mail to a bouncing address unless ``force``.

    :raise ValidationFailed: (422, ``mail_bouncing``) mail to the customer bounced.
    """
    if bouncing(case) and not force:
        raise ValidationFailed(
            f"Mail to {case.customer.email} bounced (since {case.customer.mail_bouncing_since:%Y-%m-%d %H:%M} UTC), "
            f"so {case.number}'s reply was not sent. Check the address with the customer, or send anyway with "
            f"\"force\": true.",
            {"customer_email": case.customer.email, "bouncing_since": case.customer.mail_bouncing_since.isoformat()},
            code="mail_bouncing")


def queue_mail_reply(case: ReturnCase, thread: MailThread, event: CaseEvent, *, subject: str | None, text: str,
                     html: str | None) -> tuple[MailMessage, OutboxMessage]:
    """Queue an agent's reply (``event`` on the timeline, flushed) as one mail; never rate-limited.
    Call ``check_manual_reply`` first. Idempotency key: ``{case_id}:{event_id}:mail:0``.

    :raise ValidationFailed: (422, ``no_recipient``) the case has no customer address.
    """
    made = _queue(case, thread, subject=_subject(thread.parent, subject or f"Your return {case.number}"),
                  text=text, html=html, automatic=False, idempotency_key=f"{case.id}:{event.id}:mail:0", force=True)
    if made is None:
        raise ValidationFailed(f"Case {case.number} has no customer address to send a reply to.", code="no_recipient")
    return made


# ---- delivery ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Prepared:
    mail_id: int
    message: EmailMessage
    settings: smtp.SmtpSettings
    envelope_from: str


def _permanent(error: str) -> DeliveryResult:
    return DeliveryResult("permanent", None, 0.0, error=error, requests_made=0)


def _prepare(message_id: int) -> _Prepared | DeliveryResult:
    outgoing = db.session.get(OutboxMessage, message_id)
    if outgoing is None:
        return _permanent(f"Outbox message {message_id} no longer exists.")
    mail_id = (outgoing.action or {}).get("mail_id")
    mail = db.session.get(MailMessage, mail_id) if isinstance(mail_id, int) else None
    if mail is None or mail.direction != "out" or not mail.raw_sha256:
        return _permanent(f"Outbox message {message_id} names no queued mail ({outgoing.action!r:.100}).")
    integration = db.session.get(Integration, outgoing.integration_id) if outgoing.integration_id else None
    server = (integration.settings or {}).get("smtp") if integration is not None else None
    if integration is None or not isinstance(server, dict) or not server.get("host"):
        return _permanent(f"Integration {outgoing.integration_id} has no settings.smtp to send mail through.")
    try:
        raw = attachment_store().get(mail.raw_sha256)
    except AppError:
        return _permanent(f"The stored mail {mail.raw_sha256} is missing.")
    settings = smtp.SmtpSettings(
        host=server["host"], port=server.get("port"), security=server.get("security") or "starttls",
        username=server.get("username"), password=credentials(integration).get("smtp_password"),
        timeout=float(server.get("timeout") or 30.0),
        # Local development and tests only: a mail server with its own certificate.
        ca_file=current_app.config.get("REBOUND_SMTP_CA_FILE") or None,
    )
    message = BytesParser(policy=policy.default).parsebytes(raw)
    return _Prepared(mail.id, message, settings, mail.from_address or str((integration.settings or {}).get("address")))


def deliver_mail(message_id: int) -> DeliveryResult:
    """Send the mail outbox message ``message_id`` names over its mailbox's SMTP server; never raises.

    Reads in a short transaction, sends outside any, then records the mail's status (sent with
    ``sent_at``, or failed when the server refused it for good) in a transaction of its own.
    """
    try:
        prepared = _prepare(message_id)
    except Exception as exc:  # noqa: BLE001 - the dispatcher's contract: an outcome, never an exception
        log.exception("mail outbox message %s: could not prepare", message_id)
        prepared = DeliveryResult("retry", None, 0.0, error=f"{type(exc).__name__}: {exc}"[:500], requests_made=0)
    finally:
        db.session.rollback()  # hold no transaction (nor, on SQLite, a read lock) during the SMTP call
    if isinstance(prepared, DeliveryResult):
        return prepared
    result = smtp.send(prepared.message, prepared.settings, envelope_from=prepared.envelope_from)
    try:
        _settle(prepared.mail_id, message_id, result)
    except Exception:  # noqa: BLE001 - the mail went (or not) either way; the outbox records the outcome
        db.session.rollback()
        log.exception("mail %s: could not record the outcome %s", prepared.mail_id, result.outcome)
    return result


def _settle(mail_id: int, message_id: int, result: DeliveryResult) -> None:
    mail = db.session.get(MailMessage, mail_id)
    if mail is None:
        return
    if result.outcome == "delivered":
        mail.status, mail.sent_at, mail.rejection_reason = "sent", utcnow(), None
    else:
        outgoing = db.session.get(OutboxMessage, message_id)
        last_try = outgoing is not None and outgoing.attempts >= current_app.config["REBOUND_OUTBOX_MAX_ATTEMPTS"]
        if result.outcome == "permanent" or last_try:
            mail.status = "failed"
        mail.rejection_reason = (result.error or None) and result.error[:500]
    db.session.commit()
