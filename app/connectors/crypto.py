"""Secrets at rest: one Fernet-encrypted JSON document per integration, key from the config."""

from __future__ import annotations

import json
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
