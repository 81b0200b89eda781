"""The demo helpdesk at ``/``: a stand-in helpdesk for the demo tenant, to see the whole loop locally.

What belongs here: the ticket list and ticket view (the agent panel in an iframe, opened the way a
helpdesk opens it), the buttons that simulate customers, and the small slice of Zammad's REST API
that Rebound's write-back client calls. Nothing here takes a shortcut around the real pipeline:

- a simulated new ticket is a Zammad webhook delivery, signed with the integration's secret and
  POSTed to ``/webhooks/<key>`` in-process (verify → inbox → intake → suggestion);
- a simulated email reply is a raw MIME mail to the case's reply address (``returns+<token>@…``)
  taken by ``app.email.services.ingest_mail`` (threading → timeline → awaiting_customer moves on);
- notes, replies, tags and status leave through the outbox; ``flask worker`` delivers them to
  the stand-in API below, and the ticket view shows each one as pending or delivered.

Only the demo tenant's demo integration is ever read, and only with ``REBOUND_DEMO_HELPDESK`` on
(development); otherwise every route here answers 404.
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

import sqlalchemy as sa
from flask import abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from app.cases.models import ReturnCase
from app.connectors.models import Integration
from app.connectors.services import credentials, find_by_key
from app.demo import DEMO_HELPDESK_PATH, demo_helpdesk, demo_tenant
from app.email.models import MailMessage
from app.email.services import ingest_mail, token_key
from app.email.threading import case_token, reply_address
from app.errors import Unauthorized
from app.extensions import db, utcnow
from app.inbound.models import InboundEvent
from app.intake.services import linked_case
from app.orders.models import Order
from app.outbound.models import OutboxMessage
from app.sidebar.blueprints import demo_bp
from app.sidebar.links import make_context_link
from app.tenants.models import Tenant
from integrations import get_adapter

FIRST_TICKET_ID = 5001
DEMO_AGENT_ID = "demo-agent"
LINK_SECONDS = 10 * 60  # the page is opened at once; a link is single-use anyway
DEMO_MAILBOX = "returns@acme-outdoor.example"
# What simulated customers write: (reason in words, closing line). The first one needs a photo, so
# its case waits for review: the newcomer approves it, asks for the photo, and sees the reply arrive.
ASKS = [
    ("it arrived damaged, the box was crushed", "How do I send it back?"),
    ("it is a size too small", "Can you send me a return label?"),
    ("I changed my mind, it is not what I expected", "Could I get a refund?"),
    ("it stopped working after two days", "I'd like to return it please."),
]


@dataclass
class Ticket:
    """A demo ticket as the stand-in helpdesk shows it, derived from what Rebound received and sent."""

    id: str
    subject: str
    requester_email: str | None
    requester_name: str | None
    opened_at: datetime
    case: ReturnCase | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    updates: list[OutboxMessage] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    status: str = "new"


@demo_bp.before_request
def only_when_enabled() -> None:
    if not current_app.config.get("REBOUND_DEMO_HELPDESK"):
        abort(404)


def _demo() -> tuple[Tenant, Integration] | None:
    """The demo tenant and its stand-in helpdesk, or None before ``flask demo load``."""
    tenant = demo_tenant()
    integration = demo_helpdesk(tenant) if tenant is not None else None
    return (tenant, integration) if tenant is not None and integration is not None else None


def _require_demo() -> tuple[Tenant, Integration]:
    found = _demo()
    if found is None:
        abort(404, "The demo is not loaded: run `flask demo load` (or `make run`).")
    return found


# ---- tickets, derived from the inbox and the outbox ------------------------------------------

def _events(integration: Integration, ticket_id: str | None = None) -> list[InboundEvent]:
    query = sa.select(InboundEvent).where(InboundEvent.tenant_id == integration.tenant_id,
                                          InboundEvent.integration_id == integration.id)
    if ticket_id is not None:
        query = query.where(InboundEvent.ticket_id == ticket_id)
    return list(db.session.scalars(query.order_by(InboundEvent.id)))


def _tickets(integration: Integration) -> list[Ticket]:
    tickets: dict[str, Ticket] = {}
    for event in _events(integration):
        data = event.event or {}
        if event.ticket_id and event.ticket_id not in tickets:
            tickets[event.ticket_id] = Ticket(
                id=event.ticket_id, subject=data.get("subject") or f"Ticket {event.ticket_id}",
                requester_email=data.get("requester_email"), requester_name=data.get("requester_name"),
                opened_at=event.received_at)
    for ticket in tickets.values():
        ticket.case = linked_case(integration.tenant_id, integration.id, ticket.id)
    return sorted(tickets.values(), key=lambda t: t.opened_at, reverse=True)


def _ticket(integration: Integration, ticket_id: str) -> Ticket:
    events = _events(integration, ticket_id)
    if not events:
        abort(404, f"The demo helpdesk has no ticket {ticket_id}.")
    first = events[0].event or {}
    ticket = Ticket(id=ticket_id, subject=first.get("subject") or f"Ticket {ticket_id}",
                    requester_email=first.get("requester_email"), requester_name=first.get("requester_name"),
                    opened_at=events[0].received_at, tags=list(first.get("tags") or []))
    ticket.case = linked_case(integration.tenant_id, integration.id, ticket_id)
    for event in events:
        data = event.event or {}
        if data.get("message"):
            ticket.messages.append({"at": event.received_at, "who": data.get("requester_name") or "Customer",
                                    "kind": "customer", "text": data["message"], "via": "ticket"})
    # The outbox orders a ticket's messages by "<integration id>:<ticket id>" (outbox.enqueue).
    ticket.updates = [m for m in db.session.scalars(sa.select(OutboxMessage).where(
        OutboxMessage.tenant_id == integration.tenant_id, OutboxMessage.integration_id == integration.id,
        OutboxMessage.ordering_key == f"{integration.id}:{ticket_id}").order_by(OutboxMessage.id))
        if (m.action or {}).get("ticket_id") == ticket_id]
    for message in ticket.updates:
        action = message.action or {}
        if action.get("kind") in ("note", "reply"):
            ticket.messages.append({"at": message.created_at, "who": "Rebound", "kind": action["kind"],
                                    "text": action.get("body_text") or "", "via": message.status})
    if ticket.case is not None:
        for mail in db.session.scalars(sa.select(MailMessage).where(
                MailMessage.tenant_id == integration.tenant_id, MailMessage.case_id == ticket.case.id)
                .order_by(MailMessage.id)):
            ticket.messages.append({"at": mail.created_at, "who": mail.from_name or mail.from_address or "Email",
                                    "kind": "email" if mail.direction == "in" else "email-out",
                                    "text": mail.reply_text or mail.full_text or "",
                                    "via": f"email, threaded by {mail.matched_by}" if mail.matched_by else "email"})
    ticket.messages.sort(key=lambda m: m["at"])
    ticket.tags, ticket.status = _ticket_state(ticket.tags, ticket.updates)
    return ticket


def _ticket_state(tags: list[str], updates: list[OutboxMessage]) -> tuple[list[str], str]:
    """Tags and status as the helpdesk has them: what the ticket came with, changed by every
    delivered update, in order (pending ones have not reached the helpdesk yet)."""
    current, status = list(tags), "new"
    for message in updates:
        action = message.action or {}
        if message.status != "delivered":
            continue
        if action.get("kind") == "tags":
            removed = {t.casefold() for t in action.get("remove_tags") or ()}
            current = [t for t in current if t.casefold() not in removed]
            current += [t for t in action.get("add_tags") or () if t not in current and t.casefold() not in removed]
        elif action.get("kind") == "status" and action.get("status"):
            status = action["status"]
    return current, status


def _panel_url(integration: Integration, ticket: Ticket) -> str:
    """The URL the ticket view's iframe opens: a signed, single-use context link for this ticket
    and agent, exactly what a Zammad or Front sidebar gets (it redirects to the panel)."""
    return make_context_link(integration, ticket.id, email=ticket.requester_email, agent=DEMO_AGENT_ID,
                             ttl=LINK_SECONDS, external=False).url


# ---- pages -------------------------------------------------------------------------------------

@demo_bp.get("/")
def index() -> ResponseReturnValue:
    """The ticket list."""
    found = _demo()
    if found is None:
        return render_template("demo/not_loaded.html"), 404
    tenant, integration = found
    return render_template("demo/index.html", tenant=tenant, tickets=_tickets(integration))


@demo_bp.get("/tickets/<ticket_id>")
def ticket_view(ticket_id: str) -> ResponseReturnValue:
    """One ticket: its conversation, what Rebound wrote back, and the panel in the sidebar."""
    tenant, integration = _require_demo()
    ticket = _ticket(integration, ticket_id)
    return render_template("demo/ticket.html", tenant=tenant, ticket=ticket,
                           panel_url=_panel_url(integration, ticket))


# ---- simulated customers -----------------------------------------------------------------------

def _next_ticket_id(integration: Integration) -> int:
    ids = [int(t) for t in db.session.scalars(sa.select(InboundEvent.ticket_id).where(
        InboundEvent.integration_id == integration.id).distinct()) if t and t.isdigit()]
    return max([FIRST_TICKET_ID - 1, *ids]) + 1


def _returnable_order(tenant: Tenant, n: int) -> tuple[Order, Any]:
    orders = list(db.session.scalars(sa.select(Order).where(Order.tenant_id == tenant.id).order_by(Order.number)))
    if not orders:
        abort(409, "The demo tenant has no orders; run `flask demo load --force`.")
    order = orders[n % len(orders)]
    line = next((line for line in order.lines if not getattr(line, "final_sale", False)), order.lines[0])
    return order, line


def ticket_payload(ticket_id: int, order: Order, line: Any, ask: tuple[str, str], now: datetime) -> dict[str, Any]:
    """A Zammad webhook body (its default payload) for a new email ticket from ``order``'s customer."""
    name = order.customer.name or order.customer.email.split("@")[0]
    first, _, last = name.partition(" ")
    subject = f"Return for order #{order.number}"
    body = (f"Hello,\n\nI'd like to return the {line.title} ({line.sku}) from order #{order.number} - "
            f"{ask[0]}. "
            f"{ask[1]}\n\nThanks,\n{first}")
    stamp = now.isoformat().replace("+00:00", "Z")
    article_id = ticket_id * 10
    customer = {"id": 100 + ticket_id % 1000, "email": order.customer.email, "firstname": first, "lastname": last}
    return {
        "ticket": {"id": ticket_id, "number": str(ticket_id), "title": subject, "article_count": 1,
                   "article_ids": [article_id], "customer_id": customer["id"], "customer": customer,
                   "state": "new", "created_at": stamp, "updated_at": stamp},
        "article": {"id": article_id, "ticket_id": ticket_id, "type": "email", "sender": "Customer",
                    "internal": False, "from": f"{name} <{order.customer.email}>", "to": "support@acme-outdoor.example",
                    "subject": subject, "content_type": "text/plain", "body": body, "created_at": stamp},
    }


