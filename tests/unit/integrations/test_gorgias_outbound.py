"""Gorgias write-back (integrations.gorgias.GorgiasClient) against a fake Gorgias on loopback.

Shapes asserted are the documented ones (reference §2.3, developers.gorgias.com): messages on
``POST /api/tickets/{id}/messages`` (``channel: internal-note`` for notes; ``from_agent``,
``sender``, ``receiver``, ``via: api``, ``source`` for replies; ``external_id`` ours), status on
``PUT /api/tickets/{id}``, tags with ``{"names"}`` on ``POST``/``DELETE …/tags``, and custom fields
read-modify-written on ``…/custom-fields`` (PUT replaces all values).
"""

from __future__ import annotations

import base64

import pytest
from outbound_kit import (  # noqa: F401 - httpserver, outbound_server are fixtures
    ERROR_CASES,
    KEY,
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
from integrations.gorgias import GorgiasClient

CLIENT = GorgiasClient()
CREDS = {"api_email": "bot@acme.example", "api_key": "key-1", "from_address": "support@acme.example"}
AUTH = "Basic " + base64.b64encode(b"bot@acme.example:key-1").decode()
MESSAGES = "/api/tickets/42/messages"


def deliver(httpserver: HTTPServer, act, creds=None):
    return CLIENT.deliver(act, connection(httpserver, **(creds or CREDS)), session())


def test_registered_with_documented_rate_limit() -> None:
    assert get_client("gorgias").kind == "gorgias"
    assert (CLIENT.rate_limit.requests, CLIENT.rate_limit.per_seconds) == (40, 20.0)


def test_internal_note(httpserver: HTTPServer) -> None:
    httpserver.expect_request(MESSAGES, method="POST").respond_with_json({"id": 555, "channel": "internal-note"}, status=201)
    result = deliver(httpserver, action("note", body_text="RMA-123 approved.\nLabel sent."))
    assert (result.outcome, result.status_code, result.external_id) == ("delivered", 201, "555")
    [request] = sent(httpserver)
    assert request.header("authorization") == AUTH
    assert request.body == {
        "from_agent": True, "via": "api", "sender": {"email": "bot@acme.example"},
        "body_text": "RMA-123 approved.\nLabel sent.", "body_html": "<p>RMA-123 approved.<br>Label sent.</p>",
        "external_id": KEY, "channel": "internal-note", "source": {"type": "internal-note"},
    }
    assert "receiver" not in request.body
    assert_idempotency(sent(httpserver))


def test_public_reply_with_agent_sender_and_customer_receiver(httpserver: HTTPServer) -> None:
    httpserver.expect_request(MESSAGES, method="POST").respond_with_json({"id": 556}, status=201)
    result = deliver(httpserver, action("reply", body_html="<p>Your label</p>", recipient_email="maria@example.com",
                                        author_id="12"))
    assert (result.outcome, result.external_id) == ("delivered", "556")
    body = sent(httpserver)[0].body
    assert body["from_agent"] is True and body["via"] == "api" and body["channel"] == "email"
    assert body["sender"] == {"id": 12}
    assert body["receiver"] == {"email": "maria@example.com"}
    assert body["source"] == {"type": "email", "from": {"address": "support@acme.example"},
                              "to": [{"address": "maria@example.com"}]}
    assert (body["body_html"], body["body_text"], body["external_id"]) == ("<p>Your label</p>", "Your label", KEY)


def test_reply_needs_the_customer(httpserver: HTTPServer) -> None:
    result = deliver(httpserver, action("reply", body_text="hi"))
    assert (result.outcome, result.requests_made) == ("permanent", 0)
    assert "recipient_email" in (result.error or "")


def test_long_idempotency_key_is_hashed_into_external_id(httpserver: HTTPServer) -> None:
    httpserver.expect_request(MESSAGES, method="POST").respond_with_json({"id": 1}, status=201)
    deliver(httpserver, action("note", body_text="x", idempotency_key="k" * 300))
    external = sent(httpserver)[0].body["external_id"]
    assert external.startswith("sha256:") and len(external) <= 255


def test_status(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/tickets/42", method="PUT").respond_with_json({"id": 42, "status": "closed"})
    assert deliver(httpserver, action("status", status="closed")).outcome == "delivered"
    assert sent(httpserver)[0].body == {"status": "closed"}


def test_tags_add_and_remove_by_name(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/tickets/42/tags", method="POST").respond_with_data("", status=201)
    httpserver.expect_request("/api/tickets/42/tags", method="DELETE").respond_with_data("", status=204)
    result = deliver(httpserver, action("tags", add_tags=("rma", "RMA", "refund"), remove_tags=("refund", "new")))
    assert (result.outcome, result.requests_made, result.status_code) == ("delivered", 2, 204)
    post, delete = sent(httpserver)
    assert (post.method, post.body) == ("POST", {"names": ["rma"]})
    assert (delete.method, delete.body) == ("DELETE", {"names": ["refund", "new"]})
    assert_idempotency(sent(httpserver))


def test_custom_fields_read_modify_write(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/tickets/42/custom-fields", method="GET").respond_with_json([
        {"field": {"id": 1, "label": "Order"}, "value": "1001"},
        {"field": {"id": 2, "label": "Reason"}, "value": "too small"},
        {"field": {"id": 4, "label": "Empty"}, "value": None},
    ])
    httpserver.expect_request("/api/tickets/42/custom-fields", method="PUT").respond_with_json([])
    result = deliver(httpserver, action("fields", fields={"2": "wrong size", "3": "RMA-123"}))
    assert (result.outcome, result.requests_made) == ("delivered", 2)
    get, put = sent(httpserver)
    assert get.method == "GET" and put.method == "PUT"
    # Existing values kept, ours changed or added: nothing is deleted by the replace-all PUT.
    assert put.body == [{"id": 1, "value": "1001"}, {"id": 2, "value": "wrong size"}, {"id": 3, "value": "RMA-123"}]


def test_custom_fields_unchanged_skip_the_write(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/tickets/42/custom-fields", method="GET").respond_with_json(
        {"data": [{"field": {"id": 3}, "value": "RMA-123"}]})
    result = deliver(httpserver, action("fields", fields={"3": "RMA-123"}))
    assert (result.outcome, result.requests_made) == ("delivered", 1)


def test_custom_field_names_refused(httpserver: HTTPServer) -> None:
    result = deliver(httpserver, action("fields", fields={"Order number": "1001"}))
    assert (result.outcome, result.requests_made) == ("permanent", 0)


def test_failed_write_after_read_is_safe_to_retry(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/tickets/42/custom-fields", method="GET").respond_with_json([])
    httpserver.expect_request("/api/tickets/42/custom-fields", method="PUT").respond_with_data(
        "", status=429, headers={"Retry-after": "3"})
    result = deliver(httpserver, action("fields", fields={"3": "RMA-123"}))
    assert (result.outcome, result.retry_after, result.requests_made) == ("retry", 3.0, 2)


@pytest.mark.parametrize("case", ERROR_CASES)
def test_error_contract(httpserver: HTTPServer, case: str) -> None:
    check_error_case(httpserver, case, lambda conn: CLIENT.deliver(action("note", body_text="x"), conn, session()),
                     "POST", MESSAGES, CREDS)
