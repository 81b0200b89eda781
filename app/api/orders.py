"""Order endpoints: upsert by number, read one."""

from __future__ import annotations

from app.api import bp
from app.api.auth import current_tenant, require_token
from app.api.openapi import endpoint
from app.api.schemas import OrderOut
from app.cases.queries import get_order as find_order
from app.orders.schemas import OrderUpsert
from app.orders.services import upsert_order


@endpoint(bp, "/orders", "POST", summary="Create or replace an order by its number", tag="orders",
          body=OrderUpsert, response=OrderOut, auth=require_token, errors=(409,))
def put_order(body: OrderUpsert) -> OrderOut:
    order, created = upsert_order(current_tenant(), body)
    return OrderOut.from_model(order, created=created)


@endpoint(bp, "/orders/{number}", "GET", summary="Get an order", tag="orders", response=OrderOut, auth=require_token)
def get_order(number: str) -> OrderOut:
    return OrderOut.from_model(find_order(current_tenant().id, number))
