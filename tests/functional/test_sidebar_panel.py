"""The agent's panel through the test client: what it shows for a ticket, every action, conflicts,
the panel token (no cookies, no token from the query on POST), tenant scoping and escaping."""

from __future__ import annotations

import hashlib
import html as html_lib
import re
from html.parser import HTMLParser
from typing import Any

import pytest
import sqlalchemy as sa

from app.cases.models import Evidence, ReturnCase
from app.email.services import attachment_store
from app.extensions import db
from app.intake.models import Suggestion
from app.outbound.models import OutboxMessage
from app.sidebar import views
from app.sidebar.context import PanelContext, issue_panel_token
from app.tenants.models import Tenant
from tests.factories import case_payload, order_payload

TICKET = "4242"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


class Page(HTMLParser):
    """The parts of a panel page the tests look at: forms, inputs and labels, action sections."""

    def __init__(self, html: str):
        super().__init__()
        self.inputs: list[dict[str, str]] = []
        self.labels: set[str] = set()
        self.actions: list[str] = []
        self.scripts: list[str] = []
        self.body_attrs: dict[str, str] = {}
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag in ("input", "select", "textarea") and a.get("type") != "hidden":
            self.inputs.append(a)
        elif tag == "label" and "for" in a:
            self.labels.add(a["for"])
        elif tag == "details" and a.get("id", "").startswith("action-"):
            self.actions.append(a["id"].removeprefix("action-"))
        elif tag == "script":
            self.scripts.append(a.get("src", ""))
        elif tag == "body":
            self.body_attrs = a


class Panel:
    """Panel requests for one ticket: the token goes in the form (plain POST) or the header (htmx)."""

    def __init__(self, client: Any, token: str):
        self.client, self.token = client, token

    def get(self, **kwargs: Any):
        return self.client.get("/sidebar/panel", query_string={"t": self.token}, **kwargs)

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any):
        return self.client.post("/sidebar/panel" + path, data={"panel_token": self.token, **(data or {})}, **kwargs)

    def action(self, number: str, action: str, data: dict[str, Any] | None = None, version: int | None = None):
        payload = dict(data or {})
        if version is not None:
            payload["version"] = str(version)
        return self.post(f"/cases/{number}/actions/{action}", payload)


def _tenant_id(app, slug: str = "acme") -> int:
    with app.app_context():
        return db.session.scalar(sa.select(Tenant.id).where(Tenant.slug == slug))


def _token(app, tenant_id: int, integration_id: int, ticket: str = TICKET, **extra: Any) -> str:
    with app.app_context():
        return issue_panel_token(PanelContext(
            tenant_id=tenant_id, integration_id=integration_id, ticket_id=ticket, agent_id="agent-7",
            agent_name="Alex Agent", requester_email=extra.pop("requester_email", "maria.lopez@example.com"),
            requester_name="María López", subject=extra.pop("subject", "Tent too small"), helpdesk_origin="https://acme.zendesk.com",
            **extra))


@pytest.fixture()
def integration_id(api) -> int:
    created = api.post("/integrations", json={
        "kind": "zendesk", "name": "Support", "settings": {"base_url": "http://127.0.0.1:9"},
        "credentials": {"api_email": "agent@example.com", "api_token": "t0ken-for-tests"}})
    assert created.status_code == 201, created.json
    return created.json["id"]


@pytest.fixture()
def panel(app, client, api, integration_id) -> Panel:
    assert api.post("/orders", json=order_payload()).status_code == 200
    return Panel(client, _token(app, _tenant_id(app), integration_id))


def _case(app, api, integration_id: int, ticket: str = TICKET, **overrides: Any) -> dict[str, Any]:
    """A case opened through the API and linked to the panel's ticket."""
    response = api.post("/cases", json=case_payload(ticket={"provider": "zendesk", "id": ticket}, **overrides))
    assert response.status_code == 201, response.json
    with app.app_context():
        row = db.session.scalar(sa.select(ReturnCase).where(ReturnCase.number == response.json["number"]))
        row.integration_id = integration_id
        db.session.commit()
    return api.get(f"/cases/{response.json['number']}").json


