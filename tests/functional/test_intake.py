"""Intake through the webhook: a return request opens a case or a suggestion; a reply on a linked
ticket lands on the case's timeline and moves it back to review."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from integrations import get_adapter
from tests.factories import order_payload


def _now() -> datetime:
    return datetime.now(timezone.utc)


@pytest.fixture()
def zendesk(api):
    response = api.post("/integrations", json={"kind": "zendesk", "name": "Support"})
    body = response.json
    return body["webhook_url"].rsplit("/", 1)[1], body["signing_secret"], body["id"]


def _trigger_body(ticket_id: str, comment: str, *, subject: str = "Return request", email: str = "maria.lopez@example.com",
                  event: str = "created") -> bytes:
    """Our documented Zendesk trigger body (docs/setup/zendesk.md), as Zendesk renders it."""
    return json.dumps({
        "ticket_id": ticket_id, "subject": subject, "status": "open", "requester_email": email,
        "requester_name": "María López", "tags": "web_widget", "latest_comment": comment, "event": event,
        "ticket_url": f"https://acme.zendesk.com/agent/tickets/{ticket_id}", "locale": "en-US",
        "author_role": "End-user",
    }).encode()


def _send(client, key: str, secret: str, body: bytes, delivery: str):
    headers = get_adapter("zendesk").sign(body, secret, _now(), delivery)
    return client.post(f"/webhooks/{key}", data=body, headers={"Content-Type": "application/json", **headers})


def test_a_clear_return_request_opens_a_linked_case(api, client, zendesk):
    """'I want to return the tent from order #1001' opens a case on that order, linked to the ticket."""
    api.post("/orders", json=order_payload())
    key, secret, _ = zendesk
    body = _trigger_body("4711", "Hi, I'd like to return the tent (TENT-2P) from order #1001, it is too small. Thanks, María")
    response = _send(client, key, secret, body, "inv-1")
    assert response.json["status"] == "processed", response.json
    page = api.get("/cases", query_string={"ticket_id": "4711"}).json["items"]
    assert len(page) == 1
    case = api.get(f"/cases/{page[0]['number']}").json
    assert case["channel"] == "helpdesk"
    assert case["ticket"] == {"provider": "zendesk", "id": "4711", "url": "https://acme.zendesk.com/agent/tickets/4711"}
    assert case["lines"][0]["sku"] == "TENT-2P" and case["lines"][0]["order_number"] == "1001"
    timeline = api.get(f"/cases/{case['number']}/timeline").json["events"]
    assert "message" in [e["action"] for e in timeline]
    event = api.get("/inbound-events").json["items"][0]
    assert event["outcome"]["outcome"] == "case_created" and event["outcome"]["case"] == case["number"]


def test_a_reply_on_a_linked_ticket_goes_to_the_case_and_back_to_review(api, client, zendesk):
    """When the case awaits the customer, their reply is added to the timeline and the case returns to review."""
    api.post("/orders", json=order_payload())
    key, secret, _ = zendesk
    _send(client, key, secret, _trigger_body("4712", "Please refund order #1001, the tent TENT-2P arrived broken."), "inv-2")
    number = api.get("/cases", query_string={"ticket_id": "4712"}).json["items"][0]["number"]
    case = api.get(f"/cases/{number}").json
    if case["status"] != "pending_review":
        api.action(number, "flag")
    api.action(number, "request_info", {"message": "Could you send a photo of the damage?"})
    reply = _trigger_body("4712", "Here is the photo you asked for.", event="updated")
    assert _send(client, key, secret, reply, "inv-3").json["status"] == "processed"
    case = api.get(f"/cases/{number}").json
    assert case["status"] == "pending_review"
    actions = [e["action"] for e in api.get(f"/cases/{number}/timeline").json["events"]]
    assert actions[-2:] == ["message", "customer_replied"]
    assert len(api.get("/cases").json["items"]) == 1, "a reply never opens a second case"


def test_an_unsure_request_becomes_a_suggestion(api, client, zendesk):
    """A return request without a known order is stored as a suggestion for the agent, not a case."""
    key, secret, _ = zendesk
    body = _trigger_body("4713", "Hello, I want to send back the jacket I bought, it doesn't fit. How do I return it?",
                         email="someone.new@example.com")
    assert _send(client, key, secret, body, "inv-4").json["status"] == "processed"
    assert api.get("/cases").json["items"] == []
    suggestions = api.get("/suggestions", query_string={"ticket_id": "4713"}).json["items"]
    assert len(suggestions) == 1
    suggestion = suggestions[0]
    assert suggestion["customer_email"] == "someone.new@example.com"
    assert suggestion["proposal"]["ticket"]["id"] == "4713"
    assert any("order" in why.lower() for why in suggestion["why"])


def test_thresholds_are_a_tenant_setting(api, client, zendesk):
    """With the auto-create threshold above any confidence, even a clear request is only suggested."""
    api.post("/orders", json=order_payload())
    assert api.put("/settings/intake", json={"auto_create_min_confidence": 1.0, "suggest_min_confidence": 0.3}).status_code == 200
    key, secret, _ = zendesk
    _send(client, key, secret, _trigger_body("4714", "I want to return order #1001, TENT-2P is too small."), "inv-5")
    assert api.get("/cases").json["items"] == []
    assert len(api.get("/suggestions").json["items"]) == 1


def test_a_question_that_is_not_a_return_is_ignored(api, client, zendesk):
    """'Where is my parcel?' creates neither a case nor a suggestion."""
    key, secret, _ = zendesk
    _send(client, key, secret, _trigger_body("4715", "Hi, when will my order #1001 ship? Thanks", subject="Shipping"), "inv-6")
    assert api.get("/cases").json["items"] == []
    assert api.get("/suggestions").json["items"] == []
    assert api.get("/inbound-events").json["items"][0]["status"] == "ignored"


def test_zendesk_event_payloads_get_the_requester_from_the_api(api, client, httpserver):
    """An event-subscription payload has no email: Rebound reads the requester through Zendesk's API."""
    api.post("/orders", json=order_payload())
    created = api.post("/integrations", json={
        "kind": "zendesk", "name": "Events", "settings": {"base_url": httpserver.url_for("/").rstrip("/")},
        "credentials": {"api_email": "agent@acme.example", "api_token": "zd-api-token-123"}}).json
    key, secret = created["webhook_url"].rsplit("/", 1)[1], created["signing_secret"]
    httpserver.expect_request("/api/v2/users/9001.json").respond_with_json(
        {"user": {"id": 9001, "email": "Maria.Lopez@example.com", "name": "María López"}})
    body = json.dumps({
        "type": "zen:event-type:ticket.created", "account_id": 88888888, "id": "01HNX-EVENT-1",
        "time": "2026-11-25T10:00:00Z", "zendesk_event_version": "2022-11-06", "subject": "zen:ticket:5001",
        "detail": {"id": "5001", "subject": "Return", "description": "I want to return TENT-2P from order #1001, too small.",
                   "requester_id": "9001", "submitter_id": "9001", "status": "NEW", "tags": [], "via": {"channel": "web"},
                   "created_at": "2026-11-25T10:00:00Z", "updated_at": "2026-11-25T10:00:00Z"},
        "event": {}}).encode()
    assert _send(client, key, secret, body, "inv-7").json["status"] == "processed"
    cases = api.get("/cases", query_string={"ticket_id": "5001"}).json["items"]
    assert len(cases) == 1 and cases[0]["customer_email"] == "maria.lopez@example.com"
