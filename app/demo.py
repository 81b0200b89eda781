"""Demo data: a tenant with orders and cases in several states, made through the real services,
and the demo helpdesk's integration (the stand-in helpdesk served at ``/``, see app/sidebar/demo.py)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import secrets

import sqlalchemy as sa
from flask import current_app

from app.cases import schemas
from app.cases.queries import get_case
from app.cases.services import Actor, create_case, perform_action
from app.cases.states import Action
from app.connectors.models import Integration
from app.connectors.schemas import IntegrationCreate, IntegrationSettings
from app.connectors.services import connect, update_settings
from app.extensions import db
from app.orders.schemas import OrderUpsert
from app.orders.services import upsert_order
from app.tenants.models import Tenant
from app.tenants.services import create_tenant, issue_token

DEMO_SLUG = "demo"
AGENT = Actor(type="agent", id="demo-agent", channel="agent")
DEMO_HELPDESK_NAME = "Demo helpdesk"
# The stand-in helpdesk speaks Zammad's webhook and REST API (app/sidebar/demo.py), so the demo runs
# the real adapter on the way in and the real write-back client on the way out. ``generic`` would be
# the obvious kind, but it has no write-back client: no note or reply would ever leave.
DEMO_HELPDESK_KIND = "zammad"
DEMO_HELPDESK_PATH = "/demo/helpdesk-api"

CUSTOMERS = [
    ("maria.lopez@example.com", "María López"),
    ("jonas.becker@example.de", "Jonas Becker"),
    ("claire.martin@example.fr", "Claire Martin"),
    ("sam.okafor@example.com", "Sam Okafor"),
]
PRODUCTS = [
    ("TENT-2P-GRN", "Trailhead 2-person tent, green", Decimal("249.00"), "tents", False),
    ("BOOT-W-38", "Ridge hiking boots, women's 38", Decimal("139.90"), "footwear", False),
    ("SOCK-MER-3", "Merino hiking socks, 3-pack", Decimal("24.00"), "underwear", False),
    ("LAMP-HD-200", "Headlamp 200 lm", Decimal("34.50"), "electronics", False),
    ("JACK-RN-M", "Rain shell jacket, M", Decimal("119.00"), "apparel", False),
    ("STOVE-GAS", "Compact gas stove (clearance)", Decimal("29.00"), "cooking", True),
]


def _action(tenant: Tenant, number: str, action: Action, payload: schemas.ActionIn) -> None:
    perform_action(tenant, number, action, payload, AGENT)


def demo_tenant() -> Tenant | None:
    return db.session.scalar(sa.select(Tenant).where(Tenant.slug == DEMO_SLUG))


def demo_helpdesk(tenant: Tenant) -> Integration | None:
    """The demo tenant's stand-in helpdesk integration, if loaded."""
    return db.session.scalar(sa.select(Integration).where(
        Integration.tenant_id == tenant.id, Integration.kind == DEMO_HELPDESK_KIND,
        Integration.name == DEMO_HELPDESK_NAME).order_by(Integration.id).limit(1))


def ensure_demo_helpdesk(tenant: Tenant) -> Integration:
    """The demo helpdesk's integration, created once: its write-back goes to this server's own
    stand-in API (``REBOUND_PUBLIC_URL`` + ``/demo/helpdesk-api/<key>``; the address follows
    ``REBOUND_PUBLIC_URL`` on every load, so ``make run`` on another port works), and intake only
    suggests a case, so that the agent opens it from the panel."""
    integration = demo_helpdesk(tenant)
    if integration is not None:
        base_url = current_app.config["REBOUND_PUBLIC_URL"].rstrip("/") + f"{DEMO_HELPDESK_PATH}/{integration.public_key}"
        if (integration.settings or {}).get("base_url") != base_url:
            settings = IntegrationSettings.model_validate({**(integration.settings or {}), "base_url": base_url})
            integration = update_settings(tenant, integration.id, settings)
        return integration
    connected = connect(tenant, IntegrationCreate(
        kind=DEMO_HELPDESK_KIND, name=DEMO_HELPDESK_NAME,
        credentials={"api_token": secrets.token_urlsafe(24)},
        settings=IntegrationSettings(auto_create_min_confidence=1.0, suggest_min_confidence=0.3),
    ))
    integration = connected.integration
    base_url = current_app.config["REBOUND_PUBLIC_URL"].rstrip("/") + f"{DEMO_HELPDESK_PATH}/{integration.public_key}"
    return update_settings(tenant, integration.id, IntegrationSettings(
        base_url=base_url, auto_create_min_confidence=1.0, suggest_min_confidence=0.3,
        tag_map={"resolved": "rma-resolved", "closed": "rma-closed"},
        status_map={"resolved": "closed", "closed": "closed", "requested": "open"},
    ))


