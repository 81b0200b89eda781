"""Unit tests for what only the generic adapter (integrations.generic) does: Standard Webhooks
signatures computed from the specification by hand and compared with the package's verdicts,
and our JSON schema. The contract all adapters keep is in test_adapter_contract.py. No app, no DB."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from helpers import body_hash, edited, inbound, json_values, loader, payload_error_field, well_formed_or_none
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks import Webhook

from integrations.base import SignatureError
from integrations.generic import GenericAdapter

NOW = datetime(2025, 11, 25, 10, 0, 5, tzinfo=timezone.utc)
KEY = b"rebound-generic-test-key-32-byte"
SECRET = "whsec_" + base64.b64encode(KEY).decode()
adapter = GenericAdapter()
load = loader("generic")
request = inbound


def standard_headers(body: bytes, at: datetime = NOW) -> dict[str, str]:
    """Standard Webhooks headers computed from the specification with hmac, not the package."""
    msg_id, stamp = "msg_2f8Kx1", str(int(at.timestamp()))
    digest = hmac.new(KEY, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {"webhook-id": msg_id, "webhook-timestamp": stamp,
            "webhook-signature": "v1," + base64.b64encode(digest).decode()}


# --- signatures -------------------------------------------------------------------------------


def test_signature_computed_independently_passes() -> None:
    """HMAC-SHA256(base64-decoded key, "id.timestamp.body") computed with hmac directly passes."""
    body = load("ticket_created.json")
    adapter.verify(request(body, standard_headers(body)), [SECRET], NOW)
    assert adapter.sign(body, SECRET, NOW, "msg_2f8Kx1") == {"Content-Type": "application/json",
                                                             **standard_headers(body)}


def test_sign_converts_other_offsets_to_utc() -> None:
    """The same instant in another timezone signs the same (the package would shift it)."""
    body = load("ticket_created.json")
    elsewhere = NOW.astimezone(timezone(timedelta(hours=5)))
    assert adapter.sign(body, SECRET, elsewhere, "m") == adapter.sign(body, SECRET, NOW, "m")


def test_one_matching_signature_among_several_passes() -> None:
    """During the sender's own rotation it sends several signatures separated by spaces."""
    body = load("ticket_created.json")
    headers = standard_headers(body)
    headers["webhook-signature"] = "v1,bm9wZQ== v1a,ignored " + headers["webhook-signature"]
    adapter.verify(request(body, headers), [SECRET], NOW)


def test_changed_message_id_is_refused() -> None:
    """The id is signed too: a replay cannot dodge de-duplication by changing it."""
    body = load("ticket_created.json")
    headers = standard_headers(body) | {"webhook-id": "msg_new"}
    with pytest.raises(SignatureError):
        adapter.verify(request(body, headers), [SECRET], NOW)


@pytest.mark.parametrize("bad", ["whsec_", "whsec_a", "whsec_é", "whsec_!!!"])
def test_invalid_configured_secret_refuses_instead_of_crashing(bad: str) -> None:
    """A secret that is not whsec_<base64> matches nothing; the next one is still tried."""
    body = load("ticket_created.json")
    with pytest.raises(SignatureError):
        adapter.verify(request(body, standard_headers(body)), [bad], NOW)
    adapter.verify(request(body, standard_headers(body)), [bad, SECRET], NOW)


def test_non_utf8_body_is_refused() -> None:
    body = b"\xff\xfe{}"
    with pytest.raises(SignatureError):
        adapter.verify(request(body, standard_headers(body)), [SECRET], NOW)


# The package's own verify reads the wall clock, so the comparison with it runs at "now".
HEADER_VARIANTS = [
    lambda h: h,
    lambda h: h | {"webhook-signature": "v1,AAAA"},
    lambda h: h | {"webhook-signature": "v1a," + h["webhook-signature"][3:]},
    lambda h: h | {"webhook-id": "other"},
    lambda h: {k: v for k, v in h.items() if k != "webhook-id"},
    lambda h: h | {"webhook-signature": h["webhook-signature"] + " v1,AAAA"},
]


@pytest.mark.parametrize("variant", HEADER_VARIANTS)
def test_verdicts_agree_with_the_package(variant: Any) -> None:
    """For valid and broken headers our verify passes exactly when Webhook.verify does."""
    now = datetime.now(timezone.utc)
    body = load("ticket_created.json")
    headers = variant(standard_headers(body, at=now))
    try:
        Webhook(SECRET).verify(body, headers)
        package_passes = True
    except Exception:  # the package raises several types for bad input; only the verdict matters here
        package_passes = False
    try:
        adapter.verify(request(body, headers), [SECRET], now)
        ours_passes = True
    except SignatureError:
        ours_passes = False
    assert ours_passes == package_passes


# --- delivery key -----------------------------------------------------------------------------


def test_delivery_key_without_an_id_is_the_body_hash() -> None:
    body = load("ticket_created.json")
    assert adapter.delivery_key(request(body)) == body_hash(body)


# --- parsing ----------------------------------------------------------------------------------


