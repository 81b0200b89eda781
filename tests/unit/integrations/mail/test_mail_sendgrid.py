"""Unit tests for the SendGrid Inbound Parse adapter (integrations.mail.sendgrid): Basic auth
from the webhook URL, the parsed post with charsets and attachment-info, the raw ``email``
post, and refusals. No app, no DB."""

from __future__ import annotations

import hashlib
import json

import pytest
from mailkit import NOW, SMALL, basic, corpus, multipart, parsed, payload_error, plain_text, request

from integrations.base import SignatureError
from integrations.mail import MailTooLargeError, get_mail_adapter

adapter = get_mail_adapter("sendgrid")
SECRET = "pR8v2xKq7mW4tZs9"
HEADER_BLOCK = (
    "Received: by mx0047p1mdw1.sendgrid.net with SMTP id 6WCVv7KAWn Wed, 27 Jul 2016 20:53:06 +0000 (UTC)\n"
    "Received: from mail-io0-f169.google.com (mail-io0-f169.google.com [209.85.223.169]) by\n"
    " mx0047p1mdw1.sendgrid.net (Postfix) with ESMTPS id 170AD4A0AAC\n"
    "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=20120113; h=mime-version:from:date\n"
    "MIME-Version: 1.0\n"
    "From: Dana Whitfield <dana@example.com>\n"
    "Date: Mon, 2 Mar 2026 10:12:01 +0100\n"
    "Message-ID: <CAN5Qx=sg1001@mail.example.com>\n"
    "Subject: Return for order #1001\n"
    "To: returns+k9x2@parse.outfitters.example\n"
    "Content-Type: multipart/mixed; boundary=001a113df448cad2d00538b2a3b8\n"
)


def fields(**changes: object) -> list[tuple[str, object]]:
    """A parsed-mode post in the field order SendGrid sends (its docs' example)."""
    values: dict[str, object] = {
        "headers": HEADER_BLOCK,
        "dkim": "{@example.com : pass}",
        "content-ids": json.dumps({"ii_1562e2169c132d83": "attachment1"}),
        "to": "returns+k9x2@parse.outfitters.example",
        "html": "<html><body><strong>The boots are too small.</strong></body></html>\n",
        "from": "Dana Whitfield <dana@example.com>",
        "text": "The boots are too small.\n",
        "sender_ip": "209.85.223.169",
        "spam_report": "Spam detection software, running on the system \"mx0047p1mdw1.sendgrid.net\"...",
        "envelope": json.dumps({"to": ["returns+k9x2@parse.outfitters.example"], "from": "dana@example.com"}),
        "attachments": "1",
        "subject": "Return for order #1001",
        "spam_score": "0.011",
        "attachment-info": json.dumps({"attachment1": {"filename": "boots.jpg", "name": "boots.jpg",
                                                       "type": "image/jpeg", "content-id": "ii_1562e2169c132d83"}}),
        "charsets": json.dumps({"to": "UTF-8", "html": "UTF-8", "subject": "UTF-8", "from": "UTF-8",
                                "text": "UTF-8"}),
        "SPF": "pass",
        "attachment1": ("boots.jpg", b"\xff\xd8\xff\xe0JFIF-bytes", "image/jpeg"),
    }
    values.update(changes)
    return [(name, value) for name, value in values.items() if value is not None]


def post(extra_fields: list[tuple[str, object]] | None = None, **changes: object) -> object:
    return multipart(fields(**changes) + (extra_fields or []), basic("rebound", SECRET))


# --- credentials -----------------------------------------------------------------------------------


def test_basic_auth_password_passes_and_username_is_not_checked() -> None:
    adapter.verify(post(), [SECRET], NOW)
    adapter.verify(multipart(fields(), basic("anyone", SECRET)), ["old-secret", SECRET], NOW)


def test_rebound_secret_header_passes() -> None:
    adapter.verify(multipart(fields(), {"X-Rebound-Secret": SECRET}), [SECRET], NOW)


