"""The demo helpdesk at /: simulated tickets and email replies through the real pipeline, the
outbox shown per ticket, the stand-in helpdesk API, and nothing of another tenant's."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.cases import schemas
from app.cases.models import ReturnCase
from app.cases.services import Actor, create_case, perform_action
from app.cases.states import Action
from app.connectors.models import Integration
from app.connectors.services import credentials
from app.demo import DEMO_HELPDESK_KIND, demo_helpdesk, demo_tenant
from app.email.models import MailMessage
from app.extensions import db
from app.inbound.models import InboundEvent
from app.intake.models import Suggestion
from app.outbound.models import OutboxMessage

AGENT = Actor(type="agent", id="demo-agent", channel="agent")


@pytest.fixture()
def demo(app: Flask, runner, client: FlaskClient) -> Iterator[FlaskClient]:
    result = runner.invoke(args=["demo", "load"])
    assert result.exit_code == 0, result.output
    yield client


def _new_ticket(client: FlaskClient) -> str:
    response = client.post("/demo/tickets")
    assert response.status_code == 303, response.get_data(as_text=True)
    return response.headers["Location"].rsplit("/", 1)[1]


def _open_case(app: Flask, ticket_id: str) -> str:
    """What the panel's "create case" does with the suggestion: open the case it proposes."""
    with app.app_context():
        tenant = demo_tenant()
        integration = demo_helpdesk(tenant)
        suggestion = db.session.scalar(sa.select(Suggestion).where(Suggestion.ticket_id == ticket_id))
        case = create_case(tenant, schemas.CaseCreate.model_validate(suggestion.proposal), AGENT,
                           integration_id=integration.id)
        return case.number


def test_the_demo_helpdesk_is_off_unless_enabled(app: Flask, demo: FlaskClient) -> None:
    """With REBOUND_DEMO_HELPDESK off every demo route is a 404 and nothing is created."""
    app.config["REBOUND_DEMO_HELPDESK"] = False
    try:
        assert demo.get("/").status_code == 404
        assert demo.post("/demo/tickets").status_code == 404
        assert demo.get("/tickets/5001").status_code == 404
    finally:
        app.config["REBOUND_DEMO_HELPDESK"] = True
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(InboundEvent)) == 0


def test_before_demo_load_the_page_says_how_to_load_it(client: FlaskClient) -> None:
    """Without the demo tenant, / answers 404 with the command to run; no ticket can be simulated."""
    response = client.get("/")
    assert response.status_code == 404 and "flask demo load" in response.get_data(as_text=True)
    assert client.post("/demo/tickets").status_code == 404


def test_demo_load_twice_makes_one_demo_helpdesk(app: Flask, runner, demo: FlaskClient) -> None:
    """`flask demo load` stays idempotent: a second run adds no second integration."""
    assert runner.invoke(args=["demo", "load"]).exit_code == 0
    with app.app_context():
        tenant = demo_tenant()
        helpdesks = db.session.scalars(sa.select(Integration).where(Integration.tenant_id == tenant.id)).all()
        assert [h.kind for h in helpdesks] == [DEMO_HELPDESK_KIND]
        assert helpdesks[0].settings["base_url"].endswith(f"/demo/helpdesk-api/{helpdesks[0].public_key}")


def test_the_demo_helpdesks_address_follows_the_public_url(app: Flask, runner, demo: FlaskClient,
                                                         monkeypatch) -> None:
    """`make run` on another port: the next `flask demo load` points write-back at the new address."""
    monkeypatch.setitem(app.config, "REBOUND_PUBLIC_URL", "http://127.0.0.1:5091")
    assert runner.invoke(args=["demo", "load"]).exit_code == 0
    with app.app_context():
        helpdesk = demo_helpdesk(demo_tenant())
        assert helpdesk.settings["base_url"] == f"http://127.0.0.1:5091/demo/helpdesk-api/{helpdesk.public_key}"
        assert helpdesk.settings["auto_create_min_confidence"] == 1.0, "the other settings stay"


