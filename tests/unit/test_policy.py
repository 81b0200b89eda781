"""Unit tests for the return policy and its evaluation (app.cases.policy). No app, no DB."""

from __future__ import annotations

import ast
import copy
import json
import sys
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from app.cases import policy
from app.cases.money import SettlementLine, quantize, settlement_amounts
from app.cases.policy import (
    RULES,
    CaseFacts,
    Decision,
    LineFacts,
    PolicyRules,
    RuleResult,
    evaluate,
)

D = Decimal
TODAY = date(2026, 11, 25)
LINE_RULES = ("return_window", "final_sale", "excluded_category", "excluded_sku", "photo", "restocking_fee")
CASE_RULES = tuple(rule for rule in RULES if rule not in LINE_RULES)


def line(key: str = "A1", **changes: Any) -> LineFacts:
    """A line that passes every rule of the default policy unless changed."""
    base: dict[str, Any] = {
        "key": key,
        "sku": f"SKU-{key}",
        "title": f"Item {key}",
        "quantity": 1,
        "unit_price": D("20.00"),
        "reason_code": "changed_mind",
        "delivered_on": date(2026, 11, 13),  # 12 days before TODAY
        "ordered_on": date(2026, 11, 10),
    }
    base.update(changes)
    return LineFacts(**base)


def facts(*lines: LineFacts, **changes: Any) -> CaseFacts:
    base: dict[str, Any] = {"today": TODAY, "lines": lines or (line(),), "order_value": D("100.00")}
    base.update(changes)
    return CaseFacts(**base)


def rules(**document: Any) -> PolicyRules:
    return PolicyRules.model_validate(document)


def result(decision: Decision, rule: str, key: str | None = None) -> RuleResult:
    matches = [r for r in decision.results if r.rule == rule and r.line == key]
    assert len(matches) == 1, (rule, key, matches)
    return matches[0]


# --- PolicyRules --------------------------------------------------------------------


def test_default_policy_is_usable() -> None:
    default = PolicyRules()
    assert default.return_window_days == 30
    assert default.window_starts == "delivery"
    assert default.exclusions.final_sale is True
    assert default.exclusions.categories == [] and default.exclusions.skus == []
    assert default.fees.restocking_percent == 0 and default.fees.by_reason == {}
    assert default.auto_approve.enabled is True
    assert default.auto_approve.max_order_value is None and default.auto_approve.reasons is None
    assert default.review_triggers.order_value_above is None
    assert default.review_triggers.max_returns_90_days == 3
    assert default.review_triggers.photo_required_missing is True
    assert default.keep_item_threshold is None
    assert default.store_credit_bonus_percent == 0
    assert default.resolutions == ["refund", "store_credit", "exchange"]
    assert evaluate(facts(), default).outcome == "approve"


def test_policy_document_parses_from_json() -> None:
    document = json.loads(
        """{
          "return_window_days": 45, "window_starts": "order",
          "exclusions": {"final_sale": false, "categories": [" Clearance ", "clearance", ""], "skus": ["GIFT-1"]},
          "fees": {"restocking_percent": 5, "by_reason": {"changed_mind": "12.5"}},
          "auto_approve": {"enabled": true, "max_order_value": 200, "reasons": ["damaged", "wrong_size"]},
          "review_triggers": {"order_value_above": "500.00", "max_returns_90_days": null},
          "keep_item_threshold": 15, "store_credit_bonus_percent": 10,
          "resolutions": ["store_credit", "refund", "store_credit"]
        }"""
    )
    parsed = PolicyRules.model_validate(document)
    assert parsed.return_window_days == 45 and parsed.window_starts == "order"
    assert parsed.exclusions.categories == ["Clearance"]  # stripped, blanks and case-duplicates dropped
    assert parsed.fees.by_reason == {"changed_mind": D("12.5")}
    assert isinstance(parsed.fees.restocking_percent, Decimal)
    assert parsed.auto_approve.max_order_value == D(200)
    assert parsed.review_triggers.order_value_above == D("500.00")
    assert parsed.review_triggers.max_returns_90_days is None
    assert parsed.keep_item_threshold == D(15)
    assert parsed.resolutions == ["store_credit", "refund"]
    # Round trip through the JSON form the tenant settings would store.
    assert PolicyRules.model_validate_json(parsed.model_dump_json()) == parsed


