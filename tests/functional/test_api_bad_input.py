"""Bad input through the API: every refusal is a clear 4xx in the one error shape, and nothing is stored."""

from __future__ import annotations

import base64
import json

import pytest
import sqlalchemy as sa

from app.cases.models import CaseEvent, CaseLine, Evidence, PolicyVersion, ReasonCode, ReturnCase, Settlement
from app.extensions import db
from app.orders.models import Customer, Order, OrderLine
from app.tenants.models import ApiToken
from app.tenants.services import create_tenant, hash_token, revoke_token
from tests.conftest import Api, database_kind
from tests.factories import case_payload, order_payload

STORED = (Customer, Order, OrderLine, ReturnCase, CaseLine, CaseEvent, Evidence, Settlement, PolicyVersion, ReasonCode)


def stored(app) -> dict[str, int]:
    """Row counts of every table a request could write to, read in a fresh app context."""
    with app.app_context():
        counts = {m.__tablename__: db.session.scalar(sa.select(sa.func.count()).select_from(m)) for m in STORED}
        db.session.remove()
    return counts


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The response is ``status`` with the project's JSON error shape; returns the error object."""
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/json"
    body = json.loads(response.get_data(as_text=True))
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "details"}
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], dict)
    if code is not None:
        assert error["code"] == code
    return error


def assert_fields(response, *names: str) -> dict[str, list[str]]:
    """A 422 whose details.fields names each of ``names``."""
    fields = assert_error(response, 422, "validation_failed")["details"]["fields"]
    for name in names:
        assert name in fields, fields
    return fields


@pytest.fixture()
def order(api):
    """Order 1001: TENT-2P ×2, SOCK-3 ×3, STOVE ×1 (final sale)."""
    response = api.post("/orders", json=order_payload())
    assert response.status_code == 200, response.json
    return response.json


def _raw_post(api, path: str, data: bytes, content_type: str = "application/json"):
    return api.post(path, data=data, headers={"Content-Type": content_type})


# ---- opening a case --------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [b"{not json", b'{"lines": [', b"{'lines': []}", b"\xff\xfe", b"[1, 2,]"])
def test_malformed_json_is_400_and_stores_nothing(app, api, order, raw):
    """A body that is not JSON is a 400 malformed_json and stores nothing."""
    before = stored(app)
    assert_error(_raw_post(api, "/cases", raw), 400, "malformed_json")
    assert stored(app) == before


@pytest.mark.parametrize("raw", [b"", b"   \n\t "])
def test_empty_body_is_400_and_stores_nothing(app, api, order, raw):
    """An empty or blank body is a 400 malformed_json and stores nothing."""
    before = stored(app)
    error = assert_error(_raw_post(api, "/cases", raw), 400, "malformed_json")
    assert "empty" in error["message"]
    assert stored(app) == before


def test_unknown_top_level_field_is_422_naming_it(app, api, order):
    """An unknown top-level field is a 422 naming that field, and nothing is stored."""
    before = stored(app)
    fields = assert_fields(api.post("/cases", json={**case_payload(), "refund_now": True}), "refund_now")
    assert fields["refund_now"] == ["Extra inputs are not permitted"]
    assert stored(app) == before


def test_unknown_nested_field_is_422_naming_its_path(app, api, order):
    """An unknown field inside a line is a 422 naming ``lines.0.<field>``, and nothing is stored."""
    payload = case_payload()
    payload["lines"][0]["discount"] = "5.00"
    before = stored(app)
    assert_fields(api.post("/cases", json=payload), "lines.0.discount")
    assert stored(app) == before


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"lines": "TENT-2P"}, "lines"),
        (case_payload(quantity="two"), "lines.0.quantity"),
        (case_payload(quantity=1.5), "lines.0.quantity"),
        (case_payload(quantity=None), "lines.0.quantity"),
        (case_payload(sku=42), "lines.0.sku"),
        (case_payload(customer_email=12345), "customer_email"),
        (case_payload(customer_email="not-an-email"), "customer_email"),
        (case_payload(preferred_resolution="cash_in_hand"), "preferred_resolution"),
        (case_payload(evidence={"kind": "photo"}), "evidence"),
        ({"lines": []}, "lines"),
        ([case_payload()], "body"),
        ("a string", "body"),
        (None, "body"),
    ],
    ids=["lines-string", "qty-string", "qty-fraction", "qty-null", "sku-number", "email-number", "email-invalid",
         "resolution-unknown", "evidence-object", "lines-empty", "body-array", "body-string", "body-null"],
)
def test_wrong_types_are_422_naming_the_field(app, api, order, payload, field):
    """A value of the wrong type is a 422 naming its field, and nothing is stored."""
    before = stored(app)
    assert_fields(_raw_post(api, "/cases", json.dumps(payload).encode()), field)
    assert stored(app) == before


