"""``POST /webhooks/<integration_key>``: verify exactly as the helpdesk signs, record, process.

Order matters: find the integration (404), bound the body (413), verify the signature before
reading anything in it (401), answer a validation handshake, parse (400 naming the field),
then store and commit before answering 2xx. Every refusal is counted for the integration.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from app.connectors.models import Integration
from app.connectors.services import find_by_key, signing_secrets
from app.errors import AppError, BadRequest, NotFound, PayloadTooLarge, Unauthorized
from app.extensions import utcnow
from app.inbound import services
from integrations import InboundRequest, PayloadError, SignatureError, get_adapter

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


def _refuse(integration: Integration, error: AppError, body_bytes: int | None) -> AppError:
    services.record_rejection(integration, error.status, error.code, error.message, request.remote_addr, body_bytes)
    return error


def _read_body(integration: Integration) -> bytes:
    limit = current_app.config["REBOUND_WEBHOOK_MAX_BYTES"]
    too_large = PayloadTooLarge(f"The body is larger than {limit} bytes.", {"limit": limit})
    if request.content_length is not None and request.content_length > limit:
        raise _refuse(integration, too_large, request.content_length)
    try:
        body = request.get_data(cache=False)
    except RequestEntityTooLarge:
        raise _refuse(integration, too_large, request.content_length) from None
    if len(body) > limit:
        raise _refuse(integration, too_large, len(body))
    return body


@bp.post("/<key>")
def receive(key: str) -> Response | tuple[Response, int]:
    """Receive one helpdesk delivery; duplicates answer 200 and change nothing."""
    integration = find_by_key(key)
    if integration is None:
        raise NotFound("No integration has this webhook URL.")
    if not integration.enabled:
        raise _refuse(integration, NotFound("This integration is disabled."), request.content_length)
    body = _read_body(integration)
    now = utcnow()
    inbound = InboundRequest(
        method=request.method, path=request.path, body=body, received_at=now,
        headers={name.lower(): value for name, value in request.headers.items()},
        query=request.args.to_dict(flat=True),
    )
    adapter = get_adapter(integration.kind)
    secrets = signing_secrets(integration, now)
    try:
        adapter.verify(inbound, secrets, now)
    except SignatureError as exc:
        raise _refuse(integration, Unauthorized(str(exc), code="invalid_signature"), len(body)) from None
    handshake = adapter.handshake(inbound, secrets)
    if handshake is not None:
        return Response(handshake.body, status=handshake.status, content_type=handshake.content_type)
    try:
        event = adapter.parse(inbound)
    except PayloadError as exc:
        details = {"field": exc.field} if exc.field else {}
        raise _refuse(integration, BadRequest(str(exc), details, code="invalid_payload"), len(body)) from None

    event_id, created = services.record_event(integration, adapter.delivery_key(inbound), event, body)
    if not created:
        return jsonify({"status": "duplicate", "event_id": event_id}), 200
    try:
        status = services.process_event(event_id)
    except Exception:  # stored and committed: the worker will finish it
        log.exception("inline processing of inbound event %s failed; the worker will retry", event_id)
        status = "queued"
    return jsonify({"status": status, "event_id": event_id}), 200
