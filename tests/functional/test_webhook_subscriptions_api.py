"""Webhook subscriptions through the API: CRUD, secrets, bad input, private URLs, tenant scoping,
test pings and the delivery log."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from app.extensions import db
from app.outbound.models import WebhookSubscription
from tests.factories import case_payload, order_payload

URL = "https://hooks.example.com/rebound"


class Hooks:
    """The subscription endpoints for one tenant's token."""

    def __init__(self, client, token: str):
        self.client, self.headers = client, {"Authorization": f"Bearer {token}"}

    def call(self, method: str, path: str = "", **kwargs: Any):
        return self.client.open("/api/v1/webhook-subscriptions" + path, method=method, headers=self.headers,
                                **kwargs)

    def create(self, **fields: Any) -> dict[str, Any]:
        response = self.call("POST", json={"url": URL, **fields})
        assert response.status_code == 201, response.json
        return response.json


@pytest.fixture()
def hooks(client, tenant_token: str) -> Hooks:
    return Hooks(client, tenant_token)


@pytest.fixture()
def other_hooks(app: Flask, client, tenant_token: str) -> Hooks:
    from app.tenants.services import create_tenant

    with app.app_context():
        token = create_tenant("Other shop", slug="other").plain
        db.session.remove()
    return Hooks(client, token)


@pytest.fixture()
def private_urls_refused(app: Flask) -> Iterator[None]:
    app.config["REBOUND_ALLOW_PRIVATE_URLS"] = False
    try:
        yield
    finally:
        app.config["REBOUND_ALLOW_PRIVATE_URLS"] = True


def _fields(response) -> dict[str, list[str]]:
    assert response.status_code == 422, response.json
    return response.json["error"]["details"]["fields"]


# ---- CRUD ---------------------------------------------------------------------------------

def test_create_returns_the_secret_once(app: Flask, hooks: Hooks) -> None:
    created = hooks.create(description="ERP", event_types=["case.approved", "case.resolved"],
                           filters={"statuses": ["authorized", "resolved"], "channels": ["email"]})
    assert created["secret"].startswith("whsec_") and created["enabled"] is True
    assert created["event_types"] == ["case.approved", "case.resolved"]
    assert created["filters"] == {"statuses": ["authorized", "resolved"], "channels": ["email"]}
    fetched = hooks.call("GET", f"/{created['id']}").json
    assert "secret" not in fetched and fetched["url"] == URL and fetched["description"] == "ERP"
    assert [s["id"] for s in hooks.call("GET").json["items"]] == [created["id"]]
    with app.app_context():
        stored = db.session.scalar(sa.select(WebhookSubscription.secret_encrypted))
        db.session.remove()
    assert created["secret"] not in stored  # encrypted at rest


def test_patch_changes_only_the_fields_sent(hooks: Hooks) -> None:
    created = hooks.create(description="ERP", event_types=["case.approved"])
    response = hooks.call("PATCH", f"/{created['id']}", json={"enabled": False, "description": None})
    assert response.status_code == 200
    body = response.json
    assert body["enabled"] is False and body["disabled_at"] is not None and body["description"] is None
    assert body["event_types"] == ["case.approved"] and body["url"] == URL
    body = hooks.call("PATCH", f"/{created['id']}", json={"enabled": True, "event_types": [], "url":
                                                           "https://erp.example.org/in", "filters": {"types": ["exchange"]}}).json
    assert body["enabled"] is True and body["disabled_at"] is None and body["event_types"] == []
    assert body["url"] == "https://erp.example.org/in" and body["filters"] == {"types": ["exchange"]}


def test_delete_then_404(hooks: Hooks) -> None:
    created = hooks.create()
    assert hooks.call("DELETE", f"/{created['id']}").status_code == 204
    assert hooks.call("GET", f"/{created['id']}").status_code == 404
    assert hooks.call("DELETE", f"/{created['id']}").status_code == 404
    assert hooks.call("GET").json["items"] == []


