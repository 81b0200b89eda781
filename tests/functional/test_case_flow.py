"""The whole reverse flow through the API: open, decide, ship, receive, inspect, resolve, close."""

from __future__ import annotations

from decimal import Decimal

from tests.factories import case_payload, order_payload


def _open(api, **overrides):
    assert api.post("/orders", json=order_payload()).status_code == 200
    response = api.post("/cases", json=case_payload(**overrides))
    assert response.status_code == 201, response.json
    return response.json


def test_a_request_within_policy_is_auto_approved(api):
    case = _open(api)
    assert case["number"] == "RMA-10001"
    assert case["status"] == "authorized"
    assert case["customer_email"] == "maria.lopez@example.com"
    assert case["policy_decision"]["outcome"] == "approve"
    assert case["lines"][0]["qty_authorized"] == 1
    assert {"issue_label", "cancel", "hold"} <= set(case["allowed_actions"])
    assert api.get("/cases/RMA-10001").json["version"] == case["version"]


def test_a_damaged_item_without_photo_goes_to_review_with_reasons(api):
    case = _open(api, reason="damaged_in_transit")
    assert case["status"] == "pending_review"
    decision = case["policy_decision"]
    assert decision["outcome"] == "review"
    failed = [r for r in decision["results"] if not r["passed"]]
    assert any(r["rule"] == "photo" for r in failed)
    assert decision["what_would_change"], "the agent should be told what would change the outcome"


def test_a_photo_avoids_the_review(api):
    case = _open(api, reason="damaged_in_transit",
                 evidence=[{"kind": "photo", "url": "https://files.example/p.jpg", "line_index": 0}])
    assert case["status"] == "authorized"
    assert case["evidence"][0]["line_id"] == case["lines"][0]["id"]


def test_final_sale_line_is_refused_and_approving_it_needs_a_reason(api):
    case = _open(api, sku="STOVE", reason="changed_mind")
    assert case["status"] == "pending_review"
    assert case["lines"][0]["decision_status"] == "rejected"
    refused = api.action(case["number"], "approve")
    assert refused.status_code == 409
    assert refused.json["error"]["code"] == "invalid_transition"
    assert "reason" in " ".join(refused.json["error"]["details"]["reasons"])
    line_id = case["lines"][0]["id"]
    approved = api.action(case["number"], "approve",
                          {"lines": [{"line_id": line_id, "quantity": 1}], "reason": "Goodwill for a loyal customer"})
    assert approved.status_code == 200, approved.json
    assert approved.json["status"] == "authorized"
    assert approved.json["lines"][0]["qty_authorized"] == 1


def test_full_flow_to_store_credit_with_fee_and_bonus(api):
    policy = api.get("/policy").json["document"]
    policy["fees"]["by_reason"] = {"changed_mind": "10"}
    policy["store_credit_bonus_percent"] = "10"
    assert api.put("/policy", json=policy).json["version"] == 2
    case = _open(api, reason="changed_mind", quantity=2)
    number, line_id = case["number"], case["lines"][0]["id"]
    assert case["policy_version"] == 2
    steps = [
        ("issue_label", {"carrier": "DHL", "tracking_number": "JD014600000001"}, "awaiting_shipment"),
        ("ship", {}, "in_transit"),
        ("receive", {"lines": [{"line_id": line_id, "quantity": 2}]}, "received"),
        ("inspect", {"lines": [{"line_id": line_id, "condition_grade": "A", "disposition": "restock",
                                "quantity_accepted": 2}]}, "inspected"),
    ]
    for action, payload, expected in steps:
        response = api.action(number, action, payload)
        assert response.status_code == 200, (action, response.json)
        assert response.json["status"] == expected
    preview = api.get(f"/cases/{number}/settlement-preview", query_string={"kind": "store_credit"}).json
    # 2 × 249.00 = 498.00; 10 % fee = 49.80; bonus 10 % of 448.20 = 44.82; credit 493.02
    assert (Decimal(preview["gross"]), Decimal(preview["fees"]), Decimal(preview["bonus"]), Decimal(preview["amount"])) == (
        Decimal("498.00"), Decimal("49.80"), Decimal("44.82"), Decimal("493.02"))
    resolved = api.action(number, "resolve", {"kind": "store_credit"})
    assert resolved.status_code == 200, resolved.json
    assert resolved.json["status"] == "resolving"
    assert resolved.json["settlements"][0]["amount"] == "493.02"
    settled = api.action(number, "settle", {"external_ref": "gc_123"})
    assert settled.json["status"] == "resolved"
    assert settled.json["settlements"][0]["status"] == "succeeded"
    closed = api.action(number, "close")
    assert closed.json["status"] == "closed"
    timeline = api.get(f"/cases/{number}/timeline").json["events"]
    assert [e["action"] for e in timeline] == [
        "create", "approve", "issue_label", "ship", "receive", "inspect", "resolve", "settle", "close"]
    assert timeline[1]["actor_type"] == "system" and timeline[2]["actor_type"] == "api"
    assert [e["to_status"] for e in timeline][-1] == "closed"
    assert api.get(f"/cases/{number}/settlements").json["settlements"][0]["external_ref"] == "gc_123"


def test_partial_receipt_accepts_only_what_arrived(api):
    case = _open(api, quantity=2)
    number, line_id = case["number"], case["lines"][0]["id"]
    api.action(number, "issue_label", {"carrier": "UPS", "tracking_number": "1Z1"})
    received = api.action(number, "receive", {"lines": [{"line_id": line_id, "quantity": 1}]}).json
    assert received["lines"][0]["reception_status"] == "partially_received"
    too_many = api.action(number, "inspect", {"lines": [{"line_id": line_id, "condition_grade": "B",
                                                         "disposition": "refurbish", "quantity_accepted": 2}]})
    assert too_many.status_code == 409
    assert "only 1 received" in too_many.json["error"]["details"]["reasons"][0]


