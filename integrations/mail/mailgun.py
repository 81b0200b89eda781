"""Mailgun Routes: ``forward("https://…")`` and ``store(notify="https://…")`` posts of inbound mail.

Vendor facts used here, and where they were checked ([V] Mailgun's own docs, [S] a second
source, [U] unverified):

- The POST is ``application/x-www-form-urlencoded``, or ``multipart/form-data`` when the mail
  has attachments; a route URL ending in ``mime`` gets the message as-is in ``body-mime``
  (documentation.mailgun.com receive-forward-store/receive-http [V]; Rails Action Mailbox's
  Mailgun ingress requires ``body-mime`` [S]).
- Fields of the parsed form: ``signature``, ``timestamp``, ``token``, ``subject``, ``sender``
  (SMTP MAIL FROM), ``from`` (the header), ``recipient`` (SMTP RCPT TO: where a ``+token``
  shows up), ``message-headers`` (JSON list of [name, value], order kept), ``body-plain``
  (always present), ``body-html`` [V]; ``stripped-text``, ``attachment-count``,
  ``attachment-1``… files and ``content-id-map`` (JSON Content-ID → field) from the
  store/notify table [V] and the multi_mail gem [S]. Headers also come as single fields, e.g.
  ``Message-Id`` [S: public captures of posts].
- ``signature`` is the hex HMAC-SHA256 of ``timestamp + token`` (no separator) keyed by the
  webhook signing key [V: securing-webhooks; Rails hashes the same string]. We also reject a
  ``timestamp`` outside five minutes (Rails: two), as Mailgun advises against replays.
- ``200`` = done, ``406`` = rejected without retry, anything else is retried for 8 hours [V]:
  the delivery key is the Message-Id, the same on every retry, where the token may not be [U].
"""

from __future__ import annotations

import json
import secrets as random_secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from integrations.base import InboundRequest, PayloadError, SignatureError, body_hash_key, key_from_id
from integrations.mail import samples
from integrations.mail.base import (
    DEFAULT_LIMITS,
    InboundMail,
    MailAttachment,
    MailLimits,
    MailTooLargeError,
    addresses,
    raw_header,
    register_mail_adapter,
)
from integrations.mail.forms import Form, FormPart, encode_multipart, read_form
from integrations.payload import utc
from integrations.signing import check_window, decode_hex, hmac_digest, parse_unix_time, require_hmac
from integrations.text import clean

#: Single-field headers kept when a post has no ``message-headers`` (what threading needs).
_HEADER_FIELDS = ("From", "To", "Cc", "Reply-To", "Date", "Message-Id", "In-Reply-To", "References",
                  "Auto-Submitted", "Precedence", "X-Autoreply", "X-Autorespond", "Return-Path")


class MailgunAdapter:
    """Inbound mail from a Mailgun route, in the parsed form or raw MIME (``body-mime``)."""

    kind: ClassVar[str] = "mailgun"
    #: The domain's HTTP webhook signing key (Mailgun: Sending → Webhooks → "HTTP webhook signing key").
    secret_names: ClassVar[Sequence[str]] = ("signing_key",)

    def verify(self, request: InboundRequest, secrets: Sequence[str], now: datetime) -> None:
        """Check ``signature`` = hex HMAC-SHA256(``timestamp`` + ``token``) and the 5-minute window.

        :raise SignatureError: a field is missing or the body is not a form, no key matches, or
            the timestamp is stale.
        :raise MailTooLargeError: the body exceeds ``DEFAULT_LIMITS`` (the signature is inside
            it, so it cannot be checked; a 413 says more than a 401 would).
        """
        try:
            form = read_form(request, DEFAULT_LIMITS)
        except MailTooLargeError:
            raise
        except PayloadError as exc:
            raise SignatureError(f"The Mailgun signature fields cannot be read: {exc}") from None
        stamp, token, signature = (form.text(name) for name in ("timestamp", "token", "signature"))
        if not (stamp and token and signature):
            raise SignatureError("Missing Mailgun timestamp, token or signature field.")
        require_hmac(secrets, "sha256", (stamp + token).encode("utf-8"), decode_hex(signature) or None, "Mailgun")
        check_window(parse_unix_time(stamp.strip(), "timestamp"), now)

    def delivery_key(self, request: InboundRequest) -> str:
        """The mail's Message-Id (the same on every retry), else the token, else the body hash."""
        try:
            form = read_form(request, DEFAULT_LIMITS)
        except PayloadError:
            return body_hash_key(request)
        message_id = key_from_id(_message_id(form))
        if message_id:
            return f"mailgun:message:{message_id}"
        token = key_from_id(form.text("token"))
        return f"mailgun:token:{token}" if token else body_hash_key(request)

    def parse_mail(self, request: InboundRequest, limits: MailLimits = DEFAULT_LIMITS) -> InboundMail:
        """The raw ``body-mime`` when present, else the parsed fields and attachment files.

        :raise PayloadError: not a form, malformed, or ``recipient``/``from`` missing in the
            parsed form; ``message-headers``, ``content-id-map``, ``attachment-count`` or an
            ``attachment-N`` file unusable (each named).
        """
        form = read_form(request, limits)
        recipients = addresses(form.text("recipient"))
        mime = form.get("body-mime")
        if mime is not None:
            if not mime.data.strip():
                raise PayloadError("The form field body-mime is empty.", "body-mime")
            return InboundMail(provider=self.kind, provider_message_id=_message_id(form), raw=mime.data,
                               sender=_sender(form), recipients=recipients)
        if not recipients:
            raise PayloadError("The form field recipient is required.", "recipient")
        sender = _sender(form)
        if sender is None:
            raise PayloadError("The form field sender (or from) is required.", "sender")
        html = form.all("body-html")  # documented as "an array of all text/html parts": keep the first
        return InboundMail(
            provider=self.kind,
            provider_message_id=_message_id(form),
            sender=sender,
            recipients=recipients,
            subject=form.text("subject"),
            text=form.text("body-plain"),
            html=form.text("body-html") if html else None,
            stripped_text=form.text("stripped-text"),
            headers=tuple(_headers(form)),
            attachments=tuple(_attachments(form, limits)),
        )

    def sign(self, body: bytes, secret: str, now: datetime, delivery_id: str) -> dict[str, str]:
        """None: Mailgun signs inside the form (``signature_fields``; ``signed_sample`` uses them)."""
        return {}

    def signature_fields(self, secret: str, now: datetime, token: str | None = None) -> dict[str, str]:
        """The ``timestamp``, ``token`` and ``signature`` fields Mailgun adds to every post."""
        token = token or random_secrets.token_hex(25)  # Mailgun's tokens are 50 characters
        stamp = str(int(utc(now).timestamp()))
        signature = hmac_digest("sha256", secret, (stamp + token).encode("utf-8")).hex()
        return {"timestamp": stamp, "token": token, "signature": signature}

    def sample(self) -> tuple[bytes, str]:
        """A parsed-form post with a photo (so multipart), as a ``forward()`` route sends it."""
        return encode_multipart(_sample_parts({}), _BOUNDARY)

    def signed_sample(self, secret: str, now: datetime, delivery_id: str) -> tuple[bytes, dict[str, str]]:
        body, content_type = encode_multipart(_sample_parts(self.signature_fields(secret, now, delivery_id)),
                                              _BOUNDARY)
        return body, {"Content-Type": content_type}


