"""Helpers shared by the sidebar entry-point tests: integrations through the API, panel tokens."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from app.sidebar.context import PanelContext, read_panel_token
from tests.factories import case_payload, order_payload


def key_of(integration: dict) -> str:
    """The integration's public key (the last segment of its webhook URL)."""
    return integration["webhook_url"].rstrip("/").rsplit("/", 1)[1]


def create_integration(api, kind: str, credentials: dict, settings: dict | None = None) -> dict:
    response = api.post("/integrations", json={"kind": kind, "name": f"{kind} sidebar", "credentials": credentials,
                                              "settings": settings or {}})
    assert response.status_code == 201, response.json
    return response.json


def panel_token_of(url: str) -> str:
    parts = urlsplit(url.replace("&amp;", "&"))
    assert parts.path == "/sidebar/panel", url
    return parse_qs(parts.query)["t"][0]


def panel_context(app, url: str) -> PanelContext:
    """The context named by the panel token in ``url`` (a redirect target or a link)."""
    with app.app_context():
        return read_panel_token(panel_token_of(url))


def rejections(api, integration: dict) -> list[dict]:
    return api.get(f"/integrations/{integration['id']}/rejected").json["items"]


def open_case(api, ticket: dict) -> dict:
    """A case in pending_review (damaged, no photo) linked to ``ticket``."""
    assert api.post("/orders", json=order_payload()).status_code == 200
    response = api.post("/cases", json=case_payload(reason="damaged_in_transit", ticket=ticket))
    assert response.status_code == 201, response.json
    return response.json
