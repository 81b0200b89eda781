"""Response schemas of the JSON API (request schemas live with their domain package).

Each ``from_model`` builds the response from ORM objects, so views stay one line long.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field, ValidationInfo, field_validator

from app.cases import states
from app.cases.models import CaseEvent, CaseLine, Evidence, PolicyVersion, ReasonCode, ReturnCase, Settlement
from app.orders.models import Order
from app.validation import Schema


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. invalid_transition.")
    message: str = Field(description="A sentence a person can act on.")
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorResponse(BaseModel):
    error: ErrorBody


class CaseLineOut(BaseModel):
    id: int
    sku: str
    title: str
    order_number: str | None
    unit_price: Decimal
    qty_requested: int
    qty_authorized: int
    qty_received: int
    qty_accepted: int
    reason_code: str | None
    customer_comment: str | None
    reception_status: str
    decision_status: str
    decision_results: list[dict[str, Any]]
    fee_percent: Decimal
    condition_grade: str | None
    disposition: str | None
    resolution_preference: str | None
    fault_party: str | None

    @classmethod
    def from_model(cls, line: CaseLine) -> CaseLineOut:
        return cls(
            id=line.id, sku=line.sku, title=line.title, order_number=line.order.number if line.order else None,
            unit_price=line.unit_price, qty_requested=line.qty_requested, qty_authorized=line.qty_authorized,
            qty_received=line.qty_received, qty_accepted=line.qty_accepted, reason_code=line.reason_code,
            customer_comment=line.customer_comment, reception_status=line.reception_status,
            decision_status=line.decision_status, decision_results=line.decision_results or [],
            fee_percent=line.fee_percent, condition_grade=line.condition_grade, disposition=line.disposition,
            resolution_preference=line.resolution_preference, fault_party=line.fault_party,
        )


class AmountsOut(BaseModel):
    """What a settlement pays: gross at the price paid, minus fees, plus bonus (store credit)."""

    kind: str
    currency: str
    gross: Decimal
    fees: Decimal
    bonus: Decimal
    amount: Decimal
    price_difference: Decimal
    customer_owes: Decimal


class SettlementOut(AmountsOut):
    id: int
    status: str
    external_ref: str | None
    created_at: datetime

    @classmethod
    def from_model(cls, s: Settlement) -> SettlementOut:
        return cls(
            id=s.id, kind=s.kind, status=s.status, currency=s.currency, gross=s.gross, fees=s.fees, bonus=s.bonus,
            amount=s.amount, price_difference=s.price_difference, customer_owes=s.customer_owes,
            external_ref=s.external_ref, created_at=s.created_at,
        )


class EvidenceOut(BaseModel):
    id: int
    kind: str
    line_id: int | None
    url: str | None
    filename: str | None
    content_type: str | None
    size_bytes: int | None
    sha256: str | None
    source: str
    created_at: datetime

    @classmethod
    def from_model(cls, e: Evidence) -> EvidenceOut:
        return cls(
            id=e.id, kind=e.kind, line_id=e.line_id, url=e.url, filename=e.filename, content_type=e.content_type,
            size_bytes=e.size_bytes, sha256=e.sha256, source=e.source, created_at=e.created_at,
        )


class TicketOut(BaseModel):
    provider: str | None
    id: str | None
    url: str | None


class ShipmentOut(BaseModel):
    carrier: str | None
    tracking_number: str | None
    label_url: str | None
    label_issued_at: datetime | None


class CaseSummary(BaseModel):
    number: str
    status: str
    type: str
    channel: str
    customer_email: str
    currency: str
    ticket_id: str | None
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, case: ReturnCase) -> CaseSummary:
        return cls(
            number=case.number, status=case.status, type=case.type, channel=case.channel,
            customer_email=case.customer.email, currency=case.currency, ticket_id=case.ticket_id,
            version=case.version, created_at=case.created_at, updated_at=case.updated_at,
        )


class CaseOut(CaseSummary):
    status_description: str
    next_step: str
    held_from: str | None
    allowed_actions: list[str] = Field(description="Actions the current status allows (guards may still refuse).")
    customer_name: str | None
    locale: str
    preferred_resolution: str | None
    ticket: TicketOut
    shipment: ShipmentOut
    note: str | None
    policy_version: int | None
    policy_decision: dict[str, Any] | None
    lines: list[CaseLineOut]
    settlements: list[SettlementOut]
    evidence: list[EvidenceOut]

    @classmethod
    def from_model(cls, case: ReturnCase) -> CaseOut:  # type: ignore[override]
        status = states.CaseStatus(case.status)
        return cls(
            **CaseSummary.from_model(case).model_dump(),
            status_description=states.STATUS_DESCRIPTIONS[status], next_step=states.NEXT_STEP[status],
            held_from=case.held_from,
            allowed_actions=[a.value for a in states.allowed_actions(status, case.held_from)],
            customer_name=case.customer.name, locale=case.locale, preferred_resolution=case.preferred_resolution,
            ticket=TicketOut(provider=case.ticket_provider, id=case.ticket_id, url=case.ticket_url),
            shipment=ShipmentOut(carrier=case.return_carrier, tracking_number=case.return_tracking,
                                 label_url=case.return_label_url, label_issued_at=case.label_issued_at),
            note=case.note, policy_version=case.policy_version, policy_decision=case.policy_decision,
            lines=[CaseLineOut.from_model(line) for line in case.lines],
            settlements=[SettlementOut.from_model(s) for s in case.settlements],
            evidence=[EvidenceOut.from_model(e) for e in case.evidence],
        )


class CasePage(BaseModel):
    items: list[CaseSummary]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null on the last page.")


class CaseListQuery(Schema):
    status: str | None = Field(default=None, max_length=400, pattern=r"^[a-z_]+(,[a-z_]+)*$",
                               description="One status or several, comma-separated.")
    customer_email: str | None = Field(default=None, max_length=320)
    order_number: str | None = Field(default=None, max_length=64)
    ticket_id: str | None = Field(default=None, max_length=100)
    updated_since: AwareDatetime | None = Field(default=None, description="ISO 8601 with a time zone.")
    q: str | None = Field(default=None, max_length=320, description="Search: RMA number, customer email or order number.")
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=200)

    @field_validator("updated_since")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        """Compare in UTC; an offset that pushes the time outside years 1–9999 is refused, not a 500."""
        if value is None:
            return None
        try:
            return value.astimezone(timezone.utc)
        except OverflowError:
            raise ValueError("is out of range once converted to UTC") from None


class EventOut(BaseModel):
    id: int
    action: str
    from_status: str | None
    to_status: str | None
    actor_type: str
    actor_id: str | None
    channel: str
    reason: str | None
    data: dict[str, Any]
    created_at: datetime

    @classmethod
    def from_model(cls, e: CaseEvent) -> EventOut:
        return cls(
            id=e.id, action=e.action, from_status=e.from_status, to_status=e.to_status, actor_type=e.actor_type,
            actor_id=e.actor_id, channel=e.channel, reason=e.reason, data=e.data or {}, created_at=e.created_at,
        )


class TimelineOut(BaseModel):
    number: str
    events: list[EventOut]


class LinesOut(BaseModel):
    number: str
    lines: list[CaseLineOut]


class SettlementsOut(BaseModel):
    number: str
    settlements: list[SettlementOut]


class SettlementPreviewQuery(Schema):
    kind: Literal["refund", "store_credit", "exchange", "replacement", "repair", "keep_item"]
    exchange_value: Decimal | None = Field(default=None, ge=0, max_digits=12, decimal_places=2)

    @field_validator("exchange_value")
    @classmethod
    def _only_for_exchanges(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        kind = info.data.get("kind")
        if value is not None and kind is not None and kind != "exchange":
            raise ValueError(f"only applies to kind=exchange, not {kind}")
        return value


class SettlementPreviewOut(AmountsOut):
    number: str
    offered: bool = Field(description="Whether the policy offers this resolution for the case.")


class OrderLineOut(BaseModel):
    sku: str
    title: str
    quantity: int
    unit_price: Decimal
    category: str | None
    tags: list[str]
    final_sale: bool


class OrderOut(BaseModel):
    number: str
    currency: str
    ordered_on: date
    delivered_on: date | None
    total: Decimal
    customer_email: str
    customer_name: str | None
    lines: list[OrderLineOut]
    created: bool = False

    @classmethod
    def from_model(cls, order: Order, created: bool = False) -> OrderOut:
        return cls(
            number=order.number, currency=order.currency, ordered_on=order.ordered_on,
            delivered_on=order.delivered_on, total=order.total, customer_email=order.customer.email,
            customer_name=order.customer.name, created=created,
            lines=[
                OrderLineOut(sku=line.sku, title=line.title, quantity=line.quantity, unit_price=line.unit_price,
                             category=line.category, tags=list(line.tags or []), final_sale=line.final_sale)
                for line in order.lines
            ],
        )


class PolicyOut(BaseModel):
    version: int
    created_at: datetime
    created_by: str | None
    document: dict[str, Any]

    @classmethod
    def from_model(cls, version: PolicyVersion) -> PolicyOut:
        return cls(version=version.version, created_at=version.created_at, created_by=version.created_by,
                   document=version.document)


class DecisionOut(BaseModel):
    policy_version: int
    decision: dict[str, Any]


class ReasonCodeOut(BaseModel):
    code: str
    label: str
    parent: str | None
    requires_photo: bool
    requires_note: bool
    fault_party: str
    active: bool

    @classmethod
    def from_model(cls, reason: ReasonCode) -> ReasonCodeOut:
        return cls(code=reason.code, label=reason.label, parent=reason.parent.code if reason.parent else None,
                   requires_photo=reason.requires_photo, requires_note=reason.requires_note,
                   fault_party=reason.fault_party, active=reason.active)


class ReasonCodeList(BaseModel):
    items: list[ReasonCodeOut]


class IntegrationOut(BaseModel):
    id: int
    kind: str
    name: str
    enabled: bool
    webhook_url: str
    settings: dict[str, Any]
    rejected_count: int
    created_at: datetime
    disabled_at: datetime | None

    @classmethod
    def from_model(cls, integration: Any, webhook_url: str) -> IntegrationOut:
        return cls(id=integration.id, kind=integration.kind, name=integration.name, enabled=integration.enabled,
                   webhook_url=webhook_url, settings=integration.settings or {},
                   rejected_count=integration.rejected_count, created_at=integration.created_at,
                   disabled_at=integration.disabled_at)


class IntegrationWithSecret(IntegrationOut):
    signing_secret: str = Field(description="Shown once: paste it into the helpdesk (or it came from there).")


class CredentialNames(BaseModel):
    credential_names: list[str] = Field(description="The credentials now stored (names only; values are never shown).")


class MailboxStatusOut(BaseModel):
    polled: bool = Field(description="Whether the worker has polled the mailbox yet.")
    uidvalidity: int | None = None
    last_uid: int = Field(0, description="The highest UID read and stored.")
    last_polled_at: datetime | None = None
    last_error: str | None = Field(None, description="Why the last poll failed (wrong password, server down…).")


class IntegrationList(BaseModel):
    items: list[IntegrationOut]


class InboundEventOut(BaseModel):
    id: int
    integration_id: int
    kind: str
    event_type: str
    ticket_id: str | None
    delivery_key: str
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    outcome: dict[str, Any] | None
    received_at: datetime
    processed_at: datetime | None

    @classmethod
    def from_model(cls, e: Any) -> InboundEventOut:
        return cls(id=e.id, integration_id=e.integration_id, kind=e.kind, event_type=e.event_type,
                   ticket_id=e.ticket_id, delivery_key=e.delivery_key, status=e.status, attempts=e.attempts,
                   last_error=e.last_error, next_attempt_at=e.next_attempt_at, outcome=e.outcome,
                   received_at=e.received_at, processed_at=e.processed_at)


class InboundEventPage(BaseModel):
    items: list[InboundEventOut]
    next_cursor: str | None


class InboundEventQuery(Schema):
    status: Literal["received", "processed", "ignored", "failed", "dead", "rejected"] | None = None
    integration_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    ticket_id: str | None = Field(default=None, max_length=100)
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=200)


class RejectedRequestOut(BaseModel):
    id: int
    status_code: int
    code: str
    message: str
    remote_addr: str | None
    body_bytes: int | None
    received_at: datetime


class RejectedRequestList(BaseModel):
    integration_id: int
    rejected_count: int = Field(description="All refusals since the integration was created.")
    items: list[RejectedRequestOut] = Field(description="The most recent refusals, newest first.")


class SuggestionOut(BaseModel):
    id: int
    integration_id: int | None
    ticket_id: str
    status: str
    confidence: float
    kind: str | None
    reason_code: str | None
    language: str | None
    customer_email: str | None
    order_numbers: list[str]
    proposal: dict[str, Any]
    why: list[str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, s: Any) -> SuggestionOut:
        return cls(id=s.id, integration_id=s.integration_id, ticket_id=s.ticket_id, status=s.status,
                   confidence=s.confidence, kind=s.kind, reason_code=s.reason_code, language=s.language,
                   customer_email=s.customer_email, order_numbers=list(s.order_numbers or []),
                   proposal=s.proposal or {}, why=list(s.why or []), created_at=s.created_at, updated_at=s.updated_at)


class SuggestionList(BaseModel):
    items: list[SuggestionOut]


class SuggestionQuery(Schema):
    ticket_id: str | None = Field(default=None, max_length=100)
    status: Literal["open", "accepted", "dismissed"] | None = "open"
    limit: int = Field(default=50, ge=1, le=200)


class OutboxMessageOut(BaseModel):
    id: int
    integration_id: int | None
    subscription_id: int | None = Field(default=None, description="Set for a case event to a webhook subscription.")
    case_id: int | None
    ordering_key: str
    kind: str = Field(description="note, reply, status, tags or fields")
    ticket_id: str
    idempotency_key: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def from_model(cls, m: Any) -> OutboxMessageOut:
        return cls(id=m.id, integration_id=m.integration_id, subscription_id=m.subscription_id, case_id=m.case_id,
                   ordering_key=m.ordering_key,
                   kind=m.action.get("kind", ""), ticket_id=m.action.get("ticket_id", ""),
                   idempotency_key=m.idempotency_key, status=m.status, attempts=m.attempts,
                   next_attempt_at=m.next_attempt_at, last_status_code=m.last_status_code, last_error=m.last_error,
                   created_at=m.created_at, delivered_at=m.delivered_at)


class DeliveryAttemptOut(BaseModel):
    attempted_at: datetime
    outcome: str = Field(description="delivered, retry or permanent")
    status_code: int | None = Field(description="The HTTP (or SMTP) status the other side answered, if any.")
    latency_ms: float
    error: str | None = Field(description="An excerpt of the error or the answer's body.")


class OutboxMessageDetail(OutboxMessageOut):
    action: dict[str, Any] = Field(description="What is sent: the note, reply, tags, status, fields, mail or event.")
    delivery_attempts: list[DeliveryAttemptOut]


class OutboxQuery(Schema):
    status: Literal["pending", "sending", "delivered", "dead", "discarded"] | None = None
    limit: int = Field(default=50, ge=1, le=200)


class OutboxList(BaseModel):
    items: list[OutboxMessageOut] = Field(description="Newest first.")
