"""Unit tests for integrations.mail.base: ``InboundMail.to_mime`` read back with the standard
library, hostile header values, the registry, and the contract every mail adapter keeps
(its sample parses, its signed sample verifies). No app, no DB."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mailkit import NOW, corpus, parsed, plain_text, request

from integrations.base import SignatureError
from integrations.mail import InboundMail, MailAttachment, get_mail_adapter, mail_kinds
from integrations.mail.base import MAX_HEADER_VALUE, addresses, header_pairs

PHOTO = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


def mail(**changes: object) -> InboundMail:
    values: dict[str, object] = {
        "provider": "test",
        "sender": "dana@example.com",
        "recipients": ("returns+tok9@reply.example.com",),
        "subject": "Rücksendung für Bestellung #1001 – 靴",
        "text": "Die Stiefel sind zu klein.\nGrüße, Dana\n",
        "html": "<p>Die Stiefel sind <b>zu klein</b>.</p>",
        "headers": (("From", "Dana Whitfield <dana@example.com>"), ("Message-ID", "<m1@example.com>"),
                    ("In-Reply-To", "<case-10042@reply.example.com>")),
        "attachments": (MailAttachment("boots photo.png", "image/png", PHOTO, "ii_abc"),
                        MailAttachment("Rechnung.pdf", "application/pdf", b"%PDF-1.4", None)),
    }
    values.update(changes)
    return InboundMail(**values)  # type: ignore[arg-type]


def test_to_mime_round_trips_through_the_standard_parser() -> None:
    message = parsed(mail())
    assert message["Subject"] == "Rücksendung für Bestellung #1001 – 靴"
    assert message["From"] == "Dana Whitfield <dana@example.com>"
    assert message["To"] == "returns+tok9@reply.example.com"
    assert message["X-Original-To"] == "returns+tok9@reply.example.com"
    assert message["Message-ID"] == "<m1@example.com>"
    assert message["In-Reply-To"] == "<case-10042@reply.example.com>"
    assert plain_text(message) == "Die Stiefel sind zu klein.\nGrüße, Dana\n"
    assert message.get_body(("html",)).get_content() == "<p>Die Stiefel sind <b>zu klein</b>.</p>\n"
    attachments = {part.get_filename(): part for part in message.iter_attachments()}
    assert attachments["boots photo.png"].get_content() == PHOTO
    assert attachments["boots photo.png"]["Content-ID"] == "<ii_abc>"
    assert attachments["boots photo.png"].get_content_disposition() == "inline"
    assert attachments["Rechnung.pdf"].get_content() == b"%PDF-1.4"
    assert attachments["Rechnung.pdf"].get_content_disposition() == "attachment"


def test_fields_stand_in_for_missing_headers() -> None:
    message = parsed(mail(headers=(), html=None, attachments=()))
    assert message["From"] == "dana@example.com"
    assert message["Subject"] == "Rücksendung für Bestellung #1001 – 靴"
    assert message.get_content_type() == "text/plain"


def test_html_only_and_empty_messages() -> None:
    html_only = parsed(mail(text=None, attachments=()))
    assert html_only.get_content_type() == "text/html"
    empty = parsed(InboundMail(provider="test"))
    assert empty.get_content_type() == "text/plain" and empty.get_content().strip() == ""


def test_header_injection_and_unusable_headers_are_dropped() -> None:
    hostile = mail(headers=(
        ("Subject", "Refund\r\nBcc: everyone@example.com"),
        ("Subject", "a second subject"),
        ("Bad Name", "x"),
        ("X-Colon:Name", "x"),
        ("", "empty name"),
        ("X-Long", "y" * (MAX_HEADER_VALUE + 1)),
        ("X-Nul", "a\x00b"),
        ("Content-Type", "text/x-fake; boundary=gone"),
        ("Content-Transfer-Encoding", "base64"),
        ("X-Keep", "kept"),
    ))
    message = parsed(hostile)
    assert message["Bcc"] is None
    assert message.get_all("Subject") == ["Refund Bcc: everyone@example.com"]
    assert message["X-Long"] is None and message["X-Keep"] == "kept" and message["X-Nul"] == "ab"
    assert message.get_content_type() == "multipart/mixed"


def test_lone_surrogates_and_odd_attachment_types_do_not_crash() -> None:
    message = parsed(mail(
        text="bad \udcff surrogate", html=None,
        attachments=(MailAttachment(None, "not a type", b"x", "<with space>"),
                     MailAttachment("fwd.eml", "message/rfc822", b"Subject: inner\r\n\r\nbody", None),
                     MailAttachment("evil\r\nname.txt", "text/plain", b"t", "<ok@cid>")),
    ))
    assert plain_text(message) == "bad ? surrogate\n"
    parts = list(message.iter_attachments())
    assert [part.get_content_type() for part in parts] == ["application/octet-stream"] * 2 + ["text/plain"]
    assert parts[0]["Content-ID"] is None and parts[2].get_filename() == "evil name.txt"


def test_raw_messages_get_the_envelope_recipient_on_top_and_stay_intact() -> None:
    raw = corpus("mail_test_3")
    assert InboundMail(provider="t", raw=raw).to_mime() == raw
    with_recipient = InboundMail(provider="t", raw=raw, recipients=("returns+tok9@reply.example.com",
                                                                    "evil\r\nBcc: x@y.z"))
    assert with_recipient.to_mime() == b"X-Original-To: returns+tok9@reply.example.com\r\n" + raw
    message = BytesParser(policy=policy.default).parsebytes(with_recipient.to_mime())
    assert message["Subject"] == "Hi there" and message["Bcc"] is None


def test_header_lookup_reads_fields_then_raw() -> None:
    assert mail().header("message-id") == "<m1@example.com>"
    raw = InboundMail(provider="t", raw=b"Subject: x\r\nMessage-ID:\r\n <folded@example.com>\r\n\r\nbody")
    assert raw.message_id() == "<folded@example.com>"
    assert InboundMail(provider="t", raw=b"\xff\xfe garbage").message_id() is None
    assert InboundMail(provider="t").header("Subject") is None


@settings(max_examples=60, deadline=None)
@given(
    headers=st.lists(st.tuples(st.sampled_from(["From", "To", "Cc", "Subject", "Message-ID", "References", "Date"])
                               | st.text(max_size=20), st.text(max_size=200)), max_size=8),
    text=st.none() | st.text(max_size=200),
    html=st.none() | st.text(max_size=200),
    subject=st.none() | st.text(max_size=100),
    sender=st.none() | st.text(max_size=60),
    attachment=st.tuples(st.none() | st.text(max_size=30), st.none() | st.text(max_size=30), st.binary(max_size=50),
                         st.none() | st.text(max_size=30)),
)
def test_to_mime_never_raises_and_always_parses(headers: list[tuple[str, str]], text: str | None, html: str | None,
                                                subject: str | None, sender: str | None,
                                                attachment: tuple[str | None, str | None, bytes, str | None]) -> None:
    built = InboundMail(provider="fuzz", headers=tuple(headers), text=text, html=html, subject=subject,
                        sender=sender, attachments=(MailAttachment(*attachment),))
    message = BytesParser(policy=policy.default).parsebytes(built.to_mime())
    assert message.defects == []  # e.g. a header folded without leading space would end the head early
    assert [part.get_payload(decode=True) for part in message.iter_attachments()] == [attachment[2]]


# --- helpers ----------------------------------------------------------------------------------------


def test_header_pairs_unfold_and_skip_junk() -> None:
    block = "Received: from a\r\n\tby b\r\nnot a header line\r\nX-A: 1\nSubject : no\nTo:  r@example.com \n"
    assert header_pairs(block) == [("Received", "from a by b"), ("X-A", "1"), ("To", "r@example.com")]
    assert header_pairs("") == []


def test_addresses() -> None:
    assert addresses('"Doe, Jane" <jane@example.com>, bob@example.org, jane@example.com') == (
        "jane@example.com", "bob@example.org")
    assert addresses("undisclosed-recipients:;") == ()
    assert addresses(None) == ()


# --- registry and contract ------------------------------------------------------------------------------


def test_registry_knows_the_four_providers() -> None:
    assert mail_kinds() == ["mailgun", "postmark", "rawmime", "sendgrid"]
    with pytest.raises(KeyError):
        get_mail_adapter("zendesk")  # a helpdesk, not a mail provider


SECRETS = {"mailgun": "key-abc123", "sendgrid": "s3cret-pass", "postmark": "s3cret-pass",
           "rawmime": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_every_adapter_keeps_the_contract(kind: str) -> None:
    adapter = get_mail_adapter(kind)
    assert adapter.kind == kind and adapter.secret_names
    body, content_type = adapter.sample()
    assert isinstance(body, bytes) and content_type
    signed_body, headers = adapter.signed_sample(SECRETS[kind], NOW, "delivery-1")
    req = request(signed_body, headers)
    adapter.verify(req, [SECRETS[kind]], NOW)
    with pytest.raises(SignatureError):
        adapter.verify(req, ["whsec_" + "QUJD" * 8 if kind == "rawmime" else "wrong"], NOW)
    if len(headers) > 1:  # the credentials travel in headers (Mailgun's are in the form: tested there)
        with pytest.raises(SignatureError):
            adapter.verify(request(signed_body, {"Content-Type": headers["Content-Type"]}), [SECRETS[kind]], NOW)
    key = adapter.delivery_key(req)
    assert key == adapter.delivery_key(req) and len(key) <= 150
    message = parsed(adapter.parse_mail(req))
    assert message["Subject"] == "Return for order #1001"
    assert "return label" in plain_text(message)
    assert [part.get_filename() for part in message.iter_attachments()] == ["boots.png"]
    assert "returns+c7f3a91b@reply.outfitters.example" in (message["X-Original-To"] or "")
