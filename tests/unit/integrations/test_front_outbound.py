"""Front write-back (integrations.front.FrontClient) against a fake Front Core API.

Shapes asserted are the documented ones (reference §5.3, dev.frontapp.com): comments on
``POST /conversations/{id}/comments`` ``{"body"}``, replies on ``POST …/messages`` ``{"body"}``,
``PATCH /conversations/{id}`` for ``status``/``status_id``/``custom_fields`` (all custom fields
sent back), tags added/removed by id on ``POST``/``DELETE …/tags`` ``{"tag_ids"}``; Bearer auth.
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
from integrations.front import FrontClient

CLIENT = FrontClient()
CREDS = {"api_token": "front-token"}
CONV = "/conversations/cnv_abc"
CONVERSATION = {
    "id": "cnv_abc", "status": "unassigned",
    "tags": [{"id": "tag_1", "name": "returns"}, {"id": "tag_2", "name": "VIP"}],
    "custom_fields": {"Order number": "1001", "Channel": "web"},
}


def deliver(httpserver: HTTPServer, act):
    return CLIENT.deliver(act, connection(httpserver, **CREDS), session())


def conv_action(kind: str, **values):
    return action(kind, ticket_id="cnv_abc", **values)


def test_registered_with_documented_rate_limit() -> None:
    assert get_client("front").kind == "front"
    assert (CLIENT.rate_limit.requests, CLIENT.rate_limit.per_seconds) == (50, 60.0)


def test_comment(httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"{CONV}/comments", method="POST").respond_with_json({"id": "com_9", "body": "x"}, status=201)
    result = deliver(httpserver, conv_action("note", body_html="<p>RMA-123 <b>approved</b></p>", author_id="tea_5"))
    assert (result.outcome, result.status_code, result.external_id) == ("delivered", 201, "com_9")
    [request] = sent(httpserver)
    assert request.header("authorization") == "Bearer front-token"
    assert request.body == {"body": "RMA-123 approved", "author_id": "tea_5"}
    assert_idempotency(sent(httpserver))


def test_reply(httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"{CONV}/messages", method="POST").respond_with_json(
        {"status": "accepted", "message_uid": "1a2b3c"}, status=202)
    result = deliver(httpserver, conv_action("reply", body_text="Your label is attached."))
    assert (result.outcome, result.status_code, result.external_id) == ("delivered", 202, "1a2b3c")
    assert sent(httpserver)[0].body == {"body": "<p>Your label is attached.</p>", "text": "Your label is attached."}


@pytest.mark.parametrize(("status", "body"), [("archived", {"status": "archived"}), ("sts_7", {"status_id": "sts_7"})])
def test_status(httpserver: HTTPServer, status: str, body: dict) -> None:
    httpserver.expect_request(CONV, method="PATCH").respond_with_data("", status=204)
    result = deliver(httpserver, conv_action("status", status=status))
    assert (result.outcome, result.status_code) == ("delivered", 204)
    assert sent(httpserver)[0].body == body


def test_custom_fields_sent_back_whole(httpserver: HTTPServer) -> None:
    httpserver.expect_request(CONV, method="GET").respond_with_json(CONVERSATION)
    httpserver.expect_request(CONV, method="PATCH").respond_with_data("", status=204)
    result = deliver(httpserver, conv_action("fields", fields={"RMA": "RMA-123", "Channel": "email"}))
    assert (result.outcome, result.requests_made) == ("delivered", 2)
    assert sent(httpserver)[1].body == {"custom_fields": {"Order number": "1001", "Channel": "email", "RMA": "RMA-123"}}


def test_tags_by_id_with_lookup_pagination_and_creation(httpserver: HTTPServer) -> None:
    httpserver.expect_request(CONV, method="GET").respond_with_json(CONVERSATION)
    httpserver.expect_request("/tags", method="GET", query_string="limit=100").respond_with_json({
        "_pagination": {"next": httpserver.url_for("/tags") + "?page_token=p2"},
        "_results": [{"id": "tag_1", "name": "returns"}, {"id": "tag_3", "name": "other"}]})
    httpserver.expect_request("/tags", method="GET", query_string="page_token=p2").respond_with_json({
        "_pagination": {"next": None}, "_results": [{"id": "tag_4", "name": "RMA"}]})
    httpserver.expect_request("/tags", method="POST").respond_with_json({"id": "tag_new", "name": "rma_open"}, status=201)
    httpserver.expect_request(f"{CONV}/tags", method="POST").respond_with_data("", status=204)
    httpserver.expect_request(f"{CONV}/tags", method="DELETE").respond_with_data("", status=204)

    result = deliver(httpserver, conv_action("tags", add_tags=("returns", "rma", "rma_open"),
                                             remove_tags=("vip", "not-there")))
    assert (result.outcome, result.requests_made) == ("delivered", 6)
    calls = [(r.method, r.path, r.body) for r in sent(httpserver)]
    assert calls == [
        ("GET", CONV, None),
        ("GET", "/tags", None),
        ("GET", "/tags", None),  # second page, same host
        ("POST", "/tags", {"name": "rma_open"}),  # unknown to Front: created
        ("POST", f"{CONV}/tags", {"tag_ids": ["tag_4", "tag_new"]}),  # "returns" already on it
        ("DELETE", f"{CONV}/tags", {"tag_ids": ["tag_2"]}),  # "VIP" matched ignoring case
    ]
    assert all(r.header("authorization") == "Bearer front-token" for r in sent(httpserver))
    assert_idempotency(sent(httpserver))


def test_tags_already_as_wanted_only_read(httpserver: HTTPServer) -> None:
    httpserver.expect_request(CONV, method="GET").respond_with_json(CONVERSATION)
    result = deliver(httpserver, conv_action("tags", add_tags=("returns", "tag_2"), remove_tags=("unknown",)))
    assert (result.outcome, result.requests_made) == ("delivered", 1)


def test_pagination_link_to_another_host_is_refused(httpserver: HTTPServer) -> None:
    httpserver.expect_request(CONV, method="GET").respond_with_json(CONVERSATION)
    httpserver.expect_request("/tags", method="GET").respond_with_json({
        "_pagination": {"next": "https://evil.example/tags?page_token=2"}, "_results": []})
    result = deliver(httpserver, conv_action("tags", add_tags=("rma",)))
    assert (result.outcome, result.requests_made) == ("permanent", 2)
    assert "another host" in (result.error or "")


def test_merged_conversation_redirect_is_followed_on_the_same_host(httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"{CONV}/comments", method="POST").respond_with_data(
        "", status=301, headers={"Location": "/conversations/cnv_new/comments"})
    httpserver.expect_request("/conversations/cnv_new/comments", method="POST").respond_with_json({"id": "com_2"}, status=201)
    result = deliver(httpserver, conv_action("note", body_text="x"))
    assert (result.outcome, result.external_id, result.requests_made) == ("delivered", "com_2", 2)
    assert sent(httpserver)[1].header("authorization") == "Bearer front-token"


@pytest.mark.parametrize("case", ERROR_CASES)
def test_error_contract(httpserver: HTTPServer, case: str) -> None:
    check_error_case(httpserver, case, lambda conn: CLIENT.deliver(conv_action("note", body_text="x"), conn, session()),
                     "POST", f"{CONV}/comments", CREDS)
