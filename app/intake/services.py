"""Intake, shared by helpdesk tickets and (later) email: a normalised message becomes a note on
its linked case, a new case, or a suggestion the agent can accept.

Nothing here commits: the caller (``inbound.services.process_event``) owns the transaction, so
marking the inbound event processed and creating the case happen together or not at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.orm import selectinload

from app.cases import schemas as case_schemas
from app.cases.models import CaseEvent, ReasonCode, ReturnCase
from app.cases.services import Actor, create_case, perform_action, queue_updates
from app.cases.states import Action, CaseStatus
from app.connectors.models import Integration
from app.connectors.schemas import IntakeSettings, IntegrationSettings
from app.errors import AppError
from app.extensions import db, utcnow
from app.intake.detect import (
    DEFAULT_ORDER_PATTERNS, Intent, detect_intent, extract_order_numbers, extract_quantity, extract_skus,
)
from app.intake.models import Suggestion
from app.orders.models import Customer, Order
from app.tenants.models import Tenant
from integrations.base import TicketEvent

Outcome = Literal["appended", "case_created", "suggested", "ignored"]
RECENT_ORDER_DAYS = 120
MESSAGE_LIMIT = 20_000  # characters kept on the timeline; the inbox keeps the whole body
RESOLUTION_FOR_KIND = {"refund": "refund", "exchange": "exchange", "return": "refund"}


@dataclass(frozen=True)
class IntakeResult:
    outcome: Outcome
    detail: str
    case: ReturnCase | None = None
    suggestion: Suggestion | None = None
    intent: Intent | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome, "detail": self.detail,
            "case": self.case.number if self.case else None,
            "suggestion_id": self.suggestion.id if self.suggestion else None,
            "intent": self.intent.to_dict() if self.intent else None,
        }


def intake_settings(tenant: Tenant, integration: Integration | None) -> IntakeSettings:
    """The tenant's intake settings with the integration's overrides on top."""
    settings = IntakeSettings.model_validate(tenant.settings.get("intake", {}))
    if integration is not None:
        own = IntegrationSettings.model_validate(integration.settings or {})
        updates: dict[str, Any] = {}
        if own.auto_create_min_confidence is not None:
            updates["auto_create_min_confidence"] = own.auto_create_min_confidence
        if own.suggest_min_confidence is not None:
            updates["suggest_min_confidence"] = own.suggest_min_confidence
        if own.order_number_patterns:
            updates["order_number_patterns"] = own.order_number_patterns + settings.order_number_patterns
        settings = settings.model_copy(update=updates)
    return settings


def linked_case(tenant_id: int, integration_id: int | None, ticket_id: str) -> ReturnCase | None:
    """The newest case linked to this ticket, if any."""
    query = sa.select(ReturnCase).where(ReturnCase.tenant_id == tenant_id, ReturnCase.ticket_id == ticket_id)
    if integration_id is not None:
        query = query.where(ReturnCase.integration_id == integration_id)
    return db.session.scalar(query.order_by(ReturnCase.id.desc()).limit(1))


def _locale(event: TicketEvent, intent: Intent | None) -> str | None:
    for candidate in (event.language, intent.language if intent else None):
        if candidate and re.match(r"^[A-Za-z]{2}", candidate):
            return candidate[:2].lower()
    return None


def append_message(case: ReturnCase, event: TicketEvent, channel: str) -> None:
    """Put the customer's message on the case timeline (and tell the tenant's webhook subscribers);
    a reply to an info request reopens review."""
    message = CaseEvent(
        tenant_id=case.tenant_id, case_id=case.id, action="message", actor_type="customer",
        actor_id=event.requester_email, channel=channel,
        data={"text": (event.message or "")[:MESSAGE_LIMIT], "ticket_id": event.ticket_id,
              "message_id": event.message_id, "subject": event.subject},
    )
    db.session.add(message)
    queue_updates(case, message)
    if case.status == CaseStatus.AWAITING_CUSTOMER:
        tenant = db.session.get(Tenant, case.tenant_id)
        perform_action(tenant, case.number, Action.CUSTOMER_REPLIED,
                       case_schemas.CustomerRepliedIn(message=(event.message or "")[:5000] or None),
                       Actor(type="system", id=None, channel=channel), commit=False)


@dataclass
class Draft:
    """What intake could work out for a new case, and what it could not."""

    proposal: dict[str, Any]
    order_numbers: list[str]
    notes: list[str]  # what intake had to guess or could not find, for the agent

    @property
    def complete(self) -> bool:
        """Enough to open a case: at least one line and the customer's address."""
        return bool(self.proposal["lines"]) and self.proposal["customer_email"] is not None


