"""Outbound mail end to end, against a real SMTP server (aiosmtpd on loopback): a customer's mail
opens a case, the case's mail leaves through the outbox and threads, the customer's answer to it
comes back to the same case; bounces, rate limits, refusals and our own mail coming back."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage
from email.utils import parseaddr

import pytest
import sqlalchemy as sa

from app.cases.models import CaseEvent, ReturnCase
from app.connectors.crypto import decrypt_secrets, encrypt_secrets
from app.connectors.models import Integration
from app.email.compose import LOOP_HEADER
from app.email.models import MailMessage
from app.email.services import ingest_mail
from app.extensions import db, utcnow
from app.orders.models import Customer
from app.outbound import dispatcher
from app.outbound.models import OutboxMessage
from app.tenants.models import Tenant
from tests.factories import order_payload
from tests.support.smtp import PASSWORD, USERNAME, SmtpServer, smtp_certificate, smtp_server  # noqa: F401

# aiosmtpd warns when AUTH is allowed without STARTTLS: our "tls" server is encrypted throughout.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

CUSTOMER = "maria.lopez@example.com"
MAILBOX = "returns@shop.example"
REQUEST = "Hi, I want to return the tent TENT-2P from order #1001, it arrived broken.\n\nMaría"


@pytest.fixture()
def tenant(api, app):
    api.post("/orders", json=order_payload())
    with app.app_context():
        return db.session.scalar(sa.select(Tenant))


def connect_mailbox(api, server: SmtpServer, password: str | None = None) -> int:
    settings = {"host": server.host, "port": server.port, "security": server.security, "timeout": 10,
                **({"username": server.username} if server.username else {})}
    response = api.post("/integrations", json={
        "kind": "rawmime", "name": "Returns mailbox",
        "settings": {"address": MAILBOX, "from_name": "Acme Returns", "smtp": settings},
    })
    assert response.status_code == 201, response.json
    if password or server.password:
        # The test server's password is shorter than the API accepts for a credential: store it directly.
        with api.client.application.app_context():
            integration = db.session.get(Integration, response.json["id"])
            integration.secrets_encrypted = encrypt_secrets(
                {**decrypt_secrets(integration.secrets_encrypted), "smtp_password": password or server.password})
            db.session.commit()
    return response.json["id"]


def customer_mail(body: str = REQUEST, *, subject: str = "Return order #1001", message_id: str = "<c1@example.com>",
                  to: str = MAILBOX, **headers: str) -> bytes:
    message = EmailMessage()
    message["From"], message["To"] = f"María López <{CUSTOMER}>", to
    message["Subject"], message["Message-ID"] = subject, message_id
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return bytes(message)


def ingest(app, tenant, integration_id: int | None, raw: bytes):
    with app.app_context():
        integration = db.session.get(Integration, integration_id) if integration_id else None
        result = ingest_mail(db.session.get(Tenant, tenant.id), integration, raw)
        db.session.commit()
        return result.outcome, result.case.number if result.case else None, result.mail.id


def drain(app) -> int:
    with app.app_context():
        return dispatcher.drain()


def rows(app, model, *where):
    with app.app_context():
        found = list(db.session.scalars(sa.select(model).where(*where).order_by(model.id)))
        db.session.expunge_all()
        return found


def timeline(app, number: str, action: str) -> list[CaseEvent]:
    with app.app_context():
        case_id = db.session.scalar(sa.select(ReturnCase.id).where(ReturnCase.number == number))
    return rows(app, CaseEvent, CaseEvent.case_id == case_id, CaseEvent.action == action)


def answer(received: EmailMessage, body: str, *, message_id: str = "<c2@example.com>") -> bytes:
    """The customer's mail client answering ``received``: to its Reply-To, threaded, quoting it."""
    quoted = "\n".join("> " + line for line in received.get_body(("plain",)).get_content().splitlines())
    return customer_mail(
        f"{body}\n\nOn Tue, 3 Mar 2026 at 10:00, Acme Returns <{MAILBOX}> wrote:\n{quoted}\n",
        subject="Re: " + str(received["Subject"]), message_id=message_id, to=str(received["Reply-To"]),
        In_Reply_To=str(received["Message-ID"]),
        References=" ".join([*str(received.get("References") or "").split(), str(received["Message-ID"])]),
    )


