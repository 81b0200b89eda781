"""Raw MIME: any mail server or worker that can pipe a message posts it as ``message/rfc822``.

For Postfix/Exim pipes, a Cloudflare Email Worker (``message.raw``), SES-via-Lambda and the
like: the body is the message exactly as received, signed the Standard Webhooks way (headers
``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,<base64>``, HMAC-SHA256 over
``"{id}.{timestamp}.{body}"`` keyed by a ``whsec_…`` secret; standardwebhooks.com), so the
same secret format and sender libraries serve as for the generic ticket webhook.

The ``standardwebhooks`` package signs text, and a message may carry 8-bit bytes that are not
UTF-8. For a UTF-8 body the package computes the signature (as in ``integrations.generic``);
for any other body the same HMAC is computed over the bytes, which is what a sender signing
the bytes it posts (e.g. a worker hashing a ``Uint8Array``) produces. Comparison and the
five-minute window are done here against the ``now`` we are given.

The envelope recipient is not known to us: a sender that knows it should add
``X-Original-To`` (or ``Delivered-To``) to the message before posting, as Postfix does.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar

from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError
from werkzeug.http import parse_options_header

from integrations.base import InboundRequest, PayloadError, SignatureError, body_hash_key, key_from_id
from integrations.mail import samples
from integrations.mail.base import (
    DEFAULT_LIMITS,
    InboundMail,
    MailLimits,
    MailTooLargeError,
    raw_header,
    register_mail_adapter,
)
from integrations.payload import utc
from integrations.signing import (
    check_window,
    decode_base64,
    encode_base64,
    equals,
    hmac_digest,
    parse_unix_time,
    require_any,
)

CONTENT_TYPE = "message/rfc822"
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
_FIRST_HEADER = re.compile(rb"[!-9;-~]{1,76}:")  # a message starts with a header line


class RawMimeAdapter:
    """A ``message/rfc822`` body signed with Standard Webhooks."""

    kind: ClassVar[str] = "rawmime"
    #: A Standard Webhooks secret, ``whsec_`` followed by base64 (Rebound generates one).
    secret_names: ClassVar[Sequence[str]] = ("signing_secret",)

    def verify(self, request: InboundRequest, secrets: Sequence[str], now: datetime) -> None:
        """Check a ``v1`` signature over id, timestamp and the body bytes, and the 5-minute window.

        :raise SignatureError: a header is missing, the timestamp is stale, or no secret matches.
        """
        msg_id = request.header(ID_HEADER)
        stamp = request.header(TIMESTAMP_HEADER)
        header = request.header(SIGNATURE_HEADER)
        if not (msg_id and stamp and header):
            raise SignatureError("Missing webhook-id, webhook-timestamp or webhook-signature header.")
        check_window(parse_unix_time(stamp, "webhook-timestamp"), now)
        # "v1,<base64>" entries separated by spaces (several during a key rotation).
        given = [signature for version, _, value in (entry.partition(",") for entry in header.split())
                 if version == "v1" and (signature := decode_base64(value)) is not None]
        if not given:
            raise SignatureError("webhook-signature has no v1 signature.")

        def matches(secret: str) -> bool:
            expected = _signature(secret, msg_id, stamp, request.body)
            return expected is not None and any([equals(expected, signature) for signature in given])

        require_any(secrets, matches, "Standard Webhooks")

    def delivery_key(self, request: InboundRequest) -> str:
        """``webhook-id``: the specification keeps it across retries of one message."""
        msg_id = key_from_id(request.header(ID_HEADER))
        return f"rawmime:{msg_id}" if msg_id else body_hash_key(request)

    def parse_mail(self, request: InboundRequest, limits: MailLimits = DEFAULT_LIMITS) -> InboundMail:
        """The body as the raw message.

        :raise PayloadError: ("content-type") not ``message/rfc822``; ("body") empty or not
            starting with a header line.
        :raise MailTooLargeError: ("body") larger than the limits allow for a message.
        """
        mimetype, _ = parse_options_header(request.header("content-type"))
        if mimetype != CONTENT_TYPE:
            raise PayloadError(f"The body must be {CONTENT_TYPE}, not {mimetype or 'unspecified'}.", "content-type")
        limit = min(limits.max_body_bytes, limits.max_form_part_bytes)
        if len(request.body) > limit:
            raise MailTooLargeError(f"The message is larger than {limit} bytes.", "body")
        body = request.body.lstrip(b"\r\n")
        if not body.strip():
            raise PayloadError("The body is empty.", "body")
        if not _FIRST_HEADER.match(body):
            raise PayloadError("The body is not an RFC 822 message: it does not start with a header.", "body")
        return InboundMail(provider=self.kind, provider_message_id=raw_header(request.body, "Message-ID"),
                           raw=request.body)

    def sign(self, body: bytes, secret: str, now: datetime, delivery_id: str) -> dict[str, str]:
        """Standard Webhooks headers for ``body`` (a secret that is not ``whsec_`` base64 signs
        with its raw bytes, which ``verify`` never accepts: tests sign with wrong secrets)."""
        stamp = str(int(utc(now).timestamp()))
        signature = _signature(secret, delivery_id, stamp, body)
        if signature is None:
            signature = hmac_digest("sha256", secret.encode("utf-8") or b"\0",
                                    f"{delivery_id}.{stamp}.".encode() + body)
        return {
            "Content-Type": CONTENT_TYPE,
            "webhook-id": delivery_id,
            "webhook-timestamp": stamp,
            "webhook-signature": "v1," + encode_base64(signature),
        }

    def sample(self) -> tuple[bytes, str]:
        """The customer's message as her mail client sent it, with an ``X-Original-To`` line."""
        return b"X-Original-To: " + samples.TO.encode() + b"\r\n" + samples.raw_message(), CONTENT_TYPE

    def signed_sample(self, secret: str, now: datetime, delivery_id: str) -> tuple[bytes, dict[str, str]]:
        body, _ = self.sample()
        return body, self.sign(body, secret, now, delivery_id)


def _signature(secret: str, msg_id: str, stamp: str, body: bytes) -> bytes | None:
    """The v1 signature bytes for this secret, or None when the secret is not a valid whsec_ key."""
    try:
        webhook = Webhook(secret)
    except (ValueError, binascii.Error, EmptyWebhookSecretError, RuntimeError, UnicodeError):
        return None  # a misconfigured secret must not turn a signature check into a 500
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        key = _key(secret)
        return hmac_digest("sha256", key, f"{msg_id}.{stamp}.".encode() + body) if key else None
    moment = parse_unix_time(stamp, "webhook-timestamp")
    return decode_base64(webhook.sign(msg_id, moment, text).partition(",")[2])


def _key(secret: str) -> bytes | None:
    """The HMAC key of a ``whsec_`` secret, decoded as the ``standardwebhooks`` package does."""
    try:
        return base64.b64decode(secret.removeprefix("whsec_") + "==") or None
    except (binascii.Error, ValueError):
        return None


register_mail_adapter(RawMimeAdapter())
