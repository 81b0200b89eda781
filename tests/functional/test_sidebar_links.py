"""Signed context links (Front, Freshdesk, Zammad) and Chatwoot's re-checked dashboard-app context:
a good request, a forged one, an expired one and a replayed one for each, plus hostile input."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from pytest_httpserver import HTTPServer

from app.connectors.crypto import decrypt_secrets
from app.connectors.models import Integration
from app.extensions import db
from app.sidebar import links
from app.sidebar.context import read_panel_token
from app.sidebar.models import SeenNonce

LINK_KINDS = ["front", "freshdesk", "zammad"]
ORIGINS = {"front": links.FRONT_ORIGINS, "freshdesk": "https://acme.freshdesk.com",
           "zammad": "https://support.acme.example"}


@pytest.fixture(autouse=True)
def panel_endpoint(app: Flask) -> None:
    """The panel view (``sidebar.panel``) is built alongside these entry points; until it exists
    a stand-in lets the redirect be built. Only the token in the redirect matters here."""
    if "sidebar.panel" not in app.view_functions:
        started, app._got_first_request = app._got_first_request, False  # tests only: add a rule late
        app.add_url_rule("/sidebar/panel", "sidebar.panel", lambda: "panel")
        app._got_first_request = started


def connect(api, kind: str, **extra) -> dict:
    settings = {"zammad": {"base_url": "https://support.acme.example"},
                "freshdesk": {"base_url": "https://acme.freshdesk.com"}}.get(kind, {})
    response = api.post("/integrations", json={"kind": kind, "name": kind.title(), "settings": settings, **extra})
    assert response.status_code == 201, response.json
    return response.json


def key_of(integration: dict) -> str:
    return integration["webhook_url"].rsplit("/", 1)[1]


def issued_link(api, integration: dict, **params) -> str:
    query = {"ticket": "1042", "email": "dana@example.com", "agent": "77", **params}
    response = api.get(f"/integrations/{integration['id']}/sidebar-link?{urlencode(query)}")
    assert response.status_code == 200, response.json
    return response.json["url"]


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def with_params(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    return f"{parts.path}?{urlencode({**query, **changes})}"


def handmade(key: str, secret: str, *, ticket: str = "1042", email: str = "dana@example.com", agent: str = "77",
             exp: int | None = None, nonce: str = "n0nce-0123456789abcdef") -> str:
    """A link signed the way docs/readme-parts/sidebar-auth-b.md tells an outside signer to
    (the Freshdesk app's serverless function): written out here, not taken from links.py."""
    exp = int(time.time()) + 600 if exp is None else exp
    message = (f"rebound-sidebar-link-v1\nkey={key}\nticket={ticket}\nemail={email}\nagent={agent}"
               f"\nexp={exp}\nnonce={nonce}")
    sig = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    query = urlencode({"ticket": ticket, "email": email, "agent": agent, "exp": exp, "nonce": nonce, "sig": sig})
    return f"/sidebar/open/{key}?{query}"


def derived_secret(app: Flask, integration_id: int) -> str:
    with app.app_context():
        return links.sidebar_secrets(db.session.get(Integration, integration_id))[0]


def panel_of(app: Flask, response):
    assert response.status_code == 303, response.json
    location = urlsplit(response.headers["Location"])
    assert location.path == "/sidebar/panel"
    with app.test_request_context():
        return read_panel_token(parse_qs(location.query)["t"][0])


def refused(response, reason: str) -> None:
    assert response.status_code == 401, response.data
    # A replay has its own code (as for the helpdesks' signed requests); the rest are "unauthorized".
    assert response.json["error"]["code"] == ("replayed" if reason == "replayed" else "unauthorized")
    assert response.json["error"]["details"]["reason"] == reason


# --- context links ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", LINK_KINDS)
def test_good_link_opens_the_panel_for_its_ticket(app, api, client, kind):
    integration = connect(api, kind)
    context = panel_of(app, client.get(path_of(issued_link(api, integration))))
    assert (context.ticket_id, context.requester_email, context.agent_id) == ("1042", "dana@example.com", "77")
    assert context.integration_id == integration["id"]
    assert context.helpdesk_origin == ORIGINS[kind]


@pytest.mark.parametrize("kind", LINK_KINDS)
def test_forged_links_are_refused(app, api, client, kind):
    integration = connect(api, kind)
    url = issued_link(api, integration)
    sig = parse_qs(urlsplit(url).query)["sig"][0]
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    refused(client.get(with_params(url, sig=flipped)), "bad_signature")
    refused(client.get(with_params(url, ticket="1043")), "bad_signature")
    refused(client.get(with_params(url, email="mallory@example.com")), "bad_signature")
    refused(client.get(with_params(url, agent="1")), "bad_signature")
    refused(client.get(with_params(url, exp=str(int(time.time()) + 3000))), "bad_signature")
    # Signed with another integration's key, or with the key in the wrong place.
    other = connect(api, kind)
    refused(client.get(handmade(key_of(integration), derived_secret(app, other["id"]))), "bad_signature")
    refused(client.get(handmade(key_of(other), derived_secret(app, integration["id"]))), "bad_signature")
    # None of the refusals spent the genuine link.
    panel_of(app, client.get(path_of(url)))


@pytest.mark.parametrize("kind", LINK_KINDS)
def test_expired_links_are_refused(app, api, client, kind):
    integration = connect(api, kind)
    key, secret = key_of(integration), derived_secret(app, integration["id"])
    refused(client.get(handmade(key, secret, exp=int(time.time()) - 1)), "expired")
    refused(client.get(handmade(key, secret, exp=int(time.time()) + 2 * 86_400)), "too_far_ahead")
    panel_of(app, client.get(handmade(key, secret)))  # the same signer, in time: fine


@pytest.mark.parametrize("kind", LINK_KINDS)
def test_replayed_links_are_refused(app, api, client, kind):
    integration = connect(api, kind)
    url = path_of(issued_link(api, integration))
    panel_of(app, client.get(url))
    refused(client.get(url), "replayed")
    # A new link for the same ticket works: only the nonce is spent.
    panel_of(app, client.get(path_of(issued_link(api, integration))))


def test_a_nonce_is_kept_until_the_link_expires_then_forgotten(app, api, client):
    integration = connect(api, "zammad")
    key, secret = key_of(integration), derived_secret(app, integration["id"])
    panel_of(app, client.get(handmade(key, secret, nonce="first-nonce-0123456789")))
    with app.app_context():
        row = db.session.scalar(sa.select(SeenNonce))
        assert row.nonce == "first-nonce-0123456789" and row.integration_id == integration["id"]
        row.expires_at = row.expires_at.replace(year=2000)
        db.session.commit()
    panel_of(app, client.get(handmade(key, secret, nonce="second-nonce-0123456789")))
    with app.app_context():  # the expired one was swept when the next link was opened
        assert db.session.scalars(sa.select(SeenNonce.nonce)).all() == ["second-nonce-0123456789"]


def test_an_outside_signer_uses_the_sidebar_secret_credential(app, api, client):
    """Freshdesk: the app's serverless function signs with the secure iparam, which holds the
    integration's ``sidebar_secret`` credential."""
    shared = "fd-sidebar-secret-0123456789abcdef"
    integration = connect(api, "freshdesk", credentials={"sidebar_secret": shared},
                          settings={"base_url": "https://acme.freshdesk.com",
                                    "helpdesk_origin": "https://acme.freshdesk.com https://*.freshworksapi.com"})
    key = key_of(integration)
    context = panel_of(app, client.get(handmade(key, shared, email="", agent="")))
    assert context.requester_email is None and context.agent_id is None
    assert context.helpdesk_origin == "https://acme.freshdesk.com https://*.freshworksapi.com"
    # The derived key no longer opens anything: the tenant's own secret replaced it.
    with app.app_context():
        stored = db.session.get(Integration, integration["id"])
        secrets = decrypt_secrets(stored.secrets_encrypted)
        derived = hmac.new(secrets["signing_secret"].encode(), b"rebound.sidebar-link.v1", hashlib.sha256).hexdigest()
    refused(client.get(handmade(key, derived, nonce="another-nonce-0123456789")), "bad_signature")


def test_links_survive_a_signing_secret_rotation_during_its_grace(app, api, client):
    integration = connect(api, "front")
    before = path_of(issued_link(api, integration))
    assert api.post(f"/integrations/{integration['id']}/rotate-secret", json={"grace_seconds": 0}).status_code == 200
    refused(client.get(before), "bad_signature")  # no grace: the old key is gone
    during = path_of(issued_link(api, integration))
    assert api.post(f"/integrations/{integration['id']}/rotate-secret", json={"grace_seconds": 3600}).status_code == 200
    panel_of(app, client.get(during))


@pytest.mark.parametrize("changes", [
    {"sig": ""}, {"sig": "zz" * 32}, {"sig": "ab"}, {"nonce": "short"}, {"nonce": "bad nonce!" * 3},
    {"exp": ""}, {"exp": "soon"}, {"exp": "-5"}, {"exp": "9" * 40}, {"ticket": ""}, {"ticket": "10\n42"},
    {"ticket": "x" * 129}, {"email": "dana@example.com\nagent=1"}, {"agent": "\x00"},
])
def test_malformed_links_are_refused_not_crashed(app, api, client, changes):
    integration = connect(api, "freshdesk")
    refused(client.get(with_params(issued_link(api, integration), **changes)), "malformed")


def test_dropping_the_nonce_does_not_make_a_single_use_link_reusable(app, api, client):
    integration = connect(api, "zammad")
    refused(client.get(with_params(issued_link(api, integration), nonce="")), "bad_signature")


def test_a_reusable_note_link_opens_the_panel_again_until_it_expires(app, api, client):
    """The link Rebound writes into a Zammad or Front note has no nonce: every click opens the
    panel; it still expires, is forged-proof, and may live at most NOTE_LINK_SECONDS."""
    integration = connect(api, "zammad")
    key, secret = key_of(integration), derived_secret(app, integration["id"])
    link = handmade(key, secret, nonce="")
    assert panel_of(app, client.get(link)).ticket_id == "1042"
    assert panel_of(app, client.get(link)).ticket_id == "1042", "a note's link works every time"
    refused(client.get(handmade(key, secret, nonce="", exp=int(time.time()) - 1)), "expired")
    refused(client.get(handmade(key, secret, nonce="", exp=int(time.time()) + links.NOTE_LINK_SECONDS + 3600)),
            "too_far_ahead")
    refused(client.get(handmade(key, "f" * 64, nonce="")), "bad_signature")
    # A single-use link still may not live longer than a day.
    refused(client.get(handmade(key, secret, exp=int(time.time()) + 2 * 86_400)), "too_far_ahead")


def test_the_first_note_on_a_zammad_ticket_carries_the_panel_link(app, api, client):
    from app.outbound.models import OutboxMessage
    from tests.factories import case_payload, order_payload

    from app.cases.schemas import CaseCreate
    from app.cases.services import Actor, create_case
    from app.tenants.models import Tenant

    integration = connect(api, "zammad", credentials={"api_token": "zammad-token"})
    api.post("/orders", json=order_payload())
    with app.app_context():  # a case opened from the ticket (as intake does), linked to the integration
        tenant = db.session.scalar(sa.select(Tenant))  # the api fixture's tenant, the only one
        data = CaseCreate.model_validate(case_payload(ticket={"provider": "zammad", "id": "1042"}))
        number = create_case(tenant, data, Actor(type="system", id=None, channel="helpdesk"),
                             integration_id=integration["id"]).number
        notes = [m.action["body_text"] for m in db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id))
                 if m.action["kind"] == "note"]
    linked = [note for note in notes if "/sidebar/open/" in note]
    assert len(linked) == 1, notes  # the first note only
    assert f"Open {number} in Rebound: " in linked[0]
    link = linked[0].rsplit(": ", 1)[1]
    assert panel_of(app, client.get(path_of(link))).ticket_id == "1042"
    assert panel_of(app, client.get(path_of(link))).ticket_id == "1042", "reusable: a second click works too"


