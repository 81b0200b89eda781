"""Unit tests for app.email.classify: which mail came from a machine (RFC 3834 and common
practice). Missing a loop is as bad as calling a customer's mail automated. No app, no DB."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.email.classify import Automation, AutomationKind, classify_automation
from app.email.parse import parse_message

CORPUS = Path(__file__).resolve().parents[4] / "shared" / "corpora" / "email" / \
    "SpamScope-mail-parser" / "tests" / "mails"


def classify(*headers: str, subject: str = "My return", sender: str = "maria@example.com",
             body: str = "Hello") -> Automation:
    raw = "\r\n".join((f"From: {sender}", f"Subject: {subject}", *headers, "", body))
    return classify_automation(parse_message(raw.encode()))


def test_a_customer_mail_is_not_automated() -> None:
    result = classify()
    assert result == Automation(AutomationKind.NONE)
    assert not result.automated


@pytest.mark.parametrize(("header", "kind"), [
    ("Auto-Submitted: auto-replied", AutomationKind.AUTO_REPLY),
    ("Auto-Submitted: auto-generated", AutomationKind.AUTO_REPLY),
    ("Auto-Submitted: Auto-Notified; owner-email=x@y", AutomationKind.AUTO_REPLY),
    ("X-Autoreply: yes", AutomationKind.AUTO_REPLY),
    ("X-Autorespond: Mon", AutomationKind.AUTO_REPLY),
    ("X-Autoresponder: on", AutomationKind.AUTO_REPLY),
    ("Precedence: auto_reply", AutomationKind.AUTO_REPLY),
    ("Precedence: bulk", AutomationKind.LIST),
    ("Precedence: junk", AutomationKind.LIST),
    ("X-Precedence: list", AutomationKind.LIST),
    ("List-Id: <news.shop.example>", AutomationKind.LIST),
    ("List-Unsubscribe: <mailto:leave@shop.example>", AutomationKind.LIST),
    ("Auto-Submitted: vacation", AutomationKind.OUT_OF_OFFICE),
])
def test_header_signals(header: str, kind: AutomationKind) -> None:
    result = classify(header)
    assert result.kind is kind
    assert result.automated and result.reasons


@pytest.mark.parametrize("header", [
    "Auto-Submitted: no",
    "Auto-Submitted: No (it's me)",
    "X-Auto-Response-Suppress: All",  # a request to others, not proof of an auto-reply
    "X-Auto-Response-Suppress: OOF, AutoReply",
    "X-Autoreply: no",
    "Precedence: first-class",
    "Return-Path: <maria@example.com>",
])
def test_signals_that_are_not_automation(header: str) -> None:
    assert classify(header).kind is AutomationKind.NONE


def test_exchange_out_of_office_needs_both_headers() -> None:
    both = classify("X-Auto-Response-Suppress: All", "X-MS-Exchange-Inbox-Rules-Loop: m@x.example")
    assert both.kind is AutomationKind.OUT_OF_OFFICE
    assert classify("X-MS-Exchange-Inbox-Rules-Loop: m@x.example").kind is AutomationKind.NONE


@pytest.mark.parametrize("subject", [
    "Automatic reply: My return", "Out of Office: back Monday", "Auto: Re: RMA-10042",
    "Abwesenheitsnotiz: Ihre Rücksendung", "Réponse automatique : retour",
    "Respuesta automática: devolución", "Automatisch antwoord: retour", "Autosvar: retur",
    "Fuori sede: reso", "自動応答: 返品",
])
def test_out_of_office_subjects(subject: str) -> None:
    assert classify(subject=subject).kind is AutomationKind.OUT_OF_OFFICE


@pytest.mark.parametrize("subject", [
    "Absent item in my parcel", "Vacation dress too small", "不在配達の荷物について",
    "Re: Out of stock?", "Question about automatic renewal",
])
def test_customer_subjects_that_only_look_automatic(subject: str) -> None:
    assert classify(subject=subject).kind is AutomationKind.NONE


def test_auto_replied_with_out_of_office_subject_is_out_of_office() -> None:
    result = classify("Auto-Submitted: auto-replied", subject="Out of office")
    assert result.kind is AutomationKind.OUT_OF_OFFICE
    assert "Auto-Submitted: auto-replied" in result.reasons


@pytest.mark.parametrize("sender", ["MAILER-DAEMON@mx.example", "postmaster@shop.example"])
def test_bounce_senders(sender: str) -> None:
    result = classify(sender=sender, subject="Undelivered Mail")
    assert result.kind is AutomationKind.BOUNCE
    assert result.failed_recipients == ()


def test_empty_return_path_is_a_bounce_unless_auto_reply_headers_say_otherwise() -> None:
    assert classify("Return-Path: <>").kind is AutomationKind.BOUNCE
    assert classify("Return-Path: < >").kind is AutomationKind.BOUNCE
    both = classify("Return-Path: <>", "Auto-Submitted: auto-replied")
    assert both.kind is AutomationKind.AUTO_REPLY  # RFC 3834 auto-replies use <> too


def test_x_failed_recipients() -> None:
    result = classify("X-Failed-Recipients: Gone@Example.com, <other@example.org>")
    assert result.kind is AutomationKind.BOUNCE
    assert result.failed_recipients == ("gone@example.com", "other@example.org")


def dsn(*recipient_blocks: str) -> bytes:
    blocks = "\r\n\r\n".join(recipient_blocks)
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example>\r\nTo: returns@shop.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\r\n\r\n'
        "--r\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you...\r\n"
        "--r\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example\r\n\r\n" + blocks + "\r\n"
        "--r\r\nContent-Type: message/rfc822\r\n\r\n"
        "From: returns@shop.example\r\nTo: gone@example.com\r\nSubject: Your return\r\n\r\nhi\r\n"
        "--r--\r\n").encode()


def test_standard_dsn_names_the_failed_recipients() -> None:
    result = classify_automation(parse_message(dsn(
        "Final-Recipient: rfc822; Gone@Example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 User unknown",
        "Final-Recipient: rfc822;ok@example.com\r\nAction: delivered\r\nStatus: 2.0.0",
        "Original-Recipient: rfc822;<also@example.com>\r\nStatus: 5.2.1")))
    assert result.kind is AutomationKind.BOUNCE
    assert result.failed_recipients == ("gone@example.com", "also@example.com")
    assert result.permanent is True
    assert "multipart/report; report-type=delivery-status" in result.reasons


def test_delayed_dsn_is_a_soft_bounce() -> None:
    result = classify_automation(parse_message(dsn(
        "Final-Recipient: rfc822; slow@example.com\r\nAction: failed\r\nStatus: 4.4.7")))
    assert result.failed_recipients == ("slow@example.com",)
    assert result.permanent is False


def test_dsn_without_recipient_blocks_is_still_a_bounce() -> None:
    result = classify_automation(parse_message(dsn("Garbage: yes")))
    assert result.kind is AutomationKind.BOUNCE
    assert result.failed_recipients == () and result.permanent is None


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared email corpus not present")
def test_real_dsn_from_the_corpus() -> None:
    result = classify_automation(parse_message((CORPUS / "mail_malformed_2").read_bytes()))
    assert result.kind is AutomationKind.BOUNCE
    assert result.failed_recipients == ("abh@netpar.com.br",)
    assert result.permanent is False  # 4.2.2 mailbox full


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared email corpus not present")
def test_corpus_newsletter_is_list_mail_and_personal_mail_is_not() -> None:
    newsletter = classify_automation(parse_message((CORPUS / "mail_test_13").read_bytes()))
    assert newsletter.kind is AutomationKind.LIST
    plain = classify_automation(parse_message((CORPUS / "mail_test_19").read_bytes()))
    assert plain.kind is AutomationKind.NONE
