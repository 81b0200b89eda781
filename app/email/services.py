"""The inbound mail pipeline: raw MIME → parsed → classified → threaded → onto a case or into intake.

Every channel (provider webhooks, raw MIME, IMAP) hands ``ingest_mail`` the raw message, so there is
one path. Nothing here commits: the inbox (``inbound.services.process_event``) owns the transaction,
so the mail row, the case change and the inbound event's status land together or not at all.

What becomes of a mail (``MailMessage.status``):
- our own mail coming back (our loop header or one of our addresses as sender) → ``ignored``;
- a bounce → ``recorded``; the failed addresses are marked bouncing (automatic mail to them pauses);
- an auto-reply, out-of-office or list mail → ``recorded`` on its case (never answered), else ``ignored``;
- a person's reply to a case (token, Message-ID chain, subject tag, ticket link) → ``threaded``:
  the new text on the timeline, attachments as evidence, ``awaiting_customer`` → ``pending_review``;
- anything else → intake, like a new ticket, with channel ``email`` → ``case_created``,
  ``suggested`` or ``ignored``;
- a mail intake cannot use at all (no sender) → ``rejected``, kept with its reason.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app

from app.cases.models import CaseEvent, Evidence, ReturnCase
from app.connectors.models import Integration
from app.email.classify import Automation, AutomationKind, classify_automation
from app.email.compose import LOOP_HEADER
from app.email.models import MailMessage
from app.email.parse import Limits, ParsedMessage, parse_message
from app.email.reply import extract_reply
from app.email.store import LocalAttachmentStore
from app.email.threading import match_case
from app.errors import NotFound
from app.extensions import db, utcnow
from app.inbound.models import InboundEvent
from app.intake.services import append_message, handle_ticket_event
from app.orders.models import Customer
from app.tenants.models import Tenant
from integrations.base import TicketEvent

MAX_STORED_TEXT = 200_000  # characters of each text part kept on the row; the raw mail is kept whole


@dataclass(frozen=True)
class MailResult:
    outcome: str  # the MailMessage status
    detail: str
    mail: MailMessage
    case: ReturnCase | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "detail": self.detail, "mail_id": self.mail.id,
                "case": self.case.number if self.case else None}


def attachment_store() -> LocalAttachmentStore:
    """The content-addressed store for raw mail and attachments (a local directory by default)."""
    config = current_app.config
    return LocalAttachmentStore(Path(config["REBOUND_ATTACHMENT_DIR"]), max_bytes=config["REBOUND_MAIL_MAX_BYTES"])


def token_key() -> bytes:
    """The key reply tokens are signed with (derived from SECRET_KEY unless set on its own)."""
    configured = current_app.config.get("REBOUND_REPLY_TOKEN_KEY")
    secret = (configured or current_app.config["SECRET_KEY"]).encode()
    return hmac.new(secret, b"rebound reply tokens", hashlib.sha256).digest()


def loop_marker(tenant_id: int) -> str:
    """The value of our loop header for one tenant: mail carrying it is our own, coming back."""
    return hmac.new(token_key(), f"loop:{tenant_id}".encode(), hashlib.sha256).hexdigest()[:24]


def mailbox_addresses(integration: Integration | None) -> set[str]:
    """Our own addresses for this mailbox (mail from them is never a customer's)."""
    settings = (integration.settings or {}) if integration else {}
    found = {str(settings["address"]).lower()} if settings.get("address") else set()
    return found | {str(a).lower() for a in settings.get("aliases") or []}


def _limits() -> Limits:
    size = current_app.config["REBOUND_MAIL_MAX_BYTES"]
    return Limits(max_message_bytes=size, max_attachment_bytes=size, max_total_attachment_bytes=size)


def _recipients(parsed: ParsedMessage) -> list[str]:
    found = [a.address for a in (*parsed.to, *parsed.cc, *parsed.delivered_to) if a.address]
    for name in ("X-Original-To", "X-Forwarded-To", "Envelope-To"):
        found += [part.strip().strip("<>") for value in parsed.header_all(name) for part in value.split(",")]
    return [a.lower() for a in found if "@" in a]


def ingest_mail(tenant: Tenant, integration: Integration | None, raw: bytes, *,
                inbound_event_id: int | None = None) -> MailResult:
    """Take one raw inbound mail all the way; does not commit. See the module docstring."""
    parsed = parse_message(raw, limits=_limits())
    # With an inbox event the raw message is in the database already (``raw_message`` reads it
    # from there): it is not copied to the store, and the attachments, all cut from it, need not
    # wait for the disk.
    sync = inbound_event_id is None
    sender = parsed.from_.address.lower() if parsed.from_ and parsed.from_.address else None
    parts = extract_reply(parsed.text)
    mail = MailMessage(
        tenant_id=tenant.id, integration_id=integration.id if integration else None,
        inbound_event_id=inbound_event_id, direction="in", status="received",
        message_id=_cut(parsed.message_id, 500), in_reply_to=_cut(parsed.in_reply_to, 500),
        references=list(parsed.references), subject=_cut(parsed.subject, 500), from_address=_cut(sender, 320),
        from_name=_cut(parsed.from_.name if parsed.from_ else None, 200), to_addresses=_recipients(parsed)[:50],
        reply_text=parts.reply[:MAX_STORED_TEXT], signature_text=parts.signature[:MAX_STORED_TEXT],
        quoted_text=parts.quoted[:MAX_STORED_TEXT], full_text=parsed.text[:MAX_STORED_TEXT],
        html_sanitized=(parsed.html_sanitized or None) and parsed.html_sanitized[:MAX_STORED_TEXT],
        raw_sha256=attachment_store().put(raw) if sync else parsed.raw_sha256, size_bytes=len(raw),
        defects=list(parsed.defects)[:50], sent_at=parsed.date,
    )
    # The row is written once its fate is known where possible (one INSERT, no UPDATE after it).

    if _is_our_own(parsed, tenant, integration, sender):
        mail.automation = "own"
        return _done(mail, "ignored", "Our own mail came back; not a customer's.")
    automation = classify_automation(parsed)
    mail.automation = automation.kind.value
    # Only mail on a case can be matched, and such mail is written as soon as it has one (``_done``):
    # what an earlier mail of this transaction left unwritten has no case, so matching need not
    # write it first (it goes with the next write, several in one INSERT).
    with db.session.no_autoflush:
        match = match_case(
            tenant_id=tenant.id, token_key=token_key(), case_number_prefix=current_app.config["REBOUND_CASE_NUMBER_PREFIX"],
            recipients=_recipients(parsed), in_reply_to=parsed.in_reply_to, references=parsed.references,
            subject=parsed.subject, sender=sender,
        )
    case = match.case if match else None
    if case is not None:
        mail.case_id, mail.matched_by = case.id, match.by if match else None
    if case is not None or not automation.automated and sender is not None:
        # A reply queued by the case change (or by intake's new case) must find this mail to
        # answer it (In-Reply-To, Reply-To): in the session now, it is written by the first query
        # that needs it. Intake without return intent runs none, so that mail is still one INSERT.
        db.session.add(mail)

    if automation.kind is AutomationKind.BOUNCE:
        bounced = _mark_bouncing(tenant.id, automation)
        if case is not None:
            _record_automatic(case, mail, automation, "mail_bounced")
        return _done(mail, "recorded", "Bounce: " + (", ".join(bounced) or "no known customer address") + ".", case)
    if automation.automated:
        if case is not None:
            _record_automatic(case, mail, automation, "mail_automatic")
            return _done(mail, "recorded", f"Automatic mail ({automation.kind.value}) kept on {case.number}; not answered.",
                         case)
        return _done(mail, "ignored", f"Automatic mail ({automation.kind.value}) for no case; not answered.")
    if sender is None:
        mail.rejection_reason = "The mail has no usable From address."
        return _done(mail, "rejected", mail.rejection_reason)

    event = _as_ticket_event(parsed, sender, parts.reply or parsed.text)
    if case is not None:
        append_message(case, event, "email")
        _attach_evidence(case, parsed, sync)
        return _done(mail, "threaded", f"Reply added to {case.number} (matched by {mail.matched_by}).", case)
    result = handle_ticket_event(tenant, integration, event, channel="email")
    if result.case is not None:
        mail.case_id = result.case.id
        _attach_evidence(result.case, parsed, sync)
    status = {"case_created": "case_created", "suggested": "suggested", "appended": "threaded"}.get(result.outcome, "ignored")
    return _done(mail, status, result.detail, result.case)


def _done(mail: MailMessage, status: str, detail: str, case: ReturnCase | None = None) -> MailResult:
    """The mail's fate. Mail on a case is written now (a later mail of the same transaction may
    thread to it); any other waits for the next flush. ``MailResult.to_dict`` needs it flushed."""
    mail.status = status
    db.session.add(mail)
    if mail.case_id is not None:
        db.session.flush()
    return MailResult(status, detail, mail, case)


def raw_message(mail: MailMessage) -> bytes:
    """The raw bytes of a stored mail: from the store, or, for inbound mail that came through the
    inbox, from its inbox event. ``NotFound`` when neither has it."""
    if mail.inbound_event_id is not None:
        body = db.session.scalar(sa.select(InboundEvent.body).where(InboundEvent.id == mail.inbound_event_id))
        if body:
            return bytes(body)
    if not mail.raw_sha256:
        raise NotFound("The mail's raw message is not stored.")
    return attachment_store().get(mail.raw_sha256)


def _is_our_own(parsed: ParsedMessage, tenant: Tenant, integration: Integration | None, sender: str | None) -> bool:
    marker = parsed.header(LOOP_HEADER)
    if marker and hmac.compare_digest(marker.strip(), loop_marker(tenant.id)):
        return True
    return sender is not None and sender.split("+", 1)[0] + "@" + sender.rpartition("@")[2] in {
        address.split("@")[0].split("+", 1)[0] + "@" + address.rpartition("@")[2]
        for address in mailbox_addresses(integration)
    }


def _mark_bouncing(tenant_id: int, automation: Automation) -> list[str]:
    """Mark the customers whose address failed (hard bounces, or unknown-severity ones)."""
    if not automation.failed_recipients or automation.permanent is False:
        return []
    customers = db.session.scalars(sa.select(Customer).where(
        Customer.tenant_id == tenant_id, Customer.email.in_(automation.failed_recipients)))
    marked = []
    for customer in customers:
        customer.mail_bouncing_since = customer.mail_bouncing_since or utcnow()
        marked.append(customer.email)
    return marked


def _record_automatic(case: ReturnCase, mail: MailMessage, automation: Automation, action: str) -> None:
    """A timeline entry naming the mail, which is therefore stored now, with its final status."""
    mail.status = "recorded"
    db.session.add(mail)
    db.session.flush()
    db.session.add(CaseEvent(
        tenant_id=case.tenant_id, case_id=case.id, action=action, actor_type="system", channel="email",
        reason="; ".join(automation.reasons)[:1000] or None,
        data={"mail_id": mail.id, "kind": automation.kind.value, "subject": mail.subject,
              "failed_recipients": list(automation.failed_recipients)},
    ))


def _as_ticket_event(parsed: ParsedMessage, sender: str, text: str) -> TicketEvent:
    # A mail without a Message-ID is a thread of its own, named by its content (the same on a retry).
    thread = parsed.references[0] if parsed.references else (parsed.message_id or f"raw-{parsed.raw_sha256}")
    return TicketEvent(
        provider="email", ticket_id="mail:" + hashlib.sha256(thread.encode()).hexdigest()[:32],
        event_type="message.created", requester_email=sender,
        requester_name=parsed.from_.name if parsed.from_ and parsed.from_.name else None,
        subject=parsed.subject or None, message=text, message_id=parsed.message_id, author_role="customer",
        occurred_at=parsed.date,
    )


def _attach_evidence(case: ReturnCase, parsed: ParsedMessage, sync: bool = True) -> None:
    """Attachments and inline images become the case's evidence, stored by content (sha256)."""
    store = attachment_store()
    known = {e.sha256 for e in case.evidence if e.sha256}
    for attachment in parsed.attachments:
        key = store.put(attachment.data, sync=sync)
        if key in known:
            continue
        known.add(key)
        kind = "photo" if attachment.content_type.startswith("image/") else (
            "video" if attachment.content_type.startswith("video/") else "document")
        case.evidence.append(Evidence(
            tenant_id=case.tenant_id, kind=kind, filename=attachment.filename[:255],
            content_type=attachment.content_type[:100], size_bytes=attachment.size, sha256=key, source="email",
        ))


def _cut(value: str | None, limit: int) -> str | None:
    return value[:limit] if value else None