def test_links_need_an_enabled_helpdesk_integration(app, api, client):
    integration = connect(api, "zammad")
    url = path_of(issued_link(api, integration))
    assert client.get("/sidebar/open/no-such-key?" + urlsplit(url).query).status_code == 404
    assert client.get("/sidebar/open/" + "k" * 300).status_code == 404
    assert api.post(f"/integrations/{integration['id']}/disable").status_code == 200
    assert client.get(url).status_code == 404


def test_sidebar_link_api_validates_its_input(api):
    integration = connect(api, "front")
    base = f"/integrations/{integration['id']}/sidebar-link"
    body = api.get(f"{base}?ticket=cnv_1&ttl=60").json
    assert body["url"].startswith("http") and "/sidebar/open/" in body["url"]
    expires = body["expires_at"]
    assert re.match(r"\d{4}-\d\d-\d\dT", expires)
    for query in ("", "?ticket=", "?ticket=1&ttl=0", "?ticket=1&ttl=86401", "?ticket=1&ttl=x", "?ticket=1&bogus=1",
                  "?ticket=a%0Ab", "?ticket=1&email=a%20b@example.com"):
        response = api.get(base + query)
        assert response.status_code == 422, (query, response.json)
    assert api.get("/integrations/999999/sidebar-link?ticket=1").status_code == 404
    mailbox = api.post("/integrations", json={"kind": "rawmime", "name": "Mail"}).json
    response = api.get(f"/integrations/{mailbox['id']}/sidebar-link?ticket=1")
    assert response.status_code == 422 and response.json["error"]["code"] == "no_sidebar"


