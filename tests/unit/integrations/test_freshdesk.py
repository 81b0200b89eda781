"""Unit tests for what only the Freshdesk adapter (integrations.freshdesk) does: the shared secret as
a custom header or the rule's Basic auth, and our automation-rule template. The contract all
adapters keep is in test_adapter_contract.py. No app, no DB."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest
from helpers import basic, body_hash, inbound, json_values, loader, payload_error_field, well_formed_or_none
from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.base import InboundRequest, SignatureError, TicketEvent
from integrations.freshdesk import FreshdeskAdapter

NOW = datetime(2026, 3, 2, 9, 14, 8, tzinfo=timezone.utc)
SECRET = "freshdesk-shared-secret-current"
adapter = FreshdeskAdapter()
load = loader("freshdesk")


def request(body: bytes, headers: dict[str, str] | None = None, received_at: datetime | None = NOW) -> InboundRequest:
    return inbound(body, headers, received_at=received_at)


def parse(name: str) -> TicketEvent:
    return adapter.parse(request(load(name)))


def with_ticket(name: str, **changes: Any) -> bytes:
    payload = json.loads(load(name))
    payload["ticket"] |= changes
    return json.dumps(payload).encode()


# --- the shared secret ------------------------------------------------------------------------


def test_sign_sends_the_secret_itself() -> None:
    """sign() puts the shared secret, unchanged, in X-Rebound-Secret (Freshdesk signs nothing)."""
    assert adapter.sign(load("ticket_created.json"), SECRET, NOW, "unused")["X-Rebound-Secret"] == SECRET


def test_custom_header_written_by_hand_passes() -> None:
    """The custom header as an admin adds it to the rule passes (header names are case-free)."""
    adapter.verify(request(load("ticket_created.json"), {"x-rebound-secret": SECRET}), [SECRET], NOW)


def test_rule_basic_auth_passes() -> None:
    """The rule's username/password authentication, with the secret as password, passes."""
    adapter.verify(request(load("ticket_created.json"), basic("rebound", SECRET)), [SECRET], NOW)


def test_wrong_basic_password_is_refused() -> None:
    """A wrong password raises SignatureError (a wrong header: contract)."""
    with pytest.raises(SignatureError, match="does not match"):
        adapter.verify(request(load("ticket_created.json"), basic("rebound", "guess")), [SECRET], NOW)


@pytest.mark.parametrize("headers", [{"X-Rebound-Secret": ""}, {"Authorization": "Basic Og=="}])  # none: contract
def test_missing_secret_is_refused(headers: dict[str, str]) -> None:
    """An empty header and a Basic password that is empty: refused as missing."""
    with pytest.raises(SignatureError, match="Missing"):
        adapter.verify(request(load("ticket_created.json"), headers), [SECRET], NOW)


# --- delivery keys ----------------------------------------------------------------------------


def test_delivery_key_is_the_body_hash() -> None:
    """Freshdesk has no delivery id: a retry (same body) has the same key, another body another."""
    body = load("ticket_created.json")
    key = adapter.delivery_key(request(body))
    assert key == body_hash(body)
    assert key == adapter.delivery_key(request(body, {"X-Rebound-Secret": SECRET}, received_at=None))
    assert key != adapter.delivery_key(request(load("customer_reply.json")))


# --- parsing ----------------------------------------------------------------------------------


def test_parse_ticket_created() -> None:
    """The creation rule: the description (HTML) becomes the message as plain text."""
    event = parse("ticket_created.json")
    assert event.provider == "freshdesk"
    assert event.ticket_id == "1287"
    assert event.event_type == "ticket.created"
    assert event.ticket_url == "https://acme-outdoor.freshdesk.com/helpdesk/tickets/1287"
    assert event.requester_email == "maria.lopez@example.com"
    assert event.requester_name == "Maria Lopez"
    assert event.subject == "Return - order #1001"
    assert event.message == ("Hello,\n\nI'd like to return the trail backpack from order #1001, the zipper broke "
                             "after two days. Could you send me a return label?\n\nBest regards,\nMaria Lopez")
    assert event.author_role == "unknown"  # an agent can open a ticket too
    assert event.tags == ("returns", "web")
    assert event.custom_fields == {"order_number": "1001"}
    assert event.occurred_at == NOW  # no time placeholder: the time it was received