@pytest.mark.parametrize("headers", [
    {},
    basic("rebound", "wrong"),
    basic("rebound", SECRET + "x"),
    {"Authorization": "Basic !!!not-base64"},
    {"Authorization": "Bearer " + SECRET},
    {"X-Rebound-Secret": "wrong"},
])
def test_missing_or_wrong_credentials_are_refused(headers: dict[str, str]) -> None:
    with pytest.raises(SignatureError):
        adapter.verify(multipart(fields(), headers), [SECRET], NOW)


def test_no_secret_configured_is_refused() -> None:
    with pytest.raises(SignatureError):
        adapter.verify(post(), [], NOW)


def test_signed_sample_verifies_and_parses() -> None:
    body, headers = adapter.signed_sample(SECRET, NOW, "d1")
    req = request(body, headers)
    adapter.verify(req, [SECRET], NOW)
    mail = adapter.parse_mail(req)
    assert mail.subject == "Return for order #1001" and len(mail.attachments) == 1
    with pytest.raises(SignatureError):
        adapter.verify(req, ["other"], NOW)


# --- parsed mode -------------------------------------------------------------------------------------


def test_parsed_post() -> None:
    mail = adapter.parse_mail(post())
    assert mail.provider == "sendgrid"
    assert mail.sender == "dana@example.com"
    assert mail.recipients == ("returns+k9x2@parse.outfitters.example",)
    assert mail.subject == "Return for order #1001"
    assert mail.text == "The boots are too small.\n"
    assert "<strong>" in mail.html
    assert mail.provider_message_id == "<CAN5Qx=sg1001@mail.example.com>"
    # The header block: folded lines joined, order kept.
    assert mail.headers[1][0] == "Received" and "mx0047p1mdw1.sendgrid.net (Postfix)" in mail.headers[1][1]
    assert [name for name, _ in mail.headers][-2:] == ["To", "Content-Type"]
    assert mail.attachments[0] == ("boots.jpg", "image/jpeg", b"\xff\xd8\xff\xe0JFIF-bytes", "ii_1562e2169c132d83")

    message = parsed(mail)
    assert message["Subject"] == "Return for order #1001"
    assert message["From"] == "Dana Whitfield <dana@example.com>"
    assert message["Message-ID"] == "<CAN5Qx=sg1001@mail.example.com>"
    assert plain_text(message) == "The boots are too small.\n"
    [photo] = message.iter_attachments()
    assert photo.get_content() == b"\xff\xd8\xff\xe0JFIF-bytes"
    assert photo["Content-ID"] == "<ii_1562e2169c132d83>"


def test_bodies_are_decoded_with_the_charsets_field() -> None:
    latin = "Die Stiefel drücken, Größe 42 passt nicht.".encode("iso-8859-1")
    mail = adapter.parse_mail(post(text=latin, charsets=json.dumps({"text": "iso-8859-1", "subject": "UTF-8"})))
    assert mail.text == "Die Stiefel drücken, Größe 42 passt nicht."


def test_unknown_charset_label_falls_back_without_crashing() -> None:
    mail = adapter.parse_mail(post(text=b"ok \xff", charsets=json.dumps({"text": "x-no-such-charset"})))
    assert mail.text == "ok \ufffd"


def test_without_envelope_the_to_and_cc_headers_give_the_recipients() -> None:
    mail = adapter.parse_mail(post(envelope=None, cc="Ops <ops@outfitters.example>"))
    assert mail.recipients == ("returns+k9x2@parse.outfitters.example", "ops@outfitters.example")


def test_attachment_info_fills_in_what_the_file_part_lacks() -> None:
    # A part without a Content-Type (urllib3 gives a filename but a None type yields octet-stream,
    # so the part is written by hand here).
    boundary = "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"from\"\r\n\r\nd@example.com\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"to\"\r\n\r\nr@example.com\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"attachments\"\r\n\r\n1\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"attachment-info\"\r\n\r\n"
            "{\"attachment1\": {\"filename\": \"label.pdf\", \"type\": \"application/pdf\"}}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"attachment1\"; filename=\"\"\r\n\r\n%PDF\r\n"
            f"--{boundary}--\r\n").encode()
    mail = adapter.parse_mail(request(body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}))
    assert mail.attachments[0] == ("label.pdf", "application/pdf", b"%PDF", None)


