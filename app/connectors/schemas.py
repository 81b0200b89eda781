"""Input schemas for integrations: create, settings, secret rotation."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator

from app.validation import Schema

HelpdeskKind = Literal["zendesk", "gorgias", "freshdesk", "helpscout", "front", "intercom", "zammad", "chatwoot", "generic"]
Confidence = Annotated[float, Field(ge=0, le=1)]
Pattern = Annotated[str, Field(min_length=3, max_length=300)]


def _check_patterns(patterns: list[str]) -> list[str]:
    for pattern in patterns:
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
        if compiled.groups != 1:
            raise ValueError(f"pattern {pattern!r} needs exactly one capture group (the order number)")
    return patterns


class IntakeSettings(Schema):
    """How intake turns a ticket into a case: above ``auto_create_min_confidence`` it opens
    one; between the two thresholds it stores a suggestion for the agent; below, it ignores."""

    auto_create_min_confidence: Confidence = 0.85
    suggest_min_confidence: Confidence = 0.5
    order_number_patterns: list[Pattern] = Field(default_factory=list, max_length=20,
                                                 description="Extra regexes, one capture group each.")

    _patterns = field_validator("order_number_patterns")(_check_patterns)


class RateLimitSetting(Schema):
    """A request budget for write-back: at most ``requests`` per fixed window of ``per_seconds``."""

    requests: int = Field(ge=1, le=1_000_000)
    per_seconds: float = Field(ge=1, le=86_400)


class IntegrationSettings(Schema):
    """Per-integration settings; all optional."""

    base_url: str | None = Field(default=None, max_length=300, pattern=r"^https?://",
                                 description="The helpdesk's API base, e.g. https://acme.zendesk.com")
    order_number_field: str | None = Field(default=None, max_length=100,
                                           description="Custom field (id or name) holding the order number.")
    order_number_patterns: list[Pattern] = Field(default_factory=list, max_length=20)
    tag_map: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=100)]] = Field(
        default_factory=dict, description="Case status → tag to set on the ticket.")
    status_map: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=100)]] = Field(
        default_factory=dict, description="Case status → ticket status.")
    custom_field_ids: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=100)]] = Field(
        default_factory=dict, description="Rebound field (rma_number, rma_status) → helpdesk custom field id.")
    auto_create_min_confidence: Confidence | None = None
    suggest_min_confidence: Confidence | None = None
    rate_limit: RateLimitSetting | None = Field(
        default=None, description="Overrides the helpdesk's documented default (e.g. a bigger plan's limit).")

    _patterns = field_validator("order_number_patterns")(_check_patterns)


Secret = Annotated[str, Field(min_length=8, max_length=500)]


class IntegrationCreate(Schema):
    kind: HelpdeskKind
    name: str = Field(min_length=1, max_length=200)
    signing_secret: Secret | None = Field(
        default=None, description="The secret the helpdesk signs with; omit to have Rebound generate one.")
    credentials: dict[Annotated[str, Field(pattern=r"^[a-z_]{2,40}$")], Secret] = Field(
        default_factory=dict, max_length=10, description="API credentials for write-back, e.g. api_token.")
    settings: IntegrationSettings = Field(default_factory=IntegrationSettings)


class SecretRotation(Schema):
    signing_secret: Secret | None = Field(default=None, description="The new secret; omit to generate one.")
    grace_seconds: int = Field(default=86400, ge=0, le=30 * 86400,
                               description="How long the old secret is still accepted.")
