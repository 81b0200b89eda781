"""Request payloads and records for tests, with sensible defaults and overrides."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any


def order_payload(number: str = "1001", *, email: str = "Maria.Lopez@Example.com ", days_ago: int = 5,
                  lines: list[dict[str, Any]] | None = None, **overrides: Any) -> dict[str, Any]:
    ordered = date.today() - timedelta(days=days_ago + 3)
    payload = {
        "number": number,
        "currency": "EUR",
        "ordered_on": ordered.isoformat(),
        "delivered_on": (ordered + timedelta(days=3)).isoformat(),
        "customer": {"email": email, "name": "María López"},
        "lines": lines
        or [
            {"sku": "TENT-2P", "title": "Trailhead tent", "quantity": 2, "unit_price": "249.00", "category": "tents"},
            {"sku": "SOCK-3", "title": "Merino socks", "quantity": 3, "unit_price": "24.00", "category": "underwear"},
            {"sku": "STOVE", "title": "Gas stove", "quantity": 1, "unit_price": "29.00", "final_sale": True},
        ],
    }
    payload.update(overrides)
    return payload


def case_payload(order_number: str = "1001", sku: str = "TENT-2P", quantity: int = 1,
                 reason: str | None = "too_small", **overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "lines": [{"order_number": order_number, "sku": sku, "quantity": quantity, "reason_code": reason}],
        "preferred_resolution": "refund",
    }
    payload.update(overrides)
    return payload