def deliver_webhook(integration: Integration, body: bytes) -> dict[str, Any]:
    """POST ``body`` to the integration's webhook, signed with its secret, through the app itself.

    :raise RuntimeError: the webhook refused it (shown to the newcomer; should not happen).
    """
    secret = credentials(integration)["signing_secret"]
    headers = get_adapter(integration.kind).sign(body, secret, utcnow(), f"demo-{secrets.token_hex(8)}")
    key = integration.public_key
    db.session.rollback()  # the webhook runs in its own app context and session: hold no transaction
    response = current_app.test_client().post(f"/webhooks/{key}", data=body, headers=headers)
    if response.status_code != 200:
        raise RuntimeError(f"The webhook answered {response.status_code}: {response.get_data(as_text=True)[:300]}")
    return response.get_json()


@demo_bp.post("/demo/tickets")
def simulate_ticket() -> ResponseReturnValue:
    """A customer writes in: a new ticket asking to return an item from one of the demo orders."""
    tenant, integration = _require_demo()
    ticket_id = _next_ticket_id(integration)
    order, line = _returnable_order(tenant, ticket_id - FIRST_TICKET_ID)
    payload = ticket_payload(ticket_id, order, line, ASKS[(ticket_id - FIRST_TICKET_ID) % len(ASKS)], utcnow())
    answer = deliver_webhook(integration, json.dumps(payload).encode())
    flash(f"Ticket {ticket_id} came in (webhook: {answer.get('status')}).")
    return redirect(url_for("demo.ticket_view", ticket_id=str(ticket_id)), 303)


