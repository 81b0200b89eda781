"""``integrations.mail.imap`` and ``integrations.mail.smtp`` against real servers on loopback:
Dovecot (tests/support/dovecot.py) and aiosmtpd (tests/support/smtp.py). No app, no database."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from imapclient import IMAPClient

from integrations.mail.imap import (
    PROCESSED_KEYWORD,
    SEEN,
    ImapCursor,
    ImapSettings,
    MailboxAuthError,
    MailboxConfigError,
    MailboxError,
    UidValidityChanged,
    mark_processed,
    poll,
)
from integrations.mail.smtp import SmtpSettings, send
from tests.support import dovecot as dovecot_support
from tests.support.dovecot import Dovecot, append, dovecot, imap_connection, imap_folder  # noqa: F401
from tests.support.net import HOST, free_port
from tests.support.smtp import SmtpServer, smtp_certificate, smtp_server  # noqa: F401

# aiosmtpd warns when AUTH is allowed without STARTTLS: our "tls" server is encrypted throughout.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


def raw_mail(subject: str, body: str = "Hello, I'd like to return my boots.") -> bytes:
    message = EmailMessage()
    message["From"] = "Customer <customer@example.org>"
    message["To"] = "returns@shop.example"
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="example.org")
    message.set_content(body)
    return bytes(message)


def settings_for(server: Dovecot, folder: str, **overrides) -> ImapSettings:
    values = dict(
        host=server.host, port=server.port, security="none", username=server.username,
        password=server.password, folder=folder, timeout=10.0,
    )
    return ImapSettings(**(values | overrides))


def flags_in(server: Dovecot, folder: str) -> dict[int, set[bytes]]:
    with imap_connection(server) as client:
        client.select_folder(folder, readonly=True)
        return {uid: set(flags) for uid, flags in client.get_flags(client.search(["ALL"])).items()}


def subjects(result) -> list[str]:
    return [raw.split(b"Subject: ", 1)[1].split(b"\n", 1)[0].strip().decode() for _uid, raw in result.messages]


@pytest.fixture()
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never says a word."""
    with socket.socket() as listener:
        listener.bind((HOST, 0))
        listener.listen(8)
        yield listener.getsockname()[1]


# --- IMAP: polling ------------------------------------------------------------------------------


def test_poll_fetches_each_new_message_once_and_advances_the_cursor(dovecot, imap_folder):
    settings = settings_for(dovecot, imap_folder)
    append(dovecot, imap_folder, raw_mail("first"))
    append(dovecot, imap_folder, raw_mail("second"))

    first = poll(settings, None)
    assert subjects(first) == ["first", "second"]
    assert first.messages[0][1].startswith(b"From: Customer")
    assert first.cursor.last_uid == first.messages[-1][0] > first.messages[0][0]
    assert first.uidvalidity_changed is False and first.oversized == [] and first.more is False

    again = poll(settings, first.cursor)
    assert again.messages == [] and again.cursor == first.cursor

    append(dovecot, imap_folder, raw_mail("third"))
    third = poll(settings, again.cursor)
    assert subjects(third) == ["third"]
    assert third.cursor.last_uid > first.cursor.last_uid
    # Polling only peeks: nothing is marked read until the app says it's done.
    assert all(SEEN not in flags for flags in flags_in(dovecot, imap_folder).values())


def test_poll_of_an_empty_folder_keeps_the_cursor(dovecot, imap_folder):
    result = poll(settings_for(dovecot, imap_folder), None)
    assert result.messages == [] and result.cursor.last_uid == 0 and result.cursor.uidvalidity > 0


def test_a_cursor_from_another_uidvalidity_is_discarded(dovecot, imap_folder):
    append(dovecot, imap_folder, raw_mail("only"))
    result = poll(settings_for(dovecot, imap_folder), ImapCursor(uidvalidity=1, last_uid=999))
    assert result.uidvalidity_changed is True
    assert subjects(result) == ["only"] and result.cursor.uidvalidity != 1


