"""Chatwoot write-back (integrations.chatwoot.ChatwootClient) against a fake Chatwoot.

Every request the client sends in these tests is validated with openapi-core against the
official document ``shared/specs/chatwoot/swagger.json`` (chatwoot/chatwoot swagger, OpenAPI
3.1), read from there at test time; the tests skip with a message only when that file is absent.
"""

from __future__ import annotations

import json

import pytest
from outbound_kit import (  # noqa: F401 - httpserver, outbound_server are fixtures
    ERROR_CASES,
    RecordingSession,
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
from integrations.chatwoot import ChatwootClient

CLIENT = ChatwootClient()
CREDS = {"api_access_token": "cw-token", "account_id": "3"}
CONV = "/api/v1/accounts/3/conversations/42"
#: The sessions used by ``deliver``: what the client sent, headers the fake cannot see included.
SESSIONS: list[RecordingSession] = []


@pytest.fixture(scope="module")
def spec() -> SpecCheck:
    return SpecCheck("chatwoot/swagger.json", "https://app.chatwoot.com")


def deliver(httpserver: HTTPServer, act, creds=None):
    SESSIONS.append(RecordingSession())
    return CLIENT.deliver(act, connection(httpserver, **(creds or CREDS)), SESSIONS[-1])


def recorded() -> list[Sent]:
    """What the last ``deliver`` sent, as the client sent it."""
    return SESSIONS[-1].sent()


def assert_headers(requests_sent: list[Sent]) -> None:
    for request in requests_sent:
        assert request.header("api_access_token") == "cw-token"
    assert_idempotency(requests_sent)


def test_the_fake_sees_what_the_client_sent(httpserver: HTTPServer) -> None:
    """Bodies and paths on the fake match the recorded session; only the underscored token
    header is dropped by the server (as nginx does unless ``underscores_in_headers on``)."""
    httpserver.expect_request(f"{CONV}/messages", method="POST").respond_with_json({"id": 1})
    deliver(httpserver, action("note", body_text="x"))
    [on_fake], [as_sent] = sent(httpserver), recorded()
    assert (on_fake.method, on_fake.path, on_fake.body) == (as_sent.method, as_sent.path, as_sent.body)
    assert as_sent.header("api_access_token") == "cw-token" and on_fake.header("api_access_token") is None


def test_registered_with_a_conservative_rate_limit() -> None:
    assert get_client("chatwoot").kind == "chatwoot"
    assert (CLIENT.rate_limit.requests, CLIENT.rate_limit.per_seconds) == (600, 60.0)


@pytest.mark.parametrize(("kind", "private"), [("note", True), ("reply", False)])
def test_note_and_reply(httpserver: HTTPServer, spec: SpecCheck, kind: str, private: bool) -> None:
    httpserver.expect_request(f"{CONV}/messages", method="POST").respond_with_json({"id": 777, "content": "x"})
    result = deliver(httpserver, action(kind, body_html="<p>RMA-123 <b>approved</b></p>"))
    assert (result.outcome, result.status_code, result.external_id) == ("delivered", 200, "777")
    assert sent(httpserver)[0].body == {"content": "RMA-123 approved", "message_type": "outgoing", "private": private}
    assert_headers(recorded())
    spec.assert_valid(recorded())


def test_status(httpserver: HTTPServer, spec: SpecCheck) -> None:
    httpserver.expect_request(f"{CONV}/toggle_status", method="POST").respond_with_json({"payload": {"success": True}})
    assert deliver(httpserver, action("status", status="Resolved")).outcome == "delivered"
    assert sent(httpserver)[0].body == {"status": "resolved"}
    spec.assert_valid(recorded())


def test_unknown_status_refused(httpserver: HTTPServer) -> None:
    result = deliver(httpserver, action("status", status="closed"))
    assert (result.outcome, result.requests_made) == ("permanent", 0)


def test_labels_read_modify_write(httpserver: HTTPServer, spec: SpecCheck) -> None:
    httpserver.expect_request(f"{CONV}/labels", method="GET").respond_with_json({"payload": ["returns", "vip"]})
    httpserver.expect_request(f"{CONV}/labels", method="POST").respond_with_json({"payload": []})
    result = deliver(httpserver, action("tags", add_tags=("rma", "returns"), remove_tags=("vip",)))
    assert (result.outcome, result.requests_made) == ("delivered", 2)
    # Existing kept, removed gone, no duplicate: the POST overwrites, so the whole list is sent.
    assert sent(httpserver)[1].body == {"labels": ["returns", "rma"]}
    assert_headers(recorded())
    spec.assert_valid(recorded())


def test_labels_unchanged_skip_the_write(httpserver: HTTPServer, spec: SpecCheck) -> None:
    httpserver.expect_request(f"{CONV}/labels", method="GET").respond_with_json({"payload": ["rma"]})
    result = deliver(httpserver, action("tags", add_tags=("rma",)))
    assert (result.outcome, result.requests_made) == ("delivered", 1)
    spec.assert_valid(recorded())


def test_custom_attributes_merged_with_current(httpserver: HTTPServer, spec: SpecCheck) -> None:
    httpserver.expect_request(CONV, method="GET").respond_with_json(
        {"id": 42, "custom_attributes": {"order_id": "1001", "channel": "web"}})
    httpserver.expect_request(f"{CONV}/custom_attributes", method="POST").respond_with_json({"custom_attributes": {}})
    result = deliver(httpserver, action("fields", fields={"rma_number": "RMA-123", "channel": "email"}))
    assert (result.outcome, result.requests_made) == ("delivered", 2)
    assert sent(httpserver)[1].body == {"custom_attributes": {"order_id": "1001", "channel": "email",
                                                              "rma_number": "RMA-123"}}
    assert_headers(recorded())
    spec.assert_valid(recorded())


@pytest.mark.parametrize("creds", [{"api_access_token": "t"}, {"api_access_token": "t", "account_id": "acme"}])
def test_account_id_required_and_numeric(httpserver: HTTPServer, creds: dict) -> None:
    result = deliver(httpserver, action("note", body_text="x"), creds=creds)
    assert (result.outcome, result.requests_made) == ("permanent", 0)


def test_spec_catches_a_wrong_body(spec: SpecCheck) -> None:
    """The validator is not a rubber stamp: wrong enum values, a missing required key and a
    missing token all fail against the official document."""
    headers = {"api_access_token": "t", "content-type": "application/json"}

    def request(path: str, body: dict, request_headers: dict = headers) -> Sent:
        return Sent("POST", path, {}, request_headers, body, json.dumps(body).encode())

    assert spec.errors(request(f"{CONV}/messages", {"content": "x", "message_type": "note", "private": True}))
    assert spec.errors(request(f"{CONV}/messages", {"message_type": "outgoing", "private": True}))
    assert spec.errors(request(f"{CONV}/toggle_status", {"status": "closed"}))
    assert spec.errors(request(f"{CONV}/labels", {"tags": ["a"]}))
    assert spec.errors(request(f"{CONV}/labels", {"labels": ["a"]}, {"content-type": "application/json"}))
    assert not spec.errors(request(f"{CONV}/labels", {"labels": ["a"]}))


@pytest.mark.parametrize("case", ERROR_CASES)
def test_error_contract(httpserver: HTTPServer, case: str) -> None:
    check_error_case(httpserver, case, lambda conn: CLIENT.deliver(action("note", body_text="x"), conn, session()),
                     "POST", f"{CONV}/messages", CREDS)