@pytest.mark.parametrize(("change", "field"), [
    ({"envelope": None, "to": None}, "to"),
    ({"envelope": None, "to": "undisclosed-recipients:;"}, "to"),
    ({"from": None, "envelope": json.dumps({"to": ["r@example.com"]})}, "from"),
    ({"envelope": "{not json"}, "envelope"),
    ({"envelope": json.dumps({"to": "r@example.com"})}, "envelope"),
    ({"envelope": json.dumps({"to": ["r@example.com"], "from": ["d@example.com"]})}, "envelope"),
    ({"charsets": "[]"}, "charsets"),
    ({"attachment-info": "nope"}, "attachment-info"),
    ({"content-ids": "7"}, "content-ids"),
    ({"attachments": "2"}, "attachment2"),
    ({"attachments": "1.5"}, "attachments"),
])
def test_missing_or_malformed_fields_are_named(change: dict[str, object], field: str) -> None:
    assert payload_error(adapter, post(**change)).field == field


def test_urlencoded_post_is_read_too_but_json_is_not_a_form() -> None:
    assert payload_error(adapter, request(b"{}", {"Content-Type": "application/json"})).field == "content-type"


def test_truncated_multipart_body_is_a_payload_error() -> None:
    req = post()
    cut = request(req.body[: len(req.body) // 2], {"Content-Type": req.header("content-type")})
    assert payload_error(adapter, cut).field == "body"


def test_oversized_parts_are_refused_naming_them() -> None:
    error = payload_error(adapter, post(html="h" * 60_000), SMALL)
    assert isinstance(error, MailTooLargeError) and error.field == "html"
    error = payload_error(adapter, post(attachment1=("big.jpg", b"\xff" * 60_000, "image/jpeg")), SMALL)
    assert isinstance(error, MailTooLargeError) and error.field == "attachment1"
    error = payload_error(adapter, post(attachments="100000"), SMALL)
    assert isinstance(error, MailTooLargeError) and error.field == "attachments"


# --- raw mode ("POST the raw, full MIME message") ---------------------------------------------------------


def raw_post(raw: bytes) -> object:
    return multipart([
        ("dkim", "{@regione.vda.it : pass}"),
        ("email", raw),
        ("to", "returns+k9x2@parse.outfitters.example"),
        ("from", "meteo@regione.vda.it"),
        ("sender_ip", "217.76.210.112"),
        ("envelope", json.dumps({"to": ["returns+k9x2@parse.outfitters.example"], "from": "meteo@regione.vda.it"})),
        ("subject", "Bollettino Meteorologico del 29/11/2015"),
        ("charsets", json.dumps({"to": "UTF-8", "from": "UTF-8", "subject": "UTF-8"})),
        ("SPF", "pass"),
    ], basic("rebound", SECRET))


def test_raw_email_field_passes_the_corpus_message_through_byte_for_byte() -> None:
    raw = corpus("mail_test_2")  # 8-bit, not UTF-8: a text field must still keep every byte
    req = raw_post(raw)
    adapter.verify(req, [SECRET], NOW)
    mail = adapter.parse_mail(req)
    assert mail.raw == raw
    assert mail.recipients == ("returns+k9x2@parse.outfitters.example",)
    assert mail.sender == "meteo@regione.vda.it"
    assert adapter.delivery_key(req) == "sendgrid:message:<4516257BC5774408ADC1263EEBBBB73F@ad.regione.vda.it>"
    message = parsed(mail)
    assert message["Subject"] == "Bollettino Meteorologico del 29/11/2015"
    assert len([part for part in message.walk() if part.get_filename()]) == 3  # the PDF and two JPEGs


def test_raw_email_over_the_part_limit_is_refused() -> None:
    error = payload_error(adapter, raw_post(b"Subject: big\r\n\r\n" + b"x" * 60_000), SMALL)
    assert isinstance(error, MailTooLargeError) and error.field == "email"


def test_empty_raw_email_is_a_payload_error() -> None:
    assert payload_error(adapter, raw_post(b"\r\n")).field == "email"


def test_delivery_key_falls_back_to_the_body_hash() -> None:
    req = post(headers="Subject: no id here\n")
    assert adapter.delivery_key(req) == "sha256:" + hashlib.sha256(req.body).hexdigest()