def test_a_case_opened_by_mail_answers_by_smtp_and_the_customers_answer_threads_back(app, api, tenant, smtp_server):
    server = smtp_server()
    integration_id = connect_mailbox(api, server)
    outcome, number, _ = ingest(app, tenant, integration_id, customer_mail())
    assert outcome == "case_created"
    [queued] = rows(app, MailMessage, MailMessage.direction == "out")
    assert queued.status == "queued" and queued.to_addresses == [CUSTOMER] and queued.in_reply_to == "<c1@example.com>"
    [message] = rows(app, OutboxMessage)
    assert message.action == {"kind": "email", "mail_id": queued.id} and message.integration_id == integration_id
    assert message.ordering_key == f"mail:{message.case_id}" and ":mail:0" in message.idempotency_key

    assert drain(app) == 1
    [received] = server.received
    assert received.rcpt_tos == [CUSTOMER] and received.mail_from == MAILBOX
    mail = received.message()
    assert mail["Message-ID"] == queued.message_id and mail["Message-ID"].endswith("@shop.example>")
    assert mail["In-Reply-To"] == "<c1@example.com>" and mail["References"] == "<c1@example.com>"
    assert mail["Subject"] == f"Re: Return order #1001 [{number}]"
    assert parseaddr(str(mail["From"])) == ("Acme Returns", MAILBOX)
    reply_to = str(mail["Reply-To"])
    assert reply_to.startswith("returns+") and reply_to.endswith("@shop.example")
    # The acknowledgement of the customer's request (the policy sent it to review): nobody wrote it.
    assert mail["Auto-Submitted"] == "auto-replied" and mail["X-Auto-Response-Suppress"] == "All"
    assert mail[LOOP_HEADER]
    assert mail.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
    assert number in mail.get_body(("plain",)).get_content()
    [sent] = rows(app, MailMessage, MailMessage.direction == "out")
    assert sent.status == "sent" and sent.sent_at is not None
    assert rows(app, OutboxMessage)[0].status == "delivered"

    outcome, again, mail_id = ingest(app, tenant, integration_id, answer(mail, "Thanks, I'll post it tomorrow."))
    assert (outcome, again) == ("threaded", number)
    [back] = rows(app, MailMessage, MailMessage.id == mail_id)
    assert back.matched_by == "token" and back.reply_text == "Thanks, I'll post it tomorrow."
    assert len(rows(app, ReturnCase)) == 1
    assert any(e.data.get("text") == "Thanks, I'll post it tomorrow." for e in timeline(app, number, "message"))

    # The agent approves: that mail answers the customer's latest one and is no auto-reply.
    assert api.action(number, "approve").status_code == 200
    assert drain(app) == 1
    approved = server.received[-1].message()
    assert approved["In-Reply-To"] == "<c2@example.com>" and "Auto-Submitted" not in approved
    assert approved["References"].split() == ["<c1@example.com>", mail["Message-ID"], "<c2@example.com>"]
    assert approved["Reply-To"] == mail["Reply-To"] and approved["Subject"].endswith(f"[{number}]")
    assert approved["Message-ID"] != mail["Message-ID"]


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_mail_goes_out_over_tls_with_login(app, api, tenant, runner, smtp_server, monkeypatch, security):
    server = smtp_server(security=security, auth=True)
    monkeypatch.setitem(app.config, "REBOUND_SMTP_CA_FILE", server.ca_file)
    integration_id = connect_mailbox(api, server)
    ingest(app, tenant, integration_id, customer_mail())
    result = runner.invoke(args=["outbox", "drain"])
    assert result.exit_code == 0 and "1 delivery attempt(s)." in result.output
    [received] = server.received
    assert received.tls and received.login == USERNAME
    assert rows(app, MailMessage, MailMessage.direction == "out")[0].status == "sent"