def test_batch_limits_one_poll_and_says_more_is_waiting(dovecot, imap_folder):
    settings = settings_for(dovecot, imap_folder)
    for n in range(3):
        append(dovecot, imap_folder, raw_mail(f"mail {n}"))
    first = poll(settings, None, batch=2)
    assert subjects(first) == ["mail 0", "mail 1"] and first.more is True
    rest = poll(settings, first.cursor, batch=2)
    assert subjects(rest) == ["mail 2"] and rest.more is False


def test_oversized_messages_are_reported_not_fetched(dovecot, imap_folder):
    settings = settings_for(dovecot, imap_folder)
    append(dovecot, imap_folder, raw_mail("small"))
    append(dovecot, imap_folder, raw_mail("huge", "x" * 5000))
    append(dovecot, imap_folder, raw_mail("small again"))

    result = poll(settings, None, max_bytes=2000)
    assert subjects(result) == ["small", "small again"]
    [(uid, size)] = result.oversized
    assert size > 5000
    assert result.messages[0][0] < uid < result.messages[1][0]
    assert result.cursor.last_uid == result.messages[1][0]  # moved past the big one too
    assert poll(settings, result.cursor, max_bytes=2000).oversized == []


def test_flag_mode_marks_seen_and_keyword_and_never_returns_them_again(dovecot, imap_folder):
    settings = settings_for(dovecot, imap_folder)
    append(dovecot, imap_folder, raw_mail("done"))
    append(dovecot, imap_folder, raw_mail("not yet"))
    result = poll(settings, None)
    done_uid, pending_uid = (uid for uid, _raw in result.messages)

    mark_processed(settings, [done_uid], uidvalidity=result.cursor.uidvalidity)

    flags = flags_in(dovecot, imap_folder)
    assert {SEEN, PROCESSED_KEYWORD} <= flags[done_uid]
    assert flags[pending_uid] == set()
    # Even a poller that lost its cursor skips what was processed.
    assert subjects(poll(settings, None)) == ["not yet"]


def test_move_mode_moves_processed_mail_creating_the_folder(dovecot, imap_folder):
    settings = settings_for(dovecot, imap_folder, processed_action="move", processed_folder=f"{imap_folder}-done")
    append(dovecot, imap_folder, raw_mail("moved"))
    append(dovecot, imap_folder, raw_mail("stays"))
    result = poll(settings, None)

    mark_processed(settings, [result.messages[0][0]], uidvalidity=result.cursor.uidvalidity)

    assert len(flags_in(dovecot, imap_folder)) == 1
    [moved_flags] = flags_in(dovecot, f"{imap_folder}-done").values()
    assert {SEEN, PROCESSED_KEYWORD} <= moved_flags
    assert subjects(poll(settings, None)) == ["stays"]
    mark_processed(settings, [result.messages[1][0]])  # the folder exists now: no error
    assert flags_in(dovecot, imap_folder) == {}
    assert len(flags_in(dovecot, f"{imap_folder}-done")) == 2


def test_move_without_the_move_extension_copies_and_expunges_only_those(dovecot, imap_folder, monkeypatch):
    settings = settings_for(dovecot, imap_folder, processed_action="move", processed_folder=f"{imap_folder}-done")
    append(dovecot, imap_folder, raw_mail("moved"))
    append(dovecot, imap_folder, raw_mail("someone else's deleted mail"), flags=(b"\\Deleted",))
    real = IMAPClient.has_capability
    monkeypatch.setattr(IMAPClient, "has_capability", lambda self, name: name != "MOVE" and real(self, name))
    moved_uid = poll(settings, None).messages[0][0]

    mark_processed(settings, [moved_uid])

    remaining = flags_in(dovecot, imap_folder)
    assert moved_uid not in remaining
    assert [b"\\Deleted" in flags for flags in remaining.values()] == [True]  # UID EXPUNGE spared it
    assert len(flags_in(dovecot, f"{imap_folder}-done")) == 1


