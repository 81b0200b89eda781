"""Signature helpers shared by the adapters: HMAC digests, constant-time compare, timestamps."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone

from integrations.base import SignatureError

DEFAULT_TOLERANCE = timedelta(minutes=5)
_ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}


def hmac_digest(algorithm: str, secret: str | bytes, message: bytes) -> bytes:
    """The raw HMAC of ``message`` with ``secret`` (str secrets are UTF-8)."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return hmac.new(key, message, _ALGORITHMS[algorithm]).digest()


def equals(expected: bytes | str, given: bytes | str) -> bool:
    """Constant-time comparison of two signatures."""
    a = expected.encode() if isinstance(expected, str) else expected
    b = given.encode() if isinstance(given, str) else given
    return hmac.compare_digest(a, b)


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


def check_window(timestamp: datetime, now: datetime, tolerance: timedelta = DEFAULT_TOLERANCE) -> None:
    """:raise SignatureError: the timestamp is older or newer than ``tolerance`` (a replay)."""
    if timestamp.tzinfo is None:
        timestamp = timestamp.replace(tzinfo=timezone.utc)
    if abs(now - timestamp) > tolerance:
        raise SignatureError(
            f"The signature timestamp {timestamp.isoformat()} is outside the {int(tolerance.total_seconds())} s window."
        )


def parse_unix_seconds(value: str | None, header: str) -> datetime:
    """:raise SignatureError: missing or not a number."""
    if not value:
        raise SignatureError(f"Missing {header} header.")
    try:
        return datetime.fromtimestamp(float(value), tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        raise SignatureError(f"{header} is not a Unix timestamp.") from None
