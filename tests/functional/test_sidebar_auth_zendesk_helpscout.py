"""Sidebar entry points of Zendesk (signed-URL JWT) and Help Scout (signed dynamic-app POST):
a good request, forged ones, expired ones and replayed ones."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import timedelta

import jwt
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.extensions import db, utcnow
from app.intake.models import Suggestion
from app.sidebar.models import SeenNonce
from config import TestingConfig
from tests.support.sidebar_auth import create_integration as _integration
from tests.support.sidebar_auth import key_of as _key_of
from tests.support.sidebar_auth import open_case as _open_case
from tests.support.sidebar_auth import panel_context as _panel_context
from tests.support.sidebar_auth import panel_token_of
from tests.support.sidebar_auth import rejections as _rejections

ZENDESK = "https://acme.zendesk.com"
PUBLIC_URL = TestingConfig.REBOUND_PUBLIC_URL.rstrip("/")
HELPSCOUT_SECRET = "hs-app-secret-0123456789"


def _key_pair() -> tuple[rsa.RSAPrivateKey, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public_pem


@pytest.fixture(scope="module")
def zaf_keys() -> tuple[rsa.RSAPrivateKey, str]:
    return _key_pair()


@pytest.fixture(scope="module")
def other_keys() -> tuple[rsa.RSAPrivateKey, str]:
    return _key_pair()


# ---- Zendesk ------------------------------------------------------------------------------------


@pytest.fixture()
def zendesk(api, zaf_keys):
    return _integration(api, "zendesk", {"zaf_public_key": zaf_keys[1]}, {"zaf_issuer": ZENDESK})


def _claims(integration: dict, **overrides) -> dict:
    now = int(time.time())
    claims = {"iss": ZENDESK, "aud": f"{PUBLIC_URL}/sidebar/zendesk/{_key_of(integration)}", "iat": now,
              "nbf": now, "exp": now + 300, "sub": f"{ZENDESK}/api/v2/users/777.json",
              "context": {"product": "support", "location": "ticket_sidebar"}}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(private: rsa.RSAPrivateKey, claims: dict) -> str:
    return jwt.encode(claims, private, algorithm="RS256")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict, claims: dict) -> str:
    return f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"


def _post_zendesk(client, integration: dict, token: str, ticket_id: str | None = "123"):
    query = f"?ticket_id={ticket_id}" if ticket_id is not None else ""
    return client.post(f"/sidebar/zendesk/{_key_of(integration)}{query}", data={"token": token})


def test_zendesk_good_token_redirects_to_the_panel_with_the_agent_and_ticket(app, client, zendesk, zaf_keys):
    """A valid token (RS256, right aud and iss, not expired) answers 303 to the panel."""
    response = _post_zendesk(client, zendesk, _sign(zaf_keys[0], _claims(zendesk)))
    assert response.status_code == 303, response.data
    context = _panel_context(app, response.headers["Location"])
    assert (context.ticket_id, context.agent_id, context.helpdesk_origin) == ("123", "777", ZENDESK)
    assert context.integration_id == zendesk["id"]
    assert response.headers["Content-Security-Policy"] == f"frame-ancestors 'self' {ZENDESK}"


def test_zendesk_ticket_id_may_come_from_the_form_and_the_bare_host_as_issuer(app, client, zendesk, zaf_keys):
    token = _sign(zaf_keys[0], _claims(zendesk, iss="acme.zendesk.com", sub="778"))
    response = client.post(f"/sidebar/zendesk/{_key_of(zendesk)}", data={"token": token, "ticket_id": "9"})
    assert response.status_code == 303
    context = _panel_context(app, response.headers["Location"])
    assert (context.ticket_id, context.agent_id) == ("9", "778")


def test_zendesk_without_ticket_id_reads_it_through_the_zaf_sdk(app, client, zendesk, zaf_keys):
    """Without a ticket id the page asks ZAF for ticket.id and posts it with a ticketless token."""
    page = _post_zendesk(client, zendesk, _sign(zaf_keys[0], _claims(zendesk)), ticket_id=None)
    assert page.status_code == 200 and b"zaf_sdk" in page.data
    html = page.data.decode()
    pending = html.split('name="panel_token" value="', 1)[1].split('"', 1)[0]
    step = client.post(f"/sidebar/zendesk/{_key_of(zendesk)}/ticket", data={"panel_token": pending, "ticket_id": "55"})
    assert step.status_code == 303
    assert _panel_context(app, step.headers["Location"]).ticket_id == "55"
    # A full panel token (already naming a ticket) can't be used to switch tickets through this step.
    full = panel_token_of(step.headers["Location"])
    again = client.post(f"/sidebar/zendesk/{_key_of(zendesk)}/ticket", data={"panel_token": full, "ticket_id": "56"})
    assert again.status_code == 401
    forged = client.post(f"/sidebar/zendesk/{_key_of(zendesk)}/ticket", data={"panel_token": "x.y.z", "ticket_id": "1"})
    assert forged.status_code == 401


def test_zendesk_token_signed_by_another_key_is_refused_and_counted(api, client, zendesk, other_keys):
    response = _post_zendesk(client, zendesk, _sign(other_keys[0], _claims(zendesk)))
    assert response.status_code == 401
    assert b"signature" in response.data
    assert ZENDESK in response.headers["Content-Security-Policy"]  # the error page shows in Zendesk's iframe
    assert [r["code"] for r in _rejections(api, zendesk)] == ["invalid_token"]


def test_zendesk_tampered_claims_are_refused(client, zendesk, zaf_keys):
    header, _, signature = _sign(zaf_keys[0], _claims(zendesk)).split(".")
    tampered = _unsigned({"alg": "RS256", "typ": "JWT"}, _claims(zendesk, sub="1")).split(".")[1]
    assert _post_zendesk(client, zendesk, f"{header}.{tampered}.{signature}").status_code == 401


def test_zendesk_alg_none_and_hs256_with_the_public_key_are_refused(client, zendesk, zaf_keys):
    """Algorithm confusion: only RS256 is accepted, whatever the token's header says."""
    claims = _claims(zendesk)
    none_token = _unsigned({"alg": "none", "typ": "JWT"}, claims) + "."
    assert _post_zendesk(client, zendesk, none_token).status_code == 401
    signing_input = _unsigned({"alg": "HS256", "typ": "JWT"}, claims)
    mac = hmac.new(zaf_keys[1].encode(), signing_input.encode(), hashlib.sha256).digest()
    response = _post_zendesk(client, zendesk, f"{signing_input}.{_b64url(mac)}")
    assert response.status_code == 401
    assert b"RS256" in response.data


