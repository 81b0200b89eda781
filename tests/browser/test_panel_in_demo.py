"""In Chromium, inside the demo helpdesk's iframe: a case from a ticket through to its resolution,
a version conflict, and the panel used with the keyboard alone.

Selectors are the panel's labels and roles: headings (the case number), ``<summary>`` texts of the
action disclosures ("Approve", "Issue a return label", …), button names ("Create the case",
"Compute the amounts", "Resolve: refund, …"), field labels ("Carrier", "Tracking number",
"Resolution") and the result region ``#panel-result``.
"""

from __future__ import annotations

import os

import re
from pathlib import Path

import sqlalchemy as sa
from flask import Flask
from playwright.sync_api import FrameLocator, Page, expect

from app.cases.models import ReturnCase
from app.demo import demo_helpdesk, demo_tenant
from app.extensions import db
from app.tenants.services import issue_token
from tests.browser.conftest import shot

# The README's pictures are refreshed only on request (REBOUND_UPDATE_SCREENSHOTS=1 make test-browser):
# a test run must not change committed files. Otherwise they go with the other artifacts.
SCREENSHOTS = (Path(__file__).resolve().parents[2] / "docs" / "screenshots"
               if os.environ.get("REBOUND_UPDATE_SCREENSHOTS") == "1"
               else Path(__file__).resolve().parent / "artifacts" / "readme")


def _panel(page: Page) -> FrameLocator:
    return page.frame_locator("iframe[title='Rebound panel']")


def _new_ticket(page: Page) -> FrameLocator:
    page.get_by_role("button", name="Simulate a new ticket").click()
    expect(page.get_by_role("heading", name=re.compile(r"^#5\d{3} · Return for order"))).to_be_visible()
    panel = _panel(page)
    expect(panel.get_by_role("heading", name="No return case on this ticket")).to_be_visible()
    return panel


def _result(panel: FrameLocator):
    return panel.locator("#panel-result")


def _act(panel: FrameLocator, summary: str, button: str | None = None, **fields: str) -> None:
    """Open an action's disclosure, fill its fields by label, press its button."""
    details = panel.locator("details.action", has=panel.locator("summary", has_text=re.compile(f"^{re.escape(summary)}$")))
    details.locator("summary").click()
    for label, value in fields.items():
        details.get_by_label(label.replace("_", " ")).fill(value)  # a required field says so after its label
    details.get_by_role("button", name=button or summary, exact=True).click()


def _case_number(panel: FrameLocator) -> str:
    heading = panel.get_by_role("heading", name=re.compile(r"^RMA-\d+"))
    expect(heading).to_be_visible()
    return re.match(r"RMA-\d+", heading.inner_text()).group(0)


def test_a_case_from_a_ticket_to_its_resolution(page: Page, app: Flask, live_server: str) -> None:
    """Create the case from the ticket's suggestion, ask for a photo, get the customer's email
    reply, approve, issue a label, receive, inspect, resolve; the ticket shows what went out."""
    panel = _new_ticket(page)
    expect(panel.get_by_text("This looks like a")).to_be_visible()
    panel.get_by_role("button", name="Create the case").click()
    number = _case_number(panel)
    expect(_result(panel)).to_contain_text(f"Opened {number}")
    expect(panel.get_by_role("heading", name=re.compile(number))).to_contain_text("review")
    shot(page, "02-case-created")

    _act(panel, "Ask the customer", **{"What to ask the customer": "Could you send us a photo of the damage?"})
    expect(_result(panel)).to_contain_text("Ask the customer: done")

    page.get_by_role("button", name="Simulate the customer's email reply").click()
    expect(page.get_by_role("status")).to_contain_text(f"Reply added to {number} (matched by token)")
    expect(page.get_by_text("threaded by token")).to_be_visible()
    expect(_panel(page).get_by_role("heading", name=re.compile(number))).to_contain_text("review")
    panel = _panel(page)

    _act(panel, "Approve")
    expect(_result(panel)).to_contain_text("Approve: done")
    shot(page, "03-approved")
    _act(panel, "Issue a return label", Carrier="DHL", **{"Tracking number": "JD014600000001"})
    expect(_result(panel)).to_contain_text("Issue a return label: done")
    _act(panel, "Receive items")
    expect(_result(panel)).to_contain_text("Receive items: done")
    _act(panel, "Inspect items")
    expect(_result(panel)).to_contain_text("Inspect items: done")

    resolve = panel.locator("details.action", has=panel.locator("summary", has_text=re.compile("^Resolve$")))
    resolve.locator("summary").click()
    resolve.get_by_label("Resolution", exact=True).select_option("refund")
    resolve.get_by_role("button", name="Compute the amounts").click()
    panel.get_by_role("group", name="Amounts before confirming").wait_for()
    expect(panel.get_by_role("group", name="Amounts before confirming")).to_contain_text("Customer gets")
    panel.get_by_role("button", name=re.compile(r"^Resolve: refund, ")).click()
    expect(_result(panel)).to_contain_text("Resolve: done")
    with app.app_context():
        case = db.session.scalar(sa.select(ReturnCase).where(ReturnCase.number == number))
        assert case.status == "resolving" and case.settlements[-1].kind == "refund"

    # What went out: every note and reply is in the ticket's outbox; the worker delivers them to the
    # stand-in helpdesk's API (here once, in-process, against this live server).
    page.reload()
    updates = page.get_by_role("table", name="Updates from Rebound")
    expect(updates).to_contain_text("internal note")
    expect(updates).to_contain_text("public reply")
    waiting = updates.locator(".pill.pending")
    expect(waiting.first).to_be_visible()
    _deliver_outbox(app, live_server)
    page.reload()
    expect(waiting).to_have_count(0)
    expect(updates.locator(".pill.delivered").first).to_be_visible()
    expect(page.get_by_test_id("ticket-status")).to_have_text("pending")  # approve's status push, delivered
    shot(page, "04-resolved-and-delivered", full_page=True)
    _publish(page, "demo-ticket-with-panel.png")


