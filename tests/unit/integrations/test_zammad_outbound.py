"""Zammad write-back (integrations.zammad.ZammadClient) against a fake Zammad.

Shapes asserted are the documented ones (zammad-documentation api/ticket/articles.rst,
index.rst, tags.rst; reference §7.3): articles on ``POST /api/v1/ticket_articles`` (note:
``type: note, internal: true``; reply: ``type: email, internal: false, to, subject``), state and
attributes on ``PUT /api/v1/tickets/{id}``, tags one by one on ``POST /api/v1/tags/add`` and
``DELETE /api/v1/tags/remove`` after ``GET /api/v1/tags?object=Ticket&o_id=…``;
``Authorization: Token token=…``.
"""

from __future__ import annotations

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
from integrations.zammad import ZammadClient

CLIENT = ZammadClient()
CREDS = {"api_token": "zm-token"}
ARTICLES = "/api/v1/ticket_articles"
TICKET = "/api/v1/tickets/42"


def deliver(httpserver: HTTPServer, act):
    return CLIENT.deliver(act, connection(httpserver, **CREDS), session())


def test_registered_with_a_generous_rate_limit() -> None:
    assert get_client("zammad").kind == "zammad"
    assert (CLIENT.rate_limit.requests, CLIENT.rate_limit.per_seconds) == (600, 60.0)


def test_internal_note(httpserver: HTTPServer) -> None:
    httpserver.expect_request(ARTICLES, method="POST").respond_with_json({"id": 301, "type": "note"}, status=201)
    result = deliver(httpserver, action("note", body_text="RMA-123 approved"))
    assert (result.outcome, result.status_code, result.external_id) == ("delivered", 201, "301")
    [request] = sent(httpserver)
    assert request.header("authorization") == "Token token=zm-token"
    assert request.body == {"ticket_id": 42, "body": "RMA-123 approved", "content_type": "text/plain",
                            "type": "note", "internal": True}
    assert_idempotency(sent(httpserver))


def test_email_reply_with_to_and_subject(httpserver: HTTPServer) -> None:
    httpserver.expect_request(TICKET, method="GET").respond_with_json({"id": 42, "title": "Return for order #1001"})
    httpserver.expect_request(ARTICLES, method="POST").respond_with_json({"id": 302}, status=201)
    result = deliver(httpserver, action("reply", body_html="<p>Label attached</p>", recipient_email="maria@example.com"))
    assert (result.outcome, result.external_id, result.requests_made) == ("delivered", "302", 2)
    assert sent(httpserver)[1].body == {
        "ticket_id": 42, "body": "<p>Label attached</p>", "content_type": "text/html", "type": "email",
        "internal": False, "to": "maria@example.com", "subject": "Return for order #1001"}
    assert_idempotency(sent(httpserver))


def test_reply_needs_the_recipient(httpserver: HTTPServer) -> None:
    result = deliver(httpserver, action("reply", body_text="hi"))
    assert (result.outcome, result.requests_made) == ("permanent", 0)


def test_state(httpserver: HTTPServer) -> None:
    httpserver.expect_request(TICKET, method="PUT").respond_with_json({"id": 42, "state_id": 4})
    assert deliver(httpserver, action("status", status="closed")).outcome == "delivered"
    assert sent(httpserver)[0].body == {"state": "closed"}


def test_custom_attributes(httpserver: HTTPServer) -> None:
    httpserver.expect_request(TICKET, method="PUT").respond_with_json({"id": 42})
    assert deliver(httpserver, action("fields", fields={"rma_number": "RMA-123"})).outcome == "delivered"
    assert sent(httpserver)[0].body == {"rma_number": "RMA-123"}


def test_core_attributes_are_not_fields(httpserver: HTTPServer) -> None:
    result = deliver(httpserver, action("fields", fields={"article": "x", "rma": "1"}))
    assert (result.outcome, result.requests_made) == ("permanent", 0)


def test_tags_added_and_removed_one_by_one(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/tags", method="GET").respond_with_json({"tags": ["returns", "VIP"]})
    httpserver.expect_request("/api/v1/tags/add", method="POST").respond_with_json(True, status=201)
    httpserver.expect_request("/api/v1/tags/remove", method="DELETE").respond_with_json(True, status=201)
    result = deliver(httpserver, action("tags", add_tags=("returns", "rma", "rma_open"), remove_tags=("vip", "absent")))
    assert (result.outcome, result.requests_made) == ("delivered", 4)
    calls = [(r.method, r.path, r.query, r.body) for r in sent(httpserver)]
    assert calls == [
        ("GET", "/api/v1/tags", {"object": "Ticket", "o_id": "42"}, None),
        ("POST", "/api/v1/tags/add", {}, {"item": "rma", "object": "Ticket", "o_id": 42}),
        ("POST", "/api/v1/tags/add", {}, {"item": "rma_open", "object": "Ticket", "o_id": 42}),
        ("DELETE", "/api/v1/tags/remove", {}, {"item": "VIP", "object": "Ticket", "o_id": 42}),
    ]
    assert all(r.header("authorization") == "Token token=zm-token" for r in sent(httpserver))
    assert_idempotency(sent(httpserver))


def test_tags_partially_done_then_retried_finish_the_rest(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request("/api/v1/tags", method="GET").respond_with_json({"tags": []})
    httpserver.expect_oneshot_request("/api/v1/tags/add", method="POST").respond_with_json(True, status=201)
    httpserver.expect_oneshot_request("/api/v1/tags/add", method="POST").respond_with_data("", status=500)
    first = deliver(httpserver, action("tags", add_tags=("a", "b")))
    assert (first.outcome, first.requests_made) == ("retry", 3)
    httpserver.expect_oneshot_request("/api/v1/tags", method="GET").respond_with_json({"tags": ["a"]})
    httpserver.expect_oneshot_request("/api/v1/tags/add", method="POST").respond_with_json(True, status=201)
    second = deliver(httpserver, action("tags", add_tags=("a", "b")))
    assert (second.outcome, second.requests_made) == ("delivered", 2)
    assert sent(httpserver)[-1].body["item"] == "b"  # "a" is not added twice


@pytest.mark.parametrize("case", ERROR_CASES)
def test_error_contract(httpserver: HTTPServer, case: str) -> None:
    check_error_case(httpserver, case, lambda conn: CLIENT.deliver(action("note", body_text="x"), conn, session()),
                     "POST", ARTICLES, CREDS)