@pytest.mark.parametrize("claim, value", [("aud", "https://acme.zendesk.com/api/v2/apps/installations/1.json"),
                                          ("iss", "https://evil.zendesk.com"), ("iss", "http://acme.zendesk.com"),
                                          ("exp", None), ("iss", None)])
def test_zendesk_wrong_audience_issuer_or_missing_claims_are_refused(client, zendesk, zaf_keys, claim, value):
    claims = _claims(zendesk, **{claim: value})
    if value is None:
        claims.pop(claim, None)
    assert _post_zendesk(client, zendesk, _sign(zaf_keys[0], claims)).status_code == 401


def test_zendesk_configured_audience_is_the_one_checked(app, api, client, zaf_keys):
    audience = "https://acme.zendesk.com/api/v2/apps/installations/42.json"
    integration = _integration(api, "zendesk", {"zaf_public_key": zaf_keys[1]},
                               {"zaf_issuer": ZENDESK, "zaf_audience": audience})
    assert _post_zendesk(client, integration, _sign(zaf_keys[0], _claims(integration, aud=audience))).status_code == 303
    assert _post_zendesk(client, integration, _sign(zaf_keys[0], _claims(integration))).status_code == 401


def test_zendesk_expired_token_is_refused(client, zendesk, zaf_keys):
    now = int(time.time())
    token = _sign(zaf_keys[0], _claims(zendesk, iat=now - 900, nbf=now - 900, exp=now - 120))
    response = _post_zendesk(client, zendesk, token)
    assert response.status_code == 401
    assert b"expired" in response.data


def test_zendesk_token_from_the_future_is_refused(client, zendesk, zaf_keys):
    now = int(time.time())
    token = _sign(zaf_keys[0], _claims(zendesk, iat=now + 600, nbf=now + 600, exp=now + 900))
    assert _post_zendesk(client, zendesk, token).status_code == 401


def test_zendesk_replayed_token_is_refused(client, zendesk, zaf_keys):
    """A token is good once: its jti (or, without one, its hash) is kept until it expires."""
    token = _sign(zaf_keys[0], _claims(zendesk))
    assert _post_zendesk(client, zendesk, token).status_code == 303
    replay = _post_zendesk(client, zendesk, token)
    assert replay.status_code == 401
    assert b"already used" in replay.data
    with_jti = _claims(zendesk, jti="abc-1")
    assert _post_zendesk(client, zendesk, _sign(zaf_keys[0], with_jti)).status_code == 303
    with_jti["exp"] += 1  # another token with the same jti
    assert _post_zendesk(client, zendesk, _sign(zaf_keys[0], with_jti)).status_code == 401