@pytest.mark.parametrize(
    ("document", "location"),
    [
        ({"return_windw_days": 30}, ("return_windw_days",)),
        ({"exclusions": {"final_sales": True}}, ("exclusions", "final_sales")),
        ({"fees": {"restocking_percent": -1}}, ("fees", "restocking_percent")),
        ({"fees": {"restocking_percent": "100.01"}}, ("fees", "restocking_percent")),
        ({"fees": {"restocking_percent": "NaN"}}, ("fees", "restocking_percent")),
        ({"fees": {"by_reason": {"changed_mind": 150}}}, ("fees", "by_reason", "changed_mind")),
        ({"fees": {"by_reason": {"changed_mind": -5}}}, ("fees", "by_reason", "changed_mind")),
        ({"fees": {"by_reason": {"Damaged": 5, "damaged": 10}}}, ("fees", "by_reason")),
        ({"fees": {"by_reason": {" ": 5}}}, ("fees", "by_reason")),
        ({"store_credit_bonus_percent": 101}, ("store_credit_bonus_percent",)),
        ({"store_credit_bonus_percent": -1}, ("store_credit_bonus_percent",)),
        ({"return_window_days": -1}, ("return_window_days",)),
        ({"return_window_days": 3651}, ("return_window_days",)),
        ({"window_starts": "shipment"}, ("window_starts",)),
        ({"auto_approve": {"max_order_value": "-0.01"}}, ("auto_approve", "max_order_value")),
        ({"auto_approve": {"auto": True}}, ("auto_approve", "auto")),
        ({"review_triggers": {"order_value_above": -1}}, ("review_triggers", "order_value_above")),
        ({"review_triggers": {"max_returns_90_days": -1}}, ("review_triggers", "max_returns_90_days")),
        ({"keep_item_threshold": "-1"}, ("keep_item_threshold",)),
        ({"resolutions": ["cash"]}, ("resolutions", 0)),
        ({"resolutions": []}, ("resolutions",)),
    ],
)
def test_invalid_policy_documents_are_rejected(document: dict[str, Any], location: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as excinfo:
        PolicyRules.model_validate(document)
    assert location in [tuple(error["loc"]) for error in excinfo.value.errors()]


# --- facts -----------------------------------------------------------------------------


def test_facts_normalise_and_validate() -> None:
    built = line(unit_price=5, tags=["a", "b"], delivered_on=datetime(2026, 11, 13, 15, 30))
    assert built.unit_price == D(5) and isinstance(built.unit_price, Decimal)
    assert built.tags == ("a", "b")
    assert built.delivered_on == date(2026, 11, 13) and not isinstance(built.delivered_on, datetime)
    case = CaseFacts(today=TODAY, lines=[built])  # type: ignore[arg-type]
    assert case.lines == (built,) and case.order_value == D(0)


@pytest.mark.parametrize(
    ("build", "error"),
    [
        (lambda: line(quantity=-1), ValueError),
        (lambda: line(unit_price=D("-0.01")), ValueError),
        (lambda: line(unit_price=D("NaN")), ValueError),
        (lambda: line(unit_price=19.99), TypeError),
        (lambda: line(quantity=1.0), TypeError),
        (lambda: facts(order_value=D("-1")), ValueError),
        (lambda: facts(customer_returns_90_days=-1), ValueError),
    ],
)
def test_invalid_facts_fail_on_creation(build, error: type[Exception]) -> None:  # noqa: ANN001
    with pytest.raises(error):
        build()


# --- per-line rules ------------------------------------------------------------------------

# (line changes, policy document, passed, effect, phrases that must appear in `why`)
WINDOW_CASES = [
    pytest.param(
        {"delivered_on": date(2026, 11, 13)}, {}, True, "info",
        ["Within the 30-day window", "2026-11-13", "12 days ago"], id="within",
    ),
    pytest.param(
        {"delivered_on": date(2026, 10, 26)}, {}, True, "info",
        ["30 days ago"], id="last-day-counts",
    ),
    pytest.param(
        {"delivered_on": TODAY}, {}, True, "info", ["today"], id="delivered-today",
    ),
    pytest.param(
        {"delivered_on": date(2026, 10, 25)}, {}, False, "reject_line",
        ["Delivered on 2026-10-25", "31 days ago", "30 days", "closed on 2026-11-24"], id="one-day-late",
    ),
    pytest.param(
        {"delivered_on": date(2026, 10, 2), "ordered_on": date(2026, 9, 28)}, {}, False, "reject_line",
        ["Delivered on 2026-10-02, 54 days ago", "the return window is 30 days", "2026-11-01"], id="spec-example",
    ),
    pytest.param(
        {"delivered_on": None, "ordered_on": date(2026, 11, 13)}, {}, True, "info",
        ["no delivery date", "order date", "2026-11-13", "12 days ago"], id="falls-back-to-order-date",
    ),
    pytest.param(
        {"delivered_on": None, "ordered_on": date(2026, 10, 2)}, {}, False, "reject_line",
        ["No delivery date", "order date", "2026-10-02", "54 days ago", "2026-11-01"], id="fallback-too-late",
    ),
    pytest.param(
        {"delivered_on": None, "ordered_on": None}, {}, False, "review",
        ["Neither a delivery date nor an order date", "30-day", "cannot be checked"], id="no-dates-review",
    ),
    pytest.param(
        {"delivered_on": date(2026, 11, 20), "ordered_on": date(2026, 10, 2)}, {"window_starts": "order"},
        False, "reject_line", ["Ordered on 2026-10-02", "54 days ago", "2026-11-01"], id="counts-from-order",
    ),
    pytest.param(
        {"delivered_on": date(2026, 11, 20), "ordered_on": None}, {"window_starts": "order"},
        False, "review", ["No order date", "cannot be checked"], id="order-mode-no-order-date",
    ),
    pytest.param(
        {"delivered_on": date(2026, 10, 2)}, {"return_window_days": 60}, True, "info",
        ["Within the 60-day window", "54 days ago"], id="longer-window",
    ),
    pytest.param(
        {"delivered_on": date(2026, 11, 24)}, {"return_window_days": 0}, False, "reject_line",
        ["1 day ago", "the return window is 0 days", "closed on 2026-11-24"], id="zero-day-window",
    ),
    pytest.param(
        {"delivered_on": date(2026, 11, 27)}, {}, True, "info", ["2 days from now"], id="future-date",
    ),
]


@pytest.mark.parametrize(("changes", "document", "passed", "effect", "phrases"), WINDOW_CASES)
def test_return_window_rule(
    changes: dict[str, Any], document: dict[str, Any], passed: bool, effect: str, phrases: list[str]
) -> None:
    decision = evaluate(facts(line(**changes)), rules(**document))
    found = result(decision, "return_window", "A1")
    assert found.passed is passed
    assert found.effect == effect
    for phrase in phrases:
        assert phrase in found.why, (phrase, found.why)
    assert found.why.endswith(".")
    # Only a closed window rejects the line; a missing date sends it to review.
    assert decision.lines[0].eligible is (effect != "reject_line")
    if effect == "review":
        assert decision.outcome == "review"


def test_window_failure_says_when_it_would_have_been_eligible() -> None:
    decision = evaluate(facts(line(delivered_on=date(2026, 10, 2), title="Blue shirt")), PolicyRules())
    assert decision.what_would_change == (
        "Line A1 (Blue shirt) would be eligible if the return had been requested by 2026-11-01 "
        "(within 30 days of delivery).",
    )
    fallback = evaluate(facts(line(delivered_on=None, ordered_on=date(2026, 10, 2))), PolicyRules())
    assert "within 30 days of the order date" in fallback.what_would_change[0]
    unknown = evaluate(facts(line(delivered_on=None, ordered_on=None)), PolicyRules())
    assert any("Record the delivery or order date" in text for text in unknown.what_would_change)


@pytest.mark.parametrize(
    ("final_sale", "excluded", "passed", "phrase"),
    [
        (False, True, True, "not marked final sale"),
        (True, True, False, "does not accept final-sale returns"),
        (True, False, True, "this policy accepts final-sale returns"),
    ],
)
def test_final_sale_rule(final_sale: bool, excluded: bool, passed: bool, phrase: str) -> None:
    decision = evaluate(facts(line(final_sale=final_sale)), rules(exclusions={"final_sale": excluded}))
    found = result(decision, "final_sale", "A1")
    assert (found.passed, found.effect) == (passed, "info" if passed else "reject_line")
    assert phrase in found.why
    assert decision.outcome == ("approve" if passed else "reject")
    if not passed:
        assert "would be eligible if the policy accepted final-sale returns" in decision.what_would_change[0]


@pytest.mark.parametrize(
    ("changes", "categories", "passed", "phrases"),
    [
        ({"category": "Clearance"}, ["Clearance"], False, ["Category 'Clearance'", "excluded"]),
        ({"category": "CLEARANCE "}, ["clearance"], False, ["Category 'CLEARANCE '", "excluded"]),
        ({"category": "Shoes", "tags": ("new", "Clearance")}, ["clearance"], False, ["Tag 'Clearance'", "'clearance'"]),
        ({"category": "Shoes"}, ["Clearance", "Swimwear"], True, ["Category 'Shoes'", "Clearance, Swimwear"]),
        ({"category": None}, ["Clearance"], True, ["no category"]),
        ({"category": "Clearance"}, [], True, ["excludes no categories"]),
    ],
)
def test_category_exclusion_rule(
    changes: dict[str, Any], categories: list[str], passed: bool, phrases: list[str]
) -> None:
    decision = evaluate(facts(line(**changes)), rules(exclusions={"categories": categories}))
    found = result(decision, "excluded_category", "A1")
    assert found.passed is passed
    assert found.effect == ("info" if passed else "reject_line")
    for phrase in phrases:
        assert phrase in found.why, (phrase, found.why)
    assert decision.lines[0].eligible is passed


@pytest.mark.parametrize(
    ("sku", "skus", "passed", "phrase"),
    [
        ("GIFT-CARD", ["gift-card"], False, "SKU 'GIFT-CARD' is excluded"),
        ("TSHIRT-1", ["GIFT-CARD"], True, "SKU 'TSHIRT-1' is not on the excluded list"),
        ("GIFT-CARD", [], True, "excludes no SKUs"),
    ],
)
def test_sku_exclusion_rule(sku: str, skus: list[str], passed: bool, phrase: str) -> None:
    decision = evaluate(facts(line(sku=sku)), rules(exclusions={"skus": skus}))
    found = result(decision, "excluded_sku", "A1")
    assert (found.passed, found.effect) == (passed, "info" if passed else "reject_line")
    assert phrase in found.why
    if not passed:
        assert decision.what_would_change == ("Line A1 (Item A1) would be eligible if the policy did not exclude SKU 'GIFT-CARD'.",)


@pytest.mark.parametrize(
    ("requires", "has_photo", "trigger", "passed", "effect", "outcome", "phrase"),
    [
        (False, False, True, True, "info", "approve", "does not require a photo"),
        (True, True, True, True, "info", "approve", "A photo is attached"),
        (True, False, True, False, "review", "review", "requires a photo and none is attached"),
        (True, False, False, False, "info", "approve", "does not send that to review"),
    ],
)
def test_photo_rule(
    requires: bool, has_photo: bool, trigger: bool, passed: bool, effect: str, outcome: str, phrase: str
) -> None:
    decision = evaluate(
        facts(line(reason_code="damaged", reason_requires_photo=requires, has_photo=has_photo)),
        rules(review_triggers={"photo_required_missing": trigger}),
    )
    found = result(decision, "photo", "A1")
    assert (found.passed, found.effect) == (passed, effect)
    assert phrase in found.why and "'damaged'" in found.why
    assert decision.outcome == outcome
    assert decision.lines[0].eligible  # a photo never makes a line ineligible
    photo_hint = "Attach a photo of the item for line A1 (Item A1) to avoid review."
    assert (photo_hint in decision.what_would_change) is (effect == "review")


@pytest.mark.parametrize(
    ("reason", "fees", "percent", "refundable", "phrase"),
    [
        ("changed_mind", {"by_reason": {"changed_mind": 10}}, "10", "36.00", "10% restocking fee applies for reason 'changed_mind'"),
        ("Changed_Mind", {"by_reason": {"changed_mind": 10}}, "10", "36.00", "reason 'changed_mind'"),
        ("damaged", {"restocking_percent": "12.5", "by_reason": {"changed_mind": 10}}, "12.5", "35.00", "12.5% restocking fee applies (the policy's default)"),
        ("damaged", {"restocking_percent": 5, "by_reason": {"damaged": 0}}, "0", "40.00", "No restocking fee applies"),
        (None, {"restocking_percent": 5}, "5", "38.00", "5% restocking fee"),
    ],
)
def test_restocking_fee(reason: str | None, fees: dict[str, Any], percent: str, refundable: str, phrase: str) -> None:
    decision = evaluate(facts(line(reason_code=reason, quantity=2)), rules(fees=fees))
    assert decision.lines[0].fee_percent == D(percent)
    assert str(decision.refundable_value) == refundable
    found = result(decision, "restocking_fee", "A1")
    assert found.passed and phrase in found.why


# --- case-level rules ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("order_value", "threshold", "passed", "phrases"),
    [
        ("250", "200", False, ["250.00", "above the 200.00 review threshold"]),
        ("200", "200", True, ["200.00 is not above the 200.00"]),
        ("250", None, True, ["no order-value review threshold"]),
    ],
)
def test_order_value_review_trigger(order_value: str, threshold: str | None, passed: bool, phrases: list[str]) -> None:
    decision = evaluate(facts(order_value=D(order_value)), rules(review_triggers={"order_value_above": threshold}))
    found = result(decision, "order_value_review")
    assert (found.passed, found.effect) == (passed, "info" if passed else "review")
    for phrase in phrases:
        assert phrase in found.why
    assert decision.outcome == ("approve" if passed else "review")
    if not passed:
        assert "Would not need review if the order value were at most 200.00." in decision.what_would_change


