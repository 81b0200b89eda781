"""Unit tests for the Mailgun route adapter (integrations.mail.mailgun): the HMAC over
timestamp + token computed here by hand, the parsed form (urlencoded and multipart), the raw
``body-mime`` form, and refusals. No app, no DB."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from mailkit import NOW, SMALL, corpus, multipart, parsed, payload_error, plain_text, request, urlencoded

from integrations.base import SignatureError
from integrations.mail import DEFAULT_LIMITS, MailTooLargeError, get_mail_adapter

adapter = get_mail_adapter("mailgun")
KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
TOKEN = "2b90a03befc0b98ae2b641b0080850cada918a2d2f670e0141"
STAMP = str(int(NOW.timestamp()))

# The documented parsed fields, with values as a real post carries them.
HEADERS = [
    ["Received", "from mail-wr1-f41.google.com (mail-wr1-f41.google.com [209.85.221.41]) by mxa.mailgun.org"],
    ["From", "Dana Whitfield <dana@example.com>"],
    ["Date", "Mon, 2 Mar 2026 10:12:01 +0100"],
    ["Message-Id", "<CAGx=zip1001@mail.gmail.com>"],
    ["In-Reply-To", "<case-RMA-10042.1@reply.outfitters.example>"],
    ["Subject", "Re: Your return RMA-10042"],
    ["To", "returns+k9x2@reply.outfitters.example"],
    ["Content-Type", "multipart/alternative; boundary=\"000000000000b5\""],
]


def signature(stamp: str = STAMP, token: str = TOKEN, key: str = KEY) -> str:
    return hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()


def fields(**changes: str | None) -> list[tuple[str, str]]:
    values: dict[str, str | None] = {
        "recipient": "returns+k9x2@reply.outfitters.example",
        "sender": "dana@example.com",
        "from": "Dana Whitfield <dana@example.com>",
        "subject": "Re: Your return RMA-10042",
        "body-plain": "The boots still pinch.\n\nOn Mon, Outfitters wrote:\n> Any news?\n",
        "stripped-text": "The boots still pinch.",
        "stripped-signature": "",
        "body-html": "<div>The boots still pinch.</div>",
        "stripped-html": "<div>The boots still pinch.</div>",
        "attachment-count": "0",
        "timestamp": STAMP,
        "token": TOKEN,
        "signature": signature(),
        "message-headers": json.dumps(HEADERS),
        "Message-Id": "<CAGx=zip1001@mail.gmail.com>",
    }
    values.update(changes)
    return [(name, value) for name, value in values.items() if value is not None]


# --- signature ---------------------------------------------------------------------------------


def test_signature_computed_independently_passes_urlencoded_and_multipart() -> None:
    adapter.verify(urlencoded(fields()), [KEY], NOW)
    adapter.verify(multipart(fields()), [KEY], NOW)


def test_rotated_out_key_still_accepted() -> None:
    adapter.verify(urlencoded(fields()), ["key-new-one", KEY], NOW)


@pytest.mark.parametrize("change", [
    {"signature": "0" * 64},
    {"signature": signature(key="another-key")},
    {"signature": "not hex at all"},
    {"signature": None},
    {"token": None},
    {"timestamp": None},
    {"token": TOKEN + "x"},  # the signature no longer covers it
])
def test_wrong_or_missing_signature_fields_are_refused(change: dict[str, str | None]) -> None:
    with pytest.raises(SignatureError):
        adapter.verify(urlencoded(fields(**change)), [KEY], NOW)


def test_no_key_configured_is_refused_not_skipped() -> None:
    with pytest.raises(SignatureError, match="No Mailgun secret"):
        adapter.verify(urlencoded(fields()), ["", ""], NOW)


@pytest.mark.parametrize("offset", [timedelta(minutes=-6), timedelta(minutes=6), timedelta(days=-365)])
def test_stale_or_future_timestamp_is_refused(offset: timedelta) -> None:
    stamp = str(int((NOW + offset).timestamp()))
    with pytest.raises(SignatureError, match="window"):
        adapter.verify(urlencoded(fields(timestamp=stamp, signature=signature(stamp))), [KEY], NOW)


def test_timestamp_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(SignatureError):
        adapter.verify(urlencoded(fields(timestamp="1e9", signature=signature("1e9"))), [KEY], NOW)


def test_a_body_that_is_not_a_form_is_refused_by_verify() -> None:
    with pytest.raises(SignatureError):
        adapter.verify(request(b'{"signature": {}}', {"Content-Type": "application/json"}), [KEY], NOW)


def test_verify_reports_a_body_too_large_to_read_as_such() -> None:
    body = b"a=" + b"b" * (DEFAULT_LIMITS.max_body_bytes + 1)
    huge = request(body, {"Content-Type": "application/x-www-form-urlencoded"})
    with pytest.raises(MailTooLargeError):
        adapter.verify(huge, [KEY], NOW)


def test_signature_fields_match_the_independent_computation() -> None:
    signed = adapter.signature_fields(KEY, NOW, TOKEN)
    assert signed == {"timestamp": STAMP, "token": TOKEN, "signature": signature()}


def test_signed_sample_verifies_and_parses() -> None:
    body, headers = adapter.signed_sample(KEY, NOW, TOKEN)
    req = request(body, headers)
    adapter.verify(req, [KEY], NOW)
    mail = adapter.parse_mail(req)
    assert mail.attachments and mail.attachments[0].content.startswith(b"\x89PNG")
    with pytest.raises(SignatureError):
        adapter.verify(req, ["key-other"], NOW)


# --- the parsed form -----------------------------------------------------------------------------


def test_parsed_urlencoded_post() -> None:
    mail = adapter.parse_mail(urlencoded(fields()))
    assert mail.provider == "mailgun"
    assert mail.sender == "dana@example.com"
    assert mail.recipients == ("returns+k9x2@reply.outfitters.example",)
    assert mail.subject == "Re: Your return RMA-10042"
    assert mail.text.startswith("The boots still pinch.")
    assert mail.html == "<div>The boots still pinch.</div>"
    assert mail.stripped_text == "The boots still pinch."
    assert mail.headers[3] == ("Message-Id", "<CAGx=zip1001@mail.gmail.com>")
    assert mail.provider_message_id == "<CAGx=zip1001@mail.gmail.com>"
    assert mail.raw is None and mail.attachments == ()

    message = parsed(mail)
    assert message["Subject"] == "Re: Your return RMA-10042"
    assert message["In-Reply-To"] == "<case-RMA-10042.1@reply.outfitters.example>"
    assert message["X-Original-To"] == "returns+k9x2@reply.outfitters.example"
    assert plain_text(message).startswith("The boots still pinch.")
    # The provider's Content-Type described a body that is rebuilt: it must not survive.
    assert message.get_content_type() == "multipart/alternative"


def test_non_ascii_values_survive_percent_encoding() -> None:
    mail = adapter.parse_mail(urlencoded(fields(subject="Rücksendung – 靴", **{"body-plain": "Grüße ✓"})))
    assert mail.subject == "Rücksendung – 靴"
    assert mail.text == "Grüße ✓"


def test_multipart_post_with_attachments_and_content_ids() -> None:
    photo, invoice = b"\x89PNG\r\n\x1a\n" + bytes(range(256)), b"%PDF-1.4 fake"
    req = multipart(fields(**{"attachment-count": "2",
                              "content-id-map": json.dumps({"<ii_photo1>": "attachment-1"})}) + [
        ("attachment-1", ("box.png", photo, "image/png")),
        ("attachment-2", ("invoice.pdf", invoice, "application/pdf")),
    ])
    mail = adapter.parse_mail(req)
    assert [(a.filename, a.content_type, a.content, a.content_id) for a in mail.attachments] == [
        ("box.png", "image/png", photo, "<ii_photo1>"),
        ("invoice.pdf", "application/pdf", invoice, None),
    ]
    message = parsed(mail)
    found = {part.get_filename(): part for part in message.iter_attachments()}
    assert found["box.png"].get_content() == photo
    assert found["box.png"]["Content-ID"] == "<ii_photo1>"
    assert found["invoice.pdf"].get_content_type() == "application/pdf"


def test_without_message_headers_single_header_fields_are_kept() -> None:
    mail = adapter.parse_mail(urlencoded(fields(**{"message-headers": None, "In-Reply-To": "<a@b>"})))
    assert ("In-Reply-To", "<a@b>") in mail.headers
    message = parsed(mail)
    assert message["From"] == "Dana Whitfield <dana@example.com>"
    assert message["Subject"] == "Re: Your return RMA-10042"


def test_sender_falls_back_to_the_from_header() -> None:
    assert adapter.parse_mail(urlencoded(fields(sender=None))).sender == "dana@example.com"


@pytest.mark.parametrize(("change", "field"), [
    ({"recipient": None}, "recipient"),
    ({"recipient": "not an address"}, "recipient"),
    ({"sender": None, "from": None}, "sender"),
    ({"message-headers": "[[\"From\""}, "message-headers"),
    ({"message-headers": json.dumps([["From"]])}, "message-headers"),
    ({"message-headers": json.dumps({"From": "x"})}, "message-headers"),
    ({"attachment-count": "two"}, "attachment-count"),
    ({"attachment-count": "-1"}, "attachment-count"),
    ({"attachment-count": "1"}, "attachment-1"),
    ({"content-id-map": "[1, 2]"}, "content-id-map"),
])
def test_missing_or_malformed_fields_are_named(change: dict[str, str | None], field: str) -> None:
    assert payload_error(adapter, urlencoded(fields(**change))).field == field


def test_not_a_form_is_a_payload_error() -> None:
    error = payload_error(adapter, request(b"{}", {"Content-Type": "application/json"}))
    assert error.field == "content-type"


@pytest.mark.parametrize("body", [
    b"------rebound-test-boundary-7MA4YWxk\r\nContent-Disposition: form-data; name=\"recipient\"\r\n\r\nx@y.z",
    b"no boundary anywhere",
    b"",
    b"------rebound-test-boundary-7MA4YWxk\r\nContent-Type: text/plain\r\n\r\nno disposition\r\n"
    b"------rebound-test-boundary-7MA4YWxk--\r\n",
    b"------rebound-test-boundary-7MA4YWxk\r\nContent-Disposition: form-data; name=\"\xff\xfe\"\r\n\r\nx\r\n"
    b"------rebound-test-boundary-7MA4YWxk--\r\n",
])
def test_malformed_multipart_bodies_are_payload_errors(body: bytes) -> None:
    req = request(body, {"Content-Type": "multipart/form-data; boundary=----rebound-test-boundary-7MA4YWxk"})
    assert payload_error(adapter, req).field == "body"


def test_multipart_without_a_boundary_parameter() -> None:
    assert payload_error(adapter, request(b"x", {"Content-Type": "multipart/form-data"})).field == "content-type"


def test_urlencoded_body_with_raw_8bit_bytes_is_malformed() -> None:
    req = request(b"recipient=a@b.c&subject=\xff", {"Content-Type": "application/x-www-form-urlencoded"})
    assert payload_error(adapter, req).field == "body"


# --- limits ----------------------------------------------------------------------------------------


def test_oversized_multipart_field_is_refused_naming_it() -> None:
    error = payload_error(adapter, multipart(fields(**{"body-html": "x" * 60_000})), SMALL)
    assert isinstance(error, MailTooLargeError) and error.field == "body-html"


def test_oversized_file_is_refused_naming_it() -> None:
    req = multipart(fields(**{"attachment-count": "1"}) + [("attachment-1", ("big.bin", b"\0" * 60_000, "x/y"))])
    error = payload_error(adapter, req, SMALL)
    assert isinstance(error, MailTooLargeError) and error.field == "attachment-1"


def test_oversized_urlencoded_field_is_refused_naming_it() -> None:
    error = payload_error(adapter, urlencoded(fields(**{"body-plain": "y" * 60_000})), SMALL)
    assert isinstance(error, MailTooLargeError) and error.field == "body-plain"


def test_too_many_parts_and_too_large_bodies() -> None:
    many = fields() + [(f"X-Extra-{n}", "v") for n in range(50)]
    assert isinstance(payload_error(adapter, multipart(many), SMALL), MailTooLargeError)
    assert isinstance(payload_error(adapter, urlencoded(many), SMALL), MailTooLargeError)
    error = payload_error(adapter, urlencoded(fields(**{"body-plain": "z" * 250_000})), SMALL)
    assert isinstance(error, MailTooLargeError) and error.field == "body"


def test_attachment_count_above_the_part_limit() -> None:
    error = payload_error(adapter, urlencoded(fields(**{"attachment-count": "999999"})), SMALL)
    assert isinstance(error, MailTooLargeError) and error.field == "attachment-count"


# --- raw MIME (a route URL ending in "mime") ---------------------------------------------------------


def raw_fields(raw: bytes) -> list[tuple[str, str | bytes]]:
    return [("recipient", "returns+k9x2@reply.outfitters.example"), ("sender", "meteo@regione.vda.it"),
            ("subject", "ignored"), ("body-mime", raw), ("timestamp", STAMP), ("token", TOKEN),
            ("signature", signature())]


@pytest.mark.parametrize("encode", ["urlencoded", "multipart"])
def test_body_mime_passes_the_corpus_message_through_byte_for_byte(encode: str) -> None:
    raw = corpus("mail_test_2")  # 1.5 MB, 8-bit bytes that are not UTF-8, a PDF and two JPEGs
    req = urlencoded(raw_fields(raw)) if encode == "urlencoded" else multipart(raw_fields(raw))
    adapter.verify(req, [KEY], NOW)
    mail = adapter.parse_mail(req)
    assert mail.raw == raw
    assert mail.recipients == ("returns+k9x2@reply.outfitters.example",)
    assert mail.provider_message_id == "<4516257BC5774408ADC1263EEBBBB73F@ad.regione.vda.it>"
    assert adapter.delivery_key(req) == "mailgun:message:<4516257BC5774408ADC1263EEBBBB73F@ad.regione.vda.it>"
    message = parsed(mail)
    assert message["Subject"] == "Bollettino Meteorologico del 29/11/2015"
    assert message["X-Original-To"] == "returns+k9x2@reply.outfitters.example"
    assert mail.to_mime().endswith(raw)


def test_empty_body_mime_is_a_payload_error() -> None:
    assert payload_error(adapter, urlencoded(raw_fields(b"  "))).field == "body-mime"


# --- delivery keys --------------------------------------------------------------------------------------


def test_delivery_key_prefers_message_id_then_token_then_body_hash() -> None:
    assert adapter.delivery_key(urlencoded(fields())) == "mailgun:message:<CAGx=zip1001@mail.gmail.com>"
    no_id = urlencoded(fields(**{"Message-Id": None, "message-headers": None}))
    assert adapter.delivery_key(no_id) == f"mailgun:token:{TOKEN}"
    garbage = request(b"\xff\xfe", {"Content-Type": "multipart/form-data; boundary=b"})
    assert adapter.delivery_key(garbage) == "sha256:" + hashlib.sha256(b"\xff\xfe").hexdigest()
