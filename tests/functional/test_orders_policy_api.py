"""Orders, policy, reason codes and the case list through the API."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from app.cases.models import ReasonCode, ReturnCase
from app.cases.policy import PolicyRules
from app.extensions import db
from app.orders.models import Customer, Order
from tests.factories import case_payload, order_payload


def count(app, model) -> int:
    with app.app_context():
        total = db.session.scalar(sa.select(sa.func.count()).select_from(model))
        db.session.remove()
    return total


def _open(api, **overrides):
    response = api.post("/cases", json=case_payload(**overrides))
    assert response.status_code == 201, response.json
    return response.json


# ---- orders ------------------------------------------------------------------------------------

def test_order_upsert_reports_created_then_updated(api):
    """The first upsert of a number says created, the second (same number) says not created."""
    first = api.post("/orders", json=order_payload())
    assert first.status_code == 200
    assert first.json["created"] is True
    assert first.json["total"] == "599.00"  # 2 × 249.00 + 3 × 24.00 + 29.00
    second = api.post("/orders", json=order_payload())
    assert second.status_code == 200
    assert second.json["created"] is False
    assert api.get("/orders/1001").json["created"] is False


def test_order_customer_email_is_normalised_to_one_customer(app, api):
    """Emails are trimmed and lower-cased, so two spellings of one address are one customer."""
    one = api.post("/orders", json=order_payload("1001", email="  Maria.Lopez@Example.COM ")).json
    two = api.post("/orders", json=order_payload("1002", email="maria.lopez@EXAMPLE.com")).json
    assert one["customer_email"] == two["customer_email"] == "maria.lopez@example.com"
    assert count(app, Customer) == 1


def test_order_update_replaces_lines(api):
    """An upsert replaces the lines: an omitted line is gone, a changed price and quantity are stored."""
    api.post("/orders", json=order_payload())
    lines = [
        {"sku": "TENT-2P", "title": "Trailhead tent (2024)", "quantity": 1, "unit_price": "199.00"},
        {"sku": "STOVE", "title": "Gas stove", "quantity": 1, "unit_price": "29.00", "final_sale": True},
        {"sku": "MUG", "title": "Enamel mug", "quantity": 4, "unit_price": "7.50", "tags": ["kitchen"]},
    ]
    updated = api.post("/orders", json=order_payload(lines=lines)).json
    assert updated["created"] is False
    stored = api.get("/orders/1001").json
    by_sku = {line["sku"]: line for line in stored["lines"]}
    assert set(by_sku) == {"TENT-2P", "STOVE", "MUG"}
    assert (by_sku["TENT-2P"]["unit_price"], by_sku["TENT-2P"]["quantity"]) == ("199.00", 1)
    assert by_sku["TENT-2P"]["title"] == "Trailhead tent (2024)"
    assert by_sku["MUG"]["tags"] == ["kitchen"]
    assert stored["total"] == "258.00"  # 199.00 + 29.00 + 4 × 7.50


def test_removing_an_order_line_a_case_returns_is_409_and_the_order_is_unchanged(app, api):
    """Dropping a line that a case returns is a 409 naming line and case; the order keeps every line."""
    api.post("/orders", json=order_payload())
    case = _open(api, sku="SOCK-3")
    before = api.get("/orders/1001").json
    lines = [line for line in order_payload()["lines"] if line["sku"] != "SOCK-3"]
    lines[0] = {**lines[0], "unit_price": "1.00"}
    response = api.post("/orders", json=order_payload(lines=lines, email="someone.else@example.com"))
    assert response.status_code == 409
    error = response.json["error"]
    assert error["code"] == "conflict"
    assert error["details"]["lines"] == [{"sku": "SOCK-3", "case": case["number"]}]
    assert api.get("/orders/1001").json == before
    assert count(app, Customer) == 1  # the new customer of the refused upsert was rolled back


def test_get_order_and_unknown_order_is_404(api):
    """GET /orders/{number} returns the stored order; an unknown number is a 404 in the error shape."""
    api.post("/orders", json=order_payload("#A-1001"))
    order = api.get("/orders/%23A-1001").json
    assert (order["number"], order["currency"], order["customer_name"]) == ("#A-1001", "EUR", "María López")
    assert [line["sku"] for line in order["lines"]] == ["TENT-2P", "SOCK-3", "STOVE"]
    missing = api.get("/orders/9999")
    assert missing.status_code == 404
    assert missing.json["error"]["code"] == "not_found"
    assert missing.json["error"]["details"] == {"number": "9999"}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"lines": [{"sku": "A", "title": "A", "quantity": 1, "unit_price": "1.00"}] * 2}, "body"),
        ({"delivered_on": "2020-01-01", "ordered_on": "2020-02-01"}, "body"),
        ({"currency": "eur"}, "currency"),
        ({"ordered_on": "1999-12-31"}, "ordered_on"),
        ({"number": "has space"}, "number"),
        ({"lines": [{"sku": "A", "title": "A", "quantity": 1, "unit_price": "1.005"}]}, "lines.0.unit_price"),
        ({"lines": [{"sku": "A", "title": "A", "quantity": 1, "unit_price": "-1.00"}]}, "lines.0.unit_price"),
        ({"customer": {"email": "not-an-email"}}, "customer.email"),
    ],
    ids=["duplicate-sku", "delivered-before-ordered", "currency-lower", "date-1999", "number-space",
         "price-3-places", "price-negative", "email-invalid"],
)
def test_invalid_order_is_422_and_not_stored(app, api, overrides, field):
    """An order that fails validation is a 422 naming the field, and no order is stored."""
    response = api.post("/orders", json=order_payload(**overrides))
    assert response.status_code == 422
    assert field in response.json["error"]["details"]["fields"]
    assert count(app, Order) == 0
    assert count(app, Customer) == 0


# ---- policy ------------------------------------------------------------------------------------

def test_policy_starts_at_version_1_with_the_defaults(api):
    """A new tenant's policy is version 1, created by the system, with PolicyRules() defaults."""
    policy = api.get("/policy").json
    assert policy["version"] == 1
    assert policy["created_by"] == "system"
    assert policy["document"] == PolicyRules().model_dump(mode="json")
    assert policy["document"]["return_window_days"] == 30


