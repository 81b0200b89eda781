"""What each case action writes to its ticket: the default pushes, tenant settings, canned replies
rendered at enqueue time (tenant overrides, the case's locale), and the integration's status and tag
maps and custom fields. Nothing is delivered here; the messages in the outbox are inspected.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from app.cases.models import CaseEvent
from app.cases.schemas import (
    CaseCreate, InspectIn, IssueLabelIn, ReasonRequiredIn, ReceiveIn, ResolveIn, ShipIn,
)
from app.cases.services import Actor, create_case, perform_action
from app.cases.states import Action
from app.connectors.schemas import IntegrationCreate, IntegrationSettings
from app.connectors.services import connect
from app.extensions import db
from app.orders.schemas import OrderUpsert
from app.orders.services import upsert_order
from app.outbound import canned_store, pushes
from app.outbound.models import CannedTemplate, OutboxMessage
from app.outbound.schemas import CannedTemplateIn, PushSettings
from app.tenants.services import create_tenant
from tests.factories import case_payload, order_payload

AGENT = Actor(type="agent", id="agent-7", channel="sidebar")
TICKETS = iter(range(7000, 8000))


def _setup(**settings: Any):
    tenant = create_tenant("Northwind Outdoor", slug=f"nw{next(TICKETS)}").token.tenant
    upsert_order(tenant, OrderUpsert.model_validate(order_payload()))
    integration = connect(tenant, IntegrationCreate(
        kind="zendesk", name="Support", credentials={"api_email": "agent@example.com", "api_token": "t0ken-for-tests"},
        settings=IntegrationSettings(base_url="http://127.0.0.1:9", **settings),
    )).integration
    return tenant, integration


@pytest.fixture()
def setup(app_ctx: Flask):
    return _setup()


def _open(tenant, integration, order: str = "1001", **overrides: Any):
    data = CaseCreate.model_validate(case_payload(order, ticket={"provider": "zendesk", "id": str(next(TICKETS))},
                                                  **overrides))
    return create_case(tenant, data, AGENT, integration_id=integration.id)


def _messages(case) -> list[dict[str, Any]]:
    db.session.expire_all()
    rows = db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.case_id == case.id).order_by(OutboxMessage.id))
    return [{**m.action, "_key": m.idempotency_key} for m in rows]


def _for(case, action: str) -> list[dict[str, Any]]:
    """The messages of the case's latest ``action`` event."""
    event_id = db.session.scalar(sa.select(sa.func.max(CaseEvent.id)).where(CaseEvent.case_id == case.id,
                                                                             CaseEvent.action == action))
    return [m for m in _messages(case) if m["_key"].split(":")[1] == str(event_id)]


def _kinds(messages: list[dict[str, Any]]) -> list[str]:
    return [m["kind"] for m in messages]


def _to_resolving(tenant, case) -> None:
    perform_action(tenant, case.number, Action.ISSUE_LABEL,
                   IssueLabelIn(carrier="DHL", tracking_number="JD0146", label_url="https://labels.example.com/l.pdf"),
                   AGENT)
    perform_action(tenant, case.number, Action.SHIP, ShipIn(), AGENT)
    perform_action(tenant, case.number, Action.RECEIVE, ReceiveIn(), AGENT)
    line = case.lines[0]
    perform_action(tenant, case.number, Action.INSPECT, InspectIn.model_validate(
        {"lines": [{"line_id": line.id, "condition_grade": "A", "disposition": "restock", "quantity_accepted": 1}]}),
        AGENT)


# ---- the defaults ---------------------------------------------------------------------------------

def test_an_auto_approved_case_gets_a_note_the_approval_reply_the_tag_and_pending(setup) -> None:
    tenant, integration = setup
    case = _open(tenant, integration)
    assert case.status == "authorized"
    created, approved = _for(case, "create"), _for(case, "approve")
    # Approved at once: the approval's reply replaces "request received" (one email, not two).
    assert _kinds(created) == ["note"]
    assert _kinds(approved) == ["note", "reply", "tags", "status"]
    note, reply, tags, status = approved
    assert note["body_text"].startswith(f"{case.number} approved by policy")
    assert "Every policy check passed." in note["body_text"] and "Resolutions offered: refund" in note["body_text"]
    assert f"your return {case.number} is approved" in reply["body_text"]
    assert "How to send your return" in reply["body_text"] and "1 × Trailhead tent" in reply["body_text"]
    assert reply["recipient_email"] == "maria.lopez@example.com"
    assert reply["body_html"].startswith("<p>") and case.number in reply["body_html"]
    assert tags["add_tags"] == ["rma-approved"] and tags["remove_tags"] == []
    assert status["status"] == "pending"
    event_id = db.session.scalar(sa.select(CaseEvent.id).where(CaseEvent.case_id == case.id, CaseEvent.action == "approve"))
    assert [m["_key"] for m in approved] == [f"{case.id}:{event_id}:{n}" for n in range(4)]


