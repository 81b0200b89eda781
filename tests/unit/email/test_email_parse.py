"""Unit tests for app.email.parse: real mail from the shared corpus and hostile synthetic MIME.
No app, no DB. Every input must parse without an exception; what is wrong shows in ``defects``."""

from __future__ import annotations

import base64
import hashlib
import struct
import time
from pathlib import Path

import pytest

from app.email.html import INLINE_IMAGE_SCHEME
from app.email.parse import Limits, ParsedMessage, decode_bytes, parse_message

CORPUS = Path(__file__).resolve().parents[4] / "shared" / "corpora" / "email" / \
    "SpamScope-mail-parser" / "tests" / "mails"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="shared email corpus not present")


def corpus(name: str) -> ParsedMessage:
    return parse_message((CORPUS / name).read_bytes())


def mime(*lines: str | bytes) -> bytes:
    return b"\r\n".join(line.encode("utf-8") if isinstance(line, str) else line for line in lines)


def simple(body: bytes, content_type: str = "text/plain; charset=utf-8",
           cte: str = "8bit", extra: tuple[str, ...] = ()) -> bytes:
    return mime("From: Maria <maria@example.com>", "To: returns@shop.example",
                "Subject: Return", *extra, f"Content-Type: {content_type}",
                f"Content-Transfer-Encoding: {cte}", "", body)


# --- the SpamScope corpus ---------------------------------------------------------------------


def corpus_files() -> list[Path]:
    return sorted(CORPUS.glob("*")) if CORPUS.is_dir() else []


@needs_corpus
@pytest.mark.parametrize("path", corpus_files(), ids=lambda path: path.name)
def test_every_corpus_file_parses_with_sensible_headers(path: Path) -> None:
    raw = path.read_bytes()
    parsed = parse_message(raw)
    assert parsed.raw_size == len(raw)
    assert parsed.raw_sha256 == hashlib.sha256(raw).hexdigest()
    for value in (parsed.subject, parsed.text, parsed.html_sanitized or ""):
        value.encode("utf-8")  # no lone surrogates left from 8-bit bytes
        assert "\x00" not in value
    if path.name == "mail_outlook_1":
        return  # not MIME at all; see its own test
    assert parsed.from_ is not None and "@" in parsed.from_.address
    assert parsed.subject
    assert "<script" not in (parsed.html_sanitized or "").lower()


@needs_corpus
def test_corpus_is_not_empty() -> None:
    assert len(corpus_files()) >= 15


@needs_corpus
def test_gb2312_subject_name_and_mislabelled_body() -> None:
    parsed = corpus("mail_test_12")
    assert parsed.subject == "代开各地增值税发票"
    assert parsed.from_ is not None
    assert (parsed.from_.name, parsed.from_.address) == ("张先生", "baoguan@hotmail.com")
    # Declared GB2312, but the 8-bit body is UTF-8: valid UTF-8 wins over the label.
    assert parsed.text.startswith("你好！我公司可代开各类增值税发票")
    assert parsed.to[0].address == "danglüe@email.com"  # raw 8-bit header bytes decoded


@needs_corpus
def test_gb2312_label_on_gbk_text_falls_back_to_the_superset() -> None:
    parsed = corpus("mail_test_9")
    # "屄" is not in GB2312; decoding with the strict GB2312 codec would lose it.
    assert parsed.subject == "我把镜头拉近些，你们看看这个是什么屄，这种场合自然少不了内射"
    assert "什么屄" in parsed.text
    assert parsed.content_type == "text/html"


@needs_corpus
def test_iso_8859_1_encoded_subject_and_inline_images() -> None:
    parsed = corpus("mail_test_5")
    assert parsed.subject == "Je prépare mon été zéro complexe !"
    assert parsed.from_ is not None and parsed.from_.address == "contact@carlance.fr"
    assert len(parsed.attachments) == 5
    assert all(isinstance(item.filename, str) and item.inline for item in parsed.attachments)
    assert all(item.content_id for item in parsed.attachments)


