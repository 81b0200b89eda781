"""Input schemas for the case domain: creating cases and every action's payload.

They validate syntax at the edge (API, CLI, intake) and are the typed objects the services
take; business rules are checked in ``states.py``, ``policy.py`` and the services.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import EmailStr, Field, ValidationInfo, field_validator, model_validator

from app.orders.schemas import Sku, UnitPrice
from app.validation import Schema

CaseType = Literal["return", "exchange", "claim", "warranty"]
Channel = Literal["api", "agent", "helpdesk", "email", "portal"]
ResolutionKind = Literal["refund", "store_credit", "exchange", "replacement", "repair", "keep_item"]
Disposition = Literal[
    "restock", "refurbish", "repair", "recycle", "dispose", "donate", "return_to_vendor", "quarantine"
]
ReceptionOutcome = Literal["received", "wrong_item", "missing"]
Grade = Annotated[str, Field(pattern=r"^[A-Za-z0-9_+-]{1,16}$", description="Condition grade, e.g. A, B, C, damaged.")]
Reason = Annotated[str, Field(min_length=3, max_length=2000)]
Text = Annotated[str, Field(max_length=5000)]
Quantity = Annotated[int, Field(strict=True, ge=0, le=100_000)]
LineId = Annotated[int, Field(ge=1, le=2**31 - 1)]


class TicketRef(Schema):
    provider: str = Field(min_length=1, max_length=32)
    id: str = Field(min_length=1, max_length=100)
    url: str | None = Field(default=None, max_length=500)


class EvidenceIn(Schema):
    kind: Literal["photo", "video", "document", "serial_scan"] = "photo"
    url: str | None = Field(default=None, max_length=1000)
    filename: str | None = Field(default=None, max_length=255)
    content_type: str | None = Field(default=None, max_length=100)
    size_bytes: int | None = Field(default=None, ge=0, le=2**31 - 1)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    line_index: int | None = Field(default=None, ge=0, le=499, description="Which requested line it shows.")


class CaseLineIn(Schema):
    """A line to return: from a known order (``order_number`` + ``sku``) or from no known order."""

    order_number: str | None = Field(default=None, min_length=1, max_length=64)
    sku: Sku
    quantity: int = Field(strict=True, ge=1, le=100_000)
    reason_code: str | None = Field(default=None, max_length=64)
    comment: Text | None = None
    resolution_preference: ResolutionKind | None = None
    # Only for lines from no known order: what it is and what was paid.
    title: str | None = Field(default=None, max_length=300)
    unit_price: UnitPrice | None = None

    @model_validator(mode="after")
    def _unknown_origin_needs_price(self) -> CaseLineIn:
        if self.order_number is None and (self.title is None or self.unit_price is None):
            raise ValueError("a line from no known order needs title and unit_price")
        return self


class CaseCreate(Schema):
    customer_email: EmailStr | None = Field(default=None, max_length=320)
    customer_name: str | None = Field(default=None, max_length=200)
    type: CaseType = "return"
    channel: Channel = "api"
    locale: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[A-Z]{2})?$")
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    preferred_resolution: ResolutionKind | None = None
    ticket: TicketRef | None = None
    note: Text | None = None
    lines: list[CaseLineIn] = Field(min_length=1, max_length=100)
    evidence: list[EvidenceIn] = Field(default_factory=list, max_length=50)

    @field_validator("customer_email")
    @classmethod
    def _normalize_email(cls, value: str | None) -> str | None:
        return value.strip().lower() if value else value

    @model_validator(mode="after")
    def _who(self) -> CaseCreate:
        if self.customer_email is None and all(line.order_number is None for line in self.lines):
            raise ValueError("give customer_email, or at least one line with an order_number")
        for item in self.evidence:
            if item.line_index is not None and item.line_index >= len(self.lines):
                raise ValueError(f"evidence line_index {item.line_index} points past the last line")
        return self


class DryRunRequest(CaseCreate):
    """A hypothetical case to evaluate against the policy; nothing is stored."""


# ---- action payloads ---------------------------------------------------------------------

class ActionIn(Schema):
    """Common to every action: the version the client saw (optional) and a note for the timeline."""

    version: int | None = Field(default=None, ge=1, le=2**31 - 1, description="Refuse with 409 if the case has changed since.")
    note: Text | None = None


class LineQuantity(Schema):
    line_id: LineId
    quantity: Quantity


class ApproveIn(ActionIn):
    lines: list[LineQuantity] | None = Field(
        default=None, max_length=100,
        description="Quantities to authorize per line; default: every eligible line in full.",
    )
    reason: Reason | None = Field(default=None, description="Required when authorizing a line the policy refused.")


class ReasonRequiredIn(ActionIn):
    reason: Reason


class ReasonOptionalIn(ActionIn):
    reason: Reason | None = None


class RequestInfoIn(ActionIn):
    message: Annotated[str, Field(min_length=3, max_length=5000)]


class CustomerRepliedIn(ActionIn):
    message: Text | None = None


class IssueLabelIn(ActionIn):
    carrier: str = Field(min_length=1, max_length=64)
    tracking_number: str = Field(min_length=1, max_length=100)
    label_url: str | None = Field(default=None, max_length=1000)


class ShipIn(ActionIn):
    tracking_number: str | None = Field(default=None, max_length=100)


class ReceiveLine(Schema):
    line_id: LineId
    quantity: Quantity
    outcome: ReceptionOutcome = "received"


class ReceiveIn(ActionIn):
    lines: list[ReceiveLine] | None = Field(
        default=None, max_length=100, description="Default: every authorized line received in full."
    )


class InspectLine(Schema):
    line_id: LineId
    condition_grade: Grade
    disposition: Disposition
    quantity_accepted: Quantity
    note: Text | None = None


class InspectIn(ActionIn):
    lines: list[InspectLine] = Field(min_length=1, max_length=100)


class ResolveIn(ActionIn):
    kind: ResolutionKind
    exchange_value: Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)] | None = Field(
        default=None, description="Price of the replacement item, for exchanges."
    )
    reason: Reason | None = Field(default=None, description="Required for an option the policy did not offer.")

    @field_validator("exchange_value")
    @classmethod
    def _exchange_value_only_for_exchanges(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        if value is not None and info.data.get("kind") != "exchange":
            raise ValueError("exchange_value is only for kind 'exchange'")
        return value


class SettleIn(ActionIn):
    external_ref: str | None = Field(default=None, max_length=200)


class ReasonCodeIn(Schema):
    code: str = Field(pattern=r"^[a-z0-9_]{2,64}$")
    label: str = Field(min_length=1, max_length=200)
    parent: str | None = Field(default=None, pattern=r"^[a-z0-9_]{2,64}$")
    requires_photo: bool = False
    requires_note: bool = False
    fault_party: Literal["customer", "merchant", "carrier", "vendor"] = "customer"
    active: bool = True