def test_a_reviewed_case_is_acknowledged_then_rejected_with_the_reason(setup) -> None:
    tenant, integration = setup
    case = _open(tenant, integration, lines=[{"order_number": "1001", "sku": "STOVE", "quantity": 1,
                                              "reason_code": "changed_mind"}])
    assert case.status == "pending_review"
    created = _for(case, "create")
    assert _kinds(created) == ["note", "reply"]
    assert f"We've received your return request {case.number}" in created[1]["body_text"]
    flagged = _for(case, "flag")
    assert _kinds(flagged) == ["note"]
    assert "Checks that failed:\n- The item is marked final sale" in flagged[0]["body_text"]
    reason = "Gas stoves are final sale, as the product page says."
    perform_action(tenant, case.number, Action.REJECT, ReasonRequiredIn(reason=reason), AGENT)
    rejected = _for(case, "reject")
    assert _kinds(rejected) == ["note", "reply"]
    assert rejected[0]["body_text"].startswith(f"{case.number} rejected by an agent: {reason}")
    assert reason in rejected[1]["body_text"] and "we can't accept this return" in rejected[1]["body_text"]


@pytest.mark.parametrize(("kind", "key_text", "exchange_value"), [
    ("refund", "We've issued the refund", None),
    ("store_credit", "store credit", None),
    ("exchange", "Your exchange for return", Decimal("249.00")),
])
def test_resolve_replies_with_the_template_of_the_settlement_kind(setup, kind, key_text, exchange_value) -> None:
    tenant, integration = setup
    case = _open(tenant, integration)
    _to_resolving(tenant, case)
    assert _kinds(_for(case, "receive")) == ["note", "reply"] and _kinds(_for(case, "ship")) == ["note"]
    assert "https://labels.example.com/l.pdf" in _for(case, "issue_label")[1]["body_text"]
    perform_action(tenant, case.number, Action.RESOLVE, ResolveIn(kind=kind, exchange_value=exchange_value), AGENT)
    resolved = _for(case, "resolve")
    assert _kinds(resolved) == ["note", "reply"]  # one reply: the one for this kind of settlement
    assert f"Settlement: {kind.replace('_', ' ')}" in resolved[0]["body_text"]
    assert key_text in resolved[1]["body_text"] and case.number in resolved[1]["body_text"]
    if kind == "refund":
        assert "€249.00" in resolved[1]["body_text"]


# ---- tenant settings, templates and locales --------------------------------------------------------

def test_tenant_push_settings_replace_an_actions_defaults(setup) -> None:
    tenant, integration = setup
    pushes.update_push_settings(tenant, PushSettings.model_validate({"actions": {
        "approve": [{"kind": "reply", "template": "approved"}, {"kind": "tags", "add_tags": ["rma"], "remove_tags": ["new"]}],
        "create": [],
    }}))
    case = _open(tenant, integration)
    assert _for(case, "create") == []
    assert _kinds(_for(case, "approve")) == ["reply", "tags"]
    assert _for(case, "approve")[1]["add_tags"] == ["rma"] and _for(case, "approve")[1]["remove_tags"] == ["new"]
    effective = pushes.get_push_settings(tenant)
    assert effective.actions["reject"][1].template == "rejected"  # not set: still the default


def test_a_tenant_template_changes_the_reply_and_the_message_is_a_snapshot(setup) -> None:
    tenant, integration = setup
    canned_store.save_template(tenant, "approved", "en", CannedTemplateIn(
        subject="[{{ case_number }}] Approved", body="Dear {{ customer_name }}, send {{ case_number }} back to us.\n"
                                                    "{{ signature }}"))
    case = _open(tenant, integration)
    reply = _for(case, "approve")[1]
    assert reply["body_text"] == f"Dear María López, send {case.number} back to us.\nThe Northwind Outdoor team\n"
    canned_store.delete_template(tenant, "approved", "en")
    assert _for(case, "approve")[1]["body_text"] == reply["body_text"]  # rendered at enqueue time, frozen


