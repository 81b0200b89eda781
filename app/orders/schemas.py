"""Input schemas for orders: what ``POST /api/v1/orders`` accepts."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated

from pydantic import EmailStr, Field, field_validator, model_validator

from app.validation import Schema

Sku = Annotated[str, Field(min_length=1, max_length=100)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. EUR")]
# Dates before 2000 or after 2100 are typos, and unbounded dates overflow date arithmetic.
BusinessDate = Annotated[date, Field(ge=date(2000, 1, 1), le=date(2100, 12, 31))]
UnitPrice = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)]


class CustomerIn(Schema):
    email: EmailStr = Field(max_length=320)
    name: str | None = Field(default=None, max_length=200)

    @field_validator("email")
    @classmethod
    def _normalize(cls, value: str) -> str:
        return value.strip().lower()


class OrderLineIn(Schema):
    sku: Sku
    title: str = Field(min_length=1, max_length=300)
    quantity: int = Field(strict=True, ge=1, le=100_000)
    unit_price: UnitPrice = Field(description="Price actually paid per unit, after discounts.")
    category: str | None = Field(default=None, max_length=100)
    tags: list[Annotated[str, Field(max_length=100)]] = Field(default_factory=list, max_length=50)
    final_sale: bool = False


class OrderUpsert(Schema):
    # No "/": the number is a path segment of GET /orders/{number}.
    number: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9#._-]+$")
    currency: Currency
    ordered_on: BusinessDate
    delivered_on: BusinessDate | None = None
    customer: CustomerIn
    lines: list[OrderLineIn] = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _check(self) -> OrderUpsert:
        skus = [line.sku for line in self.lines]
        duplicates = sorted({sku for sku in skus if skus.count(sku) > 1})
        if duplicates:
            raise ValueError(f"each SKU may appear once per order; repeated: {', '.join(duplicates)}")
        if self.delivered_on and self.delivered_on < self.ordered_on:
            raise ValueError("delivered_on cannot be before ordered_on")
        return self