def test_zendesk_without_public_key_or_issuer_fails_closed(api, client, zaf_keys):
    no_key = _integration(api, "zendesk", {}, {"zaf_issuer": ZENDESK})
    assert _post_zendesk(client, no_key, _sign(zaf_keys[0], _claims(no_key))).status_code == 401
    no_issuer = _integration(api, "zendesk", {"zaf_public_key": zaf_keys[1]})
    assert _post_zendesk(client, no_issuer, _sign(zaf_keys[0], _claims(no_issuer))).status_code == 401
    garbage = _integration(api, "zendesk", {"zaf_public_key": "not a pem key at all"}, {"zaf_issuer": ZENDESK})
    assert _post_zendesk(client, garbage, _sign(zaf_keys[0], _claims(garbage))).status_code == 401


def test_zendesk_issuer_defaults_to_base_url(app, api, client, zaf_keys):
    integration = _integration(api, "zendesk", {"zaf_public_key": zaf_keys[1]}, {"base_url": ZENDESK})
    assert _post_zendesk(client, integration, _sign(zaf_keys[0], _claims(integration))).status_code == 303


@pytest.mark.parametrize("token, ticket_id", [("", "1"), ("a.b", "1"), ("x" * 5000, "1"), ("VALID", "12;drop"),
                                              ("VALID", "-1"), ("VALID", "1" * 21)])
def test_zendesk_malformed_input_is_refused(client, zendesk, zaf_keys, token, ticket_id):
    if token == "VALID":
        token = _sign(zaf_keys[0], _claims(zendesk))
        assert _post_zendesk(client, zendesk, token, ticket_id).status_code == 400
    else:
        assert _post_zendesk(client, zendesk, token, ticket_id).status_code == 401


def test_zendesk_unknown_wrong_kind_or_disabled_integration_is_404(api, client, zendesk, zaf_keys):
    token = _sign(zaf_keys[0], _claims(zendesk))
    assert client.post("/sidebar/zendesk/nope", data={"token": token}).status_code == 404
    helpscout = _integration(api, "helpscout", {"helpscout_app_secret": HELPSCOUT_SECRET})
    assert _post_zendesk(client, helpscout, token).status_code == 404
    assert api.post(f"/integrations/{zendesk['id']}/disable").status_code == 200
    assert _post_zendesk(client, zendesk, token).status_code == 404


# ---- Help Scout ---------------------------------------------------------------------------------


@pytest.fixture()
def helpscout(api):
    return _integration(api, "helpscout", {"helpscout_app_secret": HELPSCOUT_SECRET})


def _helpscout_body(ticket_id: int = 4242, **extra) -> bytes:
    body = {"ticket": {"id": ticket_id, "number": 1017, "subject": "Return my tent"},
            "customer": {"id": 9, "fname": "María", "lname": "López", "email": "maria.lopez@example.com",
                         "emails": ["maria.lopez@example.com"]},
            "user": {"fname": "Ana", "lname": "Agent", "id": 31, "role": "user", "convRedirect": 0},
            "mailbox": {"id": 3, "email": "support@shop.example"}}
    body.update(extra)
    return json.dumps(body).encode()


def _helpscout_signature(body: bytes, secret: str = HELPSCOUT_SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha1).digest()).decode()


def _post_helpscout(client, integration: dict, body: bytes, signature: str | None = None):
    headers = {"X-HelpScout-Signature": _helpscout_signature(body) if signature is None else signature}
    return client.post(f"/sidebar/helpscout/{_key_of(integration)}", data=body, headers=headers,
                       content_type="application/json")


def test_helpscout_good_request_shows_the_case_and_a_panel_link(app, api, client, helpscout):
    case = _open_case(api, {"provider": "helpscout", "id": "4242"})
    response = _post_helpscout(client, helpscout, _helpscout_body())
    assert response.status_code == 200, response.json
    html = response.json["html"]
    assert case["number"] in html and "Pending review" in html
    link = html.split('href="', 1)[1].split('"', 1)[0]
    assert link.startswith(f"{PUBLIC_URL}/sidebar/panel?t=")
    context = _panel_context(app, link)
    assert (context.ticket_id, context.agent_id, context.agent_name) == ("4242", "31", "Ana Agent")
    assert context.requester_email == "maria.lopez@example.com" and context.subject == "Return my tent"


def test_helpscout_shows_the_suggestion_escaped(app, client, helpscout):
    with app.app_context():
        db.session.add(Suggestion(tenant_id=1, integration_id=helpscout["id"], ticket_id="4242", confidence=0.7,
                                  order_numbers=["<img src=x onerror=alert(1)>"], proposal={}, why=[]))
        db.session.commit()
    html = _post_helpscout(client, helpscout, _helpscout_body()).json["html"]
    assert "Probable return" in html and "70% sure" in html
    assert "<img" not in html and "&lt;img" in html


