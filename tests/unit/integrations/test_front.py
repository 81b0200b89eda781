"""Unit tests for what only the Front adapter (integrations.front) does: its two signature schemes
computed by hand (the contract in test_adapter_contract.py checks the application scheme sign()
uses by default; the rule scheme is checked here), the challenge, event ids in the body, parsing.
No app, no DB."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from helpers import body_hash, inbound, json_values, loader, payload_error_field, well_formed_or_none
from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.base import Handshake, SignatureError
from integrations.front import FrontAdapter

NOW = datetime(2025, 11, 25, 10, 0, 5, tzinfo=timezone.utc)
SECRET = "front-secret-current"
OLD_SECRET = "front-secret-previous"
adapter = FrontAdapter()
load = loader("front")
request = inbound


def app_headers(body: bytes, secret: str = SECRET, at: datetime = NOW) -> dict[str, str]:
    """Application-webhook headers computed here, independently of FrontAdapter.sign."""
    stamp = str(int(at.timestamp() * 1000))
    digest = hmac.new(secret.encode(), stamp.encode() + b":" + body, hashlib.sha256).digest()
    return {"X-Front-Request-Timestamp": stamp, "X-Front-Signature": base64.b64encode(digest).decode()}


def rule_headers(body: bytes, secret: str = SECRET) -> dict[str, str]:
    """Rule-webhook headers computed here, independently of FrontAdapter.sign."""
    digest = hmac.new(secret.encode(), body, hashlib.sha1).digest()
    return {"X-Front-Signature": base64.b64encode(digest).decode()}


# --- signatures -------------------------------------------------------------------------------


def test_rule_scheme_sign_produces_headers_verify_accepts() -> None:
    """What sign(scheme="rule") produces passes verify() (the application scheme: contract)."""
    body = load("rule_inbound_new_conversation.json")
    adapter.verify(request(body, adapter.sign(body, SECRET, NOW, "unused", scheme="rule")), [SECRET], NOW)


def test_application_signature_computed_independently_passes() -> None:
    """base64(HMAC-SHA256(secret, timestamp + ":" + body)) computed with hmac directly passes."""
    body = load("app_inbound_received.json")
    adapter.verify(request(body, app_headers(body)), [SECRET], NOW)


def test_rule_signature_computed_independently_passes() -> None:
    """base64(HMAC-SHA1(secret, body)) computed with hmac directly passes."""
    body = load("rule_inbound_new_conversation.json")
    adapter.verify(request(body, rule_headers(body)), [SECRET], NOW)


def test_sign_matches_the_independent_computation() -> None:
    """sign() and the test's own HMACs agree byte for byte."""
    body = load("rule_inbound_new_conversation.json")
    signed = adapter.sign(body, SECRET, NOW, "unused")
    assert signed["X-Front-Signature"] == app_headers(body)["X-Front-Signature"]
    assert signed["X-Front-Request-Timestamp"] == app_headers(body)["X-Front-Request-Timestamp"]
    assert adapter.sign(body, SECRET, NOW, "unused", scheme="rule")["X-Front-Signature"] == \
        rule_headers(body)["X-Front-Signature"]


def test_rule_signature_with_another_secret_or_body_is_refused() -> None:
    """A rule signature made with another secret, or over another body, is refused."""
    body = load("rule_inbound_new_conversation.json")
    with pytest.raises(SignatureError, match="rule webhook signature does not match"):
        adapter.verify(request(body, rule_headers(body, "not-the-secret")), [SECRET], NOW)
    with pytest.raises(SignatureError, match="rule webhook signature does not match"):
        adapter.verify(request(body.replace(b"#1001", b"#1002"), rule_headers(body)), [SECRET], NOW)


def test_rule_signature_with_a_rotated_out_secret_still_passes() -> None:
    body = load("rule_inbound_new_conversation.json")
    adapter.verify(request(body, rule_headers(body, OLD_SECRET)), [SECRET, OLD_SECRET], NOW)


@pytest.mark.parametrize("secrets", [[], [""]])
def test_rule_scheme_without_a_configured_secret_never_skips_the_check(secrets: list[str]) -> None:
    """Without a secret a well-formed rule webhook is refused too."""
    body = load("rule_inbound_new_conversation.json")
    with pytest.raises(SignatureError, match="No Front rule webhook secret"):
        adapter.verify(request(body, rule_headers(body)), secrets, NOW)


def test_application_signature_without_its_timestamp_does_not_pass_as_rule_webhook() -> None:
    """Dropping the timestamp header does not downgrade an application webhook into a rule one."""
    body = load("app_inbound_received.json")
    headers = app_headers(body)
    del headers["X-Front-Request-Timestamp"]
    with pytest.raises(SignatureError):
        adapter.verify(request(body, headers), [SECRET], NOW)


