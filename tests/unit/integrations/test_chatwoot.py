"""Unit tests for what only the Chatwoot adapter (integrations.chatwoot) does: its signature computed
by hand, delivery keys without the delivery header, conversation and message events. The contract
all adapters keep is in test_adapter_contract.py. No app, no DB."""

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

from integrations.chatwoot import ChatwootAdapter

NOW = datetime(2025, 11, 25, 10, 0, 5, tzinfo=timezone.utc)
SECRET = "chatwoot-webhook-secret-current"
adapter = ChatwootAdapter()
load = loader("chatwoot")
request = inbound


def chatwoot_headers(body: bytes) -> dict[str, str]:
    """Chatwoot's headers, the signature computed here independently of ChatwootAdapter.sign."""
    stamp = str(int(NOW.timestamp()))
    digest = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Chatwoot-Signature": f"sha256={digest}", "X-Chatwoot-Timestamp": stamp,
            "X-Chatwoot-Delivery": "0f3c2a9e-6b1d-4e7f-9a8b-2c3d4e5f6a7b"}


# --- signatures -------------------------------------------------------------------------------


def test_signature_computed_independently_passes() -> None:
    """sha256=<hex HMAC-SHA256(secret, "{timestamp}.{raw body}")> computed with hmac directly passes."""
    body = load("message_created_incoming.json")
    headers = chatwoot_headers(body)
    adapter.verify(request(body, headers), [SECRET], NOW)
    assert adapter.sign(body, SECRET, NOW, headers["X-Chatwoot-Delivery"]) == \
        {"Content-Type": "application/json", **headers}


# --- delivery key -----------------------------------------------------------------------------


def test_without_the_header_a_created_event_is_keyed_by_event_and_id() -> None:
    assert adapter.delivery_key(request(load("message_created_incoming.json"))) == "message_created:655"
    assert adapter.delivery_key(request(load("conversation_created.json"))) == "conversation_created:207"


def test_without_the_header_an_update_is_keyed_by_its_body() -> None:
    """Updates of one conversation share event and id, so only the body tells them apart."""
    body = load("conversation_status_changed.json")
    assert adapter.delivery_key(request(body)) == body_hash(body)


# --- parsing ----------------------------------------------------------------------------------


def test_parse_new_conversation() -> None:
    """conversation_created: the contact, the first message, labels and account."""
    event = adapter.parse(request(load("conversation_created.json")))
    assert event.provider == "chatwoot"
    assert event.ticket_id == "207"
    assert event.event_type == "ticket.created"
    assert event.ticket_url is None
    assert event.requester_email == "dana.whitfield@example.com"
    assert event.requester_name == "Dana Whitfield"
    assert event.requester_id == "42"
    assert event.subject == "Return for order #1001"
    assert event.message == ("Hi, I'd like to return the hiking boots from order #1001 - they are a size too "
                             "small. Can you send me a return label?\n\nThanks,\nDana")
    assert event.message_id == "654"
    assert event.author_role == "customer"
    assert event.tags == ("returns",)
    assert event.custom_fields == {"order_number": "1001", "chatwoot_account_id": "3"}
    assert event.occurred_at == datetime(2025, 11, 25, 10, 0, tzinfo=timezone.utc)


def test_parse_incoming_message() -> None:
    event = adapter.parse(request(load("message_created_incoming.json")))
    assert event.ticket_id == "208"
    assert event.event_type == "message.created"
    assert event.message == "Hi! I'd like to return the hiking boots from order #1001 - they are a size too small."
    assert event.message_id == "655"
    assert event.author_role == "customer"
    assert event.requester_email == "dana.whitfield@example.com"
    assert event.language == "de-DE"
    assert event.custom_fields == {"chatwoot_account_id": "3"}
    assert event.occurred_at == datetime(2025, 11, 25, 10, 0, 0, 856000, tzinfo=timezone.utc)


@pytest.mark.parametrize("name", ["message_created_outgoing.json", "message_created_private_note.json"])
def test_agent_messages_and_private_notes_are_other(name: str) -> None:
    event = adapter.parse(request(load(name)))
    assert (event.event_type, event.author_role, event.message) == ("other", "agent", None)
    assert event.requester_email == "dana.whitfield@example.com"  # the conversation's contact, not the agent


def test_private_incoming_message_is_not_a_customer_message() -> None:
    document = json.loads(load("message_created_incoming.json"))
    document["private"] = True
    event = adapter.parse(request(json.dumps(document).encode()))
    assert (event.event_type, event.message) == ("other", None)


def test_parse_status_change_updates_the_ticket() -> None:
    event = adapter.parse(request(load("conversation_status_changed.json")))
    assert event.event_type == "ticket.updated"
    assert event.tags == ("returns", "rma-approved")
    assert event.custom_fields["rma_number"] == "RMA-10042"
    assert event.message is None


def test_unrelated_event_is_other() -> None:
    event = adapter.parse(request(b'{"event": "contact_created", "id": 42, "email": "x@example.com"}'))
    assert (event.event_type, event.ticket_id) == ("other", "")


@pytest.mark.parametrize(("name", "mutate", "field"), [
    ("message_created_incoming.json", lambda d: d["conversation"].pop("id"), "conversation.id"),
    ("message_created_incoming.json", lambda d: d.pop("conversation"), "conversation"),
    ("conversation_created.json", lambda d: d.pop("id"), "id"),
    ("conversation_created.json", lambda d: d.pop("event"), "event"),
    ("conversation_status_changed.json", lambda d: d.__setitem__("id", [207]), "id"),
])
def test_missing_conversation_is_a_payload_error_naming_the_field(name: str, mutate: Any, field: str) -> None:
    """Removed (a null id: contract) or of the wrong type, the field is named."""
    assert payload_error_field(adapter, request(edited(load(name), mutate))) == field


def test_hostile_and_huge_text_does_not_crash() -> None:
    document = json.loads(load("message_created_incoming.json"))
    document["content"] = "\u202e\u0000<script>" + "boots " * 400_000 + "\U0001f97e" * 10_000
    document["conversation"]["labels"] = ["x" * 10_000, None, 7, {"a": 1}, "returns"]
    document["conversation"]["additional_attributes"]["browser_language"] = "en" * 1000
    event = adapter.parse(request(json.dumps(document).encode()))
    assert event.message is not None and event.message.count("boots") == 400_000
    assert event.tags == ("x" * 10_000, "7", "returns")
    assert event.language is None


# --- properties -------------------------------------------------------------------------------

JSON_KEYS = st.sampled_from(["event", "id", "conversation", "content", "message_type", "private", "sender", "type",
                             "email", "name", "meta", "messages", "labels", "custom_attributes", "account",
                             "account_id", "additional_attributes", "mail_subject", "browser_language",
                             "created_at", "updated_at", "timestamp"])
JSON_VALUES = json_values(JSON_KEYS, "message_created", "conversation_created", "incoming", "contact",
                          "2025-11-25T10:00:00Z")


@settings(max_examples=200, deadline=None)
@given(document=st.dictionaries(JSON_KEYS, JSON_VALUES, max_size=8),
       event=st.sampled_from(["message_created", "conversation_created", "conversation_updated", "other"]))
def test_arbitrary_json_shapes_raise_only_payload_errors(document: dict[str, Any], event: str) -> None:
    document.setdefault("event", event)
    well_formed_or_none(adapter, request(json.dumps(document).encode()))
