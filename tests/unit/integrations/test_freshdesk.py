"""Unit tests for the Freshdesk adapter (integrations.freshdesk): the shared-secret check and our
automation-rule template. No app, no DB."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.base import InboundRequest, PayloadError, SignatureError, TicketEvent, get_adapter
from integrations.freshdesk import FreshdeskAdapter

DATA = Path(__file__).resolve().parents[2] / "data" / "webhooks" / "freshdesk"
NOW = datetime(2026, 3, 2, 9, 14, 8, tzinfo=timezone.utc)
SECRET = "freshdesk-shared-secret-current"
OLD_SECRET = "freshdesk-shared-secret-previous"
adapter = FreshdeskAdapter()


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


def request(body: bytes, headers: dict[str, str] | None = None, received_at: datetime | None = NOW) -> InboundRequest:
    return InboundRequest(method="POST", path="/webhooks/k", body=body, received_at=received_at,
                          headers={k.lower(): v for k, v in (headers or {}).items()})


def basic(username: str, password: str) -> dict[str, str]:
    """An Authorization header built here with base64 directly, independently of the adapter."""
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def parse(name: str) -> TicketEvent:
    return adapter.parse(request(load(name)))


def with_ticket(name: str, **changes: Any) -> bytes:
    payload = json.loads(load(name))
    payload["ticket"] |= changes
    return json.dumps(payload).encode()


# --- the shared secret ------------------------------------------------------------------------


def test_registered_under_its_kind() -> None:
    """get_adapter("freshdesk") finds the adapter; it has no handshake."""
    found = get_adapter("freshdesk")
    assert isinstance(found, FreshdeskAdapter) and found.kind == "freshdesk"
    assert found.handshake(request(b"{}"), [SECRET]) is None


def test_sign_produces_headers_verify_accepts() -> None:
    """What sign() produces (the X-Rebound-Secret header) passes verify()."""
    body = load("ticket_created.json")
    headers = adapter.sign(body, SECRET, NOW, "unused")
    assert headers["X-Rebound-Secret"] == SECRET
    adapter.verify(request(body, headers), [SECRET], NOW)


def test_custom_header_written_by_hand_passes() -> None:
    """The custom header as an admin adds it to the rule passes (header names are case-free)."""
    adapter.verify(request(load("ticket_created.json"), {"x-rebound-secret": SECRET}), [SECRET], NOW)


def test_rule_basic_auth_passes() -> None:
    """The rule's username/password authentication, with the secret as password, passes."""
    adapter.verify(request(load("ticket_created.json"), basic("rebound", SECRET)), [SECRET], NOW)


def test_wrong_secret_is_refused() -> None:
    """A wrong secret, in the header or as the password, raises SignatureError."""
    body = load("ticket_created.json")
    for headers in ({"X-Rebound-Secret": "guess"}, basic("rebound", "guess")):
        with pytest.raises(SignatureError, match="does not match"):
            adapter.verify(request(body, headers), [SECRET], NOW)


@pytest.mark.parametrize("headers", [{}, {"X-Rebound-Secret": ""}, {"Authorization": "Basic Og=="}])
def test_missing_secret_is_refused(headers: dict[str, str]) -> None:
    """No header and no Basic password: refused as missing."""
    with pytest.raises(SignatureError, match="Missing"):
        adapter.verify(request(load("ticket_created.json"), headers), [SECRET], NOW)


def test_changed_body_is_not_detected_by_this_scheme() -> None:
    """Freshdesk signs nothing: the secret proves the sender, not the body (documented limit)."""
    body = load("ticket_created.json").replace(b"#1001", b"#1002")
    adapter.verify(request(body, {"X-Rebound-Secret": SECRET}), [SECRET], NOW)


def test_rotated_out_secret_still_passes() -> None:
    """The previous secret passes while it is still in the list."""
    adapter.verify(request(b"{}", {"X-Rebound-Secret": OLD_SECRET}), [SECRET, OLD_SECRET], NOW)


@pytest.mark.parametrize("secrets", [[], [""]])
def test_no_configured_secret_is_refused_never_skipped(secrets: list[str]) -> None:
    """With no secret configured the check fails; it is never skipped."""
    with pytest.raises(SignatureError, match="No Freshdesk secret"):
        adapter.verify(request(b"{}", {"X-Rebound-Secret": SECRET}), secrets, NOW)