def _status(api, number: str) -> str:
    return api.get(f"/cases/{number}").json["status"]


def _version(api, number: str) -> int:
    return api.get(f"/cases/{number}").json["version"]


# ---- what the panel shows ------------------------------------------------------------------------

def test_a_ticket_with_a_case_shows_status_lines_policy_timeline_and_only_allowed_actions(app, api, panel, integration_id):
    case = _case(app, api, integration_id)
    response = panel.get()
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    page = Page(html)
    assert case["number"] in html and "Approved" in html  # status in plain words
    assert "Issue a return label" in html and "Trailhead tent" in html
    assert "Policy decision" in html and "Within policy" in html
    assert "Case opened" in html  # the timeline
    assert page.actions == ["issue_label", "approve_returnless", "cancel", "hold"]
    assert "Set-Cookie" not in response.headers


def test_the_panel_has_csp_frame_ancestors_and_the_token_in_the_htmx_header(app, api, panel, integration_id):
    _case(app, api, integration_id)
    response = panel.get()
    assert response.headers["Content-Security-Policy"] == "frame-ancestors 'self' https://acme.zendesk.com"
    page = Page(response.get_data(as_text=True))
    assert '"X-Panel-Token"' in page.body_attrs["hx-headers"]
    # The token is refreshed: a new one, which works, is handed out with every page.
    fresh = re.search(r'name="panel_token" value="([^"]+)"', response.get_data(as_text=True)).group(1)
    assert Panel(panel.client, fresh).get().status_code == 200


def test_a_ticket_with_a_suggestion_gets_a_prefilled_create_form(app, panel, integration_id):
    with app.app_context():
        db.session.add(Suggestion(
            tenant_id=_tenant_id(app), integration_id=integration_id, ticket_id=TICKET, confidence=0.6, kind="return",
            customer_email="maria.lopez@example.com", order_numbers=["1001"], why=["Matched: zu klein"],
            proposal={"customer_email": "maria.lopez@example.com", "customer_name": "María López",
                      "lines": [{"order_number": "1001", "sku": "SOCK-3", "quantity": 2, "reason_code": "too_small"}],
                      "preferred_resolution": "exchange"}))
        db.session.commit()
    html = panel.get().get_data(as_text=True)
    assert "This looks like a return request" in html and "Matched: zu klein" in html
    assert "New case for order 1001" in html
    assert re.search(r'id="n-1-pick" name="line.1.pick" value="1" checked', html)  # SOCK-3 picked
    assert not re.search(r'id="n-0-pick" name="line.0.pick" value="1" checked', html)
    assert 'name="line.1.quantity" type="number" min="1" max="3" inputmode="numeric" value="2"' in html
    assert '<option value="exchange" selected>' in html
    assert '<option value="too_small" selected>' in html


def test_creating_the_suggested_case_marks_the_suggestion_accepted(app, api, panel, integration_id):
    with app.app_context():
        db.session.add(Suggestion(
            tenant_id=_tenant_id(app), integration_id=integration_id, ticket_id=TICKET, confidence=0.6, kind="return",
            customer_email="maria.lopez@example.com", order_numbers=["1001"], why=[], proposal={}))
        db.session.commit()
    created = panel.post("/cases", {"order_number": "1001", "line.0.sku": "SOCK-3", "line.0.pick": "1",
                                    "line.0.quantity": "1", "reason_code": "too_small",
                                    "customer_email": "maria.lopez@example.com"})
    assert created.status_code == 201, created.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(Suggestion.status)) == "accepted"
    assert api.get("/suggestions").json["items"] == [], "no longer offered as open"


