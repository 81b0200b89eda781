"""Shared pieces of the mail adapter tests (the ``test_mail_*.py`` files import them; pytest puts
this folder on ``sys.path``). Bodies are built here with urllib3 and urllib, never with the
adapters' own encoders, so a test cannot pass because both sides share a mistake."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from urllib.parse import urlencode

import pytest
from urllib3 import encode_multipart_formdata

from integrations.base import InboundRequest, PayloadError
from integrations.mail import InboundMail, MailAdapter, MailLimits

NOW = datetime(2026, 3, 2, 9, 14, 8, tzinfo=timezone.utc)
#: ../shared/corpora/email beside the repository (see its SOURCES.md).
CORPUS = Path(__file__).resolve().parents[5] / "shared/corpora/email/SpamScope-mail-parser/tests/mails"

#: Limits small enough that a test can exceed them cheaply.
SMALL = MailLimits(max_body_bytes=200_000, max_form_part_bytes=50_000, max_form_parts=40)

FieldValue = str | bytes | tuple[str, bytes, str]


def request(body: bytes, headers: Mapping[str, str] | None = None) -> InboundRequest:
    """A POST as the app hands it over (header keys lower-cased)."""
    return InboundRequest(method="POST", path="/webhooks/k", body=body, received_at=NOW,
                          headers={k.lower(): v for k, v in (headers or {}).items()})


def multipart(fields: Sequence[tuple[str, FieldValue]], extra: Mapping[str, str] | None = None) -> InboundRequest:
    """A ``multipart/form-data`` request built by urllib3; a (filename, data, type) value is a file."""
    body, content_type = encode_multipart_formdata(list(fields), boundary="----rebound-test-boundary-7MA4YWxk")
    return request(body, {"Content-Type": content_type, **(extra or {})})


def urlencoded(fields: Sequence[tuple[str, str | bytes]]) -> InboundRequest:
    return request(urlencode(list(fields)).encode("ascii"), {"Content-Type": "application/x-www-form-urlencoded"})


def basic(username: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def corpus(name: str) -> bytes:
    """A real message from the SpamScope set (skips the test when the corpus is not there)."""
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"corpus file {path} is absent")
    return path.read_bytes()


def parsed(mail: InboundMail) -> EmailMessage:
    """``mail.to_mime()`` read back the way the app reads it."""
    message = BytesParser(policy=policy.default).parsebytes(mail.to_mime())
    assert isinstance(message, EmailMessage)
    return message


def plain_text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return body.get_content()


def payload_error(adapter: MailAdapter, req: InboundRequest, limits: MailLimits | None = None) -> PayloadError:
    """The PayloadError ``parse_mail`` raises; fails the test if it parses."""
    with pytest.raises(PayloadError) as caught:
        adapter.parse_mail(req, limits) if limits is not None else adapter.parse_mail(req)
    return caught.value


def sample_mail() -> EmailMessage:
    """A customer's mail built with the standard library (text, HTML, one photo)."""
    message = EmailMessage()
    message["From"] = "Dana Whitfield <dana@example.com>"
    message["To"] = "returns+tok123@reply.example.com"
    message["Subject"] = "Broken zipper on order #1001"
    message["Message-ID"] = "<zipper-1001@mail.example.com>"
    message.set_content("The zipper broke on day two.\n")
    message.add_alternative("<p>The zipper broke on day two.</p>", subtype="html")
    message.add_attachment(b"\x89PNG\r\n\x1a\nfake", maintype="image", subtype="png", filename="zipper.png")
    return message