def _sender(form: Form) -> str | None:
    """The envelope sender, else the first address of the From header."""
    sender = (form.text("sender") or "").strip()
    if sender:
        return sender
    found = addresses(form.text("from"))
    return found[0] if found else None


def _message_id(form: Form) -> str | None:
    for name in ("Message-Id", "message-id", "Message-ID"):
        if value := (form.text(name) or "").strip():
            return value
    for name, value in _message_headers(form):
        if name.lower() == "message-id":
            return value.strip() or None
    mime = form.get("body-mime")
    return raw_header(mime.data, "Message-ID") if mime is not None else None


def _message_headers(form: Form) -> list[tuple[str, str]]:
    """``message-headers``: a JSON list of [name, value] pairs (empty when absent).

    :raise PayloadError: ("message-headers") not JSON, or not a list of string pairs.
    """
    value = form.json("message-headers")
    if value is None:
        return []
    if not isinstance(value, list) or not all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(item, str) for item in pair) for pair in value
    ):
        raise PayloadError("message-headers must be a JSON list of [name, value] string pairs.", "message-headers")
    return [(clean(name), clean(text)) for name, text in value]


def _headers(form: Form) -> list[tuple[str, str]]:
    headers = _message_headers(form)
    if headers:
        return headers
    # Without message-headers, keep what threading and loop checks read from single fields.
    return [(name, text) for name in _HEADER_FIELDS if (text := (form.text(name) or form.text(name.lower())))]


def _attachments(form: Form, limits: MailLimits) -> list[MailAttachment]:
    """``attachment-1`` … ``attachment-<attachment-count>`` with Content-IDs from ``content-id-map``."""
    count = form.count("attachment-count", limits.max_form_parts)
    cids = _content_ids(form.json("content-id-map"))
    found = []
    for number in range(1, count + 1):
        name = f"attachment-{number}"
        part: FormPart | None = form.get(name)
        if part is None:
            raise PayloadError(f"The file {name} is missing (attachment-count is {count}).", name)
        found.append(MailAttachment(part.filename, part.content_type, part.data, cids.get(name)))
    return found


def _content_ids(value: Any) -> dict[str, str]:
    """``content-id-map`` ({"<cid>": "attachment-1"}) turned round: field name → Content-ID."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PayloadError("content-id-map must be a JSON object.", "content-id-map")
    return {field: cid for cid, field in value.items() if isinstance(field, str)}


_BOUNDARY = "mailgun-sample-6a1f0c2e"


def _sample_parts(signature: dict[str, str]) -> list[FormPart]:
    fields = {
        "recipient": samples.TO,
        "sender": samples.FROM_ADDRESS,
        "from": samples.FROM,
        "subject": samples.SUBJECT,
        "body-plain": samples.TEXT,
        "stripped-text": samples.TEXT.split("\n\nThanks,")[0],
        "body-html": samples.HTML,
        "message-headers": _json_headers(),
        "Message-Id": samples.MESSAGE_ID,
        "attachment-count": "1",
        **signature,
    }
    parts = [FormPart(name, value.encode("utf-8")) for name, value in fields.items()]
    parts.append(FormPart("attachment-1", samples.PHOTO, filename=samples.PHOTO_NAME,
                          content_type=samples.PHOTO_TYPE))
    return parts


def _json_headers() -> str:
    return json.dumps([[name, value] for name, value in samples.HEADERS])


register_mail_adapter(MailgunAdapter())