def test_a_ticket_with_nothing_gets_a_blank_form_with_the_requesters_order(app, api, panel):
    html = panel.get().get_data(as_text=True)
    assert "No return case on this ticket" in html
    # The requester has one order: it is offered at once, nothing picked yet.
    assert "New case for order 1001" in html and " checked" not in html
    api.post("/orders", json=order_payload("1002"))
    two = panel.get().get_data(as_text=True)
    assert "Orders of maria.lopez@example.com" in two and "New case for order" not in two
    found = panel.post("/lookup", {"order_number": "1002"})
    assert found.status_code == 200 and "New case for order 1002" in found.get_data(as_text=True)
    missing = panel.post("/lookup", {"order_number": "nope"})
    assert missing.status_code == 404 and "No order nope found." in missing.get_data(as_text=True)
    by_email = panel.post("/lookup", {"email": "nobody@example.com"})
    assert "No orders for nobody@example.com found." in by_email.get_data(as_text=True)


def test_creating_a_case_from_the_panel_links_it_to_the_ticket(app, api, panel, integration_id):
    refused = panel.post("/cases", {"order_number": "1001", "line.0.sku": "TENT-2P", "line.0.quantity": "1",
                                    "customer_email": "maria.lopez@example.com"})
    assert refused.status_code == 422 and "Pick at least one item" in refused.get_data(as_text=True)
    created = panel.post("/cases", {
        "order_number": "1001", "line.0.sku": "TENT-2P", "line.0.pick": "1", "line.0.quantity": "1",
        "line.1.sku": "SOCK-3", "line.1.quantity": "1", "reason_code": "too_small", "preferred_resolution": "refund",
        "customer_email": "maria.lopez@example.com", "customer_name": "María López", "comment": "Too small"})
    assert created.status_code == 201, created.get_data(as_text=True)
    assert "Opened RMA-10001" in created.get_data(as_text=True)
    case = api.get("/cases/RMA-10001").json
    assert case["ticket"]["id"] == TICKET and case["ticket"]["provider"] == "zendesk"
    assert [line["sku"] for line in case["lines"]] == ["TENT-2P"]
    assert case["channel"] == "helpdesk"
    timeline = api.get("/cases/RMA-10001/timeline").json["events"]
    assert timeline[0]["actor_type"] == "agent" and timeline[0]["actor_id"] == "agent-7"
    assert "RMA-10001" in panel.get().get_data(as_text=True)


