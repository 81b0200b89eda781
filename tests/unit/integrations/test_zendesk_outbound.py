"""Zendesk write-back (integrations.zendesk.ZendeskClient) against a fake Zendesk on loopback.

Request shapes asserted are the documented ones (reference §1.3, developer.zendesk.com Tickets
and Tags): ``PUT /api/v2/tickets/{id}.json`` with ``{"ticket": {...}}``; tags added with ``PUT``
and removed with ``DELETE`` on ``/api/v2/tickets/{id}/tags.json``; Basic ``{email}/token:{token}``.
"""

from __future__ import annotations

import base64

import pytest
from outbound_kit import (  # noqa: F401 - httpserver, outbound_server are fixtures
    ERROR_CASES,
    action,
    assert_idempotency,
    check_error_case,
    connection,
    httpserver,
    outbound_server,
    sent,
    session,
)
from pytest_httpserver import HTTPServer

from integrations.base import get_client
from integrations.zendesk import ZendeskClient

CLIENT = ZendeskClient()
CREDS = {"api_email": "agent@acme.example", "api_token": "tok123"}
TICKET = "/api/v2/tickets/42.json"
TAGS = "/api/v2/tickets/42/tags.json"
AUTH = "Basic " + base64.b64encode(b"agent@acme.example/token:tok123").decode()


def deliver(httpserver: HTTPServer, act, **creds):
    return CLIENT.deliver(act, connection(httpserver, **(creds or CREDS)), session())


def test_registered_with_documented_rate_limit() -> None:
    assert get_client("zendesk") is not None and get_client("zendesk").kind == "zendesk"
    assert (CLIENT.rate_limit.requests, CLIENT.rate_limit.per_seconds) == (100, 60.0)


def test_note_is_a_private_comment(httpserver: HTTPServer) -> None:
    httpserver.expect_request(TICKET, method="PUT").respond_with_json(
        {"ticket": {"id": 42}, "audit": {"events": [{"type": "Comment", "id": 9001}]}})
    result = deliver(httpserver, action("note", body_text="RMA-123 approved", author_id="77"))
    assert (result.outcome, result.status_code, result.external_id, result.requests_made) == (
        "delivered", 200, "9001", 1)
    [request] = sent(httpserver)
    assert request.header("authorization") == AUTH
    assert request.body == {"ticket": {"comment": {"public": False, "body": "RMA-123 approved", "author_id": 77}}}
    assert_idempotency(sent(httpserver))


def test_reply_is_a_public_comment_with_html(httpserver: HTTPServer) -> None:
    httpserver.expect_request(TICKET, method="PUT").respond_with_json({"ticket": {"id": 42}})
    result = deliver(httpserver, action("reply", body_text="Label attached", body_html="<p>Label <b>attached</b></p>"))
    assert result.outcome == "delivered" and result.external_id is None
    assert sent(httpserver)[0].body == {"ticket": {"comment": {
        "public": True, "html_body": "<p>Label <b>attached</b></p>", "body": "Label attached"}}}


def test_status_and_custom_status(httpserver: HTTPServer) -> None:
    httpserver.expect_request(TICKET, method="PUT").respond_with_json({"ticket": {"id": 42}})
    assert deliver(httpserver, action("status", status="pending")).outcome == "delivered"
    assert deliver(httpserver, action("status", status="360012345678")).outcome == "delivered"
    assert [r.body for r in sent(httpserver)] == [
        {"ticket": {"status": "pending"}}, {"ticket": {"custom_status_id": 360012345678}}]


def test_custom_fields_by_id(httpserver: HTTPServer) -> None:
    httpserver.expect_request(TICKET, method="PUT").respond_with_json({"ticket": {"id": 42}})
    result = deliver(httpserver, action("fields", fields={"360001234567": "RMA-123", "360009": "refund"}))
    assert result.outcome == "delivered"
    assert sent(httpserver)[0].body == {"ticket": {"custom_fields": [
        {"id": 360001234567, "value": "RMA-123"}, {"id": 360009, "value": "refund"}]}}


def test_tags_added_and_removed_without_replacing(httpserver: HTTPServer) -> None:
    httpserver.expect_request(TAGS, method="PUT").respond_with_json({"tags": ["vip", "rma"]})
    httpserver.expect_request(TAGS, method="DELETE").respond_with_json({"tags": ["vip", "rma"]})
    result = deliver(httpserver, action("tags", add_tags=("rma", "rma", " ", "rma_open"),
                                        remove_tags=("rma_open", "rma_pending")))
    assert (result.outcome, result.requests_made) == ("delivered", 2)
    put, delete = sent(httpserver)
    assert (put.method, put.body) == ("PUT", {"tags": ["rma"]})  # de-duplicated; removal wins
    assert (delete.method, delete.body) == ("DELETE", {"tags": ["rma_open", "rma_pending"]})
    assert all(r.header("authorization") == AUTH for r in sent(httpserver))
    assert_idempotency(sent(httpserver))


def test_failed_removal_after_added_tags_is_safe_to_retry(httpserver: HTTPServer) -> None:
    """Add and remove are each idempotent: a retry after the DELETE failed repeats both safely."""
    httpserver.expect_request(TAGS, method="PUT").respond_with_json({"tags": ["rma"]})
    httpserver.expect_request(TAGS, method="DELETE").respond_with_data("busy", status=503)
    result = deliver(httpserver, action("tags", add_tags=("rma",), remove_tags=("old",)))
    assert (result.outcome, result.status_code, result.requests_made) == ("retry", 503, 2)


@pytest.mark.parametrize("bad", [
    action("note"),  # no body
    action("status"),
    action("tags"),
    action("fields"),
    action("note", ticket_id="42/../../users", body_text="x"),
    action("note", ticket_id="{{ticket.id}}", body_text="x"),
])
def test_refused_before_any_call(httpserver: HTTPServer, bad) -> None:
    result = deliver(httpserver, bad)
    assert (result.outcome, result.requests_made, result.status_code) == ("permanent", 0, None)
    assert result.error
    assert sent(httpserver) == []


def test_missing_credentials_refused(httpserver: HTTPServer) -> None:
    result = CLIENT.deliver(action("note", body_text="x"), connection(httpserver, api_email="a@b.c"), session())
    assert result.outcome == "permanent" and "api_token" in (result.error or "")
    assert sent(httpserver) == []


@pytest.mark.parametrize("case", ERROR_CASES)
def test_error_contract(httpserver: HTTPServer, case: str) -> None:
    check_error_case(httpserver, case, lambda conn: CLIENT.deliver(action("note", body_text="x"), conn, session()),
                     "PUT", TICKET, CREDS)
