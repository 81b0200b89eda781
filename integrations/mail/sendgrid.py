"""SendGrid (Twilio) Inbound Parse: ``multipart/form-data`` posts, parsed or raw.

Vendor facts used here, and where they were checked ([V] Twilio SendGrid's docs, [S] a second
source, [U] unverified):

- Parsed mode fields: ``headers`` (the raw header block), ``text``, ``html``, ``from``, ``to``,
  ``cc``, ``subject``, ``dkim``, ``SPF``, ``envelope`` (JSON ``{"to": [...], "from": "..."}``),
  ``charsets`` (JSON: the charset of each field), ``sender_ip``, ``spam_score``,
  ``spam_report``, ``attachments`` (a count), ``attachment-info`` (JSON per file),
  ``attachment1``… files, ``content-ids`` (JSON Content-ID → file field) [V: "Inbound Parse
  webhook" page; the official sendgrid-python ``helpers/inbound/config.yml`` key list, S].
- Raw mode ("POST the raw, full MIME message", API ``send_raw: true``): the whole message in
  the field ``email``, with ``envelope``, ``charsets`` and the spam fields [V].
- SendGrid decodes to/from/cc/subject and the headers to UTF-8; ``text`` and ``html`` keep
  the message's charset, named in ``charsets`` [V].
- Authentication: none by default. Security policies (ECDSA signatures, OAuth) exist, but the
  headers of the *parse* webhook's signature are not documented in what we could read [U], so
  this adapter uses what works with every account: HTTP Basic auth put in the webhook URL
  (``https://rebound:<secret>@…``), or our ``X-Rebound-Secret`` header from a proxy, checked
  in constant time. The webhook does not follow redirects [V], so the URL must be exact.
- Retries: non-2xx is retried for up to 3 days [V]: the delivery key is the Message-ID.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from integrations.base import InboundRequest, PayloadError, body_hash_key, key_from_id
from integrations.mail import samples
from integrations.mail.base import (
    DEFAULT_LIMITS,
    InboundMail,
    MailAttachment,
    MailLimits,
    addresses,
    header_pairs,
    raw_header,
    register_mail_adapter,
)
from integrations.mail.forms import Form, FormPart, encode_multipart, read_form
from integrations.signing import encode_base64, verify_shared_secret

#: The user name in the webhook URL's Basic auth; any name is accepted, the password is checked.
BASIC_USER = "rebound"


class SendGridAdapter:
    """Inbound mail from SendGrid Inbound Parse, with "POST the raw, full MIME message" on or off."""

    kind: ClassVar[str] = "sendgrid"
    #: The password in the webhook URL (``https://rebound:<secret>@…``); Rebound generates it.
    secret_names: ClassVar[Sequence[str]] = ("shared_secret",)

    def verify(self, request: InboundRequest, secrets: Sequence[str], now: datetime) -> None:
        """Check the Basic auth password (or ``X-Rebound-Secret``) in constant time.

        :raise SignatureError: no credential sent, no secret configured, or none matches.
        """
        verify_shared_secret(request, secrets, "SendGrid Inbound Parse")

    def delivery_key(self, request: InboundRequest) -> str:
        """The mail's Message-ID (SendGrid resends the same mail on retry), else the body hash."""
        try:
            form = read_form(request, DEFAULT_LIMITS)
        except PayloadError:
            return body_hash_key(request)
        message_id = key_from_id(_message_id(form))
        return f"sendgrid:message:{message_id}" if message_id else body_hash_key(request)

    def parse_mail(self, request: InboundRequest, limits: MailLimits = DEFAULT_LIMITS) -> InboundMail:
        """The raw ``email`` field when present, else the parsed fields and attachment files.

        :raise PayloadError: not a form or malformed; ``envelope``, ``charsets``,
            ``attachment-info``, ``content-ids`` not JSON of the documented shape; no recipient
            (``envelope``/``to``) or sender (``from``) in parsed mode; a counted file missing.
        """
        form = read_form(request, limits)
        charsets = _json_object(form, "charsets")
        envelope = _json_object(form, "envelope")
        recipients = _recipients(form, envelope)
        sender = _sender(form, envelope)
        raw = form.get("email")
        if raw is not None:
            if not raw.data.strip():
                raise PayloadError("The form field email is empty.", "email")
            return InboundMail(provider=self.kind, provider_message_id=_message_id(form), raw=raw.data,
                               sender=sender, recipients=recipients)
        if not recipients:
            raise PayloadError("The form field to (or envelope) is required.", "to")
        if sender is None:
            raise PayloadError("The form field from is required.", "from")

        def field(name: str) -> str | None:
            charset = charsets.get(name)
            return form.text(name, charset if isinstance(charset, str) else None)

        return InboundMail(
            provider=self.kind,
            provider_message_id=_message_id(form),
            sender=sender,
            recipients=recipients,
            subject=field("subject"),
            text=field("text"),
            html=field("html"),
            headers=tuple(header_pairs(field("headers") or "")),
            attachments=tuple(_attachments(form, limits)),
        )

    def sign(self, body: bytes, secret: str, now: datetime, delivery_id: str) -> dict[str, str]:
        """The Basic auth header SendGrid sends for a webhook URL with ``rebound:<secret>@``."""
        return {"Authorization": "Basic " + encode_base64(f"{BASIC_USER}:{secret}".encode("utf-8"))}

    def sample(self) -> tuple[bytes, str]:
        """A parsed-mode post with a photo, fields as SendGrid sends them."""
        return encode_multipart(_sample_parts(), _BOUNDARY)

    def signed_sample(self, secret: str, now: datetime, delivery_id: str) -> tuple[bytes, dict[str, str]]:
        body, content_type = self.sample()
        return body, {"Content-Type": content_type, **self.sign(body, secret, now, delivery_id)}


