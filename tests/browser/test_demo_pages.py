"""In Chromium: the demo helpdesk's ticket list and ticket view, and the loop around the panel
(ticket in, updates out, the customer's email reply back)."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import shot


def test_a_simulated_ticket_opens_with_the_panel_beside_it(page: Page) -> None:
    """The empty list offers to simulate a ticket; the new ticket shows the customer's message and
    frames the panel, opened through a signed context link."""
    expect(page.get_by_role("heading", name="Tickets")).to_be_visible()
    shot(page, "01-empty-ticket-list")
    page.get_by_role("button", name="Simulate a new ticket").click()
    expect(page.get_by_role("heading", name="#5001 · Return for order #10000")).to_be_visible()
    expect(page.get_by_text("it arrived damaged")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Ticket 5001 came in (webhook: processed)")
    frame = page.locator("iframe[title='Rebound panel']")
    expect(frame).to_be_visible()
    assert "/sidebar/open/" in (frame.get_attribute("src") or "")
    page.get_by_role("link", name="← All tickets").click()
    expect(page.get_by_role("table", name="Tickets")).to_contain_text("Return for order #10000")
    expect(page.get_by_role("table", name="Tickets")).to_contain_text("none yet")
