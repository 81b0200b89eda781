"""Form bodies as mail providers post them (Mailgun, SendGrid): urlencoded or multipart, with limits.

Parts come back as exact bytes, text fields included: a raw message in a form field
(Mailgun's ``body-mime``, SendGrid's ``email``) may hold 8-bit bytes in any charset, and
decoding it here would lose them. The multipart body is fed to Werkzeug's sans-IO
``MultipartDecoder`` in chunks (so no part is copied around whole more than once) and every
part is counted against ``MailLimits`` as it arrives: an oversized part is refused at its
limit, naming the field, instead of after it was read.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from integrations.base import InboundRequest, PayloadError
from integrations.mail.base import MailLimits, MailTooLargeError
from integrations.text import clean

URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class FormPart:
    """One form field or file: its name, exact bytes, and what its part headers said."""

    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None
    charset: str | None = None


class Form:
    """The parts of a form body, in order, looked up by name (the first part of a name wins)."""

    def __init__(self, parts: list[FormPart]):
        self.parts = parts
        self._first: dict[str, FormPart] = {}
        for part in parts:
            self._first.setdefault(part.name, part)

    def __contains__(self, name: str) -> bool:
        return name in self._first

    def get(self, name: str) -> FormPart | None:
        return self._first.get(name)

    def all(self, name: str) -> list[FormPart]:
        return [part for part in self.parts if part.name == name]

    def text(self, name: str, charset: str | None = None) -> str | None:
        """The field as text, or None when absent: decoded with ``charset``, else the part's
        own charset, else UTF-8; an unknown charset label falls back to UTF-8, and undecodable
        bytes become U+FFFD (the field is kept, never refused)."""
        part = self._first.get(name)
        return None if part is None else decode(part.data, charset or part.charset)

    def required_text(self, name: str) -> str:
        """:raise PayloadError: (``name``) the field is missing or blank."""
        value = (self.text(name) or "").strip()
        if not value:
            raise PayloadError(f"The form field {name} is required.", name)
        return value

    def count(self, name: str, maximum: int) -> int:
        """A count field (e.g. how many attachments follow); 0 when absent.

        :raise PayloadError: (``name``) not a whole number.
        :raise MailTooLargeError: (``name``) above ``maximum``.
        """
        raw = (self.text(name) or "0").strip()
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 6):
            raise PayloadError(f"{name} must be a whole number.", name)
        if int(raw) > maximum:
            raise MailTooLargeError(f"{name} is above {maximum}.", name)
        return int(raw)

    def json(self, name: str) -> Any:
        """The field parsed as JSON, or None when absent or blank.

        :raise PayloadError: (``name``) the field is not JSON.
        """
        value = self.text(name)
        if value is None or not value.strip():
            return None
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            raise PayloadError(f"The form field {name} is not valid JSON.", name) from None


def decode(data: bytes, charset: str | None) -> str:
    """``data`` as clean text in ``charset`` (UTF-8 when missing or unknown); never raises."""
    try:
        codec = codecs.lookup((charset or "utf-8").strip())
    except (LookupError, ValueError):
        codec = codecs.lookup("utf-8")
    try:
        return clean(codec.decode(data, "replace")[0])
    except Exception:  # noqa: BLE001 - some codecs raise odd errors on crafted input; fall back
        return clean(data.decode("utf-8", "replace"))


def read_form(request: InboundRequest, limits: MailLimits) -> Form:
    """The request body as a form, urlencoded or ``multipart/form-data``.

    :raise MailTooLargeError: the body, a part (named) or the number of parts exceeds ``limits``.
    :raise PayloadError: ("content-type") not a form; ("body") a malformed form body.
    """
    mimetype, options = parse_options_header(request.header("content-type"))
    if len(request.body) > limits.max_body_bytes:
        raise MailTooLargeError(f"The request body is larger than {limits.max_body_bytes} bytes.", "body")
    if mimetype == URLENCODED:
        return Form(_urlencoded(request.body, limits))
    if mimetype == MULTIPART:
        boundary = options.get("boundary", "")
        if not boundary or len(boundary) > 200 or not boundary.isascii():
            raise PayloadError("The multipart Content-Type has no usable boundary.", "content-type")
        return Form(list(_multipart(request.body, boundary.encode("ascii"), limits)))
    raise PayloadError(f"The body must be {URLENCODED} or {MULTIPART}, not {mimetype or 'unspecified'}.",
                       "content-type")


def _urlencoded(body: bytes, limits: MailLimits) -> list[FormPart]:
    try:
        text = body.decode("ascii")  # percent-encoding leaves only ASCII
    except UnicodeDecodeError:
        raise PayloadError("The urlencoded body holds bytes that are not percent-encoded.", "body") from None
    try:
        # latin-1 maps every percent-decoded byte to one character, so the bytes survive exactly.
        pairs = parse_qsl(text, keep_blank_values=True, encoding="latin-1", max_num_fields=limits.max_form_parts)
    except ValueError:
        raise MailTooLargeError(f"The form has more than {limits.max_form_parts} fields.", "body") from None
    parts = []
    for name, value in pairs:
        data = value.encode("latin-1")
        field = decode(name.encode("latin-1"), "utf-8")
        if len(data) > limits.max_form_part_bytes:
            raise MailTooLargeError(f"The form field {field} is larger than {limits.max_form_part_bytes} bytes.",
                                    field)
        parts.append(FormPart(field, data))
    return parts


def _multipart(body: bytes, boundary: bytes, limits: MailLimits) -> Iterator[FormPart]:
    decoder = MultipartDecoder(boundary, max_parts=limits.max_form_parts)
    offset = 0
    current: Field | File | None = None
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            event = decoder.next_event()
        except RequestEntityTooLarge:
            raise MailTooLargeError(f"The form has more than {limits.max_form_parts} parts.", "body") from None
        except ValueError as exc:  # UnicodeDecodeError of a part header included
            raise PayloadError(f"The multipart body is malformed: {exc}", "body") from None
        if isinstance(event, NeedData):
            if offset < len(body):
                decoder.receive_data(body[offset:offset + _CHUNK])
                offset += _CHUNK
            else:
                decoder.receive_data(None)
        elif isinstance(event, (Field, File)):
            if not event.name:
                raise PayloadError("A multipart part has no name in its Content-Disposition.", "body")
            current, chunks, size = event, [], 0
        elif isinstance(event, Data) and current is not None:
            size += len(event.data)
            if size > limits.max_form_part_bytes:
                raise MailTooLargeError(
                    f"The form field {current.name} is larger than {limits.max_form_part_bytes} bytes.", current.name)
            chunks.append(event.data)
            if not event.more_data:
                yield _part(current, b"".join(chunks))
                current = None
        elif isinstance(event, Epilogue):
            return


def _part(event: Field | File, data: bytes) -> FormPart:
    mimetype, options = parse_options_header(event.headers.get("content-type"))
    filename = clean(event.filename) if isinstance(event, File) else None
    return FormPart(clean(event.name), data, filename=filename, content_type=mimetype or None,
                    charset=options.get("charset"))


def encode_multipart(parts: list[FormPart], boundary: str) -> tuple[bytes, str]:
    """``parts`` as a ``multipart/form-data`` body and its Content-Type (for ``sample``).

    :param boundary: must not occur in any part's data (samples choose a fixed one).
    """
    out = bytearray()
    for part in parts:
        disposition = f'form-data; name="{part.name}"'
        if part.filename is not None:
            disposition += f'; filename="{part.filename}"'
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if part.content_type:
            charset = f"; charset={part.charset}" if part.charset else ""
            out += f"Content-Type: {part.content_type}{charset}\r\n".encode()
        out += b"\r\n" + part.data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"{MULTIPART}; boundary={boundary}"
