"""Secrets at rest: one Fernet-encrypted JSON document per integration (or webhook subscription),
key from the config; and the signing-secret rotation both keep in that document."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app


def _fernet() -> Fernet:
    key = current_app.config["REBOUND_ENCRYPTION_KEY"]
    try:
        return Fernet(key)
    except (ValueError, TypeError) as exc:
        raise RuntimeError("REBOUND_ENCRYPTION_KEY is not a valid Fernet key (32 url-safe base64 bytes).") from exc


def encrypt_secrets(secrets: dict[str, Any]) -> str:
    """The secrets as a Fernet token (text)."""
    return _fernet().encrypt(json.dumps(secrets, sort_keys=True).encode("utf-8")).decode("ascii")


def decrypt_secrets(token: str) -> dict[str, Any]:
    """The secrets stored in ``token``.

    :raise RuntimeError: the token was encrypted with another key (the key was changed).
    """
    try:
        return json.loads(_fernet().decrypt(token.encode("ascii")))
    except InvalidToken:
        raise RuntimeError("Integration secrets cannot be decrypted: REBOUND_ENCRYPTION_KEY has changed.") from None


def with_rotated_secret(stored: dict[str, Any], new_secret: str, grace_seconds: int, now: datetime) -> dict[str, Any]:
    """``stored`` with ``new_secret`` as the signing secret; the old one stays valid for
    ``grace_seconds`` (none: it is dropped). Other entries (credentials) are kept."""
    rotated = {k: v for k, v in stored.items() if k not in ("previous_signing_secret", "previous_valid_until")}
    rotated["signing_secret"] = new_secret
    if grace_seconds > 0:
        rotated["previous_signing_secret"] = stored["signing_secret"]
        rotated["previous_valid_until"] = (now + timedelta(seconds=grace_seconds)).isoformat()
    return rotated


def valid_signing_secrets(stored: dict[str, Any], now: datetime) -> list[str]:
    """The current signing secret, and the previous one while its grace period lasts."""
    result = [stored["signing_secret"]]
    previous, until = stored.get("previous_signing_secret"), stored.get("previous_valid_until")
    if previous and until and datetime.fromisoformat(until) > now:
        result.append(previous)
    return result
