"""Generic: any system that sends Rebound's own ticket JSON, signed the Standard Webhooks way.

Signing follows Standard Webhooks (standardwebhooks.com): headers ``webhook-id``,
``webhook-timestamp`` (Unix seconds) and ``webhook-signature`` (``v1,<base64 HMAC-SHA256>``,
several separated by spaces during a key rotation), over ``"{id}.{timestamp}.{body}"``, keyed by
the base64 part of a ``whsec_…`` secret. The ``standardwebhooks`` package computes the
signature; the comparison and the five-minute window are done here against the ``now`` we are
given, because ``Webhook.verify`` reads the wall clock itself and would make ``now`` a lie.

The body is documented in docs/setup/generic.md::

    {"type": "ticket.created" | "message.created" | "ticket.updated",
     "ticket": {"id", "url", "subject", "tags", "custom_fields", "language"},
     "requester": {"email", "name"},
     "message": {"id", "text", "author_role"},
     "occurred_at": "2025-11-25T10:00:00Z"}

Only ``type`` and ``ticket.id`` are required; this is our format, so wrong types are refused
(400 naming the field) rather than guessed at.

The other direction, ``send_event``, POSTs one of Rebound's case events to a merchant's
endpoint with the same Standard Webhooks headers (the app's webhook subscriptions).
"""

from __future__ import annotations

import binascii
import json
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, ClassVar, get_args

import requests
from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError

from integrations.base import (
    AuthorRole,
    DeliveryResult,
    EventType,
    Handshake,
    InboundRequest,
    PayloadError,
    SignatureError,
    TicketEvent,
    body_hash_key,
    classify,
    error_excerpt,
    key_from_id,
    response_retry_after,
    register,
)
from integrations.payload import MAX_ID, iso_time, json_object, utc
from integrations.signing import check_window, decode_base64, equals, parse_unix_time, require_any
from integrations.text import clean

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"

_TYPES: tuple[EventType, ...] = ("ticket.created", "message.created", "ticket.updated")
_ROLES: tuple[AuthorRole, ...] = tuple(role for role in get_args(AuthorRole) if role != "unknown")