@needs_corpus
def test_inline_cid_images_become_placeholders_of_stored_attachments() -> None:
    parsed = corpus("mail_test_2")
    assert parsed.message_id == "<4516257BC5774408ADC1263EEBBBB73F@ad.regione.vda.it>"
    assert [a.address for a in parsed.to][0] == "echo@tu-berlin.de"
    assert len(parsed.to) == 2
    assert parsed.subject == "Bollettino Meteorologico del 29/11/2015"
    by_name = {item.filename: item for item in parsed.attachments}
    assert set(by_name) == {"intestazione.jpg", "logometeo.jpg", "Bollettino.pdf"}
    logo = by_name["logometeo.jpg"]
    assert logo.inline and logo.content_id == "logo.jpg"
    assert logo.data[:2] == b"\xff\xd8" and logo.size == len(logo.data)
    assert logo.sha256 == hashlib.sha256(logo.data).hexdigest()
    html = parsed.html_sanitized or ""
    assert f'src="{INLINE_IMAGE_SCHEME}{logo.sha256}"' in html
    assert "cid:" not in html
    assert not by_name["Bollettino.pdf"].inline


@needs_corpus
def test_dsn_bounce_keeps_delivery_status() -> None:
    parsed = corpus("mail_malformed_2")
    assert parsed.content_type == "multipart/report"
    assert parsed.report_type == "delivery-status"
    assert [(s.recipient, s.action, s.status) for s in parsed.delivery_status] == [
        ("abh@netpar.com.br", "failed", "4.2.2")]
    assert parsed.header("Return-Path") == "<>"
    # the returned headers are kept, as a text attachment named after the bounced subject
    assert [a.content_type for a in parsed.attachments] == ["message/rfc822-headers"]
    assert b"Trabajo perfecto a distancia" in parsed.attachments[0].data


@needs_corpus
def test_broken_boundary_is_recovered_and_reported() -> None:
    parsed = corpus("mail_malformed_3")
    assert "StartBoundaryNotFoundDefect" in parsed.defects
    assert "MultipartInvariantViolationDefect" in parsed.defects
    assert any(defect.startswith("BoundaryRecovered") for defect in parsed.defects)
    assert "Recibo de Luz" in parsed.subject
    assert parsed.text  # the HTML body behind the wrong boundary was found
    assert parsed.header("X-MSMail-Priority") == "High"
    assert parsed.reply_to[0].address == "smgesi4@gmail.com"


@needs_corpus
def test_outlook_msg_file_is_not_mime() -> None:
    parsed = corpus("mail_outlook_1")
    assert any(defect.startswith("NotMimeDefect") for defect in parsed.defects)
    assert parsed.from_ is None and parsed.attachments == () and parsed.text == ""


@needs_corpus
def test_display_names_with_commas_and_addresses() -> None:
    parsed = corpus("mail_test_18")
    assert parsed.from_ is not None
    assert (parsed.from_.name, parsed.from_.address) == ("Last\u00dflName, FirstName",
                                                         "comma.name@example.com")
    assert [(a.name, a.address) for a in parsed.cc] == [
        ("", "simple@example.net"), ('John "Johnny" Doe', "john.doe@example.com")]
    parsed = corpus("mail_test_19")
    assert parsed.from_ is not None
    assert (parsed.from_.name, parsed.from_.address) == ("alice@example.com", "bob@example.com")
    assert [a.address for a in parsed.cc] == ["frank@example.com"]
    assert [a.address for a in parsed.reply_to] == ["ivan@example.com"]
    assert len(parsed.to) == 2


@needs_corpus
def test_outlook_ios_text_attachment_and_notes_mail() -> None:
    parsed = corpus("mail_test_3")
    assert parsed.defects == ()
    assert [(a.filename, a.content_type) for a in parsed.attachments] == [
        ("message.txt", "text/plain")]
    parsed = corpus("mail_test_10")
    assert len(parsed.attachments) == 4
    assert parsed.to == ()  # "undisclosed-recipients:;" is a group without addresses


# --- headers ----------------------------------------------------------------------------------