def _orders_for(tenant: Tenant, numbers: list[str], email: str | None) -> tuple[list[Order], list[str]]:
    notes: list[str] = []
    orders: list[Order] = []
    if numbers:
        found = {o.number: o for o in db.session.scalars(
            sa.select(Order).where(Order.tenant_id == tenant.id, Order.number.in_(numbers))
            .options(selectinload(Order.lines)))}
        orders = [found[n] for n in numbers if n in found]
        unknown = [n for n in numbers if n not in found]
        if unknown:
            notes.append(f"Order number(s) not known: {', '.join(unknown)}.")
    if not orders and email:
        since = (utcnow() - timedelta(days=RECENT_ORDER_DAYS)).date()
        recent = list(db.session.scalars(
            sa.select(Order).join(Customer, Customer.id == Order.customer_id)
            .where(Order.tenant_id == tenant.id, Customer.email == email.lower(), Order.ordered_on >= since)
            .options(selectinload(Order.lines)).order_by(Order.ordered_on.desc()).limit(5)))
        if len(recent) == 1:
            orders = recent
            notes.append(f"No order number in the ticket; {recent[0].number} is the customer's only recent order.")
        elif recent:
            notes.append("No order number in the ticket; the customer has several recent orders: "
                         + ", ".join(o.number for o in recent) + ".")
    return orders, notes


def draft_case(tenant: Tenant, integration: Integration | None, event: TicketEvent, intent: Intent,
               settings: IntakeSettings, channel: str) -> Draft:
    """A CaseCreate-shaped proposal from the ticket: order, lines, quantity, reason, customer."""
    text = "\n".join(part for part in (event.subject, event.message) if part)
    numbers = extract_order_numbers(text, list(settings.order_number_patterns) + list(DEFAULT_ORDER_PATTERNS))
    field = IntegrationSettings.model_validate(integration.settings or {}).order_number_field if integration else None
    if field and event.custom_fields.get(field):
        numbers = [str(event.custom_fields[field]).strip().lstrip("#")] + [n for n in numbers if n != event.custom_fields[field]]
    orders, notes = _orders_for(tenant, numbers, event.requester_email)
    lines: list[dict[str, Any]] = []
    if orders:
        order = orders[0]
        skus = set(extract_skus(text, [line.sku for line in order.lines]))
        chosen = [line for line in order.lines if line.sku in skus] or (order.lines if len(order.lines) == 1 else [])
        quantity = extract_quantity(text) or 1
        for line in chosen:
            lines.append({"order_number": order.number, "sku": line.sku, "quantity": min(quantity, line.quantity)})
        if not chosen:
            notes.append(f"Could not tell which item of order {order.number} is meant.")
    elif not notes:
        notes.append("No order could be found for this ticket.")
    email = event.requester_email or (orders[0].customer.email if orders else None)
    if email is None:
        notes.append("The customer's email address is unknown.")
    reason = None
    if intent.reason_code:
        reason = db.session.scalar(sa.select(ReasonCode.code).where(
            ReasonCode.tenant_id == tenant.id, ReasonCode.code == intent.reason_code, ReasonCode.active.is_(True)))
    for line in lines:
        line["reason_code"] = reason
        if event.message:
            line["comment"] = event.message[:5000]
    proposal: dict[str, Any] = {
        "customer_email": email, "customer_name": event.requester_name, "channel": channel,
        "locale": _locale(event, intent), "lines": lines,
        "preferred_resolution": RESOLUTION_FOR_KIND.get(intent.kind or ""),
        # A mail thread is no helpdesk ticket: email cases are found again by their Message-IDs.
        "ticket": None if event.provider == "email" else {"provider": event.provider, "id": event.ticket_id,
                                                           "url": event.ticket_url},
    }
    return Draft(proposal=proposal, order_numbers=numbers, notes=notes)


