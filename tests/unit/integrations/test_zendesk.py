"""Unit tests for what only the Zendesk adapter (integrations.zendesk) does: its signature computed
by hand, both payload styles and the requester lookup against a local HTTP server. The contract
all adapters keep is in test_adapter_contract.py. No app, no DB."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import time
from datetime import datetime, timezone
from typing import Any

import pytest
import requests
from helpers import body_hash, inbound, json_values, loader, well_formed_or_none
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from integrations.base import InboundRequest, PayloadError, TicketEvent
from integrations.zendesk import (
    ZendeskAdapter,
    ZendeskAPIError,
    ZendeskAuthError,
    ZendeskNotFoundError,
    ZendeskRateLimitError,
    ZendeskUnavailableError,
    fetch_requester,
)

NOW = datetime(2026, 3, 2, 9, 14, 8, tzinfo=timezone.utc)
SECRET = "dGhpc2lzYXNpZ25pbmdzZWNyZXQ"
adapter = ZendeskAdapter()
load = loader("zendesk")


def request(body: bytes, headers: dict[str, str] | None = None) -> InboundRequest:
    return inbound(body, headers, received_at=NOW)


def zendesk_headers(body: bytes, invocation: str = "8350205582") -> dict[str, str]:
    """The headers computed here with hmac and base64 directly, independently of sign()."""
    stamp = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = hmac.new(SECRET.encode(), stamp.encode() + body, hashlib.sha256).digest()
    return {
        "X-Zendesk-Webhook-Signature": base64.b64encode(digest).decode(),
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
        "X-Zendesk-Webhook-Invocation-Id": invocation,
    }


def parse(name: str) -> TicketEvent:
    return adapter.parse(request(load(name)))


# --- signatures -------------------------------------------------------------------------------


def test_signature_computed_independently_passes() -> None:
    """base64(HMAC-SHA256(secret, timestamp + body)) computed with hmac directly passes."""
    body = load("trigger_created.json")
    adapter.verify(request(body, zendesk_headers(body)), [SECRET], NOW)


def test_sign_matches_the_independent_computation() -> None:
    """sign() and the test's own HMAC agree byte for byte."""
    body = load("ticket_created.json")
    signed = adapter.sign(body, SECRET, NOW, "8350205582")
    expected = zendesk_headers(body)
    for name in expected:
        assert signed[name] == expected[name]


def test_documented_example_signature_format() -> None:
    """The header is standard base64 of a 32-byte digest, as in Zendesk's example header."""
    digest = base64.b64decode(adapter.sign(b"{}", SECRET, NOW, "x")["X-Zendesk-Webhook-Signature"])
    assert len(digest) == 32


# --- delivery keys ----------------------------------------------------------------------------


def test_delivery_key_falls_back_to_event_id_then_body_hash() -> None:
    """Without the header: the event's own id; for a trigger body (no id): the body's hash."""
    created, comment = load("ticket_created.json"), load("comment_added_customer.json")
    assert adapter.delivery_key(request(created)) == "zendesk:event:4f8a2c7e-9b1d-4e3f-a6c5-0d2e8b7f1a93"
    assert adapter.delivery_key(request(created)) != adapter.delivery_key(request(comment))
    trigger = load("trigger_created.json")
    assert adapter.delivery_key(request(trigger)) == body_hash(trigger)
    assert adapter.delivery_key(request(trigger)) != adapter.delivery_key(request(load("trigger_updated.json")))


# --- parsing: the event-subscription schema ---------------------------------------------------


def test_parse_ticket_created_event() -> None:
    """zen:event-type:ticket.created: id, subject, description as message; no address in it."""
    event = parse("ticket_created.json")
    assert event.provider == "zendesk"
    assert event.ticket_id == "35436"
    assert event.event_type == "ticket.created"
    assert event.subject == "Return request for order #1001"
    assert event.message is not None and "order #1001" in event.message and event.message.endswith("Maria Lopez")
    assert event.requester_id == "8447388090494"
    assert event.requester_email is None and event.ticket_url is None
    assert event.author_role == "customer"
    assert event.tags == ("return", "web_widget")
    assert event.occurred_at == datetime(2026, 3, 2, 9, 14, 7, tzinfo=timezone.utc)
    assert event.external_event_id == "4f8a2c7e-9b1d-4e3f-a6c5-0d2e8b7f1a93"


