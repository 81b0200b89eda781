"""Push settings (what each case action writes to its ticket) and replies queued by hand.

What belongs here: reading the tenant's effective push settings and replacing them, and queuing one
canned or free-text reply (or internal note) to a case's ticket through the outbox — what the
agent's sidebar sends. What the settings mean, and the defaults, live in ``outbox.py``
(``DEFAULT_PUSHES``, ``enqueue_case_pushes``); the schema in ``schemas.py``.
"""

from __future__ import annotations

from app.cases.models import CaseEvent
from app.cases.queries import get_case
from app.cases.services import Actor
from app.connectors.models import Integration
from app.email import outbound as mail_outbound
from app.errors import ValidationFailed
from app.extensions import db
from app.outbound import outbox
from app.outbound.canned import text_to_html
from app.outbound.canned_store import render_for_case
from app.outbound.schemas import PushSettings, ReplyIn, ReplyOut
from app.tenants.models import Tenant
from integrations.base import OutboundAction


def get_push_settings(tenant: Tenant) -> PushSettings:
    """The settings in effect: every action listed, the defaults filled in where the tenant set nothing."""
    stored = outbox.stored_push_settings(tenant)
    return PushSettings(actions=outbox.effective_pushes(stored), sync_ticket_status=stored.sync_ticket_status)


def update_push_settings(tenant: Tenant, settings: PushSettings) -> PushSettings:
    """Store ``settings`` (actions not listed keep the defaults) and answer the settings in effect."""
    tenant.settings = {**(tenant.settings or {}), "pushes": settings.model_dump(mode="json")}
    db.session.commit()
    return get_push_settings(tenant)


def queue_reply(tenant: Tenant, number: str, data: ReplyIn, actor: Actor) -> ReplyOut:
    """Queue one reply (``visibility`` public) or internal note to the case's ticket, from a canned
    response rendered for the case now, or from free text; it is recorded on the case's timeline.
    A case without a ticket that is answered by mail (``email.outbound.mail_thread``) gets the
    reply as a mail to the customer instead.

    :raise NotFound: (404) the tenant has no such case.
    :raise ValidationFailed: (422) the case has no ticket with write-back configured, nor a mail
        thread; an internal note for a mail thread (``no_ticket``); a reply to a customer whose
        mail bounced, without ``force`` (``mail_bouncing``).
    :raise CannedTemplateError: (422) the canned response fails on this case's data.
    """
    case = get_case(tenant.id, number)
    integration = db.session.get(Integration, case.integration_id) if case.integration_id else None
    thread = None if case.ticket_id else mail_outbound.mail_thread(case)  # no ticket: the customer's mail thread
    if thread is not None:
        if data.visibility != "public":
            raise ValidationFailed(f"Case {case.number} is answered by mail and has no ticket to hold an internal "
                                   f"note; add a note to one of its actions instead.", code="no_ticket")
        mail_outbound.check_manual_reply(case, data.force)
    elif not case.ticket_id or integration is None or not (integration.settings or {}).get("base_url"):
        raise ValidationFailed(
            f"Case {case.number} has no helpdesk ticket with write-back configured, so there is nowhere to send "
            f"a reply. Link a ticket, and set the integration's base_url and credentials.",
            {"ticket_id": case.ticket_id, "integration_id": case.integration_id}, code="no_write_back")
    if data.key is not None:
        rendered = render_for_case(case, tenant, data.key, locale=data.locale)
        subject, text, html = rendered.subject, rendered.text, rendered.html
        locale_used, origin = rendered.locale_used, rendered.origin
    else:
        assert data.text is not None
        subject, text, html, locale_used, origin = None, data.text, text_to_html(data.text), None, "text"
    kind = "reply" if data.visibility == "public" else "note"
    event = CaseEvent(
        tenant_id=case.tenant_id, case_id=case.id, action=kind, from_status=None, to_status=None,
        actor_type=actor.type, actor_id=actor.id, channel=actor.channel,
        data={"key": data.key, "locale_used": locale_used, "visibility": data.visibility, "text": text[:2000]},
    )
    db.session.add(event)
    db.session.flush()  # the event id is part of the message's idempotency key
    if thread is not None:
        mail, message = mail_outbound.queue_mail_reply(case, thread, event, subject=subject, text=text, html=html)
        db.session.commit()
        return ReplyOut(message_id=message.id, event_id=event.id, idempotency_key=message.idempotency_key, kind=kind,
                        status=message.status, integration_id=thread.integration.id, ticket_id=None,
                        mail_id=mail.id, key=data.key, locale_used=locale_used, origin=origin, subject=mail.subject,
                        text=text, html=html)
    action = OutboundAction(
        kind=kind, ticket_id=case.ticket_id, idempotency_key=f"{case.id}:{event.id}:0", body_text=text,
        body_html=html, recipient_email=case.customer.email if kind == "reply" else None,
    )
    message = outbox.enqueue(tenant_id=case.tenant_id, integration_id=integration.id, action=action, case_id=case.id)
    db.session.commit()
    return ReplyOut(message_id=message.id, event_id=event.id, idempotency_key=message.idempotency_key, kind=kind,
                    status=message.status, integration_id=integration.id, ticket_id=case.ticket_id, key=data.key,
                    locale_used=locale_used, origin=origin, subject=subject, text=text, html=html)
