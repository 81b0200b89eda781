"""Property-based API tests: schemathesis generates requests from /api/v1/openapi.json."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance, response_schema_conformance, status_code_conformance,
)

import app.api  # noqa: F401  (registers the endpoints)
from app.api.openapi import registry
from tests.factories import case_payload, order_payload

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
OPERATIONS = sorted({(spec.method.upper(), spec.path) for spec in registry.specs})


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_generated_requests_get_no_5xx_and_documented_responses(app, api, method, path):
    """Generated valid and invalid requests never get a 5xx, and every response matches the document."""
    assert api.post("/orders", json=order_payload()).status_code == 200
    case_number = api.post("/cases", json=case_payload()).json["number"]
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operation = schema[path][method]
    strategies = [operation.as_strategy(generation_mode=mode) for mode in GenerationMode]
    if "{number}" in path:
        known = "1001" if path.startswith("/orders") else case_number
        strategies += [operation.as_strategy(generation_mode=mode, path_parameters={"number": known})
                       for mode in GenerationMode]

    @given(case=st.one_of(strategies))
    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(case):
        response = case.call(headers={"Authorization": f"Bearer {api.token}"})
        case.validate_response(response, checks=CHECKS)

    run()