class GenericAdapter:
    """Rebound's own webhook format, for systems without a dedicated adapter."""

    kind: ClassVar[str] = "generic"
    #: A Standard Webhooks secret, ``whsec_`` followed by base64 (Rebound generates one).
    secret_names: ClassVar[Sequence[str]] = ("signing_secret",)

    def verify(self, request: InboundRequest, secrets: Sequence[str], now: datetime) -> None:
        msg_id = request.header(ID_HEADER)
        stamp = request.header(TIMESTAMP_HEADER)
        header = request.header(SIGNATURE_HEADER)
        if not (msg_id and stamp and header):
            raise SignatureError("Missing webhook-id, webhook-timestamp or webhook-signature header.")
        sent_at = parse_unix_time(stamp, "webhook-timestamp")
        check_window(sent_at, now)
        try:
            text = request.body.decode("utf-8")  # the package signs text, as the specification's senders do
        except UnicodeDecodeError:
            raise SignatureError("The body is not UTF-8, so no Standard Webhooks signature fits it.") from None
        # "v1,<base64>" entries separated by spaces; other versions (e.g. v1a) are not ours to check.
        given = [signature for version, _, value in (entry.partition(",") for entry in header.split())
                 if version == "v1" and (signature := decode_base64(value)) is not None]
        if not given:
            raise SignatureError("webhook-signature has no v1 signature.")

        def matches(secret: str) -> bool:
            expected = _expected(secret, msg_id, sent_at, text)
            return expected is not None and any(equals(expected, signature) for signature in given)

        require_any(secrets, matches, "Standard Webhooks")

    def handshake(self, request: InboundRequest, secrets: Sequence[str]) -> Handshake | None:
        return None

    def delivery_key(self, request: InboundRequest) -> str:
        """``webhook-id``: the specification keeps it across retries of one message."""
        return _message_id(request) or body_hash_key(request)

    def parse(self, request: InboundRequest) -> TicketEvent:
        data = json_object(request)
        event_type = data.get("type")
        if event_type not in _TYPES:
            raise PayloadError(f"type must be one of {', '.join(_TYPES)}.", "type")
        ticket = _section(data, "ticket", required=True)
        requester = _section(data, "requester")
        message = _section(data, "message")

        ticket_id = _string(ticket, "id", "ticket.id", ids=True)
        if ticket_id is None:
            raise PayloadError("ticket.id is required.", "ticket.id")
        role = message.get("author_role", "unknown")
        if role is not None and role not in _ROLES and role != "unknown":
            raise PayloadError(f"message.author_role must be one of {', '.join(_ROLES)}.", "message.author_role")
        text = _string(message, "text", "message.text")
        return TicketEvent(
            provider=self.kind,
            ticket_id=ticket_id,
            event_type=event_type,
            ticket_url=_url(ticket),
            requester_email=_string(requester, "email", "requester.email"),
            requester_name=_string(requester, "name", "requester.name"),
            subject=_string(ticket, "subject", "ticket.subject"),
            message=text,
            message_id=_string(message, "id", "message.id", ids=True),
            author_role=role or "unknown",
            tags=_tags(ticket.get("tags")),
            custom_fields=_custom_fields(ticket.get("custom_fields")),
            language=_string(ticket, "language", "ticket.language"),
            occurred_at=_occurred_at(data.get("occurred_at")),
            external_event_id=_message_id(request),
        )

    def sign(self, body: bytes, secret: str, now: datetime, delivery_id: str) -> dict[str, str]:
        """Standard Webhooks headers for ``body``, signed by the ``standardwebhooks`` package."""
        # The package stamps ``now.replace(tzinfo=utc)``: give it UTC, or another offset shifts it.
        moment = utc(now)
        try:
            webhook = Webhook(secret)
        except (ValueError, EmptyWebhookSecretError):
            # Not a whsec_ key (tests sign with wrong secrets): sign with its raw bytes, which
            # verify() never accepts, rather than fail to produce a request at all.
            webhook = Webhook(secret.encode() or b"\0")
        signature = webhook.sign(delivery_id, moment, body.decode("utf-8", "replace"))
        return {
            "Content-Type": "application/json",
            "webhook-id": delivery_id,
            "webhook-timestamp": str(int(moment.timestamp())),
            "webhook-signature": signature,
        }

    def sample(self) -> bytes:
        """A new ticket in which a customer asks to return an item, in the documented format."""
        payload = {
            "type": "ticket.created",
            "ticket": {
                "id": "T-5012",
                "url": "https://support.outfitters.example/tickets/T-5012",
                "subject": "Return for order #1001",
                "tags": ["returns", "web"],
                "custom_fields": {"order_number": "1001", "channel": "email"},
                "language": "en",
            },
            "requester": {"email": "dana.whitfield@example.com", "name": "Dana Whitfield"},
            "message": {
                "id": "M-88231",
                "text": "Hi, I'd like to return the hiking boots from order #1001 - they are a size too small. "
                        "Can you send me a return label?\n\nThanks,\nDana",
                "author_role": "customer",
            },
            "occurred_at": "2025-11-25T10:00:00Z",
        }
        return json.dumps(payload, indent=2).encode()


def _message_id(request: InboundRequest) -> str | None:
    return key_from_id(request.header(ID_HEADER))


def _expected(secret: str, msg_id: str, sent_at: datetime, text: str) -> bytes | None:
    """The v1 signature for this secret, or None when the secret is not a valid whsec_ key."""
    try:
        version_and_signature = Webhook(secret).sign(msg_id, sent_at, text)
    except (ValueError, binascii.Error, EmptyWebhookSecretError, RuntimeError, UnicodeError):
        return None  # a misconfigured secret must not turn a signature check into a 500
    return decode_base64(version_and_signature.partition(",")[2])


def _section(data: dict[str, Any], name: str, required: bool = False) -> dict[str, Any]:
    value = data.get(name)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise PayloadError(f"{name} must be an object.", name)
    return value


def _string(section: dict[str, Any], key: str, field: str, ids: bool = False) -> str | None:
    """A trimmed string (ids may be integers too); None when absent or blank."""
    value = section.get(key)
    if value is None:
        return None
    if ids and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise PayloadError(f"{field} must be a string.", field)
    value = clean(value).strip()  # no NUL or lone surrogate reaches the database
    if ids and len(value) > MAX_ID:
        raise PayloadError(f"{field} is longer than {MAX_ID} characters.", field)
    return value or None


def _url(ticket: dict[str, Any]) -> str | None:
    url = _string(ticket, "url", "ticket.url")
    if url is not None and not url.startswith(("https://", "http://")):
        raise PayloadError("ticket.url must be an http(s) URL.", "ticket.url")
    return url