@pytest.mark.parametrize(
    ("returns", "limit", "passed", "phrases"),
    [
        (2, 3, True, ["2 returns in the last 90 days", "below the review limit of 3"]),
        (3, 3, False, ["3 returns in the last 90 days", "3 or more"]),
        (7, 3, False, ["7 returns"]),
        (1, 1, False, ["1 return in the last 90 days", "1 or more"]),
        (0, 0, False, ["0 returns"]),
        (50, None, True, ["does not limit"]),
    ],
)
def test_return_history_trigger(returns: int, limit: int | None, passed: bool, phrases: list[str]) -> None:
    decision = evaluate(
        facts(customer_returns_90_days=returns), rules(review_triggers={"max_returns_90_days": limit})
    )
    found = result(decision, "return_history")
    assert (found.passed, found.effect) == (passed, "info" if passed else "review")
    for phrase in phrases:
        assert phrase in found.why, (phrase, found.why)
    assert decision.outcome == ("approve" if passed else "review")


@pytest.mark.parametrize(
    ("auto", "order_value", "reasons", "rule", "passed", "phrase", "change"),
    [
        ({"enabled": False}, "100", ["changed_mind"], "auto_approve_enabled", False, "turned off",
         "Would be auto-approved if auto-approval were enabled in the policy."),
        ({"enabled": True}, "100", ["changed_mind"], "auto_approve_enabled", True, "enabled", None),
        ({"max_order_value": "200"}, "250", ["changed_mind"], "auto_approve_order_value", False,
         "Order value 250.00 is above the 200.00 auto-approval limit.",
         "Would be auto-approved if the order value were at most 200.00."),
        ({"max_order_value": "200"}, "200", ["changed_mind"], "auto_approve_order_value", True, "within the 200.00", None),
        ({"reasons": ["wrong_size", "Changed_Mind"]}, "100", ["changed_mind", "wrong_size"], "auto_approve_reasons",
         True, "Every line's reason", None),
        ({"reasons": ["wrong_size"]}, "100", ["wrong_size", "damaged", None], "auto_approve_reasons", False,
         "only covers the reasons wrong_size, but line L1 has reason 'damaged' and line L2 gives no reason",
         "Would be auto-approved if every line's reason were one of: wrong_size."),
        ({"reasons": []}, "100", ["wrong_size"], "auto_approve_reasons", False, "lists no reasons",
         "Would be auto-approved if the policy listed the return reasons that may be auto-approved."),
        ({"reasons": None}, "100", ["anything"], "auto_approve_reasons", True, "any return reason", None),
    ],
)
def test_auto_approve_conditions(
    auto: dict[str, Any],
    order_value: str,
    reasons: list[str | None],
    rule: str,
    passed: bool,
    phrase: str,
    change: str | None,
) -> None:
    lines = tuple(line(f"L{i}", reason_code=reason) for i, reason in enumerate(reasons))
    decision = evaluate(facts(*lines, order_value=D(order_value)), rules(auto_approve=auto))
    found = result(decision, rule)
    assert (found.passed, found.effect) == (passed, "info" if passed else "review")
    assert phrase in found.why, found.why
    assert decision.outcome == ("approve" if passed else "review")
    if change:
        assert change in decision.what_would_change