def test_a_wrong_smtp_password_kills_the_message_and_fails_the_mail(app, api, tenant, smtp_server, monkeypatch):
    server = smtp_server(security="starttls", auth=True)
    monkeypatch.setitem(app.config, "REBOUND_SMTP_CA_FILE", server.ca_file)
    integration_id = connect_mailbox(api, server, password="not-the-password")
    ingest(app, tenant, integration_id, customer_mail())
    drain(app)
    assert server.received == []
    [message] = rows(app, OutboxMessage)
    assert message.status == "dead" and message.last_status_code == 535
    assert rows(app, MailMessage, MailMessage.direction == "out")[0].status == "failed"


def test_a_550_from_the_server_kills_the_message_and_fails_the_mail(app, api, tenant, smtp_server):
    server = smtp_server(rcpt_reply="550 5.1.1 No such user")
    integration_id = connect_mailbox(api, server)
    ingest(app, tenant, integration_id, customer_mail())
    assert drain(app) == 1
    [message] = rows(app, OutboxMessage)
    assert message.status == "dead" and message.last_status_code == 550 and "No such user" in message.last_error
    [mail] = rows(app, MailMessage, MailMessage.direction == "out")
    assert mail.status == "failed" and "550" in mail.rejection_reason and mail.sent_at is None


def test_a_temporary_refusal_is_retried_and_the_mail_stays_queued(app, api, tenant, smtp_server):
    server = smtp_server(rcpt_reply="451 4.3.0 Try again later")
    integration_id = connect_mailbox(api, server)
    ingest(app, tenant, integration_id, customer_mail())
    assert drain(app) == 1  # the retry is due later, not in this drain
    [message] = rows(app, OutboxMessage)
    assert message.status == "pending" and message.attempts == 1 and message.last_status_code == 451
    assert rows(app, MailMessage, MailMessage.direction == "out")[0].status == "queued"


def test_no_mail_to_a_bouncing_customer_and_the_timeline_says_why(app, api, tenant, smtp_server):
    server = smtp_server()
    integration_id = connect_mailbox(api, server)
    with app.app_context():
        db.session.scalar(sa.select(Customer).where(Customer.email == CUSTOMER)).mail_bouncing_since = utcnow()
        db.session.commit()
    outcome, number, _ = ingest(app, tenant, integration_id, customer_mail())
    assert outcome == "case_created"
    assert rows(app, OutboxMessage) == [] and rows(app, MailMessage, MailMessage.direction == "out") == []
    [skipped] = timeline(app, number, "mail_skipped")
    assert skipped.data["code"] == "bouncing" and "bounced" in skipped.reason and CUSTOMER in skipped.reason

    # An agent's reply is refused with a clear reason, unless they insist.
    refused = api.post(f"/cases/{number}/replies", json={"text": "Is this address right?"})
    assert refused.status_code == 422 and refused.json["error"]["code"] == "mail_bouncing"
    assert rows(app, OutboxMessage) == []
    forced = api.post(f"/cases/{number}/replies", json={"text": "Is this address right?", "force": True})
    assert forced.status_code == 202, forced.json
    assert drain(app) == 1 and len(server.received) == 1


def test_a_bounce_of_our_mail_pauses_the_next_one(app, api, tenant, smtp_server):
    server = smtp_server()
    integration_id = connect_mailbox(api, server)
    _, number, _ = ingest(app, tenant, integration_id, customer_mail())
    drain(app)
    sent = server.received[0].message()
    report = (f"From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\nTo: {MAILBOX}\r\n"
              f"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <b@mx.example.com>\r\n"
              f"In-Reply-To: {sent['Message-ID']}\r\nMIME-Version: 1.0\r\n"
              f'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
              f"--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
              f"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\n"
              f"Final-Recipient: rfc822; {CUSTOMER}\r\nAction: failed\r\nStatus: 5.1.1\r\n--B--\r\n").encode()
    assert ingest(app, tenant, integration_id, report)[:2] == ("recorded", number)
    with app.app_context():
        assert db.session.scalar(sa.select(Customer.mail_bouncing_since).where(Customer.email == CUSTOMER))
    assert api.post(f"/cases/{number}/replies", json={"text": "Hello?"}).json["error"]["code"] == "mail_bouncing"