@pytest.mark.parametrize("quantity", [-1, 0, 100_001, 10**30])
def test_out_of_range_quantity_is_422_on_lines_0_quantity(app, api, order, quantity):
    """A negative, zero or absurdly large quantity is a 422 on ``lines.0.quantity``, and nothing is stored."""
    before = stored(app)
    assert_fields(api.post("/cases", json=case_payload(quantity=quantity)), "lines.0.quantity")
    assert stored(app) == before


def test_quantity_above_ordered_is_422_on_lines_0_quantity(app, api, order):
    """Asking to return 3 of a SKU ordered twice is a 422 on ``lines.0.quantity`` saying how many are left."""
    before = stored(app)
    fields = assert_fields(api.post("/cases", json=case_payload(sku="TENT-2P", quantity=3)), "lines.0.quantity")
    assert "Only 2 of SKU TENT-2P" in fields["lines.0.quantity"][0]
    assert stored(app) == before


def test_cumulative_quantity_across_two_cases_above_ordered_is_422(app, api, order):
    """A second case asking for more than the first case left is a 422; the first case stays the only one."""
    first = api.post("/cases", json=case_payload(sku="TENT-2P", quantity=1))
    assert first.status_code == 201, first.json
    before = stored(app)
    fields = assert_fields(api.post("/cases", json=case_payload(sku="TENT-2P", quantity=2)), "lines.0.quantity")
    assert "Only 1 of SKU TENT-2P" in fields["lines.0.quantity"][0]
    assert "already requested 1" in fields["lines.0.quantity"][0]
    assert stored(app) == before
    assert [c["number"] for c in api.get("/cases").json["items"]] == [first.json["number"]]


def test_two_lines_of_one_case_together_above_ordered_is_422_on_the_second(app, api, order):
    """Two lines of the same SKU that together exceed the order are a 422 on ``lines.1.quantity``."""
    payload = case_payload(sku="SOCK-3", quantity=2)
    payload["lines"].append({"order_number": "1001", "sku": "SOCK-3", "quantity": 2, "reason_code": "too_small"})
    before = stored(app)
    fields = assert_fields(api.post("/cases", json=payload), "lines.1.quantity")
    assert "lines.0.quantity" not in fields
    assert stored(app) == before


def test_a_cancelled_case_releases_its_quantity(api, order):
    """Once a case is cancelled, its quantity can be requested again by a new case."""
    first = api.post("/cases", json=case_payload(sku="TENT-2P", quantity=2)).json
    assert api.post("/cases", json=case_payload(sku="TENT-2P", quantity=1)).status_code == 422
    assert api.action(first["number"], "cancel", {"reason": "Customer changed their mind"}).status_code == 200
    assert api.post("/cases", json=case_payload(sku="TENT-2P", quantity=2)).status_code == 201


def test_unknown_order_number_is_422_on_lines_0_order_number(app, api, order):
    """A line naming an order the tenant does not have is a 422 on ``lines.0.order_number``."""
    before = stored(app)
    fields = assert_fields(api.post("/cases", json=case_payload(order_number="9999")), "lines.0.order_number")
    assert "9999" in fields["lines.0.order_number"][0]
    assert stored(app) == before


def test_unknown_sku_on_a_known_order_is_422_on_lines_0_sku(app, api, order):
    """A SKU the order does not contain is a 422 on ``lines.0.sku``."""
    before = stored(app)
    fields = assert_fields(api.post("/cases", json=case_payload(sku="KAYAK")), "lines.0.sku")
    assert "KAYAK" in fields["lines.0.sku"][0]
    assert stored(app) == before


