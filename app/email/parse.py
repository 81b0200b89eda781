"""Raw MIME bytes to a ``ParsedMessage``: headers, best text body, sanitized HTML, attachments.

One code path for every inbound channel (provider webhooks, raw MIME, IMAP). It is pure — no app,
no database, no I/O — and never raises on any input: what is wrong with a message is recorded in
``ParsedMessage.defects`` instead. The standard library's ``email`` package (``policy.default``)
builds the MIME tree; this module walks it once, iteratively, with bounds on depth, part count and
sizes, and decodes every header and body itself so that wrong or unknown charset labels fall back
instead of failing.

Classification (auto-reply, bounce, list mail) lives in ``app.email.classify``; storing attachment
bytes in ``app.email.store``.
"""

from __future__ import annotations

import codecs
import functools
import hashlib
import mimetypes
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import policy
from email.header import decode_header
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser
from email.policy import EmailPolicy
from email.utils import getaddresses, parsedate_to_datetime

import tnefparse

from app.email.html import html_to_text, sanitize_html, too_deep
from integrations.text import clean

__all__ = ["Address", "Attachment", "DeliveryStatus", "Limits", "ParsedMessage", "decode_bytes",
           "parse_message"]

_MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds that keep one hostile message from costing unbounded time or memory."""

    max_message_bytes: int = 40 * _MB  # larger: headers only (the caller should refuse it earlier)
    # multipart/* and message/* parts, counted in the raw bytes before parsing: the standard
    # library's parser recurses once per nesting level and fails near 300 levels.
    max_containers: int = 100
    max_depth: int = 30  # nesting levels walked
    max_parts: int = 500  # parts walked
    max_header_chars: int = 16 * 1024  # per header value; longer ones are cut
    max_addresses: int = 500  # per address header
    max_references: int = 100
    max_body_chars: int = 2_000_000  # text and HTML body each
    max_attachments: int = 100
    max_attachment_bytes: int = 25 * _MB
    max_total_attachment_bytes: int = 40 * _MB


@dataclass(frozen=True, slots=True)
class Address:
    name: str
    address: str


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes = field(repr=False)
    sha256: str
    size: int
    content_id: str | None = None  # without angle brackets
    inline: bool = False


@dataclass(frozen=True, slots=True)
class DeliveryStatus:
    """One recipient block of a ``message/delivery-status`` part (RFC 3464)."""

    recipient: str
    action: str  # "failed", "delayed", "delivered", "relayed", "expanded" or "" when missing
    status: str  # e.g. "5.1.1"; "" when missing
    diagnostic: str = ""


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    message_id: str | None  # with angle brackets, as in the header
    in_reply_to: str | None
    references: tuple[str, ...]
    subject: str
    from_: Address | None
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    delivered_to: tuple[Address, ...]
    date: datetime | None  # always timezone-aware
    content_type: str  # of the top-level part, e.g. "multipart/report"
    report_type: str | None  # the report-type parameter of a top-level multipart/report
    headers: tuple[tuple[str, str], ...]  # every header, unfolded, in order; RFC 2047 not decoded
    text: str  # the text/plain body, or the HTML body as text
    html_sanitized: str | None  # safe to embed; inline images as app.email.html placeholders
    attachments: tuple[Attachment, ...]
    delivery_status: tuple[DeliveryStatus, ...]
    defects: tuple[str, ...]
    raw_size: int
    raw_sha256: str

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or ``None``."""
        name = name.lower()
        return next((value for key, value in self.headers if key.lower() == name), None)

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.headers if key.lower() == name]


def parse_message(raw: bytes, *, limits: Limits = Limits()) -> ParsedMessage:
    """Parse one raw RFC 5322 / MIME message. Never raises on the content of ``raw``."""
    return _Parser(raw, limits).run()