def test_the_reply_is_in_the_case_locale_with_the_tenant_default_as_fallback(setup) -> None:
    tenant, integration = setup
    german = _open(tenant, integration, locale="de", quantity=1)
    assert "genehmigt" in _for(german, "approve")[1]["body_text"]
    tenant.default_locale = "fr"
    upsert_order(tenant, OrderUpsert.model_validate(order_payload("1002")))
    italian = _open(tenant, integration, "1002", locale="it")
    assert "votre retour" in _for(italian, "approve")[1]["body_text"]  # fr, the tenant default


def test_a_template_that_breaks_on_real_data_falls_back_to_the_shipped_one(setup) -> None:
    tenant, integration = setup
    # Saved under older rules (the API checks templates before saving; this one never was).
    db.session.add(CannedTemplate(tenant_id=tenant.id, key="approved", locale="en", subject="Hi",
                                  body="{{ no_such_variable }}"))
    db.session.commit()
    case = _open(tenant, integration)
    assert case.status == "authorized"  # the transition never fails over a template
    approved = _for(case, "approve")
    assert _kinds(approved) == ["note", "note", "reply", "tags", "status"]
    assert "failed" in approved[1]["body_text"] and "no_such_variable" in approved[1]["body_text"]
    assert f"your return {case.number} is approved" in approved[2]["body_text"]


# ---- the integration's maps -----------------------------------------------------------------------

def test_status_map_tag_map_and_custom_fields_follow_every_status_change(app_ctx: Flask) -> None:
    tenant, integration = _setup(
        status_map={"authorized": "open", "rejected": "solved", "pending_review": "hold"},
        tag_map={"pending_review": "rma-review", "rejected": "rma-rejected", "authorized": "rma-authorized"},
        custom_field_ids={"rma_number": "360001", "rma_status": "360002"},
    )
    case = _open(tenant, integration, lines=[{"order_number": "1001", "sku": "STOVE", "quantity": 1}])
    assert _kinds(_for(case, "create")) == ["note", "reply"]  # the flag right after it syncs the status
    flagged = _for(case, "flag")
    assert _kinds(flagged) == ["note", "status", "tags", "fields"]
    assert flagged[1]["status"] == "hold"
    assert flagged[2]["add_tags"] == ["rma-review"] and flagged[2]["remove_tags"] == []
    assert flagged[3]["fields"] == {"360001": case.number, "360002": "pending_review"}
    perform_action(tenant, case.number, Action.REJECT, ReasonRequiredIn(reason="Final sale."), AGENT)
    rejected = _for(case, "reject")
    assert _kinds(rejected) == ["note", "reply", "status", "tags", "fields"]
    assert rejected[2]["status"] == "solved"
    assert rejected[3]["add_tags"] == ["rma-rejected"] and rejected[3]["remove_tags"] == ["rma-review"]
    assert rejected[4]["fields"]["360002"] == "rejected"


def test_the_actions_own_status_push_wins_over_the_status_map(app_ctx: Flask) -> None:
    tenant, integration = _setup(status_map={"authorized": "open"}, tag_map={"authorized": "rma-authorized"})
    case = _open(tenant, integration)
    approved = _for(case, "approve")
    assert [m["status"] for m in approved if m["kind"] == "status"] == ["pending"]  # one status change only
    assert [m["add_tags"] for m in approved if m["kind"] == "tags"] == [["rma-approved"], ["rma-authorized"]]
    pushes.update_push_settings(tenant, PushSettings(sync_ticket_status=False))
    upsert_order(tenant, OrderUpsert.model_validate(order_payload("1003")))
    quiet = _open(tenant, integration, "1003")
    assert _kinds(_for(quiet, "approve")) == ["note", "reply", "tags", "status"]
    assert [m["add_tags"] for m in _for(quiet, "approve") if m["kind"] == "tags"] == [["rma-approved"]]


def test_a_status_push_without_a_status_uses_the_map_and_fields_push_sets_rma_fields(app_ctx: Flask) -> None:
    tenant, integration = _setup(status_map={"authorized": "open"}, custom_field_ids={"rma_number": "77"})
    pushes.update_push_settings(tenant, PushSettings.model_validate({"sync_ticket_status": False, "actions": {
        "approve": [{"kind": "status"}, {"kind": "fields", "fields": {"99": "yes"}}]}}))
    case = _open(tenant, integration)
    assert [(m["kind"], m.get("status"), m.get("fields")) for m in _for(case, "approve")] == [
        ("status", "open", {}), ("fields", None, {"99": "yes", "77": case.number})]


def test_a_case_without_write_back_gets_nothing(app_ctx: Flask) -> None:
    tenant, integration = _setup()
    integration.settings = {**integration.settings, "base_url": None}
    db.session.commit()
    case = _open(tenant, integration)
    assert _messages(case) == []