# --- outcome, options, summary ------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "document", "outcome", "summary"),
    [
        ((line("A1"), line("A2")), {}, "approve", "Auto-approved: all 2 lines are within policy."),
        ((line("A1"),), {}, "approve", "Auto-approved: the single line is within policy."),
        (
            (line("A1"), line("A2", final_sale=True)), {}, "review",
            "Needs review: line A2 is marked final sale and cannot be returned.",
        ),
        (
            (line("A1", final_sale=True), line("A2", delivered_on=date(2026, 10, 1))), {}, "reject",
            "Rejected: no line is eligible — line A1 is marked final sale; line A2 is outside the 30-day return window.",
        ),
        (
            (line("A1", sku="X", category="Sale"),), {"exclusions": {"skus": ["x"], "categories": ["sale"]}}, "reject",
            "Rejected: no line is eligible — line A1 is in the excluded category 'sale' and an excluded SKU ('X').",
        ),
        (
            (line("A1", reason_requires_photo=True),), {"auto_approve": {"enabled": False}}, "review",
            "Needs review: a required photo is missing for line A1; auto-approval is turned off.",
        ),
    ],
)
def test_outcome_and_summary(lines: tuple[LineFacts, ...], document: dict[str, Any], outcome: str, summary: str) -> None:
    decision = evaluate(facts(*lines), rules(**document))
    assert decision.outcome == outcome
    assert decision.summary == summary


