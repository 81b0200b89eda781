"""Case endpoints: create, read, list and search, actions, lines, timeline, settlements."""

from __future__ import annotations

import dataclasses

from flask import Response, request

from app.api import bp
from app.api.auth import current_actor_id, current_tenant, require_token
from app.api.openapi import endpoint
from app.api.schemas import (
    CaseListQuery, CaseOut, CasePage, CaseSummary, CaseLineOut, EventOut, LinesOut, SettlementOut,
    SettlementPreviewOut, SettlementPreviewQuery, SettlementsOut, TimelineOut,
)
from app.cases import queries, services, states
from app.cases.schemas import CaseCreate
from app.errors import NotFound, ValidationFailed
from app.validation import parse_json


def _actor() -> services.Actor:
    return services.Actor(type="api", id=current_actor_id(), channel="api")


@endpoint(bp, "/cases", "POST", summary="Open a return case; the policy is evaluated and stored",
          tag="cases", body=CaseCreate, response=CaseOut, status=201, auth=require_token)
def create_case(body: CaseCreate) -> Response:
    case = services.create_case(current_tenant(), body, _actor())
    response = Response(CaseOut.from_model(case).model_dump_json(), status=201, mimetype="application/json")
    response.headers["Location"] = f"/api/v1/cases/{case.number}"
    return response


@endpoint(bp, "/cases", "GET", summary="List and search cases, newest first (keyset pagination)", tag="cases",
          query=CaseListQuery, response=CasePage, auth=require_token)
def list_cases(query: CaseListQuery) -> CasePage:
    statuses = tuple(query.status.split(",")) if query.status else ()
    unknown = [s for s in statuses if s not in states.CaseStatus.__members__.values()]
    if unknown:
        raise ValidationFailed("Unknown status.", {"fields": {"status": [f"unknown status {s!r}" for s in unknown]}})
    items, cursor = queries.list_cases(
        current_tenant().id,
        queries.CaseFilter(
            statuses=statuses, customer_email=query.customer_email, order_number=query.order_number,
            ticket_id=query.ticket_id, updated_since=query.updated_since, q=query.q, limit=query.limit,
            cursor=query.cursor,
        ),
    )
    return CasePage(items=[CaseSummary.from_model(case) for case in items], next_cursor=cursor)


@endpoint(bp, "/cases/{number}", "GET", summary="Get a case with its lines, decision and settlements",
          tag="cases", response=CaseOut, auth=require_token)
def get_case(number: str) -> CaseOut:
    return CaseOut.from_model(queries.get_case(current_tenant().id, number))


_ACTION_DOCS = [
    (
        f"/cases/{{number}}/actions/{action.value}",
        {
            "operation_id": f"case_action_{action.value}",
            "summary": f"Action {action.value}: {transition.description}",
            "body": services.ACTIONS[action][0],
            "description": "Allowed from: " + ", ".join(sorted(s.value for s in transition.sources)) + ".",
        },
    )
    for action, transition in states.TRANSITIONS.items()
    if not transition.system_only
]


@endpoint(bp, "/cases/{number}/actions/{action}", "POST", summary="Run an action", tag="actions",
          response=CaseOut, auth=require_token, document_paths=_ACTION_DOCS, errors=(400, 409, 413, 422))
def case_action(number: str, action: str) -> CaseOut:
    try:
        chosen = states.Action(action)
    except ValueError:
        raise NotFound(f"No action {action!r}.", {"actions": [a.value for a in states.Action]}) from None
    if states.TRANSITIONS[chosen].system_only:
        raise NotFound(f"Action {action!r} is performed by Rebound itself.")
    schema, _ = services.ACTIONS[chosen]
    payload = parse_json(schema, request.get_data(cache=False))
    case = services.perform_action(current_tenant(), number, chosen, payload, _actor())
    return CaseOut.from_model(case)


@endpoint(bp, "/cases/{number}/lines", "GET", summary="The case's lines", tag="cases", response=LinesOut,
          auth=require_token)
def case_lines(number: str) -> LinesOut:
    case = queries.get_case(current_tenant().id, number)
    return LinesOut(number=case.number, lines=[CaseLineOut.from_model(line) for line in case.lines])


@endpoint(bp, "/cases/{number}/timeline", "GET", summary="The case's append-only event timeline",
          tag="cases", response=TimelineOut, auth=require_token)
def case_timeline(number: str) -> TimelineOut:
    case = queries.get_case(current_tenant().id, number)
    return TimelineOut(number=case.number, events=[EventOut.from_model(e) for e in queries.timeline(case)])


@endpoint(bp, "/cases/{number}/settlements", "GET", summary="The case's settlements", tag="cases",
          response=SettlementsOut, auth=require_token)
def case_settlements(number: str) -> SettlementsOut:
    case = queries.get_case(current_tenant().id, number)
    return SettlementsOut(number=case.number, settlements=[SettlementOut.from_model(s) for s in case.settlements])


@endpoint(bp, "/cases/{number}/settlement-preview", "GET", summary="What a resolution would pay, before confirming",
          tag="cases", query=SettlementPreviewQuery, response=SettlementPreviewOut, auth=require_token)
def settlement_preview(number: str, query: SettlementPreviewQuery) -> SettlementPreviewOut:
    case = queries.get_case(current_tenant().id, number)
    amounts = services.settlement_preview(case, query.kind, query.exchange_value)
    options, _ = services.policy_options(case)
    return SettlementPreviewOut(number=case.number, kind=query.kind, currency=case.currency,
                                offered=query.kind in options, **dataclasses.asdict(amounts))