def reply_mail(case: ReturnCase, tenant: Tenant, subject: str, name: str | None, email: str) -> bytes:
    """A customer's reply to Rebound's last mail about ``case``: to the case's reply address, with
    the subject tag, the answer on top and the quoted history below (as mail clients write it)."""
    mail = EmailMessage()
    mail["From"] = f"{name} <{email}>" if name else email
    mail["To"] = reply_address(DEMO_MAILBOX, case_token(token_key(), tenant.id, case.id))
    mail["Subject"] = f"Re: {subject} [{case.number}]"
    mail["Date"] = format_datetime(utcnow())
    mail["Message-ID"] = make_msgid(domain="mail.example.com")
    first = (name or "").split(" ")[0] or "Me"
    mail.set_content(
        "Hi,\n\nHere is the photo you asked for - the damage is on the left side. "
        f"The parcel is ready whenever you are.\n\nThanks,\n{first}\n\n"
        f"On {utcnow():%a, %d %b %Y} Acme Outdoor <{DEMO_MAILBOX}> wrote:\n"
        f"> Thanks for your message about {case.number}.\n> Could you send us a photo?\n")
    return bytes(mail)


@demo_bp.post("/demo/tickets/<ticket_id>/email-reply")
def simulate_email_reply(ticket_id: str) -> ResponseReturnValue:
    """The customer answers by email; the mail threads back to the ticket's case."""
    tenant, integration = _require_demo()
    ticket = _ticket(integration, ticket_id)
    if ticket.case is None:
        flash("Open a case from this ticket first: the reply needs a case to thread to.", "error")
        return redirect(url_for("demo.ticket_view", ticket_id=ticket_id), 303)
    email = ticket.case.customer.email if ticket.case.customer else (ticket.requester_email or "customer@example.com")
    raw = reply_mail(ticket.case, tenant, ticket.subject, ticket.requester_name, email)
    result = ingest_mail(tenant, None, raw)
    db.session.commit()
    flash(f"The customer replied by email: {result.detail}")
    return redirect(url_for("demo.ticket_view", ticket_id=ticket_id), 303)


