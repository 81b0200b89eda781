"""The canned-response API, previews for a real case, push settings and replies queued by hand."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask

from app.cases.models import ReturnCase
from app.extensions import db
from app.outbound.canned import LOCALES, TEMPLATE_KEYS
from app.outbound.models import CannedTemplate, OutboxMessage
from app.tenants.services import create_tenant
from tests.conftest import Api
from tests.factories import case_payload, order_payload

SANDBOX_ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ lines.__class__.__base__.__subclasses__() }}",
    "{% for c in ''.__class__.__mro__[1].__subclasses__() %}{{ c }}{% endfor %}",
    "{{ namespace.__init__.__globals__['os'] }}",
]


def _delete(api: Api, path: str):
    return api.client.delete("/api/v1" + path, headers={"Authorization": f"Bearer {api.token}"})


@pytest.fixture()
def case(api: Api) -> str:
    assert api.post("/orders", json=order_payload()).status_code == 200
    response = api.post("/cases", json=case_payload(locale="de"))
    assert response.status_code == 201, response.json
    return response.json["number"]


@pytest.fixture()
def other_api(app: Flask, client, api: Api) -> Api:
    with app.app_context():
        token = create_tenant("Other Shop", slug="other").plain
    return Api(client, token)


# ---- canned responses ---------------------------------------------------------------------------

def test_the_list_has_every_key_in_every_shipped_locale_and_the_variables(api: Api) -> None:
    listing = api.get("/canned-responses").json
    assert {(i["key"], i["locale"]) for i in listing["items"]} == {(k, loc) for k in TEMPLATE_KEYS for loc in LOCALES}
    assert {i["origin"] for i in listing["items"]} == {"shipped"}
    assert "case_number" in listing["variables"] and "label_url" in listing["variables"]
    assert "qty_authorized" in listing["line_fields"] and "money" in listing["filters"]


def test_edit_read_and_reset_a_canned_response(api: Api) -> None:
    shipped = api.get("/canned-responses/approved/de").json
    assert shipped["origin"] == "shipped" and "genehmigt" in shipped["subject"]
    body = {"subject": "[{{ case_number }}] Genehmigt", "body": "Hallo {{ customer_first_name or 'du' }}!\n{{ signature }}"}
    saved = api.put("/canned-responses/approved/de", json=body)
    assert saved.status_code == 200 and saved.json["origin"] == "tenant" and saved.json["updated_at"]
    assert api.get("/canned-responses/approved/de").json["body"] == body["body"]
    listed = {(i["key"], i["locale"]): i["origin"] for i in api.get("/canned-responses").json["items"]}
    assert listed[("approved", "de")] == "tenant" and listed[("approved", "en")] == "shipped"
    assert api.put("/canned-responses/approved/de", json={**body, "subject": "Neu"}).json["subject"] == "Neu"
    assert _delete(api, "/canned-responses/approved/de").status_code == 204
    assert api.get("/canned-responses/approved/de").json == shipped
    assert _delete(api, "/canned-responses/approved/de").status_code == 404  # nothing left to reset


def test_a_tenant_may_add_a_locale_rebound_does_not_ship(api: Api) -> None:
    assert api.get("/canned-responses/closed/it").status_code == 404
    saved = api.put("/canned-responses/closed/it-IT", json={"subject": "Chiuso", "body": "Ciao!"})
    assert saved.status_code == 200 and saved.json["locale"] == "it-it"
    assert ("closed", "it-it", "tenant") in {(i["key"], i["locale"], i["origin"])
                                             for i in api.get("/canned-responses").json["items"]}


@pytest.mark.parametrize("source", SANDBOX_ESCAPES)
def test_a_template_escaping_the_sandbox_is_refused_with_a_clear_error(api: Api, app: Flask, source: str) -> None:
    response = api.put("/canned-responses/approved/en", json={"subject": "Hi", "body": f"Hello\n{source}"})
    assert response.status_code == 422
    error = response.json["error"]
    assert error["code"] == "template_error"
    assert error["details"]["part"] == "body" and error["details"]["line"] == 2
    assert error["message"].startswith("Error in the body on line 2:")
    assert any(word in error["message"] for word in ("unsafe", "not allowed", "undefined", "no variable"))
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(CannedTemplate.id))) == 0
    assert api.get("/canned-responses/approved/en").json["origin"] == "shipped"


def test_sandbox_escape_via_attribute_access_names_the_attribute(api: Api) -> None:
    error = api.put("/canned-responses/approved/en", json={"subject": "{{ ''.__class__.__mro__ }}", "body": "x"}).json
    assert error["error"]["details"]["part"] == "subject" and error["error"]["details"]["kind"] == "security"
    assert "__class__" in error["error"]["message"]


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"subject": "Hi", "body": "{% if %}"}, 422, "body"),
    ({"subject": "Hi", "body": "{{ customer_nmae }}"}, 422, "body"),
    ({"subject": "Hi\nBcc: x@example.com", "body": "x"}, 422, "subject"),
    ({"subject": "Hi", "body": "{% include 'secrets.txt' %}"}, 422, "body"),
    ({"subject": "Hi", "body": "{% for i in range(999999) %}{% endfor %}"}, 422, "body"),
    ({"subject": "Hi", "body": "x", "extra": 1}, 422, "extra"),
    ({"subject": "", "body": "x"}, 422, "subject"),
    ({"body": "x"}, 422, "subject"),
    ({"subject": "Hi", "body": "x" * 30_000}, 422, "body"),
])
def test_bad_templates_are_refused(api: Api, body, status, field) -> None:
    response = api.put("/canned-responses/approved/en", json=body)
    assert response.status_code == status, response.json
    assert field in response.json["error"]["details"]["fields"]


def test_bad_requests_to_the_canned_api(api: Api) -> None:
    good = {"subject": "Hi", "body": "x"}
    assert api.put("/canned-responses/approved/en", data="{not json", content_type="application/json").status_code == 400
    assert api.put("/canned-responses/approved/en", data="", content_type="application/json").status_code == 400
    assert api.put("/canned-responses/no_such_key/en", json=good).status_code == 404
    bad_locale = api.put("/canned-responses/approved/x1", json=good)
    assert bad_locale.status_code == 422 and "locale" in bad_locale.json["error"]["details"]["fields"]
    assert api.get("/canned-responses/no_such_key/en").status_code == 404
    assert api.get("/canned-responses/approved/%20").status_code == 404
    assert api.client.get("/api/v1/canned-responses").status_code == 401


def test_another_tenants_templates_are_invisible(api: Api, other_api: Api) -> None:
    api.put("/canned-responses/approved/en", json={"subject": "Mine", "body": "Only mine"})
    assert other_api.get("/canned-responses/approved/en").json["origin"] == "shipped"
    assert _delete(other_api, "/canned-responses/approved/en").status_code == 404
    assert api.get("/canned-responses/approved/en").json["subject"] == "Mine"


# ---- preview --------------------------------------------------------------------------------------

def test_preview_renders_the_case_in_its_locale_and_falls_back(api: Api, case: str) -> None:
    german = api.post(f"/cases/{case}/canned-responses/approved/preview")
    assert german.status_code == 200
    assert german.json["locale_used"] == "de" and german.json["origin"] == "shipped"
    assert german.json["subject"] == f"[{case}] Ihre Rücksendung ist genehmigt"
    assert case in german.json["text"] and "Trailhead tent" in german.json["text"]
    assert german.json["html"].startswith("<p>")
    italian = api.post(f"/cases/{case}/canned-responses/approved/preview", json={"locale": "it"})
    assert italian.json["locale_used"] == "en"  # the tenant's default locale
    assert italian.json["subject"] == f"[{case}] Your return is approved"


def test_preview_uses_the_tenants_version_and_reports_its_errors(api: Api, case: str) -> None:
    api.put("/canned-responses/rejected/de", json={"subject": "Abgelehnt", "body": "Nein: {{ reject_reason or '—' }}"})
    preview = api.post(f"/cases/{case}/canned-responses/rejected/preview", json={}).json
    assert preview["origin"] == "tenant" and preview["text"] == "Nein: —\n"
    assert preview["subject"] == f"[{case}] Abgelehnt"  # the RMA tag is always in the subject


def test_bad_preview_requests(api: Api, other_api: Api, case: str) -> None:
    path = f"/cases/{case}/canned-responses/approved/preview"
    assert api.post(path, data="{", content_type="application/json").status_code == 400
    assert api.post(path, json={"locale": "de", "x": 1}).status_code == 422
    assert api.post(path, json={"locale": "<script>"}).status_code == 422
    unknown = api.post(f"/cases/{case}/canned-responses/nope/preview", json={})
    assert unknown.status_code == 422 and "key" in unknown.json["error"]["details"]["fields"]
    assert api.post("/cases/RMA-99999/canned-responses/approved/preview", json={}).status_code == 404
    assert other_api.post(path, json={}).status_code == 404  # another tenant's case


# ---- push settings --------------------------------------------------------------------------------

def test_push_settings_show_the_defaults_and_take_changes(api: Api) -> None:
    settings = api.get("/settings/pushes").json
    assert settings["sync_ticket_status"] is True
    approve = settings["actions"]["approve"]
    assert [p["kind"] for p in approve] == ["note", "reply", "tags", "status"]
    assert approve[1]["template"] == "approved" and approve[2]["add_tags"] == ["rma-approved"]
    assert approve[3]["status"] == "pending"
    assert {p["template"] for p in settings["actions"]["resolve"] if p["kind"] == "reply"} == {
        "refund_issued", "store_credit_issued", "exchange_shipped"}
    assert settings["actions"]["ship"] == [{"kind": "note", "template": None, "add_tags": [], "remove_tags": [],
                                            "status": None, "fields": {}, "settlement_kinds": []}]
    changed = api.put("/settings/pushes", json={"actions": {"approve": [{"kind": "note"}], "close": []},
                                                "sync_ticket_status": False})
    assert changed.status_code == 200
    assert [p["kind"] for p in changed.json["actions"]["approve"]] == ["note"]
    assert changed.json["actions"]["close"] == [] and changed.json["sync_ticket_status"] is False
    assert api.get("/settings/pushes").json == changed.json
    assert [p["kind"] for p in changed.json["actions"]["reject"]] == ["note", "reply"]  # still the default


@pytest.mark.parametrize(("actions", "field"), [
    ({"frobnicate": []}, "actions.frobnicate"),
    ({"approve": [{"kind": "reply", "template": "no_such_key"}]}, "actions.approve.0.template"),
    ({"approve": [{"kind": "email"}]}, "actions.approve.0.kind"),
    ({"approve": [{"kind": "reply"}]}, "actions.approve.0"),
    ({"approve": [{"kind": "tags"}]}, "actions.approve.0"),
    ({"approve": [{"kind": "status", "add_tags": ["x"]}]}, "actions.approve.0"),
    ({"approve": [{"kind": "tags", "add_tags": ["two words"]}]}, "actions.approve.0.add_tags.0"),
    ({"approve": [{"kind": "note", "colour": "red"}]}, "actions.approve.0.colour"),
    ({"resolve": [{"kind": "reply", "template": "refund_issued", "settlement_kinds": ["cash"]}]},
     "actions.resolve.0.settlement_kinds.0"),
    ({"approve": [{"kind": "note"}] * 11}, "actions.approve"),
])
def test_bad_push_settings_are_refused_naming_the_field(api: Api, actions, field) -> None:
    response = api.put("/settings/pushes", json={"actions": actions})
    assert response.status_code == 422, response.json
    fields = response.json["error"]["details"]["fields"]
    assert any(name == field or name.startswith(field + ".") for name in fields), fields
    assert api.get("/settings/pushes").json["actions"]["approve"][1]["template"] == "approved"  # nothing stored


def test_push_settings_refuse_malformed_json(api: Api) -> None:
    assert api.put("/settings/pushes", data="[", content_type="application/json").status_code == 400
    assert api.put("/settings/pushes", json=["approve"]).status_code == 422


# ---- replies ----------------------------------------------------------------------------------------

@pytest.fixture()
def linked_case(app: Flask, api: Api, case: str) -> str:
    """The case, linked to a ticket of a zendesk integration with write-back configured."""
    created = api.post("/integrations", json={
        "kind": "zendesk", "name": "Support", "settings": {"base_url": "http://127.0.0.1:9"},
        "credentials": {"api_email": "agent@example.com", "api_token": "t0ken-for-tests"}})
    assert created.status_code == 201, created.json
    with app.app_context():
        row = db.session.scalar(sa.select(ReturnCase).where(ReturnCase.number == case))
        row.ticket_provider, row.ticket_id, row.integration_id = "zendesk", "4242", created.json["id"]
        db.session.commit()
    return case


def test_a_canned_reply_and_an_internal_note_go_to_the_ticket(app: Flask, api: Api, linked_case: str) -> None:
    reply = api.post(f"/cases/{linked_case}/replies", json={"key": "approved"})
    assert reply.status_code == 202, reply.json
    body = reply.json
    assert body["kind"] == "reply" and body["locale_used"] == "de" and body["origin"] == "shipped"
    assert linked_case in body["text"] and body["ticket_id"] == "4242" and body["status"] == "pending"
    note = api.post(f"/cases/{linked_case}/replies", json={"text": "Called the customer <b>today</b>.",
                                                            "visibility": "internal"}).json
    assert note["kind"] == "note" and note["origin"] == "text" and "&lt;b&gt;" in note["html"]
    english = api.post(f"/cases/{linked_case}/replies", json={"key": "approved", "locale": "en"}).json
    assert english["locale_used"] == "en"
    with app.app_context():
        rows = {m.idempotency_key: m.action for m in db.session.scalars(sa.select(OutboxMessage))}
        assert rows[body["idempotency_key"]]["body_text"] == body["text"]
        assert rows[body["idempotency_key"]]["recipient_email"] == "maria.lopez@example.com"
        assert rows[note["idempotency_key"]]["kind"] == "note"
        assert rows[note["idempotency_key"]]["recipient_email"] is None
    timeline = [e["action"] for e in api.get(f"/cases/{linked_case}/timeline").json["events"]]
    assert timeline[-3:] == ["reply", "note", "reply"]


def test_bad_reply_requests(api: Api, other_api: Api, case: str, linked_case: str) -> None:
    path = f"/cases/{linked_case}/replies"
    assert api.post(path, json={"key": "approved", "text": "both"}).status_code == 422
    assert api.post(path, json={}).status_code == 422
    assert api.post(path, json={"key": "nope"}).status_code == 422
    assert api.post(path, json={"text": "x", "visibility": "everyone"}).status_code == 422
    assert api.post(path, data="{", content_type="application/json").status_code == 400
    assert other_api.post(path, json={"text": "hi"}).status_code == 404


def test_a_reply_needs_a_ticket_with_write_back(app: Flask, api: Api, case: str) -> None:
    response = api.post(f"/cases/{case}/replies", json={"text": "Hello"})
    assert response.status_code == 422 and response.json["error"]["code"] == "no_write_back"
    no_base_url = api.post("/integrations", json={"kind": "zendesk", "name": "Inbound only"}).json["id"]
    with app.app_context():
        row = db.session.scalar(sa.select(ReturnCase).where(ReturnCase.number == case))
        row.ticket_id, row.integration_id = "1", no_base_url
        db.session.commit()
    assert api.post(f"/cases/{case}/replies", json={"text": "Hello"}).status_code == 422
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 0