def test_threading_headers_and_date() -> None:
    raw = simple(b"Hi", extra=(
        "Message-ID: <new@mail.example>", "In-Reply-To: <b@x> <c@x>",
        "References: <a@x>\r\n <b@x>\r\n\t<c@x>", "Date: Tue, 3 Mar 2026 10:00:00 -0000",
        "Delivered-To: returns+tok123@reply.example", "Reply-To: Other <other@example.com>"))
    parsed = parse_message(raw)
    assert parsed.message_id == "<new@mail.example>"
    assert parsed.in_reply_to == "<b@x>"
    assert parsed.references == ("<a@x>", "<b@x>", "<c@x>")
    assert parsed.date is not None and parsed.date.tzinfo is not None
    assert [a.address for a in parsed.delivered_to] == ["returns+tok123@reply.example"]
    assert parsed.reply_to[0].name == "Other"
    assert parsed.header("references") == "<a@x> <b@x>\t<c@x>"  # unfolded


def test_missing_and_broken_headers_do_not_crash() -> None:
    parsed = parse_message(b"Date: not a date\r\nMessage-ID: bare-id@x\r\n\r\nbody")
    assert parsed.from_ is None and parsed.subject == "" and parsed.to == ()
    assert parsed.date is None and any("InvalidDateDefect" in d for d in parsed.defects)
    assert parsed.message_id == "<bare-id@x>"
    assert parsed.text == "body"


def test_long_references_keep_the_root_and_the_newest() -> None:
    ids = " ".join(f"<id{n}@x>" for n in range(300))
    parsed = parse_message(simple(b"x", extra=(f"References: {ids}",)),
                           limits=Limits(max_references=10, max_header_chars=100_000))
    assert parsed.references[0] == "<id0@x>"
    assert parsed.references[-1] == "<id299@x>"
    assert len(parsed.references) == 10


def test_one_megabyte_header_lines_are_cut_quickly() -> None:
    huge_to = ", ".join(f"person{n}@example.com" for n in range(50_000))  # ~1.1 MB
    raw = simple(b"body", extra=("X-Junk: " + "a" * 1_000_000, "To: " + huge_to,
                                 "Subject: =?utf-8?q?" + "=C3=A9" * 200_000 + "?="))
    started = time.perf_counter()
    parsed = parse_message(raw)
    assert time.perf_counter() - started < 15  # a hang guard, not a speed figure
    assert sum(d.startswith("HeaderTooLong") for d in parsed.defects) >= 2
    assert all(len(value) <= Limits().max_header_chars for _, value in parsed.headers)
    assert 0 < len(parsed.to) <= Limits().max_addresses
    assert parsed.text == "body"


HOSTILE_HEADERS = {
    # policy.default's header parser took minutes on these, or recursed until RecursionError
    "parameters": b"Content-Type: text/plain; " + b"; ".join(b"a%d=1" % n for n in range(90_000)),
    "rfc2231": b"Content-Disposition: attachment; " + b"; ".join(
        b"filename*%d=ab%%41" % n for n in range(60_000)),
    "boundary": b'Content-Type: multipart/mixed; boundary="' + b"x" * 1_000_000 + b'"',
    "comments": b"Content-Type: text/plain " + b"(" * 200_000,
    "quotes": b'Content-Type: text/plain; x="' + b'\\"' * 300_000,
    "address comments": b"From: a@b.example " + b"(" * 100_000,
}


@pytest.mark.parametrize("where", ["top", "part", "attached message"])
@pytest.mark.parametrize("header", HOSTILE_HEADERS.values(), ids=HOSTILE_HEADERS.keys())
def test_hostile_header_values_parse_quickly(header: bytes, where: str) -> None:
    part = header + b"\r\n\r\nbody"
    if where == "top":
        raw = b"Subject: hostile\r\n" + part
    elif where == "part":
        raw = b"Subject: hostile\r\n" + multipart("q", part)
    else:
        raw = b"Subject: hostile\r\n" + multipart(
            "q", b"Content-Type: message/rfc822\r\n\r\nFrom: x@y.example\r\n" + part)
    started = time.perf_counter()
    parsed = parse_message(raw)
    assert time.perf_counter() - started < 2.0
    assert parsed.subject == "hostile"


def test_too_many_addresses_are_capped() -> None:
    to = ", ".join(f"p{n}@x.example" for n in range(50))
    parsed = parse_message(simple(b"x", extra=(f"To: {to}",)), limits=Limits(max_addresses=5))
    assert len(parsed.to) == 5 and any("TooManyAddresses" in d for d in parsed.defects)