def _tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
        raise PayloadError("ticket.tags must be a list of strings.", "ticket.tags")
    return tuple(dict.fromkeys(tag.strip() for tag in value if tag.strip()))


def _custom_fields(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PayloadError("ticket.custom_fields must be an object.", "ticket.custom_fields")
    fields: dict[str, str] = {}
    for key, item in value.items():
        if item is None:
            continue
        if isinstance(item, bool):
            fields[key] = "true" if item else "false"
        elif isinstance(item, (str, int, float)):
            fields[key] = str(item).strip()
        else:
            raise PayloadError(f"ticket.custom_fields.{key} must be a string, number or boolean.",
                               "ticket.custom_fields")
    return fields


def _occurred_at(value: Any) -> datetime | None:
    """RFC 3339 with an offset; a time without one is taken as UTC."""
    if value is None:
        return None
    moment = iso_time(value)
    if moment is None:
        raise PayloadError("occurred_at must be an ISO 8601 date and time.", "occurred_at")
    return moment


# --- outgoing event webhooks ---------------------------------------------------------------

EVENT_USER_AGENT = "Rebound-Webhooks/1"
EVENT_TIMEOUT = 10.0


def sign_event(body: bytes, secrets: Sequence[str], message_id: str, now: datetime) -> dict[str, str]:
    """Standard Webhooks headers for ``body``: one ``v1,…`` signature per secret (current first;
    a rotated-out secret is still signed with during its grace period, so receivers can switch).

    :raise ValueError: no secret, or one that is not a ``whsec_`` base64 key.
    """
    moment = utc(now)  # Webhook.sign stamps ``replace(tzinfo=utc)``: hand it UTC
    text = body.decode("utf-8")
    signatures = []
    for secret in secrets:
        # Strictly whsec_ + base64: the package's lenient decoding would sign with whatever
        # bytes survive a typo, and the receiver would reject every delivery without saying why.
        if not secret.startswith("whsec_") or not decode_base64(secret[len("whsec_"):]):
            raise ValueError("The signing secret is not whsec_ followed by base64.")
        try:
            signatures.append(Webhook(secret).sign(message_id, moment, text))
        except (ValueError, EmptyWebhookSecretError, RuntimeError) as exc:  # binascii.Error is a ValueError
            raise ValueError(f"The signing secret is not a whsec_ key ({type(exc).__name__}).") from None
    if not signatures:
        raise ValueError("No signing secret.")
    return {
        "Content-Type": "application/json",
        "User-Agent": EVENT_USER_AGENT,
        ID_HEADER: message_id,
        TIMESTAMP_HEADER: str(int(moment.timestamp())),
        SIGNATURE_HEADER: " ".join(signatures),
    }


def send_event(url: str, body: bytes, secrets: Sequence[str], message_id: str, session: requests.Session, *,
               timeout: float = EVENT_TIMEOUT, now: datetime | None = None) -> DeliveryResult:
    """POST one event ``body`` (JSON bytes) to a merchant's ``url``, signed; never raises.

    ``message_id`` is the Standard Webhooks ``webhook-id``: the same for every retry of one
    event, so the receiver can drop duplicates. 2xx → delivered; 408, 429, 5xx, timeouts and
    connection errors → retry (``Retry-After`` honoured); other answers, redirects included
    (not followed: the URL was checked, where it redirects to was not) → permanent.
    """
    try:
        headers = sign_event(body, secrets, message_id, now or datetime.now(timezone.utc))
    except (ValueError, UnicodeDecodeError) as exc:
        return DeliveryResult("permanent", None, 0.0, error=error_excerpt(str(exc)), requests_made=0)
    started = time.monotonic()
    try:
        response = session.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False)
    except Exception as exc:  # noqa: BLE001 - classify tells transient transport errors from the rest
        return classify(exc, latency_ms=_elapsed_ms(started))
    latency = _elapsed_ms(started)
    if response.status_code == 408:  # Request Timeout: the receiver was slow, not the request wrong
        return DeliveryResult("retry", 408, latency, retry_after=response_retry_after(response),
                              error=error_excerpt(f"HTTP 408: {response.text}"))
    return classify(response, latency_ms=latency)


def _elapsed_ms(started: float) -> float:
    return (time.monotonic() - started) * 1000.0


register(GenericAdapter())