class _Policy(EmailPolicy):
    """``policy.default`` made safe and fast for the headers the MIME parser itself reads.

    The parser reads Content-Type and friends through this method while it builds the tree, so
    it runs before any check of ours. ``policy.default``'s header parser takes minutes on a 1 MB
    Content-Type full of parameters and recurses once per nested comment (RecursionError), so
    a value is cut at ``_FETCH_LIMIT`` characters and loses its parentheses when they could nest
    deeply. It also builds a new header object (~0.1 ms) on every read, about five per part;
    header objects are immutable, so equal values share one.

    Only what the parser sees changes: ``raw_items()`` still gives the headers as received.
    """

    def header_fetch_parse(self, name: str, value: str):  # type: ignore[no-untyped-def]
        if hasattr(value, "name"):
            return value
        value = _FOLD.sub("", value)[:_FETCH_LIMIT]
        if value.count("(") > 20:
            value = value.replace("(", " ").replace(")", " ")
        return _fetch_header(name, value)


_FETCH_LIMIT = 2000


@functools.lru_cache(maxsize=2048)
def _fetch_header(name: str, value: str):  # type: ignore[no-untyped-def]
    return policy.default.header_factory(name, value)


_POLICY = _Policy()
# Attached messages are stored as .eml with CRLF line ends and their headers written as received:
# refolding would run the slow header parser over every long header again.
_SERIALIZE = _POLICY.clone(linesep="\r\n", refold_source="none")


# --- charsets ---------------------------------------------------------------------------------

# Labels seen in mail that Python does not know, and legacy labels whose superset decodes more of
# what senders actually wrote (the WHATWG encoding standard does the same).
_CHARSET_ALIASES = {
    "iso-8859-1": "cp1252", "iso8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252",
    "us-ascii": "cp1252", "ascii": "cp1252", "windows-1252": "cp1252",
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "euc-cn": "gb18030",
    "big5": "big5hkscs", "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932",
    "x-sjis": "cp932", "ks_c_5601-1987": "cp949", "euc-kr": "cp949", "iso-8859-8-i": "iso-8859-8",
    "unicode-1-1-utf-7": "utf-7", "x-unknown": "", "unknown-8bit": "",
}
# Text codecs that are not charsets: decoding with them interprets escapes or never succeeds.
_NOT_CHARSETS = frozenset({"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined",
                           "mbcs", "oem"})
_codec_cache: dict[str, str | None] = {}


def _codec(label: str | None) -> str | None:
    """The Python codec for a charset label, or ``None`` when it names no usable charset."""
    if not label:
        return None
    key = label.strip().strip("\"'").lower()[:40]
    if key in _codec_cache:
        return _codec_cache[key]
    name: str | None = _CHARSET_ALIASES.get(key, key) or None
    if name is not None:
        try:
            info = codecs.lookup(name)
        except (LookupError, ValueError):
            name = None
        else:
            name = info.name
            if not getattr(info, "_is_text_encoding", True) \
                    or name.replace("_", "-") in _NOT_CHARSETS:
                name = None
    if len(_codec_cache) < 1000:  # labels come from senders: do not let them grow the cache
        _codec_cache[key] = name
    return name


def decode_bytes(data: bytes, label: str | None = None) -> tuple[str, bool]:
    """``data`` as text, and whether that needed a fallback (wrong or unknown ``label``).

    Valid UTF-8 wins over the label: mail mislabelled as a legacy charset is far more common than
    legacy text that happens to be valid UTF-8. Then the declared charset strictly, then UTF-8
    with replacement characters when only a few bytes are broken, then (for unknown or UTF-8
    labels) windows-1252, else the declared charset, with replacement characters.
    """
    codec = _codec(label)
    if data.isascii():
        # ISO-2022-JP (still common in Japanese mail), UTF-7 and HZ are 7-bit encodings.
        if codec is not None and (codec.startswith("iso2022") or codec in ("utf-7", "hz")):
            try:
                return data.decode(codec), False
            except UnicodeError:
                return data.decode("ascii"), True
        return data.decode("ascii"), False
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        pass
    if codec is not None and codec != "utf-8":
        try:
            return data.decode(codec), False
        except (UnicodeDecodeError, UnicodeError):
            pass
    # UTF-8 with a few broken bytes (a truncated line, one corrupt character): every other
    # charset would garble all of it. Text in a legacy charset fails on nearly every non-ASCII byte.
    as_utf8 = data.decode("utf-8", errors="replace")
    non_ascii = len(data) - len(data.translate(None, _HIGH_BYTES))
    if as_utf8.count("\ufffd") * 10 <= non_ascii:
        return as_utf8, True
    try:
        fallback = codec if codec not in (None, "utf-8") else "cp1252"
        return data.decode(fallback, errors="replace"), True
    except Exception:  # a codec that cannot even replace (e.g. broken utf-7 state)
        return data.decode("cp1252", errors="replace"), True


