"""Unit tests for integrations.signing: HMACs, encodings, the timestamp window (naive times are
UTC), signed timestamp headers and the shared secret of helpdesks that sign nothing. No app, no DB."""

from __future__ import annotations

import ast
import base64
import hashlib
import hmac
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import integrations.signing as signing_module
from integrations.base import InboundRequest, SignatureError
from integrations.signing import (
    SECRET_HEADER,
    check_window,
    decode_base64,
    decode_hex,
    decode_prefixed_hex,
    encode_base64,
    equals,
    hmac_digest,
    parse_iso_time,
    parse_unix_time,
    require_any,
    require_hmac,
    shared_secret_headers,
    verify_shared_secret,
)

UTC = timezone.utc
NOW = datetime(2025, 11, 25, 10, 0, 5, tzinfo=UTC)
SECRET = "shared-secret-1"


def request(headers: dict[str, str]) -> InboundRequest:
    return InboundRequest(method="POST", path="/webhooks/k", headers={k.lower(): v for k, v in headers.items()},
                          body=b"{}")


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# --- digests and encodings --------------------------------------------------------------------


def test_hmac_digest_matches_hmac() -> None:
    assert hmac_digest("sha256", "k", b"m") == hmac.new(b"k", b"m", hashlib.sha256).digest()
    assert hmac_digest("sha1", b"k", b"m") == hmac.new(b"k", b"m", hashlib.sha1).digest()
    assert hmac_digest("sha1", "clé", b"m") == hmac.new("clé".encode(), b"m", hashlib.sha1).digest()


def test_equals() -> None:
    assert equals(b"abc", "abc") and not equals("abc", b"abd") and not equals(b"abc", b"ab")


@pytest.mark.parametrize("raw", [b"", b"\x00\xff", hashlib.sha256(b"x").digest()])
def test_base64_round_trip(raw: bytes) -> None:
    assert decode_base64(encode_base64(raw)) == raw
    assert encode_base64(raw) == base64.b64encode(raw).decode("ascii")


@pytest.mark.parametrize("value", ["not base64!", "YWJ", "YW Jj", "\u00e9"])
def test_decode_base64_is_strict(value: str) -> None:
    assert decode_base64(value) is None


def test_decode_hex() -> None:
    assert decode_hex(" 00ff ") == b"\x00\xff" and decode_hex("xyz") is None and decode_hex("0") is None


@pytest.mark.parametrize(("header", "algorithm", "expected"), [
    ("sha1=00ff", "sha1", b"\x00\xff"), ("SHA1 = 00ff", "sha1", b"\x00\xff"),
    ("sha256=" + "ab" * 32, "sha256", b"\xab" * 32),
    ("sha1=00ff", "sha256", None), ("sha256=xyz", "sha256", None), ("sha256", "sha256", None),
    ("sha256=", "sha256", None), ("00ff", "sha1", None),
])
def test_decode_prefixed_hex(header: str, algorithm: str, expected: bytes | None) -> None:
    assert decode_prefixed_hex(header, algorithm) == expected


# --- requiring a match ------------------------------------------------------------------------


@pytest.mark.parametrize("secrets", [[], [""]])
def test_no_configured_secret_never_skips_the_check(secrets: list[str]) -> None:
    with pytest.raises(SignatureError, match="No Acme secret"):
        require_any(secrets, lambda secret: True, "Acme")


def test_require_hmac_accepts_current_or_rotated_secret() -> None:
    given = hmac_digest("sha256", "old", b"body")
    require_hmac(["new", "old"], "sha256", b"body", given, "Acme")
    with pytest.raises(SignatureError, match="does not match"):
        require_hmac(["new"], "sha256", b"body", given, "Acme")


def test_require_hmac_with_an_undecodable_signature_matches_nothing() -> None:
    with pytest.raises(SignatureError, match="does not match"):
        require_hmac(["new"], "sha1", b"body", None, "Acme")
    with pytest.raises(SignatureError, match="No Acme secret"):
        require_hmac([], "sha1", b"body", None, "Acme")


# --- the shared secret (Gorgias, Freshdesk) ---------------------------------------------------


@pytest.mark.parametrize("headers", [
    {"X-Rebound-Secret": SECRET}, {"X-Rebound-Secret": f"  {SECRET} "}, basic("gorgias", SECRET), basic("", SECRET),
    {"X-Rebound-Secret": "wrong"} | basic("x", SECRET), shared_secret_headers(SECRET),
])
def test_shared_secret_is_accepted_in_the_header_or_basic_auth(headers: dict[str, str]) -> None:
    verify_shared_secret(request(headers), ["rotated-in", SECRET], "Acme")


@pytest.mark.parametrize("headers", [
    {"X-Rebound-Secret": "wrong"}, basic(SECRET, "wrong"), basic("x", SECRET + "x"), {"X-Rebound-Secret": SECRET[:-1]},
])
def test_wrong_shared_secret_is_refused(headers: dict[str, str]) -> None:
    with pytest.raises(SignatureError, match="does not match"):
        verify_shared_secret(request(headers), [SECRET], "Acme")


@pytest.mark.parametrize("headers", [
    {}, {"X-Rebound-Secret": "  "}, {"Authorization": "Basic !!!"}, basic("only-user", ""),
    {"Authorization": "Bearer " + SECRET},
])
def test_missing_shared_secret_is_refused(headers: dict[str, str]) -> None:
    with pytest.raises(SignatureError, match="Missing"):
        verify_shared_secret(request(headers), [SECRET], "Acme")


