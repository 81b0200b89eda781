"""Help Scout write-back (integrations.helpscout.HelpScoutClient) against a fake Help Scout.

Shapes asserted are the documented ones (reference §4.3, developer.helpscout.com Mailbox API
2.0): ``POST /v2/conversations/{id}/notes`` ``{"text"}``; ``POST …/reply`` ``{"customer": {"id"},
"text"}`` (201 + ``Resource-ID``); ``PATCH /v2/conversations/{id}`` JSON Patch on ``/status``;
``PUT …/tags`` with the whole list; ``PUT …/fields``; Bearer auth; 429 with
``X-RateLimit-Retry-After``.
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
from integrations.helpscout import HelpScoutClient

CLIENT = HelpScoutClient()
CREDS = {"access_token": "hs-token"}
CONV = "/v2/conversations/42"
CONVERSATION = {
    "id": 42, "status": "active",
    "primaryCustomer": {"id": 238604, "email": "maria@example.com"},
    "tags": [{"id": 1, "tag": "returns", "color": "#929499"}, {"id": 2, "tag": "vip"}],
    "customFields": [{"id": 6688, "name": "Order number", "value": "1001", "text": "1001"},
                     {"id": 6689, "name": "Reason", "value": "3", "text": "Too small"}],
}


def deliver(httpserver: HTTPServer, act):
    return CLIENT.deliver(act, connection(httpserver, **CREDS), session())


def test_registered_with_documented_rate_limit() -> None:
    assert get_client("helpscout").kind == "helpscout"
    assert (CLIENT.rate_limit.requests, CLIENT.rate_limit.per_seconds) == (100, 60.0)


def test_note(httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"{CONV}/notes", method="POST").respond_with_data(
        "", status=201, headers={"Resource-ID": "567"})
    result = deliver(httpserver, action("note", body_text="RMA-123 approved", author_id="11"))
    assert (result.outcome, result.status_code, result.external_id) == ("delivered", 201, "567")
    [request] = sent(httpserver)
    assert request.header("authorization") == "Bearer hs-token"
    assert request.body == {"text": "<p>RMA-123 approved</p>", "user": 11}
    assert_idempotency(sent(httpserver))


def test_reply_to_the_primary_customer(httpserver: HTTPServer) -> None:
    httpserver.expect_request(CONV, method="GET").respond_with_json(CONVERSATION)
    httpserver.expect_request(f"{CONV}/reply", method="POST").respond_with_data(
        "", status=201, headers={"Resource-ID": "568"})
    result = deliver(httpserver, action("reply", body_html="<p>Label attached</p>"))
    assert (result.outcome, result.external_id, result.requests_made) == ("delivered", "568", 2)
    get, post = sent(httpserver)
    assert get.method == "GET"
    assert post.body == {"customer": {"id": 238604}, "text": "<p>Label attached</p>"}
    assert_idempotency(sent(httpserver))


def test_reply_falls_back_to_the_recipient_address(httpserver: HTTPServer) -> None:
    httpserver.expect_request(CONV, method="GET").respond_with_json({"id": 42})
    httpserver.expect_request(f"{CONV}/reply", method="POST").respond_with_data("", status=201)
    result = deliver(httpserver, action("reply", body_text="hi", recipient_email="maria@example.com"))
    assert result.outcome == "delivered"
    assert sent(httpserver)[1].body["customer"] == {"email": "maria@example.com"}


def test_reply_without_any_customer_is_permanent(httpserver: HTTPServer) -> None:
    httpserver.expect_request(CONV, method="GET").respond_with_json({"id": 42})
    result = deliver(httpserver, action("reply", body_text="hi"))
    assert (result.outcome, result.requests_made) == ("permanent", 1)


def test_status_is_a_json_patch(httpserver: HTTPServer) -> None:
    httpserver.expect_request(CONV, method="PATCH").respond_with_data("", status=204)
    result = deliver(httpserver, action("status", status="closed"))
    assert (result.outcome, result.status_code) == ("delivered", 204)
    assert sent(httpserver)[0].body == {"op": "replace", "path": "/status", "value": "closed"}


def test_tags_read_modify_write(httpserver: HTTPServer) -> None:
    httpserver.expect_request(CONV, method="GET").respond_with_json(CONVERSATION)
    httpserver.expect_request(f"{CONV}/tags", method="PUT").respond_with_data("", status=204)
    result = deliver(httpserver, action("tags", add_tags=("rma", "Returns"), remove_tags=("vip",)))
    assert (result.outcome, result.requests_made) == ("delivered", 2)
    # "returns" kept (once), "vip" gone, "rma" added.
    assert sent(httpserver)[1].body == {"tags": ["returns", "rma"]}
    assert all(r.header("authorization") == "Bearer hs-token" for r in sent(httpserver))


def test_tags_unchanged_skip_the_write(httpserver: HTTPServer) -> None:
    httpserver.expect_request(CONV, method="GET").respond_with_json(CONVERSATION)
    result = deliver(httpserver, action("tags", add_tags=("vip",), remove_tags=("gone",)))
    assert (result.outcome, result.requests_made) == ("delivered", 1)


def test_fields_read_modify_write_by_id_and_name(httpserver: HTTPServer) -> None:
    httpserver.expect_request(CONV, method="GET").respond_with_json(CONVERSATION)
    httpserver.expect_request(f"{CONV}/fields", method="PUT").respond_with_data("", status=204)
    result = deliver(httpserver, action("fields", fields={"order number": "1002", "7000": "RMA-123"}))
    assert result.outcome == "delivered"
    assert sent(httpserver)[1].body == {"fields": [
        {"id": 6688, "value": "1002"}, {"id": 6689, "value": "3"}, {"id": 7000, "value": "RMA-123"}]}


def test_unknown_field_name_is_permanent(httpserver: HTTPServer) -> None:
    httpserver.expect_request(CONV, method="GET").respond_with_json(CONVERSATION)
    result = deliver(httpserver, action("fields", fields={"Nope": "x"}))
    assert (result.outcome, result.requests_made) == ("permanent", 1)


def test_rate_limited_write_reads_help_scouts_header(httpserver: HTTPServer) -> None:
    httpserver.expect_request(CONV, method="GET").respond_with_json(CONVERSATION)
    httpserver.expect_request(f"{CONV}/tags", method="PUT").respond_with_data(
        "", status=429, headers={"X-RateLimit-Retry-After": "11"})
    result = deliver(httpserver, action("tags", add_tags=("rma",)))
    assert (result.outcome, result.retry_after, result.requests_made) == ("retry", 11.0, 2)


@pytest.mark.parametrize("case", ERROR_CASES)
def test_error_contract(httpserver: HTTPServer, case: str) -> None:
    check_error_case(httpserver, case, lambda conn: CLIENT.deliver(action("note", body_text="x"), conn, session()),
                     "POST", f"{CONV}/notes", CREDS)
