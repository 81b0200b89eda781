"""The transactional outbox: services add messages in their own transaction; never a provider call.

``enqueue`` adds one ``OutboxMessage`` to the caller's session and never commits; if the
caller's transaction rolls back, the message never existed.
``enqueue_case_pushes`` turns one accepted case action into the default ticket updates.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from app.connectors.models import Integration
from app.errors import Conflict, NotFound
from app.extensions import db, utcnow
from app.outbound.models import OutboxMessage
from integrations.base import OutboundAction


@dataclass(frozen=True)
class Push:
    """One default ticket update: ``kind`` and the fields of its ``OutboundAction``."""

    kind: str
    add_tags: tuple[str, ...] = ()
    status: str | None = None


NOTE = Push("note")
# What every accepted action pushes to the case's ticket; tenant-configurable later.
DEFAULT_PUSHES: dict[str, tuple[Push, ...]] = {
    "approve": (NOTE, Push("tags", add_tags=("rma-approved",)), Push("status", status="pending")),
}
DEFAULT_PUSH = (NOTE,)


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


def describe(number: str, action: str, reason: str | None, actor_type: str) -> str:
    """The internal note for one transition, e.g. ``RMA-10042 approved by policy: …``."""
    verb = {"create": "opened", "approve": "approved", "reject": "rejected", "flag": "flagged for review"}.get(
        action, action.replace("_", " ")
    )
    by = {"system": "by policy", "agent": "by an agent", "api": "through the API", "customer": "by the customer"}.get(
        actor_type, ""
    )
    text = f"{number} {verb} {by}".strip()
    return f"{text}: {reason}" if reason else text


def enqueue_case_pushes(case: Any, event: Any) -> list[OutboxMessage]:
    """The default pushes for ``event`` on ``case``; none when the case has no linked ticket or
    its integration has no ``settings.base_url`` (no write-back configured).

    ``event`` must have an id (flushed). Idempotency key: ``{case_id}:{event_id}:{n}``.
    """
    if not case.ticket_id or not case.integration_id:
        return []
    integration = db.session.get(Integration, case.integration_id)
    if integration is None or not (integration.settings or {}).get("base_url"):
        return []  # no write-back configured: nothing could ever be delivered
    pushes = DEFAULT_PUSHES.get(str(event.action), DEFAULT_PUSH)
    note = describe(case.number, str(event.action), event.reason, event.actor_type)
    messages = []
    for n, push in enumerate(pushes):
        action = OutboundAction(
            kind=push.kind,  # type: ignore[arg-type]
            ticket_id=case.ticket_id,
            idempotency_key=f"{case.id}:{event.id}:{n}",
            body_text=note if push.kind == "note" else None,
            status=push.status,
            add_tags=push.add_tags,
        )
        messages.append(enqueue(tenant_id=case.tenant_id, integration_id=case.integration_id, action=action,
                                case_id=case.id))
    return messages


# ---- dead letters -----------------------------------------------------------------------------

def list_messages(tenant_id: int, status: str | None = None, limit: int = 100) -> list[OutboxMessage]:
    """The tenant's outbox messages (optionally of one status), newest first."""
    query = sa.select(OutboxMessage).where(OutboxMessage.tenant_id == tenant_id)
    if status:
        query = query.where(OutboxMessage.status == status)
    return list(db.session.scalars(query.order_by(OutboxMessage.id.desc()).limit(limit)))


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
