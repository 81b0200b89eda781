"""Unit tests for integrations.payload: the body as a JSON object, field values as clean text,
ids, URLs and times (ISO 8601, Unix seconds and milliseconds → aware UTC). No app, no DB."""

from __future__ import annotations

import ast
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import integrations.payload as payload_module
from integrations.base import InboundRequest, PayloadError, key_from_id
from integrations.payload import (
    MAX_ID,
    NUMERIC_ID,
    as_object,
    custom_fields,
    http_url,
    iso_time,
    joined,
    json_object,
    peek_object,
    received_at,
    required_id,
    scalar_text,
    text,
    timestamp,
    unique_texts,
    unix_time,
    utc,
)

UTC = timezone.utc
MOMENT = datetime(2025, 11, 25, 10, 0, tzinfo=UTC)


def request(body: bytes, received: datetime | None = None) -> InboundRequest:
    return InboundRequest(method="POST", path="/webhooks/k", headers={}, body=body, received_at=received)


# --- the body ---------------------------------------------------------------------------------


def test_json_object_reads_an_object() -> None:
    assert json_object(request(b'{"id": 1, "nested": {"a": [1, 2]}}')) == {"id": 1, "nested": {"a": [1, 2]}}


@pytest.mark.parametrize("body", [
    b"", b"   ", b"{", b"\xff\xfe", b"[]", b'"text"', b"1", b"null",
    b"[" * 100_000 + b"]" * 100_000,  # thousands of nested brackets: RecursionError inside json
    b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
])
def test_json_object_refuses_anything_else_naming_the_body(body: bytes) -> None:
    with pytest.raises(PayloadError) as error:
        json_object(request(body))
    assert error.value.field == "body"


def test_moderately_nested_json_is_read() -> None:
    """Nesting well within what json handles is not refused."""
    body = b'{"a":' * 200 + b"1" + b"}" * 200
    assert isinstance(json_object(request(body)), dict)


@pytest.mark.parametrize("body", [b"", b"[]", b"{", b"[" * 100_000 + b"]" * 100_000])
def test_peek_object_never_raises(body: bytes) -> None:
    assert peek_object(request(body)) is None
    assert peek_object(request(b'{"id": "evt_1"}')) == {"id": "evt_1"}


# --- field values -----------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("  hello ", "hello"), (42, "42"), (0, "0"), ("a\x00b", "ab"), ("x\ud800", "x?"),
    ("", None), ("   ", None), ("\x00", None), (None, None), (True, None), (False, None),
    (1.5, None), (float("nan"), None), ([], None), ({}, None), (["a"], None),
])
def test_text(value: Any, expected: str | None) -> None:
    assert text(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (59.9, "59.9"), (1001, "1001"), (" x ", "x"), (float("nan"), None), (float("inf"), None), (True, None),
])
def test_scalar_text_also_reads_finite_floats(value: Any, expected: str | None) -> None:
    assert scalar_text(value) == expected


def test_as_object() -> None:
    assert as_object({"a": 1}) == {"a": 1}
    assert as_object(None) == {} and as_object([1]) == {} and as_object("x") == {}
    assert as_object(None).get("missing") is None  # lookups chain without checks


def test_joined() -> None:
    assert joined("Maria", " Lopez ") == "Maria Lopez"
    assert joined(None, "Lopez", True, 3.5) == "Lopez"
    assert joined(None, "  ") is None


def test_unique_texts_keeps_order_and_drops_blanks_repeats_and_non_text() -> None:
    assert unique_texts(["b", " a ", "b", "", None, 3, 1.5, {"name": "x"}, "a"]) == ("b", "a", "3")


def test_custom_fields() -> None:
    fields = custom_fields({"Order": "#1001", "Total": 59.9, "Count": 2, "Gift": True, "Notes": None,
                            "Items": ["a"], "Blank": " ", "k" * 150: "long name"},
                           app_id="q3x", company=None, nan=float("nan"))
    assert fields == {"Order": "#1001", "Total": "59.9", "Count": "2", "k" * 100: "long name", "app_id": "q3x"}
    assert custom_fields("not an object") == {} and custom_fields(None, extra="x") == {"extra": "x"}