def test_too_many_items_on_create_shows_the_services_reason(app, panel):
    response = panel.post("/cases", {"order_number": "1001", "line.0.sku": "TENT-2P", "line.0.pick": "1",
                                     "line.0.quantity": "9", "customer_email": "maria.lopez@example.com",
                                     "comment": "Zu klein, bitte umtauschen"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Only 2 of SKU TENT-2P can still be returned" in html
    # What the agent entered is kept for the fix.
    assert "Zu klein, bitte umtauschen</textarea>" in html
    assert re.search(r'id="n-0-pick" name="line.0.pick" value="1" checked', html)
    assert 'name="line.0.quantity" type="number" min="1" max="2" inputmode="numeric" value="9"' in html


# ---- actions -----------------------------------------------------------------------------------------

def test_every_step_of_the_flow_through_the_panel(app, api, panel, integration_id):
    case = _case(app, api, integration_id, quantity=2)
    number, line_id = case["number"], case["lines"][0]["id"]

    def act(action: str, data: dict[str, Any], expected: str, allowed: list[str]) -> str:
        response = panel.action(number, action, data, version=_version(api, number))
        html = response.get_data(as_text=True)
        assert response.status_code == 200, html
        assert _status(api, number) == expected
        assert Page(html).actions == allowed, action
        return html

    act("issue_label", {"carrier": "DHL", "tracking_number": "JD0146"}, "awaiting_shipment",
        ["ship", "receive", "cancel", "hold"])
    act("ship", {}, "in_transit", ["receive", "hold", "mark_lost"])
    act("receive", {f"line.{line_id}.quantity": "2", f"line.{line_id}.outcome": "received"}, "received",
        ["inspect", "hold"])
    act("inspect", {f"line.{line_id}.condition_grade": "A", f"line.{line_id}.disposition": "restock",
                    f"line.{line_id}.quantity_accepted": "1", f"line.{line_id}.note": "One is worn"}, "inspected",
        ["resolve", "hold"])
    lines = api.get(f"/cases/{number}").json["lines"]
    assert (lines[0]["qty_received"], lines[0]["qty_accepted"], lines[0]["condition_grade"]) == (2, 1, "A")

    # Resolve: the amounts are computed and shown before the confirm button exists.
    preview = panel.post(f"/cases/{number}/preview-settlement", {"kind": "refund", "version": str(_version(api, number))})
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "Customer gets" in html and "249.00 EUR" in html
    assert "Resolve: refund, 249.00 EUR" in html
    assert _status(api, number) == "inspected"  # a preview changes nothing
    act("resolve", {"kind": "refund"}, "resolving", ["settle", "hold"])
    assert api.get(f"/cases/{number}/settlements").json["settlements"][0]["amount"] == "249.00"
    act("settle", {"external_ref": "re_1"}, "resolved", ["close"])
    act("close", {}, "closed", ["reopen"])
    html = act("reopen", {"reason": "Customer wrote again"}, "pending_review",
               ["approve", "reject", "request_info", "cancel", "hold"])
    assert "Customer wrote again" in html  # on the timeline


def test_approve_and_reject_from_review(app, api, panel, integration_id):
    case = _case(app, api, integration_id, reason="damaged_in_transit")
    number = case["number"]
    assert case["status"] == "pending_review"
    refused = panel.action(number, "reject", {}, version=case["version"])
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "Reason: Field required" in html
    assert 'id="action-reject" open' in html  # the form stays open for the fix
    assert _status(api, number) == "pending_review"
    approved = panel.action(number, "approve", {f"line.{case['lines'][0]['id']}.quantity": "1"}, version=case["version"])
    assert approved.status_code == 200 and _status(api, number) == "authorized"


def test_reject_with_a_reason(app, api, panel, integration_id):
    case = _case(app, api, integration_id, reason="damaged_in_transit")
    response = panel.action(case["number"], "reject", {"reason": "Outside the window"}, version=case["version"])
    assert response.status_code == 200 and _status(api, case["number"]) == "rejected"
    assert Page(response.get_data(as_text=True)).actions == ["close"]


def test_a_guard_refusal_shows_its_reasons(app, api, panel, integration_id):
    case = _case(app, api, integration_id, sku="STOVE", reason="changed_mind")  # final sale: refused by the policy
    line_id = case["lines"][0]["id"]
    response = panel.action(case["number"], "approve", {f"line.{line_id}.quantity": "1"}, version=case["version"])
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "Could not approve" in html and "was refused by the policy; authorizing it needs a reason" in html
    assert 'role="alert"' in html


def test_request_info_previews_the_message_then_sends_it(app, api, panel, integration_id):
    case = _case(app, api, integration_id, reason="damaged_in_transit")
    preview = panel.post(f"/cases/{case['number']}/canned-preview",
                         {"key": "info_requested", "for": "request_info", "message": "Please send a photo of the seam."})
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "The customer will receive" in html
    assert html.count("Please send a photo of the seam.") >= 2  # in the preview and kept in the textarea
    assert _status(api, case["number"]) == "pending_review"
    sent = panel.action(case["number"], "request_info", {"message": "Please send a photo of the seam."},
                        version=case["version"])
    assert sent.status_code == 200 and _status(api, case["number"]) == "awaiting_customer"


def test_hold_release_and_cancel(app, api, panel, integration_id):
    case = _case(app, api, integration_id)
    number = case["number"]
    held = panel.action(number, "hold", {"reason": "Checking with the warehouse"}, version=_version(api, number))
    assert held.status_code == 200 and _status(api, number) == "on_hold"
    assert Page(held.get_data(as_text=True)).actions == ["release"]
    released = panel.action(number, "release", {}, version=_version(api, number))
    assert released.status_code == 200 and _status(api, number) == "authorized"
    cancelled = panel.action(number, "cancel", {"reason": "Customer changed their mind"}, version=_version(api, number))
    assert cancelled.status_code == 200 and _status(api, number) == "cancelled"
    assert Page(cancelled.get_data(as_text=True)).actions == ["close"]


def test_an_unknown_or_system_action_is_a_404(app, api, panel, integration_id):
    case = _case(app, api, integration_id)
    assert panel.action(case["number"], "explode").status_code == 404
    assert panel.action(case["number"], "customer_replied").status_code == 404


def test_bad_numbers_in_a_form_are_readable_errors(app, api, panel, integration_id):
    case = _case(app, api, integration_id)
    panel.action(case["number"], "issue_label", {"carrier": "DHL", "tracking_number": "1"}, version=_version(api, case["number"]))
    panel.action(case["number"], "ship", {}, version=_version(api, case["number"]))
    line_id = case["lines"][0]["id"]
    response = panel.action(case["number"], "receive", {f"line.{line_id}.quantity": "two"},
                            version=_version(api, case["number"]))
    assert response.status_code == 422 and "give a whole number" in response.get_data(as_text=True)
    assert _status(api, case["number"]) == "in_transit"


# ---- version conflicts --------------------------------------------------------------------------------

def test_a_version_conflict_shows_what_changed_and_the_retry_works(app, api, panel, integration_id):
    case = _case(app, api, integration_id, reason="damaged_in_transit")
    number = case["number"]
    page = panel.get().get_data(as_text=True)
    seen = re.search(r'name="seen" value="([^"]+)"', page).group(1)
    version = int(re.search(r'name="version" value="(\d+)"', page).group(1))
    # Someone else asks the customer in the meantime (through the API).
    assert api.action(number, "request_info", {"message": "Which size do you need?"}).status_code == 200
    stale = panel.action(number, "reject", {"reason": "Outside the window", "seen": html_lib.unescape(seen)},
                         version=version)
    html = stale.get_data(as_text=True)
    assert stale.status_code == 409
    assert "changed while you were working on it" in html
    assert "Status: Waiting for review → Waiting for the customer." in html
    assert "Ask the customer by API" in html
    assert "is no longer possible in this status" in html
    assert _status(api, number) == "awaiting_customer"
    # A retry of an action still possible, with the version the conflict page carries, goes through.
    retry_version = int(re.search(r'name="version" value="(\d+)"', html).group(1))
    assert retry_version == _version(api, number)
    hold = panel.action(number, "hold", {"reason": "Waiting for the warehouse"}, version=retry_version)
    assert hold.status_code == 200 and _status(api, number) == "on_hold"


def test_a_conflict_keeps_the_agents_entries(app, api, panel, integration_id):
    case = _case(app, api, integration_id)
    number = case["number"]
    assert api.action(number, "hold", {"reason": "Looking into it"}).status_code == 200
    assert api.action(number, "release", {}).status_code == 200
    stale = panel.action(number, "issue_label", {"carrier": "UPS", "tracking_number": "1Z999"}, version=case["version"])
    html = stale.get_data(as_text=True)
    assert stale.status_code == 409 and "Your entries are kept below" in html
    assert 'id="action-issue_label" open' in html and 'value="1Z999"' in html
    assert "Put on hold by API" in html and "Release the hold by API" in html
    retry = int(re.search(r'name="version" value="(\d+)"', html).group(1))
    ok = panel.action(number, "issue_label", {"carrier": "UPS", "tracking_number": "1Z999"}, version=retry)
    assert ok.status_code == 200 and _status(api, number) == "awaiting_shipment"


# ---- the panel token ---------------------------------------------------------------------------------

def test_missing_forged_or_expired_tokens_are_401_in_html(app, client, api, panel, integration_id, monkeypatch):
    case = _case(app, api, integration_id)
    missing = client.get("/sidebar/panel")
    assert missing.status_code == 401 and missing.mimetype == "text/html"
    assert "Reload the ticket" in missing.get_data(as_text=True)
    forged = client.get("/sidebar/panel", query_string={"t": panel.token[:-4] + "AAAA"})
    assert forged.status_code == 401
    other_secret = Panel(client, panel.token.replace(".", "x.", 1))
    assert other_secret.get().status_code == 401
    assert client.post(f"/sidebar/panel/cases/{case['number']}/actions/hold",
                       data={"reason": "no token here"}).status_code == 401
    monkeypatch.setitem(app.config, "REBOUND_PANEL_TOKEN_SECONDS", -1)
    expired = panel.get()
    assert expired.status_code == 401 and "expired" in expired.get_data(as_text=True)
    assert _status(api, case["number"]) == "authorized"


def test_a_post_with_the_token_only_in_the_query_is_refused(app, client, api, panel, integration_id):
    """CSRF: a cross-site form can't set the header or know the token; the query is for GETs only."""
    case = _case(app, api, integration_id)
    response = client.post(f"/sidebar/panel/cases/{case['number']}/actions/hold",
                           query_string={"t": panel.token}, data={"reason": "Cross-site attempt"})
    assert response.status_code == 401
    assert _status(api, case["number"]) == "authorized"


def test_the_htmx_header_works_and_returns_only_the_fragment(app, client, api, panel, integration_id):
    case = _case(app, api, integration_id)
    response = client.post(f"/sidebar/panel/cases/{case['number']}/actions/hold",
                           headers={"X-Panel-Token": panel.token, "HX-Request": "true"},
                           data={"reason": "Checking stock", "version": str(case["version"])})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and _status(api, case["number"]) == "on_hold"
    assert html.lstrip().startswith('<main id="panel"') and "<html" not in html
    assert 'data-panel-token="' in html


# ---- tenants, attachments, escaping ------------------------------------------------------------------

def test_another_tenants_case_or_attachment_is_a_404(app, client, api, panel, integration_id):
    from app.tenants.services import create_tenant

    case = _case(app, api, integration_id, evidence=[{"kind": "photo", "sha256": hashlib.sha256(PNG).hexdigest(),
                                                      "content_type": "image/png", "filename": "seam.png"}])
    with app.app_context():
        key = attachment_store().put(PNG)
        create_tenant("Other shop", slug="other")
    other = Panel(client, _token(app, _tenant_id(app, "other"), integration_id))
    assert other.action(case["number"], "hold", {"reason": "Not mine to hold"}).status_code == 404
    assert client.get(f"/sidebar/panel/attachments/{key}", query_string={"t": other.token}).status_code == 404
    # Same tenant, another ticket: not this panel's case either.
    elsewhere = Panel(client, _token(app, _tenant_id(app), integration_id, ticket="9999"))
    assert elsewhere.action(case["number"], "hold", {"reason": "Wrong ticket"}).status_code == 404
    assert _status(api, case["number"]) == "authorized"
    own = client.get(f"/sidebar/panel/attachments/{key}", query_string={"t": panel.token})
    assert own.status_code == 200 and own.data == PNG
    assert own.headers["Content-Type"] == "image/png"
    assert own.headers["Content-Disposition"].startswith("inline")
    assert own.headers["X-Content-Type-Options"] == "nosniff"
    html = panel.get().get_data(as_text=True)
    assert f"/sidebar/panel/attachments/{key}?t=" in html and 'alt="photo: seam.png"' in html
    assert client.get("/sidebar/panel/attachments/not-a-key", query_string={"t": panel.token}).status_code == 404


def test_an_svg_or_document_is_never_shown_inline(app, client, api, panel, integration_id):
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    with app.app_context():
        key = attachment_store().put(svg)
    case = _case(app, api, integration_id)
    with app.app_context():
        row = db.session.scalar(sa.select(ReturnCase).where(ReturnCase.number == case["number"]))
        db.session.add(Evidence(tenant_id=row.tenant_id, case_id=row.id, kind="photo", sha256=key,
                                content_type="image/svg+xml", filename="x.svg"))
        db.session.commit()
    response = client.get(f"/sidebar/panel/attachments/{key}", query_string={"t": panel.token})
    assert response.status_code == 200 and response.headers["Content-Disposition"].startswith("attachment")
    assert "<img" not in panel.get().get_data(as_text=True)


def test_hostile_text_in_case_data_is_escaped(app, client, api, integration_id):
    hostile = '<script>alert("x")</script>'
    api.post("/orders", json=order_payload(email="evil@example.com"))
    case = _case(app, api, integration_id, customer_email="evil@example.com", customer_name=hostile,
                 note=hostile, lines=[{"order_number": "1001", "sku": "TENT-2P", "quantity": 1, "comment": hostile}])
    api.action(case["number"], "hold", {"reason": hostile})
    token = _token(app, _tenant_id(app), integration_id, subject=hostile)
    html = Panel(client, token).get().get_data(as_text=True)
    assert "&lt;script&gt;alert(" in html
    assert "<script>alert" not in html


def test_mail_on_the_timeline_shows_the_reply_text_and_the_quote_behind_a_disclosure(app, api, panel, integration_id):
    from app.email.models import MailMessage

    case = _case(app, api, integration_id)
    with app.app_context():
        row = db.session.scalar(sa.select(ReturnCase).where(ReturnCase.number == case["number"]))
        db.session.add(MailMessage(tenant_id=row.tenant_id, case_id=row.id, direction="in", status="threaded",
                                   from_address="maria.lopez@example.com", subject="Re: your return",
                                   reply_text="Here is the photo.", quoted_text="> earlier message",
                                   html_sanitized="<p>Here</p>", full_text="raw <b>stuff</b>"))
        db.session.commit()
    html = panel.get().get_data(as_text=True)
    assert "Here is the photo." in html and "Show quoted text" in html and "&gt; earlier message" in html
    assert "raw <b>stuff</b>" not in html


# ---- canned responses --------------------------------------------------------------------------------

def test_a_canned_response_is_previewed_then_queued_for_the_ticket(app, api, panel, integration_id):
    case = _case(app, api, integration_id)
    preview = panel.post(f"/cases/{case['number']}/canned-preview",
                         {"key": "approved", "locale": "de", "visibility": "public"})
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "Public reply in de" in html and case["number"] in html
    with app.app_context():
        before = db.session.scalar(sa.select(sa.func.count(OutboxMessage.id)))
    sent = panel.post(f"/cases/{case['number']}/reply", {"key": "approved", "locale": "de", "visibility": "internal"})
    assert sent.status_code == 200 and "Internal note queued" in sent.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == before + 1
    assert "Internal note" in panel.get().get_data(as_text=True)
    unknown = panel.post(f"/cases/{case['number']}/reply", {"key": "no_such_template"})
    assert unknown.status_code == 422


# ---- assets and accessibility ----------------------------------------------------------------------

def test_the_panel_works_without_htmx(app, api, panel, integration_id, monkeypatch, tmp_path):
    _case(app, api, integration_id)
    monkeypatch.setattr(views, "HTMX_DIR", tmp_path / "missing")
    response = panel.get()
    assert response.status_code == 200
    assert Page(response.get_data(as_text=True)).scripts == []
    assert panel.client.get("/sidebar/assets/htmx.min.js").status_code == 404


def test_htmx_is_served_when_installed(app, api, panel, integration_id, monkeypatch, tmp_path):
    (tmp_path / "htmx.min.js").write_text("var htmx = {};")
    monkeypatch.setattr(views, "HTMX_DIR", tmp_path)
    page = Page(panel.get().get_data(as_text=True))
    assert "/sidebar/assets/htmx.min.js" in page.scripts
    response = panel.client.get("/sidebar/assets/htmx.min.js")
    assert response.status_code == 200 and response.mimetype == "text/javascript"
    assert panel.client.get("/static/sidebar/panel.css").status_code == 200


def test_every_input_has_a_label(app, api, panel, integration_id):
    case = _case(app, api, integration_id, quantity=2)
    panel.action(case["number"], "issue_label", {"carrier": "DHL", "tracking_number": "1"}, version=_version(api, case["number"]))
    panel.action(case["number"], "receive", {}, version=_version(api, case["number"]))
    for html in (panel.get().get_data(as_text=True),
                 Panel(panel.client, _token(app, _tenant_id(app), integration_id, ticket="new")).get().get_data(as_text=True)):
        page = Page(html)
        assert page.inputs, "the page has inputs"
        unlabelled = [i for i in page.inputs if i.get("id") not in page.labels]
        assert unlabelled == []
        assert "<div role=\"button\"" not in html and "onclick" not in html
