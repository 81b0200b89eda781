"""The transactional outbox: services add messages in their own transaction; never a provider call.

``enqueue`` adds one ``OutboxMessage`` to the caller's session and never commits; if the
caller's transaction rolls back, the message never existed.

``enqueue_case_pushes`` turns one accepted case action into ticket updates: the tenant's push
settings for that action (``tenant.settings["pushes"]``, see ``schemas.PushSettings``; the
defaults are ``DEFAULT_PUSHES``) and, when the status changed, the integration's ``status_map``,
``tag_map`` and ``custom_field_ids``. Public replies are rendered from the canned responses here,
at enqueue time, so a queued message is a frozen snapshot of what the customer will read. Nothing
in here may make the transition fail: a canned response that breaks on the case's data falls back
to the shipped one, and failing that becomes an internal note saying so.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError

from app.connectors.models import Integration
from app.errors import AppError, Conflict, NotFound
from app.extensions import db, utcnow
from app.outbound.canned_store import Overrides, overrides, render_for_case
from app.outbound.canned import Rendered
from app.outbound.models import DeliveryAttempt, OutboxMessage
from app.outbound.schemas import CASE_ACTIONS, Push, PushSettings
from app.tenants.models import Tenant
from integrations.base import OutboundAction

log = logging.getLogger(__name__)


def _reply(template: str, *settlement_kinds: str) -> Push:
    return Push(kind="reply", template=template, settlement_kinds=list(settlement_kinds))


NOTE = Push(kind="note")
#: What each case action sends to the case's ticket when the tenant has set nothing for it. Every
#: step the customer should hear about gets its canned public reply, and every step a note for the
#: agents; approval also tags the ticket and sets it to pending (waiting for the customer's parcel).
DEFAULT_PUSHES: Mapping[str, tuple[Push, ...]] = MappingProxyType({
    "create": (NOTE, _reply("request_received")),
    "approve": (NOTE, _reply("approved"), Push(kind="tags", add_tags=["rma-approved"]),
                Push(kind="status", status="pending")),
    "flag": (NOTE,),
    "reject": (NOTE, _reply("rejected")),
    "request_info": (NOTE, _reply("info_requested")),
    "customer_replied": (NOTE,),
    "issue_label": (NOTE, _reply("label_issued")),
    "ship": (NOTE,),
    "receive": (NOTE, _reply("received")),
    "inspect": (NOTE, _reply("inspected")),
    "approve_returnless": (NOTE,),
    "resolve": (NOTE, _reply("refund_issued", "refund"), _reply("store_credit_issued", "store_credit"),
                _reply("exchange_shipped", "exchange")),
    "settle": (NOTE,),
    "close": (NOTE, _reply("closed")),
    "reopen": (NOTE,),
    "cancel": (NOTE,),
    "expire": (NOTE, _reply("expired")),
    "hold": (NOTE,),
    "release": (NOTE,),
    "mark_lost": (NOTE,),
})
DEFAULT_PUSH = (NOTE,)  # an action without an entry of its own
# Actions whose note explains the policy's decision.
_DECISIONS = frozenset({"approve", "flag", "reject"})


def action_to_dict(action: OutboundAction) -> dict[str, Any]:
    data = dataclasses.asdict(action)
    data["add_tags"], data["remove_tags"], data["fields"] = list(action.add_tags), list(action.remove_tags), dict(action.fields)
    return data


def action_from_dict(data: dict[str, Any]) -> OutboundAction:
    return OutboundAction(**{**data, "add_tags": tuple(data.get("add_tags") or ()),
                             "remove_tags": tuple(data.get("remove_tags") or ()), "fields": dict(data.get("fields") or {})})


def enqueue(*, tenant_id: int, integration_id: int, action: OutboundAction, case_id: int | None = None,
            ordering_key: str | None = None) -> OutboxMessage:
    """Add one message to the caller's transaction (no commit, no provider call)."""
    message = OutboxMessage(
        tenant_id=tenant_id, integration_id=integration_id, case_id=case_id,
        ordering_key=ordering_key or f"{integration_id}:{action.ticket_id}",
        action=action_to_dict(action), idempotency_key=action.idempotency_key, status="pending",
    )
    db.session.add(message)
    return message


# ---- what a case action pushes -------------------------------------------------------------------

