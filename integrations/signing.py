"""Signature helpers shared by the adapters: HMAC digests, constant-time compare, encodings,
signed timestamps, and the shared secret of helpdesks that sign nothing."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import ClassVar

from integrations.base import Handshake, InboundRequest, SignatureError, body_hash_key
from integrations.payload import iso_time, unix_time, utc

DEFAULT_TOLERANCE = timedelta(minutes=5)
SECRET_HEADER = "x-rebound-secret"
_ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}
_MAX_STAMP_DIGITS = 16  # milliseconds until the year 2286; also bounds int() on a forged header


def hmac_digest(algorithm: str, secret: str | bytes, message: bytes) -> bytes:
    """The raw HMAC of ``message`` with ``secret`` (str secrets are UTF-8)."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return hmac.new(key, message, _ALGORITHMS[algorithm]).digest()


def equals(expected: bytes | str, given: bytes | str) -> bool:
    """Constant-time comparison of two signatures."""
    a = expected.encode() if isinstance(expected, str) else expected
    b = given.encode() if isinstance(given, str) else given
    return hmac.compare_digest(a, b)


def encode_base64(raw: bytes) -> str:
    """Standard base64 as text, the form signature headers carry."""
    return base64.b64encode(raw).decode("ascii")


def decode_base64(value: str) -> bytes | None:
    """Strict base64, or None when ``value`` is not base64 (a forged header is not an error of ours)."""
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


def decode_hex(value: str) -> bytes | None:
    try:
        return bytes.fromhex(value.strip())
    except ValueError:
        return None


def decode_prefixed_hex(header: str, algorithm: str) -> bytes | None:
    """The digest of an ``<algorithm>=<hex>`` header (``sha1=…``), or None for any other form,
    an empty digest included."""
    name, _, digest = header.partition("=")
    return (decode_hex(digest) or None) if name.strip().lower() == algorithm else None


def read_prefixed_hex(request: InboundRequest, header: str, algorithm: str, hint: str = "") -> bytes:
    """The digest in an ``<algorithm>=<hex>`` signature header (GitHub's ``X-Hub-Signature`` form).

    :param hint: why the header may be missing, added to that message.
    :raise SignatureError: the header is missing, or not of that form.
    """
    value = request.header(header)
    if not value:
        raise SignatureError(f"Missing {header} header{f' ({hint})' if hint else ''}.")
    given = decode_prefixed_hex(value, algorithm)
    if given is None:
        raise SignatureError(f"{header} is not {algorithm}=<hex>.")
    return given


def prefixed_hex(algorithm: str, secret: str, message: bytes) -> str:
    """``<algorithm>=<hex HMAC>``, the value ``read_prefixed_hex`` reads (for ``sign``)."""
    return f"{algorithm}={hmac_digest(algorithm, secret, message).hex()}"


def require_any(secrets: Sequence[str], matches: Callable[[str], bool], what: str) -> None:
    """Pass when ``matches(secret)`` holds for one of ``secrets`` (current, then rotated-out).

    :raise SignatureError: no secret is configured, or none matches.
    """
    usable = [s for s in secrets if s]
    if not usable:
        # Never skip the check because no secret was set: that would be an open door.
        raise SignatureError(f"No {what} secret is configured for this integration.")
    if not any(matches(secret) for secret in usable):
        raise SignatureError(f"The {what} signature does not match.")


def require_hmac(secrets: Sequence[str], algorithm: str, message: bytes, given: bytes | None, what: str) -> None:
    """Pass when ``given`` is the HMAC of ``message`` with one of ``secrets``; a ``given`` of
    None (an undecodable header) matches none.

    :raise SignatureError: no secret is configured, or none matches.
    """
    require_any(secrets, lambda secret: given is not None and equals(hmac_digest(algorithm, secret, message), given),
                what)