def test_automatic_mail_is_rate_limited_per_case_and_recipient(app, api, tenant, smtp_server, monkeypatch):
    monkeypatch.setitem(app.config, "REBOUND_MAIL_AUTO_PER_HOUR", 1)
    server = smtp_server()
    integration_id = connect_mailbox(api, server)
    _, number, _ = ingest(app, tenant, integration_id, customer_mail())
    assert len(rows(app, MailMessage, MailMessage.direction == "out")) == 1
    with app.app_context():
        from app.cases.services import SYSTEM, _event, queue_updates

        case = db.session.scalar(sa.select(ReturnCase).where(ReturnCase.number == number))
        queue_updates(case, _event(case, "approve", SYSTEM, from_status=case.status, to_status=case.status))
        db.session.commit()
    assert len(rows(app, MailMessage, MailMessage.direction == "out")) == 1
    [limited] = timeline(app, number, "mail_skipped")
    assert limited.data["code"] == "rate_limited" and "limit 1" in limited.reason
    # An agent's reply is never limited.
    assert api.post(f"/cases/{number}/replies", json={"text": "We are on it."}).status_code == 202
    assert len(rows(app, MailMessage, MailMessage.direction == "out")) == 2
    # Two hours later one more may go, and then the day's limit (which counts the first) stops the next.
    with app.app_context():
        for mail in db.session.scalars(sa.select(MailMessage).where(MailMessage.direction == "out")):
            mail.created_at = mail.created_at - timedelta(hours=2)
        db.session.commit()
        monkeypatch.setitem(app.config, "REBOUND_MAIL_AUTO_PER_HOUR", 5)
        monkeypatch.setitem(app.config, "REBOUND_MAIL_AUTO_PER_DAY", 2)
        case = db.session.scalar(sa.select(ReturnCase).where(ReturnCase.number == number))
        for _ in range(2):
            queue_updates(case, _event(case, "approve", SYSTEM, from_status=case.status, to_status=case.status))
        db.session.commit()
    assert len(rows(app, MailMessage, MailMessage.direction == "out")) == 3
    assert [e.data["code"] for e in timeline(app, number, "mail_skipped")] == ["rate_limited", "rate_limited"]
    assert "last day (limit 2)" in timeline(app, number, "mail_skipped")[-1].reason


def test_an_agents_reply_through_the_api_is_mailed_without_auto_submitted(app, api, tenant, smtp_server):
    server = smtp_server()
    integration_id = connect_mailbox(api, server)
    _, number, _ = ingest(app, tenant, integration_id, customer_mail())
    drain(app)
    response = api.post(f"/cases/{number}/replies", json={"text": "Hi María,\n\nyour label is on its way."})
    assert response.status_code == 202, response.json
    body = response.json
    assert body["kind"] == "reply" and body["ticket_id"] is None and body["mail_id"] and body["status"] == "pending"
    assert body["subject"] == f"Re: Return order #1001 [{number}]"
    assert drain(app) == 1
    mail = server.received[-1].message()
    assert "Auto-Submitted" not in mail and mail["In-Reply-To"] == "<c1@example.com>"
    assert "your label is on its way" in mail.get_body(("plain",)).get_content()
    assert "your label is on its way" in mail.get_body(("html",)).get_content()
    # A canned one too, and internal notes have no ticket to go to.
    assert api.post(f"/cases/{number}/replies", json={"key": "label_issued"}).status_code == 202
    note = api.post(f"/cases/{number}/replies", json={"text": "internal", "visibility": "internal"})
    assert note.status_code == 422 and note.json["error"]["code"] == "no_ticket"