def test_put_policy_stores_version_2_and_get_returns_it(api):
    """PUT /policy stores the document as version 2, credited to the token; GET then returns it."""
    document = api.get("/policy").json["document"]
    document["return_window_days"] = 45
    document["fees"]["restocking_percent"] = "12.5"
    saved = api.put("/policy", json=document)
    assert saved.status_code == 200
    assert saved.json["version"] == 2
    assert saved.json["created_by"].startswith("token:")
    current = api.get("/policy").json
    assert current["version"] == 2
    assert current["document"]["return_window_days"] == 45
    assert current["document"]["fees"]["restocking_percent"] == "12.5"
    assert current["document"] == saved.json["document"]


def test_a_new_case_is_decided_under_the_new_policy_version(api):
    """A case opened after a PUT records the new policy version."""
    api.post("/orders", json=order_payload())
    document = api.get("/policy").json["document"]
    document["auto_approve"]["enabled"] = False
    api.put("/policy", json=document)
    case = _open(api)
    assert case["policy_version"] == 2
    assert case["status"] == "pending_review"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.update(refund_everything=True), "refund_everything"),
        (lambda d: d["fees"].update(restocking_percnt="10"), "fees.restocking_percnt"),
        (lambda d: d["fees"].update(restocking_percent="100.01"), "fees.restocking_percent"),
        (lambda d: d.update(store_credit_bonus_percent="150"), "store_credit_bonus_percent"),
        (lambda d: d.update(keep_item_threshold="-0.01"), "keep_item_threshold"),
        (lambda d: d["auto_approve"].update(max_order_value="-5"), "auto_approve.max_order_value"),
        (lambda d: d.update(return_window_days=-1), "return_window_days"),
        (lambda d: d.update(resolutions=[]), "resolutions"),
        (lambda d: d.update(keep_item_threshold="NaN"), "keep_item_threshold"),
    ],
    ids=["unknown-key", "unknown-nested-key", "percent-over-100", "bonus-over-100", "negative-money",
         "negative-nested-money", "negative-days", "no-resolutions", "nan-money"],
)
def test_invalid_policy_is_422_and_the_version_is_unchanged(api, change, field):
    """An invalid policy document is a 422 naming the field, and the version in force stays 1."""
    document = api.get("/policy").json["document"]
    change(document)
    response = api.put("/policy", json=document)
    assert response.status_code == 422
    assert field in response.json["error"]["details"]["fields"]
    current = api.get("/policy").json
    assert current["version"] == 1
    assert current["document"] == PolicyRules().model_dump(mode="json")


def test_dry_run_returns_a_decision_and_stores_nothing(app, api):
    """A dry run returns the decision under the policy in force, creates no case and no customer."""
    api.post("/orders", json=order_payload())
    customers, cases = count(app, Customer), count(app, ReturnCase)
    response = api.post("/policy/dry-run", json=case_payload(quantity=2, customer_email="New.Person@Example.com"))
    assert response.status_code == 200, response.json
    assert response.json["policy_version"] == 1
    decision = response.json["decision"]
    assert decision["outcome"] == "approve"
    assert decision["options"] == ["refund", "store_credit", "exchange"]
    assert decision["refundable_value"] == "498.00"
    assert (count(app, Customer), count(app, ReturnCase)) == (customers, cases)
    assert api.get("/cases").json["items"] == []
    # Nothing was claimed either: the whole quantity can still be returned for real.
    assert _open(api, quantity=2)["number"] == "RMA-10001"


