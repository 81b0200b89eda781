"""The agent's panel: the server-rendered page in the helpdesk's ticket sidebar, and every action.

What belongs here: the panel's routes (``GET /sidebar/panel`` and the POSTs it makes), reading what
the panel shows for the open ticket (its case, else the intake's suggestion, else a blank form),
turning form fields into the case services' schemas, and rendering their errors as readable HTML.
The case rules live in ``app/cases``; the templates in ``templates/sidebar/``.

Every request carries the panel token (``context.py``): htmx sends it in the ``X-Panel-Token``
header set on ``<body>``, plain forms in a hidden ``panel_token`` field, so every action is an
ordinary POST form that works without JavaScript and that htmx merely enhances (it swaps the
``#panel`` fragment instead of loading a page). No cookies: browsers block them in iframes.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import Response, abort, g, render_template, request, send_from_directory
from sqlalchemy.orm import selectinload

from app.cases import queries, services, states
from app.cases.models import CaseEvent, Evidence, ReturnCase
from app.cases.schemas import CaseCreate
from app.cases.states import Action, CaseStatus
from app.connectors.models import Integration
from app.email.models import MailMessage
from app.email.services import attachment_store
from app.errors import AppError, InvalidTransitionError, NotFound, ValidationFailed, VersionConflict
from app.extensions import db
from app.intake.models import Suggestion
from app.intake.services import linked_case, open_case_for_ticket
from app.orders.models import Customer, Order
from app.outbound import pushes
from app.outbound.canned import LOCALES, TEMPLATE_KEYS
from app.outbound.canned_store import render_for_case
from app.outbound.models import OutboxMessage
from app.outbound.schemas import ReplyIn
from app.sidebar.blueprints import bp
from app.sidebar.context import panel_required
from app.tenants.models import Tenant
from app.validation import parse_mapping

F = TypeVar("F", bound=Callable[..., Any])

ROOT = Path(__file__).resolve().parents[2]
HTMX_DIR = ROOT / "node_modules" / "htmx.org" / "dist"
HTMX_FILE = "htmx.min.js"

TIMELINE_LIMIT = 60  # per source; a panel is no archive
RECENT_ORDERS = 8
SEEN_MAX_BYTES = 20_000
# Raster images only: an SVG can carry script, so it is never shown inline.
INLINE_IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp"}
_MIME = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$")

# ---- plain words ---------------------------------------------------------------------------------

STATUS_LABELS = {
    "requested": "Requested", "pending_review": "Waiting for review", "awaiting_customer": "Waiting for the customer",
    "authorized": "Approved", "awaiting_shipment": "Waiting for the parcel", "in_transit": "On its way back",
    "received": "Received", "inspected": "Inspected", "resolving": "Being settled", "resolved": "Settled",
    "closed": "Closed", "rejected": "Rejected", "cancelled": "Cancelled", "expired": "Expired",
    "on_hold": "On hold", "exception": "Parcel lost",
}
ACTION_LABELS = {
    "approve": "Approve", "flag": "Flag for review", "reject": "Reject", "request_info": "Ask the customer",
    "customer_replied": "Customer replied", "issue_label": "Issue a return label", "ship": "Mark shipped",
    "receive": "Receive items", "inspect": "Inspect items", "approve_returnless": "Let the customer keep it",
    "resolve": "Resolve", "settle": "Mark settlement paid", "close": "Close", "reopen": "Reopen",
    "cancel": "Cancel the return", "expire": "Expire", "hold": "Put on hold", "release": "Release the hold",
    "mark_lost": "Mark parcel lost",
    # Timeline entries that are not transitions.
    "create": "Case opened", "message": "Customer message", "reply": "Public reply", "note": "Internal note",
    "intake": "Opened from the ticket",
}
RECEPTION_LABELS = {
    "awaiting": "not sent yet", "in_transit": "on its way", "received": "received",
    "partially_received": "partly received", "missing": "missing", "wrong_item": "wrong item",
    "lost_in_transit": "lost by the carrier", "given_to_customer": "kept by the customer", "cancelled": "cancelled",
}
DECISION_LABELS = {"pending": "pending", "accepted": "accepted", "rejected": "refused", "manual_review": "needs review"}
OUTCOME_LABELS = {
    "approve": "Within policy: approved automatically.",
    "review": "Needs an agent's decision.",
    "reject": "Outside the policy: no item is eligible.",
}
RULE_LABELS = {
    "return_window": "Return window", "final_sale": "Final sale", "excluded_category": "Excluded category",
    "excluded_sku": "Excluded item", "photo": "Photo", "restocking_fee": "Restocking fee",
    "has_lines": "Items to return", "auto_approve_enabled": "Automatic approval",
    "auto_approve_order_value": "Order value", "auto_approve_reasons": "Reason", "order_value_review": "Order value",
    "return_history": "Customer's returns", "keep_item": "Keep the item", "preferred_resolution": "Preferred resolution",
}
RESOLUTION_LABELS = {
    "refund": "Refund", "store_credit": "Store credit", "exchange": "Exchange", "replacement": "Replacement",
    "repair": "Repair", "keep_item": "Keep the item (refund without return)",
}
DISPOSITIONS = ("restock", "refurbish", "repair", "recycle", "dispose", "donate", "return_to_vendor", "quarantine")
GRADES = ("A", "B", "C", "D", "damaged")
TEMPLATE_LABELS = {key: key.replace("_", " ").capitalize() for key in TEMPLATE_KEYS}
DELIVERY_LABELS = {"pending": "waiting to be sent", "sending": "sending", "delivered": "delivered",
                   "dead": "failed (gave up)", "discarded": "discarded"}
FIELD_LABELS = {
    "reason": "Reason", "message": "Message", "carrier": "Carrier", "tracking_number": "Tracking number",
    "label_url": "Label link", "note": "Note", "kind": "Resolution", "exchange_value": "Value of the new item",
    "external_ref": "Payment reference", "version": "Version", "customer_email": "Customer email",
    "customer_name": "Customer name", "lines": "Items", "key": "Canned response", "locale": "Language",
    "visibility": "Visibility", "order_number": "Order number", "preferred_resolution": "Resolution",
}


# ---- plumbing --------------------------------------------------------------------------------------

def panel_view(view: F) -> F:
    """``panel_required``, with every ``AppError`` (401 included) rendered as HTML inside the panel."""
    guarded = panel_required(view)

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return guarded(*args, **kwargs)
        except AppError as exc:
            db.session.rollback()
            return _error_page(exc)

    return wrapper  # type: ignore[return-value]


def _error_page(exc: AppError) -> Response:
    template = "sidebar/_error.html" if _is_htmx() else "sidebar/error.html"
    html = render_template(template, error=exc, token=getattr(g, "panel_token", None))
    return Response(html, status=exc.status, mimetype="text/html")


def _is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def _tenant() -> Tenant:
    tenant = db.session.get(Tenant, g.panel.tenant_id)
    if tenant is None:
        raise NotFound("This panel's shop no longer exists.")
    return tenant


def _actor() -> services.Actor:
    agent = g.panel.agent_id or g.panel.agent_name
    return services.Actor(type="agent", id=str(agent)[:100] if agent else None, channel="helpdesk")


def _ticket_case(number: str) -> ReturnCase:
    """The tenant's case ``number``, if it belongs to the panel's ticket.

    :raise NotFound: (404) another tenant's case, or a case of another ticket.
    """
    case = queries.get_case(g.panel.tenant_id, number)
    if case.ticket_id != g.panel.ticket_id or case.integration_id != g.panel.integration_id:
        raise NotFound(f"No case {number!r} on this ticket.", {"number": number})
    return case


def htmx_available() -> bool:
    return (HTMX_DIR / HTMX_FILE).is_file()


# ---- what the panel shows --------------------------------------------------------------------------

@dataclass
class Notice:
    """The result of the last request, read out by the ``aria-live`` region."""

    kind: str  # success | error | conflict
    title: str
    items: list[str] = field(default_factory=list)


@dataclass
class FormState:
    """A form to show open and prefilled: after an error, a conflict, or a preview."""

    action: str
    values: Mapping[str, str]
    errors: dict[str, list[str]] = field(default_factory=dict)


def _aware(value: datetime | None) -> datetime:
    if value is None:
        return datetime.min.replace(tzinfo=timezone.utc)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _event_item(event: CaseEvent) -> dict[str, Any]:
    data = event.data or {}
    title = ACTION_LABELS.get(event.action, event.action.replace("_", " ").capitalize())
    if event.action == "reply" and data.get("visibility") == "internal":
        title = ACTION_LABELS["note"]
    body = data.get("text") or data.get("message") if event.action in ("message", "reply", "note", "request_info") else None
    moved = None
    if event.from_status and event.to_status and event.from_status != event.to_status:
        moved = f"{STATUS_LABELS.get(event.from_status, event.from_status)} → {STATUS_LABELS.get(event.to_status, event.to_status)}"
    who = {"agent": "Agent", "api": "API", "system": "Rebound", "customer": "Customer"}.get(event.actor_type, event.actor_type)
    if event.actor_id:
        who = f"{who} {event.actor_id}"
    return {"kind": "event", "when": _aware(event.created_at), "title": title, "moved": moved, "body": body,
            "reason": event.reason if body != event.reason else None, "note": data.get("note"),
            "who": f"{who} · {event.channel}", "action": event.action}


def _mail_item(mail: MailMessage) -> dict[str, Any]:
    incoming = mail.direction == "in"
    party = mail.from_name or mail.from_address if incoming else ", ".join(str(a) for a in (mail.to_addresses or []))
    return {"kind": "mail", "when": _aware(mail.sent_at or mail.created_at),
            "title": f"Email {'from' if incoming else 'to'} {party or 'unknown'}", "subject": mail.subject,
            "body": mail.reply_text if mail.reply_text is not None else mail.full_text,
            "quoted": mail.quoted_text, "state": mail.status, "who": mail.from_address if incoming else "Rebound"}


def _delivery_item(message: OutboxMessage) -> dict[str, Any]:
    action = message.action or {}
    kind = str(action.get("kind") or "update")
    return {"kind": "delivery", "when": _aware(message.created_at),
            "title": f"Ticket update: {ACTION_LABELS.get(kind, kind.replace('_', ' '))}",
            "state": DELIVERY_LABELS.get(message.status, message.status), "status": message.status,
            "attempts": message.attempts, "error": message.last_error}


def build_timeline(case: ReturnCase) -> list[dict[str, Any]]:
    """Events, mail and ticket deliveries of the case, newest first."""
    events = db.session.scalars(
        sa.select(CaseEvent).where(CaseEvent.tenant_id == case.tenant_id, CaseEvent.case_id == case.id)
        .order_by(CaseEvent.id.desc()).limit(TIMELINE_LIMIT))
    mails = db.session.scalars(
        sa.select(MailMessage).where(MailMessage.case_id == case.id, MailMessage.tenant_id == case.tenant_id)
        .order_by(MailMessage.id.desc()).limit(TIMELINE_LIMIT))
    items = [_event_item(e) for e in events] + [_mail_item(m) for m in mails]
    if case.integration_id and case.ticket_id:
        # By the ordering key (indexed): the outbox has no index on case_id.
        deliveries = db.session.scalars(
            sa.select(OutboxMessage).where(OutboxMessage.ordering_key == f"{case.integration_id}:{case.ticket_id}",
                                           OutboxMessage.case_id == case.id)
            .order_by(OutboxMessage.id.desc()).limit(TIMELINE_LIMIT))
        items += [_delivery_item(m) for m in deliveries]
    items.sort(key=lambda item: item["when"], reverse=True)
    return items


def _last_event_id(case: ReturnCase) -> int:
    return db.session.scalar(
        sa.select(sa.func.max(CaseEvent.id)).where(CaseEvent.tenant_id == case.tenant_id, CaseEvent.case_id == case.id)
    ) or 0


def snapshot(case: ReturnCase, last_event_id: int) -> str:
    """What the agent sees, posted back with every action so a conflict can say what changed since."""
    return json.dumps({
        "s": case.status, "e": last_event_id,
        "l": {str(line.id): [line.qty_authorized, line.qty_received, line.qty_accepted, line.reception_status,
                             line.decision_status] for line in case.lines},
    }, separators=(",", ":"))


def what_changed(case: ReturnCase, seen_raw: str | None) -> list[str]:
    """Readable differences between the snapshot the agent acted on and the case now."""
    seen: dict[str, Any] = {}
    if seen_raw and len(seen_raw) <= SEEN_MAX_BYTES:
        try:
            loaded = json.loads(seen_raw)
            seen = loaded if isinstance(loaded, dict) else {}
        except ValueError:
            seen = {}
    changes: list[str] = []
    old_status = seen.get("s")
    if isinstance(old_status, str) and old_status != case.status:
        changes.append(f"Status: {STATUS_LABELS.get(old_status, old_status)} → {STATUS_LABELS.get(case.status, case.status)}.")
    old_lines = seen.get("l") if isinstance(seen.get("l"), dict) else {}
    names = ("authorized", "received", "accepted", "reception", "decision")
    for line in case.lines:
        before = old_lines.get(str(line.id))
        now = [line.qty_authorized, line.qty_received, line.qty_accepted, line.reception_status, line.decision_status]
        if not isinstance(before, list) or len(before) != len(now):
            continue
        diffs = [f"{name} {old} → {new}" for name, old, new in zip(names, before, now) if old != new]
        if diffs:
            changes.append(f"{line.sku} ({line.title}): " + ", ".join(str(d) for d in diffs) + ".")
    since = seen.get("e")
    query = sa.select(CaseEvent).where(CaseEvent.tenant_id == case.tenant_id, CaseEvent.case_id == case.id)
    if isinstance(since, int):
        query = query.where(CaseEvent.id > since).order_by(CaseEvent.id)
    else:  # no usable snapshot: the latest few events are the best account we have
        query = query.order_by(CaseEvent.id.desc())
    for event in db.session.scalars(query.limit(10)):
        item = _event_item(event)
        changes.append(f"{item['title']} by {item['who']}" + (f" ({item['moved']})" if item["moved"] else "")
                       + (f": {item['reason']}" if item["reason"] else "") + ".")
    return changes or ["The case was saved by someone else in the meantime."]


def _decision(case: ReturnCase) -> dict[str, Any] | None:
    decision = case.policy_decision
    if not decision:
        return None
    lines = {str(line.position): line for line in case.lines}
    rules = []
    for result in decision.get("results", []):
        line = lines.get(str(result.get("line"))) if result.get("line") is not None else None
        rules.append({"label": RULE_LABELS.get(result.get("rule"), str(result.get("rule", "")).replace("_", " ").capitalize()),
                      "passed": bool(result.get("passed")), "why": result.get("why", ""),
                      "line": f"{line.sku}" if line else None})
    options = [RESOLUTION_LABELS.get(o, o) for o in decision.get("options", [])]
    return {"outcome": OUTCOME_LABELS.get(decision.get("outcome"), decision.get("outcome")),
            "summary": decision.get("summary"), "rules": rules, "changes": decision.get("what_would_change", []),
            "options": options, "bonus": decision.get("store_credit_bonus_percent")}


def case_view(case: ReturnCase) -> dict[str, Any]:
    """Everything the case part of the panel shows."""
    status = CaseStatus(case.status)
    allowed = [a.value for a in states.allowed_actions(status, case.held_from)]
    last_event = _last_event_id(case)
    return {
        "case": case, "status_label": STATUS_LABELS.get(case.status, case.status),
        "status_description": states.STATUS_DESCRIPTIONS[status], "next_step": states.NEXT_STEP[status],
        "held_from": STATUS_LABELS.get(case.held_from or "", case.held_from),
        "allowed": allowed, "decision": _decision(case), "timeline": build_timeline(case),
        "seen": snapshot(case, last_event), "reason_codes": queries.reason_codes(case.tenant_id),
        "options": services.policy_options(case)[0],
        "received_lines": [line for line in case.lines if line.qty_received > 0 or line.reception_status == "wrong_item"],
        "authorized_lines": [line for line in case.lines if line.qty_authorized > 0],
        "locale_options": [("", f"The case's language ({case.locale})")]
        + [(locale, locale) for locale in LOCALES if locale != case.locale],
    }


def _suggestion() -> Suggestion | None:
    return db.session.scalar(sa.select(Suggestion).where(
        Suggestion.tenant_id == g.panel.tenant_id, Suggestion.integration_id == g.panel.integration_id,
        Suggestion.ticket_id == g.panel.ticket_id, Suggestion.status == "open"))


def _order(number: str) -> Order | None:
    return db.session.scalar(sa.select(Order).where(Order.tenant_id == g.panel.tenant_id, Order.number == number)
                             .options(selectinload(Order.lines)))


def _orders_of(email: str) -> list[Order]:
    return list(db.session.scalars(
        sa.select(Order).join(Customer, Customer.id == Order.customer_id)
        .where(Order.tenant_id == g.panel.tenant_id, Customer.email == email.strip().lower())
        .order_by(Order.ordered_on.desc(), Order.id.desc()).limit(RECENT_ORDERS)))


CREATE_FIELDS = ("customer_email", "customer_name", "reason_code", "comment", "preferred_resolution", "note")


def create_view(values: Mapping[str, str] | None = None, *, order_number: str | None = None,
                email: str | None = None, lookup: bool = False) -> dict[str, Any]:
    """The "create case" part: prefilled from the suggestion (or the requester), with the order
    found by number or by email. ``values``: a create form sent back with an error, kept as entered.
    ``lookup``: the agent searched for ``order_number`` or ``email`` explicitly."""
    suggestion = _suggestion()
    proposal = (suggestion.proposal or {}) if suggestion else {}
    proposed_lines = [line for line in proposal.get("lines") or [] if isinstance(line, dict)]
    first = proposed_lines[0] if proposed_lines else {}
    prefill = {
        "customer_email": proposal.get("customer_email") or g.panel.requester_email or "",
        "customer_name": proposal.get("customer_name") or g.panel.requester_name or "",
        "reason_code": first.get("reason_code") or "", "comment": first.get("comment") or "",
        "preferred_resolution": proposal.get("preferred_resolution") or "", "note": "",
    }
    if values is not None:
        prefill.update({name: values.get(name, "") for name in CREATE_FIELDS})
    picked = {line.get("sku"): line.get("quantity") for line in proposed_lines}
    proposed_order = next((line.get("order_number") for line in proposed_lines if line.get("order_number")), None)
    if not lookup:
        order_number = order_number or proposed_order
        email = prefill["customer_email"] or None
    order = _order(order_number) if order_number else None
    orders: list[Order] = []
    if order is None and email and not (lookup and order_number):
        orders = _orders_of(email)
        if len(orders) == 1:
            order = _order(orders[0].number)
    lines = []
    if order is not None:
        for index, line in enumerate(order.lines):
            key = f"line.{index}"
            if values is not None:
                chosen, quantity = values.get(f"{key}.pick") == "1", values.get(f"{key}.quantity") or "1"
            else:
                chosen = order.number == proposed_order and line.sku in picked
                quantity = str(picked.get(line.sku) or 1) if chosen else "1"
            lines.append({"index": index, "line": line, "picked": chosen, "quantity": quantity})
    return {"suggestion": suggestion, "prefill": prefill, "order": order, "orders": orders, "lines": lines,
            "looked_up": {"order_number": order_number or "", "email": email or ""},
            "reason_codes": [r for r in queries.reason_codes(g.panel.tenant_id) if r.active]}


def render_panel(*, case: ReturnCase | None = None, notice: Notice | None = None, form: FormState | None = None,
                 preview: dict[str, Any] | None = None, create: dict[str, Any] | None = None,
                 status: int = 200) -> Response:
    """The panel for the ticket: ``case`` (default: the ticket's newest case), else the create form."""
    if case is None and create is None:
        found = linked_case(g.panel.tenant_id, g.panel.integration_id, g.panel.ticket_id)
        case = queries.get_case(g.panel.tenant_id, found.number) if found is not None else None
    context: dict[str, Any] = {
        "panel": g.panel, "token": g.panel_token, "notice": notice, "form": form, "preview": preview or {},
        "htmx": htmx_available(), "labels": {
            "status": STATUS_LABELS, "action": ACTION_LABELS, "reception": RECEPTION_LABELS,
            "decision": DECISION_LABELS, "resolution": RESOLUTION_LABELS, "template": TEMPLATE_LABELS,
        },
        "grade_options": [(grade, grade) for grade in GRADES],
        "disposition_options": [(d, d.replace("_", " ")) for d in DISPOSITIONS],
        "template_options": [(key, TEMPLATE_LABELS[key]) for key in TEMPLATE_KEYS],
        "inline_types": INLINE_IMAGE_TYPES,
    }
    if case is not None:
        context["view"] = case_view(case)
    else:
        context["create"] = create if create is not None else create_view()
    template = "sidebar/_panel.html" if _is_htmx() else "sidebar/panel.html"
    return Response(render_template(template, **context), status=status, mimetype="text/html")


# ---- form → schema ---------------------------------------------------------------------------------

class FormReader:
    """Reads form fields into plain values, collecting the errors a schema can't see (numbers)."""

    def __init__(self, form: Mapping[str, str]):
        self.form = form
        self.errors: dict[str, list[str]] = {}

    def text(self, name: str) -> str | None:
        value = (self.form.get(name) or "").strip()
        return value or None

    def integer(self, name: str, label: str) -> int | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            return int(value)
        except ValueError:
            self.errors.setdefault(name, []).append(f"{label}: give a whole number.")
            return None

    def decimal(self, name: str, label: str) -> Decimal | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            return Decimal(value.replace(",", "."))
        except InvalidOperation:
            self.errors.setdefault(name, []).append(f"{label}: give an amount such as 12.50.")
            return None


def _readable(fields: Mapping[str, list[str]]) -> list[str]:
    """``{"lines.0.quantity": ["…"]}`` → ``["Items 1 quantity: …"]``."""
    out = []
    for name, messages in fields.items():
        parts = name.split(".")
        label = FIELD_LABELS.get(parts[0], parts[0].replace("_", " ").capitalize())
        if len(parts) > 1 and parts[1].isdigit():
            label = f"Item {int(parts[1]) + 1}" + (f" {parts[2].replace('_', ' ')}" if len(parts) > 2 else "")
        for message in messages:
            out.append(message if message.endswith(".") and ":" in message else f"{label}: {message}")
    return out


def action_payload(action: Action, case: ReturnCase, form: Mapping[str, str]) -> services.schemas.ActionIn:
    """The action's payload schema, filled from the panel's form.

    :raise ValidationFailed: (422) with ``details.fields``.
    """
    schema, _ = services.ACTIONS[action]
    read = FormReader(form)
    data: dict[str, Any] = {"version": read.integer("version", "Version"), "note": read.text("note")}
    if "reason" in schema.model_fields:
        data["reason"] = read.text("reason")
    if action == Action.APPROVE:
        lines = []
        for line in case.lines:
            quantity = read.integer(f"line.{line.id}.quantity", f"{line.sku} quantity")
            if quantity is not None:
                lines.append({"line_id": line.id, "quantity": quantity})
        data["lines"] = lines or None
    elif action == Action.REQUEST_INFO:
        data["message"] = read.text("message")
    elif action == Action.ISSUE_LABEL:
        data.update(carrier=read.text("carrier"), tracking_number=read.text("tracking_number"),
                    label_url=read.text("label_url"))
    elif action == Action.SHIP:
        data["tracking_number"] = read.text("tracking_number")
    elif action == Action.RECEIVE:
        lines = []
        for line in case.lines:
            quantity = read.integer(f"line.{line.id}.quantity", f"{line.sku} quantity")
            if quantity is not None:
                lines.append({"line_id": line.id, "quantity": quantity,
                              "outcome": read.text(f"line.{line.id}.outcome") or "received"})
        data["lines"] = lines or None
    elif action == Action.INSPECT:
        lines = []
        for line in case.lines:
            grade = read.text(f"line.{line.id}.condition_grade")
            if grade is None:
                continue
            lines.append({"line_id": line.id, "condition_grade": grade,
                          "disposition": read.text(f"line.{line.id}.disposition"),
                          "quantity_accepted": read.integer(f"line.{line.id}.quantity_accepted", f"{line.sku} accepted"),
                          "note": read.text(f"line.{line.id}.note")})
        data["lines"] = lines
    elif action == Action.RESOLVE:
        data.update(kind=read.text("kind"), exchange_value=read.decimal("exchange_value", "Value of the new item"))
    elif action == Action.SETTLE:
        data["external_ref"] = read.text("external_ref")
    if read.errors:
        raise ValidationFailed("Some fields need a fix.", {"fields": read.errors})
    return parse_mapping(schema, {k: v for k, v in data.items() if v is not None}, "form")


def _agent_action(action_name: str) -> Action:
    try:
        action = Action(action_name)
    except ValueError:
        raise NotFound(f"No action {action_name!r}.") from None
    if states.TRANSITIONS[action].system_only:
        raise NotFound(f"Rebound performs {action_name!r} itself.")
    return action


# ---- routes ----------------------------------------------------------------------------------------

@bp.get("/panel")
@panel_view
def panel() -> Response:
    """The panel for the ticket the token names."""
    return render_panel()


@bp.post("/panel/lookup")
@panel_view
def lookup_order() -> Response:
    """Find the order for a new case, by number or by the customer's email."""
    number = (request.form.get("order_number") or "").strip()[:64] or None
    email = (request.form.get("email") or "").strip()[:320] or None
    create = create_view(order_number=number, email=email, lookup=True)
    notice = None
    if create["order"] is None and not create["orders"]:
        what = f"order {number}" if number else f"orders for {email}" if email else None
        notice = Notice("error", f"No {what} found." if what else "Give an order number or an email address.")
    return render_panel(create=create, notice=notice, status=200 if notice is None else 404)


@bp.post("/panel/cases")
@panel_view
def create_case() -> Response:
    """Open a case for the ticket from the create form."""
    form = request.form
    read = FormReader(form)
    order_number = read.text("order_number")
    lines = []
    index = 0
    while f"line.{index}.sku" in form and index < 100:
        key = f"line.{index}"
        if form.get(f"{key}.pick") == "1":
            quantity = read.integer(f"{key}.quantity", f"{form.get(f'{key}.sku')} quantity")
            lines.append({"order_number": order_number, "sku": read.text(f"{key}.sku"), "quantity": quantity or 0,
                          "reason_code": read.text("reason_code"), "comment": read.text("comment")})
        index += 1
    integration = db.session.get(Integration, g.panel.integration_id)
    suggestion = _suggestion()
    locale = (suggestion.proposal or {}).get("locale") if suggestion else None
    data = {
        "customer_email": read.text("customer_email"), "customer_name": read.text("customer_name"),
        "channel": "helpdesk", "preferred_resolution": read.text("preferred_resolution"), "note": read.text("note"),
        "locale": locale, "lines": [{k: v for k, v in line.items() if v is not None} for line in lines],
        "ticket": {"provider": integration.kind if integration else "helpdesk", "id": g.panel.ticket_id},
    }
    try:
        if read.errors:
            raise ValidationFailed("Some fields need a fix.", {"fields": read.errors})
        if not lines:
            raise ValidationFailed("Pick at least one item to return.", {"fields": {"lines": ["pick at least one item"]}})
        body = parse_mapping(CaseCreate, {k: v for k, v in data.items() if v is not None}, "form")
        case = open_case_for_ticket(_tenant(), body, _actor(), g.panel.integration_id, g.panel.ticket_id)
    except ValidationFailed as exc:
        db.session.rollback()
        notice = Notice("error", exc.message, _readable(exc.details.get("fields", {})))
        return render_panel(create=create_view(form, order_number=order_number), notice=notice, status=exc.status)
    case = queries.get_case(case.tenant_id, case.number)
    return render_panel(case=case, notice=Notice("success", f"Opened {case.number}: {STATUS_LABELS.get(case.status)}."),
                        status=201)


@bp.post("/panel/cases/<number>/actions/<action_name>")
@panel_view
def case_action(number: str, action_name: str) -> Response:
    """Run one action with the version the form was rendered with; a conflict shows what changed."""
    action = _agent_action(action_name)
    case = _ticket_case(number)
    values = request.form
    try:
        payload = action_payload(action, case, values)
        case = services.perform_action(_tenant(), number, action, payload, _actor())
    except VersionConflict:
        db.session.rollback()
        case = _ticket_case(number)
        notice = Notice("conflict", f"{case.number} changed while you were working on it. What changed:",
                        what_changed(case, values.get("seen")))
        allowed = action.value in [a.value for a in states.allowed_actions(case.status, case.held_from)]
        notice.items.append("Your entries are kept below; check them and send again." if allowed else
                            f"'{ACTION_LABELS[action.value]}' is no longer possible in this status.")
        return render_panel(case=case, notice=notice, form=FormState(action.value, values), status=409)
    except (InvalidTransitionError, ValidationFailed) as exc:
        db.session.rollback()
        case = _ticket_case(number)
        items = exc.details.get("reasons") or _readable(exc.details.get("fields", {})) or []
        title = exc.message if isinstance(exc, ValidationFailed) else \
            f"Could not {ACTION_LABELS.get(action.value, action.value).lower()}:"
        return render_panel(case=case, notice=Notice("error", title, list(items)),
                            form=FormState(action.value, values), status=exc.status)
    case = queries.get_case(case.tenant_id, case.number)
    return render_panel(case=case, notice=Notice(
        "success", f"{ACTION_LABELS.get(action.value, action.value)}: done. "
                   f"{case.number} is now {STATUS_LABELS.get(case.status, case.status).lower()}."))


@bp.post("/panel/cases/<number>/preview-settlement")
@panel_view
def preview_settlement(number: str) -> Response:
    """The amounts a resolution would pay, shown with a confirm button."""
    case = _ticket_case(number)
    values = request.form
    read = FormReader(values)
    kind = read.text("kind")
    exchange_value = read.decimal("exchange_value", "Value of the new item")
    problems = [m for ms in read.errors.values() for m in ms]
    if kind not in RESOLUTION_LABELS:
        problems.append("Resolution: choose how to settle the case.")
    elif kind == "exchange" and exchange_value is None:
        problems.append("Value of the new item: an exchange needs it.")
    if exchange_value is not None and (exchange_value < 0 or kind != "exchange"):
        problems.append("Value of the new item: only for an exchange, and not negative.")
    if problems:
        return render_panel(case=case, notice=Notice("error", "Cannot compute the amounts yet.", problems),
                            form=FormState("resolve", values), status=422)
    amounts = services.settlement_preview(case, kind, exchange_value if kind == "exchange" else None)
    options, _ = services.policy_options(case)
    preview = {"settlement": {"kind": kind, "label": RESOLUTION_LABELS[kind], "currency": case.currency,
                              "offered": kind in options, **asdict(amounts),
                              "exchange_value": str(exchange_value) if exchange_value is not None else "",
                              "reason": read.text("reason") or ""}}
    return render_panel(case=case, form=FormState("resolve", values), preview=preview)


@bp.post("/panel/cases/<number>/canned-preview")
@panel_view
def canned_preview(number: str) -> Response:
    """A canned response rendered for this case (or the info request the agent is writing)."""
    case = _ticket_case(number)
    values = request.form
    key, locale = values.get("key") or "", (values.get("locale") or "").strip() or None
    if key not in TEMPLATE_KEYS:
        return render_panel(case=case, notice=Notice("error", "Choose a canned response."),
                            form=FormState("canned", values), status=422)
    if locale is not None and locale not in LOCALES and locale != case.locale:
        locale = None
    message = (values.get("message") or "").strip()
    event = None
    if key == "info_requested" and message:
        # What the customer would receive once the info request is sent, with the agent's words in it.
        event = SimpleNamespace(action="request_info", data={"message": message}, reason=message,
                                to_status=CaseStatus.AWAITING_CUSTOMER.value, from_status=case.status)
    rendered = render_for_case(case, _tenant(), key, locale=locale, event=event)
    section = "request_info" if values.get("for") == "request_info" else "canned"
    preview = {section: {"key": key, "locale": locale or "", "locale_used": rendered.locale_used,
                         "subject": rendered.subject, "text": rendered.text,
                         "visibility": "internal" if values.get("visibility") == "internal" else "public"}}
    return render_panel(case=case, form=FormState(section, values), preview=preview)


@bp.post("/panel/cases/<number>/reply")
@panel_view
def reply(number: str) -> Response:
    """Queue a canned response to the ticket, as a public reply or an internal note."""
    case = _ticket_case(number)
    values = request.form
    data = {"key": values.get("key") or None, "locale": (values.get("locale") or "").strip() or None,
            "visibility": values.get("visibility") or "public"}
    try:
        body = parse_mapping(ReplyIn, {k: v for k, v in data.items() if v is not None}, "form")
        sent = pushes.queue_reply(_tenant(), case.number, body, _actor())
    except ValidationFailed as exc:
        db.session.rollback()
        items = _readable(exc.details.get("fields", {}))
        return render_panel(case=_ticket_case(number), notice=Notice("error", exc.message, items),
                            form=FormState("canned", values), status=exc.status)
    what = "Public reply" if sent.kind == "reply" else "Internal note"
    return render_panel(case=queries.get_case(case.tenant_id, case.number),
                        notice=Notice("success", f"{what} queued for the ticket ({sent.locale_used or 'text'})."))


@bp.get("/panel/attachments/<sha256>")
@panel_view
def attachment(sha256: str) -> Response:
    """An evidence file of one of the tenant's cases; images inline, anything else as a download."""
    evidence = db.session.scalar(
        sa.select(Evidence).where(Evidence.tenant_id == g.panel.tenant_id, Evidence.sha256 == sha256).limit(1))
    if evidence is None:
        raise NotFound("No such attachment.")
    data = attachment_store().get(sha256)
    content_type = (evidence.content_type or "").strip().lower()
    if not _MIME.match(content_type):
        content_type = "application/octet-stream"
    inline = content_type in INLINE_IMAGE_TYPES
    filename = re.sub(r"[^A-Za-z0-9._-]+", "_", evidence.filename or "attachment")[:100] or "attachment"
    response = Response(data, mimetype=content_type)
    response.headers["Content-Disposition"] = f'{"inline" if inline else "attachment"}; filename="{filename}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, max-age=300"
    return response


@bp.get("/assets/htmx.min.js")
def htmx_js() -> Response:
    """htmx from ``node_modules`` (``make install``); without it the panel works as plain forms."""
    if not htmx_available():
        abort(404)
    response = send_from_directory(HTMX_DIR, HTMX_FILE, mimetype="text/javascript", max_age=86_400)
    return response