@pytest.mark.parametrize("origin", ["https://a.example;script-src *", "*", "'self'", "https://a.example/path",
                                    "javascript:alert(1)", " ".join(["https://a.example"] * 5)])
def test_helpdesk_origin_is_checked_before_it_reaches_a_header(api, origin):
    integration = connect(api, "front")
    response = api.put(f"/integrations/{integration['id']}/settings", json={"helpdesk_origin": origin})
    assert response.status_code == 422
    assert "helpdesk_origin" in json.dumps(response.json["error"]["details"])


# --- Chatwoot -------------------------------------------------------------------------------------

ACCOUNT = "3"
CONVERSATION = {"id": 207, "account_id": 3, "status": "open",
                "meta": {"sender": {"id": 42, "name": "Dana Whitfield", "email": "Dana.Whitfield@example.com",
                                    "type": "contact"}, "channel": "Channel::Email"}}
AGENTS = [{"id": 5, "name": "Sam Agent", "email": "sam@acme.example", "role": "agent"},
          {"id": 6, "name": "Alex Admin", "email": "alex@acme.example", "role": "administrator"}]


@pytest.fixture()
def chatwoot(app, api, httpserver: HTTPServer) -> dict:
    base = httpserver.url_for("/").rstrip("/")
    return connect(api, "chatwoot", credentials={"api_access_token": "cw-access-token", "account_id": ACCOUNT},
                   settings={"base_url": base, "helpdesk_origin": "https://chat.acme.example"})


