"""Unit tests for what only the Intercom adapter (integrations.intercom) does: its signature computed
by hand, notification ids as delivery keys, both payload generations. The contract all adapters
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

from integrations.intercom import IntercomAdapter

NOW = datetime(2025, 11, 25, 10, 0, 5, tzinfo=timezone.utc)
SECRET = "intercom-client-secret-current"
adapter = IntercomAdapter()
load = loader("intercom")
request = inbound


def hub_signature(body: bytes) -> dict[str, str]:
    """X-Hub-Signature computed here, independently of IntercomAdapter.sign."""
    return {"X-Hub-Signature": "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()}


# --- signatures -------------------------------------------------------------------------------


def test_signature_computed_independently_passes() -> None:
    """sha1=<hex HMAC-SHA1(client secret, raw body)> computed with hmac directly passes."""
    body = load("conversation_user_created.json")
    adapter.verify(request(body, hub_signature(body)), [SECRET], NOW)
    assert adapter.sign(body, SECRET, NOW, "unused")["X-Hub-Signature"] == hub_signature(body)["X-Hub-Signature"]


def test_uppercase_hex_passes() -> None:
    body = load("conversation_user_created.json")
    header = hub_signature(body)["X-Hub-Signature"]
    adapter.verify(request(body, {"X-Hub-Signature": "sha1=" + header[5:].upper()}), [SECRET], NOW)


# --- delivery key -----------------------------------------------------------------------------


def test_delivery_key_is_the_notification_id_even_when_retries_change_the_body() -> None:
    """A retry bumps delivery_attempts, so the body differs, but the notification id does not."""
    body = load("conversation_user_created.json")
    retry = json.loads(body)
    retry["delivery_attempts"] = 2
    retry_body = json.dumps(retry).encode()
    assert adapter.delivery_key(request(body)) == adapter.delivery_key(request(retry_body)) == \
        "notif_8a1f3c52-7d4e-4b0a-9f21-5c6d7e8f9a0b"


def test_delivery_keys_differ_across_notifications() -> None:
    names = ["conversation_user_created.json", "conversation_user_replied.json",
             "conversation_user_created_legacy.json", "conversation_admin_closed.json", "ping.json"]
    keys = [adapter.delivery_key(request(load(name))) for name in names]
    assert len(set(keys)) == len(keys)


def test_ping_without_id_falls_back_to_the_body_hash() -> None:
    body = load("ping.json")
    assert adapter.delivery_key(request(body)) == body_hash(body)


# --- parsing ----------------------------------------------------------------------------------


def test_parse_new_conversation() -> None:
    """conversation.user.created: the opening message, its author and the conversation's fields."""
    event = adapter.parse(request(load("conversation_user_created.json")))
    assert event.provider == "intercom"
    assert event.ticket_id == "215472586117934"
    assert event.event_type == "ticket.created"
    assert event.ticket_url == "https://app.intercom.com/a/apps/q3x8zk2m/conversations/215472586117934"
    assert event.requester_email == "dana.whitfield@example.com"
    assert event.requester_name == "Dana Whitfield"
    assert event.requester_id == "6643f1c2a1b2c3d4e5f60718"
    assert event.subject == "Return for order #1001"  # HTML stripped
    assert event.message == ("Hello,\n\nI'd like to return the hiking boots from order #1001 – they are a size "
                             "too small. Could you send me a return label?\n\nThanks,\nDana")
    assert event.message_id == "2318724781"
    assert event.author_role == "customer"
    assert event.tags == ("returns",)
    assert event.custom_fields == {"Order number": "1001", "intercom_app_id": "q3x8zk2m"}
    assert event.occurred_at == datetime(2025, 11, 25, 10, 0, tzinfo=timezone.utc)
    assert event.external_event_id == "notif_8a1f3c52-7d4e-4b0a-9f21-5c6d7e8f9a0b"


def test_parse_reply_takes_the_newest_customer_part() -> None:
    """conversation.user.replied: the customer's part, not the agent's before it."""
    event = adapter.parse(request(load("conversation_user_replied.json")))
    assert event.event_type == "message.created"
    assert event.message == "Here you go – photo attached. The left boot pinches at the toe."
    assert event.message_id == "31870098765"
    assert event.author_role == "customer"
    assert event.occurred_at == datetime.fromtimestamp(1764151200, tz=timezone.utc)
    assert event.subject == "Return for order #1001"


