"""Unit tests for what only the Zammad adapter (integrations.zammad) does: its signature computed by
hand, the delivery header's fallback, the ticket-and-article payload. The contract all adapters
keep is in test_adapter_contract.py. No app, no DB."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timezone
from typing import Any

import pytest
from helpers import body_hash, edited, inbound, json_values, loader, payload_error_field, well_formed_or_none
from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.zammad import ZammadAdapter

NOW = datetime(2025, 11, 25, 10, 0, 5, tzinfo=timezone.utc)
SECRET = "zammad-signature-token-current"
adapter = ZammadAdapter()
load = loader("zammad")
request = inbound


def zammad_headers(body: bytes) -> dict[str, str]:
    """The headers Zammad sends, the signature computed here independently of ZammadAdapter.sign."""
    return {
        "User-Agent": "Zammad User Agent",
        "X-Zammad-Trigger": "Returns: customer wrote",
        "X-Zammad-Delivery": "7a1c9e02-3b4d-4f5a-8c6e-1d2f3a4b5c6d",
        "X-Hub-Signature": "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest(),
    }


# --- signatures -------------------------------------------------------------------------------


def test_signature_computed_independently_passes() -> None:
    """sha1=<hex HMAC-SHA1(token, body)>, as lib/user_agent.rb computes it, passes."""
    body = load("ticket_created.json")
    adapter.verify(request(body, zammad_headers(body)), [SECRET], NOW)
    assert adapter.sign(body, SECRET, NOW, "job-1")["X-Hub-Signature"] == zammad_headers(body)["X-Hub-Signature"]


# --- delivery key -----------------------------------------------------------------------------


@pytest.mark.parametrize("delivery", [None, "", "x" * 500, "bad\nid"])
def test_delivery_key_falls_back_to_the_body_hash(delivery: str | None) -> None:
    """No X-Zammad-Delivery, or one unfit to be a key (blank, too long, unprintable): the body's hash."""
    body = load("ticket_created.json")
    headers = {} if delivery is None else {"X-Zammad-Delivery": delivery}
    assert adapter.delivery_key(request(body, headers)) == body_hash(body)


# --- parsing ----------------------------------------------------------------------------------


def test_parse_new_ticket() -> None:
    """The first article opens the ticket; the customer comes from ticket.customer."""
    event = adapter.parse(request(load("ticket_created.json")))
    assert event.provider == "zammad"
    assert event.ticket_id == "81"
    assert event.event_type == "ticket.created"
    assert event.ticket_url is None
    assert event.requester_email == "dana.whitfield@example.com"
    assert event.requester_name == "Dana Whitfield"
    assert event.requester_id == "8"
    assert event.subject == "Return for order #1001"
    assert event.message == ("Hello,\n\nI'd like to return the hiking boots from order #1001 – they are a size "
                             "too small. Could you send me a return label?\n\nThanks,\nDana")
    assert event.message_id == "104"
    assert event.author_role == "customer"
    assert event.tags == ()
    assert event.custom_fields == {"zammad_number": "10081"}
    assert event.occurred_at == datetime(2025, 11, 25, 10, 0, 0, 561000, tzinfo=timezone.utc)


def test_parse_customer_follow_up_is_a_message() -> None:
    event = adapter.parse(request(load("customer_reply.json")))
    assert event.event_type == "message.created"
    assert event.message is not None and event.message.startswith("Here are the photos of the boots.")
    assert event.message_id == "109"
    assert event.occurred_at == datetime(2025, 11, 26, 9, 30, 11, 870000, tzinfo=timezone.utc)


def test_parse_agent_reply_updates_the_ticket_without_a_customer_message() -> None:
    event = adapter.parse(request(load("agent_reply.json")))
    assert (event.event_type, event.author_role, event.message) == ("ticket.updated", "agent", None)
    assert event.requester_email == "dana.whitfield@example.com"  # still the ticket's customer


def test_internal_note_is_never_a_customer_message() -> None:
    document = json.loads(load("customer_reply.json"))
    document["article"]["internal"] = True
    event = adapter.parse(request(json.dumps(document).encode()))
    assert (event.event_type, event.message) == ("ticket.updated", None)


def test_ticket_change_without_an_article_updates_the_ticket() -> None:
    document = json.loads(load("ticket_created.json"))
    document["article"] = {}
    event = adapter.parse(request(json.dumps(document).encode()))
    assert (event.event_type, event.author_role, event.message) == ("ticket.updated", "unknown", None)


def test_requester_falls_back_to_the_article_sender_address() -> None:
    """A customer without an email in ticket.customer is read from the article's From."""
    document = json.loads(load("customer_reply.json"))
    document["ticket"]["customer"] = {}
    event = adapter.parse(request(json.dumps(document).encode()))
    assert (event.requester_email, event.requester_name) == ("dana.whitfield@example.com", "Dana Whitfield")


def test_tags_of_a_custom_payload_are_read() -> None:
    document = json.loads(load("ticket_created.json"))
    document["ticket"]["tags"] = ["returns", " vip ", "", 3, "returns"]
    assert adapter.parse(request(json.dumps(document).encode())).tags == ("returns", "vip", "3")


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda d: d["ticket"].pop("id"), "ticket.id"),
    (lambda d: d.pop("ticket"), "ticket"),
    (lambda d: d["ticket"].__setitem__("id", True), "ticket.id"),
])
def test_missing_ticket_is_a_payload_error_naming_the_field(mutate: Any, field: str) -> None:
    """Removed (not null: contract) or of the wrong type, the field is named."""
    assert payload_error_field(adapter, request(edited(load("ticket_created.json"), mutate))) == field


def test_hostile_and_huge_text_does_not_crash() -> None:
    document = json.loads(load("ticket_created.json"))
    document["article"]["body"] = ("<table>" * 20_000 + "<style>x{}</style><![CDATA[ <![bogus[ " + "boots " * 300_000
                                   + "&#x110000;&bogus;")
    document["article"]["from"] = "\"" * 100_000 + "<" * 1000
    document["ticket"]["title"] = "T" * 200_000
    event = adapter.parse(request(json.dumps(document).encode()))
    assert event.message is not None and "x{}" not in event.message
    assert event.message.count("boots") == 300_000


# --- properties -------------------------------------------------------------------------------

JSON_KEYS = st.sampled_from(["ticket", "article", "id", "number", "title", "customer", "customer_id", "email",
                             "firstname", "lastname", "article_ids", "article_count", "tags", "body",
                             "content_type", "sender", "from", "internal", "created_at", "updated_at", "subject"])
JSON_VALUES = json_values(JSON_KEYS, "Customer", "Agent", "text/html", "2025-11-25T10:00:00.561Z", "a <b@c.d>")


@settings(max_examples=200, deadline=None)
@given(document=st.dictionaries(JSON_KEYS, JSON_VALUES, max_size=8))
def test_arbitrary_json_shapes_raise_only_payload_errors(document: dict[str, Any]) -> None:
    well_formed_or_none(adapter, request(json.dumps(document).encode()))
