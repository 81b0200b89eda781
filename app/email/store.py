"""Content-addressed storage for attachment bytes: the key is the sha256 of the content.

The same photo sent twice is stored once, a retried webhook writes nothing new, and a key can be
checked against its content. ``AttachmentStore`` is the interface services use; ``LocalAttachmentStore``
keeps files under one directory (``root/ab/cdef…``), the default. Other backends (S3 and the like)
implement the same three methods. No app or database here: the caller records keys on its rows.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol, runtime_checkable

from app.errors import NotFound, PayloadTooLarge

__all__ = ["AttachmentStore", "LocalAttachmentStore", "is_key"]

_KEY = re.compile(r"[0-9a-f]{64}")


def is_key(value: str) -> bool:
    """Whether ``value`` is a store key (lower-case hex sha256); anything else is refused before
    it can name a path."""
    return isinstance(value, str) and _KEY.fullmatch(value) is not None


@runtime_checkable
class AttachmentStore(Protocol):
    def put(self, data: bytes, *, sync: bool = True) -> str:
        """Store ``data`` and return its key; storing the same bytes again is a no-op.

        ``sync=False`` skips waiting for the disk, for bytes that are durable elsewhere already
        (an inbound mail's raw message is in the inbox; its attachments can be cut from it again).
        """

    def get(self, key: str) -> bytes:
        """The bytes stored under ``key``; ``NotFound`` when there are none."""

    def exists(self, key: str) -> bool: ...


class LocalAttachmentStore:
    """Files under ``root``, sharded by the first two hex digits of the key.

    Writes go to a temporary file in the target directory and are renamed into place, so a reader
    never sees a half-written file and concurrent writers of the same content both succeed.
    """

    def __init__(self, root: str | os.PathLike[str], *, max_bytes: int = 25 * 1024 * 1024) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes

    def path(self, key: str) -> Path:
        if not is_key(key):
            raise NotFound("No such attachment.", details={"key": str(key)[:80]})
        return self.root / key[:2] / key[2:]

    def put(self, data: bytes, *, sync: bool = True) -> str:
        if len(data) > self.max_bytes:
            raise PayloadTooLarge(f"Attachment of {len(data)} bytes is over the limit of "
                                  f"{self.max_bytes} bytes.")
        key = hashlib.sha256(data).hexdigest()
        target = self.path(key)
        if target.exists() and target.stat().st_size == len(data):
            return key
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
                file.flush()
                if sync:
                    os.fsync(file.fileno())
            os.chmod(temporary, 0o644)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return key

    def get(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise NotFound("No such attachment.", details={"key": key}) from None

    def exists(self, key: str) -> bool:
        return is_key(key) and self.path(key).is_file()