_HIGH_BYTES = bytes(range(128, 256))


def _decode_words(value: str) -> str:
    """``value`` with RFC 2047 encoded words decoded, each through ``decode_bytes`` so that a
    wrong charset label (GB2312 for GBK text, an unknown name) falls back like a body does."""
    if "=?" not in value:
        return value
    try:
        chunks = decode_header(value)
    except Exception:  # HeaderParseError on broken base64, and worse on worse input
        return value
    words = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            words.append(chunk)
        elif charset is None:  # text between encoded words, escaped by decode_header
            words.append(chunk.decode("raw-unicode-escape", errors="replace"))
        else:
            words.append(decode_bytes(chunk, charset)[0])
    return "".join(words)


def _text(value: str) -> str:
    """Header text with raw 8-bit bytes (kept by the parser as surrogates) decoded, and made
    safe to store."""
    if _SURROGATES.search(value):
        value = _SURROGATES.sub(
            lambda run: decode_bytes(run.group().encode("utf-8", "surrogateescape"))[0], value)
    return clean(value)


_SURROGATES = re.compile("[\udc80-\udcff]+")

# --- the parser -------------------------------------------------------------------------------

_OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# The value of a Content-Type header line that starts a container part (lower-cased bytes).
# Over-counting (a body line that looks like one) only makes the cut earlier, never unsafe.
# Folded values are matched up to the first 200 bytes.
_CONTAINER = re.compile(rb"(?:[^\n]|\n[ \t]){0,200}?\b(?:multipart|message)\s*/")
_FIRST_BOUNDARY = re.compile(r"\s*(--[^\r\n]{1,200})\r?\n")
_MESSAGE_ID = re.compile(r"<([^<>\s]{1,998})>")
_FOLD = re.compile(r"\r?\n")
_FILENAME_BAD = re.compile(r"[\x00-\x1f\x7f]+")
# ``alice@example.com <bob@example.com>``: an unquoted display name that is itself an address.
# Both the standard library's parsers take "alice" as the address; quoting the name fixes that.
_ADDRESS_AS_NAME = re.compile(r'(^|,)(\s*)([^,"<>()]*@[^,"<>()]*?)\s*<')


def _quote_name(match: re.Match[str]) -> str:
    return f'{match[1]}{match[2]}"{match[3].strip()}" <'


