"""The contract every inbound webhook adapter keeps, checked for each registered kind with its own
``sign()`` and ``sample()``: authentic requests pass and forged, tampered, stale or unsigned ones
are refused with SignatureError; retries share a delivery key; bad payloads are PayloadErrors
naming a field; arbitrary input raises nothing else. No app, no DB.

What differs between helpdesks is declared once, in ``KINDS`` below. What only one helpdesk does
(and the signature computed by hand, so ``sign()`` and ``verify()`` cannot share a bug) is
tested in its own ``test_<kind>.py``.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import importlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import pytest
from helpers import edited, inbound, loader, payload_error_field
from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.base import InboundRequest, PayloadError, SignatureError, TicketEvent, get_adapter, registered_kinds

NOW = datetime(2026, 3, 2, 9, 14, 8, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Kind:
    """What the contract must be told about one adapter; the rest it learns from sign()/sample()."""

    adapter: str  # the class in integrations.<kind>
    secret_names: tuple[str, ...]
    name: str  # how its SignatureError messages name it ("No <name> … secret", "The <name> … does not match")
    #: hmac: the body is signed with the secret; shared: the secret itself is sent, so a changed
    #: body cannot be detected (documented limit); standard: Standard Webhooks (whsec_ keys, UTF-8 text).
    scheme: Literal["hmac", "shared", "standard"]
    required: tuple[str, ...]  # headers verify() refuses to do without; the first carries the signature
    ticket_id: tuple[str, ...]  # dotted paths in sample() that, all null, leave no ticket id …
    id_field: str  # … and the field the PayloadError names
    message: str  # dotted path of the customer's text in sample()
    timestamp: str | None = None  # a signed timestamp header: a replay window applies
    delivery_key: str | None = None  # the key of sign()'s delivery_id ("{}" is the id); None: keyed by the body
    fixture: str | None = None  # the file in tests/data/webhooks/<kind>/ that sample() is
    fuzz: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # more headers to fuzz, with notable values


KINDS: dict[str, Kind] = {
    "zendesk": Kind(
        "ZendeskAdapter", ("signing_secret", "api_email", "api_token"), "Zendesk", "hmac",
        required=("X-Zendesk-Webhook-Signature", "X-Zendesk-Webhook-Signature-Timestamp"),
        ticket_id=("detail.id", "subject"),  # the subject "zen:ticket:<id>" is a second source of the id
        id_field="detail.id", message="detail.description",
        timestamp="X-Zendesk-Webhook-Signature-Timestamp", delivery_key="zendesk:invocation:{}",
        fixture="ticket_created.json"),
    "gorgias": Kind(
        "GorgiasAdapter", ("shared_secret",), "Gorgias", "shared", required=("X-Rebound-Secret",),
        ticket_id=("ticket_id",), id_field="ticket_id", message="message", fixture="form_ticket_created.json"),
    "freshdesk": Kind(
        "FreshdeskAdapter", ("shared_secret",), "Freshdesk", "shared", required=("X-Rebound-Secret",),
        ticket_id=("ticket.id",), id_field="ticket.id", message="ticket.description", fixture="ticket_created.json"),
    "helpscout": Kind(
        "HelpScoutAdapter", ("secret_key",), "Help Scout", "hmac", required=("X-HelpScout-Signature",),
        ticket_id=("id",), id_field="id", message="_embedded.threads.0.body", fixture="convo_created.json",
        fuzz={"X-HelpScout-Event": ("convo.customer.reply.created", "convo.status", "helpscout.test", "")}),
    "front": Kind(
        "FrontAdapter", ("signing_secret",), "Front", "hmac", required=("X-Front-Signature",),
        ticket_id=("payload.conversation.id",), id_field="conversation.id", message="payload.target.data.text",
        timestamp="X-Front-Request-Timestamp", fuzz={"X-Front-Challenge": ()}),
    "intercom": Kind(
        "IntercomAdapter", ("signing_secret",), "Intercom", "hmac", required=("X-Hub-Signature",),
        ticket_id=("data.item.id",), id_field="data.item.id", message="data.item.source.body"),
    "zammad": Kind(
        "ZammadAdapter", ("signing_secret",), "Zammad", "hmac", required=("X-Hub-Signature",),
        ticket_id=("ticket.id",), id_field="ticket.id", message="article.body", delivery_key="{}"),
    "chatwoot": Kind(
        "ChatwootAdapter", ("signing_secret",), "Chatwoot", "hmac",
        required=("X-Chatwoot-Signature", "X-Chatwoot-Timestamp"),
        ticket_id=("id",), id_field="id", message="messages.0.content",
        timestamp="X-Chatwoot-Timestamp", delivery_key="{}", fixture="conversation_created.json"),
    "generic": Kind(
        "GenericAdapter", ("signing_secret",), "Standard Webhooks", "standard",
        required=("webhook-signature", "webhook-id", "webhook-timestamp"),
        ticket_id=("ticket.id",), id_field="ticket.id", message="message.text",
        timestamp="webhook-timestamp", delivery_key="{}", fixture="ticket_created.json"),
}

REGISTERED = registered_kinds()  # a kind missing from KINDS fails test_every_registered_kind_is_in_the_table
_ROWS = [(kind, KINDS[kind]) for kind in REGISTERED if kind in KINDS]
TIMESTAMPED = [kind for kind, row in _ROWS if row.timestamp]
BY_DELIVERY_ID = [kind for kind, row in _ROWS if row.delivery_key]
WITH_FIXTURE = [kind for kind, row in _ROWS if row.fixture]
REQUIRED_HEADERS = [(kind, header) for kind, row in _ROWS for header in row.required]


def secret(kind: str, label: str) -> str:
    """A secret of the form ``kind`` takes (Standard Webhooks: ``whsec_`` + a base64 key)."""
    if KINDS[kind].scheme == "standard":
        return "whsec_" + base64.b64encode(label.encode().ljust(32, b"-")).decode()
    return f"{kind}-{label}-secret"


def signed(kind: str, body: bytes, key: str = "current", at: datetime = NOW, delivery: str = "delivery-1",
           ) -> InboundRequest:
    """``body`` with the headers the adapter's own sign() gives it."""
    return inbound(body, get_adapter(kind).sign(body, secret(kind, key), at, delivery))