def test_an_action_the_status_does_not_allow_is_a_409_with_reasons_and_changes_nothing(api):
    case = _open(api)
    refused = api.action(case["number"], "receive")
    assert refused.status_code == 409
    error = refused.json["error"]
    assert error["code"] == "invalid_transition"
    assert "authorized" in error["details"]["reasons"][0]
    after = api.get(f"/cases/{case['number']}").json
    assert (after["status"], after["version"]) == (case["status"], case["version"])
    assert len(api.get(f"/cases/{case['number']}/timeline").json["events"]) == 2


def test_a_stale_version_is_a_409_with_the_current_version(api):
    case = _open(api)
    number, seen = case["number"], case["version"]
    assert api.action(number, "hold", {"version": seen, "reason": "Chargeback opened"}).status_code == 200
    stale = api.action(number, "release", {"version": seen})
    assert stale.status_code == 409
    assert stale.json["error"]["code"] == "version_conflict"
    assert stale.json["error"]["details"]["current_version"] == seen + 1


def test_hold_and_release_return_to_the_previous_status(api):
    case = _open(api)
    held = api.action(case["number"], "hold", {"reason": "Fraud check"}).json
    assert (held["status"], held["held_from"]) == ("on_hold", "authorized")
    assert held["allowed_actions"] == ["release"]
    released = api.action(case["number"], "release").json
    assert (released["status"], released["held_from"]) == ("authorized", None)


def test_reject_requires_a_reason(api):
    case = _open(api, reason="damaged")
    missing = api.action(case["number"], "reject", {})
    assert missing.status_code == 422
    assert "reason" in missing.json["error"]["details"]["fields"]
    rejected = api.action(case["number"], "reject", {"reason": "Damage caused by misuse"})
    assert rejected.json["status"] == "rejected"


def test_unknown_and_system_only_actions_are_404(api):
    case = _open(api)
    assert api.action(case["number"], "teleport").status_code == 404
    assert api.action(case["number"], "expire").status_code == 404


def test_request_info_then_customer_reply_path_and_cancel(api):
    case = _open(api, reason="damaged")
    asked = api.action(case["number"], "request_info", {"message": "Please send a photo of the damage."})
    assert asked.json["status"] == "awaiting_customer"
    cancelled = api.action(case["number"], "cancel", {"reason": "Customer withdrew the request"})
    assert cancelled.json["status"] == "cancelled"
    assert cancelled.json["lines"][0]["reception_status"] == "cancelled"


def test_keep_item_below_threshold_resolves_without_a_return(api):
    policy = api.get("/policy").json["document"]
    policy["keep_item_threshold"] = "30.00"
    api.put("/policy", json=policy)
    case = _open(api, sku="SOCK-3", reason="changed_mind")
    assert "keep_item" in case["policy_decision"]["options"]
    kept = api.action(case["number"], "approve_returnless").json
    assert kept["status"] == "resolving"
    assert kept["lines"][0]["reception_status"] == "given_to_customer"
    assert kept["settlements"][0]["kind"] == "keep_item" and kept["settlements"][0]["amount"] == "24.00"


def test_lost_parcel_is_settled_as_a_claim(api):
    case = _open(api)
    number = case["number"]
    api.action(number, "issue_label", {"carrier": "DHL", "tracking_number": "X1"})
    api.action(number, "ship")
    assert api.action(number, "mark_lost").json["status"] == "exception"
    claim = api.action(number, "resolve", {"kind": "refund"}).json
    assert claim["status"] == "resolving"
    assert claim["lines"][0]["reception_status"] == "lost_in_transit"
    assert claim["settlements"][0]["amount"] == "249.00"


def test_reopen_a_closed_case_needs_a_reason(api):
    case = _open(api, reason="damaged")
    api.action(case["number"], "reject", {"reason": "Outside warranty"})
    api.action(case["number"], "close")
    assert api.action(case["number"], "reopen", {}).status_code == 422
    reopened = api.action(case["number"], "reopen", {"reason": "New evidence arrived"}).json
    assert reopened["status"] == "pending_review"


def test_one_case_holds_lines_from_two_orders_and_an_item_from_no_known_order(api):
    """Lines may come from several orders and from none; each keeps its own order and price."""
    api.post("/orders", json=order_payload("1001"))
    api.post("/orders", json=order_payload("1002", lines=[
        {"sku": "LAMP", "title": "Headlamp", "quantity": 1, "unit_price": "34.50"}]))
    response = api.post("/cases", json={"customer_email": "maria.lopez@example.com", "lines": [
        {"order_number": "1001", "sku": "TENT-2P", "quantity": 1, "reason_code": "too_small"},
        {"order_number": "1002", "sku": "LAMP", "quantity": 1, "reason_code": "changed_mind"},
        {"sku": "GIFT-MUG", "title": "Mug received as a gift", "unit_price": "12.00", "quantity": 1},
    ]})
    assert response.status_code == 201, response.json
    lines = response.json["lines"]
    assert [(line["order_number"], line["unit_price"]) for line in lines] == [
        ("1001", "249.00"), ("1002", "34.50"), (None, "12.00")]
    for number in ("1001", "1002"):
        found = api.get("/cases", query_string={"order_number": number}).json["items"]
        assert [item["number"] for item in found] == [response.json["number"]]