# --- delivery keys ----------------------------------------------------------------------------


def test_delivery_key_is_the_body_hash() -> None:
    """Freshdesk has no delivery id: a retry (same body) has the same key, another body another."""
    body = load("ticket_created.json")
    key = adapter.delivery_key(request(body))
    assert key == "sha256:" + hashlib.sha256(body).hexdigest()
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


def test_sample_is_the_created_fixture() -> None:
    """sample() is the body the setup guide's curl sends."""
    assert json.loads(adapter.sample()) == json.loads(load("ticket_created.json"))
    event = parse("ticket_created.json")
    assert TicketEvent.from_dict(json.loads(json.dumps(event.to_dict()))) == event  # as the inbox stores it


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


@pytest.mark.parametrize("value", [None, "", "{{ticket.id}}", "12 87", -5, True])
def test_without_ticket_number_names_ticket_id(value: Any) -> None:
    """A missing, blank, unrendered or non-numeric ticket.id is a PayloadError naming it."""
    with pytest.raises(PayloadError) as error:
        adapter.parse(request(with_ticket("ticket_created.json", id=value)))
    assert error.value.field == "ticket.id"


@pytest.mark.parametrize("body", [b'{"event": "ticket_created"}', b'{"ticket": "1287"}', b'{"ticket": null}'])
def test_without_ticket_object_names_ticket_id(body: bytes) -> None:
    """A body without the ticket object names ticket.id too."""
    with pytest.raises(PayloadError) as error:
        adapter.parse(request(body))
    assert error.value.field == "ticket.id"


# --- bad and hostile input --------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"", b"{", b"ticket[id]=1", b"\xff\xfe", b"[]", b'"x"', b"[" * 50_000])
def test_malformed_json_is_a_payload_error(body: bytes) -> None:
    """Bodies that are not a JSON object (Freshdesk can also send XML or a form) are refused."""
    with pytest.raises(PayloadError) as error:
        adapter.parse(request(body))
    assert error.value.field == "body"


def test_hostile_and_huge_html_does_not_crash() -> None:
    """Megabytes of hostile HTML, NULs and odd types are handled."""
    body = with_ticket("ticket_created.json",
                       description="<script>x()</script>\x00\ud800" + "<a " * 50_000 + "<p>return #1001</p>" * 30_000,
                       tags=["a", None, 3, {"b": 1}], requester="maria@example.com", custom_fields=["x"])
    event = adapter.parse(request(body))
    assert event.message is not None and "return #1001" in event.message and "x()" not in event.message
    assert "\x00" not in event.message
    event.message.encode("utf-8")
    assert event.tags == ("a", "3") and event.requester_email is None and event.custom_fields == {}


def test_naive_received_at_is_read_as_utc() -> None:
    """occurred_at is always timezone-aware."""
    event = adapter.parse(request(load("ticket_created.json"), received_at=NOW.replace(tzinfo=None)))
    assert event.occurred_at == NOW


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=2000), secret_header=st.text(max_size=60), authorization=st.text(max_size=80))
def test_fuzz_arbitrary_bytes_raise_only_our_errors(body: bytes, secret_header: str, authorization: str) -> None:
    """Any body and header values: verify raises only SignatureError, parse only PayloadError."""
    inbound = request(body, {"X-Rebound-Secret": secret_header, "Authorization": authorization})
    try:
        adapter.verify(inbound, [SECRET], NOW)
    except SignatureError:
        pass
    try:
        adapter.parse(inbound)
    except PayloadError:
        pass
    adapter.delivery_key(inbound)


@settings(max_examples=300, deadline=None)
@given(event=json_values, ticket=st.dictionaries(
    st.sampled_from(["id", "subject", "url", "tags", "description", "latest_public_comment", "requester",
                     "custom_fields"]), json_values))
def test_fuzz_template_shaped_json_raises_only_payload_error(event: Any, ticket: dict[str, Any]) -> None:
    """Template-shaped JSON with arbitrary values parses or raises PayloadError, nothing else."""
    try:
        parsed = adapter.parse(request(json.dumps({"event": event, "ticket": ticket}).encode()))
    except PayloadError:
        return
    assert parsed.ticket_id.isdigit()
    assert all(isinstance(tag, str) for tag in parsed.tags)