def test_shared_secret_with_none_configured_is_refused() -> None:
    with pytest.raises(SignatureError, match="No Acme secret"):
        verify_shared_secret(request({SECRET_HEADER: ""} | {"X-Rebound-Secret": "anything"}), [""], "Acme")


# --- the timestamp window ---------------------------------------------------------------------


@pytest.mark.parametrize("now", [
    NOW, NOW.replace(tzinfo=None),  # a naive now is UTC, not a TypeError
    NOW.astimezone(timezone(timedelta(hours=5))), NOW.astimezone(timezone(timedelta(hours=-8))),
])
@pytest.mark.parametrize("sent", [NOW, NOW.replace(tzinfo=None), NOW - timedelta(minutes=4, seconds=59),
                                  NOW + timedelta(minutes=5), NOW.astimezone(timezone(timedelta(hours=2)))])
def test_window_accepts_fresh_timestamps_whatever_their_zones(sent: datetime, now: datetime) -> None:
    check_window(sent, now)


@pytest.mark.parametrize("now", [NOW, NOW.replace(tzinfo=None), NOW.astimezone(timezone(timedelta(hours=5)))])
@pytest.mark.parametrize("skew", [timedelta(minutes=-5, seconds=-1), timedelta(minutes=6), timedelta(days=3650)])
def test_window_refuses_stale_or_future_timestamps(now: datetime, skew: timedelta) -> None:
    with pytest.raises(SignatureError, match="window"):
        check_window(NOW + skew, now)


def test_naive_now_is_utc_not_local_time() -> None:
    """A naive now five hours off the timestamp's UTC reading is outside the window."""
    with pytest.raises(SignatureError, match="window"):
        check_window(NOW, NOW.replace(tzinfo=None) + timedelta(hours=5))


def test_window_tolerance_is_configurable() -> None:
    check_window(NOW - timedelta(minutes=9), NOW, tolerance=timedelta(minutes=10))
    with pytest.raises(SignatureError, match="60 s window"):
        check_window(NOW - timedelta(minutes=2), NOW, tolerance=timedelta(minutes=1))


# --- signed timestamp headers -----------------------------------------------------------------


def test_parse_unix_time() -> None:
    assert parse_unix_time("1764064805", "X-Stamp") == NOW
    assert parse_unix_time("1764064805000", "X-Stamp", millis=True) == NOW
    assert parse_unix_time("1764064805123", "X-Stamp", millis=True) == NOW + timedelta(milliseconds=123)
    assert parse_unix_time("1764064805", "X-Stamp").tzinfo is UTC


@pytest.mark.parametrize("stamp", [None, ""])
def test_missing_unix_time_header_is_refused(stamp: str | None) -> None:
    with pytest.raises(SignatureError, match="Missing X-Stamp"):
        parse_unix_time(stamp, "X-Stamp")


@pytest.mark.parametrize("stamp", [
    "yesterday", "nan", "inf", "1e9", "1e400", "-5", "0", "1764064805.5", " 1764064805", "1_764_064_805",
    "１７６４０６４８０５", "9" * 17, "9" * 5000, "2025-11-25T10:00:05Z",
])
def test_malformed_unix_time_header_is_refused(stamp: str) -> None:
    """Only ASCII digits: never a crash, a float or another notation."""
    for millis in (False, True):
        with pytest.raises(SignatureError, match="X-Stamp is not a Unix timestamp"):
            parse_unix_time(stamp, "X-Stamp", millis=millis)


@pytest.mark.parametrize("stamp", ["999999999999", "9" * 16])  # years 33658 and beyond
def test_out_of_range_unix_seconds_are_refused_not_a_crash(stamp: str) -> None:
    with pytest.raises(SignatureError, match="X-Stamp is not a Unix timestamp in seconds"):
        parse_unix_time(stamp, "X-Stamp")


@pytest.mark.parametrize(("stamp", "expected"), [
    ("2025-11-25T10:00:05Z", NOW), ("2025-11-25T10:00:05", NOW), ("2025-11-25T12:00:05+02:00", NOW),
])
def test_parse_iso_time(stamp: str, expected: datetime) -> None:
    moment = parse_iso_time(stamp, "X-Stamp")
    assert moment == expected and moment.tzinfo is UTC


@pytest.mark.parametrize("stamp", ["1764064805", "yesterday", "2025-13-01T00:00:00Z", "9999-12-31T23:30:00-05:00"])
def test_malformed_iso_time_header_is_refused(stamp: str) -> None:
    with pytest.raises(SignatureError, match="not an ISO-8601 time"):
        parse_iso_time(stamp, "X-Stamp")


@settings(max_examples=300, deadline=None)
@given(stamp=st.text(max_size=40) | st.from_regex(r"[0-9]{1,20}", fullmatch=True), millis=st.booleans())
def test_timestamp_headers_raise_only_signature_errors(stamp: str, millis: bool) -> None:
    for parse in (lambda: parse_unix_time(stamp, "X-Stamp", millis=millis), lambda: parse_iso_time(stamp, "X-Stamp")):
        try:
            moment = parse()
        except SignatureError:
            continue
        assert moment.tzinfo is UTC
        check_window(moment, NOW, tolerance=timedelta.max)  # comparable with an aware now


def test_module_imports_nothing_from_app() -> None:
    tree = ast.parse(Path(signing_module.__file__).read_text())
    imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert not [name for name in imported if name and (name == "app" or name.startswith("app."))]