def accepts(kind: str, request: InboundRequest, secrets: list[str], now: datetime = NOW) -> bool:
    """Whether verify() passes; a SignatureError is a no, any other exception fails the test."""
    try:
        get_adapter(kind).verify(request, secrets, now)
    except SignatureError:
        return False
    return True


def refusal(kind: str, request: InboundRequest, secrets: list[str] | None = None) -> str:
    """The message of the SignatureError verify() raises; fails the test if it passes."""
    with pytest.raises(SignatureError) as error:
        get_adapter(kind).verify(request, [secret(kind, "current")] if secrets is None else secrets, NOW)
    return str(error.value)


def at_path(document: Any, path: str) -> tuple[Any, Any]:
    """The container of a dotted ``path`` ("a.0.b") and the key of its last step."""
    *parents, last = path.split(".")
    for step in parents:
        document = document[int(step) if isinstance(document, list) else step]
    return document, int(last) if isinstance(document, list) else last


def sample_with(kind: str, values: Mapping[str, Any]) -> bytes:
    """sample() with the value at each dotted path replaced."""
    def change(document: Any) -> None:
        for path, value in values.items():
            container, key = at_path(document, path)
            container[key] = value
    return edited(get_adapter(kind).sample(), change)


# --- the registry -----------------------------------------------------------------------------


def test_every_registered_kind_is_in_the_table() -> None:
    """A new adapter gets a row in KINDS (and so the whole contract), a removed one loses it."""
    assert sorted(KINDS) == REGISTERED


