"""Unit tests for the Zammad adapter (integrations.zammad): signatures and parsing. No app, no DB."""

from __future__ import annotations

import ast
import contextlib
import hashlib
import hmac
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import integrations.zammad as zammad_module
from integrations.base import InboundRequest, PayloadError, SignatureError, get_adapter
from integrations.zammad import ZammadAdapter

DATA = Path(__file__).resolve().parents[2] / "data" / "webhooks" / "zammad"
NOW = datetime(2025, 11, 25, 10, 0, 5, tzinfo=timezone.utc)
SECRET = "zammad-signature-token-current"
OLD_SECRET = "zammad-signature-token-previous"
adapter = ZammadAdapter()


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


def request(body: bytes, headers: dict[str, str] | None = None) -> InboundRequest:
    return InboundRequest(method="POST", path="/webhooks/k",
                          headers={k.lower(): v for k, v in (headers or {}).items()}, body=body)


def zammad_headers(body: bytes, secret: str = SECRET, delivery: str = "7a1c9e02-3b4d-4f5a-8c6e-1d2f3a4b5c6d"
                   ) -> dict[str, str]:
    """The headers Zammad sends, the signature computed here independently of ZammadAdapter.sign."""
    return {
        "User-Agent": "Zammad User Agent",
        "X-Zammad-Trigger": "Returns: customer wrote",
        "X-Zammad-Delivery": delivery,
        "X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest(),
    }


# --- signatures -------------------------------------------------------------------------------


def test_sign_produces_headers_verify_accepts() -> None:
    body = load("ticket_created.json")
    adapter.verify(request(body, adapter.sign(body, SECRET, NOW, "job-1")), [SECRET], NOW)


def test_signature_computed_independently_passes() -> None:
    """sha1=<hex HMAC-SHA1(token, body)>, as lib/user_agent.rb computes it, passes."""
    body = load("ticket_created.json")
    adapter.verify(request(body, zammad_headers(body)), [SECRET], NOW)
    assert adapter.sign(body, SECRET, NOW, "job-1")["X-Hub-Signature"] == zammad_headers(body)["X-Hub-Signature"]


def test_wrong_secret_is_refused() -> None:
    body = load("ticket_created.json")
    with pytest.raises(SignatureError):
        adapter.verify(request(body, zammad_headers(body, "not-the-token")), [SECRET], NOW)


def test_tampered_body_is_refused() -> None:
    body = load("ticket_created.json")
    with pytest.raises(SignatureError):
        adapter.verify(request(body.replace(b"#1001", b"#1002"), zammad_headers(body)), [SECRET], NOW)


def test_missing_signature_header_is_refused() -> None:
    """A Zammad webhook saved without a token sends no signature: refused, not trusted."""
    body = load("ticket_created.json")
    headers = zammad_headers(body)
    del headers["X-Hub-Signature"]
    with pytest.raises(SignatureError, match="Missing X-Hub-Signature"):
        adapter.verify(request(body, headers), [SECRET], NOW)


@pytest.mark.parametrize("header", ["sha256=" + "00" * 32, "sha1=zz", "", "sha1="])
def test_malformed_signature_header_is_refused(header: str) -> None:
    body = load("ticket_created.json")
    with pytest.raises(SignatureError):
        adapter.verify(request(body, {"X-Hub-Signature": header}), [SECRET], NOW)


def test_rotated_out_secret_still_passes() -> None:
    body = load("ticket_created.json")
    adapter.verify(request(body, zammad_headers(body, OLD_SECRET)), [SECRET, OLD_SECRET], NOW)


@pytest.mark.parametrize("secrets", [[], [""]])
def test_no_configured_secret_never_skips_the_check(secrets: list[str]) -> None:
    body = load("ticket_created.json")
    with pytest.raises(SignatureError, match="No .* secret"):
        adapter.verify(request(body, zammad_headers(body)), secrets, NOW)


def test_zammad_needs_no_handshake() -> None:
    body = load("ticket_created.json")
    assert adapter.handshake(request(body, zammad_headers(body)), [SECRET]) is None


# --- delivery key -----------------------------------------------------------------------------


def test_delivery_key_is_the_delivery_header_for_every_retry() -> None:
    body = load("ticket_created.json")
    first = adapter.delivery_key(request(body, zammad_headers(body)))
    retry = adapter.delivery_key(request(body, zammad_headers(body)))
    assert first == retry == "7a1c9e02-3b4d-4f5a-8c6e-1d2f3a4b5c6d"


