"""Unit tests for what only the Help Scout adapter (integrations.helpscout) does: its signature
computed by hand, event-and-body delivery keys, the v2 Conversation payload, the test event, and
the HTML-to-text converter as it reads Help Scout threads. The contract all adapters keep is in
test_adapter_contract.py. No app, no DB."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import time
from datetime import datetime, timezone
from typing import Any

import pytest
from helpers import inbound, json_values, loader, payload_error_field, well_formed_or_none
from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.base import InboundRequest, TicketEvent
from integrations.helpscout import HelpScoutAdapter
from integrations.text import html_to_text

NOW = datetime(2026, 3, 3, 8, 45, 20, tzinfo=timezone.utc)
SECRET = "hs-secret-key-40-chars-or-less"
adapter = HelpScoutAdapter()
load = loader("helpscout")


def request(body: bytes, headers: dict[str, str] | None = None, event: str | None = None) -> InboundRequest:
    return inbound(body, (headers or {}) | ({} if event is None else {"X-HelpScout-Event": event}), received_at=NOW)


def helpscout_signature(body: bytes) -> dict[str, str]:
    """The header computed here with hmac and base64 directly, independently of sign()."""
    digest = hmac.new(SECRET.encode(), body, hashlib.sha1).digest()
    return {"X-HelpScout-Signature": base64.b64encode(digest).decode()}


def parse(name: str, event: str) -> TicketEvent:
    return adapter.parse(request(load(name), event=event))


# --- signatures -------------------------------------------------------------------------------


def test_signature_computed_independently_passes() -> None:
    """base64(HMAC-SHA1(secret, body)) computed with hmac directly passes."""
    body = load("convo_customer_reply.json")
    adapter.verify(request(body, helpscout_signature(body), "convo.customer.reply.created"), [SECRET], NOW)


def test_documented_php_example_matches() -> None:
    """Help Scout's PHP example, base64_encode(hash_hmac('sha1', $data, KEY, true)), as fixed bytes."""
    body = b'{"id":1}'
    expected = base64.b64encode(hmac.new(b"my-secret-key", body, hashlib.sha1).digest()).decode()
    assert adapter.sign(body, "my-secret-key", NOW, "x")["X-HelpScout-Signature"] == expected
    adapter.verify(request(body, {"X-HelpScout-Signature": expected}), ["my-secret-key"], NOW)


def test_sign_names_the_created_event() -> None:
    """sign() sends the event header a new conversation carries."""
    assert adapter.sign(b"{}", SECRET, NOW, "x")["X-HelpScout-Event"] == "convo.created"


# --- delivery keys ----------------------------------------------------------------------------


def test_delivery_key_is_stable_for_one_delivery() -> None:
    """A retry (same event, same body) has the same key, whatever else differs."""
    body = load("convo_customer_reply.json")
    first = adapter.delivery_key(request(body, helpscout_signature(body), "convo.customer.reply.created"))
    retry = adapter.delivery_key(request(body, {"User-Agent": "retry"}, "convo.customer.reply.created"))
    assert first == retry


def test_delivery_key_differs_between_deliveries() -> None:
    """Another body, or the same body for another event, is another delivery."""
    reply, created = load("convo_customer_reply.json"), load("convo_created.json")
    keys = {
        adapter.delivery_key(request(reply, event="convo.customer.reply.created")),
        adapter.delivery_key(request(reply, event="convo.tags")),
        adapter.delivery_key(request(created, event="convo.customer.reply.created")),
        adapter.delivery_key(request(created)),
    }
    assert len(keys) == 4


# --- parsing ----------------------------------------------------------------------------------


def test_parse_convo_created() -> None:
    """convo.created: the conversation, its customer and the first message as plain text."""
    event = parse("convo_created.json", "convo.created")
    assert event.provider == "helpscout"
    assert event.ticket_id == "2391938111"
    assert event.event_type == "ticket.created"
    assert event.ticket_url == "https://secure.helpscout.net/conversation/2391938111/349/"
    assert event.requester_email == "maria.lopez@example.com"
    assert event.requester_name == "Maria Lopez"
    assert event.requester_id == "238604"
    assert event.subject == "Return for order #1001"
    assert event.message == ("Hello,\n\nI received order #1001 on Monday but the running shoes are too small. "
                             "I would like to return them for a refund.\n\nThanks,\nMaria")
    assert event.message_id == "88171881"
    assert event.author_role == "customer"
    assert event.tags == ("returns",)
    assert event.custom_fields == {"Order number": "1001"}
    assert event.occurred_at == datetime(2026, 3, 2, 9, 14, 5, tzinfo=timezone.utc)