@pytest.mark.parametrize("kind", REGISTERED)
def test_registered_under_its_kind(kind: str) -> None:
    """get_adapter(kind) is that module's adapter, with its kind and the secrets it asks for."""
    adapter = get_adapter(kind)
    assert isinstance(adapter, getattr(importlib.import_module(f"integrations.{kind}"), KINDS[kind].adapter))
    assert adapter.kind == kind
    assert tuple(adapter.secret_names) == KINDS[kind].secret_names


@pytest.mark.parametrize("kind", REGISTERED)
def test_module_imports_nothing_from_app(kind: str) -> None:
    """Adapters stand alone: no import of the Flask app, whose models would import them back."""
    tree = ast.parse(Path(importlib.import_module(f"integrations.{kind}").__file__).read_text())
    imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert not [name for name in imported if name and (name == "app" or name.startswith("app."))]


# --- verify: what passes ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", REGISTERED)
def test_what_sign_produces_verify_accepts(kind: str) -> None:
    sample = get_adapter(kind).sample()
    assert accepts(kind, signed(kind, sample), [secret(kind, "current")])


@pytest.mark.parametrize("kind", REGISTERED)
def test_rotated_out_secret_still_passes(kind: str) -> None:
    """During a rotation the previous secret, second in the list, is still accepted."""
    request = signed(kind, get_adapter(kind).sample(), key="previous")
    assert accepts(kind, request, [secret(kind, "current"), secret(kind, "previous")])


@pytest.mark.parametrize("kind", REGISTERED)
def test_naive_now_is_read_as_utc(kind: str) -> None:
    """A caller passing a naive UTC 'now' gets the same answer, not a TypeError."""
    request = signed(kind, get_adapter(kind).sample())
    assert accepts(kind, request, [secret(kind, "current")], now=NOW.replace(tzinfo=None))


SECRETS = {
    "hmac": st.text(min_size=1, max_size=40),
    "shared": st.text(min_size=1, max_size=40).filter(lambda value: value == value.strip()),  # headers are trimmed
    "standard": st.binary(min_size=1, max_size=64).map(lambda key: "whsec_" + base64.b64encode(key).decode()),
}
BODIES = {  # Standard Webhooks signs text: a body that is not UTF-8 is refused (see test_generic)
    "hmac": st.binary(max_size=256), "shared": st.binary(max_size=256),
    "standard": st.text(max_size=256).map(str.encode),
}
DELIVERY_IDS = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40)


@pytest.mark.parametrize("kind", REGISTERED)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_whatever_sign_produces_verify_accepts(kind: str, data: st.DataObject) -> None:
    scheme = KINDS[kind].scheme
    body, key, delivery = data.draw(BODIES[scheme]), data.draw(SECRETS[scheme]), data.draw(DELIVERY_IDS)
    assert accepts(kind, inbound(body, get_adapter(kind).sign(body, key, NOW, delivery)), [key])


# --- verify: what is refused ------------------------------------------------------------------


@pytest.mark.parametrize("kind", REGISTERED)
def test_wrong_secret_is_refused(kind: str) -> None:
    message = refusal(kind, signed(kind, get_adapter(kind).sample(), key="wrong"))
    assert message.startswith(f"The {KINDS[kind].name}") and message.endswith("signature does not match.")


@pytest.mark.parametrize(("kind", "header"), REQUIRED_HEADERS)
def test_missing_header_is_refused(kind: str, header: str) -> None:
    """Without any of its required headers a request is refused as missing that header."""
    sample = get_adapter(kind).sample()
    headers = get_adapter(kind).sign(sample, secret(kind, "current"), NOW, "delivery-1")
    del headers[header]
    message = refusal(kind, inbound(sample, headers))
    assert message.startswith("Missing") and header.lower() in message.lower()