# --- ids --------------------------------------------------------------------------------------


def test_required_id() -> None:
    assert required_id(" cnv_1 ", "conversation.id", "Front conversation id") == "cnv_1"
    assert required_id(35436, "ticket_id", "Zendesk ticket number", NUMERIC_ID) == "35436"
    assert required_id("x" * MAX_ID, "id", "id") == "x" * MAX_ID


@pytest.mark.parametrize(("value", "pattern"), [
    (None, None), ("", None), ("  ", None), (True, None), (1.5, None), ({"id": 1}, None), ("x" * (MAX_ID + 1), None),
    ("{{ticket.id}}", NUMERIC_ID), ("12a", NUMERIC_ID), ("1" * 21, NUMERIC_ID), ("-1", NUMERIC_ID),
])
def test_required_id_refuses_naming_the_field(value: Any, pattern: Any) -> None:
    with pytest.raises(PayloadError) as error:
        required_id(value, "ticket.id", "ticket id", pattern)
    assert error.value.field == "ticket.id"


# --- URLs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "add_scheme", "expected"), [
    ("https://acme.zendesk.com/agent/tickets/1", False, "https://acme.zendesk.com/agent/tickets/1"),
    ("http://localhost:8080/t/1", False, "http://localhost:8080/t/1"),
    ("acme.zendesk.com/agent/tickets/1", True, "https://acme.zendesk.com/agent/tickets/1"),
    ("acme.zendesk.com/agent/tickets/1", False, None),
    ("javascript:alert(1)", True, None),
    ("data:text/html,x", True, None),
    ("host:alert(1)", True, None),  # urlsplit's port would raise
    ("https://a b.example/", False, None),
    ("https://acme.example/t/\u00a01", False, None), ("https://acme.example/\u2028t/1", False, None),  # Unicode spaces
    ("https:///path-only", False, None),
    ("https://host:0/", False, None),
    (None, True, None), (42, False, None), ([], True, None),
])
def test_http_url(value: Any, add_scheme: bool, expected: str | None) -> None:
    assert http_url(value, add_scheme=add_scheme) == expected


# --- times ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("2025-11-25T10:00:00Z", MOMENT),
    ("2025-11-25T10:00:00.561Z", MOMENT + timedelta(microseconds=561_000)),
    ("2025-11-25T10:00:00+00:00", MOMENT),
    ("2025-11-25T11:00:00+01:00", MOMENT),  # another offset: the same instant, in UTC
    ("2025-11-25T05:00:00-05:00", MOMENT),
    ("2025-11-25T10:00:00", MOMENT),  # no offset (Gorgias): taken as UTC
    (" 2025-11-25T10:00:00Z ", MOMENT),
    ("2025-11-25", datetime(2025, 11, 25, tzinfo=UTC)),
    ("yesterday", None), ("", None), ("1764064800", None), ("2025-13-01T00:00:00Z", None),
    ("9999-12-31T23:30:00-05:00", None), ("0001-01-01T00:10:00+05:00", None),  # beyond datetime in UTC
    (1764064800, None), (20251125, None), (None, None), (True, None), ([], None),
])
def test_iso_time(value: Any, expected: datetime | None) -> None:
    moment = iso_time(value)
    assert moment == expected
    assert moment is None or moment.tzinfo is UTC


@pytest.mark.parametrize(("value", "millis", "expected"), [
    (1764064800, False, MOMENT),
    (1764064800.5, False, MOMENT + timedelta(milliseconds=500)),
    (1764064800000, True, MOMENT),
    (1764064800123, True, MOMENT + timedelta(milliseconds=123)),
    (0, False, None), (-5, False, None), (float("nan"), False, None), (float("inf"), False, None),
    (1e300, False, None), (10**30, True, None), (True, False, None), ("1764064800", False, None), (None, False, None),
])
def test_unix_time(value: Any, millis: bool, expected: datetime | None) -> None:
    moment = unix_time(value, millis=millis)
    assert moment == expected
    assert moment is None or moment.tzinfo is UTC


