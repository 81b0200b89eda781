"""PATCH /api/v1/integrations/{id}/credentials: credentials set after creation (e.g. the sidebar key
that exists only once the helpdesk's app is installed) take effect at once; values never come back."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest


@pytest.fixture()
def helpscout(api):
    response = api.post("/integrations", json={"kind": "helpscout", "name": "Help Scout"})
    assert response.status_code == 201
    return response.json


def _sidebar(client, integration, secret: str):
    body = json.dumps({"ticket": {"id": 1042, "number": 42, "subject": "Return"},
                       "customer": {"email": "dana@example.com"}, "user": {"id": 7}}).encode()
    signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha1).digest()).decode()
    key = integration["webhook_url"].rsplit("/", 1)[1]
    return client.post(f"/sidebar/helpscout/{key}", data=body,
                       headers={"Content-Type": "application/json", "X-HelpScout-Signature": signature})


def test_a_credential_added_later_takes_effect_and_is_never_shown(api, client, helpscout):
    assert _sidebar(client, helpscout, "app-secret-1").status_code == 401  # none configured yet
    response = api.patch(f"/integrations/{helpscout['id']}/credentials",
                         json={"credentials": {"helpscout_app_secret": "app-secret-1"}})
    assert response.status_code == 200, response.json
    assert response.json == {"credential_names": ["helpscout_app_secret"]}
    assert "app-secret-1" not in json.dumps(api.get(f"/integrations/{helpscout['id']}").json)
    assert _sidebar(client, helpscout, "app-secret-1").status_code == 200
    # Replaced, then removed: each change applies to the very next request.
    api.patch(f"/integrations/{helpscout['id']}/credentials", json={"credentials": {"helpscout_app_secret": "app-secret-2"}})
    assert _sidebar(client, helpscout, "app-secret-1").status_code == 401
    removed = api.patch(f"/integrations/{helpscout['id']}/credentials", json={"credentials": {"helpscout_app_secret": None}})
    assert removed.json == {"credential_names": []}
    assert _sidebar(client, helpscout, "app-secret-2").status_code == 401


@pytest.mark.parametrize("body, field", [
    ({"credentials": {"signing_secret": "x" * 20}}, "credentials"),
    ({"credentials": {"previous_valid_until": "2030-01-01"}}, "credentials"),
    ({"credentials": {}}, "credentials"),
    ({"credentials": {"Bad-Name": "x"}}, "credentials.Bad-Name"),
    ({"credentials": {"api_token": ""}}, "credentials.api_token"),
    ({"credentials": {"api_token": 42}}, "credentials.api_token"),
    ({"credentials": {"api_token": "x"}, "extra": 1}, "extra"),
])
def test_bad_credential_updates_are_422_naming_the_field(api, helpscout, body, field):
    response = api.patch(f"/integrations/{helpscout['id']}/credentials", json=body)
    assert response.status_code == 422, response.json
    assert any(name.startswith(field) for name in response.json["error"]["details"]["fields"]), response.json


def test_credentials_of_another_tenants_integration_are_404(api, client, helpscout, app, runner):
    other = runner.invoke(args=["tenants", "create", "Other shop"]).output
    token = next(line.split()[-1] for line in other.splitlines() if "rbd_" in line)
    response = client.patch(f"/api/v1/integrations/{helpscout['id']}/credentials",
                            json={"credentials": {"api_token": "stolen-0"}}, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 404
    assert api.patch(f"/integrations/{helpscout['id']}/credentials", data="{not json",
                     headers={"Content-Type": "application/json"}).status_code == 400