def test_parse_customer_reply_takes_the_newest_customer_thread() -> None:
    """convo.customer.reply.created: the newest customer thread, not the agent's or the note."""
    event = parse("convo_customer_reply.json", "convo.customer.reply.created")
    assert event.event_type == "message.created" and event.author_role == "customer"
    assert event.message_id == "88171999"
    assert event.message is not None
    assert event.message.startswith("Great, I've printed the label and will drop the parcel off today.\n\nMaria")
    assert "RMA-10042" not in event.message  # the internal note
    assert event.occurred_at == datetime(2026, 3, 3, 8, 45, 12, tzinfo=timezone.utc)


def test_newest_thread_is_found_in_any_order() -> None:
    """The threads' order is unspecified: createdAt decides."""
    payload = json.loads(load("convo_customer_reply.json"))
    for seed in range(5):
        random.Random(seed).shuffle(payload["_embedded"]["threads"])
        event = adapter.parse(request(json.dumps(payload).encode(), event="convo.customer.reply.created"))
        assert event.message_id == "88171999"


def test_without_times_the_first_thread_wins() -> None:
    """Without createdAt, the API's newest-first order is trusted."""
    payload = json.loads(load("convo_customer_reply.json"))
    for thread in payload["_embedded"]["threads"]:
        del thread["createdAt"]
    event = adapter.parse(request(json.dumps(payload).encode(), event="convo.customer.reply.created"))
    assert event.message_id == "88171999"


def test_drafts_are_not_messages() -> None:
    """A draft customer thread is skipped."""
    payload = json.loads(load("convo_customer_reply.json"))
    payload["_embedded"]["threads"][0]["state"] = "draft"
    event = adapter.parse(request(json.dumps(payload).encode(), event="convo.customer.reply.created"))
    assert event.message_id == "88171881"


def test_parse_agent_reply_carries_no_customer_message() -> None:
    """convo.agent.reply.created is an update by an agent; no message reaches the case."""
    event = parse("convo_agent_reply.json", "convo.agent.reply.created")
    assert (event.event_type, event.author_role, event.message, event.message_id) == \
        ("ticket.updated", "agent", None, None)
    assert event.requester_email == "maria.lopez@example.com"


@pytest.mark.parametrize("name, event_name, expected", [
    ("convo_customer_reply.json", "convo.status", "ticket.updated"),
    ("convo_customer_reply.json", "convo.tags", "ticket.updated"),
    ("convo_deleted.json", "convo.deleted", "ticket.updated"),
    ("convo_created.json", "customer.created", "other"),
    ("convo_created.json", "", "other"),
])
def test_other_events_repeat_no_message(name: str, event_name: str, expected: str) -> None:
    """Status, tags, deletion and non-conversation events never repeat the customer's message."""
    event = parse(name, event_name)
    assert event.event_type == expected and event.message is None
    assert event.ticket_id == "2391938111"


@pytest.mark.parametrize("body", [b'{"hello": "world"}', b"", b"not json"])
def test_test_event_is_a_ping(body: bytes) -> None:
    """The Help Scout 'Test' button sends helpscout.test: a ping, whatever its body."""
    assert adapter.parse(request(body, event="helpscout.test")).event_type == "ping"


def test_agent_created_conversation() -> None:
    """A conversation an agent started (source.via user) is not the customer's."""
    payload = json.loads(load("convo_created.json"))
    payload["source"]["via"] = "user"
    event = adapter.parse(request(json.dumps(payload).encode(), event="convo.created"))
    assert event.author_role == "agent" and event.message is None


def test_url_is_built_when_links_are_missing() -> None:
    """Without _links.web the documented secure.helpscout.net URL is built from id and number."""
    payload = json.loads(load("convo_created.json"))
    del payload["_links"]
    event = adapter.parse(request(json.dumps(payload).encode(), event="convo.created"))
    assert event.ticket_url == "https://secure.helpscout.net/conversation/2391938111/349/"


@pytest.mark.parametrize("value", ["", "abc", "{{id}}", True, [1], {"id": 1}])  # null: contract
def test_bad_id_names_id(value: Any) -> None:
    """A conversation id that is not a number is a PayloadError naming "id"."""
    payload = json.loads(load("convo_created.json"))
    payload["id"] = value
    assert payload_error_field(adapter, request(json.dumps(payload).encode(), event="convo.created")) == "id"