def test_empty_request_is_rejected_with_a_clear_reason() -> None:
    decision = evaluate(CaseFacts(today=TODAY, lines=()), PolicyRules())
    assert decision.outcome == "reject"
    assert decision.lines == ()
    assert decision.options == ()
    assert decision.refundable_value == D("0.00")
    assert decision.summary == "Rejected: no line is eligible — the request contains no items to return."
    found = result(decision, "has_lines")
    assert not found.passed and "no items" in found.why
    assert "Add at least one item to the return request." in decision.what_would_change


def test_approved_decision_has_nothing_to_change() -> None:
    decision = evaluate(facts(line("A1"), line("A2")), PolicyRules())
    assert decision.outcome == "approve"
    assert decision.what_would_change == ()
    assert all(r.passed for r in decision.results)
    assert decision.options == ("refund", "store_credit", "exchange")
    assert decision.refundable_value == D("40.00")


def test_rejected_line_only_counts_its_rejection() -> None:
    # A2 is out of the window *and* missing its photo: attaching the photo
    # would change nothing, so it is listed as a result but not suggested.
    late = line("A2", delivered_on=date(2026, 9, 1), reason_requires_photo=True)
    decision = evaluate(facts(line("A1"), late), PolicyRules())
    assert decision.outcome == "review"
    assert not result(decision, "photo", "A2").passed
    assert not any("Attach a photo" in text for text in decision.what_would_change)
    assert decision.summary == "Needs review: line A2 is outside the 30-day return window and cannot be returned."
    # Only the eligible line is refundable.
    assert decision.refundable_value == D("20.00")