def test_parse_customer_reply() -> None:
    """The reply rule (performed by the requester): the latest public comment is the message."""
    event = parse("customer_reply.json")
    assert (event.event_type, event.author_role) == ("message.created", "customer")
    assert event.message is not None
    assert event.message.startswith("Thank you! I will send it back on Friday.\n\nMaria")
    assert "<" not in event.message.replace("<support@acme-outdoor.com>", "")


def test_parse_ticket_updated_carries_no_message() -> None:
    """An update rule repeats nothing as a customer message; tags with spaces survive."""
    event = parse("ticket_updated.json")
    assert (event.event_type, event.message, event.author_role) == ("ticket.updated", None, "unknown")
    assert event.tags == ("returns", "web", "Product Return")


@pytest.mark.parametrize("event_name, expected", [
    (None, "ticket.updated"), ("TICKET-CREATED", "ticket.created"), ("customer.reply", "message.created"),
    ("something_else", "other"), (42, "other"),
])
def test_event_names(event_name: Any, expected: str) -> None:
    """The event name is read leniently; an unknown one is 'other'."""
    payload = json.loads(load("ticket_created.json"))
    payload["event"] = event_name
    assert adapter.parse(request(json.dumps(payload).encode())).event_type == expected


def test_url_without_scheme_and_junk_url() -> None:
    """A URL without scheme gets https://; anything not http(s) is dropped."""
    assert adapter.parse(request(with_ticket("ticket_created.json", url="acme.freshdesk.com/a/tickets/1287"))) \
        .ticket_url == "https://acme.freshdesk.com/a/tickets/1287"
    assert adapter.parse(request(with_ticket("ticket_created.json", url="javascript:alert(1)"))).ticket_url is None


@pytest.mark.parametrize("value", ["", "{{ticket.id}}", "12 87", -5, True])  # null: contract
def test_without_ticket_number_names_ticket_id(value: Any) -> None:
    """A blank, unrendered or non-numeric ticket.id is a PayloadError naming it."""
    assert payload_error_field(adapter, request(with_ticket("ticket_created.json", id=value))) == "ticket.id"


@pytest.mark.parametrize("body", [b'{"event": "ticket_created"}', b'{"ticket": "1287"}', b'{"ticket": null}'])
def test_without_ticket_object_names_ticket_id(body: bytes) -> None:
    """A body without the ticket object names ticket.id too."""
    assert payload_error_field(adapter, request(body)) == "ticket.id"


# --- bad and hostile input --------------------------------------------------------------------


def test_hostile_and_huge_html_does_not_crash() -> None:
    """Megabytes of hostile HTML and odd types are handled (NULs and surrogates: contract)."""
    body = with_ticket("ticket_created.json",
                       description="<script>x()</script>" + "<a " * 50_000 + "<p>return #1001</p>" * 30_000,
                       tags=["a", None, 3, {"b": 1}], requester="maria@example.com", custom_fields=["x"])
    event = adapter.parse(request(body))
    assert event.message is not None and "return #1001" in event.message and "x()" not in event.message
    assert event.tags == ("a", "3") and event.requester_email is None and event.custom_fields == {}


def test_naive_received_at_is_read_as_utc() -> None:
    """occurred_at is always timezone-aware."""
    event = adapter.parse(request(load("ticket_created.json"), received_at=NOW.replace(tzinfo=None)))
    assert event.occurred_at == NOW


@settings(max_examples=300, deadline=None)
@given(event=json_values(), ticket=st.dictionaries(
    st.sampled_from(["id", "subject", "url", "tags", "description", "latest_public_comment", "requester",
                     "custom_fields"]), json_values()))
def test_fuzz_template_shaped_json_raises_only_payload_error(event: Any, ticket: dict[str, Any]) -> None:
    """Template-shaped JSON with arbitrary values parses or raises PayloadError, nothing else."""
    parsed = well_formed_or_none(adapter, request(json.dumps({"event": event, "ticket": ticket}).encode()))
    assert parsed is None or parsed.ticket_id.isdigit()
