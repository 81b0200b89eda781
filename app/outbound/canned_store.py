"""A tenant's canned responses in the database, and canned responses rendered for a real case.

What belongs here: reading, saving (after ``canned.validate_source``) and deleting ``CannedTemplate``
rows — a tenant's own versions of the shipped defaults — and the bridge from a case in the database
to the plain variables of ``canned.VARIABLES`` (``case_context``, ``render_for_case``). The sandbox,
the variables themselves and the lookup order live in ``canned.py``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.cases.models import CaseEvent, ReturnCase
from app.errors import NotFound, ValidationFailed
from app.extensions import db, utcnow
from app.outbound import canned
from app.outbound.canned import LOCALES, TEMPLATE_KEYS, Rendered, TemplateSource
from app.outbound.models import CannedTemplate
from app.outbound.schemas import CannedResponseItem, CannedTemplateIn, CannedTemplateOut
from app.tenants.models import Tenant

Overrides = dict[tuple[str, str], TemplateSource]

_LOCALE_TAG = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")
# The step a case had reached when it expired says why it expired.
_EXPIRY_REASONS = {"awaiting_customer": "no_reply", "authorized": "not_shipped", "awaiting_shipment": "not_shipped"}
# Actions whose event carries a text a canned response shows (reject_reason, info_request, expiry_reason).
_TEXT_ACTIONS = ("reject", "request_info", "expire")


def normalize_locale(locale: str) -> str | None:
    """``de_AT`` → ``de-at``; None when it is not a language tag (or too long to store)."""
    tag = locale.strip().lower().replace("_", "-")
    return tag if _LOCALE_TAG.match(tag) and len(tag) <= 16 else None


def _known_key(key: str) -> str:
    if key not in TEMPLATE_KEYS:
        raise NotFound(f"There is no canned response named {key!r}.", {"key": key, "known": list(TEMPLATE_KEYS)})
    return key


def overrides(tenant_id: int) -> Overrides:
    """The tenant's own templates by (key, locale), as ``canned.render`` takes them."""
    rows = db.session.execute(
        sa.select(CannedTemplate.key, CannedTemplate.locale, CannedTemplate.subject, CannedTemplate.body)
        .where(CannedTemplate.tenant_id == tenant_id)
    )
    return {(key, locale): TemplateSource(subject=subject or "", body=body) for key, locale, subject, body in rows}


def _row(tenant_id: int, key: str, locale: str) -> CannedTemplate | None:
    return db.session.scalar(sa.select(CannedTemplate).where(
        CannedTemplate.tenant_id == tenant_id, CannedTemplate.key == key, CannedTemplate.locale == locale))


def list_templates(tenant_id: int) -> list[CannedResponseItem]:
    """Every key in every shipped locale and every locale the tenant added, with where it comes from."""
    rows = {(r.key, r.locale): r for r in db.session.scalars(
        sa.select(CannedTemplate).where(CannedTemplate.tenant_id == tenant_id))}
    extra = sorted({locale for _, locale in rows} - set(LOCALES))
    items = []
    for key in TEMPLATE_KEYS:
        for locale in (*LOCALES, *extra):
            row = rows.get((key, locale))
            shipped = canned.shipped_template(key, locale) is not None
            if row is None and not shipped:
                continue
            items.append(CannedResponseItem(key=key, locale=locale, origin="tenant" if row else "shipped",
                                            shipped=shipped, updated_at=row.updated_at if row else None))
    return items


def get_template(tenant_id: int, key: str, locale: str) -> CannedTemplateOut:
    """The source of one canned response in exactly ``locale``: the tenant's version, else the shipped one.

    :raise NotFound: (404) unknown key, or neither the tenant nor Rebound has it in that locale.
    """
    _known_key(key)
    tag = normalize_locale(locale)
    row = _row(tenant_id, key, tag) if tag else None
    if row is not None:
        return CannedTemplateOut(key=key, locale=row.locale, origin="tenant", subject=row.subject or "",
                                 body=row.body, updated_at=row.updated_at)
    shipped = canned.shipped_template(key, tag) if tag else None
    if shipped is None:
        raise NotFound(f"There is no {key!r} canned response in {locale!r}.",
                       {"key": key, "locale": locale, "shipped_locales": list(LOCALES)})
    return CannedTemplateOut(key=key, locale=tag, origin="shipped", subject=shipped.subject, body=shipped.body)