def test_parse_ticket_created() -> None:
    event = adapter.parse(request(load("ticket_created.json"), standard_headers(load("ticket_created.json"))))
    assert event.provider == "generic"
    assert event.ticket_id == "T-5012"
    assert event.event_type == "ticket.created"
    assert event.ticket_url == "https://support.outfitters.example/tickets/T-5012"
    assert event.requester_email == "dana.whitfield@example.com"
    assert event.requester_name == "Dana Whitfield"
    assert event.subject == "Return for order #1001"
    assert event.message == ("Hi, I'd like to return the hiking boots from order #1001 - they are a size too "
                             "small. Can you send me a return label?\n\nThanks,\nDana")
    assert event.message_id == "M-88231"
    assert event.author_role == "customer"
    assert event.tags == ("returns", "web")
    assert event.custom_fields == {"order_number": "1001", "channel": "email"}
    assert event.language == "en"
    assert event.occurred_at == datetime(2025, 11, 25, 10, 0, tzinfo=timezone.utc)
    assert event.external_event_id == "msg_2f8Kx1"


def test_parse_message_created_converts_values_and_offsets() -> None:
    event = adapter.parse(request(load("message_created.json")))
    assert event.event_type == "message.created"
    assert event.custom_fields == {"order_number": "1001", "priority": "2", "vip": "false"}
    assert event.occurred_at == datetime(2025, 11, 26, 8, 30, 11, tzinfo=timezone.utc)


def test_minimal_payload_is_enough() -> None:
    event = adapter.parse(request(b'{"type": "ticket.updated", "ticket": {"id": 77}}'))
    assert (event.ticket_id, event.event_type, event.author_role, event.tags) == ("77", "ticket.updated", "unknown", ())
    assert event.occurred_at is None


def test_time_without_offset_is_taken_as_utc() -> None:
    body = b'{"type": "ticket.updated", "ticket": {"id": "1"}, "occurred_at": "2025-11-25T10:00:00"}'
    assert adapter.parse(request(body)).occurred_at == datetime(2025, 11, 25, 10, tzinfo=timezone.utc)


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda d: d["ticket"].pop("id"), "ticket.id"),
    (lambda d: d["ticket"].__setitem__("id", "   "), "ticket.id"),
    (lambda d: d["ticket"].__setitem__("id", 1.5), "ticket.id"),
    (lambda d: d["ticket"].__setitem__("id", "x" * 101), "ticket.id"),
    (lambda d: d.pop("ticket"), "ticket"),
    (lambda d: d.__setitem__("type", "ticket.deleted"), "type"),
    (lambda d: d.pop("type"), "type"),
    (lambda d: d["ticket"].__setitem__("tags", "returns"), "ticket.tags"),
    (lambda d: d["ticket"].__setitem__("custom_fields", {"a": [1]}), "ticket.custom_fields"),
    (lambda d: d["ticket"].__setitem__("url", "javascript:alert(1)"), "ticket.url"),
    (lambda d: d["message"].__setitem__("author_role", "admin"), "message.author_role"),
    (lambda d: d["message"].__setitem__("text", ["a"]), "message.text"),
    (lambda d: d["requester"].__setitem__("email", 5), "requester.email"),
    (lambda d: d.__setitem__("requester", "dana"), "requester"),
    (lambda d: d.__setitem__("occurred_at", "yesterday"), "occurred_at"),
    (lambda d: d.__setitem__("occurred_at", 1764064800), "occurred_at"),
])
def test_invalid_payload_is_a_payload_error_naming_the_field(mutate: Any, field: str) -> None:
    assert payload_error_field(adapter, request(edited(load("ticket_created.json"), mutate))) == field


def test_huge_tags_and_fields_do_not_crash() -> None:
    """Blank, huge and repeated tags and ten thousand custom fields (a huge message: contract)."""
    document = json.loads(load("ticket_created.json"))
    document["ticket"]["tags"] = ["  ", "x" * 50_000, "returns", "returns"]
    document["ticket"]["custom_fields"] = {f"k{n}": n for n in range(10_000)}
    event = adapter.parse(request(json.dumps(document).encode()))
    assert event.tags == ("x" * 50_000, "returns")
    assert len(event.custom_fields) == 10_000


# --- properties -------------------------------------------------------------------------------

JSON_KEYS = st.sampled_from(["type", "ticket", "id", "url", "subject", "tags", "custom_fields", "language",
                             "requester", "email", "name", "message", "text", "author_role", "occurred_at"])
JSON_VALUES = json_values(JSON_KEYS, "ticket.created", "customer", "https://x.example/1", "2025-11-25T10:00:00Z")


@settings(max_examples=200, deadline=None)
@given(document=st.dictionaries(JSON_KEYS, JSON_VALUES, max_size=8),
       event_type=st.sampled_from(["ticket.created", "message.created", "ticket.updated"]))
def test_arbitrary_json_shapes_raise_only_payload_errors(document: dict[str, Any], event_type: str) -> None:
    document.setdefault("type", event_type)
    well_formed_or_none(adapter, request(json.dumps(document).encode()))
