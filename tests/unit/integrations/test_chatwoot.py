"""Unit tests for the Chatwoot adapter (integrations.chatwoot): signatures and parsing. No app, no DB."""

from __future__ import annotations

import ast
import contextlib
import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import integrations.chatwoot as chatwoot_module
from integrations.base import InboundRequest, PayloadError, SignatureError, get_adapter
from integrations.chatwoot import ChatwootAdapter

DATA = Path(__file__).resolve().parents[2] / "data" / "webhooks" / "chatwoot"
NOW = datetime(2025, 11, 25, 10, 0, 5, tzinfo=timezone.utc)
SECRET = "chatwoot-webhook-secret-current"
OLD_SECRET = "chatwoot-webhook-secret-previous"
adapter = ChatwootAdapter()


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


def request(body: bytes, headers: dict[str, str] | None = None) -> InboundRequest:
    return InboundRequest(method="POST", path="/webhooks/k",
                          headers={k.lower(): v for k, v in (headers or {}).items()}, body=body)


def chatwoot_headers(body: bytes, secret: str = SECRET, at: datetime = NOW,
                     delivery: str = "0f3c2a9e-6b1d-4e7f-9a8b-2c3d4e5f6a7b") -> dict[str, str]:
    """Chatwoot's headers, the signature computed here independently of ChatwootAdapter.sign."""
    stamp = str(int(at.timestamp()))
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Chatwoot-Signature": f"sha256={digest}", "X-Chatwoot-Timestamp": stamp,
            "X-Chatwoot-Delivery": delivery}


# --- signatures -------------------------------------------------------------------------------


def test_sign_produces_headers_verify_accepts() -> None:
    body = load("conversation_created.json")
    adapter.verify(request(body, adapter.sign(body, SECRET, NOW, "d-1")), [SECRET], NOW)


def test_signature_computed_independently_passes() -> None:
    """sha256=<hex HMAC-SHA256(secret, "{timestamp}.{raw body}")> computed with hmac directly passes."""
    body = load("message_created_incoming.json")
    headers = chatwoot_headers(body)
    adapter.verify(request(body, headers), [SECRET], NOW)
    assert adapter.sign(body, SECRET, NOW, headers["X-Chatwoot-Delivery"]) == \
        {"Content-Type": "application/json", **headers}


def test_wrong_secret_is_refused() -> None:
    body = load("message_created_incoming.json")
    with pytest.raises(SignatureError):
        adapter.verify(request(body, chatwoot_headers(body, "not-the-secret")), [SECRET], NOW)


def test_tampered_body_is_refused() -> None:
    body = load("message_created_incoming.json")
    with pytest.raises(SignatureError):
        adapter.verify(request(body.replace(b"#1001", b"#1002"), chatwoot_headers(body)), [SECRET], NOW)


def test_a_fresh_timestamp_cannot_be_swapped_in() -> None:
    """The timestamp is inside the signed string: replaying with a new one breaks the signature."""
    body = load("message_created_incoming.json")
    old = chatwoot_headers(body, at=NOW - timedelta(hours=1))
    replay = old | {"X-Chatwoot-Timestamp": str(int(NOW.timestamp()))}
    with pytest.raises(SignatureError, match="does not match"):
        adapter.verify(request(body, replay), [SECRET], NOW)


@pytest.mark.parametrize("missing", ["X-Chatwoot-Signature", "X-Chatwoot-Timestamp"])
def test_missing_header_is_refused(missing: str) -> None:
    """Chatwoot before 4.11.2 signs nothing; such requests are refused."""
    body = load("message_created_incoming.json")
    headers = chatwoot_headers(body)
    del headers[missing]
    with pytest.raises(SignatureError):
        adapter.verify(request(body, headers), [SECRET], NOW)


@pytest.mark.parametrize("header", ["sha1=" + "00" * 20, "sha256=xyz", "sha256", "00" * 32])
def test_malformed_signature_header_is_refused(header: str) -> None:
    body = load("message_created_incoming.json")
    with pytest.raises(SignatureError):
        adapter.verify(request(body, chatwoot_headers(body) | {"X-Chatwoot-Signature": header}), [SECRET], NOW)