def stored_push_settings(tenant: Tenant) -> PushSettings:
    """The tenant's push settings as stored; the defaults when none (or unreadable ones) are stored."""
    raw = (tenant.settings or {}).get("pushes") or {}
    try:
        return PushSettings.model_validate(raw)
    except ValidationError:
        # Stored by an older version with other rules: a transition must not fail over it.
        log.warning("tenant %s has unreadable push settings; using the defaults", tenant.id)
        return PushSettings()


def effective_pushes(settings: PushSettings) -> dict[str, list[Push]]:
    """Every case action's pushes: the tenant's where set, else ``DEFAULT_PUSHES``."""
    return {action: list(settings.actions[action]) if action in settings.actions
            else list(DEFAULT_PUSHES.get(action, DEFAULT_PUSH)) for action in CASE_ACTIONS}


def describe(number: str, action: str, reason: str | None, actor_type: str) -> str:
    """The first line of the internal note for one transition, e.g. ``RMA-10042 approved by policy: …``."""
    verb = {"create": "opened", "approve": "approved", "reject": "rejected", "flag": "flagged for review"}.get(
        action, action.replace("_", " ")
    )
    by = {"system": "by policy", "agent": "by an agent", "api": "through the API", "customer": "by the customer"}.get(
        actor_type, ""
    )
    text = f"{number} {verb} {by}".strip()
    return f"{text}: {reason}" if reason else text


def policy_explanation(decision: Mapping[str, Any] | None, already_said: str = "") -> list[str]:
    """The policy's decision for agents: its summary (unless ``already_said`` has it), the checks
    that failed, what would change the outcome, and the resolutions it offers."""
    if not decision:
        return []
    lines = []
    summary = str(decision.get("summary") or "").strip()
    if summary and summary not in already_said:
        lines.append(f"Policy: {summary}")
    failed = [r for r in decision.get("results") or [] if isinstance(r, Mapping) and not r.get("passed", True)]
    if failed:
        lines.append("Checks that failed:")
        lines.extend(f"- {r.get('why') or r.get('rule')}" for r in failed)
    elif decision.get("results"):
        lines.append("Every policy check passed.")
    changes = [str(c) for c in decision.get("what_would_change") or []]
    if changes:
        lines.append("What would change the decision:")
        lines.extend(f"- {c}" for c in changes)
    options = [str(o).replace("_", " ") for o in decision.get("options") or []]
    if options:
        lines.append(f"Resolutions offered: {', '.join(options)}.")
    return lines


def note_text(case: Any, event: Any) -> str:
    """The internal note for ``event``: what happened, who did it and why, and for a decision the
    policy's explanation; a settlement's amount; the agent's note."""
    action, data = str(event.action), event.data or {}
    first = describe(case.number, action, event.reason, event.actor_type)
    lines = [first]
    if action in _DECISIONS:
        lines.extend(policy_explanation(case.policy_decision, first))
    settlement = data.get("settlement")
    if isinstance(settlement, Mapping) and settlement.get("kind"):
        amount = f" of {settlement['amount']} {case.currency}" if settlement.get("amount") is not None else ""
        fees = f" (fees {settlement['fees']})" if settlement.get("fees") not in (None, "0", "0.00") else ""
        lines.append(f"Settlement: {str(settlement['kind']).replace('_', ' ')}{amount}{fees}.")
    if data.get("note"):
        lines.append(f"Note: {data['note']}")
    return "\n".join(lines)


def rma_fields(number: str, status: str, custom_field_ids: Mapping[str, str]) -> dict[str, str]:
    """The helpdesk custom fields ``custom_field_ids`` maps: ``rma_number`` and ``rma_status``."""
    values = {"rma_number": number, "rma_status": status}
    return {str(field_id): values[name] for name, field_id in custom_field_ids.items() if name in values and field_id}


