"""Freshdesk write-back (integrations.freshdesk.FreshdeskClient) against a fake Freshdesk.

Shapes asserted are the documented ones (reference §3.3): ``POST /api/v2/tickets/{id}/notes``
``{"body", "private": true}``, ``POST …/reply`` ``{"body"}``, ``PUT /api/v2/tickets/{id}`` with
``status`` (2-5) or ``custom_fields``, and tags read-modify-written (``tags`` replaces the list);
Basic auth ``api_key:X``.
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
from integrations.freshdesk import FreshdeskClient

CLIENT = FreshdeskClient()
CREDS = {"api_key": "fd-key"}
AUTH = "Basic " + base64.b64encode(b"fd-key:X").decode()
TICKET = "/api/v2/tickets/42"


def deliver(httpserver: HTTPServer, act):
    return CLIENT.deliver(act, connection(httpserver, **CREDS), session())


def test_registered_with_documented_rate_limit() -> None:
    assert get_client("freshdesk").kind == "freshdesk"
    assert (CLIENT.rate_limit.requests, CLIENT.rate_limit.per_seconds) == (80, 60.0)


def test_private_note(httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"{TICKET}/notes", method="POST").respond_with_json({"id": 7001, "private": True}, status=201)
    result = deliver(httpserver, action("note", body_text="Refund <approved> & sent", author_id="9"))
    assert (result.outcome, result.status_code, result.external_id) == ("delivered", 201, "7001")
    [request] = sent(httpserver)
    assert request.header("authorization") == AUTH
    assert request.body == {"body": "<p>Refund &lt;approved&gt; &amp; sent</p>", "private": True, "user_id": 9}
    assert_idempotency(sent(httpserver))


def test_public_reply(httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"{TICKET}/reply", method="POST").respond_with_json({"id": 7002}, status=201)
    result = deliver(httpserver, action("reply", body_html="<div>Your label is attached.</div>"))
    assert (result.outcome, result.external_id) == ("delivered", "7002")
    assert sent(httpserver)[0].body == {"body": "<div>Your label is attached.</div>"}


@pytest.mark.parametrize(("given", "sent_status"), [("4", 4), ("resolved", 4), ("Pending", 3), ("12", 12)])
def test_status(httpserver: HTTPServer, given: str, sent_status: int) -> None:
    httpserver.expect_request(TICKET, method="PUT").respond_with_json({"id": 42})
    assert deliver(httpserver, action("status", status=given)).outcome == "delivered"
    assert sent(httpserver)[0].body == {"status": sent_status}


def test_unknown_status_refused(httpserver: HTTPServer) -> None:
    result = deliver(httpserver, action("status", status="archived"))
    assert (result.outcome, result.requests_made) == ("permanent", 0)


def test_custom_fields(httpserver: HTTPServer) -> None:
    httpserver.expect_request(TICKET, method="PUT").respond_with_json({"id": 42})
    assert deliver(httpserver, action("fields", fields={"cf_rma_number": "RMA-123"})).outcome == "delivered"
    assert sent(httpserver)[0].body == {"custom_fields": {"cf_rma_number": "RMA-123"}}


def test_tags_read_modify_write(httpserver: HTTPServer) -> None:
    httpserver.expect_request(TICKET, method="GET").respond_with_json({"id": 42, "tags": ["returns", "web", "rma"]})
    httpserver.expect_request(TICKET, method="PUT").respond_with_json({"id": 42})
    result = deliver(httpserver, action("tags", add_tags=("rma", "RMA_open"), remove_tags=("web",)))
    assert (result.outcome, result.requests_made) == ("delivered", 2)
    get, put = sent(httpserver)
    assert (get.method, put.method) == ("GET", "PUT")
    # Existing tags kept, the removed one gone, no duplicate of "rma".
    assert put.body == {"tags": ["returns", "rma", "RMA_open"]}
    assert all(r.header("authorization") == AUTH for r in sent(httpserver))
    assert_idempotency(sent(httpserver))


def test_tags_already_as_wanted_skip_the_write(httpserver: HTTPServer) -> None:
    httpserver.expect_request(TICKET, method="GET").respond_with_json({"id": 42, "tags": ["rma"]})
    result = deliver(httpserver, action("tags", add_tags=("rma",), remove_tags=("web",)))
    assert (result.outcome, result.requests_made) == ("delivered", 1)


def test_tags_retry_recomputes_from_current_state(httpserver: HTTPServer) -> None:
    """A retry after a failed PUT reads the tags again, so it never re-adds a removed tag."""
    httpserver.expect_oneshot_request(TICKET, method="GET").respond_with_json({"tags": ["web"]})
    httpserver.expect_oneshot_request(TICKET, method="PUT").respond_with_data("", status=502)
    first = deliver(httpserver, action("tags", add_tags=("rma",)))
    assert (first.outcome, first.requests_made) == ("retry", 2)
    httpserver.expect_oneshot_request(TICKET, method="GET").respond_with_json({"tags": ["web", "rma", "agent-tag"]})
    httpserver.expect_oneshot_request(TICKET, method="PUT").respond_with_json({"id": 42})
    second = deliver(httpserver, action("tags", add_tags=("rma",), remove_tags=("web",)))
    assert second.outcome == "delivered"
    assert sent(httpserver)[-1].body == {"tags": ["rma", "agent-tag"]}


def test_tag_read_that_is_not_json_is_permanent(httpserver: HTTPServer) -> None:
    httpserver.expect_request(TICKET, method="GET").respond_with_data("<html>login</html>", status=200)
    result = deliver(httpserver, action("tags", add_tags=("rma",)))
    assert (result.outcome, result.status_code, result.requests_made) == ("permanent", 200, 1)
    assert "not JSON" in (result.error or "")


@pytest.mark.parametrize("case", ERROR_CASES)
def test_error_contract(httpserver: HTTPServer, case: str) -> None:
    check_error_case(httpserver, case, lambda conn: CLIENT.deliver(action("note", body_text="x"), conn, session()),
                     "POST", f"{TICKET}/notes", CREDS)
