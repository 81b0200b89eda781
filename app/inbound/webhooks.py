"""``POST /webhooks/<integration_key>``: verify exactly as the helpdesk signs, record, process.

Order matters: find the integration (404), bound the body (413), verify the signature before
reading anything in it (401), answer a validation handshake, parse (400 naming the field),
then store and commit before answering 2xx. Every refusal is counted for the integration.

The integration comes from a per-process cache (``services.receiver_for``). It cannot make a
change elsewhere late: the INSERT stores nothing unless the integration is still enabled and
unchanged, and a signature that fails against cached secrets is checked again against fresh
ones; either way the request starts over with the integration read from the database.
Processing then runs in the request (``REBOUND_INBOUND_PROCESSING=inline``) or is left to
``flask worker`` (``worker``: the answer is ``queued``).
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request

from app.errors import AppError, BadRequest, NotFound, PayloadTooLarge, Unauthorized
from app.validation import read_body
from app.extensions import utcnow
from app.inbound import services
from app.connectors.schemas import MAIL_KINDS
from integrations import InboundRequest, PayloadError, SignatureError, TicketEvent, get_adapter
from integrations.mail import MailLimits, MailTooLargeError, get_mail_adapter

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


def _refuse(integration: services.Receiver, error: AppError, body_bytes: int | None) -> AppError:
    services.record_rejection(integration.tenant_id, integration.id, error.status, error.code, error.message,
                              request.remote_addr, body_bytes)
    return error


def _receiver(key: str, fresh: bool) -> services.Receiver:
    """:raise NotFound: (404) unknown key, or a disabled integration (counted)."""
    found = services.receiver_for(key, fresh=fresh)
    if found is None:
        raise NotFound("No integration has this webhook URL.")
    if not found.enabled:
        raise _refuse(found, NotFound("This integration is disabled."), request.content_length)
    return found


def _read_body(receiver: services.Receiver) -> bytes:
    # Mail arrives whole (attachments and all): its own, larger limit.
    mail = receiver.kind in MAIL_KINDS
    limit = current_app.config["REBOUND_MAIL_MAX_BYTES" if mail else "REBOUND_WEBHOOK_MAX_BYTES"]
    if mail:  # a base64 form of a message runs a third larger than the message
        limit = limit * 4 // 3 + 64 * 1024
        request.max_content_length = limit
    try:
        return read_body(limit)
    except PayloadTooLarge as exc:
        raise _refuse(receiver, exc, exc.details.get("bytes")) from None


@bp.post("/<key>")
@bp.post("/<key>/mime")  # Mailgun sends the raw MIME form only to URLs ending in "mime"
def receive(key: str) -> Response | tuple[Response, int]:
    """Receive one helpdesk delivery; duplicates answer 200 and change nothing."""
    receiver = _receiver(key, fresh=False)
    body = _read_body(receiver)
    try:
        return _accept(receiver, body, fresh=False)
    except services.StaleReceiver:  # changed since it was cached: decide again on what is stored now
        services.forget_receiver(key)
        return _accept(_receiver(key, fresh=True), body, fresh=True)


def _accept(receiver: services.Receiver, body: bytes, fresh: bool) -> Response | tuple[Response, int]:
    now = utcnow()
    inbound = InboundRequest(method=request.method, path=request.path, body=body, received_at=now,
                             headers=request.headers)
    if receiver.kind in MAIL_KINDS:
        return _accept_mail(receiver, inbound, fresh)
    adapter = get_adapter(receiver.kind)
    try:
        adapter.verify(inbound, receiver.secrets, now)
    except SignatureError as exc:
        if not fresh:  # perhaps signed with a secret rotated in after the cache read it
            raise services.StaleReceiver(receiver.id) from None
        raise _refuse(receiver, Unauthorized(str(exc), code="invalid_signature"), len(body)) from None
    handshake = adapter.handshake(inbound, list(receiver.secrets))
    if handshake is not None:
        return Response(handshake.body, status=handshake.status, content_type=handshake.content_type)
    try:
        event = adapter.parse(inbound)
    except PayloadError as exc:
        details = {"field": exc.field} if exc.field else {}
        raise _refuse(receiver, BadRequest(str(exc), details, code="invalid_payload"), len(body)) from None

    event_id, created = services.record_event(receiver, adapter.delivery_key(inbound), event, body)
    return _after_commit(event_id, created)


def _accept_mail(receiver: services.Receiver, inbound: InboundRequest, fresh: bool) -> Response:
    """A mail provider's delivery: the inbox keeps the message as raw MIME (one parsing path later)."""
    adapter = get_mail_adapter(receiver.kind)
    try:
        adapter.verify(inbound, receiver.secrets, inbound.received_at or utcnow())
    except MailTooLargeError as exc:
        raise _refuse(receiver, PayloadTooLarge(str(exc)), len(inbound.body)) from None
    except SignatureError as exc:
        if not fresh:
            raise services.StaleReceiver(receiver.id) from None
        raise _refuse(receiver, Unauthorized(str(exc), code="invalid_signature"), len(inbound.body)) from None
    limit = current_app.config["REBOUND_MAIL_MAX_BYTES"]
    try:
        mail = adapter.parse_mail(inbound, MailLimits(max_body_bytes=len(inbound.body) + 1,
                                                      max_form_part_bytes=limit))
        raw = mail.to_mime()
    except MailTooLargeError as exc:
        raise _refuse(receiver, PayloadTooLarge(str(exc)), len(inbound.body)) from None
    except PayloadError as exc:
        details = {"field": exc.field} if exc.field else {}
        raise _refuse(receiver, BadRequest(str(exc), details, code="invalid_payload"), len(inbound.body)) from None
    if len(raw) > limit:
        raise _refuse(receiver, PayloadTooLarge(f"The mail is larger than {limit} bytes.", {"limit": limit}),
                      len(inbound.body))
    summary = TicketEvent(provider=receiver.kind, ticket_id="", event_type="message.created",
                          message_id=mail.message_id(), requester_email=mail.sender, subject=mail.subject)
    event_id, created = services.record_event(receiver, adapter.delivery_key(inbound), summary, raw)
    return _after_commit(event_id, created)


def _after_commit(event_id: int, created: bool) -> Response:
    if not created:
        return _answer("duplicate", event_id)
    if current_app.config["REBOUND_INBOUND_PROCESSING"] == "worker":
        return _answer("queued", event_id)
    try:
        status = services.process_event(event_id)
    except Exception:  # stored and committed: the worker will finish it
        log.exception("inline processing of inbound event %s failed; the worker will retry", event_id)
        status = "queued"
    return _answer(status, event_id)


def _answer(status: str, event_id: int) -> Response:
    """``200 {"status": …, "event_id": …}``, formatted directly: both values are ours (a status
    word and an integer), and this is every accepted delivery's answer."""
    return Response(f'{{"status": "{status}", "event_id": {int(event_id)}}}', status=200,
                    content_type="application/json")
