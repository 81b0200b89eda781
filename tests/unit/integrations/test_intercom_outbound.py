"""Intercom write-back (integrations.intercom.IntercomClient) against a fake Intercom.

Every request the client sends in these tests is validated with openapi-core against the
official document ``shared/specs/intercom/api.intercom.io.yaml`` (Intercom-OpenAPI 2.16), read
from there at test time; the tests skip with a message only when that file is absent.
"""

from __future__ import annotations

import json

import pytest
from outbound_kit import (  # noqa: F401 - httpserver, outbound_server are fixtures
    ERROR_CASES,
    SpecCheck,
    Sent,
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
from integrations.intercom import IntercomClient

CLIENT = IntercomClient()
CREDS = {"access_token": "ic-token", "admin_id": "991266726"}
CONV = "/conversations/123"
CONVERSATION = {
    "type": "conversation", "id": "123",
    "tags": {"type": "tag.list", "tags": [{"type": "tag", "id": "17", "name": "Returns"},
                                          {"type": "tag", "id": "18", "name": "vip"}]},
}


@pytest.fixture(scope="module")
def spec() -> SpecCheck:
    return SpecCheck("intercom/api.intercom.io.yaml", "https://api.intercom.io")


def deliver(httpserver: HTTPServer, act, creds=None):
    return CLIENT.deliver(act, connection(httpserver, **(creds or CREDS)), session())


def conv(kind: str, **values):
    return action(kind, ticket_id="123", **values)


def assert_headers(requests_sent: list[Sent]) -> None:
    for request in requests_sent:
        assert request.header("authorization") == "Bearer ic-token"
        assert request.header("intercom-version") == "2.16"
    assert_idempotency(requests_sent)


def test_registered_with_a_conservative_rate_limit() -> None:
    assert get_client("intercom").kind == "intercom"
    assert (CLIENT.rate_limit.requests, CLIENT.rate_limit.per_seconds) == (166, 10.0)


@pytest.mark.parametrize(("kind", "message_type"), [("note", "note"), ("reply", "comment")])
def test_note_and_reply(httpserver: HTTPServer, spec: SpecCheck, kind: str, message_type: str) -> None:
    httpserver.expect_request(f"{CONV}/reply", method="POST").respond_with_json({
        "type": "conversation", "id": "123",
        "conversation_parts": {"type": "conversation_part.list", "conversation_parts": [{"id": "1"}, {"id": "9001"}]}})
    result = deliver(httpserver, conv(kind, body_text="RMA-123 approved"))
    assert (result.outcome, result.status_code, result.external_id) == ("delivered", 200, "9001")
    [request] = sent(httpserver)
    assert request.body == {"message_type": message_type, "type": "admin", "admin_id": "991266726",
                            "body": "<p>RMA-123 approved</p>"}
    assert_headers(sent(httpserver))
    spec.assert_valid(sent(httpserver))


def test_author_id_overrides_the_connection_admin(httpserver: HTTPServer, spec: SpecCheck) -> None:
    httpserver.expect_request(f"{CONV}/reply", method="POST").respond_with_json({"id": "123"})
    deliver(httpserver, conv("note", body_text="x", author_id="5"))
    assert sent(httpserver)[0].body["admin_id"] == "5"
    spec.assert_valid(sent(httpserver))


def test_admin_is_required(httpserver: HTTPServer) -> None:
    result = deliver(httpserver, conv("note", body_text="x"), creds={"access_token": "ic-token"})
    assert (result.outcome, result.requests_made) == ("permanent", 0)
    assert "admin_id" in (result.error or "")


@pytest.mark.parametrize(("status", "body"), [
    ("closed", {"message_type": "close", "type": "admin", "admin_id": "991266726"}),
    ("open", {"message_type": "open", "admin_id": "991266726"}),
])
def test_status(httpserver: HTTPServer, spec: SpecCheck, status: str, body: dict) -> None:
    httpserver.expect_request(f"{CONV}/parts", method="POST").respond_with_json({"id": "123", "state": status})
    assert deliver(httpserver, conv("status", status=status)).outcome == "delivered"
    assert sent(httpserver)[0].body == body
    spec.assert_valid(sent(httpserver))


def test_snooze_refused(httpserver: HTTPServer) -> None:
    result = deliver(httpserver, conv("status", status="snoozed"))
    assert (result.outcome, result.requests_made) == ("permanent", 0)


def test_custom_attributes(httpserver: HTTPServer, spec: SpecCheck) -> None:
    httpserver.expect_request(CONV, method="PUT").respond_with_json({"id": "123"})
    assert deliver(httpserver, conv("fields", fields={"rma_number": "RMA-123"})).outcome == "delivered"
    assert sent(httpserver)[0].body == {"custom_attributes": {"rma_number": "RMA-123"}}
    assert_headers(sent(httpserver))
    spec.assert_valid(sent(httpserver))


def test_tags_by_id_attach_missing_detach_present(httpserver: HTTPServer, spec: SpecCheck) -> None:
    httpserver.expect_request(CONV, method="GET").respond_with_json(CONVERSATION)
    httpserver.expect_request("/tags", method="POST").respond_with_json({"type": "tag", "id": "30", "name": "rma"})
    httpserver.expect_request(f"{CONV}/tags", method="POST").respond_with_json({"type": "tag", "id": "30"})
    httpserver.expect_request(f"{CONV}/tags/18", method="DELETE").respond_with_json({"type": "tag", "id": "18"})
    result = deliver(httpserver, conv("tags", add_tags=("returns", "rma"), remove_tags=("VIP", "absent")))
    assert (result.outcome, result.requests_made) == ("delivered", 4)
    assert [(r.method, r.path, r.body) for r in sent(httpserver)] == [
        ("GET", CONV, None),
        ("POST", "/tags", {"name": "rma"}),  # "returns" is already on the conversation
        ("POST", f"{CONV}/tags", {"id": "30", "admin_id": "991266726"}),
        ("DELETE", f"{CONV}/tags/18", {"admin_id": "991266726"}),  # "absent" is not on it: nothing sent
    ]
    assert_headers(sent(httpserver))
    spec.assert_valid(sent(httpserver))


def test_tag_attach_failure_is_safe_to_retry(httpserver: HTTPServer) -> None:
    httpserver.expect_request(CONV, method="GET").respond_with_json(CONVERSATION)
    httpserver.expect_request("/tags", method="POST").respond_with_json({"id": "30", "name": "rma"})
    httpserver.expect_request(f"{CONV}/tags", method="POST").respond_with_data("", status=503)
    result = deliver(httpserver, conv("tags", add_tags=("rma",)))
    assert (result.outcome, result.status_code, result.requests_made) == ("retry", 503, 3)


def test_non_numeric_conversation_id_refused(httpserver: HTTPServer) -> None:
    result = deliver(httpserver, action("fields", ticket_id="abc", fields={"a": "b"}))
    assert (result.outcome, result.requests_made) == ("permanent", 0)


def test_spec_catches_a_wrong_body(spec: SpecCheck) -> None:
    """The validator is not a rubber stamp: a reply without admin_id, an unknown message_type and
    a tag attach without its tag id all fail against the official document."""
    headers = {"authorization": "Bearer x", "intercom-version": "2.16", "content-type": "application/json"}

    def request(method: str, path: str, body: dict) -> Sent:
        raw = json.dumps(body).encode()
        return Sent(method, path, {}, headers, body, raw)

    assert spec.errors(request("POST", f"{CONV}/reply", {"message_type": "note", "type": "admin", "body": "x"}))
    assert spec.errors(request("POST", f"{CONV}/reply",
                               {"message_type": "private", "type": "admin", "admin_id": "1", "body": "x"}))
    assert spec.errors(request("POST", f"{CONV}/tags", {"admin_id": "1"}))
    assert spec.errors(request("POST", f"{CONV}/parts", {"message_type": "snoozed", "admin_id": "1"}))
    assert not spec.errors(request("POST", f"{CONV}/tags", {"id": "30", "admin_id": "1"}))


@pytest.mark.parametrize("case", ERROR_CASES)
def test_error_contract(httpserver: HTTPServer, case: str) -> None:
    check_error_case(httpserver, case, lambda conn: CLIENT.deliver(conv("note", body_text="x"), conn, session()),
                     "POST", f"{CONV}/reply", CREDS)