def status_sync(number: str, from_status: str | None, to_status: str,
                integration_settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ticket updates a status change makes through the integration's maps: the mapped ticket
    status, the new status's tag added and the previous one's removed, and the RMA fields."""
    status_map = integration_settings.get("status_map") or {}
    tag_map = integration_settings.get("tag_map") or {}
    updates: list[dict[str, Any]] = []
    if status_map.get(to_status):
        updates.append({"kind": "status", "status": status_map[to_status]})
    add = tag_map.get(to_status)
    remove = tag_map.get(from_status) if from_status else None
    if remove == add:
        remove = None
    if add or remove:
        updates.append({"kind": "tags", "add_tags": (add,) if add else (), "remove_tags": (remove,) if remove else ()})
    fields = rma_fields(number, to_status, integration_settings.get("custom_field_ids") or {})
    if fields:
        updates.append({"kind": "fields", "fields": fields})
    return updates


def _rendered_reply(case: Any, tenant: Tenant, key: str, event: Any,
                    templates: Overrides) -> tuple[Rendered | None, str | None]:
    """The reply, or None and a note for the agents saying why it could not be written."""
    try:
        return render_for_case(case, tenant, key, event=event, tenant_templates=templates), None
    except (AppError, ValueError, TypeError) as exc:
        problem = getattr(exc, "message", None) or str(exc)
    if templates:
        try:
            rendered = render_for_case(case, tenant, key, event=event, tenant_templates={})
            return rendered, (f"The tenant's canned response {key!r} failed on {case.number} ({problem}); "
                              f"Rebound's default was sent instead. Fix it under /api/v1/canned-responses.")
        except (AppError, ValueError, TypeError) as exc:
            problem = getattr(exc, "message", None) or str(exc)
    return None, f"No {key!r} reply was sent for {case.number}: the canned response failed ({problem})."


def plan_case_pushes(case: Any, event: Any, tenant: Tenant, integration_settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ticket updates for ``event``, as ``OutboundAction`` fields (without ticket and key)."""
    action = str(event.action)
    settings = stored_push_settings(tenant)
    pushes = effective_pushes(settings).get(action, list(DEFAULT_PUSH))
    to_status = event.to_status or case.status
    # Opening a case and deciding it happen in one transaction. When the case was approved at once,
    # the approval's reply says everything the "request received" one would have said.
    moved_on = to_status != case.status and case.status != "pending_review"
    settlement_kind = case.settlements[-1].kind if case.settlements else None
    templates: Overrides | None = None
    updates: list[dict[str, Any]] = []
    for push in pushes:
        if push.settlement_kinds and settlement_kind not in push.settlement_kinds:
            continue
        if push.kind == "note":
            if push.template:
                templates = overrides(tenant.id) if templates is None else templates
                rendered, problem = _rendered_reply(case, tenant, push.template, event, templates)
                text = rendered.text if rendered else note_text(case, event)
            else:
                text, problem = note_text(case, event), None
            updates.append({"kind": "note", "body_text": text if not problem else f"{text}\n\n{problem}"})
        elif push.kind == "reply":
            if moved_on or not push.template:
                continue
            templates = overrides(tenant.id) if templates is None else templates
            rendered, problem = _rendered_reply(case, tenant, push.template, event, templates)
            if problem:
                updates.append({"kind": "note", "body_text": problem})
            if rendered is not None:
                updates.append({"kind": "reply", "body_text": rendered.text, "body_html": rendered.html,
                                "recipient_email": case.customer.email if case.customer else None})
        elif push.kind == "tags":
            updates.append({"kind": "tags", "add_tags": tuple(push.add_tags), "remove_tags": tuple(push.remove_tags)})
        elif push.kind == "status":
            status = push.status or (integration_settings.get("status_map") or {}).get(to_status)
            if status:
                updates.append({"kind": "status", "status": status})
        elif push.kind == "fields":
            fields = {**push.fields, **rma_fields(case.number, to_status,
                                                   integration_settings.get("custom_field_ids") or {})}
            if fields:
                updates.append({"kind": "fields", "fields": fields})
    if settings.sync_ticket_status and event.from_status != to_status and not moved_on and to_status == case.status:
        explicit_status = any(u["kind"] == "status" for u in updates)  # the action's own status push wins
        updates.extend(u for u in status_sync(case.number, event.from_status, to_status, integration_settings)
                       if not (explicit_status and u["kind"] == "status"))
    return updates


def enqueue_case_pushes(case: Any, event: Any) -> list[OutboxMessage]:
    """Queue the ticket updates for ``event`` on ``case``; none when the case has no linked ticket
    or its integration has no ``settings.base_url`` (no write-back configured).

    ``event`` must have an id (flushed). Idempotency key: ``{case_id}:{event_id}:{n}``.
    """
    if not case.ticket_id or not case.integration_id:
        return []
    integration = db.session.get(Integration, case.integration_id)
    if integration is None or not (integration.settings or {}).get("base_url"):
        return []  # no write-back configured: nothing could ever be delivered
    tenant = db.session.get(Tenant, case.tenant_id)
    assert tenant is not None
    updates = plan_case_pushes(case, event, tenant, integration.settings or {})
    if str(event.action) == "create":
        updates = _with_panel_link(updates, case, integration)
    messages = []
    for n, fields in enumerate(updates):
        action = OutboundAction(ticket_id=case.ticket_id, idempotency_key=f"{case.id}:{event.id}:{n}", **fields)
        messages.append(enqueue(tenant_id=case.tenant_id, integration_id=case.integration_id, action=action,
                                case_id=case.id))
    return messages


def _with_panel_link(updates: list[dict[str, Any]], case: Any, integration: Integration) -> list[dict[str, Any]]:
    """For helpdesks without a signed sidebar (Zammad, Front), the case's first internal note carries
    a reusable, expiring link that opens the agent's panel for the ticket (``sidebar.links``)."""
    from app.sidebar.links import NOTE_LINK_KINDS, NOTE_LINK_SECONDS, make_context_link  # sidebar imports outbound

    if integration.kind not in NOTE_LINK_KINDS:
        return updates
    link = make_context_link(integration, case.ticket_id, case.customer.email if case.customer else None,
                             ttl=NOTE_LINK_SECONDS, reusable=True).url
    line = f"Open {case.number} in Rebound: {link}"
    for update in updates:
        if update["kind"] == "note":
            update["body_text"] = f"{update['body_text']}\n\n{line}"
            return updates
    return [{"kind": "note", "body_text": line}, *updates]


# ---- dead letters -----------------------------------------------------------------------------

def list_messages(tenant_id: int, status: str | None = None, limit: int = 100) -> list[OutboxMessage]:
    """The tenant's outbox messages (optionally of one status), newest first."""
    query = sa.select(OutboxMessage).where(OutboxMessage.tenant_id == tenant_id)
    if status:
        query = query.where(OutboxMessage.status == status)
    return list(db.session.scalars(query.order_by(OutboxMessage.id.desc()).limit(limit)))


def get_message(tenant_id: int, message_id: int) -> tuple[OutboxMessage, list[DeliveryAttempt]]:
    """One of the tenant's messages with every delivery attempt, oldest first (to inspect a dead letter).

    :raise NotFound: (404) no such message.
    """
    message = db.session.scalar(
        sa.select(OutboxMessage).where(OutboxMessage.id == message_id, OutboxMessage.tenant_id == tenant_id))
    if message is None:
        raise NotFound(f"No outbox message {message_id}.")
    attempts = list(db.session.scalars(
        sa.select(DeliveryAttempt).where(DeliveryAttempt.message_id == message.id).order_by(DeliveryAttempt.id)))
    return message, attempts


def _dead_message(tenant_id: int, message_id: int) -> OutboxMessage:
    message = db.session.scalar(
        sa.select(OutboxMessage).where(OutboxMessage.id == message_id, OutboxMessage.tenant_id == tenant_id)
    )
    if message is None:
        raise NotFound(f"No outbox message {message_id}.")
    if message.status != "dead":
        raise Conflict(f"Outbox message {message_id} is {message.status}; only dead messages can be replayed or discarded.",
                       {"status": message.status})
    return message


def replay(tenant_id: int, message_id: int) -> OutboxMessage:
    """Put a dead message back in the queue, due now, with a fresh attempt budget.

    :raise NotFound: (404) no such message. :raise Conflict: (409) the message is not dead.
    """
    message = _dead_message(tenant_id, message_id)
    message.status, message.attempts, message.next_attempt_at, message.lease_until = "pending", 0, utcnow(), None
    message.created_at = utcnow()  # the age limit counts from the replay
    db.session.commit()
    return message


def discard(tenant_id: int, message_id: int) -> OutboxMessage:
    """Give up on a dead message for good (it stops blocking nothing: dead never blocks).

    :raise NotFound: (404) no such message. :raise Conflict: (409) the message is not dead.
    """
    message = _dead_message(tenant_id, message_id)
    message.status = "discarded"
    db.session.commit()
    return message