@pytest.mark.parametrize(("value", "expected"), [
    (1764064800, MOMENT), ("2025-11-25T10:00:00.000Z", MOMENT), ("2025-11-25T11:00:00+01:00", MOMENT),
    ("1764064800", None), (True, None), ({}, None),
])
def test_timestamp_reads_unix_seconds_and_iso(value: Any, expected: datetime | None) -> None:
    assert timestamp(value) == expected


def test_utc() -> None:
    assert utc(datetime(2025, 11, 25, 10, 0)) == MOMENT and utc(datetime(2025, 11, 25, 10, 0)).tzinfo is UTC
    shifted = utc(datetime(2025, 11, 25, 15, 0, tzinfo=timezone(timedelta(hours=5))))
    assert shifted == MOMENT and shifted.tzinfo is UTC and shifted.hour == 10


def test_received_at_is_utc() -> None:
    assert received_at(request(b"{}")) is None
    naive = received_at(request(b"{}", datetime(2025, 11, 25, 10, 0)))
    assert naive == MOMENT and naive is not None and naive.tzinfo is UTC
    elsewhere = received_at(request(b"{}", MOMENT.astimezone(timezone(timedelta(hours=-3)))))
    assert elsewhere == MOMENT and elsewhere is not None and elsewhere.tzinfo is UTC


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_readers_never_raise_and_times_are_utc(value: Any) -> None:
    for reader in (iso_time, unix_time, timestamp):
        moment = reader(value)
        assert moment is None or moment.tzinfo is UTC
    for reader in (text, scalar_text, joined):
        result = reader(value)
        assert result is None or (result and result == result.strip() and "\x00" not in result)
    assert isinstance(custom_fields(value), dict) and isinstance(as_object(value), dict)
    assert http_url(value) is None or http_url(value, add_scheme=True) is not None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | JSON.map(lambda value: json.dumps(value).encode()))
def test_json_object_gives_an_object_or_a_body_error(body: bytes) -> None:
    try:
        assert isinstance(json_object(request(body)), dict)
    except PayloadError as error:
        assert error.field == "body"


# --- delivery keys (base.key_from_id) ---------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    (" notif_1 ", "notif_1"), ("x" * 128, "x" * 128), ("x" * 129, None), ("a\nb", None), ("a\x00b", None),
    ("", None), ("   ", None), (None, None),
])
def test_key_from_id(value: str | None, expected: str | None) -> None:
    assert key_from_id(value) == expected


def test_module_imports_nothing_from_app() -> None:
    tree = ast.parse(Path(payload_module.__file__).read_text())
    imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert not [name for name in imported if name and (name == "app" or name.startswith("app."))]


def test_custom_field_names_are_cleaned_of_nul_characters() -> None:
    """A field name carrying NUL is stored without it; a name that is only NUL is dropped."""
    from integrations.payload import custom_fields

    assert custom_fields({"order\x00_no": "1001", "\x00": "x"}) == {"order_no": "1001"}


# --- reading the body (InboundRequest.json) -----------------------------------------------------


def _read(body: bytes) -> Any:
    from integrations import InboundRequest

    return InboundRequest(method="POST", path="/webhooks/k", headers={}, body=body).json()


@pytest.mark.parametrize("body", [
    b'{"ticket_id": "1", "tags": ["a", "b"], "n": 3, "x": 1.5, "ok": true, "none": null}',
    '{"text": "Grüße, ¿qué tal? 返品 🙂"}'.encode(),
    b'{"a": {"b": [1, {"c": "d"}]}, "a2": "\\u00e9\\n\\t"}',
    b'{"k": 1, "k": 2}',  # a repeated name: the last value, as the standard library reads it
])
def test_the_body_reads_as_the_standard_library_reads_it(body: bytes):
    assert _read(body) == json.loads(body)


@pytest.mark.parametrize(("body", "expected"), [
    (b'{"message": "cut emoji \\ud83d"}', {"message": "cut emoji \ud83d"}),  # a lone surrogate: ``clean`` replaces it
    (b'{"rating": NaN}', None),  # not JSON, but the standard library reads it, and so did we
])
def test_what_orjson_refuses_is_read_by_the_standard_library(body: bytes, expected: Any):
    read = _read(body)
    if expected is None:
        assert read["rating"] != read["rating"]  # NaN
    else:
        assert read == expected