@pytest.mark.parametrize("reason", ["teleported", "TOO_SMALL", "x" * 64])
def test_unknown_reason_code_is_422_on_lines_0_reason_code(app, api, order, reason):
    """A reason code the tenant does not have (codes are case-sensitive) is a 422 on ``lines.0.reason_code``."""
    before = stored(app)
    fields = assert_fields(api.post("/cases", json=case_payload(reason=reason)), "lines.0.reason_code")
    assert reason in fields["lines.0.reason_code"][0]
    assert stored(app) == before


def test_inactive_reason_code_is_422(app, api, order):
    """A reason code switched off by the tenant is refused like an unknown one."""
    assert api.post("/reason-codes", json={"code": "too_small", "label": "Too small", "parent": "size_fit",
                                           "active": False}).status_code == 200
    before = stored(app)
    assert_fields(api.post("/cases", json=case_payload(reason="too_small")), "lines.0.reason_code")
    assert stored(app) == before


@pytest.mark.parametrize("line", [
    {"sku": "GIFT-1", "quantity": 1},
    {"sku": "GIFT-1", "quantity": 1, "title": "Gift"},
    {"sku": "GIFT-1", "quantity": 1, "unit_price": "10.00"},
])
def test_line_from_no_known_order_without_title_or_price_is_422(app, api, line):
    """A line without an order needs both title and unit_price, otherwise 422 on ``lines.0``."""
    before = stored(app)
    fields = assert_fields(api.post("/cases", json={"customer_email": "gift@example.com", "lines": [line]}), "lines.0")
    assert "title and unit_price" in fields["lines.0"][0]
    assert stored(app) == before


def test_lines_from_no_order_and_no_email_is_422(app, api):
    """With no order to take the customer from, a customer_email is required."""
    before = stored(app)
    payload = {"lines": [{"sku": "GIFT-1", "quantity": 1, "title": "Gift", "unit_price": "10.00"}]}
    fields = assert_fields(api.post("/cases", json=payload), "body")
    assert "customer_email" in fields["body"][0]
    assert stored(app) == before


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"note": "x" * 5001}, "note"),
        ({"note": "x" * 500_000}, "note"),
        ({"customer_name": "n" * 201, "customer_email": "maria.lopez@example.com"}, "customer_name"),
        ({"ticket": {"provider": "zendesk", "id": "9" * 101}}, "ticket.id"),
        ({"customer_email": "a" * 330 + "@example.com"}, "customer_email"),
    ],
    ids=["note-5001", "note-500k", "customer-name", "ticket-id", "email"],
)
def test_huge_strings_are_422_naming_the_field(app, api, order, overrides, field):
    """Strings longer than their column are a 422 naming the field, not a database error."""
    before = stored(app)
    assert_fields(api.post("/cases", json=case_payload(**overrides)), field)
    assert stored(app) == before


def test_huge_sku_and_comment_in_a_line_are_422(app, api, order):
    """An over-long SKU or comment in a line is a 422 on that line's field."""
    payload = case_payload(sku="S" * 101)
    payload["lines"][0]["comment"] = "c" * 5001
    before = stored(app)
    assert_fields(api.post("/cases", json=payload), "lines.0.sku", "lines.0.comment")
    assert stored(app) == before


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"note": "before\u0000after"}, "note"),
        ({"sku": "TENT\u0000-2P"}, "lines.0.sku"),
        ({"customer_email": "maria.lopez@example.com", "customer_name": "Mar\u0000ía"}, "customer_name"),
        ({"ticket": {"provider": "zendesk", "id": "12\u00003"}}, "ticket.id"),
        ({"order_number": "10\u000001"}, "lines.0.order_number"),
    ],
    ids=["note", "sku", "customer-name", "ticket-id", "order-number"],
)
def test_nul_characters_in_strings_are_422(app, api, order, overrides, field):
    """A NUL character in any string is a 422 naming the field (PostgreSQL could not store it)."""
    before = stored(app)
    fields = assert_fields(api.post("/cases", json=case_payload(**overrides)), field)
    assert any("NUL" in message for message in fields[field])
    assert stored(app) == before


