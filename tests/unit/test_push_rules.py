"""Unit tests for the pure parts of ticket pushes: the defaults, the settings schema, the status
and tag sync, and the internal note's policy explanation. No app, no DB."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.cases.states import Action
from app.outbound.canned import TEMPLATE_KEYS
from app.outbound.outbox import (
    DEFAULT_PUSHES, describe, effective_pushes, policy_explanation, rma_fields, status_sync,
)
from app.outbound.schemas import CASE_ACTIONS, Push, PushSettings, ReplyIn


def test_every_action_has_defaults_and_every_default_reply_has_a_template() -> None:
    assert set(CASE_ACTIONS) == {"create", *(a.value for a in Action)} == set(DEFAULT_PUSHES)
    for action, pushes in DEFAULT_PUSHES.items():
        assert pushes[0].kind == "note", action  # the agents always see what happened
        assert all(p.template in TEMPLATE_KEYS for p in pushes if p.kind == "reply")
    customer_facing = {"create", "approve", "reject", "request_info", "issue_label", "receive", "inspect", "resolve",
                       "close", "expire"}
    assert {a for a, pushes in DEFAULT_PUSHES.items() if any(p.kind == "reply" for p in pushes)} == customer_facing
    # Every shipped template is used by some default, except none.
    used = {p.template for pushes in DEFAULT_PUSHES.values() for p in pushes if p.template}
    assert used == set(TEMPLATE_KEYS)


def test_effective_pushes_fill_in_defaults_and_keep_an_empty_list() -> None:
    settings = PushSettings.model_validate({"actions": {"approve": [{"kind": "note"}], "close": []}})
    effective = effective_pushes(settings)
    assert set(effective) == set(CASE_ACTIONS)
    assert [p.kind for p in effective["approve"]] == ["note"]
    assert effective["close"] == []
    assert effective["reject"] == list(DEFAULT_PUSHES["reject"])


@pytest.mark.parametrize("data", [
    {"kind": "reply"},
    {"kind": "reply", "template": "nope"},
    {"kind": "tags"},
    {"kind": "tags", "add_tags": ["a b"]},
    {"kind": "status", "template": "approved"},
    {"kind": "note", "status": "open"},
    {"kind": "note", "fields": {"1": "x"}},
    {"kind": "fields", "add_tags": ["x"]},
    {"kind": "sms"},
    {"kind": "note", "unknown": True},
])
def test_push_refuses_what_does_not_fit_its_kind(data) -> None:
    with pytest.raises(ValidationError):
        Push.model_validate(data)


def test_push_settings_refuse_unknown_actions() -> None:
    with pytest.raises(ValidationError) as info:
        PushSettings.model_validate({"actions": {"teleport": []}})
    assert info.value.errors()[0]["loc"][:2] == ("actions", "teleport")


def test_reply_in_needs_key_or_text() -> None:
    assert ReplyIn.model_validate({"key": "closed"}).visibility == "public"
    for data in ({}, {"key": "closed", "text": "x"}, {"text": ""}):
        with pytest.raises(ValidationError):
            ReplyIn.model_validate(data)


def test_status_sync_maps_status_swaps_tags_and_sets_fields() -> None:
    settings = {"status_map": {"rejected": "solved"}, "tag_map": {"pending_review": "review", "rejected": "no"},
                "custom_field_ids": {"rma_number": "11", "rma_status": "12", "unknown": "13"}}
    assert status_sync("RMA-1", "pending_review", "rejected", settings) == [
        {"kind": "status", "status": "solved"},
        {"kind": "tags", "add_tags": ("no",), "remove_tags": ("review",)},
        {"kind": "fields", "fields": {"11": "RMA-1", "12": "rejected"}},
    ]
    assert status_sync("RMA-1", "requested", "authorized", {}) == []
    same_tag = {"tag_map": {"a": "rma", "b": "rma"}}
    assert status_sync("RMA-1", "a", "b", same_tag) == [{"kind": "tags", "add_tags": ("rma",), "remove_tags": ()}]
    assert rma_fields("RMA-1", "closed", {"rma_status": ""}) == {}


def test_the_policy_explanation_lists_failed_checks_and_what_would_change() -> None:
    decision = {
        "summary": "Needs review: line 1 is outside the return window.",
        "results": [{"rule": "window", "passed": False, "why": "Delivered 41 days ago."},
                    {"rule": "final_sale", "passed": True, "why": "Not final sale."}],
        "what_would_change": ["A request within 30 days would be approved."], "options": ["refund", "store_credit"],
    }
    assert policy_explanation(decision) == [
        "Policy: Needs review: line 1 is outside the return window.",
        "Checks that failed:", "- Delivered 41 days ago.",
        "What would change the decision:", "- A request within 30 days would be approved.",
        "Resolutions offered: refund, store credit.",
    ]
    assert policy_explanation(decision, already_said=decision["summary"])[0] == "Checks that failed:"
    assert policy_explanation(None) == []
    assert describe("RMA-1", "approve", "Looks fine", "agent") == "RMA-1 approved by an agent: Looks fine"
    assert describe("RMA-1", "issue_label", None, "robot") == "RMA-1 issue label"