@pytest.mark.parametrize("kind", REGISTERED)
def test_changed_body(kind: str) -> None:
    """One changed byte breaks a signature; a shared secret proves the sender only (documented limit)."""
    sample = get_adapter(kind).sample()
    assert b"#1001" in sample
    request = inbound(sample.replace(b"#1001", b"#1002"), signed(kind, sample).headers)
    if KINDS[kind].scheme == "shared":
        assert accepts(kind, request, [secret(kind, "current")])
    else:
        assert refusal(kind, request).endswith("signature does not match.")


@pytest.mark.parametrize("secrets", [[], [""]], ids=["none", "blank"])
@pytest.mark.parametrize("kind", REGISTERED)
def test_no_configured_secret_is_refused_never_skipped(kind: str, secrets: list[str]) -> None:
    """With no secret configured every request is refused, even a well-signed one."""
    message = refusal(kind, signed(kind, get_adapter(kind).sample()), secrets)
    assert message.startswith(f"No {KINDS[kind].name}") and " secret is configured" in message


GARBLED = [  # signature header values: not the encoding, not the algorithm, not the length, blank
    "", " ", "  ", "%%% not base64 %%%", "***not base64***", "not base64!", "====", "===", ",,,",
    base64.b64encode(b"x" * 20).decode(), "00" * 32, "sha1", "sha1=", "sha1=zz", "sha1=not-hex", "sha1=" + "ab" * 19,
    "sha1=" + "00" * 20, "sha256", "sha256=xyz", "sha256=" + "ab" * 32, "sha256=" + "00" * 32,
    "v1", "v1,", "v1,***", "v1,a,b", "v2,AAAA",
]


@pytest.mark.parametrize("kind", REGISTERED)
def test_garbled_signature_is_refused(kind: str) -> None:
    """A garbled signature header is a SignatureError, alone or among otherwise well-signed headers."""
    sample = get_adapter(kind).sample()
    header = KINDS[kind].required[0]
    signed_headers = dict(signed(kind, sample).headers)
    passed = [(value, alone) for value in GARBLED for alone in (True, False)
              if accepts(kind, inbound(sample, {header: value} if alone else signed_headers | {header.lower(): value}),
                         [secret(kind, "current")])]
    assert passed == []


# --- the signed timestamp ---------------------------------------------------------------------


@pytest.mark.parametrize("skew", [timedelta(minutes=-6), timedelta(minutes=6), timedelta(days=-400),
                                  timedelta(days=-1000), timedelta(days=3650)],
                         ids=["6min-ago", "6min-ahead", "400d-ago", "1000d-ago", "10y-ahead"])
@pytest.mark.parametrize("kind", TIMESTAMPED)
def test_timestamp_outside_the_window_is_refused(kind: str, skew: timedelta) -> None:
    """A correctly signed request stamped more than 5 minutes away from now is a replay."""
    assert "window" in refusal(kind, signed(kind, get_adapter(kind).sample(), at=NOW + skew))


@pytest.mark.parametrize("skew", [timedelta(minutes=-4, seconds=-59), timedelta(minutes=-4), timedelta(minutes=4)],
                         ids=["4min59s-ago", "4min-ago", "4min-ahead"])
@pytest.mark.parametrize("kind", TIMESTAMPED)
def test_timestamp_inside_the_window_passes(kind: str, skew: timedelta) -> None:
    """Clock skew under 5 minutes either way is accepted."""
    assert accepts(kind, signed(kind, get_adapter(kind).sample(), at=NOW + skew), [secret(kind, "current")])


@pytest.mark.parametrize("age", [timedelta(minutes=30), timedelta(hours=1)], ids=["30min", "1h"])
@pytest.mark.parametrize("kind", TIMESTAMPED)
def test_timestamp_is_part_of_the_signature(kind: str, age: timedelta) -> None:
    """Swapping a fresh timestamp into an old request (to dodge the window) breaks the signature."""
    sample, header = get_adapter(kind).sample(), KINDS[kind].timestamp.lower()
    old = dict(signed(kind, sample, at=NOW - age).headers)
    replay = old | {header: signed(kind, sample).headers[header]}
    assert refusal(kind, inbound(sample, replay)).endswith("signature does not match.")


