"""Mail providers through POST /webhooks/{key}: each signed sample becomes a mail on a case, via
the same inbox as helpdesk events; bad auth, oversized mail and broken bodies are refused and counted."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from app.email.models import MailMessage
from app.extensions import db
from integrations.mail import get_mail_adapter
from integrations.mail.samples import FROM_ADDRESS
from tests.factories import order_payload

BOOTS = [{"sku": "BOOTS-42", "title": "Hiking boots", "quantity": 1, "unit_price": "129.00", "category": "shoes"}]


@pytest.fixture()
def boots_order(api):
    api.post("/orders", json=order_payload("1001", email=FROM_ADDRESS, lines=BOOTS))


def _connect(api, kind: str, **extra):
    body = api.post("/integrations", json={"kind": kind, "name": f"{kind} inbox", **extra}).json
    return body["webhook_url"].rsplit("/", 1)[1], body["signing_secret"]


def _send(client, kind: str, key: str, secret: str, delivery: str = "d1", suffix: str = ""):
    body, headers = get_mail_adapter(kind).signed_sample(secret, datetime.now(timezone.utc), delivery)
    return client.post(f"/webhooks/{key}{suffix}", data=body, headers=headers)


@pytest.mark.parametrize("kind, suffix", [("postmark", ""), ("mailgun", ""), ("mailgun", "/mime"),
                                          ("sendgrid", ""), ("rawmime", "")])
def test_each_provider_delivers_a_mail_that_opens_a_case(app, api, client, boots_order, kind, suffix):
    key, secret = _connect(api, kind, signing_secret="s3cret-for-the-tests-0123456789") if kind in (
        "mailgun", "postmark", "sendgrid") else _connect(api, kind)
    response = _send(client, kind, key, secret, suffix=suffix)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json["status"] == "processed"
    cases = api.get("/cases").json["items"]
    assert len(cases) == 1 and cases[0]["channel"] == "email"
    case = api.get(f"/cases/{cases[0]['number']}").json
    assert case["lines"][0]["sku"] == "BOOTS-42"
    assert [e["filename"] for e in case["evidence"]] == ["boots.png"]
    with app.app_context():
        mail = db.session.scalar(sa.select(MailMessage))
        assert mail.from_address == FROM_ADDRESS and "hiking boots" in mail.reply_text
    # The provider retries the same delivery: nothing new.
    again = _send(client, kind, key, secret, suffix=suffix)
    assert again.status_code == 200 and again.json["status"] == "duplicate"
    assert len(api.get("/cases").json["items"]) == 1


def test_a_wrong_signature_is_refused_and_counted(api, client, boots_order):
    key, _ = _connect(api, "rawmime")
    response = _send(client, "rawmime", key, "whsec_" + "A" * 44)
    assert response.status_code == 401
    assert api.get("/cases").json["items"] == []
    integration = api.get("/integrations").json["items"][0]
    assert integration["rejected_count"] == 1


def test_postmark_wrong_basic_auth_is_refused(api, client):
    key, _ = _connect(api, "postmark", signing_secret="s3cret-for-the-tests-0123456789")
    response = _send(client, "postmark", key, "not-the-password-at-all")
    assert response.status_code == 401


def test_broken_json_is_a_400_naming_the_body(api, client):
    key, secret = _connect(api, "postmark", signing_secret="s3cret-for-the-tests-0123456789")
    _, headers = get_mail_adapter("postmark").signed_sample(secret, datetime.now(timezone.utc), "x")
    response = client.post(f"/webhooks/{key}", data=b"{not json", headers=headers)
    assert response.status_code == 400 and response.json["error"]["code"] == "invalid_payload"


def test_oversized_mail_is_a_413(app, api, client):
    key, secret = _connect(api, "rawmime")
    app.config["REBOUND_MAIL_MAX_BYTES"] = 10_000
    try:
        huge = b"From: a@example.com\r\nSubject: big\r\n\r\n" + b"x" * 50_000
        headers = get_mail_adapter("rawmime").sign(huge, secret, datetime.now(timezone.utc), "big")
        response = client.post(f"/webhooks/{key}", data=huge, headers={**headers, "Content-Type": "message/rfc822"})
    finally:
        app.config["REBOUND_MAIL_MAX_BYTES"] = 25 * 1024 * 1024
    assert response.status_code == 413
    assert api.get("/inbound-events").json["items"] == []


def test_a_mail_bigger_than_the_api_body_limit_is_accepted(app, api, client, boots_order):
    """Mail has its own limit: a 3 MB photo is fine although API bodies stop at 1 MB."""
    key, secret = _connect(api, "rawmime")
    from email.message import EmailMessage
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = FROM_ADDRESS, "returns@shop.example", "Return order #1001"
    message["Message-ID"] = "<big@example.com>"
    message.set_content("I want to return the hiking boots BOOTS-42 from order #1001, they are too small.")
    message.add_attachment(b"\x89PNG" + b"\x01" * 3_000_000, maintype="image", subtype="png", filename="big.png")
    raw = bytes(message)
    headers = get_mail_adapter("rawmime").sign(raw, secret, datetime.now(timezone.utc), "big-ok")
    response = client.post(f"/webhooks/{key}", data=raw, headers={**headers, "Content-Type": "message/rfc822"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json["status"] == "processed"