class _Parser:
    """State of one parse: collected bodies, attachments and defects."""

    def __init__(self, raw: bytes, limits: Limits) -> None:
        self.raw = raw if isinstance(raw, bytes) else bytes(raw)
        self.limits = limits
        self.defects: list[str] = []
        self.plain: list[str] = []
        self.html: list[str] = []
        self.attachments: list[Attachment] = []
        self.attachment_bytes = 0
        self.delivery_status: list[DeliveryStatus] = []
        self.body_chars = {"plain": 0, "html": 0}

    def defect(self, code: str, detail: str = "") -> None:
        """Record one defect; repeats are recorded once, and at most 200 in all."""
        text = _text(f"{code}: {detail}" if detail else code)  # details quote sender bytes
        if text in self.defects:
            return
        if len(self.defects) < 199:
            self.defects.append(text)
        elif len(self.defects) == 199:
            self.defects.append("TooManyDefects")

    # -- top level --

    def run(self) -> ParsedMessage:
        raw, limits = self.raw, self.limits
        parser = BytesParser(policy=_POLICY)
        if raw.startswith(_OLE_SIGNATURE):
            # An Outlook .msg file (OLE compound document) is not MIME; extract-msg could read it,
            # but customers' mail never arrives this way, only files uploaded by mistake.
            self.defect("NotMimeDefect", "Outlook .msg (OLE) file")
            message = parser.parsebytes(b"\r\n")
        elif len(raw) > limits.max_message_bytes:
            self.defect("MessageTooLarge", f"{len(raw)} bytes; only headers parsed")
            return self.build(BytesHeaderParser(policy=_POLICY).parsebytes(raw))
        else:
            message = parser.parsebytes(self._cut_containers(raw))
        self.walk(message)
        return self.build(message)

    def _cut_containers(self, raw: bytes) -> bytes:
        """``raw`` cut before its (max_containers + 1)-th container part, so the recursive
        standard-library parser never goes deep."""
        limit, count = self.limits.max_containers, 0
        # bytes.find on a lower-cased copy is ten times faster than one case-insensitive regex.
        lowered = raw.lower()
        position = lowered.find(b"content-type:")
        while position >= 0:
            at_line_start = position == 0 or lowered[position - 1] == 10  # "\n"
            if at_line_start and _CONTAINER.match(lowered, position + 13):
                count += 1
                if count > limit:
                    self.defect("TooManyParts",
                                f"more than {limit} multipart/message parts; rest cut")
                    return raw[:position]
            position = lowered.find(b"content-type:", position + 13)
        return raw

    def build(self, message: Message) -> ParsedMessage:
        limits = self.limits
        headers = self.headers(message)
        first: dict[str, str] = {}
        grouped: dict[str, list[str]] = {}
        for name, value in headers:
            key = name.lower()
            first.setdefault(key, value)
            grouped.setdefault(key, []).append(value)

        from_ = self.addresses(grouped.get("from", []), "From")
        references = self.ids(first.get("references", ""))
        if len(references) > limits.max_references:  # keep the thread root and the newest ids
            self.defect("TooManyReferences", str(len(references)))
            references = references[:1] + references[-(limits.max_references - 1):]
        in_reply_to = self.ids(first.get("in-reply-to", ""))
        message_id = self.ids(first.get("message-id", ""))
        bare_id = first.get("message-id", "").strip()
        if not message_id and bare_id and not any(c.isspace() for c in bare_id):
            message_id = [f"<{bare_id.strip('<>')}>"]

        text = "\n\n".join(part for part in self.plain if part.strip())
        html = "\n".join(self.html)
        if not text.strip() and html:
            text = html_to_text(html) or ""
        html_sanitized = None
        if html:
            if too_deep(html):
                self.defect("HtmlTooDeep", "shown as text")
            inline = {a.content_id: a.sha256 for a in self.attachments if a.content_id}
            html_sanitized = sanitize_html(html, inline)
        content_type = _content_type(message)
        report_type = None
        if content_type == "multipart/report":
            report_type = (_param(message, "report-type") or "").lower() or None
        return ParsedMessage(
            message_id=message_id[0] if message_id else None,
            in_reply_to=in_reply_to[0] if in_reply_to else None,
            references=tuple(references),
            subject=self.subject(first.get("subject")),
            from_=from_[0] if from_ else None,
            to=tuple(self.addresses(grouped.get("to", []), "To")),
            cc=tuple(self.addresses(grouped.get("cc", []), "Cc")),
            reply_to=tuple(self.addresses(grouped.get("reply-to", []), "Reply-To")),
            delivered_to=tuple(self.addresses(grouped.get("delivered-to", []), "Delivered-To")),
            date=self.date(first.get("date")),
            content_type=content_type,
            report_type=report_type,
            headers=tuple(headers),
            text=text.strip(),
            html_sanitized=html_sanitized,
            attachments=tuple(self.attachments),
            delivery_status=tuple(self.delivery_status),
            defects=tuple(self.defects),
            raw_size=len(self.raw),
            raw_sha256=hashlib.sha256(self.raw).hexdigest(),
        )

    # -- headers --

    def headers(self, message: Message) -> list[tuple[str, str]]:
        limit = self.limits.max_header_chars
        result = []
        for name, value in message.raw_items():
            value = str(value)
            if len(value) > limit:
                self.defect("HeaderTooLong", f"{_text(name)[:60]}: {len(value)} characters; cut")
                value = value[:limit]
            result.append((_text(name), _text(_FOLD.sub("", value)).strip()))
        return result

    def subject(self, value: str | None) -> str:
        if not value:
            return ""
        return " ".join(_decode_words(_text(value)).split())

    def addresses(self, values: list[str], name: str) -> list[Address]:
        if not values:
            return []
        try:
            pairs = getaddresses([_ADDRESS_AS_NAME.sub(_quote_name, value) for value in values])
        except Exception as exc:
            self.defect("HeaderDecodeError", f"{name}: {type(exc).__name__}")
            return []
        if len(pairs) > self.limits.max_addresses:
            self.defect("TooManyAddresses", f"{name}: {len(pairs)}")
            pairs = pairs[:self.limits.max_addresses]
        result = []
        for display, address in pairs:
            address = _text(address).strip()
            if "@" not in address:  # a group name, a lone word, garbage
                continue
            display = _decode_words(_text(display))
            result.append(Address(" ".join(display.split()), address))
        return result

    def ids(self, value: str) -> list[str]:
        return [f"<{match}>" for match in _MESSAGE_ID.findall(value)]

    def date(self, value: str | None) -> datetime | None:
        if not value:
            return None
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            self.defect("InvalidDateDefect", value[:80])
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)

    # -- the MIME tree --

    def walk(self, message: Message) -> None:
        limits = self.limits
        stack: list[tuple[Message, int]] = [(message, 0)]
        seen = 0
        while stack:
            part, depth = stack.pop()
            seen += 1
            if seen > limits.max_parts:
                self.defect("TooManyParts", f"more than {limits.max_parts} parts; rest skipped")
                return
            for defect in part.defects:
                self.defect(type(defect).__name__)
            content_type = _content_type(part)
            if content_type == "message/delivery-status":
                self.delivery_status_part(part)
                continue
            if part.is_multipart() and content_type.startswith("multipart/"):
                if depth >= limits.max_depth:
                    self.defect("TooDeep", f"parts below depth {limits.max_depth} skipped")
                    continue
                children = _payload(part)
                stack.extend((child, depth + 1) for child in reversed(children))
                continue
            if content_type.startswith("multipart/"):
                salvaged = self.salvage(part)
                if salvaged is not None:
                    stack.append((salvaged, depth + 1))
                continue
            if content_type.startswith("message/") or part.is_multipart():
                self.attached_message(part, content_type)
                continue
            self.leaf(part, content_type)

    def salvage(self, part: Message) -> Message | None:
        """A multipart whose declared boundary never occurs, re-read with the boundary its body
        actually uses (spam and broken mailers do this); ``None`` when the body has none."""
        body = _payload(part)
        if not isinstance(body, str):
            return None
        match = _FIRST_BOUNDARY.match(body)
        if match is None:
            return None
        boundary = match.group(1)[2:].strip()
        if not boundary or '"' in boundary:
            return None
        self.defect("BoundaryRecovered", boundary[:70])
        header = f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'.encode(
            "ascii", "surrogateescape")
        data = body.encode("utf-8", "surrogateescape")
        return BytesParser(policy=_POLICY).parsebytes(header + data)

    def leaf(self, part: Message, content_type: str) -> None:
        disposition = _disposition(part)
        filename = _filename(part)
        if content_type in ("text/plain", "text/html") and disposition != "attachment" \
                and not filename:
            self.body(part, "html" if content_type == "text/html" else "plain")
            return
        data = self.payload(part, filename or content_type)
        if data is None:
            return
        is_tnef = content_type == "application/ms-tnef" or (filename or "").lower() == "winmail.dat"
        if is_tnef and self.tnef(data):
            return  # unpacked; a winmail.dat that cannot be read is kept as it is, below
        self.attach(data, filename, content_type, part, disposition)

    def payload(self, part: Message, what: str, *, body: bool = False) -> bytes | None:
        """The decoded bytes of a leaf part, or ``None`` (with a defect) when over a size limit.

        The size is estimated from the encoded text first, so an oversized part is never decoded.
        A body counts against the per-attachment limit only, not the attachments' total.
        """
        encoded = _payload(part)
        if not isinstance(encoded, str):
            encoded = ""
        cte = str(part.get("content-transfer-encoding", "")).strip().lower()
        estimate = len(encoded) * 3 // 4 if cte == "base64" else len(encoded)
        if body and estimate > self.limits.max_attachment_bytes:
            self.defect("BodyTooLarge", f"{what}: {estimate} bytes; skipped")
            return None
        if not body and not self.room_for(estimate, what):
            return None
        try:
            data = part.get_payload(decode=True)
        except Exception as exc:  # the transfer-encoding decoders raise on some garbage
            self.defect("PayloadDecodeError", f"{_short(what)}: {type(exc).__name__}")
            data = encoded.encode("ascii", "surrogateescape")
        return data if isinstance(data, bytes) else b""

    def room_for(self, size: int, what: str) -> bool:
        limits = self.limits
        if size > limits.max_attachment_bytes:
            self.defect("AttachmentTooLarge", f"{_short(what)}: {size} bytes; skipped")
            return False
        if self.attachment_bytes + size > limits.max_total_attachment_bytes:
            self.defect("AttachmentsTooLarge", f"{_short(what)}: over the total; skipped")
            return False
        return True

    def body(self, part: Message, kind: str) -> None:
        data = self.payload(part, f"text/{kind} body", body=True)
        if data is None:
            return
        charset = _charset(part)
        text, fallback = decode_bytes(data, charset)
        if fallback:
            self.defect("CharsetFallback", f"text/{kind} declared {charset!r}")
        room = self.limits.max_body_chars - self.body_chars[kind]
        if len(text) > room:
            self.defect("BodyTooLong", f"text/{kind} cut at {self.limits.max_body_chars} characters")
            text = text[:max(room, 0)]
        self.body_chars[kind] += len(text)
        (self.html if kind == "html" else self.plain).append(clean(text))

    def attach(self, data: bytes, filename: str | None, content_type: str, part: Message | None,
               disposition: str | None) -> None:
        limits = self.limits
        if len(self.attachments) >= limits.max_attachments:
            self.defect("TooManyAttachments", f"more than {limits.max_attachments}; rest skipped")
            return
        if not self.room_for(len(data), filename or content_type):
            return
        content_id = _content_id(part) if part is not None else None
        self.attachment_bytes += len(data)
        self.attachments.append(Attachment(
            filename=_safe_filename(filename, content_type, len(self.attachments) + 1),
            content_type=content_type,
            data=data,
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            content_id=content_id,
            inline=disposition == "inline" or (disposition is None and content_id is not None),
        ))

    def attached_message(self, part: Message, content_type: str) -> None:
        """A forwarded or returned message (``message/rfc822``, ``…/rfc822-headers``) is kept as
        an ``.eml`` attachment, not merged into the body: its text is someone else's mail."""
        inner = _payload(part)
        inner = inner[0] if isinstance(inner, list) and inner else inner
        if not isinstance(inner, Message):
            return
        try:
            data = inner.as_bytes(policy=_SERIALIZE)
        except Exception as exc:  # e.g. RecursionError, or headers the generator cannot fold
            self.defect("AttachedMessageError", f"{content_type}: {type(exc).__name__}")
            return
        subject = next((str(value) for name, value in inner.raw_items()
                        if name.lower() == "subject"), "")
        stem = self.subject(_FOLD.sub("", subject)[:1000]).replace("/", "_")[:80] or "message"
        extension = ".eml" if content_type == "message/rfc822" else ".txt"
        self.attach(data, stem + extension, content_type, part, _disposition(part))

    def delivery_status_part(self, part: Message) -> None:
        blocks = _payload(part)
        if not isinstance(blocks, list):
            return
        for block in blocks[:self.limits.max_addresses]:
            if not isinstance(block, Message):
                continue
            fields = {name.lower(): _text(_FOLD.sub("", str(value)))
                      for name, value in block.raw_items()}
            recipient = fields.get("final-recipient") or fields.get("original-recipient")
            if not recipient:
                continue
            address = recipient.split(";", 1)[-1].strip().strip("<>").strip()
            if "@" not in address:
                continue
            self.delivery_status.append(DeliveryStatus(
                recipient=address[:320],
                action=fields.get("action", "").strip().lower()[:40],
                status=fields.get("status", "").split()[0][:20] if fields.get("status") else "",
                diagnostic=fields.get("diagnostic-code", "").strip()[:1000],
            ))

    def tnef(self, data: bytes) -> bool:
        """Unpack an Outlook ``winmail.dat`` into ordinary attachments (and its body when the
        message has none). False, with a defect, when it cannot be read."""
        try:
            tnef = tnefparse.TNEF(data, do_checksum=False)
            files = [(item.long_filename(), item.data) for item in tnef.attachments]
            body, html, codepage = tnef.body, tnef.htmlbody, tnef.codepage
        except Exception as exc:  # tnefparse raises anything from ValueError to AssertionError
            self.defect("TnefDecodeError", type(exc).__name__)
            return False
        for name, content in files:
            name = name if isinstance(name, str) else decode_bytes(bytes(name or b""), codepage)[0]
            content = bytes(content or b"")
            guessed = mimetypes.guess_type(name or "")[0] or "application/octet-stream"
            self.attach(content, name.strip("\x00") or None, guessed, None, "attachment")
        for value, kind in ((body, "plain"), (html, "html")):
            if not value:
                continue
            text = value if isinstance(value, str) else decode_bytes(bytes(value), codepage)[0]
            target = self.html if kind == "html" else self.plain
            if not any(existing.strip() for existing in target):
                target.append(clean(text.strip("\x00"))[:self.limits.max_body_chars])
        return True