STAMPS = ["", "soon", "yesterday", "nan", "inf", "1e400", "1.764e12", "1764064805.0", "-5", "-1764064805000",
          "1" * 40, "９９９", "１７６４０６４８０５"]


@pytest.mark.parametrize("kind", TIMESTAMPED)
def test_malformed_timestamp_is_refused(kind: str) -> None:
    """A timestamp that is not the helpdesk's format (blank, words, floats, signs, non-ASCII digits)."""
    headers = dict(signed(kind, get_adapter(kind).sample()).headers)
    passed = [stamp for stamp in STAMPS
              if accepts(kind, inbound(get_adapter(kind).sample(), headers | {KINDS[kind].timestamp.lower(): stamp}),
                         [secret(kind, "current")])]
    assert passed == []


# --- handshake and delivery keys --------------------------------------------------------------


@pytest.mark.parametrize("kind", REGISTERED)
def test_no_handshake_without_a_challenge(kind: str) -> None:
    """An ordinary event, signed or not, needs no handshake reply."""
    adapter = get_adapter(kind)
    assert adapter.handshake(signed(kind, adapter.sample()), [secret(kind, "current")]) is None
    assert adapter.handshake(inbound(b"{}"), [secret(kind, "current")]) is None


@pytest.mark.parametrize("kind", REGISTERED)
def test_delivery_key_is_stable_across_retries(kind: str) -> None:
    """A retry of one delivery, signed anew later, has the same key."""
    adapter, sample = get_adapter(kind), get_adapter(kind).sample()
    first = adapter.delivery_key(signed(kind, sample))
    retry = adapter.delivery_key(signed(kind, sample, at=NOW + timedelta(seconds=30)))
    assert first == retry
    assert isinstance(first, str) and 0 < len(first) <= 200


@pytest.mark.parametrize("kind", BY_DELIVERY_ID)
def test_delivery_key_is_the_delivery_id(kind: str) -> None:
    """Helpdesks that send a delivery id: it is the key, so other deliveries have other keys."""
    sample = get_adapter(kind).sample()
    keys = [get_adapter(kind).delivery_key(signed(kind, sample, delivery=f"job-{n}")) for n in range(3)]
    assert keys == [KINDS[kind].delivery_key.format(f"job-{n}") for n in range(3)]


BAD_BODIES = [b"", b"not json", b"{not json", b"[1, 2]", b"[]", b"null", b"[" * 100_000]


@pytest.mark.parametrize("kind", REGISTERED)
def test_delivery_key_answers_for_any_body(kind: str) -> None:
    """delivery_key runs before parse refuses a body: without an id it keys by a hash of the body."""
    keys = [get_adapter(kind).delivery_key(inbound(body)) for body in BAD_BODIES]
    assert all(key.startswith("sha256:") for key in keys)
    assert len(set(keys)) == len(BAD_BODIES)


# --- parse ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", REGISTERED)
def test_sample_is_a_new_return_request(kind: str) -> None:
    """sample() (the setup guide's curl) parses as a new ticket about order #1001, storable as is."""
    event = get_adapter(kind).parse(signed(kind, get_adapter(kind).sample()))
    assert (event.provider, event.event_type) == (kind, "ticket.created")
    assert event.message is not None and "#1001" in event.message
    assert TicketEvent.from_dict(json.loads(json.dumps(event.to_dict()))) == event  # as the inbox stores it


@pytest.mark.parametrize("kind", WITH_FIXTURE)
def test_sample_is_the_fixture(kind: str) -> None:
    """sample() is the same event as the recorded fixture the vendor tests parse field by field."""
    adapter, fixture = get_adapter(kind), loader(kind)(KINDS[kind].fixture)
    assert json.loads(adapter.sample()) == json.loads(fixture)
    assert adapter.parse(signed(kind, adapter.sample())) == adapter.parse(signed(kind, fixture))


