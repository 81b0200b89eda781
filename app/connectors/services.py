"""Integration use cases: connect, read secrets, rotate, disable, change settings."""

from __future__ import annotations

import base64
import secrets as random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app

from app.connectors.crypto import decrypt_secrets, encrypt_secrets, valid_signing_secrets, with_rotated_secret
from app.connectors.models import Integration
from app.connectors.schemas import (
    RESERVED_CREDENTIALS, CredentialsUpdate, IntegrationCreate, IntegrationSettings, SecretRotation,
)
from app.errors import NotFound
from app.extensions import db, utcnow
from app.outbound.urls import check_outbound_url
from app.tenants.models import Tenant


@dataclass(frozen=True)
class Connected:
    """A new integration and its signing secret, shown once."""

    integration: Integration
    signing_secret: str


def generate_secret(kind: str) -> str:
    """A fresh signing secret in the form the helpdesk expects (Standard Webhooks: ``whsec_``)."""
    if kind in ("generic", "rawmime"):
        return "whsec_" + base64.b64encode(random.token_bytes(32)).decode()
    if kind == "helpscout":  # Help Scout accepts secrets of at most 40 characters
        return random.token_hex(20)
    return random.token_urlsafe(32)


def _check_base_url(settings: IntegrationSettings) -> None:
    if settings.base_url:
        check_outbound_url(settings.base_url, allow_private=current_app.config["REBOUND_ALLOW_PRIVATE_URLS"],
                           field="settings.base_url")


def connect(tenant: Tenant, data: IntegrationCreate) -> Connected:
    """Create an integration with an unguessable webhook key and encrypted secrets.

    :raise ValidationFailed: (422) the base URL points at a private address (see ``outbound.urls``).
    """
    _check_base_url(data.settings)
    signing_secret = data.signing_secret or generate_secret(data.kind)
    integration = Integration(
        tenant_id=tenant.id, kind=data.kind, name=data.name, public_key=random.token_urlsafe(24),
        secrets_encrypted=encrypt_secrets({"signing_secret": signing_secret, **data.credentials}),
        settings=data.settings.model_dump(mode="json", exclude_defaults=True),
    )
    db.session.add(integration)
    db.session.commit()
    return Connected(integration, signing_secret)


def get_integration(tenant_id: int, integration_id: int) -> Integration:
    """:raise NotFound: (404) the tenant has no such integration."""
    integration = db.session.scalar(
        sa.select(Integration).where(Integration.id == integration_id, Integration.tenant_id == tenant_id)
    )
    if integration is None:
        raise NotFound(f"No integration {integration_id}.")
    return integration


def find_by_key(public_key: str) -> Integration | None:
    """The integration behind a webhook URL key (enabled or not), or None."""
    if not public_key or len(public_key) > 64:
        return None
    return db.session.scalar(sa.select(Integration).where(Integration.public_key == public_key))


def signing_secrets(integration: Integration, now: datetime | None = None) -> list[str]:
    """The secrets a request may be signed with: the current one, and the previous one while
    its grace period after a rotation lasts."""
    return valid_signing_secrets(decrypt_secrets(integration.secrets_encrypted), now or utcnow())


def credentials(integration: Integration) -> dict[str, Any]:
    """Every stored secret of the integration (API credentials included)."""
    return decrypt_secrets(integration.secrets_encrypted)


def rotate_secret(tenant: Tenant, integration_id: int, data: SecretRotation) -> Connected:
    """Replace the signing secret; the old one keeps working for ``grace_seconds``.

    :raise NotFound: (404) no such integration.
    """
    integration = get_integration(tenant.id, integration_id)
    new_secret = data.signing_secret or generate_secret(integration.kind)
    integration.secrets_encrypted = encrypt_secrets(with_rotated_secret(
        decrypt_secrets(integration.secrets_encrypted), new_secret, data.grace_seconds, utcnow()))
    db.session.commit()
    return Connected(integration, new_secret)


def update_credentials(tenant: Tenant, integration_id: int, data: CredentialsUpdate) -> list[str]:
    """Add, replace or remove credentials (e.g. a sidebar key that exists only once the helpdesk's
    app is installed); returns the names now stored. The change moves ``updated_at``, so every web
    process reads the integration again on its next request.

    :raise NotFound: (404) no such integration.
    """
    integration = get_integration(tenant.id, integration_id)
    stored = decrypt_secrets(integration.secrets_encrypted)
    for name, value in data.credentials.items():
        if value is None:
            stored.pop(name, None)
        else:
            stored[name] = value
    integration.secrets_encrypted = encrypt_secrets(stored)
    db.session.commit()
    return sorted(name for name in stored if name not in RESERVED_CREDENTIALS)


def set_enabled(tenant: Tenant, integration_id: int, enabled: bool) -> Integration:
    """Disable (its webhooks then answer 404) or re-enable an integration."""
    integration = get_integration(tenant.id, integration_id)
    integration.enabled = enabled
    integration.disabled_at = None if enabled else utcnow()
    db.session.commit()
    return integration


def update_settings(tenant: Tenant, integration_id: int, settings: IntegrationSettings) -> Integration:
    """:raise ValidationFailed: (422) the base URL points at a private address."""
    integration = get_integration(tenant.id, integration_id)
    _check_base_url(settings)
    integration.settings = settings.model_dump(mode="json", exclude_defaults=True)
    db.session.commit()
    return integration


def list_integrations(tenant_id: int) -> list[Integration]:
    return list(db.session.scalars(
        sa.select(Integration).where(Integration.tenant_id == tenant_id).order_by(Integration.id)))