def serve_chatwoot(httpserver: HTTPServer, conversation=CONVERSATION, agents=AGENTS) -> None:
    # The token header has an underscore, which the fake's server drops (as nginx does by default),
    # so what we send is checked in test_chatwoot_is_asked_with_the_token_and_a_timeout instead.
    httpserver.expect_request(f"/api/v1/accounts/{ACCOUNT}/conversations/207").respond_with_json(conversation)
    httpserver.expect_request(f"/api/v1/accounts/{ACCOUNT}/conversations/208") \
        .respond_with_json({"error": "Resource could not be found"}, status=404)
    httpserver.expect_request(f"/api/v1/accounts/{ACCOUNT}/agents").respond_with_json(agents)


def page_token(client, key: str) -> str:
    response = client.get(f"/sidebar/chatwoot/{key}")
    assert response.status_code == 200
    return re.search(r'data-page-token="([^"]+)"', response.get_data(as_text=True)).group(1)


def claim(token: str, **changes) -> dict:
    return {"page": token, "conversation_id": 207, "email": "dana.whitfield@example.com", "agent_id": 5,
            "agent_name": "Sam", **changes}


def post_context(client, key: str, body) -> object:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post(f"/sidebar/chatwoot/{key}/context", data=data, content_type="application/json")


def test_chatwoot_page_is_framable_by_chatwoot_and_has_no_inline_script(client, chatwoot):
    response = client.get(f"/sidebar/chatwoot/{key_of(chatwoot)}")
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"] == "frame-ancestors 'self' https://chat.acme.example"
    html = response.get_data(as_text=True)
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/sidebar/chatwoot.js">']
    assert 'data-chatwoot-origin="https://chat.acme.example"' in html
    script = client.get("/static/sidebar/chatwoot.js")
    assert script.status_code == 200
    assert b"appContext" in script.data and b"chatwoot-dashboard-app:fetch-info" in script.data