@pytest.mark.parametrize("kind", REGISTERED)
def test_null_ticket_id_is_a_payload_error_naming_it(kind: str) -> None:
    body = sample_with(kind, dict.fromkeys(KINDS[kind].ticket_id))
    assert payload_error_field(get_adapter(kind), signed(kind, body)) == KINDS[kind].id_field


MALFORMED = [  # not JSON, not an object, or nested too deep to read
    b"", b"   ", b"{", b"{not json", b'{"ticket_id": "1"', b"not json", b"ticket_id=1", b"ticket[id]=1",
    b"\xff\xfe", b"\xff\xfe\x00garbage", b"[]", b"[1, 2]", b'"x"', b'"text"', b"1", b"42", b"null", b"true",
    b"[" * 50_000, b"[" * 50_000 + b"]" * 50_000, b"[" * 100_000 + b"]" * 100_000,
]


@pytest.mark.parametrize("kind", REGISTERED)
def test_malformed_json_is_a_payload_error_naming_the_body(kind: str) -> None:
    fields = [(body[:20], payload_error_field(get_adapter(kind), signed(kind, body))) for body in MALFORMED]
    assert [(start, field) for start, field in fields if field != "body"] == []


HOSTILE = "<script>alert(1)</script>\x00\ud800\u202e " + "return #1001 " * 100_000


@pytest.mark.parametrize("kind", REGISTERED)
def test_hostile_and_huge_text_is_carried_whole(kind: str) -> None:
    """Megabytes of text with NUL, a lone surrogate and markup parse quickly into the message."""
    event = get_adapter(kind).parse(signed(kind, sample_with(kind, {KINDS[kind].message: HOSTILE})))
    assert event.message is not None and event.message.count("#1001") == 100_000 and len(event.message) > 1_000_000


@pytest.mark.parametrize("kind", REGISTERED)
def test_hostile_text_comes_out_clean(kind: str) -> None:
    """NUL and lone surrogates, which break PostgreSQL and UTF-8, never reach the event."""
    event = get_adapter(kind).parse(signed(kind, sample_with(kind, {KINDS[kind].message: HOSTILE})))
    assert event.message is not None and "\x00" not in event.message
    event.message.encode("utf-8")  # no lone surrogate left


# --- fuzzing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", REGISTERED)
@settings(max_examples=300, deadline=None)
@given(data=st.data(), body=st.binary(max_size=2000),
       secrets=st.lists(st.text(max_size=30) | st.just("configured"), max_size=2))
def test_fuzz_arbitrary_requests_raise_only_adapter_errors(kind: str, data: st.DataObject, body: bytes,
                                                           secrets: list[str]) -> None:
    """Any body and header values: verify/handshake raise only SignatureError (and never pass
    unsigned), parse only PayloadError; delivery_key always answers."""
    adapter = get_adapter(kind)
    # The headers this helpdesk sends, Basic auth and the kind's extra headers, each valued with
    # arbitrary text or a notable value: what sign() gives with a secret nobody configured, or the table's.
    signed_headers = adapter.sign(adapter.sample(), "a-secret-nobody-configured", NOW, "delivery-1")
    extra = KINDS[kind].fuzz
    names = sorted({*signed_headers, *extra, "Authorization", "X-Other"})
    notable = sorted({*signed_headers.values(), *(value for values in extra.values() for value in values)})
    headers = data.draw(st.dictionaries(st.sampled_from(names), st.text(max_size=80) | st.sampled_from(notable)))
    request = inbound(body, headers)
    secrets = [secret(kind, "current") if value == "configured" else value for value in secrets]
    assert not accepts(kind, request, [secret(kind, "current")])
    with contextlib.suppress(SignatureError):
        adapter.verify(request, secrets, NOW)
    with contextlib.suppress(SignatureError):
        adapter.handshake(request, secrets)
    with contextlib.suppress(PayloadError):
        adapter.parse(request)
    key = adapter.delivery_key(request)
    assert isinstance(key, str) and 0 < len(key) <= 200
