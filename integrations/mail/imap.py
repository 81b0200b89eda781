"""Inbound mail by IMAP polling (imapclient): fetch what is new in one folder, then mark it done.

The app keeps an ``ImapCursor`` (UIDVALIDITY, last UID seen) per mailbox and calls, under its
one-poller-per-mailbox lock:

1. ``poll(settings, cursor)`` → ``PollResult``: the raw bytes of up to ``batch`` messages with a UID
   above the cursor, the UIDs of messages too large to fetch (``oversized``, with their size: the
   app records them as rejected), and the cursor to store once those are committed.
2. ``mark_processed(settings, uids, uidvalidity=…)`` after its commit: ``\\Seen`` and the
   ``$Rebound`` keyword are added, or (``processed_action="move"``) the messages are moved to
   ``processed_folder``. Nothing is ever deleted before the app has stored the message. Mark
   the ``oversized`` UIDs too once their rejection is recorded, so no later re-scan offers them.

RFC 3501 voids every stored UID when a folder's UIDVALIDITY changes (the folder was recreated or
rebuilt). ``poll`` then starts again from UID 1, and what was already processed is skipped
because it carries ``$Rebound`` (flag mode) or is no longer in the folder (move mode); the app
dedupes the rest by Message-ID. In flag mode every search excludes ``$Rebound``, so a message that
was fetched but never marked is fetched again only after such a reset.

Polling opens the folder read-only and fetches with ``BODY.PEEK[]``, so it changes nothing on the
server. Every socket operation has ``settings.timeout``. Failures raise ``MailboxError``: its
``retryable`` says whether trying again later may help (network, timeouts, server trouble) or
the settings must change first (``MailboxAuthError``: refused login; ``MailboxConfigError``:
untrusted certificate, missing folder, no STARTTLS).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Literal

from imapclient import IMAPClient, SocketTimeout
from imapclient import exceptions as imap_errors

from integrations.base import IntegrationError

Security = Literal["tls", "starttls", "none"]
ProcessedAction = Literal["flag", "move"]

PROCESSED_KEYWORD = b"$Rebound"
SEEN = b"\\Seen"
DEFAULT_MAX_BYTES = 25 * 1024 * 1024  # the common provider limit for one message
DEFAULT_BATCH = 50


class MailboxError(IntegrationError):
    """Polling or marking failed; ``retryable`` says whether trying again later may succeed."""

    retryable = True


class MailboxConfigError(MailboxError):
    """The server refuses these settings (missing folder, untrusted certificate, no STARTTLS):
    retrying won't help until they change."""

    retryable = False


class MailboxAuthError(MailboxConfigError):
    """The server refused the username or password."""


class UidValidityChanged(MailboxError):
    """The folder's UIDVALIDITY differs from the one the UIDs came with: they name other
    messages now. Drop them and poll again (``poll`` resets the cursor)."""

    retryable = False


@dataclass(frozen=True)
class ImapSettings:
    """One mailbox folder to poll, and what to do with a message once the app has stored it."""

    host: str
    username: str
    password: str = field(repr=False)
    port: int | None = None  # None: 993 for tls, 143 otherwise
    security: Security = "tls"
    folder: str = "INBOX"
    processed_action: ProcessedAction = "flag"
    processed_folder: str = "Rebound/Processed"
    timeout: float = 30.0  # seconds, for the connection and each command
    ca_file: str | None = None  # trust this CA (a self-signed server) instead of the system's
    verify: bool = True  # False accepts any certificate: local testing only

    def __post_init__(self) -> None:
        if self.security not in ("tls", "starttls", "none"):
            raise ValueError(f"security must be tls, starttls or none, not {self.security!r}")
        if self.processed_action not in ("flag", "move"):
            raise ValueError(f"processed_action must be flag or move, not {self.processed_action!r}")
        if self.processed_action == "move" and (not self.processed_folder or self.processed_folder == self.folder):
            raise ValueError("processed_folder must name a folder other than the polled one")
        if self.port is not None and not 0 < self.port < 65536:
            raise ValueError(f"port must be between 1 and 65535, not {self.port}")
        if not self.timeout > 0:
            raise ValueError("timeout must be positive")

    @property
    def effective_port(self) -> int:
        return self.port or (993 if self.security == "tls" else 143)


