"""Sidebar entry points of Intercom (Canvas Kit: signed initialize/submit answered with a canvas)
and Gorgias (HTTP widget: JSON behind the shared secret): a good request, forged ones, expired
ones and replayed ones."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest

from app.sidebar.helpdesk_auth import CANVAS_MAX_AGE_SECONDS, markdown_text
from tests.support.sidebar_auth import create_integration, key_of, open_case, panel_context, rejections

INTERCOM_SECRET = "intercom-client-secret-42"


# ---- Intercom -----------------------------------------------------------------------------------


@pytest.fixture()
def intercom(api):
    return create_integration(api, "intercom", {"intercom_client_secret": INTERCOM_SECRET})


def _intercom_body(conversation: str = "555", **extra) -> bytes:
    body = {"workspace_id": "ws1", "workspace_region": "us", "admin": {"id": "991", "name": "Ana Agent"},
            "conversation": {"id": conversation}, "contact": {"email": "maria.lopez@example.com", "name": "María"},
            "context": {"location": "conversation"}}
    body.update(extra)
    return json.dumps(body).encode()


def _intercom_sign(body: bytes, secret: str = INTERCOM_SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _post_intercom(client, integration: dict, step: str, body: bytes, signature: str | None = None):
    return client.post(f"/sidebar/intercom/{key_of(integration)}/{step}", data=body, content_type="application/json",
                       headers={"X-Body-Signature": _intercom_sign(body) if signature is None else signature})


def _components(answer: dict) -> dict[str, dict]:
    return {c.get("id", f"#{i}"): c for i, c in enumerate(answer["canvas"]["content"]["components"])}


def _submit(client, intercom: dict, canvas: dict, component: str, **inputs):
    body = _intercom_body(component_id=component, input_values=inputs,
                          current_canvas={"content": canvas["canvas"]["content"],
                                          "stored_data": canvas["canvas"]["stored_data"]})
    return _post_intercom(client, intercom, "submit", body)


def test_intercom_initialize_answers_the_case_card_with_its_actions(app, api, client, intercom):
    case = open_case(api, {"provider": "intercom", "id": "555"})
    response = _post_intercom(client, intercom, "initialize", _intercom_body())
    assert response.status_code == 200, response.json
    components = _components(response.json)
    assert markdown_text(case["number"]) in components["status"]["text"]
    assert "Pending review" in components["status"]["text"]
    assert {"approve", "reject", "reason", "request_info", "message", "open"} <= set(components)
    assert components["approve"]["action"] == {"type": "submit"}
    assert components["open"]["action"]["type"] == "url"
    context = panel_context(app, components["open"]["action"]["url"])
    assert (context.ticket_id, context.agent_id, context.requester_email) == ("555", "991", "maria.lopez@example.com")
    assert response.json["canvas"]["stored_data"]["case"] == case["number"]
    assert response.json["canvas"]["stored_data"]["version"] == case["version"]


def test_intercom_without_case_offers_no_actions(client, intercom):
    components = _components(_post_intercom(client, intercom, "initialize", _intercom_body("1")).json)
    assert "approve" not in components and "open" in components
    assert any("No return case" in c.get("text", "") for c in components.values())


def test_intercom_submit_approves_as_the_agent(api, client, intercom):
    case = open_case(api, {"provider": "intercom", "id": "555"})
    card = _post_intercom(client, intercom, "initialize", _intercom_body()).json
    response = _submit(client, intercom, card, "approve")
    assert response.status_code == 200
    components = _components(response.json)
    assert components["notice"]["text"] == "Approved."
    assert "Authorized" in components["status"]["text"] and "approve" not in components
    events = api.get(f"/cases/{case['number']}/timeline").json["events"]
    approved = [e for e in events if e["action"] == "approve"][-1]
    assert approved["actor_type"] == "agent" and approved["actor_id"] == "991"


def test_intercom_reject_needs_a_reason(api, client, intercom):
    case = open_case(api, {"provider": "intercom", "id": "555"})
    card = _post_intercom(client, intercom, "initialize", _intercom_body()).json
    refused = _components(_submit(client, intercom, card, "reject", reason="").json)
    assert refused["error"]["style"] == "error" and "reason" in refused["error"]["text"]
    assert api.get(f"/cases/{case['number']}").json["status"] == "pending_review"
    card = _post_intercom(client, intercom, "initialize", _intercom_body(workspace_id="ws2")).json
    done = _components(_submit(client, intercom, card, "reject", reason="Outside the window").json)
    assert done["notice"]["text"] == "Rejected."
    assert api.get(f"/cases/{case['number']}").json["status"] == "rejected"


def test_intercom_version_conflict_answers_the_card_with_the_reason(api, client, intercom):
    case = open_case(api, {"provider": "intercom", "id": "555"})
    card = _post_intercom(client, intercom, "initialize", _intercom_body()).json
    assert api.action(case["number"], "request_info", {"message": "Please send a photo."}).status_code == 200
    response = _submit(client, intercom, card, "approve")
    assert response.status_code == 200
    components = _components(response.json)
    assert "changed" in components["error"]["text"]
    assert api.get(f"/cases/{case['number']}").json["status"] == "awaiting_customer"
    assert "Awaiting customer" in components["status"]["text"]


def test_intercom_refused_transition_answers_the_card_with_the_reason(api, client, intercom):
    case = open_case(api, {"provider": "intercom", "id": "555"})
    card = _post_intercom(client, intercom, "initialize", _intercom_body()).json
    card["canvas"]["stored_data"]["version"] = None  # no version check: the status decides
    assert api.action(case["number"], "approve").status_code == 200
    components = _components(_submit(client, intercom, card, "request_info", message="Photo please").json)
    assert "cannot" in components["error"]["text"]


@pytest.mark.parametrize("signature", ["", "zz", _intercom_sign(b"{}"),
                                       _intercom_sign(_intercom_body(), "another-secret-1")])
def test_intercom_forged_signature_is_refused_and_counted(api, client, intercom, signature):
    response = _post_intercom(client, intercom, "initialize", _intercom_body(), signature)
    assert response.status_code == 401 and response.json["error"]["code"] == "invalid_signature"
    assert len(rejections(api, intercom)) == 1


def test_intercom_tampered_submit_is_refused_and_does_nothing(api, client, intercom):
    case = open_case(api, {"provider": "intercom", "id": "555"})
    signed = _intercom_sign(_intercom_body(component_id="refresh"))
    tampered = _intercom_body(component_id="approve",
                              stored_data={"case": case["number"], "issued_at": int(time.time())})
    assert _post_intercom(client, intercom, "submit", tampered, signed).status_code == 401
    assert api.get(f"/cases/{case['number']}").json["status"] == "pending_review"


def test_intercom_without_client_secret_fails_closed(api, client):
    integration = create_integration(api, "intercom", {})
    assert _post_intercom(client, integration, "initialize", _intercom_body()).status_code == 401


def test_intercom_replayed_submit_is_refused_and_acts_once(api, client, intercom):
    case = open_case(api, {"provider": "intercom", "id": "555"})
    card = _post_intercom(client, intercom, "initialize", _intercom_body()).json
    body = _intercom_body(component_id="approve", input_values={},
                          current_canvas={"content": card["canvas"]["content"],
                                          "stored_data": card["canvas"]["stored_data"]})
    assert _post_intercom(client, intercom, "submit", body).status_code == 200
    replay = _post_intercom(client, intercom, "submit", body)
    assert replay.status_code == 401 and replay.json["error"]["code"] == "replayed"
    events = api.get(f"/cases/{case['number']}/timeline").json["events"]
    assert [e["action"] for e in events].count("approve") == 1


def test_intercom_expired_card_is_refreshed_instead_of_acted_on(api, client, intercom):
    """Intercom signs no timestamp; our card's stored_data does (signed along with the body): a
    submit from a card older than CANVAS_MAX_AGE_SECONDS does nothing and shows the fresh card."""
    case = open_case(api, {"provider": "intercom", "id": "555"})
    card = _post_intercom(client, intercom, "initialize", _intercom_body()).json
    card["canvas"]["stored_data"]["issued_at"] -= CANVAS_MAX_AGE_SECONDS + 5
    components = _components(_submit(client, intercom, card, "approve").json)
    assert "out of date" in components["notice"]["text"]
    assert api.get(f"/cases/{case['number']}").json["status"] == "pending_review"
    del card["canvas"]["stored_data"]["issued_at"]
    components = _components(_submit(client, intercom, card, "approve").json)
    assert "out of date" in components["notice"]["text"]


@pytest.mark.parametrize("body, status", [(b"not json", 400), (b"{}", 422), (b'{"conversation": {"id": "a b"}}', 400),
                                          (b'{"conversation": {"id": "1"}, "input_values": []}', 422)])
def test_intercom_malformed_signed_bodies_are_refused(client, intercom, body, status):
    assert _post_intercom(client, intercom, "initialize", body).status_code == status


def test_intercom_markdown_in_texts_is_escaped():
    assert markdown_text("[click](https://evil.example) **now**") == \
        "\\[click\\]\\(https://evil.example\\) \\*\\*now\\*\\*"


# ---- Gorgias ------------------------------------------------------------------------------------


@pytest.fixture()
def gorgias(api):
    return create_integration(api, "gorgias", {}, {"base_url": "https://acme.gorgias.com"})


def _get_gorgias(client, integration: dict, secret: str | None, query: str = "ticket_id=48213907", **headers):
    if secret is not None:
        headers["X-Rebound-Secret"] = secret
    return client.get(f"/sidebar/gorgias/{key_of(integration)}?{query}", headers=headers)


def test_gorgias_good_request_answers_the_case_summary(app, api, client, gorgias):
    case = open_case(api, {"provider": "gorgias", "id": "48213907"})
    response = _get_gorgias(client, gorgias, gorgias["signing_secret"],
                            "ticket_id=48213907&email=Maria.Lopez@example.com")
    assert response.status_code == 200, response.json
    data = response.json
    summary = data["case"]
    assert (summary["number"], summary["status"], summary["status_label"]) == (case["number"], "pending_review",
                                                                             "Pending review")
    assert summary["next_step"] and summary["policy"]["outcome"] == "review"
    assert summary["lines"][0]["sku"] == "TENT-2P" and "approve" in summary["allowed_actions"]
    context = panel_context(app, data["panel_url"])
    assert (context.ticket_id, context.requester_email, context.helpdesk_origin) == (
        "48213907", "maria.lopez@example.com", "https://acme.gorgias.com")
    assert data["other_cases"] == []


def test_gorgias_basic_auth_and_other_cases_of_the_customer(api, client, gorgias):
    case = open_case(api, {"provider": "gorgias", "id": "1"})
    basic = base64.b64encode(f"gorgias:{gorgias['signing_secret']}".encode()).decode()
    response = _get_gorgias(client, gorgias, None, "ticket_id=2&email=maria.lopez@example.com",
                            Authorization=f"Basic {basic}")
    assert response.status_code == 200
    assert response.json["case"] is None
    assert [c["number"] for c in response.json["other_cases"]] == [case["number"]]


@pytest.mark.parametrize("secret", [None, "", "wrong-secret-value"])
def test_gorgias_missing_or_forged_secret_is_refused_and_counted(api, client, gorgias, secret):
    response = _get_gorgias(client, gorgias, secret)
    assert response.status_code == 401 and response.json["error"]["code"] == "invalid_signature"
    assert len(rejections(api, gorgias)) == 1


def test_gorgias_expired_secret_is_refused(api, client, gorgias):
    """Gorgias signs nothing and sends no timestamp: what expires is a rotated-out secret."""
    rotated = api.post(f"/integrations/{gorgias['id']}/rotate-secret", json={"grace_seconds": 0})
    assert rotated.status_code == 200, rotated.json
    assert _get_gorgias(client, gorgias, gorgias["signing_secret"]).status_code == 401
    assert _get_gorgias(client, gorgias, rotated.json["signing_secret"]).status_code == 200


def test_gorgias_replayed_fetch_is_read_only(api, client, gorgias):
    """A widget fetch is a GET that changes nothing, so no nonce is kept: a repeat (Gorgias
    fetches on every ticket view) answers the same data and leaves the case as it was."""
    case = open_case(api, {"provider": "gorgias", "id": "48213907"})
    first = _get_gorgias(client, gorgias, gorgias["signing_secret"])
    second = _get_gorgias(client, gorgias, gorgias["signing_secret"])
    assert first.status_code == second.status_code == 200
    assert {k: v for k, v in first.json["case"].items() if k != "panel_url"} == \
        {k: v for k, v in second.json["case"].items() if k != "panel_url"}
    assert api.get(f"/cases/{case['number']}").json["version"] == case["version"]


@pytest.mark.parametrize("query", ["", "ticket_id=", "ticket_id=abc", "ticket_id=1&extra=1",
                                   "ticket_id=" + "9" * 30])
def test_gorgias_bad_query_is_refused(client, gorgias, query):
    assert _get_gorgias(client, gorgias, gorgias["signing_secret"], query).status_code == 422


def test_gorgias_unknown_wrong_kind_or_disabled_is_404(api, client, gorgias, intercom):
    assert client.get("/sidebar/gorgias/nope?ticket_id=1").status_code == 404
    assert _get_gorgias(client, intercom, "whatever-secret").status_code == 404
    assert api.post(f"/integrations/{gorgias['id']}/disable").status_code == 200
    assert _get_gorgias(client, gorgias, gorgias["signing_secret"]).status_code == 404
