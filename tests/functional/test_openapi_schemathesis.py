"""The OpenAPI document, and property-based tests that schemathesis generates from it.

For every documented operation, schemathesis generates valid and invalid requests (with a real
tenant token, and for {number} paths also aimed at a seeded order and case) and the app, called in-process over
WSGI, must never answer 5xx and must answer only documented status codes, content types and bodies.
"""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance, response_schema_conformance, status_code_conformance,
)

import app.api  # noqa: F401  (registers every endpoint, so the registry below is complete)
from app.api.openapi import registry
from app.cases import states
from tests.factories import case_payload, order_payload

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
OPERATIONS = sorted({(spec.method.upper(), spec.path) for spec in registry.specs})
MAX_EXAMPLES = 25


def _load(app) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


@pytest.fixture()
def seeded(api) -> dict[str, str]:
    """Order 1001 and one authorized case on it, so {number} can name real objects."""
    assert api.post("/orders", json=order_payload()).status_code == 200
    case = api.post("/cases", json=case_payload())
    assert case.status_code == 201, case.json
    return {"order": "1001", "case": case.json["number"]}


def test_openapi_document_is_3_1_and_needs_no_token(client):
    """/api/v1/openapi.json is an OpenAPI 3.1.0 document served without a token."""
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    document = response.json
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": "/api/v1"}]
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_openapi_documents_one_path_per_non_system_action(client):
    """Each action an API client may run has its own documented path with its own body; system actions have none."""
    paths = client.get("/api/v1/openapi.json").json["paths"]
    documented = {p.rsplit("/", 1)[1] for p in paths if p.startswith("/cases/{number}/actions/")}
    allowed = {action.value for action, t in states.TRANSITIONS.items() if not t.system_only}
    system = {action.value for action, t in states.TRANSITIONS.items() if t.system_only}
    assert documented == allowed
    assert system and not documented & system
    assert "/cases/{number}/actions/{action}" not in paths
    approve = paths["/cases/{number}/actions/approve"]["post"]
    assert approve["operationId"] == "case_action_approve"
    assert approve["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ApproveIn"}
    assert {"200", "401", "404", "409", "422"} <= set(approve["responses"])
    assert [p["name"] for p in approve["parameters"]] == ["number"]


def test_every_documented_operation_is_fuzzed(app, client):
    """The operations fuzzed below are exactly the documented ones (nothing escapes the fuzzing)."""
    documented = sorted((op.method.upper(), op.path) for op in (r.ok() for r in _load(app).get_all_operations()))
    assert documented == OPERATIONS
    assert len(OPERATIONS) >= 25


def test_real_numbers_get_documented_200s(app, api, seeded):
    """Every GET with {number} answers a seeded order or case with a 200 that matches the document."""
    schema = _load(app)
    for method, path in OPERATIONS:
        if method != "GET" or "{number}" not in path:
            continue
        operation = schema[path][method]
        number = seeded["order"] if path.startswith("/orders") else seeded["case"]
        query = {"kind": "refund"} if path.endswith("settlement-preview") else None
        case = operation.Case(path_parameters={"number": number}, query=query)
        response = case.call(headers={"Authorization": f"Bearer {api.token}"})
        assert response.status_code == 200, (path, response.text[:300])
        case.validate_response(response, checks=CHECKS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_generated_requests_get_no_5xx_and_only_documented_responses(app, api, seeded, method, path):
    """Generated valid and invalid requests never get a 5xx, and every response matches the document."""
    operation = _load(app)[path][method]
    # Paths with {number} are fuzzed both with generated numbers (404s) and with the seeded object's.
    targets: list[dict[str, str] | None] = [None]
    if "{number}" in path:
        targets.append({"number": seeded["order"] if path.startswith("/orders") else seeded["case"]})
    runs = [(mode, target) for mode in GenerationMode for target in targets]
    for mode, target in runs:
        strategy = operation.as_strategy(generation_mode=mode, **({"path_parameters": target} if target else {}))
        statuses = _fuzz(strategy, api.token, max(MAX_EXAMPLES // len(runs), 5))
        assert statuses, f"no {mode.value} request was generated"
        if mode == GenerationMode.POSITIVE:
            assert 401 not in statuses, "valid requests must authenticate with the tenant token"
            if target:
                assert 404 not in statuses, f"valid requests for {target} must find it: {dict(statuses)}"
        # (Negative requests may replace the Authorization header with a broken one; 401 is right for those.)


def _fuzz(strategy, token: str, examples: int) -> Counter[int]:
    """Send ``examples`` generated requests, checking each response; returns the status codes seen."""
    statuses: Counter[int] = Counter()

    @given(case=strategy)
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(case) -> None:
        response = case.call(headers={"Authorization": f"Bearer {token}"})
        statuses[response.status_code] += 1
        case.validate_response(response, checks=CHECKS)

    run()
    return statuses