# --- challenge --------------------------------------------------------------------------------


def test_signed_challenge_is_answered_with_the_challenge() -> None:
    """Front's validation request gets 200 and {"challenge": …} back."""
    body = load("app_sync.json")
    inbound = request(body, app_headers(body) | {"X-Front-Challenge": "c4f1b7e2-challenge"})
    adapter.verify(inbound, [SECRET], NOW)
    answer = adapter.handshake(inbound, [SECRET])
    assert answer == Handshake(status=200, body='{"challenge": "c4f1b7e2-challenge"}', content_type="application/json")
    assert json.loads(answer.body) == {"challenge": "c4f1b7e2-challenge"}


@pytest.mark.parametrize("headers_for", [lambda body: app_headers(body, "not-the-secret"), rule_headers,
                                         lambda body: {}])
def test_unsigned_challenge_is_not_answered(headers_for: Any) -> None:
    """A challenge without a valid application signature is refused, not echoed."""
    body = load("app_sync.json")
    inbound = request(body, headers_for(body) | {"X-Front-Challenge": "attacker"})
    with pytest.raises(SignatureError):
        adapter.handshake(inbound, [SECRET])


def test_challenge_echo_is_json_escaped() -> None:
    """A challenge with quotes cannot break out of the JSON answer."""
    body = load("app_sync.json")
    challenge = 'x", "evil": "1'
    answer = adapter.handshake(request(body, app_headers(body) | {"X-Front-Challenge": challenge}), [SECRET])
    assert answer is not None and json.loads(answer.body) == {"challenge": challenge}


# --- delivery key -----------------------------------------------------------------------------


def test_delivery_key_is_the_event_id_for_every_retry() -> None:
    """Retries are signed anew (new timestamp) but share the event id, hence the key."""
    body = load("app_inbound_received.json")
    first = adapter.delivery_key(request(body, app_headers(body)))
    retry = adapter.delivery_key(request(body, app_headers(body, at=NOW + timedelta(seconds=30))))
    assert first == retry == "evt_3g8vq1kz"
    assert adapter.delivery_key(request(load("rule_inbound_new_conversation.json"), {})) == "evt_3g8vq1kz"


def test_delivery_keys_differ_across_events() -> None:
    names = ["rule_inbound_new_conversation.json", "rule_inbound_reply.json", "rule_outbound_reply.json",
             "rule_tag.json", "app_sync.json"]
    keys = [adapter.delivery_key(request(load(name), {})) for name in names]
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize("body", [b"{not json", b'{"id": ' + b'"' + b"e" * 500 + b'"}', b"[1, 2]", b""])
def test_delivery_key_falls_back_to_the_body_hash(body: bytes) -> None:
    """Without a usable event id (none, or too long to be one) the key is the body's hash."""
    assert adapter.delivery_key(request(body, {})) == body_hash(body)


# --- parsing ----------------------------------------------------------------------------------


def test_parse_new_conversation_from_a_rule_webhook() -> None:
    """An inbound message that replies to nothing opens the ticket; every field is read."""
    event = adapter.parse(request(load("rule_inbound_new_conversation.json"), {}))
    assert event.provider == "front"
    assert event.ticket_id == "cnv_yo1kg5q"
    assert event.event_type == "ticket.created"
    assert event.ticket_url == "https://app.frontapp.com/open/cnv_yo1kg5q"
    assert event.requester_email == "dana.whitfield@example.com"
    assert event.requester_name == "Dana Whitfield"
    assert event.requester_id == "crd_2x7kq1"
    assert event.subject == "Return for order #1001"
    assert event.message == ("Hello,\n\nI'd like to return the hiking boots from order #1001 – they are a size "
                             "too small.\nCould you send me a return label?\n\nThanks,\nDana")
    assert event.message_id == "msg_1q15qmtq"
    assert event.author_role == "customer"
    assert event.tags == ("returns",)
    assert event.custom_fields == {"Order number": "#1001"}  # booleans are not text fields
    assert event.occurred_at == datetime(2025, 11, 25, 10, 0, 1, 4000, tzinfo=timezone.utc)
    assert event.external_event_id == "evt_3g8vq1kz"


def test_parse_application_webhook_reads_the_wrapped_event() -> None:
    """The application envelope gives the same event, plus the company it came from."""
    wrapped = adapter.parse(request(load("app_inbound_received.json"), {}))
    bare = adapter.parse(request(load("rule_inbound_new_conversation.json"), {}))
    assert wrapped.custom_fields == {**bare.custom_fields, "front_company_id": "cmp_4d8a2"}
    assert {**wrapped.to_dict(), "custom_fields": None} == {**bare.to_dict(), "custom_fields": None}