@pytest.mark.parametrize(
    ("threshold", "resolutions", "preferred", "options", "preference_passed"),
    [
        (None, ["refund", "store_credit", "exchange"], None, ("refund", "store_credit", "exchange"), True),
        ("20", ["refund", "store_credit", "exchange"], "keep_item", ("refund", "store_credit", "exchange", "keep_item"), True),
        ("19.99", ["refund"], "keep_item", ("refund",), False),
        (None, ["keep_item", "refund"], None, ("refund",), True),  # keep_item only via the threshold
        (None, ["repair", "replacement"], "refund", ("repair", "replacement"), False),
    ],
)
def test_options_and_keep_item_threshold(
    threshold: str | None, resolutions: list[str], preferred: str | None, options: tuple[str, ...], preference_passed: bool
) -> None:
    decision = evaluate(
        facts(line(unit_price=D("20.00")), preferred_resolution=preferred),
        rules(keep_item_threshold=threshold, resolutions=resolutions),
    )
    assert decision.options == options
    keep = result(decision, "keep_item")
    if threshold is not None:
        assert keep.passed is ("keep_item" in options)
        assert "20.00" in keep.why and threshold in keep.why
    assert result(decision, "preferred_resolution").passed is preference_passed


def test_rejected_request_offers_nothing() -> None:
    decision = evaluate(
        facts(line(final_sale=True), preferred_resolution="refund"), rules(keep_item_threshold="1000")
    )
    assert decision.outcome == "reject"
    assert decision.options == ()
    assert decision.store_credit_bonus_percent == 0
    assert not result(decision, "keep_item").passed
    assert "no line is eligible" in result(decision, "preferred_resolution").why


@pytest.mark.parametrize(
    ("resolutions", "bonus"),
    [(["refund", "store_credit"], "10"), (["refund", "exchange"], "0")],
)
def test_store_credit_bonus_only_when_store_credit_is_offered(resolutions: list[str], bonus: str) -> None:
    decision = evaluate(facts(), rules(store_credit_bonus_percent=10, resolutions=resolutions))
    assert decision.store_credit_bonus_percent == D(bonus)


def test_every_rule_is_listed_for_every_line() -> None:
    decision = evaluate(facts(line("A1"), line("A2", final_sale=True)), PolicyRules())
    for line_decision in decision.lines:
        assert tuple(r.rule for r in line_decision.results) == LINE_RULES
        assert all(r.line == line_decision.key for r in line_decision.results)
    case_level = tuple(r.rule for r in decision.results if r.line is None)
    assert case_level == CASE_RULES
    assert decision.results == (*decision.lines[0].results, *decision.lines[1].results, *(
        r for r in decision.results if r.line is None
    ))


