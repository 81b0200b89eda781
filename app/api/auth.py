"""Bearer-token authentication for the API: the tenant is ``g.tenant`` after ``require_token``."""

from __future__ import annotations

from flask import g, request

from app.errors import Unauthorized
from app.extensions import db
from app.tenants.models import Tenant
from app.tenants.services import authenticate_token


def require_token() -> None:
    """Authenticate the request's bearer token and set ``g.tenant`` and ``g.token``.

    :raise Unauthorized: (401) no token, or an unknown or revoked one.
    """
    header = request.headers.get("Authorization", "")
    scheme, _, plain = header.partition(" ")
    if scheme.lower() != "bearer" or not plain.strip():
        raise Unauthorized("Send an API token as 'Authorization: Bearer <token>'.")
    token = authenticate_token(plain.strip())
    if token is None:
        raise Unauthorized("The API token is unknown or has been revoked.")
    g.token = token
    g.tenant = db.session.get(Tenant, token.tenant_id)


def current_tenant() -> Tenant:
    return g.tenant


def current_actor_id() -> str:
    return f"token:{g.token.id}"