def test_dry_run_explains_a_review(api):
    """A dry run of a damaged item without photo says review, with the failed photo rule."""
    api.post("/orders", json=order_payload())
    decision = api.post("/policy/dry-run", json=case_payload(reason="damaged")).json["decision"]
    assert decision["outcome"] == "review"
    assert any(r["rule"] == "photo" and not r["passed"] for r in decision["results"])


def test_dry_run_with_bad_input_is_422(api):
    """A dry run validates like a real request: an unknown SKU is a 422 on ``lines.0.sku``."""
    api.post("/orders", json=order_payload())
    response = api.post("/policy/dry-run", json=case_payload(sku="KAYAK"))
    assert response.status_code == 422
    assert "lines.0.sku" in response.json["error"]["details"]["fields"]


# ---- reason codes ------------------------------------------------------------------------------

def test_reason_codes_have_two_levels(api):
    """GET /reason-codes lists top-level codes and children whose parent is a top-level code."""
    items = api.get("/reason-codes").json["items"]
    by_code = {item["code"]: item for item in items}
    assert by_code["damaged"]["parent"] is None
    assert by_code["damaged_in_transit"]["parent"] == "damaged"
    assert by_code["damaged_in_transit"]["requires_photo"] is True
    children = [item for item in items if item["parent"] is not None]
    assert children and all(by_code[child["parent"]]["parent"] is None for child in children)


def test_post_reason_code_creates_a_child_usable_in_a_case(api):
    """POST /reason-codes creates a child of a top-level code, listed and usable in a new case."""
    response = api.post("/reason-codes", json={"code": "too_tight", "label": "Too tight", "parent": "size_fit",
                                               "fault_party": "customer"})
    assert response.status_code == 200, response.json
    assert (response.json["code"], response.json["parent"], response.json["active"]) == ("too_tight", "size_fit", True)
    listed = {item["code"]: item for item in api.get("/reason-codes").json["items"]}
    assert listed["too_tight"]["parent"] == "size_fit"
    api.post("/orders", json=order_payload())
    assert _open(api, reason="too_tight")["lines"][0]["reason_code"] == "too_tight"


@pytest.mark.parametrize("parent", ["no_such_code", "too_small"], ids=["unknown-parent", "child-as-parent"])
def test_reason_code_with_unknown_or_child_parent_is_422(app, api, parent):
    """A parent that does not exist or is itself a child is a 422 on ``parent``; nothing is stored."""
    before = count(app, ReasonCode)
    response = api.post("/reason-codes", json={"code": "too_tight", "label": "Too tight", "parent": parent})
    assert response.status_code == 422
    assert parent in response.json["error"]["details"]["fields"]["parent"][0]
    assert count(app, ReasonCode) == before


def test_reason_code_naming_itself_as_parent_is_422(api):
    """A top-level code naming itself as its parent is a 422 on ``parent``."""
    response = api.post("/reason-codes", json={"code": "damaged", "label": "Arrived damaged", "parent": "damaged"})
    assert response.status_code == 422


def test_a_code_with_children_cannot_become_a_child(api):
    """Giving a parent to a code that has children is a 422: reason codes have two levels."""
    response = api.post("/reason-codes", json={"code": "size_fit", "label": "Size or fit", "parent": "damaged"})
    assert response.status_code == 422


# ---- case list ---------------------------------------------------------------------------------

@pytest.fixture()
def three_cases(api):
    """A (maria, authorized), B (maria, pending_review, zendesk ticket 123), C (jo, order 2002, authorized)."""
    api.post("/orders", json=order_payload("1001"))
    api.post("/orders", json=order_payload("2002", email="Jo@Example.com"))
    a = _open(api, sku="TENT-2P")
    b = _open(api, sku="SOCK-3", reason="damaged", ticket={"provider": "zendesk", "id": "123"})
    c = _open(api, order_number="2002")
    assert (a["status"], b["status"], c["status"]) == ("authorized", "pending_review", "authorized")
    return a, b, c


def _numbers(api, **query) -> list[str]:
    response = api.get("/cases", query_string=query)
    assert response.status_code == 200, response.json
    return [item["number"] for item in response.json["items"]]


def test_list_is_newest_first_with_summaries(api, three_cases):
    """Without filters the list has every case, newest first, as summaries with the ticket id."""
    a, b, c = three_cases
    response = api.get("/cases").json
    assert [item["number"] for item in response["items"]] == [c["number"], b["number"], a["number"]]
    assert response["next_cursor"] is None
    assert response["items"][1]["ticket_id"] == "123"
    assert "lines" not in response["items"][0]


