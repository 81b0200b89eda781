"""Unit tests for what only the Gorgias adapter (integrations.gorgias) does: the shared secret as a
header or a Basic auth password, our form and the Gorgias Ticket object. The contract all adapters
keep is in test_adapter_contract.py. No app, no DB."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from typing import Any

import pytest
from helpers import basic, body_hash, inbound, json_values, loader, payload_error_field, well_formed_or_none
from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.base import InboundRequest, SignatureError, TicketEvent
from integrations.gorgias import GorgiasAdapter

NOW = datetime(2026, 3, 2, 9, 14, 8, tzinfo=timezone.utc)
SECRET = "gorgias-shared-secret-current"
OLD_SECRET = "gorgias-shared-secret-previous"
adapter = GorgiasAdapter()
load = loader("gorgias")


def request(body: bytes, headers: dict[str, str] | None = None) -> InboundRequest:
    return inbound(body, headers, received_at=NOW)


def parse(name: str) -> TicketEvent:
    return adapter.parse(request(load(name)))


def with_changes(name: str, **changes: Any) -> bytes:
    return json.dumps(json.loads(load(name)) | changes).encode()


# --- the shared secret ------------------------------------------------------------------------


def test_sign_sends_the_secret_itself() -> None:
    """sign() puts the shared secret, unchanged, in X-Rebound-Secret (Gorgias signs nothing)."""
    assert adapter.sign(load("form_ticket_created.json"), SECRET, NOW, "unused")["X-Rebound-Secret"] == SECRET


def test_secret_header_written_by_hand_passes() -> None:
    """The header as an admin types it into Gorgias passes."""
    adapter.verify(request(load("form_ticket_created.json"), {"X-Rebound-Secret": SECRET}), [SECRET], NOW)


@pytest.mark.parametrize("username", ["rebound", "", "admin@acme.test"])  # RFC 7617: no ":" in it
def test_basic_auth_password_is_the_secret(username: str) -> None:
    """Basic auth with the secret as password passes, whatever the username."""
    adapter.verify(request(load("form_ticket_created.json"), basic(username, SECRET)), [SECRET], NOW)


def test_wrong_basic_password_is_refused() -> None:
    """A wrong password raises SignatureError, even with the secret as username (a wrong header: contract)."""
    body = load("form_ticket_created.json")
    for headers in (basic("rebound", "guess"), basic(SECRET, "guess")):
        with pytest.raises(SignatureError, match="does not match"):
            adapter.verify(request(body, headers), [SECRET], NOW)


@pytest.mark.parametrize("headers", [  # no header at all: contract
    {"X-Rebound-Secret": "  "}, {"Authorization": "Bearer " + SECRET}, {"Authorization": "Basic !!!"},
    {"Authorization": "Basic " + base64.b64encode(SECRET.encode()).decode()},  # no colon, no password
    {"Authorization": "Basic " + base64.b64encode(b"user:").decode()},
])
def test_missing_secret_is_refused(headers: dict[str, str]) -> None:
    """A blank header and no usable Basic password: refused as missing."""
    with pytest.raises(SignatureError, match="Missing"):
        adapter.verify(request(load("form_ticket_created.json"), headers), [SECRET], NOW)


def test_a_prefix_of_the_secret_is_refused() -> None:
    """Comparison is of the whole secret, not a prefix."""
    with pytest.raises(SignatureError):
        adapter.verify(request(b"{}", {"X-Rebound-Secret": SECRET[:-1]}), [SECRET], NOW)


def test_rotated_out_secret_still_passes_as_basic_password() -> None:
    """The previous secret passes as the password too while it is still in the list."""
    adapter.verify(request(load("form_ticket_created.json"), basic("x", OLD_SECRET)), [SECRET, OLD_SECRET], NOW)


def test_one_right_credential_is_enough() -> None:
    """A stale header next to a right Basic password passes (an admin mid-migration)."""
    headers = {"X-Rebound-Secret": "stale"} | basic("x", SECRET)
    adapter.verify(request(b"{}", headers), [SECRET], NOW)


def test_non_ascii_secret() -> None:
    """Secrets are compared as UTF-8."""
    adapter.verify(request(b"{}", {"X-Rebound-Secret": "clé-secrète"}), ["clé-secrète"], NOW)


# --- delivery keys ----------------------------------------------------------------------------


def test_delivery_key_is_the_body_hash() -> None:
    """Gorgias has no delivery id: a retry (same body) has the same key, another body another."""
    body = load("form_ticket_created.json")
    key = adapter.delivery_key(request(body, {"X-Rebound-Secret": SECRET}))
    assert key == body_hash(body)
    assert key == adapter.delivery_key(request(body, {"User-Agent": "retry"}))
    assert key != adapter.delivery_key(request(load("form_message_created.json")))


# --- parsing: our form ------------------------------------------------------------------------


def test_parse_form_ticket_created() -> None:
    """Our form on ticket-created: every field lands in the event."""
    event = parse("form_ticket_created.json")
    assert event.provider == "gorgias"
    assert event.ticket_id == "48213907"
    assert event.event_type == "ticket.created"
    assert event.ticket_url == "https://acme-outdoor.gorgias.com/app/ticket/48213907"
    assert event.requester_email == "maria.lopez@example.com"
    assert event.requester_name == "Maria Lopez"
    assert event.requester_id == "3924"
    assert event.subject == "Return request - order #1001"
    assert event.message is not None and event.message.startswith("Hi, I received order #1001 last week.")
    assert event.message_id == "112233445"
    assert event.author_role == "customer"
    assert event.language == "en"
    assert event.custom_fields == {"channel": "email"}
    # Gorgias writes UTC without an offset; it is read as UTC.
    assert event.occurred_at == datetime(2026, 3, 2, 9, 14, 5, 120331, tzinfo=timezone.utc)


def test_parse_form_customer_message() -> None:
    """ticket-message-created with a customer's message is a new customer message."""
    event = parse("form_message_created.json")
    assert (event.event_type, event.author_role) == ("message.created", "customer")
    assert event.message == "I can drop it at the post office tomorrow. Do I need to print a label?"
    assert event.message_id == "112233999"
    assert event.occurred_at == datetime(2026, 3, 3, 11, 2, 47, 581204, tzinfo=timezone.utc)