def test_rotated_out_secret_still_passes() -> None:
    body = load("message_created_incoming.json")
    adapter.verify(request(body, chatwoot_headers(body, OLD_SECRET)), [SECRET, OLD_SECRET], NOW)


@pytest.mark.parametrize("secrets", [[], [""]])
def test_no_configured_secret_never_skips_the_check(secrets: list[str]) -> None:
    body = load("message_created_incoming.json")
    with pytest.raises(SignatureError, match="No .* secret"):
        adapter.verify(request(body, chatwoot_headers(body)), secrets, NOW)


@pytest.mark.parametrize("skew", [timedelta(minutes=-6), timedelta(minutes=6), timedelta(days=3650)])
def test_stale_or_future_timestamp_is_refused(skew: timedelta) -> None:
    body = load("message_created_incoming.json")
    with pytest.raises(SignatureError, match="window"):
        adapter.verify(request(body, chatwoot_headers(body, at=NOW + skew)), [SECRET], NOW)


@pytest.mark.parametrize("stamp", ["", "yesterday", "nan", "inf", "1e400", "１７６４０６４８０５"])
def test_malformed_timestamp_is_refused(stamp: str) -> None:
    body = load("message_created_incoming.json")
    headers = chatwoot_headers(body) | {"X-Chatwoot-Timestamp": stamp}
    with pytest.raises(SignatureError):
        adapter.verify(request(body, headers), [SECRET], NOW)


def test_chatwoot_needs_no_handshake() -> None:
    body = load("conversation_created.json")
    assert adapter.handshake(request(body, chatwoot_headers(body)), [SECRET]) is None


# --- delivery key -----------------------------------------------------------------------------


def test_delivery_key_is_the_delivery_header_for_every_retry() -> None:
    """Sidekiq retries resend with a new timestamp and signature but the same delivery id."""
    body = load("message_created_incoming.json")
    first = adapter.delivery_key(request(body, chatwoot_headers(body)))
    retry = adapter.delivery_key(request(body, chatwoot_headers(body, at=NOW + timedelta(seconds=25))))
    assert first == retry == "0f3c2a9e-6b1d-4e7f-9a8b-2c3d4e5f6a7b"


def test_delivery_keys_differ_across_deliveries() -> None:
    body = load("message_created_incoming.json")
    keys = {adapter.delivery_key(request(body, chatwoot_headers(body, delivery=f"d-{n}"))) for n in range(3)}
    assert len(keys) == 3


def test_without_the_header_a_created_event_is_keyed_by_event_and_id() -> None:
    assert adapter.delivery_key(request(load("message_created_incoming.json"))) == "message_created:655"
    assert adapter.delivery_key(request(load("conversation_created.json"))) == "conversation_created:207"


def test_without_the_header_an_update_is_keyed_by_its_body() -> None:
    """Updates of one conversation share event and id, so only the body tells them apart."""
    body = load("conversation_status_changed.json")
    assert adapter.delivery_key(request(body)) == "sha256:" + hashlib.sha256(body).hexdigest()


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


def test_sample_is_a_new_return_request() -> None:
    event = adapter.parse(request(adapter.sample()))
    assert event.event_type == "ticket.created"
    assert event.message is not None and "#1001" in event.message


@pytest.mark.parametrize(("name", "mutate", "field"), [
    ("message_created_incoming.json", lambda d: d["conversation"].pop("id"), "conversation.id"),
    ("message_created_incoming.json", lambda d: d.pop("conversation"), "conversation"),
    ("conversation_created.json", lambda d: d.pop("id"), "id"),
    ("conversation_created.json", lambda d: d.pop("event"), "event"),
    ("conversation_status_changed.json", lambda d: d.__setitem__("id", [207]), "id"),
])
def test_missing_conversation_is_a_payload_error_naming_the_field(name: str, mutate: Any, field: str) -> None:
    document = json.loads(load(name))
    mutate(document)
    with pytest.raises(PayloadError) as error:
        adapter.parse(request(json.dumps(document).encode()))
    assert error.value.field == field