# --- small part readers -----------------------------------------------------------------------
# Each one survives headers the standard library cannot parse: they fall back to a safe default.


def _payload(part: Message) -> object:
    """The payload as the parser stored it: a list of parts, or the undecoded body as a str.

    ``get_payload()`` is not used for this: on a body with 8-bit bytes it decodes the text with
    the part's declared charset, and labels such as "idna" or "undefined" make that raise.
    """
    return part._payload  # noqa: SLF001 - the one place that reads it; see the docstring


def _content_type(part: Message) -> str:
    try:
        value = part.get_content_type()
    except Exception:
        return "application/octet-stream"
    return value if _MIME_TYPE.fullmatch(value) else "application/octet-stream"


# RFC 6838 type and subtype names; anything else (NUL, 8-bit bytes, spaces) is no content type.
_MIME_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")


def _param(part: Message, name: str) -> str | None:
    try:
        value = part.get_param(name)
    except Exception:
        return None
    if isinstance(value, tuple):  # RFC 2231 (charset, language, value)
        value = value[2]
    return _text(str(value)) if value is not None else None


def _charset(part: Message) -> str | None:
    return _param(part, "charset")


def _disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except Exception:
        return None


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        return None
    return _decode_words(_text(str(name))) if name else None


def _content_id(part: Message) -> str | None:
    try:
        value = part.get("content-id")
    except Exception:
        return None
    value = _text(str(value or "")).strip().strip("<>").strip()
    return value[:500] or None


def _safe_filename(name: str | None, content_type: str, number: int) -> str:
    """A filename without directories or control characters, at most 255 characters."""
    name = _FILENAME_BAD.sub("", (name or "").replace("\\", "/").rsplit("/", 1)[-1]).strip(" .")
    if not name:
        extension = mimetypes.guess_extension(content_type) or ".bin"
        return f"attachment-{number}{extension}"
    if len(name) > 255:
        stem, dot, extension = name.rpartition(".")
        name = (stem[:240] + dot + extension[:14]) if dot and len(extension) <= 14 else name[:255]
    return name


def _short(value: str) -> str:
    return value[:80]

