"""Canned-response, push-settings and reply endpoints: what goes out to the ticket, and in which words."""

from __future__ import annotations

from flask import Response, request

from app.api import bp
from app.api.auth import current_actor_id, current_tenant, require_token
from app.api.openapi import endpoint
from app.cases.queries import get_case
from app.cases.services import Actor
from app.errors import ValidationFailed
from app.outbound import canned, canned_store, pushes
from app.outbound.canned import FILTERS, LINE_FIELDS, LOCALES, TEMPLATE_KEYS, VARIABLES
from app.outbound.schemas import (
    CannedResponseList, CannedTemplateIn, CannedTemplateOut, PreviewIn, PushSettings, RenderedOut, ReplyIn, ReplyOut,
)
from app.validation import parse_json


@endpoint(bp, "/settings/pushes", "GET", summary="What each case action writes to its ticket (defaults filled in)",
          tag="canned-responses", response=PushSettings, auth=require_token)
def get_push_settings() -> PushSettings:
    return pushes.get_push_settings(current_tenant())


@endpoint(bp, "/settings/pushes", "PUT", summary="Replace the push settings; actions not listed keep the defaults",
          tag="canned-responses", body=PushSettings, response=PushSettings, auth=require_token)
def put_push_settings(body: PushSettings) -> PushSettings:
    return pushes.update_push_settings(current_tenant(), body)


@endpoint(bp, "/canned-responses", "GET", summary="Every canned response per locale, and the variables they can use",
          tag="canned-responses", response=CannedResponseList, auth=require_token)
def list_canned_responses() -> CannedResponseList:
    return CannedResponseList(
        items=canned_store.list_templates(current_tenant().id), keys=list(TEMPLATE_KEYS), locales=list(LOCALES),
        variables=dict(VARIABLES), line_fields=dict(LINE_FIELDS), filters=dict(FILTERS),
    )


@endpoint(bp, "/canned-responses/{key}/{locale}", "GET", summary="The source of one canned response in one locale",
          tag="canned-responses", response=CannedTemplateOut, auth=require_token)
def get_canned_response(key: str, locale: str) -> CannedTemplateOut:
    return canned_store.get_template(current_tenant().id, key, locale)


@endpoint(bp, "/canned-responses/{key}/{locale}", "PUT",
          summary="Save the tenant's version (checked in the sandbox first)", tag="canned-responses",
          body=CannedTemplateIn, response=CannedTemplateOut, auth=require_token)
def put_canned_response(key: str, locale: str, body: CannedTemplateIn) -> CannedTemplateOut:
    return canned_store.save_template(current_tenant(), key, locale, body)


@endpoint(bp, "/canned-responses/{key}/{locale}", "DELETE", summary="Go back to the shipped default",
          tag="canned-responses", status=204, auth=require_token)
def delete_canned_response(key: str, locale: str) -> Response:
    canned_store.delete_template(current_tenant(), key, locale)
    return Response(status=204)


@endpoint(bp, "/cases/{number}/canned-responses/{key}/preview", "POST",
          summary="Render a canned response with the case's real data (body optional: {\"locale\": …})",
          tag="canned-responses", response=RenderedOut, auth=require_token, errors=(400, 413, 422),
          document_paths=[("/cases/{number}/canned-responses/{key}/preview", {"body": PreviewIn})])
def preview_canned_response(number: str, key: str) -> RenderedOut:
    raw = request.get_data(cache=False)
    locale = parse_json(PreviewIn, raw).locale if raw.strip() else None
    tenant = current_tenant()
    case = get_case(tenant.id, number)
    if key not in TEMPLATE_KEYS:
        # The case exists; the key is a bad parameter of the request (not a missing case).
        raise ValidationFailed(f"There is no canned response named {key!r}.",
                               {"fields": {"key": [f"one of {', '.join(TEMPLATE_KEYS)}"]}})
    rendered: canned.Rendered = canned_store.render_for_case(case, tenant, key, locale=locale)
    return RenderedOut(**rendered.to_dict())


@endpoint(bp, "/cases/{number}/replies", "POST",
          summary="Queue a canned or free-text reply (or internal note) to the case's ticket",
          tag="canned-responses", body=ReplyIn, response=ReplyOut, status=202, auth=require_token)
def queue_reply(number: str, body: ReplyIn) -> ReplyOut:
    return pushes.queue_reply(current_tenant(), number, body, Actor(type="api", id=current_actor_id(), channel="api"))
