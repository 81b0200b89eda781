"""The inbound mail pipeline on a real database: threading order, loops, bounces, intake, evidence."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.cases.models import CaseEvent, ReturnCase
from app.email.compose import LOOP_HEADER
from app.email.models import MailMessage
from app.email.services import ingest_mail, loop_marker, token_key
from app.email.threading import case_token, reply_address
from app.extensions import db
from app.orders.models import Customer
from app.tenants.models import Tenant
from tests.factories import case_payload, order_payload

CORPORA = Path(__file__).resolve().parents[3] / "shared" / "corpora" / "email"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _mail(body: str, *, subject: str = "Return", sender: str = "maria.lopez@example.com",
          to: str = "returns@shop.example", message_id: str = "<m1@example.com>", **headers: str) -> bytes:
    message = EmailMessage()
    message["From"] = f"María López <{sender}>" if sender else ""
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return bytes(message)


@pytest.fixture()
def tenant(api, app):
    api.post("/orders", json=order_payload())
    with app.app_context():
        return db.session.scalar(sa.select(Tenant))


def _ingest(app, tenant, raw):
    with app.app_context():
        result = ingest_mail(db.session.get(Tenant, tenant.id), None, raw)
        db.session.commit()
        return result.outcome, result.case.number if result.case else None, result.mail.id


def _case(api, status: str | None = None) -> str:
    # A final-sale item: the policy sends the case to review, where an agent can ask for information.
    number = api.post("/cases", json=case_payload(sku="STOVE")).json["number"]
    if status == "awaiting_customer":
        assert api.action(number, "request_info", {"message": "A photo please"}).status_code == 200
    return number


def test_a_new_return_request_by_mail_opens_an_email_case_with_its_photo(app, api, tenant):
    message = EmailMessage()
    message["From"], message["To"] = "María López <maria.lopez@example.com>", "returns@shop.example"
    message["Subject"], message["Message-ID"] = "Return order #1001", "<new-1@example.com>"
    message.set_content("Hi, I want to return the tent TENT-2P from order #1001, it arrived broken.\n\nMaría")
    message.add_attachment(PNG, maintype="image", subtype="png", filename="damage.png")
    outcome, number, _ = _ingest(app, tenant, bytes(message))
    assert outcome == "case_created"
    case = api.get(f"/cases/{number}").json
    assert case["channel"] == "email" and case["ticket"]["id"] is None
    assert [e["filename"] for e in case["evidence"]] == ["damage.png"]
    # The customer's second mail in the same thread lands on the same case, not a new one.
    again = _mail("Any news?", subject="Re: Return order #1001", message_id="<new-2@example.com>",
                  In_Reply_To="<new-1@example.com>", References="<new-1@example.com>")
    assert _ingest(app, tenant, again)[:2] == ("threaded", number)
    assert len(api.get("/cases").json["items"]) == 1


def test_a_reply_to_the_token_address_threads_and_reopens_review(app, api, tenant):
    number = _case(api, "awaiting_customer")
    with app.app_context():
        case = db.session.scalar(sa.select(ReturnCase).where(ReturnCase.number == number))
        address = reply_address("returns@shop.example", case_token(token_key(), tenant.id, case.id))
    raw = _mail("Here is the photo.\n\nOn Mon, 1 Jan 2026 at 10:00, Shop <returns@shop.example> wrote:\n> A photo please",
                to=address, subject="no tag at all")
    outcome, matched, mail_id = _ingest(app, tenant, raw)
    assert (outcome, matched) == ("threaded", number)
    assert api.get(f"/cases/{number}").json["status"] == "pending_review"
    with app.app_context():
        mail = db.session.get(MailMessage, mail_id)
        assert mail.matched_by == "token" and mail.reply_text == "Here is the photo."
        assert "A photo please" in mail.quoted_text
        message = db.session.scalars(sa.select(CaseEvent).where(CaseEvent.action == "message")).all()[-1]
        assert message.data["text"] == "Here is the photo."


def test_a_forged_token_does_not_thread(app, api, tenant):
    number = _case(api)
    forged = f"returns+{case_token(b'guess' * 8, tenant.id, 1)}@shop.example"
    outcome, matched, _ = _ingest(app, tenant, _mail("hello there", to=forged, subject="hello"))
    assert matched != number or outcome != "threaded"


def test_subject_tag_threads_only_for_the_cases_customer(app, api, tenant):
    number = _case(api)
    assert _ingest(app, tenant, _mail("update", subject=f"Re: your return [{number}]"))[:2] == ("threaded", number)
    stranger = _mail("update", subject=f"Re: your return [{number}]", sender="eve@evil.example", message_id="<e@x>")
    assert _ingest(app, tenant, stranger)[1] != number


def test_auto_replies_are_recorded_not_answered_and_xars_alone_is_not_one(app, api, tenant):
    number = _case(api, "awaiting_customer")
    auto = _mail("I am out of office.", subject=f"Automatic reply: [{number}]", Auto_Submitted="auto-replied")
    assert _ingest(app, tenant, auto)[:2] == ("recorded", number)
    assert api.get(f"/cases/{number}").json["status"] == "awaiting_customer", "an auto-reply is no answer"
    person = _mail("Photo attached.", subject=f"Re: [{number}]", message_id="<p@x>", X_Auto_Response_Suppress="All")
    assert _ingest(app, tenant, person)[:2] == ("threaded", number)


DSN = b"""From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r
To: returns@shop.example\r
Subject: Undelivered Mail Returned to Sender\r
Message-ID: <b@mx.example.com>\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r
\r
--B\r
Content-Type: text/plain\r
\r
I'm sorry to have to inform you that your message could not be delivered.\r
--B\r
Content-Type: message/delivery-status\r
\r
Reporting-MTA: dns; mx.example.com\r
\r
Final-Recipient: rfc822; Maria.Lopez@example.com\r
Action: failed\r
Status: 5.1.1\r
--B--\r
"""


def test_a_bounce_marks_the_customer_bouncing(app, api, tenant):
    outcome, _, _ = _ingest(app, tenant, DSN)
    assert outcome == "recorded"
    with app.app_context():
        customer = db.session.scalar(sa.select(Customer).where(Customer.email == "maria.lopez@example.com"))
        assert customer.mail_bouncing_since is not None
    assert api.get("/cases").json["items"] == [], "a bounce never opens a case"


def test_our_own_mail_coming_back_is_ignored(app, api, tenant):
    with app.app_context():
        marker = loop_marker(tenant.id)
    looped = _mail("RMA approved", **{LOOP_HEADER.replace("-", "_"): marker})
    assert _ingest(app, tenant, looped)[0] == "ignored"
    assert api.get("/cases").json["items"] == []


def test_mail_without_a_sender_is_kept_as_rejected(app, api, tenant):
    outcome, _, mail_id = _ingest(app, tenant, b"Subject: hi\r\n\r\nI want to return order #1001")
    assert outcome == "rejected"
    with app.app_context():
        assert "From" in db.session.get(MailMessage, mail_id).rejection_reason


@pytest.mark.skipif(not CORPORA.is_dir(), reason="shared email corpora not present")
def test_every_corpus_file_goes_through_the_whole_pipeline(app, api, tenant):
    files = [p for p in sorted(CORPORA.rglob("*")) if p.is_file() and p.suffix not in (".md", ".txt") or
             (p.is_file() and p.suffix == ".txt" and "emails" in p.parts)]
    assert len(files) > 20
    with app.app_context():
        fresh = db.session.get(Tenant, tenant.id)
        for path in files:
            data = path.read_bytes()
            raw = data if b"\nFrom:" in data[:20000] or data.startswith(b"From") or b"\nReceived:" in data[:20000] \
                else _mail(data.decode("utf-8", "replace"), message_id=f"<{path.name}@corpus>")
            result = ingest_mail(fresh, None, raw)
            assert result.outcome in {"case_created", "suggested", "ignored", "recorded", "threaded", "rejected"}
        db.session.commit()


def test_mail_in_one_worker_batch_threads_and_its_raw_message_is_kept_once(app, api, tenant):
    """A request and the customer's follow-up, waiting in the inbox together, are processed in one
    batch: the follow-up finds the case the first one opened. The raw message stays in the inbox
    row (no copy in the attachment store); ``raw_message`` reads it from there."""
    from app.connectors.schemas import IntegrationCreate, IntegrationSettings
    from app.connectors.services import connect
    from app.email.services import attachment_store, raw_message
    from app.extensions import utcnow
    from app.inbound.models import InboundEvent
    from app.inbound.services import process_received_events

    first = EmailMessage()
    first["From"], first["To"] = "María López <maria.lopez@example.com>", "returns@shop.example"
    first["Subject"], first["Message-ID"] = "Return order #1001", "<batch-1@example.com>"
    first.set_content("Hi, I want to return the tent TENT-2P from order #1001, it arrived broken.")
    first.add_attachment(PNG, maintype="image", subtype="png", filename="damage.png")
    follow_up = _mail("And the box is dented too.", subject="Re: Return order #1001", message_id="<batch-2@example.com>",
                      In_Reply_To="<batch-1@example.com>", References="<batch-1@example.com>")
    with app.app_context():
        owner = db.session.get(Tenant, tenant.id)
        integration = connect(owner, IntegrationCreate(kind="rawmime", name="Mailbox", settings=IntegrationSettings(
            address="returns@shop.example"))).integration
        db.session.add_all(InboundEvent(
            tenant_id=owner.id, integration_id=integration.id, delivery_key=f"batch-{n}", kind="rawmime",
            event_type="message.created", event={}, body=raw, received_at=utcnow()) for n, raw in
            enumerate([bytes(first), follow_up]))
        db.session.commit()
        assert process_received_events() == 2
        mails = list(db.session.scalars(sa.select(MailMessage).order_by(MailMessage.id)))
        assert [m.status for m in mails] == ["case_created", "threaded"]
        assert mails[0].case_id == mails[1].case_id is not None and mails[1].matched_by == "references"
        store = attachment_store()
        assert not store.exists(mails[0].raw_sha256)  # kept once, in the inbox
        assert raw_message(mails[0]) == bytes(first)
        evidence = db.session.get(ReturnCase, mails[0].case_id).evidence
        assert [e.filename for e in evidence] == ["damage.png"] and store.get(evidence[0].sha256) == PNG


def test_raw_message_of_mail_without_an_inbox_event_comes_from_the_store(app, api, tenant):
    from app.email.services import raw_message
    from app.errors import NotFound

    raw = _mail("Where is my refund for order #1001?", message_id="<store-1@example.com>")
    _, _, mail_id = _ingest(app, tenant, raw)
    with app.app_context():
        mail = db.session.get(MailMessage, mail_id)
        assert raw_message(mail) == raw
        mail.raw_sha256 = None
        with pytest.raises(NotFound):
            raw_message(mail)
        db.session.rollback()