def save_template(tenant: Tenant, key: str, locale: str, data: CannedTemplateIn) -> CannedTemplateOut:
    """Store the tenant's version of (key, locale), after checking it in the sandbox.

    :raise NotFound: (404) unknown key.
    :raise ValidationFailed: (422) the locale is not a language tag.
    :raise CannedTemplateError: (422) the template is broken or tries to leave the sandbox.
    """
    _known_key(key)
    tag = normalize_locale(locale)
    if tag is None:
        raise ValidationFailed("The locale must be a language tag such as de or de-AT.",
                               {"fields": {"locale": [f"{locale!r} is not a language tag"]}})
    canned.validate_source(data.subject, data.body, key=key, locale=tag)
    subject = data.subject.strip()
    row = _row(tenant.id, key, tag)
    if row is None:
        try:
            # A savepoint: when a concurrent save inserts the same row first, update that one instead.
            with db.session.begin_nested():
                row = CannedTemplate(tenant_id=tenant.id, key=key, locale=tag, subject=subject, body=data.body)
                db.session.add(row)
        except IntegrityError:
            row = _row(tenant.id, key, tag)
    assert row is not None
    row.subject, row.body, row.updated_at = subject, data.body, utcnow()
    db.session.commit()
    return CannedTemplateOut(key=key, locale=tag, origin="tenant", subject=row.subject or "", body=row.body,
                             updated_at=row.updated_at)


def delete_template(tenant: Tenant, key: str, locale: str) -> None:
    """Drop the tenant's version of (key, locale): the shipped default applies again.

    :raise NotFound: (404) unknown key, or the tenant has no version of it in that locale.
    """
    _known_key(key)
    tag = normalize_locale(locale)
    row = _row(tenant.id, key, tag) if tag else None
    if row is None:
        raise NotFound(f"There is no tenant version of {key!r} in {locale!r}; the shipped default is in use.",
                       {"key": key, "locale": locale})
    db.session.delete(row)
    db.session.commit()


# ---- a real case --------------------------------------------------------------------------------

def _event_texts(event: Any) -> dict[str, Any]:
    """What a transition's event says that a canned response shows."""
    action, data = str(event.action), event.data or {}
    if action == "reject":
        return {"reject_reason": event.reason}
    if action == "request_info":
        return {"info_request": data.get("message") or event.reason}
    if action == "expire":
        reason = event.reason if event.reason in ("no_reply", "not_shipped") else None
        return {"expiry_reason": reason or _EXPIRY_REASONS.get(event.from_status or "")}
    return {}


def _latest_texts(case: ReturnCase) -> dict[str, Any]:
    """The texts of the case's latest reject, info request and expiry (for a preview or a manual reply)."""
    events = db.session.scalars(
        sa.select(CaseEvent).where(CaseEvent.tenant_id == case.tenant_id, CaseEvent.case_id == case.id,
                                   CaseEvent.action.in_(_TEXT_ACTIONS))
        .order_by(CaseEvent.id.desc()).limit(20))
    texts: dict[str, Any] = {}
    for event in events:
        for name, value in _event_texts(event).items():
            texts.setdefault(name, value)
    return texts


def case_context(case: ReturnCase, tenant: Tenant, event: Any = None) -> dict[str, Any]:
    """``canned.build_context`` for a case in the database; the texts come from ``event`` when given
    (the transition being pushed), else from the case's latest events."""
    settlement = case.settlements[-1] if case.settlements else None
    customer = case.customer
    return canned.build_context(
        case_number=case.number,
        status=(event.to_status if event is not None and event.to_status else None) or case.status,
        customer_name=customer.name if customer else None,
        customer_email=customer.email if customer else None,
        merchant_name=tenant.name,
        requested_on=case.created_at,
        lines=[{
            "sku": line.sku, "title": line.title, "order_number": line.order.number if line.order else None,
            "qty_requested": line.qty_requested, "qty_authorized": line.qty_authorized,
            "qty_received": line.qty_received, "qty_accepted": line.qty_accepted, "reason_code": line.reason_code,
            "condition_grade": line.condition_grade, "disposition": line.disposition,
            "decision_status": line.decision_status,
        } for line in case.lines],
        preferred_resolution=case.preferred_resolution,
        currency=case.currency,
        settlement=None if settlement is None else {
            "kind": settlement.kind, "currency": settlement.currency, "gross": settlement.gross,
            "fees": settlement.fees, "bonus": settlement.bonus, "amount": settlement.amount,
            "customer_owes": settlement.customer_owes, "external_ref": settlement.external_ref,
        },
        shipment={"carrier": case.return_carrier, "tracking_number": case.return_tracking,
                  "label_url": case.return_label_url, "label_issued_at": case.label_issued_at},
        policy_decision=case.policy_decision,
        settings=(tenant.settings or {}).get("canned"),
        **(_event_texts(event) if event is not None else _latest_texts(case)),
    )


def render_for_case(case: ReturnCase, tenant: Tenant, key: str, *, locale: str | None = None, event: Any = None,
                    tenant_templates: Mapping[tuple[str, str], TemplateSource] | None = None) -> Rendered:
    """Render ``key`` for ``case`` in ``locale`` (default: the case's), falling back to the tenant's
    default locale, then English. ``tenant_templates`` defaults to the tenant's saved ones.

    :raise NotFound: (404) unknown key.
    :raise CannedTemplateError: (422) the template fails on this case's data.
    """
    if tenant_templates is None:
        tenant_templates = overrides(tenant.id)
    return canned.render(key, locale or case.locale, case_context(case, tenant, event), overrides=tenant_templates,
                         default_locale=tenant.default_locale)