def test_list_filters_by_status(api, three_cases):
    """status= filters by one status or a comma-separated list."""
    a, b, c = three_cases
    assert _numbers(api, status="pending_review") == [b["number"]]
    assert _numbers(api, status="authorized") == [c["number"], a["number"]]
    assert _numbers(api, status="pending_review,authorized") == [c["number"], b["number"], a["number"]]
    assert _numbers(api, status="closed") == []


def test_list_filters_by_customer_email_case_insensitively(api, three_cases):
    """customer_email= matches regardless of case and surrounding blanks."""
    a, b, c = three_cases
    assert _numbers(api, customer_email="MARIA.LOPEZ@example.COM") == [b["number"], a["number"]]
    assert _numbers(api, customer_email=" jo@example.com ") == [c["number"]]
    assert _numbers(api, customer_email="nobody@example.com") == []


def test_list_filters_by_order_number(api, three_cases):
    """order_number= returns the cases with a line from that order."""
    a, b, c = three_cases
    assert _numbers(api, order_number="1001") == [b["number"], a["number"]]
    assert _numbers(api, order_number="2002") == [c["number"]]
    assert _numbers(api, order_number="3003") == []


def test_list_filters_by_ticket_id(api, three_cases):
    """ticket_id= returns the case linked to that help-desk ticket."""
    _, b, _ = three_cases
    assert _numbers(api, ticket_id="123") == [b["number"]]
    assert _numbers(api, ticket_id="124") == []


def test_list_filters_by_updated_since(api, three_cases):
    """updated_since= returns cases changed at or after the time, including older cases changed later."""
    a, b, c = three_cases
    since = c["updated_at"]
    assert _numbers(api, updated_since=since) == [c["number"]]
    assert api.action(a["number"], "hold", {"reason": "Fraud check"}).status_code == 200
    assert _numbers(api, updated_since=since) == [c["number"], a["number"]]
    moment = datetime.fromisoformat(since.replace("Z", "+00:00"))
    # The same instant written with another offset selects the same cases.
    assert _numbers(api, updated_since=moment.astimezone(timezone(timedelta(hours=-5))).isoformat()) == [
        c["number"], a["number"]]
    future = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    assert _numbers(api, updated_since=future) == []


def test_list_search_by_rma_number_email_or_order_number(api, three_cases):
    """q= finds a case by RMA number (any case), customer email or order number."""
    a, b, c = three_cases
    assert _numbers(api, q=b["number"]) == [b["number"]]
    assert _numbers(api, q=b["number"].lower()) == [b["number"]]
    assert _numbers(api, q="Jo@Example.com") == [c["number"]]
    assert _numbers(api, q="1001") == [b["number"], a["number"]]
    assert _numbers(api, q="RMA-99999") == []


def test_list_filters_combine(api, three_cases):
    """Filters combine with AND."""
    a, b, _ = three_cases
    assert _numbers(api, customer_email="maria.lopez@example.com", status="authorized") == [a["number"]]
    assert _numbers(api, order_number="1001", ticket_id="123") == [b["number"]]
    assert _numbers(api, order_number="2002", ticket_id="123") == []


def test_keyset_pagination_has_no_duplicates_or_gaps(api):
    """Paging 5 cases with limit=2 yields 2, 2, 1 cases, newest first, then a null next_cursor."""
    lines = [{"sku": "BOTTLE", "title": "Water bottle", "quantity": 10, "unit_price": "12.00"}]
    api.post("/orders", json=order_payload(lines=lines))
    created = [_open(api, sku="BOTTLE")["number"] for _ in range(5)]
    pages, cursor = [], None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get("/cases", query_string=query).json
        pages.append([item["number"] for item in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 10, "pagination does not end"
    assert [len(page) for page in pages] == [2, 2, 1]
    seen = [number for page in pages for number in page]
    assert seen == list(reversed(created))
    assert len(set(seen)) == 5


def test_pagination_is_stable_while_new_cases_arrive(api):
    """A case created between pages does not shift the next page (keyset, not offset)."""
    lines = [{"sku": "BOTTLE", "title": "Water bottle", "quantity": 10, "unit_price": "12.00"}]
    api.post("/orders", json=order_payload(lines=lines))
    created = [_open(api, sku="BOTTLE")["number"] for _ in range(4)]
    first = api.get("/cases", query_string={"limit": 2}).json
    _open(api, sku="BOTTLE")
    second = api.get("/cases", query_string={"limit": 2, "cursor": first["next_cursor"]}).json
    assert [i["number"] for i in first["items"] + second["items"]] == list(reversed(created))
    assert second["next_cursor"] is None


# ---- health ------------------------------------------------------------------------------------

def test_healthz_is_ok(client):
    """GET /healthz answers 200 with status ok when the database answers; no token needed."""
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["status"] == "ok"
    assert response.json["database"] == "ok"
