"""Hypothesis fuzz test of app.email.parse: random bytes and mutated, structured MIME never make
``parse_message`` raise, and every result respects the limits it was given. No app, no DB."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.email.classify import classify_automation
from app.email.parse import Limits, ParsedMessage, parse_message

LIMITS = Limits(max_message_bytes=60_000, max_containers=12, max_depth=4, max_parts=25,
                max_header_chars=300, max_addresses=5, max_references=4, max_body_chars=400,
                max_attachments=3, max_attachment_bytes=300, max_total_attachment_bytes=500)

FUZZ = settings(max_examples=200, deadline=1000, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def check(parsed: ParsedMessage, raw: bytes) -> None:
    assert parsed.raw_size == len(raw)
    assert len(parsed.attachments) <= LIMITS.max_attachments
    assert all(item.size == len(item.data) <= LIMITS.max_attachment_bytes
               for item in parsed.attachments)
    assert sum(item.size for item in parsed.attachments) <= LIMITS.max_total_attachment_bytes
    assert len(parsed.references) <= LIMITS.max_references
    for address_list in (parsed.to, parsed.cc, parsed.reply_to, parsed.delivered_to):
        assert len(address_list) <= LIMITS.max_addresses
    assert all(len(value) <= LIMITS.max_header_chars for _, value in parsed.headers)
    assert len(parsed.defects) <= 200
    # the body limit applies per kind; text made from HTML is never longer than the HTML
    assert len(parsed.text) <= 2 * LIMITS.max_body_chars + 2
    strings = [parsed.subject, parsed.text, parsed.html_sanitized or "", *parsed.defects,
               *(value for pair in parsed.headers for value in pair),
               *(item.filename for item in parsed.attachments)]
    for value in strings:
        value.encode("utf-8")  # no lone surrogates
        assert "\x00" not in value
    assert "<script" not in (parsed.html_sanitized or "").lower()
    assert all(0 < len(item.filename) <= 255 and "/" not in item.filename
               for item in parsed.attachments)
    classify_automation(parsed)  # classification never raises either


@FUZZ
@given(st.binary(max_size=4000))
def test_random_bytes_never_raise(raw: bytes) -> None:
    check(parse_message(raw, limits=LIMITS), raw)


# --- structured MIME, then mutated ------------------------------------------------------------

CHARSETS = st.sampled_from(["utf-8", "iso-8859-1", "gb2312", "x-unknown", "utf-7", "rot13",
                            "unicode_escape", "", '"utf-8"', "big5", "utf-16", "shift_jis", "idna",
                            "undefined", "punycode"])
ENCODINGS = st.sampled_from(["7bit", "8bit", "base64", "quoted-printable", "binary", "x-uuencode",
                             "bogus", ""])
LEAF_TYPES = st.sampled_from(["text/plain", "text/html", "application/pdf", "image/png",
                              "application/ms-tnef", "message/delivery-status", "text/calendar"])
TEXT = st.text(max_size=80)
PAYLOAD = st.one_of(st.binary(max_size=400), TEXT.map(lambda text: text.encode("utf-8", "replace")),
                    st.sampled_from([b"<script>alert(1)</script><img src=x onerror=alert(1)>",
                                     b"Final-Recipient: rfc822; a@b.c\r\nAction: failed\r\n",
                                     b"\x78\x9f\x3e\x22\x01\x00garbage-tnef", b"=?utf-8?b?=",
                                     b"QUJD\r\n!!!", b"=ZZ=\r\n=E9"]))
HEADER_VALUE = st.one_of(TEXT, st.sampled_from([
    "=?x-unknown?q?Bj=F6rn?= <b@x.example>", "a@b <c@d>, , <>, @", "<a@x> <b@x> <c@x> <d@x> <e@x>",
    "=?utf-8?b?!!!?=", "auto-replied", "<>", "Mon, 99 Foo 2026 99:99:99 +9999", "x" * 500,
]))
HEADER_NAME = st.sampled_from(["Subject", "From", "To", "Cc", "Reply-To", "Message-ID",
                               "In-Reply-To", "References", "Date", "Auto-Submitted", "Return-Path",
                               "Precedence", "List-Id", "Content-ID", "X-Failed-Recipients"])


@st.composite
def leaf(draw: st.DrawFn) -> bytes:
    lines = [f"Content-Type: {draw(LEAF_TYPES)}; charset={draw(CHARSETS)}",
             f"Content-Transfer-Encoding: {draw(ENCODINGS)}"]
    if draw(st.booleans()):
        lines.append(f'Content-Disposition: {draw(st.sampled_from(["attachment", "inline", "x"]))}'
                     f'; filename="{draw(TEXT)}"')
    if draw(st.booleans()):
        lines.append(f"Content-ID: <{draw(TEXT)}>")
    head = "\r\n".join(lines).encode("utf-8", "surrogateescape")
    return head + b"\r\n\r\n" + draw(PAYLOAD)


def container(children: st.SearchStrategy[list[bytes]]) -> st.SearchStrategy[bytes]:
    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        parts = draw(children)
        kind = draw(st.sampled_from(["mixed", "alternative", "related", "report", "digest",
                                     "message"]))
        boundary = draw(st.sampled_from(["b1", "b2", "=_x", "a b"]))
        declared = boundary if draw(st.integers(0, 9)) else "other"  # sometimes it never occurs
        if kind != "message":
            body = b"".join(b"--" + boundary.encode() + b"\r\n" + part + b"\r\n" for part in parts)
            if draw(st.booleans()):
                body += b"--" + boundary.encode() + b"--\r\n"
            return (f'Content-Type: multipart/{kind}; boundary="{declared}"; '
                    f"report-type=delivery-status\r\n\r\n").encode() + body
        return b"Content-Type: message/rfc822\r\n\r\n" + parts[0]
    return build()


STRUCTURE = st.recursive(leaf(), lambda inner: container(st.lists(inner, min_size=1, max_size=4)),
                         max_leaves=12)


@st.composite
def message(draw: st.DrawFn) -> bytes:
    headers = draw(st.lists(st.tuples(HEADER_NAME, HEADER_VALUE), max_size=8))
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    raw = head.encode("utf-8", "surrogateescape") + draw(STRUCTURE)
    for _ in range(draw(st.integers(0, 3))):  # mutations: cut, drop, insert, duplicate
        if not raw:
            break
        start = draw(st.integers(0, len(raw) - 1))
        end = draw(st.integers(start, min(len(raw), start + 200)))
        operation = draw(st.sampled_from(["cut", "drop", "insert", "duplicate"]))
        if operation == "cut":
            raw = raw[:start]
        elif operation == "drop":
            raw = raw[:start] + raw[end:]
        elif operation == "insert":
            raw = raw[:start] + draw(st.binary(max_size=40)) + raw[start:]
        else:
            raw = raw[:end] + raw[start:end] + raw[end:]
    return raw


@FUZZ
@given(message())
def test_mutated_mime_never_raises_and_respects_limits(raw: bytes) -> None:
    check(parse_message(raw, limits=LIMITS), raw)


@settings(max_examples=30, deadline=2000, database=None)
@given(st.integers(20, 400))
def test_deep_nesting_is_always_cut(depth: int) -> None:
    opening = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (n, n)
                       for n in range(depth))
    raw = b"Subject: deep\r\n" + opening + b"Content-Type: text/plain\r\n\r\nx"
    parsed = parse_message(raw, limits=LIMITS)
    check(parsed, raw)
    assert any(d.startswith(("TooManyParts", "TooDeep")) for d in parsed.defects)
