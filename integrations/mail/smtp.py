"""Outbound mail over SMTP (smtplib): ``send(message, settings)`` → one ``DeliveryResult``.

``send`` never raises. It answers ``delivered`` when the server accepted the message for at least
one recipient; ``retry`` for what may pass later — a 4xx reply (greylisting, a full queue, a
temporary auth failure), a timeout, a refused or dropped connection; ``permanent`` for what
won't until something changes — a 5xx reply, refused credentials, an untrusted certificate, a
server without the STARTTLS or AUTH the settings ask for, a message smtplib cannot send (no
recipient). ``status_code`` holds the SMTP reply code that decided (250 when delivered) and
``external_id`` the message's Message-ID.

``security``: ``tls`` connects with TLS (port 465), ``starttls`` upgrades a plain connection
(port 587) and fails rather than send in clear text if the server doesn't offer it, ``none``
(port 25) is for a relay on the same host or network. Certificates are checked against the
system's CAs, or ``ca_file``; ``verify=False`` (local testing only) accepts any.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Literal

from integrations.base import DeliveryResult, error_excerpt

Security = Literal["tls", "starttls", "none"]


@dataclass(frozen=True)
class SmtpSettings:
    """An SMTP server to send through, and how to log in (no login when ``username`` is None)."""

    host: str
    port: int | None = None  # None: 465 for tls, 587 for starttls, 25 for none
    security: Security = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0  # seconds, for the connection and each command
    local_hostname: str | None = None  # the EHLO name; None: this host's FQDN
    ca_file: str | None = None  # trust this CA (a self-signed server) instead of the system's
    verify: bool = True  # False accepts any certificate: local testing only

    def __post_init__(self) -> None:
        if self.security not in ("tls", "starttls", "none"):
            raise ValueError(f"security must be tls, starttls or none, not {self.security!r}")
        if self.port is not None and not 0 < self.port < 65536:
            raise ValueError(f"port must be between 1 and 65535, not {self.port}")
        if not self.timeout > 0:
            raise ValueError("timeout must be positive")

    @property
    def effective_port(self) -> int:
        return self.port or {"tls": 465, "starttls": 587, "none": 25}[self.security]


def send(
    message: EmailMessage,
    settings: SmtpSettings,
    *,
    envelope_from: str | None = None,
    recipients: Sequence[str] | None = None,
) -> DeliveryResult:
    """Send ``message``; never raises.

    ``envelope_from`` (MAIL FROM) defaults to the message's Sender or From, ``recipients`` (RCPT
    TO) to its To, Cc and Bcc; a Bcc header is never transmitted.
    """
    started = time.perf_counter()

    def result(outcome, code: int | None, error: str | None = None) -> DeliveryResult:
        return DeliveryResult(
            outcome=outcome,
            status_code=code,
            latency_ms=(time.perf_counter() - started) * 1000,
            external_id=message.get("Message-ID"),
            error=error_excerpt(error),
        )

    connection: smtplib.SMTP | None = None
    try:
        connection = _connect(settings)
        if settings.username:
            connection.login(settings.username, settings.password or "")
        refused = connection.send_message(
            message, from_addr=envelope_from, to_addrs=list(recipients) if recipients is not None else None
        )
        # Some recipients refused, others accepted: the message went out, and sending it again
        # would duplicate it for those, so it counts as delivered with the refusals noted.
        note = "; ".join(f"{rcpt}: {code} {_text(text)}" for rcpt, (code, text) in refused.items()) or None
        return result("delivered", 250, f"refused recipients: {note}" if note else None)
    except smtplib.SMTPRecipientsRefused as exc:  # every recipient refused, or there were none
        if not exc.recipients:
            return result("permanent", None, "the message has no recipients")
        codes = [code for code, _text_ in exc.recipients.values()]
        detail = "; ".join(f"{rcpt}: {code} {_text(text)}" for rcpt, (code, text) in exc.recipients.items())
        permanent = any(_permanent(code) for code in codes)
        return result("permanent" if permanent else "retry", max(codes, default=None), f"recipients refused: {detail}")
    except smtplib.SMTPNotSupportedError as exc:  # no STARTTLS or AUTH offered
        return result("permanent", None, f"{type(exc).__name__}: {exc}")
    except smtplib.SMTPResponseException as exc:  # a reply code: auth, sender, data, greeting
        return result(
            "permanent" if _permanent(exc.smtp_code) else "retry",
            exc.smtp_code,
            f"{type(exc).__name__}: {exc.smtp_code} {_text(exc.smtp_error)}",
        )
    except smtplib.SMTPServerDisconnected as exc:
        return result("retry", None, f"{type(exc).__name__}: {exc}")
    except ssl.SSLCertVerificationError as exc:
        return result("permanent", None, f"certificate not trusted: {exc.verify_message or exc}")
    except (socket.timeout, TimeoutError):
        return result("retry", None, f"timed out after {settings.timeout:g} s")
    except OSError as exc:  # refused, reset, unreachable, DNS, a TLS handshake cut short
        return result("retry", None, f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 - the contract: an outcome, never an exception
        # smtplib.SMTPException without a code (no AUTH mechanism in common, …), ValueError
        # for a message without recipients or with two From headers: nothing a retry fixes.
        return result("permanent", None, f"{type(exc).__name__}: {exc}")
    finally:
        if connection is not None:
            _close(connection)


def _connect(settings: SmtpSettings) -> smtplib.SMTP:
    context = ssl.create_default_context(cafile=settings.ca_file)
    if not settings.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    host, port, timeout, name = settings.host, settings.effective_port, settings.timeout, settings.local_hostname
    if settings.security == "tls":
        return smtplib.SMTP_SSL(host, port, local_hostname=name, timeout=timeout, context=context)
    connection = smtplib.SMTP(host, port, local_hostname=name, timeout=timeout)
    try:
        if settings.security == "starttls":
            connection.starttls(context=context)  # raises SMTPNotSupportedError if not offered
            connection.ehlo()
    except BaseException:
        _close(connection)
        raise
    return connection


def _close(connection: smtplib.SMTP) -> None:
    try:
        connection.quit()
    except Exception:  # noqa: BLE001 - already broken: just drop the socket
        connection.close()


def _permanent(code: int | None) -> bool:
    # 5xx is final (RFC 5321 §4.2.1); 4xx and anything non-standard (smtplib's -1 for an
    # unreadable reply) may pass later.
    return code is not None and 500 <= code < 600


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