def test_encoded_words_with_unknown_charset_and_raw_8bit_headers() -> None:
    raw = mime("From: =?x-unknown?q?Bj=F6rn?= <bjorn@example.com>",
               "Subject: =?utf-8?b?!!!notbase64?= caf\xe9".encode("latin-1"),
               "To: =?utf-8?b?w6lsw6g=?= <e@example.com>", "", b"hi")
    parsed = parse_message(raw)
    assert parsed.from_ is not None and parsed.from_.name == "Björn"
    assert parsed.subject.endswith("café")
    assert parsed.to[0].name == "élè"


# --- charsets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "label", "text", "fallback"), [
    (b"plain", None, "plain", False),
    ("caf\u00e9".encode(), "iso-8859-1", "caf\u00e9", False),  # valid UTF-8 wins over the label
    ("caf\u00e9 \u2019".encode("cp1252"), "iso-8859-1", "caf\u00e9 \u2019", False),  # as cp1252
    ("caf\u00e9".encode("latin-1"), "utf-8", "caf\u00e9", True),  # mislabelled
    ("caf\u00e9".encode("latin-1"), "x-unknown", "caf\u00e9", True),  # unknown label
    ("caf\u00e9".encode("latin-1"), "rot13", "caf\u00e9", True),  # a codec that is no charset
    ("caf\u00e9".encode("latin-1"), "unicode_escape", "caf\u00e9", True),
    ("\u4f60\u597d".encode("gb2312"), "gb2312", "\u4f60\u597d", False),
    ("\u3053\u3093\u306b\u3061\u306f".encode("iso-2022-jp"), "ISO-2022-JP",
     "\u3053\u3093\u306b\u3061\u306f", False),  # 7-bit, so also "ASCII"
    (b"Hi Mom -+Jjo--!", "unicode-1-1-utf-7", "Hi Mom -\u263a-!", False),
    (b"\x1b$B broken", "iso-2022-jp", "\x1b$B broken", True),
    ("\u043f\u0440\u0438\u0432\u0435\u0442".encode() + b"\xff", "utf-8",
     "\u043f\u0440\u0438\u0432\u0435\u0442\ufffd", True),  # one broken byte in UTF-8 text
])
def test_decode_bytes(data: bytes, label: str | None, text: str, fallback: bool) -> None:
    assert decode_bytes(data, label) == (text, fallback)


@pytest.mark.parametrize("charset", ["idna", "undefined", "punycode", "unicode_escape", "rot13"])
@pytest.mark.parametrize("content_type", ["text/plain", "application/pdf",
                                          "message/delivery-status", "message/rfc822"])
def test_codecs_that_are_not_charsets_never_crash(charset: str, content_type: str) -> None:
    # The standard library's own get_payload() raised on these labels with 8-bit bodies.
    raw = b"From: a@example.com\r\nSubject: s\r\n" + multipart(
        "x", f"Content-Type: {content_type}; charset={charset}\r\n"
             "Content-Transfer-Encoding: 8bit\r\n\r\n".encode() + b"caf\xe9 \xff\xfe")
    parsed = parse_message(raw)
    if content_type == "text/plain":
        assert parsed.text == "caf\u00e9 \u00ff\u00fe"


def test_unknown_charset_body_falls_back() -> None:
    parsed = parse_message(simple("Grüße".encode("latin-1"), "text/plain; charset=x-unknown"))
    assert parsed.text == "Grüße"
    assert any(d.startswith("CharsetFallback") for d in parsed.defects)


def test_mislabelled_charset_body_falls_back() -> None:
    parsed = parse_message(simple("Größe 42 – zu klein".encode("cp1252"),
                                  "text/plain; charset=utf-8"))
    assert parsed.text == "Größe 42 – zu klein"


def test_undecodable_base64_and_quoted_printable() -> None:
    parsed = parse_message(simple(b"!!!! not base64 @@@ ===", cte="base64"))
    assert isinstance(parsed.text, str)
    parsed = parse_message(simple(b"caf=E9 =ZZ broken =\r\nsoft", "text/plain; charset=latin-1",
                                  cte="quoted-printable"))
    assert parsed.text.startswith("café =ZZ broken soft")