def test_rotate_secret_gives_a_new_one(hooks: Hooks) -> None:
    created = hooks.create()
    response = hooks.call("POST", f"/{created['id']}/rotate-secret?grace_seconds=60")
    assert response.status_code == 200
    assert response.json["secret"].startswith("whsec_") and response.json["secret"] != created["secret"]
    assert _fields(hooks.call("POST", f"/{created['id']}/rotate-secret?grace_seconds=-1")) .keys() == {"grace_seconds"}
    assert "grace_seconds" in _fields(hooks.call("POST", f"/{created['id']}/rotate-secret?grace_seconds=9999999"))


def test_event_types_are_listed_with_descriptions(client, tenant_token: str) -> None:
    response = client.get("/api/v1/webhook-event-types", headers={"Authorization": f"Bearer {tenant_token}"})
    items = {item["type"]: item["description"] for item in response.json["items"]}
    assert {"case.created", "case.status_changed", "case.approved", "case.resolved", "case.closed"} <= set(items)
    assert all(items.values())


def test_a_token_is_required(client) -> None:
    assert client.get("/api/v1/webhook-subscriptions").status_code == 401
    assert client.post("/api/v1/webhook-subscriptions", json={"url": URL}).status_code == 401


# ---- bad input ----------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["not a url", "ftp://example.com/hook", "http://[::1/hook", "https://host:99999/",
                                 "https://exa mple.com/", "https:///nohost", "javascript:alert(1)", "",
                                 "https://" + "a" * 500 + ".com"])
def test_a_bad_url_is_422_naming_url(hooks: Hooks, url: str) -> None:
    assert "url" in _fields(hooks.call("POST", json={"url": url}))


def test_an_unknown_event_type_is_422(hooks: Hooks) -> None:
    fields = _fields(hooks.call("POST", json={"url": URL, "event_types": ["case.approved", "case.exploded"]}))
    assert list(fields) == ["event_types.1"]
    assert _fields(hooks.call("POST", json={"url": URL, "event_types": ["ping"]}))  # not subscribable


def test_an_unknown_filter_or_filter_value_is_422(hooks: Hooks) -> None:
    assert "filters.colour" in _fields(hooks.call("POST", json={"url": URL, "filters": {"colour": ["red"]}}))
    assert "filters.statuses.0" in _fields(hooks.call("POST", json={"url": URL, "filters": {"statuses": ["lost"]}}))
    assert "filters.channels" in _fields(hooks.call("POST", json={"url": URL, "filters": {"channels": "email"}}))
    assert "filters.types" in _fields(hooks.call("POST", json={"url": URL, "filters": {"types": []}}))


def test_unknown_fields_and_malformed_bodies(hooks: Hooks) -> None:
    assert "secret" in _fields(hooks.call("POST", json={"url": URL, "secret": "whsec_mine"}))
    assert hooks.call("POST", data="{", content_type="application/json").status_code == 400
    assert hooks.call("POST", data="", content_type="application/json").status_code == 400
    assert "url" in _fields(hooks.call("POST", json={"url": "https://ok.example/\x00"}))
    created = hooks.create()
    assert "enabled" in _fields(hooks.call("PATCH", f"/{created['id']}", json={"enabled": "maybe"}))
    assert "url" in _fields(hooks.call("PATCH", f"/{created['id']}", json={"url": "gopher://x"}))


@pytest.mark.parametrize("url", ["http://127.0.0.1/hook", "http://localhost:8080/hook", "http://10.1.2.3/",
                                 "http://169.254.169.254/latest/meta-data", "http://[::1]/hook",
                                 "http://192.168.0.10/"])
def test_a_private_url_is_refused_unless_allowed(hooks: Hooks, private_urls_refused: None, url: str) -> None:
    response = hooks.call("POST", json={"url": url})
    assert list(_fields(response)) == ["url"]


