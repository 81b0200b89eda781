"""Integration, inbox, suggestion and intake-settings endpoints."""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app

from app.api import bp
from app.api.auth import current_tenant, require_token
from app.api.openapi import endpoint
from app.api.schemas import (
    CredentialNames, DeliveryAttemptOut, InboundEventOut, MailboxStatusOut, OutboxMessageDetail, InboundEventPage, InboundEventQuery, IntegrationList, IntegrationOut,
    IntegrationWithSecret,
    OutboxList, OutboxMessageOut, OutboxQuery, RejectedRequestList, RejectedRequestOut, SuggestionList, SuggestionOut, SuggestionQuery,
)
from app.cases.queries import decode_cursor, encode_cursor
from app.connectors import services
from app.connectors.models import Integration
from app.connectors.schemas import (
    MAIL_KINDS, CredentialsUpdate, IntakeSettings, IntegrationCreate, IntegrationSettings, SecretRotation,
)
from app.email.mailbox import mailbox_status
from app.errors import NotFound, ValidationFailed
from app.extensions import db
from app.inbound.models import InboundEvent, RejectedRequest
from app.intake.models import Suggestion
from app.outbound import outbox
from app.sidebar import links
from app.tenants.services import update_intake_settings


def _out(integration: Integration) -> IntegrationOut:
    base = current_app.config["REBOUND_PUBLIC_URL"].rstrip("/")
    return IntegrationOut.from_model(integration, f"{base}/webhooks/{integration.public_key}")


def _with_secret(connected: services.Connected) -> IntegrationWithSecret:
    return IntegrationWithSecret(**_out(connected.integration).model_dump(), signing_secret=connected.signing_secret)


@endpoint(bp, "/integrations", "POST", summary="Connect a helpdesk; returns its webhook URL and secret (once)",
          tag="integrations", body=IntegrationCreate, response=IntegrationWithSecret, status=201, auth=require_token)
def create_integration(body: IntegrationCreate) -> IntegrationWithSecret:
    return _with_secret(services.connect(current_tenant(), body))


@endpoint(bp, "/integrations", "GET", summary="The tenant's integrations", tag="integrations",
          response=IntegrationList, auth=require_token)
def list_integrations() -> IntegrationList:
    return IntegrationList(items=[_out(i) for i in services.list_integrations(current_tenant().id)])


@endpoint(bp, "/integrations/{integration_id}", "GET", summary="One integration", tag="integrations",
          response=IntegrationOut, auth=require_token)
def get_integration(integration_id: str) -> IntegrationOut:
    return _out(services.get_integration(current_tenant().id, _int_id(integration_id)))


@endpoint(bp, "/integrations/{integration_id}/settings", "PUT", summary="Replace an integration's settings",
          tag="integrations", body=IntegrationSettings, response=IntegrationOut, auth=require_token)
def put_integration_settings(integration_id: str, body: IntegrationSettings) -> IntegrationOut:
    return _out(services.update_settings(current_tenant(), _int_id(integration_id), body))


@endpoint(bp, "/integrations/{integration_id}/disable", "POST", summary="Disable: its webhook URL answers 404",
          tag="integrations", response=IntegrationOut, auth=require_token)
def disable_integration(integration_id: str) -> IntegrationOut:
    return _out(services.set_enabled(current_tenant(), _int_id(integration_id), False))


@endpoint(bp, "/integrations/{integration_id}/enable", "POST", summary="Enable again", tag="integrations",
          response=IntegrationOut, auth=require_token)
def enable_integration(integration_id: str) -> IntegrationOut:
    return _out(services.set_enabled(current_tenant(), _int_id(integration_id), True))


@endpoint(bp, "/integrations/{integration_id}/rotate-secret", "POST",
          summary="New signing secret; the old one is accepted during the grace period", tag="integrations",
          body=SecretRotation, response=IntegrationWithSecret, auth=require_token)
def rotate_secret(integration_id: str, body: SecretRotation) -> IntegrationWithSecret:
    return _with_secret(services.rotate_secret(current_tenant(), _int_id(integration_id), body))


@endpoint(bp, "/integrations/{integration_id}/credentials", "PATCH",
          summary="Add, replace or remove credentials (values are never shown)", tag="integrations",
          body=CredentialsUpdate, response=CredentialNames, auth=require_token)
def patch_credentials(integration_id: str, body: CredentialsUpdate) -> CredentialNames:
    return CredentialNames(credential_names=services.update_credentials(current_tenant(), _int_id(integration_id), body))


@endpoint(bp, "/integrations/{integration_id}/mailbox", "GET",
          summary="An IMAP mailbox's polling state: how far it was read, and the last poll's error",
          tag="integrations", response=MailboxStatusOut, auth=require_token)
def mailbox(integration_id: str) -> MailboxStatusOut:
    cursor = mailbox_status(services.get_integration(current_tenant().id, _int_id(integration_id)))
    if cursor is None:
        return MailboxStatusOut(polled=False)
    return MailboxStatusOut(polled=True, uidvalidity=cursor.uidvalidity, last_uid=cursor.last_uid,
                            last_polled_at=cursor.last_polled_at, last_error=cursor.last_error)


@endpoint(bp, "/integrations/{integration_id}/sidebar-link", "GET",
          summary="A signed, single-use link that opens the agent's panel for a ticket (for testing, notes)",
          tag="integrations", query=links.SidebarLinkQuery, response=links.SidebarLinkOut, auth=require_token)
def sidebar_link(integration_id: str, query: links.SidebarLinkQuery) -> links.SidebarLinkOut:
    integration = services.get_integration(current_tenant().id, _int_id(integration_id))
    if integration.kind in MAIL_KINDS:
        raise ValidationFailed("A mailbox integration has no sidebar.", code="no_sidebar")
    link = links.make_context_link(integration, query.ticket, query.email, query.agent, query.ttl)
    return links.SidebarLinkOut(url=link.url, expires_at=link.expires_at)