# --- structure --------------------------------------------------------------------------------


def multipart(boundary: str, *parts: bytes, subtype: str = "mixed") -> bytes:
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + part + b"\r\n" for part in parts)
    return (f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'.encode()
            + body + b"--" + boundary.encode() + b"--\r\n")


def test_alternative_prefers_plain_and_sanitizes_html() -> None:
    raw = b"From: a@example.com\r\nSubject: s\r\nMIME-Version: 1.0\r\n" + multipart(
        "alt",
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nThe plain text",
        b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>The <b>html</b></p><script>x()</script>",
        subtype="alternative")
    parsed = parse_message(raw)
    assert parsed.text == "The plain text"
    assert parsed.html_sanitized == "<p>The <b>html</b></p>"


def test_html_only_mail_becomes_text() -> None:
    parsed = parse_message(simple(b"<div>Hello,</div><div>the zip <b>broke</b>.<br>Maria</div>",
                                  "text/html; charset=utf-8"))
    assert parsed.text == "Hello,\n\nthe zip broke.\nMaria"


def test_missing_boundary_parameter() -> None:
    raw = mime("From: a@example.com", "Subject: s", "Content-Type: multipart/mixed", "",
               "--x", "Content-Type: text/plain", "", "inside", "--x--")
    parsed = parse_message(raw)
    assert any("NoBoundaryInMultipartDefect" in d or "Boundary" in d for d in parsed.defects)
    assert "inside" in parsed.text


def test_boundary_that_never_occurs_and_no_body_lines() -> None:
    raw = mime("From: a@example.com", "Content-Type: multipart/mixed; boundary=zzz", "",
               "just text, no boundary at all")
    parsed = parse_message(raw)
    assert "StartBoundaryNotFoundDefect" in parsed.defects


def nested(depth: int) -> bytes:
    opening = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (n, n)
                       for n in range(depth))
    closing = b"".join(b"\r\n--b%d--" % n for n in reversed(range(depth)))
    return (b"From: a@example.com\r\nSubject: deep\r\n" + opening
            + b"Content-Type: text/plain\r\n\r\ndeepest" + closing + b"\r\n")


def test_ten_thousand_nested_multiparts_are_cut_fast() -> None:
    raw = nested(10_000)
    started = time.perf_counter()
    parsed = parse_message(raw)
    assert time.perf_counter() - started < 15  # a hang guard, not a speed figure
    assert any(d.startswith("TooManyParts") for d in parsed.defects)
    assert parsed.subject == "deep"


def test_depth_limit_stops_the_walk() -> None:
    parsed = parse_message(nested(40), limits=Limits(max_depth=10))
    assert any(d.startswith("TooDeep") for d in parsed.defects)
    assert parsed.text == ""  # the text sits below the cut
    assert parse_message(nested(20)).text == "deepest"


def test_ten_thousand_sibling_parts_are_bounded() -> None:
    parts = [b"Content-Type: application/octet-stream\r\n\r\nx%d" % n for n in range(10_000)]
    raw = b"From: a@example.com\r\nSubject: wide\r\n" + multipart("w", *parts)
    started = time.perf_counter()
    parsed = parse_message(raw)
    assert time.perf_counter() - started < 3.0
    assert len(parsed.attachments) == Limits().max_attachments
    assert any(d.startswith("TooManyParts") for d in parsed.defects)


def attachment_part(name: str, data: bytes, content_type: str = "application/pdf",
                    extra: str = "") -> bytes:
    encoded = base64.encodebytes(data).replace(b"\n", b"\r\n")
    return (f'Content-Type: {content_type}; name="{name}"\r\n'
            f'Content-Disposition: attachment; filename="{name}"\r\n{extra}'
            f"Content-Transfer-Encoding: base64\r\n\r\n").encode() + encoded