def test_patching_to_a_private_url_is_refused(app: Flask, hooks: Hooks) -> None:
    created = hooks.create(url="http://127.0.0.1:9/hook")  # allowed in tests
    app.config["REBOUND_ALLOW_PRIVATE_URLS"] = False
    try:
        assert list(_fields(hooks.call("PATCH", f"/{created['id']}", json={"url": "http://10.0.0.7/"}))) == ["url"]
    finally:
        app.config["REBOUND_ALLOW_PRIVATE_URLS"] = True
    assert hooks.call("GET", f"/{created['id']}").json["url"] == "http://127.0.0.1:9/hook"


# ---- scoping ------------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "", None), ("PATCH", "", {"enabled": False}), ("DELETE", "", None),
    ("POST", "/rotate-secret", None), ("POST", "/test", None), ("GET", "/deliveries", None),
])
def test_another_tenants_subscription_is_404(hooks: Hooks, other_hooks: Hooks, method: str, path: str,
                                              body: dict[str, Any] | None) -> None:
    theirs = other_hooks.create()
    response = hooks.call(method, f"/{theirs['id']}{path}", json=body)
    assert response.status_code == 404 and response.json["error"]["code"] == "not_found"
    assert other_hooks.call("GET", f"/{theirs['id']}").json["enabled"] is True
    assert hooks.call("GET").json["items"] == []


@pytest.mark.parametrize("ident", ["abc", "1.5", "-1", "²", "9" * 12])
def test_a_malformed_id_is_404(hooks: Hooks, ident: str) -> None:
    assert hooks.call("GET", f"/{ident}").status_code == 404


# ---- test pings and deliveries ----------------------------------------------------------------

def test_a_test_ping_is_queued_and_listed(hooks: Hooks) -> None:
    created = hooks.create(event_types=["case.closed"])
    response = hooks.call("POST", f"/{created['id']}/test")
    assert response.status_code == 202
    assert response.json["event_type"] == "ping" and response.json["status"] == "pending"
    assert response.json["webhook_id"].startswith("msg_")
    deliveries = hooks.call("GET", f"/{created['id']}/deliveries").json["items"]
    assert [d["id"] for d in deliveries] == [response.json["id"]]
    hooks.call("PATCH", f"/{created['id']}", json={"enabled": False})
    assert hooks.call("POST", f"/{created['id']}/test").status_code == 409


def test_case_events_show_up_as_deliveries(api, hooks: Hooks) -> None:
    created = hooks.create()
    filtered = hooks.create(filters={"channels": ["email"]})
    assert api.post("/orders", json=order_payload()).status_code == 200
    case = api.post("/cases", json=case_payload())
    assert case.status_code == 201
    deliveries = hooks.call("GET", f"/{created['id']}/deliveries").json["items"]
    assert deliveries[-1]["event_type"] == "case.created" and len(deliveries) == 3
    assert all(d["status"] == "pending" and d["attempts"] == 0 and d["last_error"] is None for d in deliveries)
    assert hooks.call("GET", f"/{filtered['id']}/deliveries").json["items"] == []
    assert hooks.call("GET", f"/{created['id']}/deliveries?status=dead").json["items"] == []
    assert "status" in _fields(hooks.call("GET", f"/{created['id']}/deliveries?status=lost"))
    assert "limit" in _fields(hooks.call("GET", f"/{created['id']}/deliveries?limit=0"))


def test_the_outbox_lists_event_messages_beside_ticket_updates(api, hooks: Hooks) -> None:
    """Dead event deliveries are replayed through /outbox like ticket updates, so it must list them."""
    created = hooks.create()
    ping = hooks.call("POST", f"/{created['id']}/test").json
    response = api.get("/outbox")
    assert response.status_code == 200, response.json
    (item,) = response.json["items"]
    assert item["id"] == ping["id"] and item["subscription_id"] == created["id"] and item["integration_id"] is None
    assert item["kind"] == "webhook"