def test_chatwoot_good_context_answers_the_panel_url(app, client, chatwoot, httpserver):
    serve_chatwoot(httpserver)
    key = key_of(chatwoot)
    response = post_context(client, key, claim(page_token(client, key)))
    assert response.status_code == 200, response.json
    location = urlsplit(response.json["panel_url"])
    assert location.path == "/sidebar/panel"
    with app.test_request_context():
        context = read_panel_token(parse_qs(location.query)["t"][0])
    assert (context.ticket_id, context.agent_id, context.agent_name) == ("207", "5", "Sam Agent")  # the API's name
    assert context.requester_email == "Dana.Whitfield@example.com"  # as Chatwoot spells it
    assert context.helpdesk_origin == "https://chat.acme.example" and context.integration_id == chatwoot["id"]


def test_chatwoot_is_asked_with_the_token_and_a_timeout(client, chatwoot, httpserver, monkeypatch):
    serve_chatwoot(httpserver)
    sent = []
    real_get = links.requests.get

    def recording_get(url, **kwargs):
        sent.append((url, kwargs))
        return real_get(url, **kwargs)

    monkeypatch.setattr(links.requests, "get", recording_get)
    key = key_of(chatwoot)
    assert post_context(client, key, claim(page_token(client, key))).status_code == 200
    base = httpserver.url_for("/").rstrip("/")
    assert [url for url, _ in sent] == [f"{base}/api/v1/accounts/3/conversations/207",
                                        f"{base}/api/v1/accounts/3/agents"]
    for _, kwargs in sent:
        assert kwargs["headers"]["api_access_token"] == "cw-access-token"
        assert 0 < kwargs["timeout"] <= 10 and kwargs["allow_redirects"] is False


def test_chatwoot_forged_page_tokens_are_refused(app, api, client, chatwoot, httpserver):
    serve_chatwoot(httpserver)
    key = key_of(chatwoot)
    token = page_token(client, key)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    refused(post_context(client, key, claim(tampered)), "bad_signature")
    refused(post_context(client, key, claim("not-a-page-token-at-all")), "bad_signature")
    other = connect(api, "chatwoot", settings={"base_url": httpserver.url_for("/").rstrip("/")})
    refused(post_context(client, key, claim(page_token(client, key_of(other)))), "bad_signature")
    assert len(httpserver.log) == 0  # nothing forged reached Chatwoot


def test_chatwoot_forged_context_is_refused_by_the_api_check(client, chatwoot, httpserver):
    serve_chatwoot(httpserver)
    key = key_of(chatwoot)
    refused(post_context(client, key, claim(page_token(client, key), email="mallory@example.com")), "context_mismatch")
    refused(post_context(client, key, claim(page_token(client, key), conversation_id=208)), "unknown_conversation")
    refused(post_context(client, key, claim(page_token(client, key), agent_id=99)), "unknown_agent")


def test_chatwoot_contact_without_email_is_refused(client, chatwoot, httpserver):
    serve_chatwoot(httpserver, conversation={**CONVERSATION, "meta": {"sender": {"id": 42, "email": None}}})
    key = key_of(chatwoot)
    refused(post_context(client, key, claim(page_token(client, key))), "context_mismatch")


