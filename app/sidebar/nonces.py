"""One-time values of sidebar entry requests (a JWT's ``jti``, a link's nonce, a signed body's
hash): each may be used once until it expires, so a captured request can't be replayed."""

from __future__ import annotations

import hashlib
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.errors import Unauthorized
from app.extensions import db, utcnow
from app.sidebar.models import SeenNonce

MAX_NONCE_CHARS = 128


def use_once(integration_id: int, nonce: str, expires_at: datetime,
             message: str = "This sidebar request was already used; reload the ticket.") -> None:
    """Record ``nonce`` as used until ``expires_at`` and commit; expired ones are forgotten.

    The primary key (integration, nonce) decides between two concurrent uses: one commits, the
    other gets the IntegrityError.

    :raise Unauthorized: (401, ``reason: replayed``) the value was used before.
    """
    if len(nonce) > MAX_NONCE_CHARS:
        nonce = "sha256:" + hashlib.sha256(nonce.encode("utf-8")).hexdigest()
    db.session.execute(sa.delete(SeenNonce).where(SeenNonce.integration_id == integration_id,
                                                  SeenNonce.expires_at <= utcnow()))
    db.session.add(SeenNonce(integration_id=integration_id, nonce=nonce, expires_at=expires_at))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Unauthorized(message, {"reason": "replayed"}, code="replayed") from None
