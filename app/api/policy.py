"""Policy and reason-code endpoints: read and replace the versioned policy, dry-run a request."""

from __future__ import annotations

from app.api import bp
from app.api.auth import current_actor_id, current_tenant, require_token
from app.api.openapi import endpoint
from app.api.schemas import DecisionOut, PolicyOut, ReasonCodeList, ReasonCodeOut
from app.cases import queries, services
from app.cases.policy import PolicyRules
from app.cases.schemas import DryRunRequest, ReasonCodeIn


@endpoint(bp, "/policy", "GET", summary="The policy in force", tag="policy", response=PolicyOut, auth=require_token)
def get_policy() -> PolicyOut:
    return PolicyOut.from_model(queries.current_policy(current_tenant().id))


@endpoint(bp, "/policy", "PUT", summary="Replace the policy (stored as a new version)", tag="policy",
          body=PolicyRules, response=PolicyOut, auth=require_token, errors=(409,))
def put_policy(body: PolicyRules) -> PolicyOut:
    return PolicyOut.from_model(services.replace_policy(current_tenant(), body, current_actor_id()))


@endpoint(bp, "/policy/dry-run", "POST", summary="Evaluate a hypothetical request; nothing is stored",
          tag="policy", body=DryRunRequest, response=DecisionOut, auth=require_token)
def policy_dry_run(body: DryRunRequest) -> DecisionOut:
    decision, version = services.dry_run(current_tenant(), body)
    return DecisionOut(policy_version=version, decision=decision.to_dict())


@endpoint(bp, "/reason-codes", "GET", summary="The tenant's reason codes (two levels)", tag="policy",
          response=ReasonCodeList, auth=require_token)
def list_reason_codes() -> ReasonCodeList:
    return ReasonCodeList(items=[ReasonCodeOut.from_model(r) for r in queries.reason_codes(current_tenant().id)])


@endpoint(bp, "/reason-codes", "POST", summary="Create or update a reason code", tag="policy",
          body=ReasonCodeIn, response=ReasonCodeOut, auth=require_token)
def put_reason_code(body: ReasonCodeIn) -> ReasonCodeOut:
    return ReasonCodeOut.from_model(services.upsert_reason_code(current_tenant(), body))