def verify_shared_secret(request: InboundRequest, secrets: Sequence[str], what: str) -> None:
    """Accept ``X-Rebound-Secret: <secret>`` or HTTP Basic auth whose password is the secret.

    For helpdesks that sign nothing (Gorgias, Freshdesk). Compared in constant time, on
    SHA-256 digests so the comparison does not reveal the secret's length either.

    :raise SignatureError: neither credential was sent, no secret is configured, or none matches.
    """
    candidates: list[str] = []
    if header := (request.header(SECRET_HEADER) or "").strip():
        candidates.append(header)
    authorization = (request.header("authorization") or "").strip()
    if authorization[:6].lower() == "basic ":
        decoded = decode_base64(authorization[6:])
        if decoded is not None:
            _, colon, password = decoded.decode("utf-8", "replace").partition(":")
            if colon and password:
                candidates.append(password)
    if not candidates:
        raise SignatureError(f"Missing {SECRET_HEADER} header or Basic auth for {what}.")
    given = [hashlib.sha256(candidate.encode("utf-8")).digest() for candidate in candidates]

    def matches(secret: str) -> bool:
        expected = hashlib.sha256(secret.encode("utf-8")).digest()
        return any([equals(expected, digest) for digest in given])  # a list: no early exit

    require_any(secrets, matches, what)


def shared_secret_headers(secret: str) -> dict[str, str]:
    """The headers a helpdesk set up with our shared secret sends (it signs nothing)."""
    return {"Content-Type": "application/json", "X-Rebound-Secret": secret}


def check_window(timestamp: datetime, now: datetime, tolerance: timedelta = DEFAULT_TOLERANCE) -> None:
    """:raise SignatureError: the timestamp is older or newer than ``tolerance`` (a replay).

    A naive ``timestamp`` or ``now`` is taken to be UTC.
    """
    timestamp, now = utc(timestamp), utc(now)
    if abs(now - timestamp) > tolerance:
        raise SignatureError(
            f"The signature timestamp {timestamp.isoformat()} is outside the {int(tolerance.total_seconds())} s window."
        )


def parse_unix_time(value: str | None, header: str, *, millis: bool = False) -> datetime:
    """A signed timestamp header of whole Unix seconds (or milliseconds), ASCII digits only.

    :raise SignatureError: missing, not digits, or out of range.
    """
    if not value:
        raise SignatureError(f"Missing {header} header.")
    unit = "milliseconds" if millis else "seconds"
    moment = None
    if value.isascii() and value.isdigit() and len(value) <= _MAX_STAMP_DIGITS:
        moment = unix_time(int(value), millis=millis)
    if moment is None:
        raise SignatureError(f"{header} is not a Unix timestamp in {unit}.")
    return moment


def parse_iso_time(value: str | None, header: str) -> datetime:
    """A signed timestamp header in ISO 8601 (without an offset: UTC).

    :raise SignatureError: missing or not an ISO 8601 time.
    """
    if not value:
        raise SignatureError(f"Missing {header} header.")
    moment = iso_time(value)
    if moment is None:
        raise SignatureError(f"{header} is not an ISO-8601 time.")
    return moment


class SharedSecretWebhook:
    """The inbound half shared by helpdesks that sign nothing (Gorgias, Freshdesk): the call
    carries our secret, there is no challenge, and no delivery id (retries resend the same
    body, so its hash is the key). Subclasses name the ``vendor`` for error messages."""

    vendor: ClassVar[str]
    secret_names: ClassVar[Sequence[str]] = ("shared_secret",)

    def verify(self, request: InboundRequest, secrets: Sequence[str], now: datetime) -> None:
        """:raise SignatureError: no secret sent, none configured, or none matches."""
        verify_shared_secret(request, secrets, self.vendor)

    def handshake(self, request: InboundRequest, secrets: Sequence[str]) -> Handshake | None:
        return None

    def delivery_key(self, request: InboundRequest) -> str:
        return body_hash_key(request)

    def sign(self, body: bytes, secret: str, now: datetime, delivery_id: str) -> dict[str, str]:
        """The headers such a helpdesk sends when set up with our secret."""
        return shared_secret_headers(secret)