def test_evaluate_does_not_mutate_inputs() -> None:
    policy_rules = rules(exclusions={"categories": ["Sale"]}, keep_item_threshold="100", resolutions=["keep_item", "refund"])
    before = copy.deepcopy(policy_rules.model_dump())
    case = facts(line("A1"), line("A2", category="sale"))
    snapshot = copy.deepcopy(case)
    evaluate(case, policy_rules)
    evaluate(case, policy_rules)
    assert policy_rules.model_dump() == before
    assert case == snapshot


def test_decision_round_trips_through_json() -> None:
    decision = evaluate(
        facts(line("A1", quantity=3, unit_price=D("9.99")), line("A2", final_sale=True), order_value=D("300")),
        rules(fees={"by_reason": {"changed_mind": "7.5"}}, review_triggers={"order_value_above": 250}),
    )
    data = decision.to_dict()
    text = json.dumps(data)  # JSON-safe: would raise on Decimal or tuple-of-dataclass
    assert data["refundable_value"] == "27.72"  # 29.97 - 2.25 (2.24775 rounds to 2.25)
    assert data["lines"][0]["fee_percent"] == "7.5"
    assert data["store_credit_bonus_percent"] == "0"
    restored = Decision.from_dict(json.loads(text))
    assert restored == decision
    assert restored.to_dict() == data


# --- properties --------------------------------------------------------------------------

names = st.sampled_from(["Shoes", "Clearance", "sale", "Gift", "Outer"])
reasons = st.sampled_from(["changed_mind", "damaged", "wrong_size", "Changed_Mind"])
skus = st.sampled_from(["SKU-1", "sku-2", "GIFT", "X"])
decimals_2 = st.decimals(min_value=0, max_value=D("100000"), places=2, allow_nan=False, allow_infinity=False)
percents = st.decimals(min_value=0, max_value=100, places=2, allow_nan=False, allow_infinity=False)
any_date = st.dates()  # the whole calendar, to catch overflow near date.min/max


@st.composite
def line_facts(draw: st.DrawFn, key: str) -> LineFacts:
    return LineFacts(
        key=key,
        sku=draw(skus),
        title=draw(st.sampled_from(["", "Blue shirt", "Hat"])),
        quantity=draw(st.integers(0, 50)),
        unit_price=draw(st.decimals(min_value=0, max_value=D("10000"), places=3, allow_nan=False, allow_infinity=False)),
        category=draw(st.none() | names),
        tags=tuple(draw(st.lists(names, max_size=3))),
        final_sale=draw(st.booleans()),
        reason_code=draw(st.none() | reasons),
        reason_requires_photo=draw(st.booleans()),
        has_photo=draw(st.booleans()),
        ordered_on=draw(st.none() | any_date),
        delivered_on=draw(st.none() | any_date),
        order_number=draw(st.none() | st.just("#1001")),
    )


@st.composite
def case_facts(draw: st.DrawFn) -> CaseFacts:
    count = draw(st.integers(0, 5))
    return CaseFacts(
        today=draw(any_date),
        lines=tuple(draw(line_facts(f"L{i}")) for i in range(count)),
        order_value=draw(decimals_2),
        customer_returns_90_days=draw(st.integers(0, 10)),
        preferred_resolution=draw(st.none() | st.sampled_from(["refund", "store_credit", "keep_item", "repair"])),
    )


@st.composite
def policy_rules(draw: st.DrawFn) -> PolicyRules:
    document = {
        "return_window_days": draw(st.integers(0, 3650)),
        "window_starts": draw(st.sampled_from(["delivery", "order"])),
        "exclusions": {
            "final_sale": draw(st.booleans()),
            "categories": draw(st.lists(names, max_size=3)),
            "skus": draw(st.lists(skus, max_size=2)),
        },
        "fees": {
            "restocking_percent": draw(percents),
            "by_reason": draw(st.dictionaries(st.sampled_from(["changed_mind", "damaged"]), percents, max_size=2)),
        },
        "auto_approve": {
            "enabled": draw(st.booleans()),
            "max_order_value": draw(st.none() | decimals_2),
            "reasons": draw(st.none() | st.lists(reasons, max_size=3)),
        },
        "review_triggers": {
            "order_value_above": draw(st.none() | decimals_2),
            "max_returns_90_days": draw(st.none() | st.integers(0, 10)),
            "photo_required_missing": draw(st.booleans()),
        },
        "keep_item_threshold": draw(st.none() | decimals_2),
        "store_credit_bonus_percent": draw(percents),
        "resolutions": draw(
            st.lists(
                st.sampled_from(["refund", "store_credit", "exchange", "replacement", "repair", "keep_item"]),
                min_size=1,
                max_size=4,
            )
        ),
    }
    return PolicyRules.model_validate(document)


