"""Unit tests for the generic adapter (integrations.generic): Standard Webhooks and our JSON. No app, no DB."""

from __future__ import annotations

import ast
import base64
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
from standardwebhooks import Webhook

import integrations.generic as generic_module
from integrations.base import InboundRequest, PayloadError, SignatureError, get_adapter
from integrations.generic import GenericAdapter

DATA = Path(__file__).resolve().parents[2] / "data" / "webhooks" / "generic"
NOW = datetime(2025, 11, 25, 10, 0, 5, tzinfo=timezone.utc)
KEY = b"rebound-generic-test-key-32-byte"
SECRET = "whsec_" + base64.b64encode(KEY).decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"the-previous-key-before-rotation").decode()
adapter = GenericAdapter()


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


def request(body: bytes, headers: dict[str, str] | None = None) -> InboundRequest:
    return InboundRequest(method="POST", path="/webhooks/k",
                          headers={k.lower(): v for k, v in (headers or {}).items()}, body=body)


def standard_headers(body: bytes, key: bytes = KEY, at: datetime = NOW, msg_id: str = "msg_2f8Kx1") -> dict[str, str]:
    """Standard Webhooks headers computed from the specification with hmac, not the package."""
    stamp = str(int(at.timestamp()))
    digest = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {"webhook-id": msg_id, "webhook-timestamp": stamp,
            "webhook-signature": "v1," + base64.b64encode(digest).decode()}


# --- signatures -------------------------------------------------------------------------------


def test_sign_produces_headers_verify_accepts() -> None:
    body = load("ticket_created.json")
    adapter.verify(request(body, adapter.sign(body, SECRET, NOW, "msg_1")), [SECRET], NOW)


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


def test_wrong_secret_is_refused() -> None:
    body = load("ticket_created.json")
    with pytest.raises(SignatureError):
        adapter.verify(request(body, standard_headers(body, key=b"some-other-key")), [SECRET], NOW)


def test_tampered_body_is_refused() -> None:
    body = load("ticket_created.json")
    with pytest.raises(SignatureError):
        adapter.verify(request(body.replace(b"#1001", b"#1002"), standard_headers(body)), [SECRET], NOW)


def test_changed_message_id_is_refused() -> None:
    """The id is signed too: a replay cannot dodge de-duplication by changing it."""
    body = load("ticket_created.json")
    headers = standard_headers(body) | {"webhook-id": "msg_new"}
    with pytest.raises(SignatureError):
        adapter.verify(request(body, headers), [SECRET], NOW)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_is_refused(missing: str) -> None:
    body = load("ticket_created.json")
    headers = standard_headers(body)
    del headers[missing]
    with pytest.raises(SignatureError, match="Missing"):
        adapter.verify(request(body, headers), [SECRET], NOW)


@pytest.mark.parametrize("signature", ["v1", "v1,", "v1,***", "v2,AAAA", ",,,", "v1,a,b", " "])
def test_malformed_signature_header_is_refused(signature: str) -> None:
    """Headers the package chokes on (ValueError, binascii.Error) are a SignatureError here."""
    body = load("ticket_created.json")
    headers = standard_headers(body) | {"webhook-signature": signature}
    with pytest.raises(SignatureError):
        adapter.verify(request(body, headers), [SECRET], NOW)


def test_rotated_out_secret_still_passes() -> None:
    body = load("ticket_created.json")
    old_key = base64.b64decode(OLD_SECRET.removeprefix("whsec_"))
    adapter.verify(request(body, standard_headers(body, key=old_key)), [SECRET, OLD_SECRET], NOW)


@pytest.mark.parametrize("secrets", [[], [""]])
def test_no_configured_secret_never_skips_the_check(secrets: list[str]) -> None:
    body = load("ticket_created.json")
    with pytest.raises(SignatureError, match="No .* secret"):
        adapter.verify(request(body, standard_headers(body)), secrets, NOW)


@pytest.mark.parametrize("bad", ["whsec_", "whsec_a", "whsec_é", "whsec_!!!"])
def test_invalid_configured_secret_refuses_instead_of_crashing(bad: str) -> None:
    """A secret that is not whsec_<base64> matches nothing; the next one is still tried."""
    body = load("ticket_created.json")
    with pytest.raises(SignatureError):
        adapter.verify(request(body, standard_headers(body)), [bad], NOW)
    adapter.verify(request(body, standard_headers(body)), [bad, SECRET], NOW)


@pytest.mark.parametrize("skew", [timedelta(minutes=-6), timedelta(minutes=6), timedelta(days=-1000)])
def test_stale_or_future_timestamp_is_refused(skew: timedelta) -> None:
    body = load("ticket_created.json")
    with pytest.raises(SignatureError, match="window"):
        adapter.verify(request(body, standard_headers(body, at=NOW + skew)), [SECRET], NOW)