def test_attachments_over_the_limits_are_skipped_not_stored() -> None:
    raw = b"From: a@example.com\r\nSubject: files\r\n" + multipart(
        "f", b"Content-Type: text/plain\r\n\r\nsee files",
        attachment_part("big.pdf", b"x" * 5000), attachment_part("small.pdf", b"y" * 100),
        attachment_part("second.pdf", b"z" * 900), attachment_part("third.pdf", b"w" * 900))
    parsed = parse_message(raw, limits=Limits(max_attachment_bytes=1000,
                                              max_total_attachment_bytes=1500))
    assert [a.filename for a in parsed.attachments] == ["small.pdf", "second.pdf"]
    assert any(d.startswith("AttachmentTooLarge: big.pdf") for d in parsed.defects)
    assert any(d.startswith("AttachmentsTooLarge: third.pdf") for d in parsed.defects)
    assert parsed.text == "see files"


def test_bodies_do_not_use_up_the_attachment_budget() -> None:
    raw = b"From: a@example.com\r\nSubject: s\r\n" + multipart(
        "f", b"Content-Type: text/plain\r\n\r\n" + b"t" * 900,
        attachment_part("photo.pdf", b"p" * 900))
    parsed = parse_message(raw, limits=Limits(max_attachment_bytes=1000,
                                              max_total_attachment_bytes=1000))
    assert len(parsed.text) == 900 and [a.size for a in parsed.attachments] == [900]
    huge = parse_message(simple(b"t" * 2000), limits=Limits(max_attachment_bytes=1000))
    assert huge.text == "" and any(d.startswith("BodyTooLarge") for d in huge.defects)


def test_nul_and_8bit_bytes_never_reach_content_types_or_defects() -> None:
    raw = b"From: a@example.com\r\n" + multipart(
        "f", b"Content-Type: image/p\x00n\xffg\r\n\r\ndata",
        b"Content-Type: multipart/mixed; boundary=none\r\n\r\n--b\x00\xff\r\n\r\nx")
    parsed = parse_message(raw)
    assert parsed.attachments[0].content_type == "application/octet-stream"
    for defect in parsed.defects:
        assert "\x00" not in defect
        defect.encode("utf-8")


def test_hostile_filenames_are_made_safe() -> None:
    raw = b"From: a@example.com\r\n" + multipart(
        "f", attachment_part("../../etc/passwd\x01", b"a"),
        attachment_part("C:\\\\Users\\\\x\\\\evil.exe", b"b"),
        attachment_part("=?utf-8?q?R=C3=BCcksendung.pdf?=", b"c"),
        b"Content-Type: image/png\r\nContent-ID: <img1@x>\r\n\r\npng")
    names = [a.filename for a in parse_message(raw).attachments]
    assert names == ["passwd", "evil.exe", "Rücksendung.pdf", "attachment-4.png"]


def test_forwarded_message_is_an_attachment_not_body_text() -> None:
    inner = b"From: old@example.com\r\nSubject: Original order\r\n\r\nold text"
    raw = b"From: a@example.com\r\nSubject: Fwd\r\n" + multipart(
        "f", b"Content-Type: text/plain\r\n\r\nsee below",
        b"Content-Type: message/rfc822\r\n\r\n" + inner)
    parsed = parse_message(raw)
    assert parsed.text == "see below"
    assert [(a.filename, a.content_type) for a in parsed.attachments] == [
        ("Original order.eml", "message/rfc822")]
    assert b"old text" in parsed.attachments[0].data


def test_message_over_the_size_limit_keeps_only_headers() -> None:
    parsed = parse_message(simple(b"x" * 5000), limits=Limits(max_message_bytes=1000))
    assert parsed.subject == "Return" and parsed.text == ""
    assert any(d.startswith("MessageTooLarge") for d in parsed.defects)


def test_body_is_cut_at_the_limit() -> None:
    parsed = parse_message(simple(b"a" * 5000), limits=Limits(max_body_chars=1000))
    assert len(parsed.text) == 1000 and any("BodyTooLong" in d for d in parsed.defects)