def test_chatwoot_expired_page_token_is_refused(client, chatwoot, httpserver, monkeypatch):
    serve_chatwoot(httpserver)
    key = key_of(chatwoot)
    token = page_token(client, key)
    monkeypatch.setattr(links, "PAGE_NONCE_SECONDS", -1)  # every token is now older than allowed
    refused(post_context(client, key, claim(token)), "expired")
    assert len(httpserver.log) == 0


def test_chatwoot_replayed_context_is_refused_before_asking_chatwoot(client, chatwoot, httpserver):
    serve_chatwoot(httpserver)
    key = key_of(chatwoot)
    body = claim(page_token(client, key))
    assert post_context(client, key, body).status_code == 200
    calls = len(httpserver.log)
    refused(post_context(client, key, body), "replayed")
    assert len(httpserver.log) == calls


@pytest.mark.parametrize("status, code", [(500, "helpdesk_unavailable"), (503, "helpdesk_unavailable"),
                                          (401, "helpdesk_refused"), (200, "helpdesk_unavailable")])
def test_chatwoot_api_failures_are_a_clear_502(client, chatwoot, httpserver, status, code):
    handler = httpserver.expect_request(f"/api/v1/accounts/{ACCOUNT}/conversations/207")
    if status == 200:
        handler.respond_with_data("<html>maintenance</html>", status=200, content_type="text/html")
    else:
        handler.respond_with_json({"error": "x"}, status=status)
    key = key_of(chatwoot)
    response = post_context(client, key, claim(page_token(client, key)))
    assert response.status_code == 502, response.json
    assert response.json["error"]["code"] == code


def test_chatwoot_down_is_a_clear_502(app, client, chatwoot, httpserver):
    key = key_of(chatwoot)
    token = page_token(client, key)
    httpserver.stop()  # nothing listens on the base URL any more
    try:
        response = post_context(client, key, claim(token))
    finally:
        httpserver.start()
    assert response.status_code == 502
    assert response.json["error"]["code"] == "helpdesk_unavailable"


def test_chatwoot_without_api_credentials_says_what_is_missing(api, client, httpserver):
    integration = connect(api, "chatwoot", settings={"base_url": httpserver.url_for("/").rstrip("/")})
    key = key_of(integration)
    response = post_context(client, key, claim(page_token(client, key)))
    assert response.status_code == 502 and response.json["error"]["code"] == "helpdesk_not_configured"


@pytest.mark.parametrize("body, status", [
    (b"", 400), (b"{not json", 400), (b"[]", 422), ({"page": "x" * 20}, 422),
    ("extra", 422), ({"conversation_id": "207; DROP", "email": "a@b.c", "agent_id": 5, "page": "x" * 20}, 422),
    ({"conversation_id": -1, "email": "a@b.c", "agent_id": 5, "page": "x" * 20}, 422),
])
def test_chatwoot_malformed_context_is_a_4xx(client, chatwoot, body, status):
    key = key_of(chatwoot)
    if body == "extra":
        body = {**claim(page_token(client, key)), "is_admin": True}
    assert post_context(client, key, body).status_code == status


def test_chatwoot_page_only_for_enabled_chatwoot_integrations(api, client, chatwoot):
    front = connect(api, "front")
    assert client.get(f"/sidebar/chatwoot/{key_of(front)}").status_code == 404
    assert post_context(client, key_of(front), claim("x" * 20)).status_code == 404
    assert client.get("/sidebar/chatwoot/nope").status_code == 404
    assert api.post(f"/integrations/{chatwoot['id']}/disable").status_code == 200
    assert client.get(f"/sidebar/chatwoot/{key_of(chatwoot)}").status_code == 404


@pytest.mark.parametrize("kind", LINK_KINDS)
def test_the_panel_behind_a_link_is_framable_only_by_its_helpdesk(app, api, client, kind):
    integration = connect(api, kind)
    redirect = client.get(path_of(issued_link(api, integration)))
    assert redirect.status_code == 303
    panel = client.get(redirect.headers["Location"])
    assert panel.status_code == 200, panel.data[:500]
    assert panel.headers["Content-Security-Policy"] == f"frame-ancestors 'self' {ORIGINS[kind]}"