@endpoint(bp, "/integrations/{integration_id}/rejected", "GET", summary="Recently refused webhook calls",
          tag="integrations", response=RejectedRequestList, auth=require_token)
def rejected_requests(integration_id: str) -> RejectedRequestList:
    integration = services.get_integration(current_tenant().id, _int_id(integration_id))
    rows = db.session.scalars(sa.select(RejectedRequest).where(RejectedRequest.integration_id == integration.id)
                              .order_by(RejectedRequest.id.desc()).limit(200))
    return RejectedRequestList(
        integration_id=integration.id, rejected_count=integration.rejected_count,
        items=[RejectedRequestOut(id=r.id, status_code=r.status_code, code=r.code, message=r.message,
                                  remote_addr=r.remote_addr, body_bytes=r.body_bytes, received_at=r.received_at)
               for r in rows])


@endpoint(bp, "/inbound-events", "GET", summary="The inbox: received webhook events and their processing state",
          tag="integrations", query=InboundEventQuery, response=InboundEventPage, auth=require_token)
def list_inbound_events(query: InboundEventQuery) -> InboundEventPage:
    statement = sa.select(InboundEvent).where(InboundEvent.tenant_id == current_tenant().id)
    if query.status:
        statement = statement.where(InboundEvent.status == query.status)
    if query.integration_id:
        statement = statement.where(InboundEvent.integration_id == query.integration_id)
    if query.ticket_id:
        statement = statement.where(InboundEvent.ticket_id == query.ticket_id)
    if query.cursor:
        statement = statement.where(InboundEvent.id < decode_cursor(query.cursor))
    rows = list(db.session.scalars(statement.order_by(InboundEvent.id.desc()).limit(query.limit + 1)))
    cursor = encode_cursor(rows[query.limit - 1].id) if len(rows) > query.limit else None
    return InboundEventPage(items=[InboundEventOut.from_model(e) for e in rows[: query.limit]], next_cursor=cursor)


@endpoint(bp, "/suggestions", "GET", summary="Probable returns intake was not sure enough to open",
          tag="integrations", query=SuggestionQuery, response=SuggestionList, auth=require_token)
def list_suggestions(query: SuggestionQuery) -> SuggestionList:
    statement = sa.select(Suggestion).where(Suggestion.tenant_id == current_tenant().id)
    if query.ticket_id:
        statement = statement.where(Suggestion.ticket_id == query.ticket_id)
    if query.status:
        statement = statement.where(Suggestion.status == query.status)
    rows = db.session.scalars(statement.order_by(Suggestion.id.desc()).limit(query.limit))
    return SuggestionList(items=[SuggestionOut.from_model(s) for s in rows])


@endpoint(bp, "/settings/intake", "GET", summary="When intake opens a case and when it only suggests one",
          tag="integrations", response=IntakeSettings, auth=require_token)
def get_intake_settings() -> IntakeSettings:
    return IntakeSettings.model_validate(current_tenant().settings.get("intake", {}))


@endpoint(bp, "/settings/intake", "PUT", summary="Replace the intake settings", tag="integrations",
          body=IntakeSettings, response=IntakeSettings, auth=require_token)
def put_intake_settings(body: IntakeSettings) -> IntakeSettings:
    return update_intake_settings(current_tenant(), body)


@endpoint(bp, "/outbox", "GET", summary="Updates queued for the helpdesks (e.g. ?status=dead for dead letters)",
          tag="integrations", query=OutboxQuery, response=OutboxList, auth=require_token)
def list_outbox(query: OutboxQuery) -> OutboxList:
    rows = outbox.list_messages(current_tenant().id, query.status, query.limit)
    return OutboxList(items=[OutboxMessageOut.from_model(m) for m in rows])


@endpoint(bp, "/outbox/{message_id}", "GET", summary="One message with every delivery attempt (inspect a dead letter)",
          tag="integrations", response=OutboxMessageDetail, auth=require_token)
def get_outbox_message(message_id: str) -> OutboxMessageDetail:
    message, attempts = outbox.get_message(current_tenant().id, _int_id(message_id, "outbox message"))
    return OutboxMessageDetail(
        **OutboxMessageOut.from_model(message).model_dump(), action=message.action,
        delivery_attempts=[DeliveryAttemptOut(attempted_at=a.attempted_at, outcome=a.outcome, status_code=a.status_code,
                                              latency_ms=a.latency_ms, error=a.error) for a in attempts])


@endpoint(bp, "/outbox/{message_id}/replay", "POST", summary="Queue a dead message again, due now",
          tag="integrations", response=OutboxMessageOut, auth=require_token)
def replay_outbox_message(message_id: str) -> OutboxMessageOut:
    return OutboxMessageOut.from_model(outbox.replay(current_tenant().id, _int_id(message_id, "outbox message")))


@endpoint(bp, "/outbox/{message_id}/discard", "POST", summary="Give up on a dead message",
          tag="integrations", response=OutboxMessageOut, auth=require_token)
def discard_outbox_message(message_id: str) -> OutboxMessageOut:
    return OutboxMessageOut.from_model(outbox.discard(current_tenant().id, _int_id(message_id, "outbox message")))


def _int_id(value: str, what: str = "integration") -> int:
    """Path ids are digits; anything else cannot name an integration (404, not 500)."""
    if not (value.isascii() and value.isdigit()) or len(value) > 9:  # "²".isdigit(), but int("²") fails
        raise NotFound(f"No {what} {value!r}.")
    return int(value)