def test_nul_characters_in_an_order_and_a_policy_are_422(app, api, order):
    """NUL characters are refused in order upserts and in policy documents too."""
    before = stored(app)
    bad_order = order_payload(number="2002", lines=[{"sku": "A", "title": "T\u0000", "quantity": 1,
                                                     "unit_price": "1.00"}])
    assert_fields(api.post("/orders", json=bad_order), "lines.0.title")
    policy = api.get("/policy").json["document"]
    policy["exclusions"]["skus"] = ["GIFT\u0000CARD"]
    assert_error(api.put("/policy", json=policy), 422, "validation_failed")
    assert stored(app) == before
    assert api.get("/policy").json["version"] == 1


def test_nul_character_in_a_path_is_404_not_a_server_error(api, order):
    """A NUL character in a path parameter is a 404 (PostgreSQL refuses to compare with it)."""
    assert_error(api.get("/cases/RMA-1%000001"), 404, "not_found")
    assert_error(api.get("/orders/10%0001"), 404, "not_found")
    assert_error(api.action("RMA-1%000001", "cancel"), 404, "not_found")


@pytest.mark.parametrize("integration_id", ["%C2%B2", "%D9%A3", "1e3", "-1", "9999999999"])
def test_non_ascii_digit_or_huge_integration_id_is_404(api, integration_id):
    """An integration id that is not a small ASCII number ("²", "٣", "1e3") is a 404, not a 500."""
    assert_error(api.get(f"/integrations/{integration_id}"), 404, "not_found")
    assert_error(api.post(f"/integrations/{integration_id}/enable"), 404, "not_found")


def test_body_over_max_content_length_is_413_json(app, api, order):
    """A body over MAX_CONTENT_LENGTH is a 413 payload_too_large in the JSON error shape; nothing is stored."""
    limit = app.config["MAX_CONTENT_LENGTH"]
    payload = case_payload(note="x" * 10)
    raw = json.dumps(payload).encode()
    raw = raw[:-1] + b" " * (limit + 1 - len(raw)) + b"}"
    assert len(raw) == limit + 1
    before = stored(app)
    response = _raw_post(api, "/cases", raw)
    error = assert_error(response, 413, "payload_too_large")
    assert error["details"]["max_bytes"] == limit
    assert stored(app) == before
    assert_error(_raw_post(api, "/orders", raw), 413, "payload_too_large")
    assert_error(api.post("/cases/RMA-10001/actions/cancel", data=raw,
                          headers={"Content-Type": "application/json"}), 413, "payload_too_large")


def test_a_body_of_exactly_max_content_length_is_parsed(app, api, order):
    """A body of exactly MAX_CONTENT_LENGTH bytes is accepted and parsed (the limit is inclusive)."""
    limit = app.config["MAX_CONTENT_LENGTH"]
    raw = json.dumps(case_payload()).encode()
    raw = raw[:-1] + b" " * (limit - len(raw)) + b"}"
    assert _raw_post(api, "/cases", raw).status_code == 201


def test_deeply_nested_json_is_400_not_a_crash(app, api, order):
    """Pathologically nested JSON is refused as malformed instead of exhausting the stack."""
    before = stored(app)
    raw = b'{"note": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    assert_error(_raw_post(api, "/cases", raw), 400, "malformed_json")
    assert stored(app) == before


def test_failed_requests_do_not_use_up_case_numbers(api, order):
    """After refused requests the next case still gets the first number: no counter was consumed."""
    for payload in (case_payload(quantity=3), case_payload(sku="KAYAK"), case_payload(reason="nope")):
        assert api.post("/cases", json=payload).status_code == 422
    assert api.post("/cases", json=case_payload()).json["number"] == "RMA-10001"


# ---- tokens ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer    "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Token rbd_abc"},
        {"Authorization": "rbd_abc"},
        {"Authorization": "Bearer rbd_" + "A" * 43},
        {"Authorization": "Bearer not-even-our-prefix"},
        {"Authorization": "Bearer rbd_" + "x" * 5000},
    ],
    ids=["missing", "empty", "scheme-only", "blank-token", "basic", "token-scheme", "no-scheme", "unknown",
         "foreign-prefix", "huge"],
)
def test_missing_malformed_or_unknown_token_is_401_and_stores_nothing(app, client, tenant_token, headers):
    """Without a valid bearer token every endpoint answers 401 and nothing is stored."""
    before = stored(app)
    assert_error(client.post("/api/v1/orders", json=order_payload(), headers=headers), 401, "unauthorized")
    assert_error(client.get("/api/v1/cases", headers=headers), 401, "unauthorized")
    assert stored(app) == before