def test_parse_customer_comment_is_a_message() -> None:
    """A public comment by the requester (is_staff false) is a new customer message."""
    event = parse("comment_added_customer.json")
    assert event.event_type == "message.created"
    assert event.author_role == "customer"
    assert event.message == "Here is the photo of the label. The order number is #1001, I bought it on 20 February."
    assert event.message_id == "39572018842771"
    assert event.occurred_at is not None and event.occurred_at.tzinfo is not None
    assert event.occurred_at.replace(microsecond=0) == datetime(2026, 3, 3, 15, 42, 19, tzinfo=timezone.utc)


def test_parse_agent_comment_is_not_a_customer_message() -> None:
    """A staff comment updates the ticket but carries no customer message."""
    event = parse("comment_added_agent.json")
    assert (event.event_type, event.author_role, event.message, event.message_id) == \
        ("ticket.updated", "agent", None, None)


def test_private_comment_is_never_a_message() -> None:
    """An internal note (is_public false) is not a customer message, whoever wrote it."""
    payload = json.loads(load("comment_added_customer.json"))
    payload["event"]["comment"]["is_public"] = False
    event = adapter.parse(request(json.dumps(payload).encode()))
    assert event.event_type == "ticket.updated" and event.message is None


def test_parse_status_change() -> None:
    """Other ticket events are updates without a message; the actor is not the requester."""
    event = parse("status_changed.json")
    assert (event.event_type, event.message, event.author_role) == ("ticket.updated", None, "unknown")
    assert event.ticket_id == "35436"


def test_parse_non_ticket_event_is_other() -> None:
    """A user event is 'other' (intake ignores it)."""
    event = parse("user_created.json")
    assert event.event_type == "other" and event.message is None


def test_ticket_id_from_subject_when_detail_lacks_it() -> None:
    """subject "zen:ticket:<id>" is a second source for the ticket id."""
    payload = json.loads(load("status_changed.json"))
    del payload["detail"]["id"]
    assert adapter.parse(request(json.dumps(payload).encode())).ticket_id == "35436"


def test_missing_ticket_id_names_detail_id() -> None:
    """No detail.id (and no usable subject) is a PayloadError naming detail.id."""
    payload = json.loads(load("ticket_created.json"))
    del payload["detail"]["id"]
    payload["subject"] = "zen:ticket:"
    with pytest.raises(PayloadError) as error:
        adapter.parse(request(json.dumps(payload).encode()))
    assert error.value.field == "detail.id"


# --- parsing: our trigger body ----------------------------------------------------------------


def test_parse_trigger_created() -> None:
    """Our trigger body: every documented field lands in the event."""
    event = parse("trigger_created.json")
    assert event.ticket_id == "35437"
    assert event.event_type == "ticket.created"
    assert event.requester_email == "maria.lopez@example.com"
    assert event.requester_name == "Maria Lopez"
    assert event.requester_id == "8447388090494"
    assert event.subject == "Return order #1001 - wrong size"
    assert event.message == ("Hello, the sneakers from order #1001 are one size too small. "
                             "I'd like to return them.\n\nMaria")
    assert event.author_role == "customer"
    assert event.tags == ("return", "web_widget", "vip")  # {{ticket.tags}} is space-separated
    assert event.ticket_url == "https://acme-outdoor.zendesk.com/agent/tickets/35437"
    assert event.language == "en-US"
    assert event.custom_fields == {"order_number": "1001"}
    assert event.occurred_at == datetime(2026, 3, 2, 9, 20, 11, tzinfo=timezone.utc)


def test_parse_trigger_update_by_customer_is_a_message() -> None:
    """The update trigger (a public comment by the end user) carries a customer message."""
    event = parse("trigger_updated.json")
    assert event.event_type == "message.created" and event.author_role == "customer"
    assert event.message == "Sure, here is my address: 12 Rue de la Paix, Paris."


def test_trigger_update_by_agent_has_no_message() -> None:
    """If the trigger fires for an agent's comment, the agent's words are not taken."""
    payload = json.loads(load("trigger_updated.json")) | {"author_role": "Agent"}
    event = adapter.parse(request(json.dumps(payload).encode()))
    assert (event.event_type, event.author_role, event.message) == ("ticket.updated", "agent", None)


