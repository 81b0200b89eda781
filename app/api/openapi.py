"""Endpoint declarations that validate requests and produce the OpenAPI 3.1 document.

``endpoint(...)`` wraps a view: it authenticates, parses the body and query string into the
declared pydantic schemas (or answers 4xx), serialises the returned schema, and records the
same schemas for ``/api/v1/openapi.json``. One declaration, so the document cannot drift from
what the code accepts.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, request
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from app.errors import NotFound
from app.validation import parse_json, parse_mapping

REF_TEMPLATE = "#/components/schemas/{model}"


@dataclass
class EndpointSpec:
    path: str  # OpenAPI form: /cases/{number}
    method: str
    operation_id: str
    summary: str
    tag: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    path_params: tuple[str, ...]
    errors: tuple[int, ...]
    description: str = ""


@dataclass
class Registry:
    specs: list[EndpointSpec] = field(default_factory=list)

    def add(self, spec: EndpointSpec) -> None:
        self.specs.append(spec)


registry = Registry()

ERROR_DESCRIPTIONS = {
    400: "Malformed JSON or an empty body.",
    401: "Missing, unknown or revoked API token.",
    404: "Not found for this tenant.",
    409: "The action is not allowed now (details.reasons), or the version is stale (details.current_version).",
    413: "The request body is larger than the configured limit.",
    422: "The request does not match the schema; details.fields names each field.",
}


def _flask_rule(path: str) -> str:
    return path.replace("{", "<").replace("}", ">")


def endpoint(
    bp: Blueprint,
    path: str,
    method: str,
    *,
    summary: str,
    tag: str,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    auth: Callable[[], None] | None = None,
    document_paths: list[tuple[str, dict[str, Any]]] | None = None,
    errors: tuple[int, ...] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Response]]:
    """Register a JSON endpoint on ``bp`` and in the OpenAPI registry.

    The view receives path parameters, plus ``body`` and/or ``query`` as validated schema
    instances, and returns a schema instance (serialised with ``status``) or a Response.
    ``document_paths`` lets one Flask rule appear as several documented paths (one per action).
    """

    def decorator(view: Callable[..., Any]) -> Callable[..., Response]:
        @functools.wraps(view)
        def wrapper(**path_args: Any) -> Response:
            if auth is not None:
                auth()
            if any("\x00" in str(value) for value in path_args.values()):
                # Nothing stored contains NUL, and PostgreSQL refuses to even compare with it.
                raise NotFound("Nothing is stored under a name with NUL characters.")
            kwargs = dict(path_args)
            if query is not None:
                kwargs["query"] = parse_mapping(query, request.args.to_dict(flat=True))
            if body is not None:
                kwargs["body"] = parse_json(body, request.get_data(cache=False))
            result = view(**kwargs)
            if isinstance(result, Response):
                return result
            return Response(result.model_dump_json(), status=status, mimetype="application/json")

        bp.add_url_rule(_flask_rule(path), view.__name__, wrapper, methods=[method])
        path_params = tuple(part[1:-1] for part in path.split("/") if part.startswith("{"))
        expected = set(errors)
        if auth is not None:
            expected.add(401)
        if body is not None:
            expected.update({400, 413, 422})
        if query is not None:
            expected.add(422)
        if path_params:
            expected.add(404)
        for doc_path, overrides in document_paths or [(path, {})]:
            registry.add(
                EndpointSpec(
                    path=doc_path, method=method.lower(), operation_id=overrides.get("operation_id", view.__name__),
                    summary=overrides.get("summary", summary), tag=tag, body=overrides.get("body", body),
                    query=query, response=overrides.get("response", response), status=status,
                    path_params=tuple(p for p in path_params if "{" + p + "}" in doc_path),
                    errors=tuple(sorted(expected)), description=overrides.get("description", ""),
                )
            )
        return wrapper

    return decorator


def build_document(error_model: type[BaseModel], title: str, version: str, server_url: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document for every registered endpoint."""
    models: list[tuple[type[BaseModel], str]] = [(error_model, "serialization")]
    for spec in registry.specs:
        if spec.body is not None:
            models.append((spec.body, "validation"))
        if spec.response is not None:
            models.append((spec.response, "serialization"))
    unique = list(dict.fromkeys(models))
    keys, schema = models_json_schema(unique, ref_template=REF_TEMPLATE)
    components = schema.get("$defs", {})

    def ref(model: type[BaseModel], mode: str) -> dict[str, Any]:
        return keys[(model, mode)]  # type: ignore[index]

    paths: dict[str, dict[str, Any]] = {}
    for spec in registry.specs:
        operation: dict[str, Any] = {
            "operationId": spec.operation_id,
            "summary": spec.summary,
            "tags": [spec.tag],
            "security": [{"bearerAuth": []}] if 401 in spec.errors else [],
            "parameters": [
                {"name": name, "in": "path", "required": True,
                 "schema": {"type": "string", "minLength": 1, "maxLength": 64}}
                for name in spec.path_params
            ],
        }
        if spec.description:
            operation["description"] = spec.description
        if spec.query is not None:
            query_schema = spec.query.model_json_schema(ref_template=REF_TEMPLATE)
            required = set(query_schema.get("required", []))
            for name, prop in query_schema.get("properties", {}).items():
                prop = {k: v for k, v in prop.items() if k != "title"}
                operation["parameters"].append(
                    {"name": name, "in": "query", "required": name in required, "schema": prop,
                     **({"description": prop["description"]} if "description" in prop else {})}
                )
        if spec.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(spec.body, "validation")}},
            }
        responses: dict[str, Any] = {}
        if spec.response is not None:
            responses[str(spec.status)] = {
                "description": "OK",
                "content": {"application/json": {"schema": ref(spec.response, "serialization")}},
            }
        else:
            responses[str(spec.status)] = {"description": "OK"}
        for code in spec.errors:
            responses[str(code)] = {
                "description": ERROR_DESCRIPTIONS.get(code, "Error"),
                "content": {"application/json": {"schema": ref(error_model, "serialization")}},
            }
        operation["responses"] = responses
        paths.setdefault(spec.path, {})[spec.method] = operation

    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version,
                 "description": "Return cases (RMAs) through the whole reverse flow. Every error has the shape "
                                "{\"error\": {\"code\", \"message\", \"details\"}}."},
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "description": "An API token from `flask tenants create`."}},
        },
    }
