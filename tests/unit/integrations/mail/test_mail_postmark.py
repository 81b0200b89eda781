"""Unit tests for the Postmark inbound adapter (integrations.mail.postmark): Basic auth, the
documented JSON shape, base64 attachments, ``RawEmail``, and refusals. No app, no DB."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from mailkit import NOW, SMALL, basic, corpus, parsed, payload_error, plain_text, request

from integrations.base import SignatureError
from integrations.mail import MailTooLargeError, get_mail_adapter

adapter = get_mail_adapter("postmark")
SECRET = "h7Qm2rT9vXw4Lk8p"
PHOTO = b"\x89PNG\r\n\x1a\n" + bytes(range(200))


def payload(**changes: Any) -> dict[str, Any]:
    """Postmark's documented inbound example, with a returns customer's values."""
    data: dict[str, Any] = {
        "FromName": "Dana Whitfield",
        "MessageStream": "inbound",
        "From": "dana@example.com",
        "FromFull": {"Email": "dana@example.com", "Name": "Dana Whitfield", "MailboxHash": ""},
        "To": "\"Outfitters Returns\" <451d9b70cf9364d23ff6f9d51d870251569e+k9x2@inbound.postmarkapp.com>",
        "ToFull": [{"Email": "451d9b70cf9364d23ff6f9d51d870251569e+k9x2@inbound.postmarkapp.com",
                    "Name": "Outfitters Returns", "MailboxHash": "k9x2"}],
        "Cc": "\"Sam Whitfield\" <sam@example.com>",
        "CcFull": [{"Email": "sam@example.com", "Name": "Sam Whitfield", "MailboxHash": ""}],
        "Bcc": "",
        "BccFull": [],
        "OriginalRecipient": "451d9b70cf9364d23ff6f9d51d870251569e+k9x2@inbound.postmarkapp.com",
        "Subject": "Re: Your return RMA-10042",
        "MessageID": "22c74902-a0c1-4511-804f-341342852c90",
        "ReplyTo": "dana.private@example.com",
        "MailboxHash": "k9x2",
        "Date": "Mon, 2 Mar 2026 10:12:01 +0100",
        "TextBody": "Here is the photo of the torn seam.\n\n> On Sun, Outfitters wrote:\n> Could you send a photo?\n",
        "HtmlBody": "<html><body><p>Here is the photo of the torn seam.</p></body></html>",
        "StrippedTextReply": "Here is the photo of the torn seam.",
        "Tag": "",
        "Headers": [
            {"Name": "X-Spam-Checker-Version",
             "Value": "SpamAssassin 3.3.1 (2010-03-16) onrs-ord-pm-inbound1.wildbit.com"},
            {"Name": "X-Spam-Status", "Value": "No"},
            {"Name": "X-Spam-Score", "Value": "-0.1"},
            {"Name": "MIME-Version", "Value": "1.0"},
            {"Name": "Message-ID", "Value": "<CAGXpo2WKfxHWZ5UFYCR3H_J9SNMG+5AXUovfEFL6DjWBJSyZaA@mail.example.com>"},
            {"Name": "In-Reply-To", "Value": "<case-RMA-10042.2@reply.outfitters.example>"},
        ],
        "Attachments": [
            {"Name": "seam.png", "Content": base64.b64encode(PHOTO).decode(), "ContentType": "image/png",
             "ContentLength": len(PHOTO), "ContentID": "seam.png@01CE7342.75EE2AE0"},
        ],
    }
    data.update(changes)
    return data


def post(data: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> Any:
    body = json.dumps(payload() if data is None else data).encode()
    auth = basic("rebound", SECRET) if headers is None else headers
    return request(body, {"Content-Type": "application/json", **auth})


# --- credentials ---------------------------------------------------------------------------------


def test_basic_auth_passes() -> None:
    adapter.verify(post(), [SECRET], NOW)
    adapter.verify(post(), ["previous", SECRET], NOW)


@pytest.mark.parametrize("headers", [{}, basic("rebound", "nope"), basic("rebound", ""),
                                     {"Authorization": "Basic " + base64.b64encode(SECRET.encode()).decode()}])
def test_missing_or_wrong_credentials_are_refused(headers: dict[str, str]) -> None:
    with pytest.raises(SignatureError):
        adapter.verify(post(headers=headers), [SECRET], NOW)


def test_no_secret_configured_is_refused() -> None:
    with pytest.raises(SignatureError):
        adapter.verify(post(), [""], NOW)


def test_signed_sample_verifies_and_parses() -> None:
    body, headers = adapter.signed_sample(SECRET, NOW, "x")
    req = request(body, headers)
    adapter.verify(req, [SECRET], NOW)
    assert adapter.parse_mail(req).attachments[0].filename == "boots.png"


# --- parsing ---------------------------------------------------------------------------------------


def test_documented_payload() -> None:
    mail = adapter.parse_mail(post())
    assert mail.provider == "postmark"
    assert mail.provider_message_id == "22c74902-a0c1-4511-804f-341342852c90"
    assert mail.sender == "dana@example.com"
    assert mail.recipients == ("451d9b70cf9364d23ff6f9d51d870251569e+k9x2@inbound.postmarkapp.com",
                               "sam@example.com")
    assert mail.subject == "Re: Your return RMA-10042"
    assert mail.stripped_text == "Here is the photo of the torn seam."
    assert mail.attachments == (("seam.png", "image/png", PHOTO, "seam.png@01CE7342.75EE2AE0"),)
    assert mail.message_id() == "<CAGXpo2WKfxHWZ5UFYCR3H_J9SNMG+5AXUovfEFL6DjWBJSyZaA@mail.example.com>"

    message = parsed(mail)
    assert message["From"] == "Dana Whitfield <dana@example.com>"
    assert message["Reply-To"] == "dana.private@example.com"
    assert message["Cc"] == "Sam Whitfield <sam@example.com>"
    assert message["Subject"] == "Re: Your return RMA-10042"
    assert message["In-Reply-To"] == "<case-RMA-10042.2@reply.outfitters.example>"
    assert plain_text(message).startswith("Here is the photo of the torn seam.")
    [photo] = message.iter_attachments()
    assert photo.get_content() == PHOTO
    assert photo["Content-ID"] == "<seam.png@01CE7342.75EE2AE0>"


def test_base64_with_line_breaks_is_accepted() -> None:
    wrapped = base64.encodebytes(PHOTO).decode()  # 76-character lines
    data = payload(Attachments=[{"Name": "a.png", "Content": wrapped, "ContentType": "image/png"}])
    assert adapter.parse_mail(post(data)).attachments[0].content == PHOTO


def test_from_falls_back_to_the_plain_field_and_recipients_to_the_to_header() -> None:
    data = payload(FromFull=None, ToFull=None, CcFull=None, OriginalRecipient="", Cc="")
    mail = adapter.parse_mail(post(data))
    assert mail.sender == "dana@example.com"
    assert mail.recipients == ("451d9b70cf9364d23ff6f9d51d870251569e+k9x2@inbound.postmarkapp.com",)


@pytest.mark.parametrize(("change", "field"), [
    ({"From": None, "FromFull": {}}, "From"),
    ({"From": "", "FromFull": {"Email": "no address"}}, "From"),
    ({"To": None, "ToFull": [], "CcFull": [], "OriginalRecipient": None}, "To"),
    ({"Headers": {"Name": "X", "Value": "y"}}, "Headers"),
    ({"Headers": [{"Name": "X", "Value": 7}]}, "Headers"),
    ({"Attachments": "seam.png"}, "Attachments"),
    ({"Attachments": [["seam.png"]]}, "Attachments"),
    ({"Attachments": [{"Name": "a", "Content": "***not base64***"}]}, "Attachments[0].Content"),
    ({"Attachments": [{"Name": "a", "Content": "QUJD"}, {"Name": "b", "Content": "QUJ"}]}, "Attachments[1].Content"),
    ({"Attachments": [{"Name": "a"}]}, "Attachments[0].Content"),
])
def test_missing_or_malformed_fields_are_named(change: dict[str, Any], field: str) -> None:
    assert payload_error(adapter, post(payload(**change))).field == field


@pytest.mark.parametrize("body", [b"", b"{not json", b"[1, 2]", b"[" * 100_000])
def test_malformed_bodies_are_payload_errors(body: bytes) -> None:
    assert payload_error(adapter, request(body, {"Content-Type": "application/json"})).field == "body"


def test_oversized_body_and_attachments_are_refused() -> None:
    big = base64.b64encode(b"\0" * 60_000).decode()
    error = payload_error(adapter, post(payload(Attachments=[{"Name": "big", "Content": big}])), SMALL)
    assert isinstance(error, MailTooLargeError) and error.field == "Attachments[0].Content"
    many = [{"Name": f"a{n}", "Content": "QUJD"} for n in range(41)]
    error = payload_error(adapter, post(payload(Attachments=many)), SMALL)
    assert isinstance(error, MailTooLargeError) and error.field == "Attachments"
    error = payload_error(adapter, post(payload(TextBody="t" * 250_000)), SMALL)
    assert isinstance(error, MailTooLargeError) and error.field == "body"


# --- RawEmail ------------------------------------------------------------------------------------------


def test_raw_email_passes_the_corpus_message_through() -> None:
    raw = corpus("mail_test_3")  # Outlook for iOS with a text attachment (ASCII, so a JSON string)
    mail = adapter.parse_mail(post(payload(RawEmail=raw.decode("ascii"))))
    assert mail.raw == raw
    assert mail.provider_message_id == "22c74902-a0c1-4511-804f-341342852c90"
    message = parsed(mail)
    assert message["Subject"] == "Hi there"
    assert message["Message-ID"] == "<8AF5A2192C2A46BE.2743cdb5-7033-d969-fce8-c552542a49a3@mail.outlook.com>"
    assert message["X-Original-To"].startswith("451d9b70cf9364d23ff6f9d51d870251569e+k9x2@")


def test_raw_email_over_the_part_limit_is_refused() -> None:
    error = payload_error(adapter, post(payload(RawEmail="Subject: x\r\n\r\n" + "r" * 60_000,
                                                TextBody="", HtmlBody="", Attachments=[])), SMALL)
    assert isinstance(error, MailTooLargeError) and error.field == "RawEmail"


def test_delivery_key_is_postmarks_message_id_else_the_body_hash() -> None:
    assert adapter.delivery_key(post()) == "postmark:22c74902-a0c1-4511-804f-341342852c90"
    body = b"{not json"
    assert adapter.delivery_key(request(body)) == "sha256:" + hashlib.sha256(body).hexdigest()