def test_parse_form_agent_reply() -> None:
    """An agent's reply ("True" as Gorgias renders it) updates the ticket, with no message."""
    event = parse("form_agent_reply.json")
    assert (event.event_type, event.author_role, event.message) == ("ticket.updated", "agent", None)


def test_form_tags_comma_separated() -> None:
    """A tags value in the form is read as comma-separated names."""
    assert adapter.parse(request(with_changes("form_ticket_created.json", tags="returns, vip,,returns"))).tags == \
        ("returns", "vip")


def test_form_without_from_agent_keeps_the_message() -> None:
    """A form that leaves out message_from_agent still gets its message read (role unknown)."""
    payload = json.loads(load("form_message_created.json"))
    del payload["message_from_agent"]
    event = adapter.parse(request(json.dumps(payload).encode()))
    assert event.event_type == "message.created" and event.author_role == "unknown"
    assert event.message == "I can drop it at the post office tomorrow. Do I need to print a label?"


@pytest.mark.parametrize("value", ["", "   ", "{{ticket.id}}", "48213907x", False, {"id": 1}])  # null: contract
def test_form_without_ticket_number_names_ticket_id(value: Any) -> None:
    """A blank, unrendered or non-numeric ticket_id is a PayloadError naming it."""
    assert payload_error_field(adapter, request(with_changes("form_ticket_created.json", ticket_id=value))) == \
        "ticket_id"


# --- parsing: the Ticket object ---------------------------------------------------------------