def test_revoked_token_is_401_at_once(app, api):
    """A revoked token stops working on the very next request."""
    assert api.get("/cases").status_code == 200
    with app.app_context():
        token = db.session.scalar(sa.select(ApiToken).where(ApiToken.token_hash == hash_token(api.token)))
        revoke_token(token.tenant_id, token.id)
        db.session.remove()
    before = stored(app)
    error = assert_error(api.post("/orders", json=order_payload()), 401, "unauthorized")
    assert "revoked" in error["message"]
    assert_error(api.get("/cases"), 401, "unauthorized")
    assert stored(app) == before


def test_the_bearer_scheme_is_case_insensitive(client, tenant_token):
    """``bearer`` in lower case is accepted like ``Bearer``."""
    assert client.get("/api/v1/cases", headers={"Authorization": f"bearer {tenant_token}"}).status_code == 200


# ---- tenants -----------------------------------------------------------------------------------

@pytest.fixture()
def other_tenant(app, client):
    """A second tenant with its own order 1001 and one case."""
    with app.app_context():
        token = create_tenant("Other Shop", slug="other").plain
        db.session.remove()
    other = Api(client, token)
    assert other.post("/orders", json=order_payload(email="someone@other.example")).status_code == 200
    case = other.post("/cases", json=case_payload())
    assert case.status_code == 201, case.json
    return other, case.json


def test_another_tenants_case_is_404(app, api, other_tenant):
    """A tenant cannot read, list or act on another tenant's case: it answers 404, and the case is unchanged."""
    other, theirs = other_tenant
    number = theirs["number"]
    for path in (f"/cases/{number}", f"/cases/{number}/lines", f"/cases/{number}/timeline",
                 f"/cases/{number}/settlements"):
        assert_error(api.get(path), 404, "not_found")
    assert_error(api.get(f"/cases/{number}/settlement-preview", query_string={"kind": "refund"}), 404, "not_found")
    before = stored(app)
    assert_error(api.action(number, "cancel", {"reason": "Not yours to cancel"}), 404, "not_found")
    assert stored(app) == before
    assert api.get("/cases").json["items"] == []
    assert api.get("/cases", query_string={"q": number}).json["items"] == []
    after = other.get(f"/cases/{number}").json
    assert (after["status"], after["version"]) == (theirs["status"], theirs["version"])


def test_another_tenants_order_is_invisible(api, other_tenant):
    """The other tenant's order 1001 is a 404 here, and cannot be returned against."""
    assert_error(api.get("/orders/1001"), 404, "not_found")
    assert_fields(api.post("/cases", json=case_payload()), "lines.0.order_number")


# ---- list filters --------------------------------------------------------------------------------

@pytest.mark.parametrize("cursor", [
    "!!!",
    "not-base64-at-all",
    base64.urlsafe_b64encode(b"x:5").decode(),
    base64.urlsafe_b64encode(b"c:abc").decode(),
    base64.urlsafe_b64encode(b"c:-1").decode(),
    base64.urlsafe_b64encode(b"c:0").decode(),
    base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    "c" * 201,
])
def test_invalid_cursor_is_422(api, cursor):
    """A cursor this API did not hand out is a 422 on ``cursor``."""
    assert_fields(api.get("/cases", query_string={"cursor": cursor}), "cursor")


def test_cursor_beyond_any_case_id_is_not_a_server_error(api):
    """A well-formed cursor past any id the API can hand out is an empty page or a 422, never a 500."""
    cursor = base64.urlsafe_b64encode(b"c:9223372036854775807").decode().rstrip("=")
    response = api.get("/cases", query_string={"cursor": cursor})
    if response.status_code == 200:
        assert response.json["items"] == []
    else:
        assert_fields(response, "cursor")


