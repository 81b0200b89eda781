"""Readers for helpdesk JSON: the body as an object, field values as clean text, ids, URLs, times.

Shared by every adapter. A helpdesk (or whoever forges its requests) can put any JSON value in
any field, so these readers return None or an empty value for one of the wrong type and never
raise, except ``json_object`` and ``required_id``, which raise ``PayloadError`` naming the field.
Strings come back trimmed and ``clean``; times come back as aware UTC datetimes. Reading a
provider's own shapes (which key holds the tags, what an event means) stays in its adapter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from integrations.base import InboundRequest, PayloadError
from integrations.text import clean

MAX_ID = 100  # the inbox stores ticket ids in 100 characters
NUMERIC_ID = re.compile(r"[0-9]{1,20}")  # Zendesk, Gorgias, Freshdesk and Help Scout ids are integers
_MAX_FIELD_NAME = 100
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_WHITESPACE = re.compile(r"\s")  # what str.isspace() calls whitespace, found in one scan


def json_object(request: InboundRequest) -> dict[str, Any]:
    """The body as a JSON object.

    :raise PayloadError: ("body") the body is empty, not JSON, nested too deeply, or not an object.
    """
    payload = request.json()
    if not isinstance(payload, dict):
        raise PayloadError("The body must be a JSON object.", "body")
    return payload


def peek_object(request: InboundRequest) -> dict[str, Any] | None:
    """The body as a JSON object, or None: for delivery keys, which must never fail."""
    try:
        return json_object(request)
    except PayloadError:
        return None


def as_object(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (so lookups can chain)."""
    return value if isinstance(value, dict) else {}


def text(value: Any) -> str | None:
    """A trimmed, clean string from a JSON string or integer; None for anything else or blank."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    return clean(str(value)).strip() or None


def scalar_text(value: Any) -> str | None:
    """As ``text``, and a finite JSON float too: custom attributes carry prices and ratings."""
    if isinstance(value, float):
        return str(value) if math.isfinite(value) else None
    return text(value)


def joined(*values: Any) -> str | None:
    """The values' texts joined by spaces (a first and a last name); None if none has text."""
    return " ".join(part for part in map(text, values) if part) or None


def unique_texts(values: Iterable[Any]) -> tuple[str, ...]:
    """The values' texts in order, without blanks or repeats (tag and label names)."""
    return tuple(dict.fromkeys(name for name in map(text, values) if name))


def custom_fields(value: Any, **context: Any) -> dict[str, str]:
    """A JSON object's scalar values as text under names cut to 100 characters, plus provider
    context that ``TicketEvent`` has no field for (``None`` context is left out).

    Booleans, nulls, lists and objects are left out: they are not text a person typed.
    """
    fields = {name: shown for key, item in value.items()
              if (shown := scalar_text(item)) is not None and (name := clean(str(key))[:_MAX_FIELD_NAME])
              } if isinstance(value, Mapping) else {}
    fields.update({key: shown for key, item in context.items() if (shown := scalar_text(item)) is not None})
    return fields


def required_id(value: Any, field: str, what: str, pattern: re.Pattern[str] | None = None) -> str:
    """The id at ``field`` as text: at most ``MAX_ID`` characters, and matching ``pattern`` if given.

    :param what: what the id is, for the message (e.g. "Zendesk ticket number").
    :raise PayloadError: (``field``) the id is missing or blank, too long, or of the wrong shape.
    """
    ident = text(value)
    if ident is None:
        raise PayloadError(f"The payload has no {what} ({field}).", field)
    if len(ident) > MAX_ID:
        raise PayloadError(f"{field} is longer than {MAX_ID} characters.", field)
    if pattern is not None and not pattern.fullmatch(ident):
        # e.g. an unrendered "{{ticket.id}}" from a mistyped template
        raise PayloadError(f"{field} is not a {what}: {ident[:40]!r}.", field)
    return ident


def http_url(value: Any, *, add_scheme: bool = False) -> str | None:
    """An http(s) URL with a host, fit to show agents as a link; None for anything else.

    :param add_scheme: prefix ``https://`` to a value without a scheme (placeholders such as
        Zendesk's ``{{ticket.url}}`` render as ``host/path``).
    """
    url = text(value)
    if not url or _WHITESPACE.search(url):
        return None
    if add_scheme and not _SCHEME.match(url):
        url = "https://" + url
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0  # .port raises on "host:alert(1)"
    except ValueError:
        return None
    return url if port_ok and parts.scheme in ("https", "http") and parts.hostname else None


# --- times --------------------------------------------------------------------------------


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive one is taken to be UTC already.

    :raise OverflowError: an aware moment within hours of ``datetime.min``/``max``.
    """
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def iso_time(value: Any) -> datetime | None:
    """An ISO 8601 string (``Z`` or an offset, or none: UTC) in UTC; None for anything else."""
    stamp = text(value) if isinstance(value, str) else None
    if stamp is None:
        return None
    try:
        return utc(datetime.fromisoformat(stamp))
    except (ValueError, OverflowError):
        return None


def unix_time(value: Any, *, millis: bool = False) -> datetime | None:
    """A JSON number of Unix seconds (or milliseconds) after 1970 in UTC; None for anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        return None  # "not >": NaN too
    try:
        return datetime.fromtimestamp(value / 1000 if millis else value, tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None


def timestamp(value: Any) -> datetime | None:
    """Unix seconds (a JSON number) or ISO 8601 (a string), for providers that send both."""
    return iso_time(value) if isinstance(value, str) else unix_time(value)


def received_at(request: InboundRequest) -> datetime | None:
    """When we received the request, in UTC (the fallback time of an event)."""
    return utc(request.received_at) if request.received_at else None