def test_a_simulated_ticket_goes_through_the_webhook_and_intake(app: Flask, demo: FlaskClient) -> None:
    """A new ticket is a signed webhook delivery: stored in the inbox, processed, and turned into a
    suggestion with the order and line found; the ticket view frames the panel via a context link."""
    ticket_id = _new_ticket(demo)
    assert ticket_id == "5001"
    with app.app_context():
        event = db.session.scalar(sa.select(InboundEvent))
        assert (event.ticket_id, event.kind, event.status) == ("5001", "zammad", "processed")
        suggestion = db.session.scalar(sa.select(Suggestion).where(Suggestion.ticket_id == "5001"))
        assert suggestion.proposal["lines"][0]["order_number"] == suggestion.order_numbers[0]
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ReturnCase).where(
            ReturnCase.ticket_id == "5001")) == 0  # the agent opens it, from the panel
        key = demo_helpdesk(demo_tenant()).public_key
    page = demo.get("/tickets/5001").get_data(as_text=True)
    assert "Return for order #" in page and "Ticket 5001 came in" in page
    link = re.search(r'<iframe src="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert link.startswith(f"/sidebar/open/{key}?ticket=5001&")
    opened = demo.get(link)
    assert opened.status_code == 303 and "/sidebar/panel?t=" in opened.headers["Location"]
    assert demo.get(link).status_code == 401  # single use: a reload of the page mints a new one
    assert "Return for order #" in demo.get("/").get_data(as_text=True)
    assert _new_ticket(demo) == "5002"


def test_actions_show_their_outbound_updates_and_an_email_reply_threads_back(app: Flask, demo: FlaskClient) -> None:
    """Approving queues a note, a reply, tags and status for the ticket (pending until the worker
    delivers them); the simulated email reply lands on the case by its reply token."""
    ticket_id = _new_ticket(demo)
    refused = demo.post(f"/demo/tickets/{ticket_id}/email-reply", follow_redirects=True)
    assert "Open a case from this ticket first" in refused.get_data(as_text=True)
    number = _open_case(app, ticket_id)
    with app.app_context():
        tenant = demo_tenant()
        case = db.session.scalar(sa.select(ReturnCase).where(ReturnCase.number == number))
        assert case.status == "pending_review"  # the first demo ticket's item arrived damaged: photo needed
        perform_action(tenant, number, Action.REQUEST_INFO, schemas.RequestInfoIn(message="A photo, please?"), AGENT)
        kinds = {m.action["kind"] for m in db.session.scalars(sa.select(OutboxMessage))}
    assert {"note", "reply"} <= kinds
    page = demo.get(f"/tickets/{ticket_id}").get_data(as_text=True)
    assert number in page and "internal note" in page and "public reply" in page and ">pending<" in page

    replied = demo.post(f"/demo/tickets/{ticket_id}/email-reply", follow_redirects=True).get_data(as_text=True)
    assert f"Reply added to {number} (matched by token)" in replied
    with app.app_context():
        mail = db.session.scalar(sa.select(MailMessage))
        case = db.session.scalar(sa.select(ReturnCase).where(ReturnCase.number == number))
        assert (mail.case_id, mail.matched_by, case.status) == (case.id, "token", "pending_review")
    assert "threaded by token" in replied


def test_the_stand_in_api_answers_only_with_the_demo_helpdesks_token(app: Flask, demo: FlaskClient, api) -> None:
    """The Zammad-shaped API Rebound's client calls: the right token works, a wrong one or another
    tenant's integration key is refused, and an unknown ticket is a 404."""
    ticket_id = _new_ticket(demo)
    with app.app_context():
        integration = demo_helpdesk(demo_tenant())
        key, token = integration.public_key, credentials(integration)["api_token"]
    base = f"/demo/helpdesk-api/{key}/api/v1"
    good = {"Authorization": f"Token token={token}"}
    answer = demo.get(f"{base}/tickets/{ticket_id}", headers=good)
    assert answer.status_code == 200 and answer.json["title"].startswith("Return for order #")
    assert demo.post(f"{base}/ticket_articles", headers=good,
                     json={"ticket_id": int(ticket_id), "body": "hi"}).status_code == 201
    assert demo.get(f"{base}/tags", headers=good, query_string={"object": "Ticket", "o_id": ticket_id}).json == {"tags": []}
    assert demo.get(f"{base}/tickets/{ticket_id}", headers={"Authorization": "Token token=wrong"}).status_code == 401
    assert demo.get(f"{base}/tickets/{ticket_id}").status_code == 401
    assert demo.get(f"{base}/tickets/99999", headers=good).status_code == 404
    assert demo.post(f"{base}/ticket_articles", headers=good, data="not json",
                     content_type="application/json").status_code == 404

    assert api.post("/integrations", json={"kind": "zammad", "name": "Acme's Zammad"}).status_code == 201
    with app.app_context():
        other_key = db.session.scalar(sa.select(Integration.public_key).where(Integration.name == "Acme's Zammad"))
    assert demo.get(f"/demo/helpdesk-api/{other_key}/api/v1/tickets/{ticket_id}", headers=good).status_code == 401


def test_another_tenants_tickets_never_show(app: Flask, demo: FlaskClient, api) -> None:
    """A ticket with the same id at another tenant's helpdesk is not listed or viewable."""
    assert api.post("/integrations", json={"kind": "zammad", "name": "Acme's Zammad"}).status_code == 201
    with app.app_context():
        other = db.session.scalar(sa.select(Integration).where(Integration.name == "Acme's Zammad"))
        db.session.add(InboundEvent(
            tenant_id=other.tenant_id, integration_id=other.id, delivery_key="x", kind="zammad",
            event_type="ticket.created", ticket_id="5001",
            event={"subject": "Secret subject of another tenant", "message": "secret"}, body=b"{}"))
        db.session.commit()
    assert "Secret subject" not in demo.get("/").get_data(as_text=True)
    assert demo.get("/tickets/5001").status_code == 404
    _new_ticket(demo)
    page = demo.get("/tickets/5001").get_data(as_text=True)
    assert "Secret subject" not in page and ">secret<" not in page


def test_hostile_ticket_ids_and_html_in_messages_are_harmless(app: Flask, demo: FlaskClient) -> None:
    """Unknown or hostile ticket ids are 404s; a message's HTML is shown as text, never as markup."""
    import json

    from app.sidebar.demo import deliver_webhook

    assert demo.get("/tickets/%3Cscript%3E").status_code == 404
    assert demo.get("/tickets/" + "9" * 500).status_code == 404
    assert demo.post("/demo/tickets/424242/email-reply").status_code == 404
    with app.test_request_context():
        integration = demo_helpdesk(demo_tenant())
        payload = {
            "ticket": {"id": 7777, "title": "<b>Return</b> order #10000", "article_count": 1, "article_ids": [1],
                       "customer": {"email": "maria.lopez@example.com", "firstname": "<i>María</i>"}},
            "article": {"id": 1, "sender": "Customer", "internal": False, "content_type": "text/plain",
                        "body": "I want to return <img src=x onerror=alert(1)> from order #10000"},
        }
        assert deliver_webhook(integration, json.dumps(payload).encode())["status"] in ("processed", "queued")
    page = demo.get("/tickets/7777").get_data(as_text=True)
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<b>Return</b>" not in page and "&lt;b&gt;Return&lt;/b&gt;" in page