def load(force: bool = False) -> str:
    """Create the demo tenant (or reuse it with ``force``) and return a message with a token.

    Without ``force`` a second run changes nothing but adds what a newer version of the demo has
    (the demo helpdesk) and issues a fresh token.
    """
    tenant = demo_tenant()
    helpdesk = current_app.config["REBOUND_DEMO_HELPDESK"]
    if tenant is not None and not force:
        if helpdesk:
            ensure_demo_helpdesk(tenant)
        token = issue_token(tenant.id, "demo").plain
        return (f"Demo tenant {DEMO_SLUG!r} is already loaded (flask demo load --force adds more cases).\n"
                f"Demo helpdesk: {current_app.config['REBOUND_PUBLIC_URL'].rstrip('/')}/\nAPI token: {token}")
    if tenant is None:
        issued = create_tenant("Acme Outdoor (demo)", slug=DEMO_SLUG, currency="EUR")
        tenant, token = issued.token.tenant, issued.plain
    else:
        token = issue_token(tenant.id, "demo").plain
    if helpdesk:
        ensure_demo_helpdesk(tenant)

    today = date.today()
    orders = []
    for index, (email, name) in enumerate(CUSTOMERS):
        for k in range(2):
            sku_a, sku_b = PRODUCTS[(index + k) % len(PRODUCTS)], PRODUCTS[(index + k + 2) % len(PRODUCTS)]
            number = f"100{index}{k}"
            ordered = today - timedelta(days=6 + 7 * k + index)
            order, _ = upsert_order(tenant, OrderUpsert(
                number=number, currency="EUR", ordered_on=ordered, delivered_on=ordered + timedelta(days=3),
                customer={"email": email, "name": name},
                lines=[{"sku": p[0], "title": p[1], "quantity": 2, "unit_price": p[2], "category": p[3],
                        "final_sale": p[4]} for p in (sku_a, sku_b)],
            ))
            orders.append(order)

    def open_case(order_index: int, line: int, reason: str, resolution: str = "refund", **extra) -> str:
        order = orders[order_index]
        item = order.lines[line]
        return create_case(tenant, schemas.CaseCreate(
            lines=[{"order_number": order.number, "sku": item.sku, "quantity": 1, "reason_code": reason,
                    "comment": "Demo request."}],
            preferred_resolution=resolution, **extra,
        ), Actor(type="customer", id=order.customer.email, channel="email")).number

    # One case per interesting state.
    approved = open_case(0, 0, "too_small")                                  # authorized
    review = open_case(2, 0, "damaged_in_transit")                           # pending_review (photo missing)
    info = open_case(4, 1, "defective_stopped_working")
    _action(tenant, info, Action.REQUEST_INFO, schemas.RequestInfoIn(message="Could you send us a photo of the defect?"))
    shipping = open_case(6, 0, "changed_mind", "store_credit")
    _action(tenant, shipping, Action.ISSUE_LABEL, schemas.IssueLabelIn(carrier="DHL", tracking_number="JD0142000001"))
    _action(tenant, shipping, Action.SHIP, schemas.ShipIn())
    done = open_case(1, 1, "too_large")
    _action(tenant, done, Action.ISSUE_LABEL, schemas.IssueLabelIn(carrier="UPS", tracking_number="1Z999AA10123456784"))
    _action(tenant, done, Action.SHIP, schemas.ShipIn())
    _action(tenant, done, Action.RECEIVE, schemas.ReceiveIn())
    line_id = get_case(tenant.id, done).lines[0].id
    _action(tenant, done, Action.INSPECT, schemas.InspectIn(lines=[{"line_id": line_id, "condition_grade": "A",
                                                                   "disposition": "restock", "quantity_accepted": 1}]))
    _action(tenant, done, Action.RESOLVE, schemas.ResolveIn(kind="refund"))
    _action(tenant, done, Action.SETTLE, schemas.SettleIn(external_ref="re_demo_001"))
    return (
        f"Demo tenant {tenant.slug!r} loaded: {len(orders)} orders, cases {approved} (authorized), {review} (review), "
        f"{info} (awaiting customer), {shipping} (in transit), {done} (resolved).\n"
        f"Demo helpdesk: {current_app.config['REBOUND_PUBLIC_URL'].rstrip('/')}/\nAPI token: {token}"
    )