def test_delivery_keys_differ_across_deliveries() -> None:
    body = load("ticket_created.json")
    keys = {adapter.delivery_key(request(body, zammad_headers(body, delivery=f"job-{n}"))) for n in range(3)}
    assert len(keys) == 3


@pytest.mark.parametrize("delivery", [None, "", "x" * 500, "bad\nid"])
def test_delivery_key_falls_back_to_the_body_hash(delivery: str | None) -> None:
    body = load("ticket_created.json")
    headers = {} if delivery is None else {"X-Zammad-Delivery": delivery}
    assert adapter.delivery_key(request(body, headers)) == "sha256:" + hashlib.sha256(body).hexdigest()


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


def test_sample_is_a_new_return_request() -> None:
    event = adapter.parse(request(adapter.sample()))
    assert event.event_type == "ticket.created"
    assert event.message is not None and "#1001" in event.message


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda d: d["ticket"].pop("id"), "ticket.id"),
    (lambda d: d.pop("ticket"), "ticket"),
    (lambda d: d["ticket"].__setitem__("id", None), "ticket.id"),
    (lambda d: d["ticket"].__setitem__("id", True), "ticket.id"),
])
def test_missing_ticket_is_a_payload_error_naming_the_field(mutate: Any, field: str) -> None:
    document = json.loads(load("ticket_created.json"))
    mutate(document)
    with pytest.raises(PayloadError) as error:
        adapter.parse(request(json.dumps(document).encode()))
    assert error.value.field == field


@pytest.mark.parametrize("body", [b"", b"{", b"\xff\xfe", b"[]", b"42", b"[" * 100_000 + b"]" * 100_000])
def test_malformed_json_is_a_payload_error(body: bytes) -> None:
    with pytest.raises(PayloadError) as error:
        adapter.parse(request(body))
    assert error.value.field == "body"


def test_hostile_and_huge_text_does_not_crash() -> None:
    document = json.loads(load("ticket_created.json"))
    document["article"]["body"] = ("<table>" * 20_000 + "<style>x{}</style><![CDATA[ <![bogus[ " + "boots " * 300_000
                                   + "&#x110000;&bogus;")
    document["article"]["from"] = "\"" * 100_000 + "<" * 1000
    document["ticket"]["title"] = "T" * 200_000
    event = adapter.parse(request(json.dumps(document).encode()))
    assert event.message is not None and "x{}" not in event.message
    assert event.message.count("boots") == 300_000


def test_registered_under_its_kind() -> None:
    assert isinstance(get_adapter("zammad"), ZammadAdapter)
    assert ZammadAdapter.kind == "zammad" and ZammadAdapter.secret_names


def test_module_imports_nothing_from_app() -> None:
    tree = ast.parse(Path(zammad_module.__file__).read_text())
    imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert not [name for name in imported if name and (name == "app" or name.startswith("app."))]


# --- properties -------------------------------------------------------------------------------

JSON_KEYS = st.sampled_from(["ticket", "article", "id", "number", "title", "customer", "customer_id", "email",
                             "firstname", "lastname", "article_ids", "article_count", "tags", "body",
                             "content_type", "sender", "from", "internal", "created_at", "updated_at", "subject"])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text()
    | st.sampled_from(["Customer", "Agent", "text/html", "2025-11-25T10:00:00.561Z", "a <b@c.d>"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(JSON_KEYS, children, max_size=6),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=512),
       headers=st.dictionaries(st.sampled_from(["x-hub-signature", "x-zammad-delivery", "x-zammad-trigger"]),
                               st.text(max_size=80)),
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
@given(document=st.dictionaries(JSON_KEYS, JSON_VALUES, max_size=8))
def test_arbitrary_json_shapes_raise_only_payload_errors(document: dict[str, Any]) -> None:
    try:
        event = adapter.parse(request(json.dumps(document).encode()))
    except PayloadError:
        return
    assert all(isinstance(tag, str) for tag in event.tags)
    assert event.occurred_at is None or event.occurred_at.tzinfo is not None


@settings(max_examples=100, deadline=None)
@given(body=st.binary(max_size=256), secret=st.text(min_size=1, max_size=40))
def test_whatever_sign_produces_verify_accepts(body: bytes, secret: str) -> None:
    adapter.verify(request(body, adapter.sign(body, secret, NOW, "d")), [secret], NOW)