def test_parse_ticket_object_bare() -> None:
    """A bare Ticket object: the last message not from an agent, tags by name, customer."""
    event = parse("ticket_object.json")
    assert event.ticket_id == "48213907"
    assert event.event_type == "message.created"  # no event named: the last message is the customer's
    assert event.message == "A refund please.\n\nMaria"
    assert event.message_id == "112233999"
    assert event.author_role == "customer"
    assert event.requester_email == "maria.lopez@example.com"
    assert event.requester_name == "Maria Lopez"
    assert event.tags == ("returns", "vip")
    assert event.language == "en"
    assert event.ticket_url is None  # the object only has its API uri
    assert event.occurred_at == datetime(2026, 3, 2, 12, 30, 9, 300000, tzinfo=timezone.utc)


@pytest.mark.parametrize("event_name, expected_type, has_message", [
    ("ticket-created", "ticket.created", True),
    ("ticket_created", "ticket.created", True),  # the older API's spelling
    ("ticket-message-created", "message.created", True),
    ("ticket-updated", "ticket.updated", False),
    ("ticket-self-unsnoozed", "other", False),
])
def test_ticket_object_under_ticket_with_event(event_name: str, expected_type: str, has_message: bool) -> None:
    """{"event": …, "ticket": {…}}: the event names the type; only new messages are carried."""
    body = json.dumps({"event": event_name, "ticket": json.loads(load("ticket_object.json"))}).encode()
    event = adapter.parse(request(body))
    assert event.event_type == expected_type
    assert (event.message is not None) == has_message


def test_ticket_object_agent_last_is_an_update() -> None:
    """When the last message is the agent's, the event is an agent update without a message."""
    ticket = json.loads(load("ticket_object.json"))
    ticket["messages"] = ticket["messages"][:2]
    event = adapter.parse(request(json.dumps({"event": "ticket-message-created", "ticket": ticket}).encode()))
    assert (event.event_type, event.author_role, event.message) == ("ticket.updated", "agent", None)


def test_ticket_object_html_only_message() -> None:
    """A message with only body_html is converted to text."""
    ticket = json.loads(load("ticket_object.json"))
    ticket["messages"][-1]["body_text"] = None
    ticket["messages"][-1]["body_html"] = "<p>A refund<br>please</p>"
    assert adapter.parse(request(json.dumps(ticket).encode())).message == "A refund\nplease"


def test_ticket_object_without_id_names_ticket_id() -> None:
    """A Ticket object without id is a PayloadError naming ticket.id."""
    ticket = json.loads(load("ticket_object.json"))
    del ticket["id"]
    for body in (ticket, {"event": "ticket-created", "ticket": ticket}):
        assert payload_error_field(adapter, request(json.dumps(body).encode())) == "ticket.id"


# --- bad and hostile input --------------------------------------------------------------------


def test_hostile_and_huge_ticket_object_does_not_crash() -> None:
    """In a Ticket object too: megabytes of text, NULs, lone surrogates and odd types are handled."""
    ticket = json.loads(load("ticket_object.json"))
    ticket["messages"][-1]["body_text"] = "\x00\ud800<b>" + "please return #1001 " * 60_000
    ticket["messages"].insert(0, "not a message")
    ticket["tags"] = [{"name": "a"}, {"name": 5}, {"name": None}, "b", None, [], {"name": "a"}]
    ticket["customer"] = ["not", "an", "object"]
    ticket["created_datetime"] = "31/12/2026"
    event = adapter.parse(request(json.dumps(ticket).encode()))
    assert event.message is not None and len(event.message) > 1_000_000 and "\x00" not in event.message
    event.message.encode("utf-8")
    assert event.tags == ("a", "5", "b")
    assert event.requester_email is None


@settings(max_examples=300, deadline=None)
@given(payload=st.dictionaries(
    st.sampled_from(["event", "ticket_id", "message", "message_from_agent", "customer_email", "tags", "ticket",
                     "id", "messages", "customer", "created_datetime", "updated_datetime", "from_agent"]),
    json_values()))
def test_fuzz_ticket_shaped_json_raises_only_payload_error(payload: dict[str, Any]) -> None:
    """Form- or ticket-shaped JSON with arbitrary values parses or raises PayloadError, nothing else."""
    parsed = well_formed_or_none(adapter, request(json.dumps(payload).encode()))
    assert parsed is None or parsed.ticket_id.isdigit()