def test_hostile_and_huge_html_does_not_crash() -> None:
    """A megabyte of hostile markup becomes bounded, safe plain text quickly (NULs and lone
    surrogates in the message: contract)."""
    payload = json.loads(load("convo_created.json"))
    payload["_embedded"]["threads"][0]["body"] = (
        "<script>alert(1)</script><style>p{}</style>" + "<a " * 50_000 + "<p>return #1001</p>" * 20_000
        + "<!--" + "<div>" * 10_000
    )
    payload["subject"] = "\x00" + "x" * 100_000
    payload["tags"] = [{"tag": "a"}, {"tag": None}, "b", 3, [], {"name": "c"}]
    started = time.monotonic()
    event = adapter.parse(request(json.dumps(payload).encode(), event="convo.created"))
    assert time.monotonic() - started < 5
    assert event.message is not None and "alert(1)" not in event.message and "return #1001" in event.message
    assert "\x00" not in (event.subject or "")
    assert event.tags == ("a", "b", "3", "c")


# --- html_to_text -----------------------------------------------------------------------------


@pytest.mark.parametrize("html, text", [
    ("<div>Hello,</div><div><br></div><div>Line  two\n wraps</div>", "Hello,\n\nLine two wraps"),
    ("Thanks,<br>Maria<br/>Lopez", "Thanks,\nMaria\nLopez"),
    ("<p>A &amp; B &lt;tag&gt; &#39;q&#39;</p>", "A & B <tag> 'q'"),
    ("<ul><li>one</li><li>two</li></ul>", "one\n\ntwo"),
    ("<SCRIPT type='x'>bad()</SCRIPT >ok<style>.a{}</style>", "ok"),
    ("<!-- hidden -->shown<!-- unclosed", "shown"),
    ("plain text\nkeeps its lines &amp; entities", "plain text\nkeeps its lines & entities"),
    ("1 < 2 and 3 > 2", "1 < 2 and 3 > 2"),
    ("<p>   </p>", None),
    (None, None),
])
def test_html_to_text(html: str | None, text: str | None) -> None:
    """Blocks and <br> become line breaks, scripts and comments vanish, entities are decoded."""
    assert html_to_text(html) == text


@pytest.mark.parametrize("hostile", ["<a " * 200_000, "<" * 500_000, "<!--" * 200_000, "<script>" * 100_000,
                                     "<a" + "b" * 500_000, "</" * 200_000, "<![CDATA[" * 100_000])
def test_html_to_text_is_linear_on_hostile_markup(hostile: str) -> None:
    """Inputs that make html.parser take minutes finish in well under a second or two."""
    started = time.monotonic()
    html_to_text(hostile)
    assert time.monotonic() - started < 3


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list("<>/!-ab &;#x\n\"'=") + ["<br>", "<p>", "</p>", "<script>", "</script>",
                                                                "<!--", "-->", "&amp;", "<a href='x'>"]),
                max_size=80).map("".join))
def test_fuzz_html_to_text_never_raises(html: str) -> None:
    """Any markup gives text or None, never an exception."""
    result = html_to_text(html)
    assert result is None or (isinstance(result, str) and result == result.strip())


# --- fuzzing ----------------------------------------------------------------------------------


values = json_values()
thread = st.fixed_dictionaries({}, optional={
    "id": values, "type": st.sampled_from(["customer", "message", "note", "chat"]) | values,
    "body": st.text(max_size=80) | values,
    "createdAt": st.sampled_from(["2026-03-02T09:14:05Z", "x"]) | values,
    "createdBy": values, "state": values,
})


@settings(max_examples=300, deadline=None)
@given(conversation=st.fixed_dictionaries({"id": st.integers(0, 10**12) | values}, optional={
    "subject": values, "primaryCustomer": values, "tags": values, "customFields": values,
    "_links": values, "number": values, "source": values, "createdAt": values,
    "_embedded": st.fixed_dictionaries({"threads": st.lists(thread, max_size=4) | values}) | values,
}), event=st.sampled_from(["convo.created", "convo.customer.reply.created", "convo.agent.reply.created"]))
def test_fuzz_conversation_shaped_json_raises_only_payload_error(conversation: dict[str, Any], event: str) -> None:
    """Conversation-shaped JSON with arbitrary values parses or raises PayloadError, nothing else."""
    parsed = well_formed_or_none(adapter, request(json.dumps(conversation).encode(), event=event))
    assert parsed is None or parsed.ticket_id.isdigit()