@pytest.mark.parametrize("body", [b"", b"{", b"\xff\xfe", b"[]", b"true", b"[" * 100_000 + b"]" * 100_000])
def test_malformed_json_is_a_payload_error(body: bytes) -> None:
    with pytest.raises(PayloadError) as error:
        adapter.parse(request(body))
    assert error.value.field == "body"


def test_hostile_and_huge_text_does_not_crash() -> None:
    document = json.loads(load("message_created_incoming.json"))
    document["content"] = "\u202e\u0000<script>" + "boots " * 400_000 + "\U0001f97e" * 10_000
    document["conversation"]["labels"] = ["x" * 10_000, None, 7, {"a": 1}, "returns"]
    document["conversation"]["additional_attributes"]["browser_language"] = "en" * 1000
    event = adapter.parse(request(json.dumps(document).encode()))
    assert event.message is not None and event.message.count("boots") == 400_000
    assert event.tags == ("x" * 10_000, "7", "returns")
    assert event.language is None


def test_registered_under_its_kind() -> None:
    assert isinstance(get_adapter("chatwoot"), ChatwootAdapter)
    assert ChatwootAdapter.kind == "chatwoot" and ChatwootAdapter.secret_names


def test_module_imports_nothing_from_app() -> None:
    tree = ast.parse(Path(chatwoot_module.__file__).read_text())
    imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert not [name for name in imported if name and (name == "app" or name.startswith("app."))]


# --- properties -------------------------------------------------------------------------------

JSON_KEYS = st.sampled_from(["event", "id", "conversation", "content", "message_type", "private", "sender", "type",
                             "email", "name", "meta", "messages", "labels", "custom_attributes", "account",
                             "account_id", "additional_attributes", "mail_subject", "browser_language",
                             "created_at", "updated_at", "timestamp"])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text()
    | st.sampled_from(["message_created", "conversation_created", "incoming", "contact", "2025-11-25T10:00:00Z"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(JSON_KEYS, children, max_size=6),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=512),
       headers=st.dictionaries(st.sampled_from(["x-chatwoot-signature", "x-chatwoot-timestamp",
                                                "x-chatwoot-delivery"]), st.text(max_size=80)),
       secrets=st.lists(st.text(max_size=20), max_size=2))
def test_arbitrary_requests_raise_only_adapter_errors(body: bytes, headers: dict[str, str],
                                                      secrets: list[str]) -> None:
    inbound = request(body, headers)
    with contextlib.suppress(SignatureError):
        adapter.verify(inbound, secrets, NOW)
    with contextlib.suppress(PayloadError):
        adapter.parse(inbound)
    key = adapter.delivery_key(inbound)
    assert isinstance(key, str) and 0 < len(key) <= 200


@settings(max_examples=200, deadline=None)
@given(document=st.dictionaries(JSON_KEYS, JSON_VALUES, max_size=8),
       event=st.sampled_from(["message_created", "conversation_created", "conversation_updated", "other"]))
def test_arbitrary_json_shapes_raise_only_payload_errors(document: dict[str, Any], event: str) -> None:
    document.setdefault("event", event)
    try:
        parsed = adapter.parse(request(json.dumps(document).encode()))
    except PayloadError:
        return
    assert all(isinstance(tag, str) for tag in parsed.tags)
    assert parsed.occurred_at is None or parsed.occurred_at.tzinfo is not None


@settings(max_examples=100, deadline=None)
@given(body=st.binary(max_size=256), secret=st.text(min_size=1, max_size=40))
def test_whatever_sign_produces_verify_accepts(body: bytes, secret: str) -> None:
    adapter.verify(request(body, adapter.sign(body, secret, NOW, "d")), [secret], NOW)
