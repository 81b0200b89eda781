"""IMAP mailboxes end to end against a real Dovecot: poll → inbox → case; processed mail is
flagged and never read twice; one poller per mailbox across workers (PostgreSQL advisory lock)."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid

import pytest
import sqlalchemy as sa

from app.connectors.models import Integration
from app.email.mailbox import ADVISORY_LOCK_NAMESPACE, poll_mailboxes
from app.email.models import MailboxCursor, MailMessage
from app.extensions import db
from app.inbound.models import InboundEvent
from tests.conftest import database_kind
from tests.factories import order_payload
from tests.integration.test_mail_servers import flags_in
from tests.support.dovecot import Dovecot, append, dovecot, imap_folder  # noqa: F401

BOOTS = [{"sku": "BOOTS-42", "title": "Hiking boots", "quantity": 1, "unit_price": "129.00"}]


def _mail(subject: str, body: str, size_padding: int = 0) -> bytes:
    message = EmailMessage()
    message["From"] = "Dana <dana@example.org>"
    message["To"] = "returns@shop.example"
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="example.org")
    message.set_content(body + ("\n" + "x" * size_padding if size_padding else ""))
    return bytes(message)


@pytest.fixture()
def mailbox(api, dovecot: Dovecot, imap_folder: str):
    api.post("/orders", json=order_payload("1001", email="dana@example.org", lines=BOOTS))
    response = api.post("/integrations", json={
        "kind": "imap", "name": "Returns mailbox", "credentials": {"imap_password": dovecot.password},
        "settings": {"address": "returns@shop.example", "imap": {
            "host": dovecot.host, "port": dovecot.port, "security": "none", "username": dovecot.username,
            "folder": imap_folder, "timeout": 10}},
    })
    assert response.status_code == 201, response.json
    return response.json["id"]


def test_polled_mail_opens_a_case_once_and_is_flagged(app, api, dovecot, imap_folder, mailbox):
    append(dovecot, imap_folder, _mail("Return order #1001", "Please take back the hiking boots BOOTS-42 "
                                       "from order #1001, they are too small."))
    append(dovecot, imap_folder, _mail("Newsletter", "Big sale!", 0))
    with app.app_context():
        assert poll_mailboxes() == 2
        assert poll_mailboxes() == 0, "a processed message is never read twice"
        events = db.session.scalars(sa.select(InboundEvent).order_by(InboundEvent.id)).all()
        assert [e.status for e in events] == ["processed", "ignored"]
        assert events[0].delivery_key.startswith("imap:")
        cursor = db.session.get(MailboxCursor, mailbox)
        assert cursor.last_uid >= 2 and cursor.last_error is None
        assert db.session.scalar(sa.select(sa.func.count()).select_from(MailMessage)) == 2
    cases = api.get("/cases").json["items"]
    assert len(cases) == 1 and cases[0]["channel"] == "email"
    assert all(b"$Rebound" in flags for flags in flags_in(dovecot, imap_folder).values())


def test_the_api_shows_how_far_the_mailbox_was_read(app, api, dovecot, imap_folder, mailbox):
    assert api.get(f"/integrations/{mailbox}/mailbox").json == {
        "polled": False, "uidvalidity": None, "last_uid": 0, "last_polled_at": None, "last_error": None}
    append(dovecot, imap_folder, _mail("Hello", "just saying hi"))
    with app.app_context():
        poll_mailboxes()
    status = api.get(f"/integrations/{mailbox}/mailbox").json
    assert status["polled"] and status["last_uid"] >= 1 and status["uidvalidity"] and status["last_error"] is None
    helpdesk = api.post("/integrations", json={"kind": "zendesk", "name": "Zendesk"}).json
    refused = api.get(f"/integrations/{helpdesk['id']}/mailbox")
    assert refused.status_code == 422 and refused.json["error"]["code"] == "not_a_mailbox"
    assert api.get("/integrations/999999/mailbox").status_code == 404


def test_a_wrong_password_is_recorded_not_raised(app, api, dovecot, imap_folder, mailbox):
    with app.app_context():
        integration = db.session.get(Integration, mailbox)
        from app.connectors.crypto import encrypt_secrets
        from app.connectors.services import credentials
        integration.secrets_encrypted = encrypt_secrets({**credentials(integration), "imap_password": "wrong"})
        db.session.commit()
        assert poll_mailboxes() == 0
        assert "Auth" in db.session.get(MailboxCursor, mailbox).last_error
    assert "Auth" in api.get(f"/integrations/{mailbox}/mailbox").json["last_error"], "an operator can see why"


def test_oversized_mail_is_kept_as_rejected_with_its_reason(app, api, dovecot, imap_folder, mailbox):
    app.config["REBOUND_MAIL_MAX_BYTES"] = 5_000
    try:
        append(dovecot, imap_folder, _mail("Huge", "photo", size_padding=20_000))
        with app.app_context():
            poll_mailboxes()
            event = db.session.scalar(sa.select(InboundEvent))
            assert event.status == "rejected" and "over the limit" in event.last_error
    finally:
        app.config["REBOUND_MAIL_MAX_BYTES"] = 25 * 1024 * 1024


@pytest.mark.skipif(database_kind() != "postgresql", reason="advisory locks are PostgreSQL's")
def test_a_mailbox_locked_by_another_worker_is_skipped(app, api, dovecot, imap_folder, mailbox):
    append(dovecot, imap_folder, _mail("Return order #1001", "return the boots BOOTS-42 from order #1001"))
    with app.app_context():
        with db.engine.connect() as other_worker:
            other_worker.execute(sa.select(sa.func.pg_advisory_lock(ADVISORY_LOCK_NAMESPACE, mailbox)))
            assert poll_mailboxes() == 0
            other_worker.execute(sa.select(sa.func.pg_advisory_unlock(ADVISORY_LOCK_NAMESPACE, mailbox)))
        assert poll_mailboxes() == 1