def _suggest(tenant: Tenant, integration: Integration | None, event: TicketEvent, intent: Intent, draft: Draft,
             extra_why: list[str]) -> Suggestion:
    integration_id = integration.id if integration else None
    suggestion = db.session.scalar(sa.select(Suggestion).where(
        Suggestion.tenant_id == tenant.id, Suggestion.integration_id == integration_id,
        Suggestion.ticket_id == event.ticket_id))
    if suggestion is None:
        suggestion = Suggestion(tenant_id=tenant.id, integration_id=integration_id, ticket_id=event.ticket_id)
        db.session.add(suggestion)
    suggestion.status, suggestion.confidence = "open", intent.confidence
    suggestion.kind, suggestion.reason_code, suggestion.language = intent.kind, intent.reason_code, intent.language
    suggestion.customer_email = draft.proposal.get("customer_email")
    suggestion.order_numbers = draft.order_numbers
    suggestion.proposal = draft.proposal
    suggestion.why = [f"Matched: {phrase}" for phrase in intent.evidence] + draft.notes + extra_why
    db.session.flush()
    return suggestion


def handle_ticket_event(tenant: Tenant, integration: Integration | None, event: TicketEvent,
                        channel: str = "helpdesk") -> IntakeResult:
    """Route one ticket event: linked case → timeline; new return request → case or suggestion.

    Does not commit.
    """
    if event.event_type == "ping":
        return IntakeResult("ignored", "Ping event.")
    # A mail thread is linked to its case through Message-IDs (app.email.threading), never a ticket id.
    case = None if event.provider == "email" else linked_case(tenant.id, integration.id if integration else None,
                                                              event.ticket_id)
    if case is not None:
        if event.message and event.author_role in ("customer", "unknown"):
            append_message(case, event, channel)
            return IntakeResult("appended", f"Message added to {case.number}.", case=case)
        return IntakeResult("ignored", f"Ticket is linked to {case.number}; nothing from the customer to add.", case=case)
    if event.author_role in ("agent", "system"):
        return IntakeResult("ignored", "Written by an agent or the system, not the customer.")
    if not (event.message or event.subject):
        return IntakeResult("ignored", "No text to read.")

    intent = detect_intent(event.message or "", subject=event.subject, language_hint=event.language)
    settings = intake_settings(tenant, integration)
    if intent.confidence < settings.suggest_min_confidence:
        return IntakeResult("ignored", f"No return request detected (confidence {intent.confidence:.2f}).", intent=intent)
    draft = draft_case(tenant, integration, event, intent, settings, channel)
    if intent.confidence >= settings.auto_create_min_confidence and draft.complete:
        try:
            data = case_schemas.CaseCreate.model_validate(draft.proposal)
            with db.session.begin_nested():  # a refused case leaves no trace; a suggestion follows
                case = create_case(tenant, data, Actor(type="customer", id=data.customer_email, channel=channel),
                                   integration_id=integration.id if integration else None, commit=False)
            db.session.add(CaseEvent(
                tenant_id=tenant.id, case_id=case.id, action="intake", actor_type="system", channel=channel,
                reason=(f"Opened from an email from {event.requester_email}" if event.provider == "email" else
                        f"Opened from {event.provider} ticket {event.ticket_id}") + f" (confidence {intent.confidence:.2f}).",
                data={"intent": intent.to_dict(), "ticket_id": event.ticket_id},
            ))
            if event.message:
                append_message(case, event, channel)
            return IntakeResult("case_created", f"Opened {case.number}.", case=case, intent=intent)
        except ValidationError as exc:
            why = [f"Could not open a case: {error['msg']}" for error in exc.errors(include_url=False)]
        except AppError as exc:
            fields = exc.details.get("fields", {})
            why = [f"Could not open a case: {msg}" for msgs in fields.values() for msg in msgs] or [exc.message]
    elif intent.confidence >= settings.auto_create_min_confidence:
        why = []
    else:
        why = [f"Confidence {intent.confidence:.2f} is below the {settings.auto_create_min_confidence:.2f} needed to open a case."]
    suggestion = _suggest(tenant, integration, event, intent, draft, why)
    return IntakeResult("suggested", "Stored a suggestion for the agent.", suggestion=suggestion, intent=intent)


def open_case_for_ticket(tenant: Tenant, data: case_schemas.CaseCreate, actor: Actor, integration_id: int,
                         ticket_id: str) -> ReturnCase:
    """An agent opens the case for a ticket (the sidebar's create form): the case, and the ticket's
    open suggestion marked accepted, in one commit.

    :raise ValidationFailed: (422) as ``create_case``.
    """
    case = create_case(tenant, data, actor, integration_id=integration_id, commit=False)
    suggestion = db.session.scalar(sa.select(Suggestion).where(
        Suggestion.tenant_id == tenant.id, Suggestion.integration_id == integration_id,
        Suggestion.ticket_id == ticket_id, Suggestion.status == "open"))
    if suggestion is not None:
        suggestion.status = "accepted"
    db.session.commit()
    return case
