"""What a mail provider hands us, the interface every mail adapter implements, and their registry.

An inbound mail webhook goes: ``verify`` (signature or credentials) → ``delivery_key``
(idempotency) → ``parse_mail`` (into one ``InboundMail``). Adapters raise ``SignatureError``
(→ 401) or ``PayloadError`` (→ 400; its subclass ``MailTooLargeError`` → 413) and never a
provider-specific exception; these are the helpdesk adapters' errors, so the webhook endpoint
handles both kinds of integration alike.

Providers hand a message over either as the full RFC 822 bytes (``InboundMail.raw``) or as
fields they parsed themselves. ``InboundMail.to_mime`` turns either into MIME bytes, so the app
has one path: always parse MIME with the standard library.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email import errors as email_errors
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from typing import ClassVar, NamedTuple, Protocol

from integrations.base import InboundRequest, PayloadError, Registry, key_from_id
from integrations.text import clean

_MIB = 1024 * 1024


class MailTooLargeError(PayloadError):
    """The request, one of its form fields or files, or a decoded attachment exceeds a limit;
    ``field`` names it. A PayloadError, so callers that only know that class still answer 4xx."""


@dataclass(frozen=True)
class MailLimits:
    """Size limits a provider's request must keep; the app passes its configured values.

    The defaults sit just above what the providers document (SendGrid: 30 MB per message;
    Postmark: 35 MB of attachments, which base64 in JSON makes about 47 MB).
    """

    max_body_bytes: int = 50 * _MIB  # the whole request body
    max_form_part_bytes: int = 40 * _MIB  # one form field or file, a raw message, a decoded attachment
    max_form_parts: int = 1000  # form fields and files together, or attachments in a JSON body


DEFAULT_LIMITS = MailLimits()


class MailAttachment(NamedTuple):
    """One attachment as a provider listed it (a plain tuple: filename, type, bytes, Content-ID)."""

    filename: str | None
    content_type: str | None
    content: bytes
    content_id: str | None = None


@dataclass(frozen=True)
class InboundMail:
    """One received message: the raw MIME when the provider sent it, else the provider's fields.

    ``recipients`` are the addresses the mail was delivered to (the SMTP envelope where the
    provider reports it): a reply token in ``returns+<token>@…`` is found there even when the
    customer's client put the address in Bcc. ``headers`` are (name, value) pairs in the order
    the provider gave them, values as given (possibly RFC 2047 encoded).
    """

    provider: str
    provider_message_id: str | None = None
    raw: bytes | None = None
    sender: str | None = None
    recipients: tuple[str, ...] = ()
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    stripped_text: str | None = None  # the provider's reply without quoted history, if it made one
    headers: tuple[tuple[str, str], ...] = ()
    attachments: tuple[MailAttachment, ...] = ()

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case): from ``headers``, else from ``raw``."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return raw_header(self.raw, name) if self.raw is not None else None

    def message_id(self) -> str | None:
        """The Message-ID header, trimmed and fit to be a delivery key; None if there is none."""
        return key_from_id(self.header("Message-ID"))

    def to_mime(self) -> bytes:
        """The message as RFC 822 bytes, to be parsed with ``email.parser.BytesParser``.

        With ``raw``, those bytes unchanged, after an ``X-Original-To`` line naming the
        ``recipients`` (as Rails Action Mailbox does for Mailgun): headers added on top do not
        break DKIM, and the envelope recipient is otherwise lost. Without ``raw``, a message
        built from the fields: the provider's headers (less the ones describing a body we
        rebuild), From/To/Subject from the fields where the headers lack them, then text and
        HTML as ``multipart/alternative`` and the attachments, inline ones with their Content-ID.
        """
        original_to = _address_line(self.recipients)
        if self.raw is not None:
            return (f"X-Original-To: {original_to}\r\n".encode() + self.raw) if original_to else self.raw
        try:
            return self._build(keep_headers=True).as_bytes()
        except (ValueError, TypeError, IndexError, AttributeError, LookupError, email_errors.MessageError):
            # A header value the standard library cannot fold back (it has had such bugs):
            # the fields still make a usable message; the provider's other headers are dropped.
            return self._build(keep_headers=False).as_bytes()

    def _build(self, *, keep_headers: bool) -> EmailMessage:
        message = EmailMessage(policy=policy.default)
        if keep_headers:
            budget = MAX_HEADERS_TOTAL
            for name, value in self.headers:
                budget -= len(value)
                if budget < 0:
                    break  # folding is slow on long values: past this much, the rest is noise
                _set_header(message, name, value)
        if "From" not in message and self.sender:
            _set_header(message, "From", self.sender)
        if "To" not in message and self.recipients:
            _set_header(message, "To", ", ".join(self.recipients))
        if "Subject" not in message and self.subject is not None:
            _set_header(message, "Subject", self.subject)
        if original_to := _address_line(self.recipients):
            _set_header(message, "X-Original-To", original_to)

        text = clean(self.text) if self.text is not None else None
        html = clean(self.html) if self.html else None
        if html and text is not None:
            message.set_content(text)
            message.add_alternative(html, subtype="html")
        elif html:
            message.set_content(html, subtype="html")
        else:
            message.set_content(text or "")
        for attachment in self.attachments:
            _attach(message, attachment)
        return message


# --- the adapter interface and its registry ----------------------------------------------------


class MailAdapter(Protocol):
    """What every inbound mail adapter provides (the mail twin of ``WebhookAdapter``)."""

    kind: ClassVar[str]
    #: Secret names this adapter uses (shown to admins, stored encrypted).
    secret_names: ClassVar[Sequence[str]]

    def verify(self, request: InboundRequest, secrets: Sequence[str], now: datetime) -> None:
        """Check the request is authentic with any one of ``secrets`` (current, then previous).

        :raise SignatureError: missing or wrong signature or credentials, or a stale timestamp.
        """

    def delivery_key(self, request: InboundRequest) -> str:
        """A key that is the same for every retry of one delivery (idempotency); never raises."""

    def parse_mail(self, request: InboundRequest, limits: MailLimits = DEFAULT_LIMITS) -> InboundMail:
        """The request as one message.

        :raise MailTooLargeError: the body, a field, a file or an attachment exceeds ``limits``.
        :raise PayloadError: a malformed body or a missing required field (named).
        """

    def sign(self, body: bytes, secret: str, now: datetime, delivery_id: str) -> dict[str, str]:
        """The headers this provider would send with ``body`` (a provider that signs inside the
        body, as Mailgun does, returns none: use ``signed_sample``)."""

    def sample(self) -> tuple[bytes, str]:
        """A realistic request body and its Content-Type: a customer asks to return an item."""

    def signed_sample(self, secret: str, now: datetime, delivery_id: str) -> tuple[bytes, dict[str, str]]:
        """``sample()`` authenticated with ``secret``: the body and every header to send with it
        (tests, the README's curl, ``flask integrations`` demos)."""


_ADAPTERS: Registry[MailAdapter] = Registry("integrations.mail", ("mailgun", "sendgrid", "postmark", "rawmime"))


def register_mail_adapter(adapter: MailAdapter) -> MailAdapter:
    """Add an adapter to the registry under its ``kind``; returns it."""
    return _ADAPTERS.register(adapter)


def get_mail_adapter(kind: str) -> MailAdapter:
    """The mail adapter registered for ``kind`` ("mailgun", "sendgrid", "postmark", "rawmime").

    :raise KeyError: no mail adapter of that kind.
    """
    return _ADAPTERS.get(kind)


def mail_kinds() -> list[str]:
    return _ADAPTERS.kinds()


# --- helpers shared by the adapters ----------------------------------------------------------------

#: A header name: printable ASCII without colon or space (RFC 5322 ftext), of a sane length.
_HEADER_NAME = re.compile(r"[!-9;-~]{1,76}")
#: Headers that describe the body; ``to_mime`` builds a new body, so the provider's would lie.
_BODY_HEADERS = frozenset({
    "content-type", "content-transfer-encoding", "mime-version", "content-disposition",
    "content-id", "content-description", "content-length",
})
#: Longer header values are dropped, and headers past the total: the standard library folds a
#: long non-ASCII value at some 30 µs a character, so a crafted header block would cost seconds.
MAX_HEADER_VALUE = 8 * 1024
MAX_HEADERS_TOTAL = 64 * 1024
_MIME_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}")
_ADDRESS = re.compile(r"[^\s<>,;:\"()\[\]\\]{1,200}@[^\s<>,;:\"()\[\]\\@]{1,255}")
_HEAD_SCAN = 1024 * 1024  # a header block beyond 1 MB is not a message we key by Message-ID