def test_a_changed_uidvalidity_resets_the_cursor_and_skips_processed_mail(dovecot, imap_folder):
    settings = settings_for(dovecot, imap_folder)
    append(dovecot, imap_folder, raw_mail("old, processed"))
    first = poll(settings, None)
    mark_processed(settings, [first.messages[0][0]], uidvalidity=first.cursor.uidvalidity)

    # The folder is rebuilt (restore, migration): same mail, new UIDs, new UIDVALIDITY.
    with imap_connection(dovecot) as client:
        client.delete_folder(imap_folder)
        time.sleep(1.1)  # UIDVALIDITY is time-based; make sure it can differ
        client.create_folder(imap_folder)
        client.append(imap_folder, raw_mail("old, processed"), flags=(SEEN, PROCESSED_KEYWORD))
        client.append(imap_folder, raw_mail("new"))

    result = poll(settings, first.cursor)
    assert result.uidvalidity_changed is True
    assert result.cursor.uidvalidity != first.cursor.uidvalidity
    assert subjects(result) == ["new"]
    # UIDs that came with the old UIDVALIDITY must not mark whatever has those UIDs now.
    with pytest.raises(UidValidityChanged) as caught:
        mark_processed(settings, [first.messages[0][0]], uidvalidity=first.cursor.uidvalidity)
    assert caught.value.retryable is False
    assert sum(PROCESSED_KEYWORD in flags for flags in flags_in(dovecot, imap_folder).values()) == 1


# --- IMAP: transport and errors -----------------------------------------------------------------


def test_tls_and_starttls_with_a_trusted_certificate(dovecot, imap_folder):
    append(dovecot, imap_folder, raw_mail("over tls"))
    for security, port in (("tls", dovecot.tls_port), ("starttls", dovecot.port)):
        settings = settings_for(dovecot, imap_folder, security=security, port=port, ca_file=dovecot.ca_file)
        assert subjects(poll(settings, None)) == ["over tls"]


def test_an_untrusted_certificate_is_a_permanent_error(dovecot, imap_folder):
    settings = settings_for(dovecot, imap_folder, security="tls", port=dovecot.tls_port)  # system CAs only
    with pytest.raises(MailboxConfigError, match="certificate") as caught:
        poll(settings, None)
    assert caught.value.retryable is False
    insecure = settings_for(dovecot, imap_folder, security="tls", port=dovecot.tls_port, verify=False)
    assert poll(insecure, None).messages == []


def test_wrong_password_is_an_auth_error(dovecot, imap_folder):
    settings = settings_for(dovecot, imap_folder, password="wrong")
    with pytest.raises(MailboxAuthError) as caught:
        poll(settings, None)
    assert caught.value.retryable is False
    assert "wrong" not in str(caught.value)  # the password is never echoed
    with pytest.raises(MailboxAuthError):
        mark_processed(settings, [1])


def test_a_missing_folder_is_a_permanent_error(dovecot):
    with pytest.raises(MailboxConfigError, match="no-such-folder"):
        poll(settings_for(dovecot, "no-such-folder"), None)


def test_server_down_is_a_retryable_error():
    settings = ImapSettings(host=HOST, port=free_port(), security="none", username="u", password="p", timeout=5)
    with pytest.raises(MailboxError) as caught:
        poll(settings, None)
    assert caught.value.retryable is True and not isinstance(caught.value, MailboxAuthError)


def test_a_silent_server_times_out(silent_port):
    settings = ImapSettings(host=HOST, port=silent_port, security="none", username="u", password="p", timeout=0.5)
    started = time.monotonic()
    with pytest.raises(MailboxError, match="timed out") as caught:
        poll(settings, None)
    assert caught.value.retryable is True
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    "overrides",
    [
        {"security": "ssl"},
        {"processed_action": "delete"},
        {"processed_action": "move", "processed_folder": "INBOX"},
        {"port": 0},
        {"port": 70000},
        {"timeout": 0},
    ],
)
def test_bad_imap_settings_are_refused(overrides):
    with pytest.raises(ValueError):
        ImapSettings(**({"host": HOST, "username": "u", "password": "p"} | overrides))


