"""Unit tests for app.email.store: content-addressed attachment files under a tmp directory.
No app, no DB."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from app.email.store import AttachmentStore, LocalAttachmentStore, is_key
from app.errors import NotFound, PayloadTooLarge


@pytest.fixture
def store(tmp_path: Path) -> LocalAttachmentStore:
    return LocalAttachmentStore(tmp_path / "attachments", max_bytes=1000)


def test_put_writes_under_the_sha256_and_reads_back(store: LocalAttachmentStore) -> None:
    data = b"\xff\xd8 damaged box photo"
    key = store.put(data)
    assert key == hashlib.sha256(data).hexdigest()
    path = store.root / key[:2] / key[2:]
    assert path.read_bytes() == data
    assert store.get(key) == data and store.exists(key)
    assert isinstance(store, AttachmentStore)


def test_put_is_idempotent_and_leaves_no_temporary_files(store: LocalAttachmentStore) -> None:
    key = store.put(b"same")
    mtime = (store.root / key[:2] / key[2:]).stat().st_mtime_ns
    assert store.put(b"same") == key
    assert (store.root / key[:2] / key[2:]).stat().st_mtime_ns == mtime  # not rewritten
    files = [p for p in store.root.rglob("*") if p.is_file()]
    assert files == [store.root / key[:2] / key[2:]]


def test_a_truncated_file_is_replaced(store: LocalAttachmentStore) -> None:
    key = store.put(b"complete content")
    (store.root / key[:2] / key[2:]).write_bytes(b"compl")
    store.put(b"complete content")
    assert store.get(key) == b"complete content"


def test_empty_content_is_storable(store: LocalAttachmentStore) -> None:
    assert store.get(store.put(b"")) == b""


def test_size_limit(store: LocalAttachmentStore) -> None:
    store.put(b"x" * 1000)
    with pytest.raises(PayloadTooLarge):
        store.put(b"x" * 1001)
    assert not any(p.is_file() and p.stat().st_size == 1001 for p in store.root.rglob("*"))


@pytest.mark.parametrize("key", [
    "../../etc/passwd", "A" * 64, "0" * 63, "0" * 65, "", "0" * 62 + "/x", "g" * 64,
    "0" * 64 + "\n",
])
def test_keys_that_are_not_sha256_are_refused(store: LocalAttachmentStore, key: str) -> None:
    assert not is_key(key)
    assert not store.exists(key)
    with pytest.raises(NotFound):
        store.get(key)


def test_missing_key(store: LocalAttachmentStore) -> None:
    with pytest.raises(NotFound):
        store.get("0" * 64)
    assert not store.exists("0" * 64)


def test_failed_write_cleans_up(store: LocalAttachmentStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_replace(source: str, target: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        store.put(b"never lands")
    assert not [p for p in store.root.rglob("*") if p.is_file()]
