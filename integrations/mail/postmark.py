"""Postmark inbound: the JSON Postmark posts for each mail to an inbound stream.

Vendor facts used here, and where they were checked ([V] Postmark's docs, [S] a second
source, [U] unverified):

- The body is JSON with ``From``, ``FromName``, ``FromFull {Email, Name, MailboxHash}``,
  ``To``, ``ToFull[]``, ``Cc``, ``CcFull[]``, ``Bcc``, ``BccFull[]``, ``ReplyTo``,
  ``OriginalRecipient``, ``Subject``, ``Date`` (as the sender wrote it), ``MailboxHash``,
  ``Tag``, ``MessageID`` (Postmark's id, not the header), ``MessageStream``, ``TextBody``,
  ``HtmlBody``, ``StrippedTextReply``, ``Headers [{Name, Value}]`` (the real Message-ID is in
  here), ``Attachments [{Name, Content (base64), ContentType, ContentLength, ContentID}]``
  [V: postmarkapp.com developer/webhooks/inbound-webhook; the official ``postmark`` npm types
  ``InboundWebhook``, S]. ``RawEmail`` (the full message) only when the inbound stream's
  setting to include raw content is on [S: the npm types mark it optional; Rails Action
  Mailbox's Postmark ingress requires it; U for the setting's exact label].
- No signature: authenticate with HTTP Basic auth in the webhook URL over HTTPS [V: Postmark
  suggests it; Rails does the same], compared in constant time. ``X-Rebound-Secret`` is also
  accepted (a proxy in front may add it).
- Non-200 is retried 10 times over growing intervals; ``403`` stops retries [V]. The
  delivery key is ``MessageID``, the same on every retry.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import datetime
from email.utils import formataddr
from typing import Any, ClassVar

from integrations.base import InboundRequest, PayloadError, body_hash_key, key_from_id
from integrations.mail import samples
from integrations.mail.base import (
    DEFAULT_LIMITS,
    InboundMail,
    MailAttachment,
    MailLimits,
    MailTooLargeError,
    addresses,
    register_mail_adapter,
)
from integrations.payload import json_object, peek_object
from integrations.signing import encode_base64, verify_shared_secret
from integrations.text import clean

#: The user name in the webhook URL's Basic auth; any name is accepted, the password is checked.
BASIC_USER = "rebound"


class PostmarkAdapter:
    """Inbound mail from a Postmark inbound stream (with or without the raw message)."""

    kind: ClassVar[str] = "postmark"
    #: The password in the webhook URL (``https://rebound:<secret>@…``); Rebound generates it.
    secret_names: ClassVar[Sequence[str]] = ("shared_secret",)

    def verify(self, request: InboundRequest, secrets: Sequence[str], now: datetime) -> None:
        """Check the Basic auth password (or ``X-Rebound-Secret``) in constant time.

        :raise SignatureError: no credential sent, no secret configured, or none matches.
        """
        verify_shared_secret(request, secrets, "Postmark")

    def delivery_key(self, request: InboundRequest) -> str:
        """Postmark's ``MessageID`` (the same on every retry), else the body hash."""
        payload = peek_object(request)
        message_id = key_from_id(_string(payload.get("MessageID"))) if payload is not None else None
        return f"postmark:{message_id}" if message_id else body_hash_key(request)

    def parse_mail(self, request: InboundRequest, limits: MailLimits = DEFAULT_LIMITS) -> InboundMail:
        """``RawEmail`` when present, else the parsed fields with decoded attachments.

        :raise MailTooLargeError: the body, ``RawEmail`` or an attachment exceeds ``limits``.
        :raise PayloadError: not a JSON object; ``From`` or a recipient missing; ``Headers``,
            ``Attachments`` or an attachment's ``Content`` (bad base64) unusable (each named).
        """
        if len(request.body) > limits.max_body_bytes:
            raise MailTooLargeError(f"The request body is larger than {limits.max_body_bytes} bytes.", "body")
        data = json_object(request)
        from_full = _object(data, "FromFull")
        sender = _first_address(_string(from_full.get("Email")), _string(data.get("From")))
        recipients = _recipients(data)
        message_id = _string(data.get("MessageID"))
        raw_email = data.get("RawEmail")
        if isinstance(raw_email, str) and raw_email.strip():
            raw = raw_email.encode("utf-8", "replace")
            if len(raw) > limits.max_form_part_bytes:
                raise MailTooLargeError(f"RawEmail is larger than {limits.max_form_part_bytes} bytes.", "RawEmail")
            return InboundMail(provider=self.kind, provider_message_id=message_id, raw=raw, sender=sender,
                               recipients=recipients)
        if sender is None:
            raise PayloadError("From (or FromFull.Email) is required.", "From")
        if not recipients:
            raise PayloadError("To (or ToFull, OriginalRecipient) is required.", "To")
        return InboundMail(
            provider=self.kind,
            provider_message_id=message_id,
            sender=sender,
            recipients=recipients,
            subject=_text(data.get("Subject")),
            text=_text(data.get("TextBody")),
            html=_text(data.get("HtmlBody")),
            stripped_text=_text(data.get("StrippedTextReply")),
            headers=tuple(_address_headers(data, from_full) + _headers(data.get("Headers"))),
            attachments=tuple(_attachments(data.get("Attachments"), limits)),
        )

    def sign(self, body: bytes, secret: str, now: datetime, delivery_id: str) -> dict[str, str]:
        """The headers Postmark sends for a webhook URL with ``rebound:<secret>@``."""
        return {"Content-Type": "application/json",
                "Authorization": "Basic " + encode_base64(f"{BASIC_USER}:{secret}".encode("utf-8"))}

    def sample(self) -> tuple[bytes, str]:
        """An inbound post shaped like Postmark's documented example, with a photo attached."""
        return json.dumps(_SAMPLE, indent=2).encode("utf-8"), "application/json"

    def signed_sample(self, secret: str, now: datetime, delivery_id: str) -> tuple[bytes, dict[str, str]]:
        body, _ = self.sample()
        return body, self.sign(body, secret, now, delivery_id)