@pytest.mark.parametrize("payload", [
    {"text": "Hi", "force": "maybe"}, {"text": "Hi", "bcc": "someone@evil.example"}, {"text": ""}, {},
])
def test_bad_reply_requests_are_refused(app, api, tenant, smtp_server, payload):
    server = smtp_server()
    integration_id = connect_mailbox(api, server)
    _, number, _ = ingest(app, tenant, integration_id, customer_mail())
    count = len(rows(app, OutboxMessage))
    response = api.post(f"/cases/{number}/replies", json=payload)
    assert response.status_code == 422 and response.json["error"]["code"]
    assert len(rows(app, OutboxMessage)) == count


def test_a_header_injection_in_the_reply_text_stays_in_the_body(app, api, tenant, smtp_server):
    server = smtp_server()
    integration_id = connect_mailbox(api, server)
    _, number, _ = ingest(app, tenant, integration_id, customer_mail())
    drain(app)
    hostile = {"text": "Hi\r\nBcc: x@evil.example\r\n\r\nthere"}
    assert api.post(f"/cases/{number}/replies", json=hostile).status_code == 202
    drain(app)
    mail = server.received[-1].message()
    assert "Bcc" not in mail and server.received[-1].rcpt_tos == [CUSTOMER]


def test_our_own_mail_coming_back_is_ignored_and_answered_by_nothing(app, api, tenant, smtp_server):
    server = smtp_server()
    integration_id = connect_mailbox(api, server)
    ingest(app, tenant, integration_id, customer_mail())
    drain(app)
    outcome, _, mail_id = ingest(app, tenant, integration_id, server.received[0].data)
    assert outcome == "ignored"
    assert rows(app, MailMessage, MailMessage.id == mail_id)[0].automation == "own"
    assert len(rows(app, OutboxMessage)) == 1


def test_an_auto_reply_to_our_mail_is_recorded_and_never_answered(app, api, tenant, smtp_server):
    server = smtp_server()
    integration_id = connect_mailbox(api, server)
    _, number, _ = ingest(app, tenant, integration_id, customer_mail())
    drain(app)
    sent = server.received[0].message()
    away = customer_mail("I am out of the office until Monday.", subject="Out of office: " + str(sent["Subject"]),
                         message_id="<ooo@example.com>", to=str(sent["Reply-To"]), Auto_Submitted="auto-replied",
                         In_Reply_To=str(sent["Message-ID"]))
    assert ingest(app, tenant, integration_id, away)[:2] == ("recorded", number)
    assert len(rows(app, OutboxMessage)) == 1 and drain(app) == 0


def test_the_customers_reply_to_address_is_answered(app, api, tenant, smtp_server):
    server = smtp_server()
    integration_id = connect_mailbox(api, server)
    ingest(app, tenant, integration_id, customer_mail(Reply_To="María <maria.work@example.org>"))
    drain(app)
    assert server.received[0].rcpt_tos == ["maria.work@example.org"]


def test_cases_without_a_mail_thread_send_no_mail(app, api, tenant, smtp_server):
    server = smtp_server()
    connect_mailbox(api, server)
    number = api.post("/cases", json={"lines": [{"order_number": "1001", "sku": "TENT-2P", "quantity": 1,
                                                 "reason_code": "too_small"}]}).json["number"]
    assert rows(app, OutboxMessage) == []
    response = api.post(f"/cases/{number}/replies", json={"text": "Hi"})
    assert response.status_code == 422 and response.json["error"]["code"] == "no_write_back"


def test_without_a_sending_mailbox_nothing_is_queued(app, api, tenant):
    outcome, number, _ = ingest(app, tenant, None, customer_mail())
    assert outcome == "case_created" and rows(app, OutboxMessage) == []
    assert api.post(f"/cases/{number}/replies", json={"text": "Hi"}).json["error"]["code"] == "no_write_back"
