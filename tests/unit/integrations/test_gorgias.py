"""Unit tests for the Gorgias adapter (integrations.gorgias): the shared-secret check, our form
and the Gorgias Ticket object. No app, no DB."""

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
from integrations.gorgias import GorgiasAdapter

DATA = Path(__file__).resolve().parents[2] / "data" / "webhooks" / "gorgias"
NOW = datetime(2026, 3, 2, 9, 14, 8, tzinfo=timezone.utc)
SECRET = "gorgias-shared-secret-current"
OLD_SECRET = "gorgias-shared-secret-previous"
adapter = GorgiasAdapter()


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


def request(body: bytes, headers: dict[str, str] | None = None) -> InboundRequest:
    return InboundRequest(method="POST", path="/webhooks/k", body=body, received_at=NOW,
                          headers={k.lower(): v for k, v in (headers or {}).items()})


def basic(username: str, password: str) -> dict[str, str]:
    """An Authorization header built here with base64 directly, independently of the adapter."""
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def parse(name: str) -> TicketEvent:
    return adapter.parse(request(load(name)))


def with_changes(name: str, **changes: Any) -> bytes:
    return json.dumps(json.loads(load(name)) | changes).encode()


# --- the shared secret ------------------------------------------------------------------------


def test_registered_under_its_kind() -> None:
    """get_adapter("gorgias") finds the adapter; it has no handshake."""
    found = get_adapter("gorgias")
    assert isinstance(found, GorgiasAdapter) and found.kind == "gorgias"
    assert found.handshake(request(b"{}"), [SECRET]) is None


def test_sign_produces_headers_verify_accepts() -> None:
    """What sign() produces (the X-Rebound-Secret header) passes verify()."""
    body = load("form_ticket_created.json")
    headers = adapter.sign(body, SECRET, NOW, "unused")
    assert headers["X-Rebound-Secret"] == SECRET
    adapter.verify(request(body, headers), [SECRET], NOW)


def test_secret_header_written_by_hand_passes() -> None:
    """The header as an admin types it into Gorgias passes."""
    adapter.verify(request(load("form_ticket_created.json"), {"X-Rebound-Secret": SECRET}), [SECRET], NOW)


@pytest.mark.parametrize("username", ["rebound", "", "admin@acme.test"])  # RFC 7617: no ":" in it
def test_basic_auth_password_is_the_secret(username: str) -> None:
    """Basic auth with the secret as password passes, whatever the username."""
    adapter.verify(request(load("form_ticket_created.json"), basic(username, SECRET)), [SECRET], NOW)


def test_wrong_secret_is_refused() -> None:
    """A wrong secret, in the header or as the password, raises SignatureError."""
    body = load("form_ticket_created.json")
    for headers in ({"X-Rebound-Secret": "guess"}, basic("rebound", "guess"), basic(SECRET, "guess")):
        with pytest.raises(SignatureError, match="does not match"):
            adapter.verify(request(body, headers), [SECRET], NOW)


@pytest.mark.parametrize("headers", [
    {}, {"X-Rebound-Secret": "  "}, {"Authorization": "Bearer " + SECRET}, {"Authorization": "Basic !!!"},
    {"Authorization": "Basic " + base64.b64encode(SECRET.encode()).decode()},  # no colon, no password
    {"Authorization": "Basic " + base64.b64encode(b"user:").decode()},
])
def test_missing_secret_is_refused(headers: dict[str, str]) -> None:
    """No header and no usable Basic password: refused as missing."""
    with pytest.raises(SignatureError, match="Missing"):
        adapter.verify(request(load("form_ticket_created.json"), headers), [SECRET], NOW)


def test_a_prefix_of_the_secret_is_refused() -> None:
    """Comparison is of the whole secret, not a prefix."""
    with pytest.raises(SignatureError):
        adapter.verify(request(b"{}", {"X-Rebound-Secret": SECRET[:-1]}), [SECRET], NOW)


def test_changed_body_is_not_detected_by_this_scheme() -> None:
    """Gorgias signs nothing: the secret proves the sender, not the body (documented limit)."""
    body = load("form_ticket_created.json").replace(b"#1001", b"#1002")
    adapter.verify(request(body, {"X-Rebound-Secret": SECRET}), [SECRET], NOW)


def test_rotated_out_secret_still_passes() -> None:
    """The previous secret passes while it is still in the list, in either form."""
    body = load("form_ticket_created.json")
    adapter.verify(request(body, {"X-Rebound-Secret": OLD_SECRET}), [SECRET, OLD_SECRET], NOW)
    adapter.verify(request(body, basic("x", OLD_SECRET)), [SECRET, OLD_SECRET], NOW)