def _string(value: Any) -> str | None:
    return (clean(value).strip() or None) if isinstance(value, str) else None


def _text(value: Any) -> str | None:
    """A body or subject as sent (not trimmed: whitespace is the sender's); None if not a string."""
    return clean(value) if isinstance(value, str) else None


def _object(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    return value if isinstance(value, dict) else {}


def _first_address(*values: str | None) -> str | None:
    for value in values:
        found = addresses(value)
        if found:
            return found[0]
    return None


def _recipients(data: dict[str, Any]) -> tuple[str, ...]:
    """``OriginalRecipient`` (where the mail was delivered), then To, Cc and Bcc addresses."""
    found: list[str] = list(addresses(_string(data.get("OriginalRecipient"))))
    for name, plain in (("ToFull", "To"), ("CcFull", "Cc"), ("BccFull", "Bcc")):
        full = data.get(name)
        if isinstance(full, list):
            for entry in full:
                if isinstance(entry, dict):
                    found.extend(addresses(_string(entry.get("Email"))))
        else:
            found.extend(addresses(_string(data.get(plain))))
    return tuple(dict.fromkeys(found))


def _address_headers(data: dict[str, Any], from_full: dict[str, Any]) -> list[tuple[str, str]]:
    """From/To/Cc/Reply-To/Date as headers: Postmark lifts them out of ``Headers``."""
    headers = []
    email = _string(from_full.get("Email")) or _string(data.get("From"))
    if email:
        name = _string(from_full.get("Name")) or _string(data.get("FromName")) or ""
        headers.append(("From", formataddr((name, email)) if name else email))
    for header, key in (("To", "To"), ("Cc", "Cc"), ("Reply-To", "ReplyTo"), ("Date", "Date")):
        if value := _string(data.get(key)):
            headers.append((header, value))
    if subject := _text(data.get("Subject")):
        headers.append(("Subject", subject))
    return headers


def _headers(value: Any) -> list[tuple[str, str]]:
    """``Headers``: a list of {Name, Value}.

    :raise PayloadError: ("Headers") not a list of objects with string Name and Value.
    """
    if value is None:
        return []
    if not isinstance(value, list) or not all(
        isinstance(entry, dict) and isinstance(entry.get("Name"), str) and isinstance(entry.get("Value"), str)
        for entry in value
    ):
        raise PayloadError("Headers must be a list of {Name, Value} strings.", "Headers")
    return [(clean(entry["Name"]), clean(entry["Value"])) for entry in value]


def _attachments(value: Any, limits: MailLimits) -> list[MailAttachment]:
    """``Attachments`` with ``Content`` decoded from base64.

    :raise PayloadError: ("Attachments") not a list of objects; ("Attachments[i].Content") no
        content or not base64.
    :raise MailTooLargeError: more attachments than parts allowed, or one too large decoded.
    """
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
        raise PayloadError("Attachments must be a list of objects.", "Attachments")
    if len(value) > limits.max_form_parts:
        raise MailTooLargeError(f"More than {limits.max_form_parts} attachments.", "Attachments")
    found = []
    for index, entry in enumerate(value):
        field = f"Attachments[{index}].Content"
        content = entry.get("Content")
        if not isinstance(content, str):
            raise PayloadError(f"{field} must be a base64 string.", field)
        encoded = "".join(content.split())  # line breaks are allowed in base64, not elsewhere
        if len(encoded) // 4 * 3 > limits.max_form_part_bytes:
            raise MailTooLargeError(f"{field} is larger than {limits.max_form_part_bytes} bytes.", field)
        try:
            decoded = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise PayloadError(f"{field} is not valid base64.", field) from None
        found.append(MailAttachment(_string(entry.get("Name")), _string(entry.get("ContentType")), decoded,
                                    _string(entry.get("ContentID"))))
    return found


_SAMPLE: dict[str, Any] = {
    "FromName": samples.FROM_NAME,
    "MessageStream": "inbound",
    "From": samples.FROM_ADDRESS,
    "FromFull": {"Email": samples.FROM_ADDRESS, "Name": samples.FROM_NAME, "MailboxHash": ""},
    "To": samples.TO,
    "ToFull": [{"Email": samples.TO, "Name": "", "MailboxHash": "c7f3a91b"}],
    "Cc": "",
    "CcFull": [],
    "Bcc": "",
    "BccFull": [],
    "OriginalRecipient": samples.TO,
    "Subject": samples.SUBJECT,
    "MessageID": "73e6d360-66eb-11e1-8e72-a8904824019b",
    "ReplyTo": "",
    "MailboxHash": "c7f3a91b",
    "Date": samples.DATE,
    "TextBody": samples.TEXT,
    "HtmlBody": samples.HTML,
    "StrippedTextReply": samples.TEXT.split("\n\nThanks,")[0],
    "Tag": "",
    "Headers": [
        {"Name": "X-Header-Test", "Value": ""},
        {"Name": "X-Spam-Status", "Value": "No"},
        {"Name": "X-Spam-Score", "Value": "-0.1"},
        {"Name": "X-Spam-Tests", "Value": "DKIM_SIGNED,DKIM_VALID,DKIM_VALID_AU,SPF_PASS"},
        {"Name": "Received-SPF", "Value": "Pass (sender SPF authorized) identity=mailfrom; client-ip=203.0.113.7"},
        {"Name": "MIME-Version", "Value": "1.0"},
        {"Name": "Message-ID", "Value": samples.MESSAGE_ID},
    ],
    "Attachments": [
        {"Name": samples.PHOTO_NAME, "Content": base64.b64encode(samples.PHOTO).decode("ascii"),
         "ContentType": samples.PHOTO_TYPE, "ContentLength": len(samples.PHOTO), "ContentID": ""},
    ],
}


register_mail_adapter(PostmarkAdapter())
