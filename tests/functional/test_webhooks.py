"""``POST /webhooks/<key>`` for every helpdesk: verified exactly as it signs, stored once, refused
clearly (and counted) when bad — with payloads shaped like each vendor's documented samples."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from flask import Flask

from app.cases.models import ReturnCase
from app.extensions import db
from app.inbound.models import InboundEvent, RejectedRequest
from integrations import get_adapter
from integrations.base import _MODULES

KINDS = list(_MODULES)
# Schemes with a signed timestamp, where a replayed (old) delivery must be refused.
TIMESTAMPED = {"zendesk", "front", "chatwoot", "generic"}
# Helpdesks that sign nothing: a shared secret proves the sender, not the body.
SECRET_HEADER_ONLY = {"gorgias", "freshdesk"}


@pytest.fixture()
def connect(api):
    """Create an integration of a kind through the API; returns (key, secret, id)."""

    def _connect(kind: str, **extra):
        response = api.post("/integrations", json={"kind": kind, "name": f"Our {kind}", **extra})
        assert response.status_code == 201, response.json
        body = response.json
        return body["webhook_url"].rsplit("/", 1)[1], body["signing_secret"], body["id"]

    return _connect


def _post(client, key: str, body: bytes, headers: dict[str, str]):
    return client.post(f"/webhooks/{key}", data=body, headers={"Content-Type": "application/json", **headers})


def _counts(app: Flask) -> tuple[int, int, int]:
    with app.app_context():
        return (
            db.session.scalar(sa.select(sa.func.count(InboundEvent.id))),
            db.session.scalar(sa.select(sa.func.count(ReturnCase.id))),
            db.session.scalar(sa.select(sa.func.count(RejectedRequest.id))),
        )


def _now() -> datetime:
    return datetime.now(timezone.utc)


@pytest.mark.parametrize("kind", KINDS)
def test_a_correctly_signed_delivery_is_stored_once(kind, app, client, connect):
    """A signed sample is accepted and stored; the same delivery again answers 200 and changes nothing."""
    key, secret, _ = connect(kind)
    adapter = get_adapter(kind)
    body = adapter.sample()
    headers = adapter.sign(body, secret, _now(), "delivery-1")
    first = _post(client, key, body, headers)
    assert first.status_code == 200, first.json
    assert first.json["status"] in {"processed", "ignored"}
    events, cases, _ = _counts(app)
    assert events == 1
    again = _post(client, key, body, headers)
    assert again.status_code == 200 and again.json["status"] == "duplicate"
    assert _counts(app)[:2] == (events, cases)


@pytest.mark.parametrize("kind", KINDS)
def test_missing_or_wrong_signature_is_401_and_counted(kind, app, client, connect, api):
    """No signature, a signature made with another secret, or a tampered body: 401, nothing stored."""
    key, secret, integration_id = connect(kind)
    adapter = get_adapter(kind)
    body = adapter.sample()
    good = adapter.sign(body, secret, _now(), "delivery-2")
    wrong = adapter.sign(body, secret[::-1] + "x", _now(), "delivery-2")
    tampered = body.replace(b"1001", b"9999", 1) if b"1001" in body else body + b" "
    attempts = [({}, body), (wrong, body)]
    if kind not in SECRET_HEADER_ONLY:
        attempts.append((good, tampered))
    for headers, payload in attempts:
        response = _post(client, key, payload, headers)
        assert response.status_code == 401, (kind, response.json)
        assert response.json["error"]["code"] == "invalid_signature"
    assert _counts(app) == (0, 0, len(attempts))
    log = api.get(f"/integrations/{integration_id}/rejected").json
    assert log["rejected_count"] == len(attempts) and {item["status_code"] for item in log["items"]} == {401}


@pytest.mark.parametrize("kind", sorted(TIMESTAMPED))
def test_a_replayed_delivery_with_an_old_timestamp_is_401(kind, app, client, connect):
    """A delivery signed an hour ago is refused even though its signature is genuine."""
    key, secret, _ = connect(kind)
    adapter = get_adapter(kind)
    body = adapter.sample()
    stale = adapter.sign(body, secret, _now() - timedelta(hours=1), "delivery-3")
    response = _post(client, key, body, stale)
    assert response.status_code == 401
    assert _counts(app) == (0, 0, 1)


@pytest.mark.parametrize("kind", KINDS)
def test_malformed_json_and_missing_fields_are_400_naming_the_field(kind, app, client, connect):
    """Signed but unreadable bodies: 400 with the field named, nothing stored, each counted."""
    key, secret, _ = connect(kind)
    adapter = get_adapter(kind)
    for body in (b'{"ticket": ', b"{}"):
        response = _post(client, key, body, adapter.sign(body, secret, _now(), "delivery-4"))
        assert response.status_code == 400, (kind, body, response.json)
        assert response.json["error"]["code"] == "invalid_payload"
        assert response.json["error"]["message"]
    missing = _post(client, key, b"{}", adapter.sign(b"{}", secret, _now(), "delivery-5"))
    assert missing.json["error"]["details"].get("field"), "the missing field is named"
    assert _counts(app) == (0, 0, 3)


@pytest.mark.parametrize("kind", KINDS)
def test_an_oversized_body_is_413(kind, app, client, connect):
    """A body over the webhook limit is refused before it is read, and counted."""
    key, secret, _ = connect(kind)
    body = b'{"padding": "' + b"x" * (app.config["REBOUND_WEBHOOK_MAX_BYTES"] + 10) + b'"}'
    response = _post(client, key, body, get_adapter(kind).sign(body, secret, _now(), "delivery-6"))
    assert response.status_code == 413
    assert response.json["error"]["code"] == "payload_too_large"
    assert _counts(app) == (0, 0, 1)


def test_unknown_and_disabled_integrations_are_404(app, client, connect, api):
    """An unknown key is 404; a disabled integration is 404 too (and counted), until re-enabled."""
    assert _post(client, "no-such-key", b"{}", {}).status_code == 404
    key, secret, integration_id = connect("zendesk")
    adapter = get_adapter("zendesk")
    body = adapter.sample()
    assert api.post(f"/integrations/{integration_id}/disable").json["enabled"] is False
    response = _post(client, key, body, adapter.sign(body, secret, _now(), "delivery-7"))
    assert response.status_code == 404
    assert _counts(app) == (0, 0, 1)
    api.post(f"/integrations/{integration_id}/enable")
    assert _post(client, key, body, adapter.sign(body, secret, _now(), "delivery-7")).status_code == 200


def test_a_rotated_secret_keeps_working_during_the_grace_period(app, client, connect, api):
    """After a rotation both secrets verify; with no grace period only the new one does."""
    key, old_secret, integration_id = connect("helpscout")
    adapter = get_adapter("helpscout")
    rotated = api.post(f"/integrations/{integration_id}/rotate-secret", json={"grace_seconds": 3600}).json
    new_secret = rotated["signing_secret"]
    assert new_secret != old_secret
    body = adapter.sample()
    assert _post(client, key, body, adapter.sign(body, old_secret, _now(), "a")).status_code == 200
    body2 = body.replace(b"1001", b"1002")
    assert _post(client, key, body2, adapter.sign(body2, new_secret, _now(), "b")).status_code == 200
    api.post(f"/integrations/{integration_id}/rotate-secret", json={"grace_seconds": 0})
    body3 = body.replace(b"1001", b"1003")
    assert _post(client, key, body3, adapter.sign(body3, new_secret, _now(), "c")).status_code == 401


def test_secrets_are_encrypted_at_rest(app, connect):
    """The stored integration row does not contain the signing secret or API credentials in clear."""
    key, secret, integration_id = connect("zendesk", credentials={"api_token": "zd-token-very-secret"})
    from app.connectors.models import Integration

    with app.app_context():
        stored = db.session.get(Integration, integration_id)
        assert secret not in stored.secrets_encrypted
        assert "zd-token-very-secret" not in stored.secrets_encrypted
        assert "zd-token-very-secret" not in json.dumps(stored.settings)


def test_the_inbox_is_visible_in_the_api(app, client, connect, api):
    """GET /inbound-events lists deliveries with status; filters by status and integration."""
    key, secret, integration_id = connect("zendesk")
    adapter = get_adapter("zendesk")
    body = adapter.sample()
    _post(client, key, body, adapter.sign(body, secret, _now(), "delivery-8"))
    page = api.get("/inbound-events", query_string={"integration_id": integration_id}).json
    assert len(page["items"]) == 1
    item = page["items"][0]
    assert item["kind"] == "zendesk" and item["status"] in {"processed", "ignored"} and item["attempts"] == 1
    assert api.get("/inbound-events", query_string={"status": "failed"}).json["items"] == []


def test_an_integration_cannot_point_at_a_private_address_in_production(app, api):
    """With private targets disallowed (production), a loopback base URL is a 422 and nothing is created."""
    app.config["REBOUND_ALLOW_PRIVATE_URLS"] = False
    try:
        response = api.post("/integrations", json={"kind": "zendesk", "name": "Sneaky",
                                                    "settings": {"base_url": "http://127.0.0.1:5432"}})
    finally:
        app.config["REBOUND_ALLOW_PRIVATE_URLS"] = True
    assert response.status_code == 422
    assert "settings.base_url" in response.json["error"]["details"]["fields"]
    assert api.get("/integrations").json["items"] == []


def test_a_counted_rejection_is_not_a_change_of_the_integration(app, client, connect):
    """Anyone can send a bad request to a webhook URL. Counting it must leave the integration's
    version (``updated_at``) alone, or every good delivery under way would have to start over."""
    from app.connectors.models import Integration

    key, secret, integration_id = connect("zendesk")
    adapter = get_adapter("zendesk")
    body = adapter.sample()

    def version():
        with app.app_context():
            return db.session.get(Integration, integration_id).updated_at

    before = version()
    assert _post(client, key, body, adapter.sign(body, "forged", _now(), "bad-1")).status_code == 401
    assert version() == before
    assert _post(client, key, body, adapter.sign(body, secret, _now(), "good-1")).status_code == 200
    assert _counts(app)[0] == 1