def test_hostile_html_is_sanitized() -> None:
    html = (b'<p onclick="x()">hi</p><script>alert(1)</script><style>p{color:red}</style>'
            b'<img src=x onerror="alert(1)"><a href="javascript:alert(1)">j</a>'
            b'<a href="JaVaScRiPt:alert(1)">k</a><a href="https://ok.example/">ok</a>'
            b'<div style="width:expression(alert(1));background:url(javascript:x)">css</div>'
            b'<iframe src="https://evil.example"></iframe><svg onload="alert(1)"><circle/></svg>'
            b'<form action="https://evil.example"><input name=p></form>'
            b'<meta http-equiv="refresh" content="0;url=https://evil.example">'
            b'<base href="https://evil.example/"><object data="x.swf"></object>'
            b'<img src="https://tracker.example/pixel.gif"><a href="data:text/html,<script>">d</a>')
    parsed = parse_message(simple(html, "text/html; charset=utf-8"))
    cleaned = (parsed.html_sanitized or "").lower()
    for bad in ("<script", "alert", "onclick", "onerror", "onload", "javascript:", "<style",
                "expression", "style=", "<iframe", "<svg", "<form", "<input", "<meta", "<base",
                "<object", "tracker.example", "data:"):
        assert bad not in cleaned, bad
    assert '<a href="https://ok.example/" rel="noopener noreferrer nofollow">ok</a>' in cleaned
    assert "hi" in parsed.text and "alert" not in parsed.text and "color:red" not in parsed.text


def test_deeply_nested_html_body_falls_back_to_text() -> None:
    parsed = parse_message(simple(b"<div>" * 50_000 + b"Zip broke", "text/html; charset=utf-8"))
    assert parsed.html_sanitized == "<pre>Zip broke</pre>"
    assert parsed.text == "Zip broke"
    assert "HtmlTooDeep: shown as text" in parsed.defects


# --- TNEF (winmail.dat) -----------------------------------------------------------------------


def tnef_object(level: int, name: int, kind: int, data: bytes) -> bytes:
    return struct.pack("<BHHI", level, name, kind, len(data)) + data + struct.pack(
        "<H", sum(data) & 0xFFFF)


def build_tnef(files: list[tuple[bytes, bytes]], body: bytes | None = None) -> bytes:
    """A minimal TNEF stream: signature, version, optional body, and per file the rendering
    attribute that opens an attachment, its title and its data (MS-OXTNEF §2.1.3)."""
    out = struct.pack("<IH", 0x223E9F78, 1) + tnef_object(1, 0x9006, 8, struct.pack("<I", 0x10000))
    if body is not None:
        out += tnef_object(1, 0x800C, 2, body)
    for name, data in files:
        out += tnef_object(2, 0x9002, 6, b"\x00" * 14)
        out += tnef_object(2, 0x8010, 1, name + b"\x00")
        out += tnef_object(2, 0x800F, 6, data)
    return out


def with_winmail(tnef: bytes, text: bytes | None = None) -> bytes:
    parts = [b"Content-Type: text/plain\r\n\r\n" + text] if text is not None else []
    parts.append(attachment_part("winmail.dat", tnef, "application/ms-tnef"))
    return b"From: outlook@example.com\r\nSubject: Outlook\r\n" + multipart("t", *parts)


def test_tnef_is_unpacked_into_ordinary_attachments_and_body() -> None:
    photo = b"\xff\xd8\xff\xe0damaged-box-photo"
    parsed = parse_message(with_winmail(build_tnef(
        [(b"damage.jpg", photo), (b"invoice.pdf", b"%PDF-1.4 x")], b"The box arrived broken.")))
    assert [(a.filename, a.content_type, a.data) for a in parsed.attachments] == [
        ("damage.jpg", "image/jpeg", photo), ("invoice.pdf", "application/pdf", b"%PDF-1.4 x")]
    assert parsed.attachments[0].sha256 == hashlib.sha256(photo).hexdigest()
    assert parsed.text == "The box arrived broken."
    assert not any("winmail" in a.filename for a in parsed.attachments)


def test_tnef_body_does_not_replace_a_real_text_part() -> None:
    parsed = parse_message(with_winmail(build_tnef([], b"tnef body"), text=b"mime body"))
    assert parsed.text == "mime body"


def test_broken_tnef_is_kept_as_a_file_with_a_defect() -> None:
    parsed = parse_message(with_winmail(b"not tnef at all"))
    assert [a.filename for a in parsed.attachments] == ["winmail.dat"]
    assert any(d.startswith("TnefDecodeError") for d in parsed.defects)
    truncated = build_tnef([(b"a.txt", b"hello world" * 10)])[:-30]
    parse_message(with_winmail(truncated))  # whatever it yields, it does not raise
