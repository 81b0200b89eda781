"""Validation at the edge: raw bytes or query strings → typed pydantic objects, or a clear 4xx.

``Schema`` is the base of every request and response schema. It forbids unknown fields and
refuses NUL characters, which no database column can store.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge

from app.errors import MalformedJSON, PayloadTooLarge, ValidationFailed

SchemaT = TypeVar("SchemaT", bound=BaseModel)


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, (list, tuple)):
        return any(_contains_nul(item) for item in value)
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    return False


class Schema(BaseModel):
    """Base schema: unknown fields are errors, strings are stripped and NUL-free."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_characters(cls, value: Any) -> Any:
        if _contains_nul(value):
            raise ValueError("must not contain NUL characters")
        return value


def field_errors(exc: ValidationError) -> dict[str, list[str]]:
    """Map pydantic errors to ``{"lines.0.quantity": ["Input should be greater than 0"]}``."""
    fields: dict[str, list[str]] = {}
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in error["loc"]) or "body"
        fields.setdefault(location, []).append(error["msg"])
    return fields


def parse_json(schema: type[SchemaT], raw: bytes) -> SchemaT:
    """Parse a JSON request body into ``schema``.

    :raise MalformedJSON: (400) the body is empty or not JSON.
    :raise ValidationFailed: (422) the JSON does not fit the schema; ``details.fields`` says where.
    """
    if not raw.strip():
        raise MalformedJSON("The request body is empty; send a JSON object.")
    try:
        parsed = schema.model_validate_json(raw)
    except ValidationError as exc:
        json_errors = [e for e in exc.errors(include_url=False) if e["type"] == "json_invalid"]
        if json_errors:
            raise MalformedJSON(
                "The request body is not valid JSON.", {"error": json_errors[0]["msg"]}
            ) from None
        raise ValidationFailed(
            "The request does not match the expected schema.", {"fields": field_errors(exc)}
        ) from None
    # Schemas not derived from Schema (e.g. the policy document) get the same NUL check here.
    if not isinstance(parsed, Schema) and _contains_nul(parsed.model_dump()):
        raise ValidationFailed("Text must not contain NUL characters.", {"fields": {"body": ["contains NUL"]}})
    return parsed


def parse_mapping(schema: type[SchemaT], data: dict[str, Any], what: str = "query") -> SchemaT:
    """Validate already-decoded data (query string, form, CLI input) into ``schema``.

    :raise ValidationFailed: (422) with ``details.fields``.
    """
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(f"Invalid {what} parameters.", {"fields": field_errors(exc)}) from None


def read_body(limit: int, *, cache: bool = False) -> bytes:
    """This request's raw body, at most ``limit`` bytes (checked before and while reading);
    ``cache`` keeps it for later reads (``request.form`` and the like).

    :raise PayloadTooLarge: (413) over the limit; ``details["bytes"]`` is the size seen.
    """
    def too_large(size: int | None) -> PayloadTooLarge:
        return PayloadTooLarge(f"The body is larger than {limit} bytes.", {"limit": limit, "bytes": size})

    if request.content_length is not None and request.content_length > limit:
        raise too_large(request.content_length)
    try:
        body = request.get_data(cache=cache)
    except RequestEntityTooLarge:
        raise too_large(request.content_length) from None
    if len(body) > limit:
        raise too_large(len(body))
    return body