@pytest.mark.parametrize("stamp", ["1764064805.0", "-5", "soon", "1" * 40, "１７６４０６４８０５"])
def test_malformed_timestamp_is_refused(stamp: str) -> None:
    body = load("ticket_created.json")
    headers = standard_headers(body) | {"webhook-timestamp": stamp}
    with pytest.raises(SignatureError):
        adapter.verify(request(body, headers), [SECRET], NOW)


def test_non_utf8_body_is_refused() -> None:
    body = b"\xff\xfe{}"
    with pytest.raises(SignatureError):
        adapter.verify(request(body, standard_headers(body)), [SECRET], NOW)


def test_generic_needs_no_handshake() -> None:
    body = load("ticket_created.json")
    assert adapter.handshake(request(body, standard_headers(body)), [SECRET]) is None


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


def test_delivery_key_is_the_webhook_id_for_every_retry() -> None:
    body = load("ticket_created.json")
    first = adapter.delivery_key(request(body, standard_headers(body)))
    retry = adapter.delivery_key(request(body, standard_headers(body, at=NOW + timedelta(seconds=40))))
    assert first == retry == "msg_2f8Kx1"


def test_delivery_keys_differ_across_messages() -> None:
    body = load("ticket_created.json")
    keys = {adapter.delivery_key(request(body, standard_headers(body, msg_id=f"msg_{n}"))) for n in range(3)}
    assert len(keys) == 3


def test_delivery_key_without_an_id_is_the_body_hash() -> None:
    body = load("ticket_created.json")
    assert adapter.delivery_key(request(body)) == "sha256:" + hashlib.sha256(body).hexdigest()


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


def test_sample_is_a_new_return_request() -> None:
    event = adapter.parse(request(adapter.sample()))
    assert event.event_type == "ticket.created"
    assert event.message is not None and "#1001" in event.message


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
    document = json.loads(load("ticket_created.json"))
    mutate(document)
    with pytest.raises(PayloadError) as error:
        adapter.parse(request(json.dumps(document).encode()))
    assert error.value.field == field


@pytest.mark.parametrize("body", [b"", b"{", b"\xff\xfe", b"[]", b"1", b"[" * 100_000 + b"]" * 100_000])
def test_malformed_json_is_a_payload_error(body: bytes) -> None:
    with pytest.raises(PayloadError) as error:
        adapter.parse(request(body))
    assert error.value.field == "body"


def test_hostile_and_huge_text_does_not_crash() -> None:
    document = json.loads(load("ticket_created.json"))
    document["message"]["text"] = "\u0000\u202e" + "boots " * 500_000
    document["ticket"]["tags"] = ["  ", "x" * 50_000, "returns", "returns"]
    document["ticket"]["custom_fields"] = {f"k{n}": n for n in range(10_000)}
    event = adapter.parse(request(json.dumps(document).encode()))
    assert event.message is not None and event.message.count("boots") == 500_000
    assert event.tags == ("x" * 50_000, "returns")
    assert len(event.custom_fields) == 10_000


def test_registered_under_its_kind() -> None:
    assert isinstance(get_adapter("generic"), GenericAdapter)
    assert GenericAdapter.kind == "generic" and GenericAdapter.secret_names


def test_module_imports_nothing_from_app() -> None:
    tree = ast.parse(Path(generic_module.__file__).read_text())
    imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert not [name for name in imported if name and (name == "app" or name.startswith("app."))]


# --- properties -------------------------------------------------------------------------------

JSON_KEYS = st.sampled_from(["type", "ticket", "id", "url", "subject", "tags", "custom_fields", "language",
                             "requester", "email", "name", "message", "text", "author_role", "occurred_at"])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text()
    | st.sampled_from(["ticket.created", "customer", "https://x.example/1", "2025-11-25T10:00:00Z"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(JSON_KEYS, children, max_size=6),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=512),
       headers=st.dictionaries(st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature"]),
                               st.text(max_size=80)),
       secrets=st.lists(st.text(max_size=30) | st.just(SECRET), max_size=2))
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
       event_type=st.sampled_from(["ticket.created", "message.created", "ticket.updated"]))
def test_arbitrary_json_shapes_raise_only_payload_errors(document: dict[str, Any], event_type: str) -> None:
    document.setdefault("type", event_type)
    try:
        event = adapter.parse(request(json.dumps(document).encode()))
    except PayloadError:
        return
    assert all(isinstance(tag, str) for tag in event.tags)
    assert event.occurred_at is None or event.occurred_at.tzinfo is not None


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=256), key=st.binary(min_size=1, max_size=64), msg_id=st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40))
def test_whatever_sign_produces_verify_accepts(text: str, key: bytes, msg_id: str) -> None:
    secret = "whsec_" + base64.b64encode(key).decode()
    body = text.encode()
    adapter.verify(request(body, adapter.sign(body, secret, NOW, msg_id)), [secret], NOW)