def test_parse_older_payload_with_conversation_message_and_user() -> None:
    event = adapter.parse(request(load("conversation_user_created_legacy.json")))
    assert event.event_type == "ticket.created"
    assert event.message == "Can I return the tent from order #1002? It arrived torn."
    assert event.requester_email == "rose.poodle@example.com"
    assert event.requester_name == "Rose Poodle"
    assert event.ticket_url == "https://app.intercom.io/a/apps/i6wc9ipe/conversations/21321941764"


def test_parse_admin_close_updates_the_ticket_without_a_customer_message() -> None:
    event = adapter.parse(request(load("conversation_admin_closed.json")))
    assert (event.event_type, event.author_role, event.message) == ("ticket.updated", "agent", None)
    assert event.tags == ("returns", "refunded")
    assert event.requester_email == "dana.whitfield@example.com"


def test_parse_agent_reply_is_other() -> None:
    document = json.loads(load("conversation_user_replied.json"))
    document["topic"] = "conversation.admin.replied"
    parts = document["data"]["item"]["conversation_parts"]["conversation_parts"]
    document["data"]["item"]["conversation_parts"]["conversation_parts"] = [parts[1], parts[0]]
    parts[0]["created_at"] = 1764160000  # the agent's part is now the newest
    event = adapter.parse(request(json.dumps(document).encode()))
    assert (event.event_type, event.author_role, event.message) == ("other", "agent", None)


def test_parse_ping() -> None:
    event = adapter.parse(request(load("ping.json")))
    assert (event.event_type, event.ticket_id) == ("ping", "")


def test_parse_contact_topic_is_other() -> None:
    document = {"type": "notification_event", "topic": "contact.user.created", "id": "notif_1",
                "data": {"item": {"type": "contact", "id": "c1", "email": "x@example.com"}}}
    event = adapter.parse(request(json.dumps(document).encode()))
    assert (event.event_type, event.ticket_id) == ("other", "")


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda d: d["data"]["item"].pop("id"), "data.item.id"),
    (lambda d: d["data"].pop("item"), "data.item"),
    (lambda d: d.pop("topic"), "topic"),
    (lambda d: d["data"]["item"].__setitem__("id", {"nested": 1}), "data.item.id"),
])
def test_missing_conversation_is_a_payload_error_naming_the_field(mutate: Any, field: str) -> None:
    """Removed (not null: contract) or of the wrong type, the field is named."""
    assert payload_error_field(adapter, request(edited(load("conversation_user_created.json"), mutate))) == field


def test_hostile_and_huge_text_does_not_crash() -> None:
    document = json.loads(load("conversation_user_created.json"))
    source = document["data"]["item"]["source"]
    source["body"] = "<p>" * 30_000 + "<script>steal()</script><!DOCTYPE [x]>" + "return " * 300_000 + "\u0000\ud7ff"
    source["subject"] = "<<<" * 50_000
    event = adapter.parse(request(json.dumps(document).encode()))
    assert event.message is not None and "steal()" not in event.message
    assert event.message.count("return") == 300_000


# --- properties -------------------------------------------------------------------------------

JSON_KEYS = st.sampled_from(["type", "topic", "id", "app_id", "data", "item", "source", "conversation_message",
                             "author", "email", "name", "body", "subject", "title", "contacts", "user",
                             "conversation_parts", "tags", "custom_attributes", "created_at", "updated_at",
                             "links", "conversation_web", "part_type"])
JSON_VALUES = json_values(JSON_KEYS, "conversation.user.created", "conversation.user.replied", "ping", "user", "admin")


@settings(max_examples=200, deadline=None)
@given(document=st.dictionaries(JSON_KEYS, JSON_VALUES, max_size=8),
       topic=st.sampled_from(["conversation.user.created", "conversation.user.replied", "conversation.admin.closed"]))
def test_arbitrary_json_shapes_raise_only_payload_errors(document: dict[str, Any], topic: str) -> None:
    document.setdefault("topic", topic)
    well_formed_or_none(adapter, request(json.dumps(document).encode()))
