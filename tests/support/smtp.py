"""Real SMTP servers for tests: aiosmtpd on a free loopback port, in a thread of the test process.

``smtp_server(...)`` (the fixture is a factory) starts one and answers an ``SmtpServer`` whose
``received`` collects every accepted message. Options: ``security`` "none", "starttls"
(STARTTLS offered and required before MAIL) or "tls" (TLS from the first byte), with a
self-signed certificate (``ca_file`` trusts it); ``auth=True`` asks for AUTH PLAIN or LOGIN with
``username`` / ``password`` (offered only over TLS, as ``auth_require_tls`` says); ``rcpt_reply``
or ``data_reply`` (e.g. "451 4.3.0 Try again later", "550 5.1.1 No such user") make the server
answer RCPT or DATA with that line instead of accepting. Every server a test started is stopped
when the test ends; the threads die with the process in any case.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.net import HOST, Certificate, free_port, self_signed_certificate

USERNAME = "mailer"
PASSWORD = "s3cret"
START_ATTEMPTS = 5  # another process may take a "free" port before we bind it


@dataclass(frozen=True)
class Received:
    """One accepted message, as the server saw it."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    login: str | None  # who authenticated, if anyone
    tls: bool

    def message(self) -> EmailMessage:
        return BytesParser(policy=policy.default).parsebytes(self.data)


@dataclass
class Recorder:
    """The aiosmtpd handler: accepts and records, or answers RCPT/DATA with a fixed reply."""

    rcpt_reply: str | None = None
    data_reply: str | None = None
    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.data_reply:
            return self.data_reply
        login = session.auth_data.decode() if isinstance(session.auth_data, bytes) else None
        self.received.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or envelope.content,
                     login, session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None)
        )
        return "250 2.0.0 Message accepted"


def _authenticate(server, session, envelope, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USERNAME.encode(), PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data.login if ok else None)


@dataclass
class SmtpServer:
    host: str
    port: int
    security: str
    username: str | None
    password: str | None
    ca_file: str
    handler: Recorder
    controller: Controller

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def stop(self) -> None:
        self.controller.stop()


def start_smtp_server(
    certificate: Certificate,
    *,
    security: str = "none",
    auth: bool = False,
    rcpt_reply: str | None = None,
    data_reply: str | None = None,
) -> SmtpServer:
    handler = Recorder(rcpt_reply=rcpt_reply, data_reply=data_reply)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate.cert_file, certificate.key_file)
    options: dict[str, Any] = {"server_hostname": "mx.rebound.test", "ready_timeout": 10.0}
    if security == "starttls":
        options |= {"tls_context": context, "require_starttls": True}
    elif security == "tls":
        options |= {"ssl_context": context}
    if auth:
        # aiosmtpd counts only STARTTLS as TLS for auth_require_tls; with "tls" the whole
        # connection is encrypted, so it can allow AUTH at once (and warns that it does, in
        # its own thread: the test module filters that warning).
        options |= {"authenticator": _authenticate, "auth_required": True, "auth_require_tls": security != "tls"}
    last_error: Exception | None = None
    for _attempt in range(START_ATTEMPTS):
        port = free_port()
        controller = Controller(handler, hostname=HOST, port=port, **options)
        try:
            controller.start()
        except OSError as exc:  # the port was taken in between: try another
            last_error = exc
            continue
        return SmtpServer(
            HOST, port, security, USERNAME if auth else None, PASSWORD if auth else None,
            str(certificate.cert_file), handler, controller,
        )
    raise RuntimeError(f"aiosmtpd did not start: {last_error}")


@pytest.fixture(scope="session")
def smtp_certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return self_signed_certificate(Path(tmp_path_factory.mktemp("smtp-tls")))


@pytest.fixture()
def smtp_server(smtp_certificate: Certificate) -> Iterator[Callable[..., SmtpServer]]:
    started: list[SmtpServer] = []

    def start(**options: Any) -> SmtpServer:
        server = start_smtp_server(smtp_certificate, **options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