def test_parse_customer_reply_is_a_message_and_html_becomes_text() -> None:
    event = adapter.parse(request(load("rule_inbound_reply.json"), {}))
    assert event.event_type == "message.created"
    assert event.author_role == "customer"
    assert event.message is not None and event.message.startswith("Here are the photos of the boots.")
    assert "<" not in event.message
    assert event.tags == ("returns", "RMA-10042")


def test_parse_agent_reply_carries_no_customer_message() -> None:
    event = adapter.parse(request(load("rule_outbound_reply.json"), {}))
    assert (event.event_type, event.author_role, event.message) == ("other", "agent", None)
    assert event.requester_email == "dana.whitfield@example.com"  # the conversation's contact


def test_parse_tag_event_updates_the_ticket() -> None:
    event = adapter.parse(request(load("rule_tag.json"), {}))
    assert event.event_type == "ticket.updated"
    assert event.tags == ("returns", "damaged")
    assert event.message is None


def test_parse_validation_request_is_a_ping() -> None:
    event = adapter.parse(request(load("app_sync.json"), {}))
    assert (event.event_type, event.ticket_id) == ("ping", "")


def test_sample_comes_from_the_customer() -> None:
    """sample() is a new return request (contract) from the conversation's contact."""
    assert adapter.parse(request(adapter.sample(), {})).requester_email == "dana.whitfield@example.com"


def without(document: dict[str, Any], *path: str) -> bytes:
    copy = json.loads(json.dumps(document))
    node = copy
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return json.dumps(copy).encode()


@pytest.mark.parametrize(("path", "field"), [
    (("conversation", "id"), "conversation.id"),
    (("conversation",), "conversation"),
])
def test_missing_conversation_is_a_payload_error_naming_the_field(path: tuple[str, ...], field: str) -> None:
    body = without(json.loads(load("rule_inbound_new_conversation.json")), *path)
    assert payload_error_field(adapter, request(body, {})) == field


def test_missing_conversation_id_in_application_webhook_names_the_field() -> None:
    body = without(json.loads(load("app_inbound_received.json")), "payload", "conversation", "id")
    assert payload_error_field(adapter, request(body, {})) == "conversation.id"


def test_overlong_conversation_id_is_refused() -> None:
    document = json.loads(load("rule_inbound_new_conversation.json"))
    document["conversation"]["id"] = "cnv_" + "x" * 200
    assert payload_error_field(adapter, request(json.dumps(document).encode(), {})) == "conversation.id"


def test_hostile_and_huge_text_does_not_crash() -> None:
    """Megabytes of nested, broken and scripted HTML still give plain text."""
    document = json.loads(load("rule_inbound_reply.json"))
    hostile = ("<div>" * 20_000 + "<script>alert(1)</script><![x[ <style>p{}</style>&#99999999;\u202e\u0000"
               + "word " * 200_000 + "</div>" * 5)
    document["target"]["data"]["body"] = hostile
    document["conversation"]["subject"] = "S" * 100_000
    event = adapter.parse(request(json.dumps(document).encode(), {}))
    assert event.message is not None and "alert(1)" not in event.message
    assert event.message.count("word") == 200_000


def test_hostile_html_declaration_falls_back_to_stripping_tags() -> None:
    """HTMLParser asserts on '<![x['; the text still comes out."""
    document = json.loads(load("rule_inbound_reply.json"))
    document["target"]["data"]["body"] = "<p>Boots</p><![if[ <b>order #1001</b>"
    event = adapter.parse(request(json.dumps(document).encode(), {}))
    assert event.message is not None and "Boots" in event.message and "#1001" in event.message


# --- properties -------------------------------------------------------------------------------

JSON_KEYS = st.sampled_from(["type", "payload", "conversation", "id", "target", "_meta", "data", "recipients",
                             "recipient", "handle", "role", "tags", "name", "text", "body", "emitted_at",
                             "created_at", "custom_fields", "authorization", "_links", "related", "contact",
                             "is_inbound", "message_replied_to", "subject"])
JSON_VALUES = json_values(JSON_KEYS, "inbound", "sync", "message")


@settings(max_examples=200, deadline=None)
@given(document=st.dictionaries(JSON_KEYS, JSON_VALUES, max_size=8))
def test_arbitrary_json_shapes_raise_only_payload_errors(document: dict[str, Any]) -> None:
    """Fields of the wrong type anywhere give a PayloadError or a well-formed event."""
    event = well_formed_or_none(adapter, request(json.dumps(document).encode(), {}))
    assert event is None or len(event.ticket_id) <= 100


@settings(max_examples=100, deadline=None)
@given(body=st.binary(max_size=256), secret=st.text(min_size=1, max_size=40))
def test_whatever_rule_scheme_sign_produces_verify_accepts(body: bytes, secret: str) -> None:
    adapter.verify(request(body, adapter.sign(body, secret, NOW, "d", scheme="rule")), [secret], NOW)