def raw_header(raw: bytes, name: str) -> str | None:
    """The first ``name`` header of a raw message, unfolded and trimmed, or None; never raises.

    Read with ``compat32`` so a malformed value comes back as written rather than re-parsed.
    """
    head, _, _ = raw.partition(b"\r\n\r\n") if b"\r\n\r\n" in raw[:_HEAD_SCAN] else raw.partition(b"\n\n")
    try:
        message = BytesHeaderParser(policy=policy.compat32).parsebytes(head[:_HEAD_SCAN])
        value = message.get(name)
    except Exception:  # noqa: BLE001 - the stdlib parser on hostile bytes; the key falls back to a hash
        return None
    if value is None:
        return None
    return clean(" ".join(str(value).split())) or None


def header_pairs(block: str) -> list[tuple[str, str]]:
    """A raw header block ("Name: value" lines, folded or not) as (name, value) pairs in order.

    Lines that are not headers are skipped; never raises.
    """
    pairs: list[tuple[str, str]] = []
    for line in re.split(r"\r\n|\n|\r", block):
        if line[:1] in (" ", "\t") and pairs:
            name, value = pairs[-1]
            pairs[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if colon and _HEADER_NAME.fullmatch(name):
            pairs.append((name, value.strip()))
    return [(name, clean(value)) for name, value in pairs]


def addresses(value: str | None) -> tuple[str, ...]:
    """The bare addresses in a header-like string ("Dana <d@x.com>, e@y.com"), in order, once each."""
    if not value:
        return ()
    return tuple(dict.fromkeys(match.group(0).strip(".") for match in _ADDRESS.finditer(value)))


def _address_line(recipients: Sequence[str]) -> str:
    return ", ".join(address for address in recipients if _ADDRESS.fullmatch(address))


def _set_header(message: EmailMessage, name: str, value: str) -> None:
    """Add a header if the standard library accepts it; skip it if not (a second Subject, a
    value it cannot parse): one bad header must not cost the message."""
    if not _HEADER_NAME.fullmatch(name) or name.lower() in _BODY_HEADERS or len(value) > MAX_HEADER_VALUE:
        return
    value = " ".join(clean(value).split())  # unfold; CR or LF in a value would be refused
    try:
        # Fold first: for some hostile values (non-ASCII junk in an address header) the standard
        # library writes a continuation line without leading space, which would end the header
        # block early and turn the rest of the message into body.
        header = message.policy.header_factory(name, value)
        folded = header.fold(policy=message.policy)
        if not folded.isascii() or any(line[:1] not in (" ", "\t") for line in folded.splitlines()[1:]):
            return
        message[name] = header
    except (ValueError, TypeError, IndexError, AttributeError, LookupError, email_errors.MessageError):
        return


def _attach(message: EmailMessage, attachment: MailAttachment) -> None:
    content_type = (attachment.content_type or "").split(";")[0].strip().lower()
    if not _MIME_TYPE.fullmatch(content_type) or content_type.startswith(("multipart/", "message/")):
        # A container type would need parsed content; as bytes it is opaque data.
        content_type = "application/octet-stream"
    maintype, _, subtype = content_type.partition("/")
    filename = " ".join(clean(attachment.filename).split()) if attachment.filename else None
    cid = _content_id(attachment.content_id)
    try:
        message.add_attachment(attachment.content, maintype=maintype, subtype=subtype, filename=filename or None,
                               cid=cid, disposition="inline" if cid else "attachment")
    except (ValueError, TypeError, IndexError, email_errors.MessageError):
        message.add_attachment(attachment.content, maintype="application", subtype="octet-stream",
                               disposition="attachment")


def _content_id(value: str | None) -> str | None:
    """``<id>`` from a Content-ID given with or without angle brackets; None if unusable."""
    if not value:
        return None
    inner = value.strip().removeprefix("<").removesuffix(">").strip()
    if not inner or len(inner) > 250 or not inner.isascii() or not inner.isprintable() or " " in inner:
        return None
    return f"<{inner}>"