def test_one_right_credential_is_enough() -> None:
    """A stale header next to a right Basic password passes (an admin mid-migration)."""
    headers = {"X-Rebound-Secret": "stale"} | basic("x", SECRET)
    adapter.verify(request(b"{}", headers), [SECRET], NOW)


@pytest.mark.parametrize("secrets", [[], [""]])
def test_no_configured_secret_is_refused_never_skipped(secrets: list[str]) -> None:
    """With no secret configured the check fails, even for an empty header; it is never skipped."""
    with pytest.raises(SignatureError, match="No Gorgias secret"):
        adapter.verify(request(b"{}", {"X-Rebound-Secret": SECRET}), secrets, NOW)


def test_non_ascii_secret() -> None:
    """Secrets are compared as UTF-8."""
    adapter.verify(request(b"{}", {"X-Rebound-Secret": "clé-secrète"}), ["clé-secrète"], NOW)


# --- delivery keys ----------------------------------------------------------------------------


def test_delivery_key_is_the_body_hash() -> None:
    """Gorgias has no delivery id: a retry (same body) has the same key, another body another."""
    body = load("form_ticket_created.json")
    key = adapter.delivery_key(request(body, {"X-Rebound-Secret": SECRET}))
    assert key == "sha256:" + hashlib.sha256(body).hexdigest()
    assert key == adapter.delivery_key(request(body, {"User-Agent": "retry"}))
    assert key != adapter.delivery_key(request(load("form_message_created.json")))


# --- parsing: our form ------------------------------------------------------------------------


def test_parse_form_ticket_created() -> None:
    """Our form on ticket-created: every field lands in the event."""
    event = parse("form_ticket_created.json")
    assert event.provider == "gorgias"
    assert event.ticket_id == "48213907"
    assert event.event_type == "ticket.created"
    assert event.ticket_url == "https://acme-outdoor.gorgias.com/app/ticket/48213907"
    assert event.requester_email == "maria.lopez@example.com"
    assert event.requester_name == "Maria Lopez"
    assert event.requester_id == "3924"
    assert event.subject == "Return request - order #1001"
    assert event.message is not None and event.message.startswith("Hi, I received order #1001 last week.")
    assert event.message_id == "112233445"
    assert event.author_role == "customer"
    assert event.language == "en"
    assert event.custom_fields == {"channel": "email"}
    # Gorgias writes UTC without an offset; it is read as UTC.
    assert event.occurred_at == datetime(2026, 3, 2, 9, 14, 5, 120331, tzinfo=timezone.utc)


def test_sample_is_the_form_fixture() -> None:
    """sample() is the body the setup guide's curl sends."""
    assert json.loads(adapter.sample()) == json.loads(load("form_ticket_created.json"))
    event = parse("form_ticket_created.json")
    assert TicketEvent.from_dict(json.loads(json.dumps(event.to_dict()))) == event  # as the inbox stores it


def test_parse_form_customer_message() -> None:
    """ticket-message-created with a customer's message is a new customer message."""
    event = parse("form_message_created.json")
    assert (event.event_type, event.author_role) == ("message.created", "customer")
    assert event.message == "I can drop it at the post office tomorrow. Do I need to print a label?"
    assert event.message_id == "112233999"
    assert event.occurred_at == datetime(2026, 3, 3, 11, 2, 47, 581204, tzinfo=timezone.utc)


def test_parse_form_agent_reply() -> None:
    """An agent's reply ("True" as Gorgias renders it) updates the ticket, with no message."""
    event = parse("form_agent_reply.json")
    assert (event.event_type, event.author_role, event.message) == ("ticket.updated", "agent", None)


def test_form_tags_comma_separated() -> None:
    """A tags value in the form is read as comma-separated names."""
    assert adapter.parse(request(with_changes("form_ticket_created.json", tags="returns, vip,,returns"))).tags == \
        ("returns", "vip")


def test_form_without_from_agent_keeps_the_message() -> None:
    """A form that leaves out message_from_agent still gets its message read (role unknown)."""
    payload = json.loads(load("form_message_created.json"))
    del payload["message_from_agent"]
    event = adapter.parse(request(json.dumps(payload).encode()))
    assert event.event_type == "message.created" and event.author_role == "unknown"
    assert event.message == "I can drop it at the post office tomorrow. Do I need to print a label?"


@pytest.mark.parametrize("value", ["", "   ", "{{ticket.id}}", None, "48213907x", False, {"id": 1}])
def test_form_without_ticket_number_names_ticket_id(value: Any) -> None:
    """A missing, blank, unrendered or non-numeric ticket_id is a PayloadError naming it."""
    with pytest.raises(PayloadError) as error:
        adapter.parse(request(with_changes("form_ticket_created.json", ticket_id=value)))
    assert error.value.field == "ticket_id"


# --- parsing: the Ticket object ---------------------------------------------------------------


