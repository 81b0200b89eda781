"""Tenant use cases: create a tenant (with its defaults), issue, check and revoke API tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from app.cases.defaults import seed_tenant_defaults
from app.connectors.schemas import IntakeSettings
from app.errors import Conflict, NotFound
from app.extensions import db, utcnow
from app.tenants.models import ApiToken, Tenant

TOKEN_PREFIX = "rbd_"
# Writing last_used_at on every request would turn each read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=5)


@dataclass(frozen=True)
class IssuedToken:
    """A freshly issued token: ``plain`` is shown once and never stored."""

    token: ApiToken
    plain: str


def hash_token(plain: str) -> str:
    """SHA-256 of the token; tokens are 256-bit random, so a fast hash is enough."""
    return hashlib.sha256(plain.encode("utf-8")).hexdigest()


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:80] or "tenant"


def _new_token(tenant: Tenant, name: str) -> IssuedToken:
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(tenant=tenant, name=name, prefix=plain[:10], token_hash=hash_token(plain))
    db.session.add(token)
    return IssuedToken(token=token, plain=plain)


def create_tenant(name: str, *, slug: str | None = None, currency: str = "USD", locale: str = "en") -> IssuedToken:
    """Create a tenant with the default policy and reason codes, and its first API token.

    :raise Conflict: (409) a tenant with that slug exists.
    """
    slug = slug or slugify(name)
    if db.session.scalar(sa.select(Tenant.id).where(Tenant.slug == slug)) is not None:
        raise Conflict(f"A tenant with slug {slug!r} already exists.", {"slug": slug})
    tenant = Tenant(name=name, slug=slug, default_currency=currency, default_locale=locale)
    db.session.add(tenant)
    db.session.flush()
    seed_tenant_defaults(tenant.id)
    issued = _new_token(tenant, "default")
    db.session.commit()
    return issued


def issue_token(tenant_id: int, name: str) -> IssuedToken:
    """Issue another API token for a tenant.

    :raise NotFound: (404) no such tenant.
    """
    tenant = db.session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"No tenant with id {tenant_id}.")
    issued = _new_token(tenant, name)
    db.session.commit()
    return issued


def revoke_token(tenant_id: int, token_id: int) -> ApiToken:
    """Revoke one of a tenant's tokens; it stops working at once.

    :raise NotFound: (404) the tenant has no such token.
    """
    token = db.session.scalar(
        sa.select(ApiToken).where(ApiToken.id == token_id, ApiToken.tenant_id == tenant_id)
    )
    if token is None:
        raise NotFound(f"No API token with id {token_id}.")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        db.session.commit()
    return token


def authenticate_token(plain: str) -> ApiToken | None:
    """The active token matching ``plain``, or None. Records when it was last used."""
    if not plain.startswith(TOKEN_PREFIX) or len(plain) > 200:
        return None
    token = db.session.scalar(
        sa.select(ApiToken).where(ApiToken.token_hash == hash_token(plain), ApiToken.revoked_at.is_(None))
    )
    if token is None:
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        db.session.execute(sa.update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now))
        db.session.commit()
    return token


def update_intake_settings(tenant: Tenant, settings: IntakeSettings) -> IntakeSettings:
    """Store the tenant's intake thresholds and order-number patterns."""
    tenant.settings = {**(tenant.settings or {}), "intake": settings.model_dump(mode="json")}
    db.session.commit()
    return settings