RANK = {"approve": 0, "review": 1, "reject": 2}


@settings(max_examples=300, deadline=None)
@given(case_facts(), policy_rules())
def test_evaluate_never_raises_and_explains_every_line(case: CaseFacts, policy_rules: PolicyRules) -> None:
    decision = evaluate(case, policy_rules)

    assert [d.key for d in decision.lines] == [item.key for item in case.lines]
    for item, line_decision in zip(case.lines, decision.lines):
        per_line = [r for r in decision.results if r.line == item.key]
        assert len(per_line) >= 1
        assert tuple(r.rule for r in per_line) == LINE_RULES
        assert line_decision.eligible is not any(not r.passed and r.effect == "reject_line" for r in per_line)
    assert tuple(r.rule for r in decision.results if r.line is None) == CASE_RULES
    assert all(r.why.strip() and r.why.endswith(".") for r in decision.results)

    # Outcome is consistent with the results it lists.
    eligible = [d for d in decision.lines if d.eligible]
    if not eligible:
        assert decision.outcome == "reject" and decision.options == ()
    elif decision.outcome == "approve":
        assert len(eligible) == len(decision.lines)
        assert all(r.passed for r in decision.results if r.effect in ("review", "reject_line"))
    else:
        assert decision.outcome == "review"
    assert decision.summary.startswith(
        {"approve": "Auto-approved:", "review": "Needs review:", "reject": "Rejected:"}[decision.outcome]
    )
    if decision.outcome != "approve":
        assert decision.what_would_change

    # Money: never negative, always cents, and equal to what a refund pays.
    assert decision.refundable_value >= 0 and decision.refundable_value.as_tuple().exponent == -2
    fees_by_key = {d.key: d.fee_percent for d in decision.lines}
    refund = settlement_amounts(
        [SettlementLine(item.unit_price, item.quantity, fees_by_key[item.key])
         for item, d in zip(case.lines, decision.lines) if d.eligible],
        "refund",
    )
    assert decision.refundable_value == refund.amount

    threshold = policy_rules.keep_item_threshold
    keep_expected = (
        decision.outcome != "reject" and threshold is not None and decision.refundable_value <= threshold
    )
    assert ("keep_item" in decision.options) is keep_expected

    assert Decision.from_dict(json.loads(json.dumps(decision.to_dict()))) == decision


@settings(max_examples=300, deadline=None)
@given(case_facts(), policy_rules(), st.data())
def test_adding_a_failing_exclusion_never_improves_the_outcome(
    case: CaseFacts, policy_rules: PolicyRules, data: st.DataObject
) -> None:
    before = evaluate(case, policy_rules)
    if case.lines:
        target = data.draw(st.sampled_from(case.lines))
        kind = data.draw(st.sampled_from(["sku", "final_sale"]))
    else:
        target, kind = None, "sku"
    if kind == "sku":
        extra = [target.sku.upper()] if target else ["ANY"]
        stricter = policy_rules.model_copy(
            update={
                "exclusions": policy_rules.exclusions.model_copy(
                    update={"skus": [*policy_rules.exclusions.skus, *extra]}
                )
            }
        )
        changed = case
    else:
        # Marking a line final sale under a policy that excludes final sale.
        stricter = policy_rules.model_copy(
            update={"exclusions": policy_rules.exclusions.model_copy(update={"final_sale": True})}
        )
        changed = replace(case, lines=tuple(replace(item, final_sale=True) if item is target else item for item in case.lines))

    after = evaluate(changed, stricter)
    assert RANK[after.outcome] >= RANK[before.outcome]
    if before.outcome == "reject":
        assert after.outcome == "reject"
    if target is not None:
        assert not next(d for d in after.lines if d.key == target.key).eligible
    assert after.refundable_value <= before.refundable_value


# --- purity --------------------------------------------------------------------------------


def test_module_imports_only_stdlib_pydantic_and_pure_money() -> None:
    tree = ast.parse(Path(policy.__file__).read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative imports would pull in app code"
            imported.add(node.module or "")
    outside_stdlib = {name for name in imported if name.split(".")[0] not in sys.stdlib_module_names}
    assert outside_stdlib == {"pydantic", "app.cases.money"}