def test_imap_settings_hide_the_password():
    assert "hunter2" not in repr(ImapSettings(host=HOST, username="u", password="hunter2"))


def test_poll_refuses_a_nonsense_batch(dovecot, imap_folder):
    with pytest.raises(ValueError):
        poll(settings_for(dovecot, imap_folder), None, batch=0)


# --- the Dovecot fixture itself ----------------------------------------------------------------


def test_without_dovecot_and_without_root_the_tests_skip_with_the_reason(monkeypatch):
    monkeypatch.setattr(dovecot_support, "dovecot_binary", lambda: None)
    monkeypatch.setattr(dovecot_support.os, "geteuid", lambda: 1000)
    with pytest.raises(pytest.skip.Exception, match="apt-get install dovecot-imapd"):
        dovecot_support.ensure_dovecot()


def test_a_failed_install_skips_once_and_is_not_retried_by_every_worker(monkeypatch, tmp_path):
    calls = []

    def apt_get(command, **kwargs):
        calls.append(command[1])
        if command[1] == "update":
            return subprocess.CompletedProcess(command, 0, "", "")
        return subprocess.CompletedProcess(command, 100, "", "E: Unable to locate package dovecot-imapd")

    monkeypatch.setattr(dovecot_support, "dovecot_binary", lambda: None)
    monkeypatch.setattr(dovecot_support.os, "geteuid", lambda: 0)
    monkeypatch.setattr(dovecot_support.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(dovecot_support.subprocess, "run", apt_get)
    monkeypatch.setattr(dovecot_support, "INSTALL_LOCK", tmp_path / "install.lock")
    monkeypatch.setattr(dovecot_support, "INSTALL_FAILED", tmp_path / "install.failed")
    for _worker in range(2):
        with pytest.raises(pytest.skip.Exception, match="Unable to locate package"):
            dovecot_support.ensure_dovecot()
    assert calls == ["update", "install"]  # the second worker read the recorded failure


# --- SMTP ---------------------------------------------------------------------------------------


def outgoing(**headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Acme Returns <returns@shop.example>"
    message["To"] = "Zoë Customer <zoe@example.org>"
    message["Subject"] = "Re: Your return [RMA-10042] – label attached"
    message["Message-ID"] = "<rma-10042.1@shop.example>"
    message["In-Reply-To"] = "<abc@example.org>"
    message["References"] = "<root@example.org> <abc@example.org>"
    message["Reply-To"] = "returns+tok3n@reply.shop.example"
    message["Auto-Submitted"] = "auto-replied"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("Your return is approved. Grüße!")
    message.add_alternative("<p>Your return is <b>approved</b>. Grüße!</p>", subtype="html")
    return message


def smtp_settings(server: SmtpServer, **overrides) -> SmtpSettings:
    values = dict(
        host=server.host, port=server.port, security=server.security, username=server.username,
        password=server.password, ca_file=server.ca_file, timeout=10.0, local_hostname="rebound.test",
    )
    return SmtpSettings(**(values | overrides))


def test_send_over_plain_smtp_keeps_every_header(smtp_server):
    server = smtp_server()
    message = outgoing()

    result = send(message, smtp_settings(server))

    assert (result.outcome, result.status_code, result.error) == ("delivered", 250, None)
    assert result.external_id == "<rma-10042.1@shop.example>"
    assert result.latency_ms > 0
    [received] = server.received
    assert received.mail_from == "returns@shop.example" and received.rcpt_tos == ["zoe@example.org"]
    got = received.message()
    for name in ("From", "To", "Subject", "Message-ID", "In-Reply-To", "References", "Reply-To", "Auto-Submitted"):
        assert got[name] == message[name], name
    assert got.get_body(("plain",)).get_content().strip() == "Your return is approved. Grüße!"
    assert "<b>approved</b>" in got.get_body(("html",)).get_content()


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_send_over_tls_with_auth(smtp_server, security):
    server = smtp_server(security=security, auth=True)
    result = send(outgoing(), smtp_settings(server))
    assert result.outcome == "delivered", result.error
    [received] = server.received
    assert received.login == "mailer" and received.tls is True


def test_envelope_overrides_headers_and_bcc_is_not_transmitted(smtp_server):
    server = smtp_server()
    message = outgoing(Bcc="audit@shop.example")
    result = send(message, smtp_settings(server), envelope_from="bounces+rma-10042@shop.example",
                  recipients=["zoe@example.org", "audit@shop.example"])
    assert result.outcome == "delivered"
    [received] = server.received
    assert received.mail_from == "bounces+rma-10042@shop.example"
    assert received.rcpt_tos == ["zoe@example.org", "audit@shop.example"]
    assert b"audit@shop.example" not in received.data
    assert message["Bcc"] == "audit@shop.example"  # the caller's message is left as it was


@pytest.mark.parametrize(
    ("options", "outcome", "code"),
    [
        ({"data_reply": "451 4.3.0 Try again later"}, "retry", 451),
        ({"rcpt_reply": "450 4.2.1 Mailbox busy"}, "retry", 450),
        ({"data_reply": "554 5.7.1 Message refused"}, "permanent", 554),
        ({"rcpt_reply": "550 5.1.1 No such user"}, "permanent", 550),
    ],
)
def test_smtp_replies_decide_retry_or_permanent(smtp_server, options, outcome, code):
    server = smtp_server(**options)
    result = send(outgoing(), smtp_settings(server))
    assert (result.outcome, result.status_code) == (outcome, code)
    assert str(code) in result.error
    assert server.received == []


def test_wrong_password_is_permanent(smtp_server):
    server = smtp_server(security="starttls", auth=True)
    result = send(outgoing(), smtp_settings(server, password="wrong"))
    assert (result.outcome, result.status_code) == ("permanent", 535)
    assert "wrong" not in result.error
    assert server.received == []


def test_auth_is_not_attempted_in_clear_text(smtp_server):
    # The server offers AUTH only after STARTTLS, so a plain connection with a login fails
    # instead of sending the password in clear.
    server = smtp_server(security="starttls", auth=True)
    result = send(outgoing(), smtp_settings(server, security="none"))
    assert result.outcome == "permanent"
    assert server.received == []


def test_starttls_is_required_when_asked_for(smtp_server):
    server = smtp_server()  # offers no STARTTLS
    result = send(outgoing(), smtp_settings(server, security="starttls"))
    assert result.outcome == "permanent" and "STARTTLS" in result.error
    assert server.received == []


def test_an_untrusted_certificate_is_permanent(smtp_server):
    server = smtp_server(security="starttls")
    result = send(outgoing(), smtp_settings(server, ca_file=None))
    assert result.outcome == "permanent" and "certificate" in result.error
    assert send(outgoing(), smtp_settings(server, ca_file=None, verify=False)).outcome == "delivered"


def test_connection_refused_is_retry():
    result = send(outgoing(), SmtpSettings(host=HOST, port=free_port(), security="none", timeout=5))
    assert (result.outcome, result.status_code) == ("retry", None)
    assert "Refused" in result.error


def test_a_silent_server_times_out_as_retry(silent_port):
    started = time.monotonic()
    result = send(outgoing(), SmtpSettings(host=HOST, port=silent_port, security="none", timeout=0.5))
    assert result.outcome == "retry" and "timed out" in result.error
    assert time.monotonic() - started < 5


def test_a_message_without_recipients_is_permanent_and_never_raises(smtp_server):
    server = smtp_server()
    message = EmailMessage()
    message["From"] = "returns@shop.example"
    message.set_content("nobody to send to")
    result = send(message, smtp_settings(server))
    assert result.outcome == "permanent" and "no recipients" in result.error
    assert server.received == []


@pytest.mark.parametrize("overrides", [{"security": "ssl"}, {"port": 0}, {"timeout": -1}])
def test_bad_smtp_settings_are_refused(overrides):
    with pytest.raises(ValueError):
        SmtpSettings(**({"host": HOST} | overrides))
