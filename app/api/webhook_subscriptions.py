"""Webhook subscription endpoints: the merchant's systems subscribe URLs to case events."""

from __future__ import annotations

from flask import Response

from app.api import bp
from app.api.auth import current_tenant, require_token
from app.api.openapi import endpoint
from app.errors import NotFound
from app.outbound import events
from app.outbound.event_schemas import (
    DeliveryList, DeliveryOut, DeliveryQuery, EventTypeList, EventTypeOut, RotateQuery, SubscriptionCreate,
    SubscriptionList, SubscriptionOut, SubscriptionUpdate, SubscriptionWithSecret,
)

TAG = "webhook-subscriptions"


def _with_secret(created: events.SubscriptionWithSecret) -> SubscriptionWithSecret:
    return SubscriptionWithSecret(**SubscriptionOut.from_model(created.subscription).model_dump(),
                                  secret=created.secret)


def _id(value: str) -> int:
    """Path ids are ASCII digits; anything else names no subscription (404, not 500)."""
    if not (value.isascii() and value.isdigit()) or len(value) > 9:
        raise NotFound(f"No webhook subscription {value!r}.")
    return int(value)


@endpoint(bp, "/webhook-event-types", "GET", summary="The case events a subscription can receive", tag=TAG,
          response=EventTypeList, auth=require_token)
def list_webhook_event_types() -> EventTypeList:
    return EventTypeList(items=[EventTypeOut(type=t, description=d) for t, d in events.CATALOGUE.items()])


@endpoint(bp, "/webhook-subscriptions", "POST", summary="Subscribe a URL to case events; returns its secret (once)",
          tag=TAG, body=SubscriptionCreate, response=SubscriptionWithSecret, status=201, auth=require_token,
          errors=(409,))
def create_webhook_subscription(body: SubscriptionCreate) -> SubscriptionWithSecret:
    return _with_secret(events.create_subscription(current_tenant(), body))


@endpoint(bp, "/webhook-subscriptions", "GET", summary="The tenant's webhook subscriptions", tag=TAG,
          response=SubscriptionList, auth=require_token)
def list_webhook_subscriptions() -> SubscriptionList:
    return SubscriptionList(items=[SubscriptionOut.from_model(s) for s in events.list_subscriptions(current_tenant().id)])


@endpoint(bp, "/webhook-subscriptions/{subscription_id}", "GET", summary="One webhook subscription", tag=TAG,
          response=SubscriptionOut, auth=require_token)
def get_webhook_subscription(subscription_id: str) -> SubscriptionOut:
    return SubscriptionOut.from_model(events.get_subscription(current_tenant().id, _id(subscription_id)))


@endpoint(bp, "/webhook-subscriptions/{subscription_id}", "PATCH",
          summary="Change URL, description, event types, filters or enabled (only the fields sent)", tag=TAG,
          body=SubscriptionUpdate, response=SubscriptionOut, auth=require_token)
def update_webhook_subscription(subscription_id: str, body: SubscriptionUpdate) -> SubscriptionOut:
    return SubscriptionOut.from_model(events.update_subscription(current_tenant(), _id(subscription_id), body))


@endpoint(bp, "/webhook-subscriptions/{subscription_id}", "DELETE",
          summary="Delete a subscription and its deliveries", tag=TAG, status=204, auth=require_token)
def delete_webhook_subscription(subscription_id: str) -> Response:
    events.delete_subscription(current_tenant(), _id(subscription_id))
    return Response(status=204)


@endpoint(bp, "/webhook-subscriptions/{subscription_id}/rotate-secret", "POST",
          summary="New signing secret; deliveries are signed with the old one too during the grace period",
          tag=TAG, query=RotateQuery, response=SubscriptionWithSecret, auth=require_token)
def rotate_webhook_secret(subscription_id: str, query: RotateQuery) -> SubscriptionWithSecret:
    return _with_secret(events.rotate_secret(current_tenant(), _id(subscription_id), query.grace_seconds))


@endpoint(bp, "/webhook-subscriptions/{subscription_id}/test", "POST", summary="Queue a ping event to this URL",
          tag=TAG, response=DeliveryOut, status=202, auth=require_token, errors=(409,))
def test_webhook_subscription(subscription_id: str) -> DeliveryOut:
    return DeliveryOut.from_model(events.send_ping(current_tenant(), _id(subscription_id)))


@endpoint(bp, "/webhook-subscriptions/{subscription_id}/deliveries", "GET",
          summary="Queued and past deliveries (status, attempts, last error), newest first; replay dead ones "
                  "with POST /outbox/{id}/replay", tag=TAG, query=DeliveryQuery, response=DeliveryList,
          auth=require_token)
def list_webhook_deliveries(subscription_id: str, query: DeliveryQuery) -> DeliveryList:
    rows = events.list_deliveries(current_tenant().id, _id(subscription_id), query.status, query.limit)
    return DeliveryList(items=[DeliveryOut.from_model(m) for m in rows])