def test_trigger_invocation_id_is_the_external_event_id() -> None:
    """Trigger bodies have no id of their own: the invocation header is used."""
    body = load("trigger_created.json")
    assert adapter.parse(request(body, zendesk_headers(body, invocation="777"))).external_event_id == "777"


def test_ticket_url_without_scheme_gets_https() -> None:
    """{{ticket.url}} renders without a scheme; it is completed, and junk is dropped."""
    payload = json.loads(load("trigger_created.json"))
    assert adapter.parse(request(json.dumps(payload | {"ticket_url": "acme.zendesk.com/agent/tickets/35437"})
                                 .encode())).ticket_url == "https://acme.zendesk.com/agent/tickets/35437"
    assert adapter.parse(request(json.dumps(payload | {"ticket_url": "javascript:alert(1)"})
                                 .encode())).ticket_url is None


@pytest.mark.parametrize("value", [None, "", "   ", "{{ticket.id}}", "12a", True, 3.5, ["1"]])
def test_trigger_without_a_ticket_number_names_ticket_id(value: Any) -> None:
    """A missing, blank, unrendered or non-numeric ticket_id is a PayloadError naming it."""
    payload = json.loads(load("trigger_created.json"))
    payload["ticket_id"] = value
    with pytest.raises(PayloadError) as error:
        adapter.parse(request(json.dumps(payload).encode()))
    assert error.value.field == "ticket_id"


def test_numeric_ticket_id_is_read_as_text() -> None:
    """A JSON number id (a hand-written body without quotes) is accepted."""
    payload = json.loads(load("trigger_created.json")) | {"ticket_id": 35437}
    assert adapter.parse(request(json.dumps(payload).encode())).ticket_id == "35437"


# --- bad and hostile input --------------------------------------------------------------------


def test_odd_tags_and_bidi_subject_do_not_crash() -> None:
    """Tags of every JSON type and a subject of bidi overrides parse (hostile message text: contract)."""
    payload = json.loads(load("ticket_created.json"))
    payload["detail"]["subject"] = "\u202e" * 1000 + "Return"
    payload["detail"]["tags"] = ["a", 1, None, {"x": 1}, "a", " "]
    event = adapter.parse(request(json.dumps(payload).encode()))
    assert event.tags == ("a", "1")


def test_wrongly_typed_fields_are_ignored_not_fatal() -> None:
    """Objects where strings belong are skipped; the event still parses."""
    payload = json.loads(load("comment_added_customer.json"))
    payload["detail"]["subject"] = {"nested": True}
    payload["event"]["comment"] = ["not", "an", "object"]
    payload["time"] = 12
    event = adapter.parse(request(json.dumps(payload).encode()))
    assert event.subject is None and event.message is None
    assert event.occurred_at is not None and event.occurred_at.tzinfo is not None


@settings(max_examples=300, deadline=None)
@given(detail=st.dictionaries(st.sampled_from(["id", "subject", "description", "requester_id", "tags",
                                               "submitter_id", "actor_id", "updated_at"]), json_values()),
       event=json_values(), kind=st.sampled_from(["ticket.created", "ticket.comment_added", "ticket.status_changed",
                                                "user.created", "", "x"]))
def test_fuzz_event_shaped_json_raises_only_payload_error(detail: dict[str, Any], event: Any, kind: str) -> None:
    """Event-shaped JSON with arbitrary values parses or raises PayloadError, nothing else."""
    body = json.dumps({"type": f"zen:event-type:{kind}", "detail": detail, "event": event}).encode()
    parsed = well_formed_or_none(adapter, request(body))
    assert parsed is None or parsed.ticket_id.isdigit()


# --- fetch_requester, against a local server --------------------------------------------------


USER_PATH = "/api/v2/users/8447388090494.json"
AUTH = "Basic " + base64.b64encode(b"agent@acme.test/token:tok-123").decode()


def fetch(httpserver: HTTPServer, **kwargs: Any) -> tuple[str | None, str | None]:
    return fetch_requester(httpserver.url_for("/"), "agent@acme.test", "tok-123", "8447388090494", **kwargs)