def _deliver_outbox(app: Flask, live_server: str) -> None:
    """Point the demo helpdesk's write-back at the live server and run the dispatcher once."""
    from app.connectors.schemas import IntegrationSettings
    from app.connectors.services import update_settings
    from app.outbound.dispatcher import drain

    with app.app_context():
        tenant = demo_tenant()
        integration = demo_helpdesk(tenant)
        settings = IntegrationSettings.model_validate(integration.settings)
        key = integration.public_key
        update_settings(tenant, integration.id, settings.model_copy(
            update={"base_url": f"{live_server}/demo/helpdesk-api/{key}"}))
        drain()
        db.session.remove()


def test_a_version_conflict_shows_what_changed_and_the_retry_works(page: Page, app: Flask) -> None:
    """The case changes through the API between render and click: the panel answers with what
    changed and keeps the form; sending again approves."""
    panel = _new_ticket(page)
    panel.get_by_role("button", name="Create the case").click()
    number = _case_number(panel)
    with app.app_context():
        token = issue_token(demo_tenant().id, "browser-test").plain
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    held = client.post(f"/api/v1/cases/{number}/actions/hold", json={"reason": "Checking with the warehouse"},
                       headers=headers)
    assert held.status_code == 200, held.get_data(as_text=True)
    released = client.post(f"/api/v1/cases/{number}/actions/release", json={}, headers=headers)
    assert released.status_code == 200, released.get_data(as_text=True)

    _act(panel, "Approve")
    expect(_result(panel)).to_contain_text(f"{number} changed while you were working on it")
    expect(_result(panel)).to_contain_text("Put on hold")
    expect(_result(panel)).to_contain_text("check them and send again")
    shot(page, "05-version-conflict")
    panel.locator("details.action[open]").get_by_role("button", name="Approve", exact=True).click()
    expect(_result(panel)).to_contain_text("Approve: done")


def _active(page: Page) -> tuple[str, str]:
    """The focused element inside the panel's frame: (tag, its text or value)."""
    frame = page.frame(name="rebound-panel")
    assert frame is not None
    return tuple(frame.evaluate(
        "() => { const e = document.activeElement; if (!e) return ['', '']; "
        "const t = (e.tagName === 'INPUT' ? (e.value || '') : (e.innerText || '')).trim(); return [e.tagName, t]; }"))


def _tab_to(page: Page, tag: str, text: str | re.Pattern[str], limit: int = 120) -> None:
    """Press Tab until the panel's focused element is ``tag`` with ``text``."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused_tag, focused_text = _active(page)
        matches = text.search(focused_text) if isinstance(text, re.Pattern) else focused_text == text
        if focused_tag == tag and matches:
            return
    raise AssertionError(f"Tab never reached <{tag.lower()}> {text!r}")


def test_the_panel_works_with_the_keyboard_alone(page: Page) -> None:
    """Tab, Enter and Space only: create the case from the ticket, open Approve, approve."""
    for _ in range(10):  # the top page first: to the helpdesk's own button
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.innerText") == "Simulate a new ticket":
            break
    page.keyboard.press("Enter")
    panel = _panel(page)
    expect(panel.get_by_role("heading", name="No return case on this ticket")).to_be_visible()

    _tab_to(page, "BUTTON", "Create the case")
    page.keyboard.press("Enter")
    number = _case_number(panel)
    _tab_to(page, "SUMMARY", "Approve")
    page.keyboard.press("Enter")  # opens the disclosure
    expect(panel.locator("details#action-approve")).to_have_attribute("open", "")
    _tab_to(page, "BUTTON", "Approve")
    page.keyboard.press("Space")
    expect(_result(panel)).to_contain_text(f"Approve: done. {number} is now approved")
    shot(page, "06-keyboard-approved")


def _publish(page: Page, name: str) -> None:
    """A small copy of the current view for the README tour (see ``SCREENSHOTS``)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name))


def test_readme_tour_screenshots(page: Page) -> None:
    """The README's tour pictures: the ticket list with a ticket, and a new ticket with its panel."""
    _new_ticket(page)
    _publish(page, "demo-new-ticket.png")
    page.get_by_role("link", name="← All tickets").click()
    expect(page.get_by_role("table", name="Tickets")).to_be_visible()
    _publish(page, "demo-ticket-list.png")
    assert all((SCREENSHOTS / n).stat().st_size < 400_000 for n in ("demo-new-ticket.png", "demo-ticket-list.png"))