def test_helpscout_without_case_says_so(client, helpscout):
    html = _post_helpscout(client, helpscout, _helpscout_body(ticket_id=1)).json["html"]
    assert "No return case" in html and "Open in Rebound" in html


@pytest.mark.parametrize("signature", ["", "not base64!", _helpscout_signature(b"{}"),
                                       _helpscout_signature(_helpscout_body(), "wrong-secret-123")])
def test_helpscout_forged_signature_is_refused_and_counted(api, client, helpscout, signature):
    response = _post_helpscout(client, helpscout, _helpscout_body(), signature=signature)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "invalid_signature"
    assert len(_rejections(api, helpscout)) == 1


def test_helpscout_tampered_body_is_refused(client, helpscout):
    signed = _helpscout_signature(_helpscout_body())
    assert _post_helpscout(client, helpscout, _helpscout_body(ticket_id=1), signature=signed).status_code == 401


def test_helpscout_without_app_secret_fails_closed(api, client):
    integration = _integration(api, "helpscout", {})
    assert _post_helpscout(client, integration, _helpscout_body()).status_code == 401


def test_helpscout_replayed_body_gets_no_panel_link(client, helpscout):
    """The agent coming back to the conversation sends the same body again: they still see the
    summary, but a replayed request never yields a token that signs into the panel."""
    body = _helpscout_body()
    first = _post_helpscout(client, helpscout, body)
    assert first.status_code == 200 and "/sidebar/panel?t=" in first.json["html"]
    replay = _post_helpscout(client, helpscout, body)
    assert replay.status_code == 200
    assert "/sidebar/panel" not in replay.json["html"] and "Reload the conversation" in replay.json["html"]


def test_helpscout_replay_window_expires(app, client, helpscout):
    """Help Scout sends no timestamp: the body's hash is remembered only for BODY_NONCE_SECONDS;
    once that has passed (here: moved into the past), the same body is a fresh request with a link."""
    body = _helpscout_body()
    assert _post_helpscout(client, helpscout, body).status_code == 200
    with app.app_context():
        db.session.execute(sa.update(SeenNonce).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    again = _post_helpscout(client, helpscout, body)
    assert again.status_code == 200 and "/sidebar/panel?t=" in again.json["html"]


def test_helpscout_panel_link_expires(app, client, helpscout, monkeypatch):
    """The link's panel token is short-lived: an old one is refused by the panel."""
    html = _post_helpscout(client, helpscout, _helpscout_body()).json["html"]
    token = panel_token_of(html.split('href="', 1)[1].split('"', 1)[0])
    monkeypatch.setitem(app.config, "REBOUND_PANEL_TOKEN_SECONDS", -1)
    response = client.get(f"/sidebar/panel?t={token}")
    assert response.status_code == 401


@pytest.mark.parametrize("body, status", [(b"not json", 400), (b"", 400), (b'{"ticket": {}}', 422),
                                          (b'{"ticket": {"id": "12; drop"}}', 400), (b"[1, 2]", 422)])
def test_helpscout_malformed_signed_bodies_are_refused(client, helpscout, body, status):
    assert _post_helpscout(client, helpscout, body).status_code == status


def test_helpscout_unknown_or_wrong_kind_is_404(client, helpscout, zendesk):
    body = _helpscout_body()
    assert client.post("/sidebar/helpscout/unknown", data=body,
                       headers={"X-HelpScout-Signature": _helpscout_signature(body)}).status_code == 404
    assert _post_helpscout(client, zendesk, body).status_code == 404


def test_zendesk_public_key_may_be_a_setting_added_after_installing_the_app(api, client, zaf_keys):
    """The key is public and known only once the app is installed (which needs our URL first): it
    can be set later through the settings API."""
    integration = _integration(api, "zendesk", {}, {"zaf_issuer": ZENDESK})
    token = _sign(zaf_keys[0], _claims(integration))
    assert _post_zendesk(client, integration, token).status_code == 401
    updated = api.put(f"/integrations/{integration['id']}/settings",
                      json={"zaf_issuer": ZENDESK, "zaf_public_key": zaf_keys[1]})
    assert updated.status_code == 200, updated.json
    assert _post_zendesk(client, integration, _sign(zaf_keys[0], _claims(integration, jti="2"))).status_code == 303
    bad = api.put(f"/integrations/{integration['id']}/settings", json={"zaf_public_key": "not a key"})
    assert bad.status_code == 422