@dataclass(frozen=True)
class ImapCursor:
    """Where polling stopped: UIDs are only meaningful with the UIDVALIDITY they came with."""

    uidvalidity: int
    last_uid: int = 0


@dataclass(frozen=True)
class PollResult:
    """What one ``poll`` found, in UID order.

    ``messages``: (UID, raw RFC 5322 bytes). ``oversized``: (UID, size in bytes) of messages
    over ``max_bytes``, not fetched. ``cursor``: store it once ``messages`` are committed.
    ``more``: further new messages wait beyond this batch (poll again now).
    """

    messages: list[tuple[int, bytes]]
    oversized: list[tuple[int, int]]
    cursor: ImapCursor
    uidvalidity_changed: bool
    more: bool = False


def poll(
    settings: ImapSettings,
    cursor: ImapCursor | None,
    *,
    batch: int = DEFAULT_BATCH,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> PollResult:
    """Fetch up to ``batch`` unprocessed messages with a UID above ``cursor`` (all of the
    folder's unprocessed ones when ``cursor`` is None or its UIDVALIDITY is no longer current).

    :raise MailboxError: see the module docstring.
    """
    if batch < 1 or max_bytes < 1:
        raise ValueError("batch and max_bytes must be positive")
    with _session(settings) as client:
        selected = _select(client, settings.folder, readonly=True)
        uidvalidity = int(selected[b"UIDVALIDITY"])
        changed = cursor is not None and cursor.uidvalidity != uidvalidity
        last_uid = cursor.last_uid if cursor is not None and not changed else 0
        criteria: list[str] = []
        if last_uid:
            # "n:*" always matches the highest UID, even below n: filtered out below.
            criteria += ["UID", f"{last_uid + 1}:*"]
        if settings.processed_action == "flag":
            criteria += ["UNKEYWORD", PROCESSED_KEYWORD.decode()]
        found = sorted(uid for uid in client.search(criteria or ["ALL"]) if uid > last_uid)
        chosen, more = found[:batch], len(found) > batch
        if not chosen:
            return PollResult([], [], ImapCursor(uidvalidity, last_uid), changed)
        sizes = {uid: int(data.get(b"RFC822.SIZE", 0)) for uid, data in client.fetch(chosen, ["RFC822.SIZE"]).items()}
        oversized = [(uid, sizes[uid]) for uid in chosen if sizes.get(uid, 0) > max_bytes]
        wanted = [uid for uid in chosen if uid in sizes and sizes[uid] <= max_bytes]
        messages: list[tuple[int, bytes]] = []
        if wanted:
            fetched = client.fetch(wanted, ["BODY.PEEK[]"])
            # A message expunged by someone else since the search simply isn't there.
            messages = [(uid, bytes(fetched[uid][b"BODY[]"])) for uid in wanted if b"BODY[]" in fetched.get(uid, {})]
        return PollResult(messages, oversized, ImapCursor(uidvalidity, chosen[-1]), changed, more)


def mark_processed(settings: ImapSettings, uids: Sequence[int], *, uidvalidity: int | None = None) -> None:
    """Mark ``uids`` of ``settings.folder`` as done: ``\\Seen`` + ``$Rebound``, then, in move
    mode, move them to ``processed_folder`` (created if missing; MOVE where the server has it,
    else COPY, ``\\Deleted`` and expunge of just those UIDs where UIDPLUS allows).

    Pass the ``uidvalidity`` the UIDs came with (``PollResult.cursor.uidvalidity``): if the
    folder's has changed since, nothing is marked.

    :raise UidValidityChanged: the UIDs are stale.
    :raise MailboxError: see the module docstring.
    """
    uids = sorted(set(uids))
    if not uids:
        return
    with _session(settings) as client:
        if settings.processed_action == "move":
            _ensure_folder(client, settings.processed_folder)
        selected = _select(client, settings.folder, readonly=False)
        if uidvalidity is not None and int(selected[b"UIDVALIDITY"]) != uidvalidity:
            raise UidValidityChanged(
                f"UIDVALIDITY of {settings.folder!r} is now {int(selected[b'UIDVALIDITY'])}, not {uidvalidity}"
            )
        # The keyword goes on first in both modes: a message moved back by hand stays skipped.
        client.add_flags(uids, [SEEN, PROCESSED_KEYWORD], silent=True)
        if settings.processed_action == "move":
            if client.has_capability("MOVE"):
                client.move(uids, settings.processed_folder)
            else:
                client.copy(uids, settings.processed_folder)
                client.delete_messages(uids, silent=True)
                if client.has_capability("UIDPLUS"):
                    client.uid_expunge(uids)
                else:  # may also expunge others' \Deleted mail: what a plain IMAP4rev1 server allows
                    client.expunge()


def tls_context(ca_file: str | None, verify: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


@contextmanager
def _session(settings: ImapSettings) -> Iterator[IMAPClient]:
    """A logged-in client; logged out afterwards. Library and socket errors leave as ``MailboxError``."""
    client: IMAPClient | None = None
    where = f"{settings.host}:{settings.effective_port}"
    try:
        context = tls_context(settings.ca_file, settings.verify) if settings.security != "none" else None
        client = IMAPClient(
            settings.host,
            settings.effective_port,
            ssl=settings.security == "tls",
            ssl_context=context,
            timeout=SocketTimeout(connect=settings.timeout, read=settings.timeout),
        )
        if settings.security == "starttls":
            client.starttls(context)
        try:
            client.login(settings.username, settings.password)
        except imap_errors.LoginError as exc:
            # RFC 5530 [UNAVAILABLE]: the server can't check credentials right now.
            if "UNAVAILABLE" in str(exc).upper():
                raise MailboxError(f"{where}: login temporarily unavailable: {exc}") from None
            raise MailboxAuthError(f"{where}: login refused for {settings.username!r}: {exc}") from None
        yield client
    except MailboxError:
        raise
    except ssl.SSLCertVerificationError as exc:
        raise MailboxConfigError(f"{where}: certificate not trusted: {exc.verify_message or exc}") from None
    except imap_errors.CapabilityError as exc:
        raise MailboxConfigError(f"{where}: {exc}") from None
    except (socket.timeout, TimeoutError):
        raise MailboxError(f"{where}: timed out after {settings.timeout:g} s") from None
    except (OSError, imap_errors.IMAPClientAbortError, imap_errors.ProtocolError) as exc:
        raise MailboxError(f"{where}: connection failed: {type(exc).__name__}: {exc}") from None
    except imap_errors.IMAPClientError as exc:  # a NO or BAD answer to a command
        raise MailboxError(f"{where}: the server refused a command: {exc}") from None
    finally:
        if client is not None:
            _close(client)


def _close(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:  # noqa: BLE001 - a connection already broken: just drop the socket
        with suppress(Exception):
            client.shutdown()


def _select(client: IMAPClient, folder: str, *, readonly: bool) -> dict:
    try:
        return client.select_folder(folder, readonly=readonly)
    except imap_errors.IMAPClientAbortError:
        raise
    except imap_errors.IMAPClientError as exc:
        raise MailboxConfigError(f"cannot open folder {folder!r}: {exc}") from None


def _ensure_folder(client: IMAPClient, folder: str) -> None:
    if client.folder_exists(folder):
        return
    try:
        client.create_folder(folder)
    except imap_errors.IMAPClientAbortError:
        raise
    except imap_errors.IMAPClientError as exc:
        if not client.folder_exists(folder):  # else another poller created it just now
            raise MailboxConfigError(f"cannot create folder {folder!r}: {exc}") from None