def _json_object(form: Form, name: str) -> dict[str, Any]:
    """A JSON-object field, empty when absent.

    :raise PayloadError: (``name``) not JSON or not an object.
    """
    value = form.json(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PayloadError(f"The form field {name} must be a JSON object.", name)
    return value


def _recipients(form: Form, envelope: dict[str, Any]) -> tuple[str, ...]:
    """``envelope.to`` (where the mail was delivered), else the To and Cc headers' addresses."""
    to = envelope.get("to")
    if to is not None:
        if not isinstance(to, list) or not all(isinstance(item, str) for item in to):
            raise PayloadError("envelope.to must be a list of addresses.", "envelope")
        found = tuple(dict.fromkeys(address for item in to for address in addresses(item)))
        if found:
            return found
    return tuple(dict.fromkeys(addresses(form.text("to")) + addresses(form.text("cc"))))


def _sender(form: Form, envelope: dict[str, Any]) -> str | None:
    sender = envelope.get("from")
    if sender is not None and not isinstance(sender, str):
        raise PayloadError("envelope.from must be an address.", "envelope")
    found = addresses(sender) or addresses(form.text("from"))
    return found[0] if found else None


def _message_id(form: Form) -> str | None:
    for name, value in header_pairs(form.text("headers") or ""):
        if name.lower() == "message-id":
            return value.strip() or None
    raw = form.get("email")
    return raw_header(raw.data, "Message-ID") if raw is not None else None


def _attachments(form: Form, limits: MailLimits) -> list[MailAttachment]:
    """``attachment1`` … ``attachment<attachments>``, typed by ``attachment-info``."""
    count = form.count("attachments", limits.max_form_parts)
    info = _json_object(form, "attachment-info")
    cids = {name: cid for cid, name in _json_object(form, "content-ids").items() if isinstance(name, str)}
    found = []
    for number in range(1, count + 1):
        name = f"attachment{number}"
        part = form.get(name)
        if part is None:
            raise PayloadError(f"The file {name} is missing (attachments is {count}).", name)
        meta = info.get(name) if isinstance(info.get(name), dict) else {}
        filename = part.filename or _string(meta.get("filename")) or _string(meta.get("name"))
        content_type = part.content_type or _string(meta.get("type"))
        cid = cids.get(name) or _string(meta.get("content-id"))
        found.append(MailAttachment(filename, content_type, part.data, cid))
    return found


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


_BOUNDARY = "xYzZY"  # the boundary SendGrid's own posts use


def _sample_parts() -> list[FormPart]:
    headers = "\n".join(f"{name}: {value}" for name, value in samples.HEADERS) + "\n"
    fields = {
        "headers": headers,
        "dkim": "{@mail.example.com : pass}",
        "content-ids": "{}",
        "to": samples.TO,
        "html": samples.HTML,
        "from": samples.FROM,
        "text": samples.TEXT,
        "sender_ip": "203.0.113.7",
        "envelope": json.dumps({"to": [samples.TO], "from": samples.FROM_ADDRESS}),
        "attachments": "1",
        "subject": samples.SUBJECT,
        "attachment-info": json.dumps({"attachment1": {"filename": samples.PHOTO_NAME, "name": samples.PHOTO_NAME,
                                                       "type": samples.PHOTO_TYPE}}),
        "charsets": json.dumps({"to": "UTF-8", "html": "UTF-8", "subject": "UTF-8", "from": "UTF-8",
                                "text": "UTF-8"}),
        "SPF": "pass",
    }
    parts = [FormPart(name, value.encode("utf-8")) for name, value in fields.items()]
    parts.insert(10, FormPart("attachment1", samples.PHOTO, filename=samples.PHOTO_NAME,
                              content_type=samples.PHOTO_TYPE))
    return parts


register_mail_adapter(SendGridAdapter())
