"""Case events for the merchant's own systems: webhook subscriptions and what they receive.

Here: the subscription use cases (create with a ``whsec_`` secret shown once, list, get, update,
delete, rotate the secret, queue a ``ping``), the event catalogue, the filters, and
``enqueue_case_events``, which turns a service's timeline events into outbox messages inside
that service's transaction. The dispatcher sends them with ``integrations.generic.send_event``
(Standard Webhooks signing), through the same queue, retries and dead letters as ticket updates.

An event message's ``OutboxMessage.action`` is ``{"kind": "webhook", "event_type", "payload"}``;
``payload`` is the JSON body, ``{"type", "timestamp", "data"}``, and ``idempotency_key`` the
``webhook-id`` (``msg_…``, stable across retries).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets as random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import requests
import sqlalchemy as sa
from flask import current_app

from app.cases.models import CaseEvent, ReturnCase
from app.connectors.crypto import decrypt_secrets, encrypt_secrets, valid_signing_secrets, with_rotated_secret
from app.errors import Conflict, NotFound, ValidationFailed
from app.extensions import db, utcnow
from app.outbound.event_schemas import SubscriptionCreate, SubscriptionFilters, SubscriptionUpdate
from app.outbound.models import DeliveryAttempt, OutboxMessage, WebhookSubscription
from app.outbound.urls import check_outbound_url
from app.tenants.models import Tenant
from integrations.base import Connection, DeliveryResult
from integrations.generic import send_event

KIND = "webhook"  # OutboxMessage.action["kind"] of an event message
PING = "ping"
MAX_SUBSCRIPTIONS = 50  # per tenant: each one multiplies every case event into a delivery
EVENT_TIMEOUT = 10.0

#: Every event a subscription can ask for, with what it means. ``data.event.action`` says which
#: case action caused it; ``case.status_changed`` comes with every event that moved the status.
CATALOGUE: dict[str, str] = {
    "case.created": "A return case was opened (API, agent, helpdesk ticket or email). Sent before the "
                    "policy's decision, which follows as case.approved or case.flagged.",
    "case.status_changed": "The case moved from one status to another (data.previous_status → data.status); sent "
                           "beside the specific event below for every transition.",
    "case.approved": "The return was authorized, by the policy (auto-approval) or by an agent.",
    "case.flagged": "The case needs an agent's review (the policy could not approve it, or someone flagged it).",
    "case.rejected": "The return was refused; data.event.reason says why.",
    "case.info_requested": "The customer was asked for more information (photos, order number …).",
    "case.message_received": "The customer wrote (a ticket message or an email) about the case; data.event.data.text "
                             "holds the new text. An answer to an information request also sends "
                             "case.status_changed (back in review).",
    "case.label_issued": "A return label was issued (data.return_shipment).",
    "case.shipped": "The customer shipped the parcel (carrier and tracking in data.return_shipment).",
    "case.received": "The warehouse received the parcel (per-line quantities in data.lines).",
    "case.inspected": "The items were inspected and graded (condition and disposition in data.lines).",
    "case.resolution_started": "A settlement was chosen (refund, store credit, exchange, keep the item …) and "
                               "is pending (data.settlements).",
    "case.resolved": "The settlement was carried out (paid, credited, shipped).",
    "case.closed": "The case was closed.",
    "case.reopened": "A closed case was reopened for review.",
    "case.cancelled": "The case was cancelled before the items were received.",
    "case.expired": "The case expired (label unused, or the customer never answered).",
    "case.held": "The case was put on hold.",
    "case.released": "A held case went back to the status it had before.",
    "case.lost": "The parcel was marked lost in transit.",
}

# Case action (CaseEvent.action) → the specific event it sends. "message" is the timeline entry
# intake adds for each customer message; "customer_replied" (the status change an answer to an
# information request causes) sends only case.status_changed, so one message is one event.
ACTION_EVENTS: dict[str, str] = {
    "approve": "case.approved",
    "flag": "case.flagged",
    "reject": "case.rejected",
    "request_info": "case.info_requested",
    "message": "case.message_received",
    "issue_label": "case.label_issued",
    "ship": "case.shipped",
    "receive": "case.received",
    "inspect": "case.inspected",
    "resolve": "case.resolution_started",
    "approve_returnless": "case.resolution_started",
    "settle": "case.resolved",
    "close": "case.closed",
    "reopen": "case.reopened",
    "cancel": "case.cancelled",
    "expire": "case.expired",
    "hold": "case.held",
    "release": "case.released",
    "mark_lost": "case.lost",
}


@dataclass(frozen=True)
class SubscriptionWithSecret:
    """A subscription and its signing secret, shown once (on creation and rotation)."""

    subscription: WebhookSubscription
    secret: str


# ---- subscriptions ----------------------------------------------------------------------

def generate_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(random.token_bytes(32)).decode("ascii")


def _check_url(url: str) -> str:
    """:raise ValidationFailed: (422 on ``url``) a private, loopback or link-local address."""
    return check_outbound_url(url, allow_private=current_app.config["REBOUND_ALLOW_PRIVATE_URLS"], field="url")


def _stored_filters(filters: SubscriptionFilters) -> dict[str, Any]:
    return filters.model_dump(mode="json", exclude_none=True)


def create_subscription(tenant: Tenant, data: SubscriptionCreate) -> SubscriptionWithSecret:
    """Subscribe ``data.url`` to case events; the secret is returned here and never again.

    :raise ValidationFailed: (422) the URL points at a private address.
    :raise Conflict: (409) the tenant already has ``MAX_SUBSCRIPTIONS`` subscriptions.
    """
    _check_url(data.url)
    count = db.session.scalar(sa.select(sa.func.count()).select_from(WebhookSubscription)
                              .where(WebhookSubscription.tenant_id == tenant.id))
    if (count or 0) >= MAX_SUBSCRIPTIONS:
        raise Conflict(f"A tenant can have at most {MAX_SUBSCRIPTIONS} webhook subscriptions.",
                       {"limit": MAX_SUBSCRIPTIONS})
    secret = generate_secret()
    subscription = WebhookSubscription(
        tenant_id=tenant.id, url=data.url, description=data.description,
        event_types=list(dict.fromkeys(data.event_types)), filters=_stored_filters(data.filters),
        secret_encrypted=encrypt_secrets({"signing_secret": secret}), enabled=data.enabled,
        disabled_at=None if data.enabled else utcnow(),
    )
    db.session.add(subscription)
    db.session.commit()
    return SubscriptionWithSecret(subscription, secret)


def list_subscriptions(tenant_id: int) -> list[WebhookSubscription]:
    return list(db.session.scalars(sa.select(WebhookSubscription).where(WebhookSubscription.tenant_id == tenant_id)
                                   .order_by(WebhookSubscription.id)))


def get_subscription(tenant_id: int, subscription_id: int) -> WebhookSubscription:
    """:raise NotFound: (404) the tenant has no such subscription."""
    subscription = db.session.scalar(sa.select(WebhookSubscription).where(
        WebhookSubscription.id == subscription_id, WebhookSubscription.tenant_id == tenant_id))
    if subscription is None:
        raise NotFound(f"No webhook subscription {subscription_id}.")
    return subscription


def update_subscription(tenant: Tenant, subscription_id: int, data: SubscriptionUpdate) -> WebhookSubscription:
    """Change the fields sent (``description: null`` clears it). Disabling keeps the queued
    deliveries: they go dead when their turn comes, and can be replayed after re-enabling.

    :raise NotFound: (404) no such subscription. :raise ValidationFailed: (422) private URL.
    """
    subscription = get_subscription(tenant.id, subscription_id)
    sent = data.model_fields_set
    if "url" in sent and data.url is not None:
        subscription.url = _check_url(data.url)
    if "description" in sent:
        subscription.description = data.description
    if "event_types" in sent and data.event_types is not None:
        subscription.event_types = list(dict.fromkeys(data.event_types))
    if "filters" in sent:
        subscription.filters = _stored_filters(data.filters or SubscriptionFilters())
    if "enabled" in sent and data.enabled is not None and data.enabled != subscription.enabled:
        subscription.enabled = data.enabled
        subscription.disabled_at = None if data.enabled else utcnow()
    db.session.commit()
    return subscription


def delete_subscription(tenant: Tenant, subscription_id: int) -> None:
    """Delete a subscription with its deliveries (queued ones are never sent).

    :raise NotFound: (404) no such subscription.
    """
    subscription = get_subscription(tenant.id, subscription_id)
    # The foreign keys cascade on PostgreSQL; SQLite does not enforce them, so delete explicitly.
    message_ids = sa.select(OutboxMessage.id).where(OutboxMessage.subscription_id == subscription.id)
    db.session.execute(sa.delete(DeliveryAttempt).where(DeliveryAttempt.message_id.in_(message_ids)))
    db.session.execute(sa.delete(OutboxMessage).where(OutboxMessage.subscription_id == subscription.id))
    db.session.delete(subscription)
    db.session.commit()


def rotate_secret(tenant: Tenant, subscription_id: int, grace_seconds: int = 86_400) -> SubscriptionWithSecret:
    """A new signing secret. For ``grace_seconds`` deliveries carry a signature with the old one
    too (Standard Webhooks allows several), so the receiver can switch without losing events.

    :raise NotFound: (404) no such subscription.
    """
    subscription = get_subscription(tenant.id, subscription_id)
    secret = generate_secret()
    subscription.secret_encrypted = encrypt_secrets(with_rotated_secret(
        decrypt_secrets(subscription.secret_encrypted), secret, grace_seconds, utcnow()))
    db.session.commit()
    return SubscriptionWithSecret(subscription, secret)


def signing_secrets(subscription: WebhookSubscription, now: datetime | None = None) -> list[str]:
    """The secrets to sign with: the current one, and the previous one during its grace period.

    :raise RuntimeError: the secrets cannot be decrypted (the encryption key changed).
    """
    return valid_signing_secrets(decrypt_secrets(subscription.secret_encrypted), now or utcnow())


def send_ping(tenant: Tenant, subscription_id: int) -> OutboxMessage:
    """Queue a ``ping`` event for this subscription (whatever its event types and filters).

    :raise NotFound: (404) no such subscription. :raise Conflict: (409) it is disabled.
    """
    subscription = get_subscription(tenant.id, subscription_id)
    if not subscription.enabled:
        raise Conflict(f"Webhook subscription {subscription.id} is disabled; enable it to test it.")
    now = utcnow()
    payload = {"type": PING, "timestamp": _iso(now),
               "data": {"subscription_id": subscription.id, "message": "Rebound test event: your endpoint is reachable."}}
    message = _message(subscription, PING, payload, case_id=None, key=f"msg_{random.token_hex(16)}",
                       ordering_key=f"subscription:{subscription.id}:ping")
    db.session.commit()
    return message


def list_deliveries(tenant_id: int, subscription_id: int, status: str | None = None,
                    limit: int = 50) -> list[OutboxMessage]:
    """The subscription's queued and past deliveries, newest first.

    :raise NotFound: (404) no such subscription.
    """
    subscription = get_subscription(tenant_id, subscription_id)
    query = sa.select(OutboxMessage).where(OutboxMessage.subscription_id == subscription.id,
                                           OutboxMessage.tenant_id == tenant_id)
    if status:
        query = query.where(OutboxMessage.status == status)
    return list(db.session.scalars(query.order_by(OutboxMessage.id.desc()).limit(limit)))


# ---- events into the outbox ---------------------------------------------------------------

def event_types_for(event: CaseEvent) -> list[str]:
    """The catalogue events one timeline event sends (none for bookkeeping entries like intake's)."""
    action = str(event.action)
    if action == "create":
        return ["case.created"]
    types = [ACTION_EVENTS[action]] if action in ACTION_EVENTS else []
    if event.from_status and event.to_status and event.from_status != event.to_status:
        types.append("case.status_changed")
    return types


def matches(subscription: WebhookSubscription, event_type: str, status: str, case: ReturnCase) -> bool:
    """Whether ``subscription`` wants ``event_type`` for ``case`` (now in ``status``)."""
    if subscription.event_types and event_type not in subscription.event_types:
        return False
    filters = subscription.filters or {}
    return ((not filters.get("statuses") or status in filters["statuses"])
            and (not filters.get("channels") or case.channel in filters["channels"])
            and (not filters.get("types") or case.type in filters["types"]))


def enqueue_case_events(case: ReturnCase, events: Iterable[CaseEvent]) -> list[OutboxMessage]:
    """One outbox message per enabled matching subscription and catalogue event, added to the
    caller's transaction (no commit): if it rolls back, nothing was ever queued.

    ``events`` must have ids (flushed): the ``webhook-id`` derives from subscription and event.
    Each subscription gets one case's events in order (ordering key per subscription and case).
    """
    events = list(events)
    if not events:
        return []
    subscriptions = list(db.session.scalars(
        sa.select(WebhookSubscription).where(WebhookSubscription.tenant_id == case.tenant_id,
                                             WebhookSubscription.enabled.is_(True))
        .order_by(WebhookSubscription.id)))
    if not subscriptions:
        return []
    messages = []
    for event in events:
        assert event.id is not None, "flush before enqueue_case_events: the webhook-id needs the event id"
        status = str(event.to_status or case.status)
        data: dict[str, Any] | None = None
        for event_type in event_types_for(event):
            for subscription in subscriptions:
                if not matches(subscription, event_type, status, case):
                    continue
                data = data or case_data(case, event)
                payload = {"type": event_type, "timestamp": _iso(event.created_at), "data": data}
                messages.append(_message(subscription, event_type, payload, case_id=case.id,
                                         key=message_id(subscription, event.id, event_type),
                                         ordering_key=f"subscription:{subscription.id}:{case.id}"))
    return messages


def message_id(subscription: WebhookSubscription, event_id: int, event_type: str) -> str:
    """The ``webhook-id`` of one event for one subscription, stored with the message so every
    retry carries it. The subscription's creation time goes in too: ids restart at 1 in a new
    or restored database, and a receiver deduplicating by webhook-id would drop new events."""
    seed = f"{subscription.id}:{_iso(subscription.created_at)}:{event_id}:{event_type}"
    return f"msg_{hashlib.sha256(seed.encode()).hexdigest()[:32]}"


def _message(subscription: WebhookSubscription, event_type: str, payload: dict[str, Any], *, case_id: int | None,
             key: str, ordering_key: str) -> OutboxMessage:
    message = OutboxMessage(
        tenant_id=subscription.tenant_id, subscription_id=subscription.id, case_id=case_id,
        ordering_key=ordering_key, idempotency_key=key, status="pending",
        action={"kind": KIND, "event_type": event_type, "payload": payload},
    )
    db.session.add(message)
    return message


def case_data(case: ReturnCase, event: CaseEvent) -> dict[str, Any]:
    """The ``data`` of an event: a summary of the case right after ``event``, and the event."""
    policy = case.policy_decision or {}
    shipment = {"carrier": case.return_carrier, "tracking": case.return_tracking, "label_url": case.return_label_url}
    return {
        "number": case.number,
        "status": str(event.to_status or case.status),
        "previous_status": event.from_status,
        "type": case.type,
        "channel": case.channel,
        "locale": case.locale,
        "currency": case.currency,
        "preferred_resolution": case.preferred_resolution,
        "customer": {"email": case.customer.email, "name": case.customer.name},
        "lines": [
            {"id": line.id, "sku": line.sku, "title": line.title, "unit_price": str(line.unit_price),
             "qty_requested": line.qty_requested, "qty_authorized": line.qty_authorized,
             "qty_received": line.qty_received, "qty_accepted": line.qty_accepted,
             "reason_code": line.reason_code, "decision_status": line.decision_status,
             "reception_status": line.reception_status, "condition_grade": line.condition_grade,
             "disposition": line.disposition, "resolution_preference": line.resolution_preference}
            for line in case.lines
        ],
        "ticket": ({"provider": case.ticket_provider, "id": case.ticket_id, "url": case.ticket_url}
                   if case.ticket_id else None),
        "policy": {"version": case.policy_version, "outcome": policy.get("outcome"),
                   "summary": policy.get("summary"), "options": policy.get("options", [])},
        "return_shipment": shipment if any(shipment.values()) else None,
        "settlements": [
            {"kind": s.kind, "status": s.status, "currency": s.currency, "amount": str(s.amount),
             "fees": str(s.fees), "bonus": str(s.bonus), "external_ref": s.external_ref}
            for s in case.settlements
        ],
        "created_at": _iso(case.created_at),
        "event": {
            "id": event.id, "action": str(event.action), "from_status": event.from_status,
            "to_status": event.to_status, "actor": {"type": event.actor_type, "id": event.actor_id},
            "channel": event.channel, "reason": event.reason, "data": event.data or {},
            "occurred_at": _iso(event.created_at),
        },
    }


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite hands back naive datetimes; every stored time is UTC
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


# ---- delivery (called by the dispatcher) ------------------------------------------------

def delivery_target(message: OutboxMessage) -> tuple[Connection | None, str | None]:
    """Where and with which secrets to send an event message, or why it cannot be sent at all
    (subscription deleted or disabled, undecryptable secret): such a message goes dead with that
    reason, and can be replayed once fixed. Called inside the claim, so no network here."""
    subscription = db.session.get(WebhookSubscription, message.subscription_id)
    if subscription is None:
        return None, f"Webhook subscription {message.subscription_id} no longer exists."
    if not subscription.enabled:
        return None, f"Webhook subscription {subscription.id} is disabled; enable it and replay this message."
    try:
        secrets = signing_secrets(subscription)
    except RuntimeError as exc:
        return None, f"Webhook subscription {subscription.id}: {exc}"
    credentials = {f"secret_{n}": secret for n, secret in enumerate(secrets)}
    return Connection(base_url=subscription.url, credentials=credentials, timeout=EVENT_TIMEOUT), None


def event_body(message: OutboxMessage) -> bytes:
    """The JSON body of an event message, exactly as it is signed and sent."""
    return json.dumps(message.action["payload"], separators=(",", ":")).encode("utf-8")


def send(connection: Connection, body: bytes, webhook_id: str, session: requests.Session) -> DeliveryResult:
    """Check the URL again (its name may resolve elsewhere now than when it was saved; a
    private address is permanent), then POST the signed body. Runs outside any transaction."""
    try:
        _check_url(connection.base_url)
    except ValidationFailed as exc:
        reasons = exc.details.get("fields", {}).get("url") or [exc.message]
        return DeliveryResult("permanent", None, 0.0, error=f"Refused: {reasons[0]}", requests_made=0)
    return send_event(connection.base_url, body, list(connection.credentials.values()), webhook_id, session,
                      timeout=connection.timeout)