# ---- the helpdesk's API, as Rebound's Zammad client calls it -----------------------------------

API = DEMO_HELPDESK_PATH + "/<key>/api/v1"


def _api_integration(key: str) -> Integration:
    """The demo helpdesk behind ``key``, if the call carries its API token.

    :raise Unauthorized: (401) not the demo tenant's demo helpdesk, or a wrong token.
    """
    found = _demo()
    integration = find_by_key(key)
    if found is None or integration is None or integration.id != found[1].id:
        raise Unauthorized("Not the demo helpdesk.")
    expected = str(credentials(integration).get("api_token") or "")
    given = request.headers.get("Authorization", "").removeprefix("Token token=")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized("Wrong API token.")
    return integration


def _current_tags(integration: Integration, ticket_id: str) -> list[str]:
    ticket = _ticket(integration, ticket_id)
    return ticket.tags


@demo_bp.get(API + "/tickets/<ticket_id>")
def api_ticket(key: str, ticket_id: str) -> ResponseReturnValue:
    integration = _api_integration(key)
    ticket = _ticket(integration, ticket_id)
    return jsonify(id=int(ticket_id) if ticket_id.isdigit() else ticket_id, title=ticket.subject, state=ticket.status)


@demo_bp.put(API + "/tickets/<ticket_id>")
def api_update_ticket(key: str, ticket_id: str) -> ResponseReturnValue:
    _ticket(_api_integration(key), ticket_id)
    return jsonify(id=int(ticket_id) if ticket_id.isdigit() else ticket_id)


@demo_bp.post(API + "/ticket_articles")
def api_add_article(key: str) -> ResponseReturnValue:
    integration = _api_integration(key)
    data = request.get_json(silent=True) or {}
    _ticket(integration, str(data.get("ticket_id")))
    return jsonify(id=secrets.randbelow(10**9)), 201


@demo_bp.get(API + "/tags")
def api_tags(key: str) -> ResponseReturnValue:
    integration = _api_integration(key)
    return jsonify(tags=_current_tags(integration, request.args.get("o_id", "")))


@demo_bp.route(API + "/tags/add", methods=["POST"])
@demo_bp.route(API + "/tags/remove", methods=["DELETE"])
def api_change_tag(key: str) -> ResponseReturnValue:
    integration = _api_integration(key)
    data = request.get_json(silent=True) or {}
    _ticket(integration, str(data.get("o_id")))
    return jsonify(True)
