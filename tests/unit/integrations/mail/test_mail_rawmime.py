"""Unit tests for the raw MIME adapter (integrations.mail.rawmime): Standard Webhooks
signatures made by the ``standardwebhooks`` package and by hand over 8-bit bytes, the message
passed through, and refusals. No app, no DB."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta

import pytest
from mailkit import NOW, SMALL, corpus, parsed, payload_error, plain_text, request, sample_mail
from standardwebhooks import Webhook

from integrations.base import SignatureError
from integrations.mail import MailTooLargeError, get_mail_adapter

adapter = get_mail_adapter("rawmime")
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
KEY = base64.b64decode(SECRET.removeprefix("whsec_"))
MSG_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"


def headers(signature: str, stamp: datetime = NOW, msg_id: str = MSG_ID) -> dict[str, str]:
    return {"Content-Type": "message/rfc822", "webhook-id": msg_id,
            "webhook-timestamp": str(int(stamp.timestamp())), "webhook-signature": signature}


def package_signed(body: bytes, stamp: datetime = NOW, secret: str = SECRET) -> dict[str, str]:
    """Signed by the ``standardwebhooks`` package, as a sender using it would."""
    return headers(Webhook(secret).sign(MSG_ID, stamp, body.decode("utf-8")), stamp)


def bytes_signed(body: bytes, stamp: datetime = NOW) -> dict[str, str]:
    """HMAC-SHA256 over ``id.timestamp.`` + the body bytes, computed here by hand."""
    digest = hmac.new(KEY, f"{MSG_ID}.{int(stamp.timestamp())}.".encode() + body, hashlib.sha256).digest()
    return headers("v1," + base64.b64encode(digest).decode())


BODY = sample_mail().as_bytes()


def test_package_signature_passes_and_message_parses() -> None:
    req = request(BODY, package_signed(BODY))
    adapter.verify(req, [SECRET], NOW)
    mail = adapter.parse_mail(req)
    assert mail.raw == BODY and mail.provider == "rawmime"
    assert mail.provider_message_id == "<zipper-1001@mail.example.com>"
    message = parsed(mail)
    assert message["Subject"] == "Broken zipper on order #1001"
    assert plain_text(message) == "The zipper broke on day two.\n"
    assert [part.get_filename() for part in message.iter_attachments()] == ["zipper.png"]
    assert mail.to_mime() == BODY  # no envelope recipient known: the bytes are untouched


def test_sign_matches_the_package_signature() -> None:
    signed = adapter.sign(BODY, SECRET, NOW, MSG_ID)
    assert signed["webhook-signature"] == Webhook(SECRET).sign(MSG_ID, NOW, BODY.decode())
    assert signed["webhook-timestamp"] == str(int(NOW.timestamp())) and signed["webhook-id"] == MSG_ID


def test_several_signatures_during_a_key_rotation() -> None:
    signed = package_signed(BODY)
    signed["webhook-signature"] = "v1,AAAA v1a,xyz " + signed["webhook-signature"]
    adapter.verify(request(BODY, signed), ["whsec_" + base64.b64encode(b"new-key").decode(), SECRET], NOW)


def test_8bit_corpus_message_signed_over_its_bytes() -> None:
    raw = corpus("mail_test_2")  # not UTF-8: the package cannot sign it as text
    req = request(raw, bytes_signed(raw))
    adapter.verify(req, [SECRET], NOW)
    mail = adapter.parse_mail(req)
    assert mail.raw == raw
    assert parsed(mail)["Subject"] == "Bollettino Meteorologico del 29/11/2015"
    assert adapter.sign(raw, SECRET, NOW, MSG_ID)["webhook-signature"] == bytes_signed(raw)["webhook-signature"]


@pytest.mark.parametrize("change", [
    {"webhook-signature": "v1," + base64.b64encode(b"\0" * 32).decode()},
    {"webhook-signature": "v1,not-base64!"},
    {"webhook-signature": "v2,abc"},
    {"webhook-signature": ""},
    {"webhook-id": ""},
    {"webhook-id": "msg_other"},  # the id is signed
    {"webhook-timestamp": "yesterday"},
])
def test_wrong_or_missing_signature_headers_are_refused(change: dict[str, str]) -> None:
    with pytest.raises(SignatureError):
        adapter.verify(request(BODY, {**package_signed(BODY), **change}), [SECRET], NOW)


def test_a_changed_body_is_refused() -> None:
    with pytest.raises(SignatureError):
        adapter.verify(request(BODY + b"\n", package_signed(BODY)), [SECRET], NOW)


@pytest.mark.parametrize("offset", [timedelta(minutes=-6), timedelta(minutes=6)])
def test_stale_timestamp_is_refused(offset: timedelta) -> None:
    with pytest.raises(SignatureError, match="window"):
        adapter.verify(request(BODY, package_signed(BODY, NOW + offset)), [SECRET], NOW)


@pytest.mark.parametrize("secrets", [[], [""], ["not-a-whsec-key!"], ["whsec_"]])
def test_missing_or_unusable_secrets_are_refused_not_crashed(secrets: list[str]) -> None:
    with pytest.raises(SignatureError):
        adapter.verify(request(BODY, package_signed(BODY)), secrets, NOW)


def test_signed_sample_verifies_and_parses() -> None:
    body, signed = adapter.signed_sample(SECRET, NOW, MSG_ID)
    req = request(body, signed)
    adapter.verify(req, [SECRET], NOW)
    assert parsed(adapter.parse_mail(req))["X-Original-To"] == "returns+c7f3a91b@reply.outfitters.example"


@pytest.mark.parametrize(("body", "content_type", "field"), [
    (BODY, "application/json", "content-type"),
    (BODY, "", "content-type"),
    (b"", "message/rfc822", "body"),
    (b"\r\n\r\n", "message/rfc822", "body"),
    (b"just some words, no header\n", "message/rfc822", "body"),
    (b"<html>hi</html>", "message/rfc822", "body"),
])
def test_bodies_that_are_not_messages_are_payload_errors(body: bytes, content_type: str, field: str) -> None:
    assert payload_error(adapter, request(body, {"Content-Type": content_type})).field == field


def test_oversized_message_is_refused() -> None:
    big = b"Subject: big\r\n\r\n" + b"b" * 60_000
    error = payload_error(adapter, request(big, {"Content-Type": "message/rfc822"}), SMALL)
    assert isinstance(error, MailTooLargeError) and error.field == "body"


def test_delivery_key_is_the_webhook_id_else_the_body_hash() -> None:
    assert adapter.delivery_key(request(BODY, package_signed(BODY))) == f"rawmime:{MSG_ID}"
    assert adapter.delivery_key(request(BODY)) == "sha256:" + hashlib.sha256(BODY).hexdigest()