@pytest.mark.parametrize("status", ["bogus", "authorized,bogus", "AUTHORIZED", "authorized,", "authorized;rejected"])
def test_unknown_status_filter_is_422(api, status):
    """An unknown status (or a malformed list of them) is a 422 on ``status``."""
    assert_fields(api.get("/cases", query_string={"status": status}), "status")


@pytest.mark.parametrize("since", [
    "yesterday",
    "2024-13-01T00:00:00Z",
    "2024-01-01T00:00:00",
    "2024-01-01",
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00",
])
def test_bad_updated_since_is_422(api, since):
    """An unparsable, zone-less or out-of-range updated_since is a 422, never a 500."""
    assert_fields(api.get("/cases", query_string={"updated_since": since}), "updated_since")


@pytest.mark.parametrize(("name", "value"), [("limit", "0"), ("limit", "201"), ("limit", "ten"), ("colour", "red")])
def test_bad_limit_or_unknown_query_parameter_is_422(api, name, value):
    """An out-of-range limit or an unknown query parameter is a 422 naming it."""
    assert_fields(api.get("/cases", query_string={name: value}), name)


# ---- routing -------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v1/cases/RMA-10001/bogus", "/api/v1/", "/api/v2/cases"])
def test_unknown_route_is_404_json(client, tenant_token, path):
    """An unknown route answers 404 in the JSON error shape, not an HTML page."""
    assert_error(client.get(path, headers={"Authorization": f"Bearer {tenant_token}"}), 404, "not_found")


def test_wrong_method_is_405_json_with_allow(api):
    """A method the route does not support answers 405 in the JSON error shape, with an Allow header."""
    response = api.client.delete("/api/v1/cases", headers={"Authorization": f"Bearer {api.token}"})
    assert_error(response, 405, "method_not_allowed")
    assert {"GET", "POST"} <= {m.strip() for m in response.headers["Allow"].split(",")}
    assert_error(api.put("/cases", json={}), 405, "method_not_allowed")
    assert_error(api.get("/cases/RMA-10001/actions/approve"), 405, "method_not_allowed")


# ---- actions -------------------------------------------------------------------------------------

@pytest.fixture()
def reviewed_case(api, order):
    """A case in pending_review (a damaged item without photo), with its one line."""
    response = api.post("/cases", json=case_payload(sku="SOCK-3", quantity=2, reason="damaged"))
    assert response.status_code == 201, response.json
    assert response.json["status"] == "pending_review"
    return response.json


def _unchanged(app, api, case, before):
    after = api.get(f"/cases/{case['number']}").json
    assert (after["status"], after["version"], after["lines"]) == (case["status"], case["version"], case["lines"])
    assert stored(app) == before


def test_unknown_field_in_action_body_is_422(app, api, reviewed_case):
    """An unknown field in an action payload is a 422 naming it, and the case is unchanged."""
    before = stored(app)
    assert_fields(api.action(reviewed_case["number"], "approve", {"approve_everything": True}),
                  "approve_everything")
    _unchanged(app, api, reviewed_case, before)


def test_negative_line_quantity_in_action_is_422(app, api, reviewed_case):
    """A negative line quantity in approve is a 422 on ``lines.0.quantity``, and the case is unchanged."""
    line_id = reviewed_case["lines"][0]["id"]
    before = stored(app)
    assert_fields(api.action(reviewed_case["number"], "approve", {"lines": [{"line_id": line_id, "quantity": -1}]}),
                  "lines.0.quantity")
    _unchanged(app, api, reviewed_case, before)


@pytest.mark.parametrize(
    ("action", "payload", "field"),
    [
        ("approve", {"lines": [{"line_id": "one", "quantity": 1}]}, "lines.0.line_id"),
        ("approve", {"lines": [{"line_id": 0, "quantity": 1}]}, "lines.0.line_id"),
        ("approve", {"version": "latest"}, "version"),
        ("approve", {"reason": "no"}, "reason"),
        ("reject", {"reason": "x" * 2001}, "reason"),
        ("reject", {"reason": "Bad\u0000reason"}, "reason"),
        ("request_info", {}, "message"),
        ("hold", {"reason": None}, "reason"),
        ("flag", {"note": 5}, "note"),
    ],
    ids=["line-id-string", "line-id-zero", "version-string", "reason-short", "reason-long", "reason-nul",
         "message-missing", "reason-null", "note-number"],
)
def test_bad_action_payloads_are_422_and_change_nothing(app, api, reviewed_case, action, payload, field):
    """A payload that does not fit the action's schema is a 422 naming the field; the case is unchanged."""
    before = stored(app)
    assert_fields(api.action(reviewed_case["number"], action, payload), field)
    _unchanged(app, api, reviewed_case, before)