def test_fetch_requester_reads_the_user(httpserver: HTTPServer) -> None:
    """GET /api/v2/users/{id}.json with Basic {email}/token:{token} → (email, name)."""
    httpserver.expect_request(USER_PATH, method="GET", headers={"Authorization": AUTH}).respond_with_json(
        {"user": {"id": 8447388090494, "name": "Maria Lopez", "email": "maria.lopez@example.com",
                  "role": "end-user", "locale": "en-US"}})
    assert fetch(httpserver) == ("maria.lopez@example.com", "Maria Lopez")
    httpserver.check_assertions()


def test_fetch_requester_user_without_email(httpserver: HTTPServer) -> None:
    """A user with no address (e.g. a phone-only requester) gives (None, name)."""
    httpserver.expect_request(USER_PATH).respond_with_json({"user": {"id": 1, "name": "Caller", "email": None}})
    assert fetch(httpserver) == (None, "Caller")


def test_fetch_requester_uses_the_given_session(httpserver: HTTPServer) -> None:
    """A caller's Session (pooling, proxies, headers) is the one used."""
    httpserver.expect_request(USER_PATH, headers={"X-Trace": "abc"}).respond_with_json({"user": {"name": "M"}})
    with requests.Session() as session:
        session.headers["X-Trace"] = "abc"
        assert fetch(httpserver, session=session) == (None, "M")


@pytest.mark.parametrize("status, error", [
    (401, ZendeskAuthError), (403, ZendeskAuthError), (404, ZendeskNotFoundError),
    (500, ZendeskUnavailableError), (503, ZendeskUnavailableError), (400, ZendeskAPIError),
    (302, ZendeskAPIError),
])
def test_fetch_requester_http_errors(httpserver: HTTPServer, status: int, error: type[ZendeskAPIError]) -> None:
    """Each failure is an IntegrationError subclass carrying the status, never a requests error."""
    httpserver.expect_request(USER_PATH).respond_with_data("nope", status=status,
                                                           headers={"Location": "https://elsewhere.test/"})
    with pytest.raises(error) as raised:
        fetch(httpserver)
    assert raised.value.status == status


def test_fetch_requester_rate_limited(httpserver: HTTPServer) -> None:
    """429 gives a retryable error with Zendesk's Retry-After."""
    httpserver.expect_request(USER_PATH).respond_with_data("", status=429, headers={"Retry-After": "17"})
    with pytest.raises(ZendeskRateLimitError) as raised:
        fetch(httpserver)
    assert raised.value.retry_after == 17 and raised.value.retryable


@pytest.mark.parametrize("body", ["not json", "[]", '{"users": []}', '{"user": "x"}'])
def test_fetch_requester_unreadable_answer(httpserver: HTTPServer, body: str) -> None:
    """A 200 that is not a user object is a ZendeskAPIError."""
    httpserver.expect_request(USER_PATH).respond_with_data(body, content_type="application/json")
    with pytest.raises(ZendeskAPIError):
        fetch(httpserver)


def test_fetch_requester_timeout(httpserver: HTTPServer) -> None:
    """A server slower than the timeout gives ZendeskUnavailableError."""
    def slow(_: Request) -> Response:
        time.sleep(1.0)
        return Response("{}", content_type="application/json")

    httpserver.expect_request(USER_PATH).respond_with_handler(slow)
    with pytest.raises(ZendeskUnavailableError, match="within"):
        fetch(httpserver, timeout=0.2)


def test_fetch_requester_connection_refused() -> None:
    """Nothing listening gives ZendeskUnavailableError (retryable)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ZendeskUnavailableError) as raised:
        fetch_requester(f"http://127.0.0.1:{port}", "a@b.test", "t", "1", timeout=2)
    assert raised.value.retryable


@pytest.mark.parametrize("requester_id, base_url", [
    ("../admin", "https://acme.zendesk.com"), ("", "https://acme.zendesk.com"), ("1", "file:///etc/passwd"),
])
def test_fetch_requester_refuses_bad_input_without_calling(requester_id: str, base_url: str) -> None:
    """A non-numeric id or a non-HTTP base URL is refused before any request."""
    with pytest.raises(ZendeskAPIError):
        fetch_requester(base_url, "a@b.test", "t", requester_id)