def test_parse_ticket_object_bare() -> None:
    """A bare Ticket object: the last message not from an agent, tags by name, customer."""
    event = parse("ticket_object.json")
    assert event.ticket_id == "48213907"
    assert event.event_type == "message.created"  # no event named: the last message is the customer's
    assert event.message == "A refund please.\n\nMaria"
    assert event.message_id == "112233999"
    assert event.author_role == "customer"
    assert event.requester_email == "maria.lopez@example.com"
    assert event.requester_name == "Maria Lopez"
    assert event.tags == ("returns", "vip")
    assert event.language == "en"
    assert event.ticket_url is None  # the object only has its API uri
    assert event.occurred_at == datetime(2026, 3, 2, 12, 30, 9, 300000, tzinfo=timezone.utc)


@pytest.mark.parametrize("event_name, expected_type, has_message", [
    ("ticket-created", "ticket.created", True),
    ("ticket_created", "ticket.created", True),  # the older API's spelling
    ("ticket-message-created", "message.created", True),
    ("ticket-updated", "ticket.updated", False),
    ("ticket-self-unsnoozed", "other", False),
])
def test_ticket_object_under_ticket_with_event(event_name: str, expected_type: str, has_message: bool) -> None:
    """{"event": …, "ticket": {…}}: the event names the type; only new messages are carried."""
    body = json.dumps({"event": event_name, "ticket": json.loads(load("ticket_object.json"))}).encode()
    event = adapter.parse(request(body))
    assert event.event_type == expected_type
    assert (event.message is not None) == has_message


def test_ticket_object_agent_last_is_an_update() -> None:
    """When the last message is the agent's, the event is an agent update without a message."""
    ticket = json.loads(load("ticket_object.json"))
    ticket["messages"] = ticket["messages"][:2]
    event = adapter.parse(request(json.dumps({"event": "ticket-message-created", "ticket": ticket}).encode()))
    assert (event.event_type, event.author_role, event.message) == ("ticket.updated", "agent", None)


def test_ticket_object_html_only_message() -> None:
    """A message with only body_html is converted to text."""
    ticket = json.loads(load("ticket_object.json"))
    ticket["messages"][-1]["body_text"] = None
    ticket["messages"][-1]["body_html"] = "<p>A refund<br>please</p>"
    assert adapter.parse(request(json.dumps(ticket).encode())).message == "A refund\nplease"


def test_ticket_object_without_id_names_ticket_id() -> None:
    """A Ticket object without id is a PayloadError naming ticket.id."""
    ticket = json.loads(load("ticket_object.json"))
    del ticket["id"]
    for body in (ticket, {"event": "ticket-created", "ticket": ticket}):
        with pytest.raises(PayloadError) as error:
            adapter.parse(request(json.dumps(body).encode()))
        assert error.value.field == "ticket.id"


# --- bad and hostile input --------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"", b"{", b"ticket_id=1", b"\xff\xfe", b"[]", b"1", b"[" * 50_000])
def test_malformed_json_is_a_payload_error(body: bytes) -> None:
    """Bodies that are not a JSON object raise PayloadError naming the body."""
    with pytest.raises(PayloadError) as error:
        adapter.parse(request(body))
    assert error.value.field == "body"


def test_hostile_and_huge_text_does_not_crash() -> None:
    """Megabytes of text, NULs, lone surrogates and odd types are handled."""
    ticket = json.loads(load("ticket_object.json"))
    ticket["messages"][-1]["body_text"] = "\x00\ud800<b>" + "please return #1001 " * 60_000
    ticket["messages"].insert(0, "not a message")
    ticket["tags"] = [{"name": "a"}, {"name": 5}, {"name": None}, "b", None, [], {"name": "a"}]
    ticket["customer"] = ["not", "an", "object"]
    ticket["created_datetime"] = "31/12/2026"
    event = adapter.parse(request(json.dumps(ticket).encode()))
    assert event.message is not None and len(event.message) > 1_000_000 and "\x00" not in event.message
    event.message.encode("utf-8")
    assert event.tags == ("a", "5", "b")
    assert event.requester_email is None


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
@given(payload=st.dictionaries(
    st.sampled_from(["event", "ticket_id", "message", "message_from_agent", "customer_email", "tags", "ticket",
                     "id", "messages", "customer", "created_datetime", "updated_datetime", "from_agent"]),
    json_values))
def test_fuzz_ticket_shaped_json_raises_only_payload_error(payload: dict[str, Any]) -> None:
    """Form- or ticket-shaped JSON with arbitrary values parses or raises PayloadError, nothing else."""
    try:
        parsed = adapter.parse(request(json.dumps(payload).encode()))
    except PayloadError:
        return
    assert parsed.ticket_id.isdigit()
    assert all(isinstance(tag, str) for tag in parsed.tags)
    assert parsed.occurred_at is None or parsed.occurred_at.tzinfo is not None