@pytest.mark.parametrize("raw", [b"", b"{", b"[]"])
def test_malformed_or_empty_action_body_is_refused(app, api, reviewed_case, raw):
    """An empty or malformed action body is a 400, a JSON array a 422; the case is unchanged."""
    before = stored(app)
    response = _raw_post(api, f"/cases/{reviewed_case['number']}/actions/approve", raw)
    assert_error(response, 422 if raw == b"[]" else 400)
    _unchanged(app, api, reviewed_case, before)


def test_line_id_of_another_case_is_409_with_reasons(app, api, reviewed_case):
    """Naming a line of another case is a 409 invalid_transition with the reason, and changes nothing."""
    other = api.post("/cases", json=case_payload(sku="TENT-2P", reason="damaged")).json
    foreign = other["lines"][0]["id"]
    before = stored(app)
    response = api.action(reviewed_case["number"], "approve", {"lines": [{"line_id": foreign, "quantity": 1}]})
    error = assert_error(response, 409, "invalid_transition")
    assert f"Line {foreign} is not part of case {reviewed_case['number']}." in error["details"]["reasons"]
    _unchanged(app, api, reviewed_case, before)
    _unchanged(app, api, other, before)


def test_line_listed_twice_and_over_requested_is_409_with_every_reason(app, api, reviewed_case):
    """A line listed twice with too much quantity is a 409 listing every reason at once."""
    line_id = reviewed_case["lines"][0]["id"]
    before = stored(app)
    response = api.action(reviewed_case["number"], "approve",
                          {"lines": [{"line_id": line_id, "quantity": 1}, {"line_id": line_id, "quantity": 5}]})
    reasons = assert_error(response, 409, "invalid_transition")["details"]["reasons"]
    assert any("listed twice" in r for r in reasons)
    assert any("cannot authorize 5, only 2 requested" in r for r in reasons)
    _unchanged(app, api, reviewed_case, before)


def test_action_on_unknown_case_is_404(app, api, order):
    """An action on a case number the tenant does not have is a 404."""
    before = stored(app)
    assert_error(api.action("RMA-99999", "cancel"), 404, "not_found")
    assert stored(app) == before


@pytest.mark.parametrize("kind", ["refund", "store_credit", "replacement", "keep_item"])
def test_exchange_value_for_a_preview_that_is_not_an_exchange_is_422(api, order, kind):
    """exchange_value with a settlement-preview kind other than exchange is a 422 on ``exchange_value``."""
    case = api.post("/cases", json=case_payload()).json
    response = api.get(f"/cases/{case['number']}/settlement-preview",
                       query_string={"kind": kind, "exchange_value": "413"})
    fields = assert_fields(response, "exchange_value")
    assert "exchange" in fields["exchange_value"][0]
    assert api.get(f"/cases/{case['number']}/settlement-preview",
                   query_string={"kind": "exchange", "exchange_value": "413"}).status_code == 200


def test_resolve_with_exchange_value_for_a_refund_is_422(app, api, order):
    """Resolving as a refund with an exchange_value is a 422 on ``exchange_value``; no settlement is stored."""
    case = api.post("/cases", json=case_payload()).json
    number, line_id = case["number"], case["lines"][0]["id"]
    for action, payload in [("issue_label", {"carrier": "DHL", "tracking_number": "1"}), ("ship", {}), ("receive", {}),
                            ("inspect", {"lines": [{"line_id": line_id, "condition_grade": "A",
                                                    "disposition": "restock", "quantity_accepted": 1}]})]:
        assert api.action(number, action, payload).status_code == 200, action
    before = stored(app)
    assert_fields(api.action(number, "resolve", {"kind": "refund", "exchange_value": "10.00"}), "exchange_value")
    assert stored(app) == before
