"""Input schemas for integrations: create, settings, secret rotation."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import EmailStr, Field, field_validator

from app.validation import Schema

HelpdeskKind = Literal["zendesk", "gorgias", "freshdesk", "helpscout", "front", "intercom", "zammad", "chatwoot", "generic"]
MailKind = Literal["mailgun", "sendgrid", "postmark", "rawmime", "imap"]
MAIL_KINDS: frozenset[str] = frozenset(MailKind.__args__)  # type: ignore[attr-defined]
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


Host = Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.\-\[\]:]+$")]
Port = Annotated[int, Field(ge=1, le=65535)]


class SmtpServerSettings(Schema):
    """Where a mailbox integration sends mail (the password is the credential ``smtp_password``)."""

    host: Host
    port: Port | None = Field(default=None, description="Default: 465 for tls, 587 for starttls, 25 for none.")
    security: Literal["tls", "starttls", "none"] = "starttls"
    username: str | None = Field(default=None, max_length=320)
    timeout: float = Field(default=30.0, gt=0, le=300)


class ImapServerSettings(Schema):
    """The mailbox an ``imap`` integration polls (the password is the credential ``imap_password``)."""

    host: Host
    port: Port | None = Field(default=None, description="Default: 993 for tls, 143 otherwise.")
    security: Literal["tls", "starttls", "none"] = "tls"
    username: str = Field(min_length=1, max_length=320)
    folder: str = Field(default="INBOX", min_length=1, max_length=200)
    processed_action: Literal["flag", "move"] = "flag"
    processed_folder: str = Field(default="Rebound/Processed", min_length=1, max_length=200)
    timeout: float = Field(default=30.0, gt=0, le=300)


_ORIGIN = r"https?://(?:\*\.)?[A-Za-z0-9.-]{1,253}(?::[0-9]{1,5})?"
# Checked strictly: the value goes verbatim into a Content-Security-Policy header.
HelpdeskOrigins = Annotated[str, Field(max_length=600, pattern=rf"^{_ORIGIN}(?: {_ORIGIN}){{0,3}}$")]


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
    helpdesk_origin: HelpdeskOrigins | None = Field(
        default=None, description="Who may frame the agent's panel (CSP frame-ancestors): up to 4 origins, "
        "space-separated, a leading *. allowed in the host, e.g. https://acme.freshdesk.com or "
        "'https://*.frontapp.com https://*.frontapplication.com'. Default: Front's two, else base_url's origin.")
    # Zendesk sidebar (a ZAF app with signedUrls):
    zaf_public_key: str | None = Field(default=None, max_length=4000, pattern=r"^-----BEGIN PUBLIC KEY-----",
                                       description="The app's RSA public key (PEM) its tokens are checked with; "
                                       "public, so a setting (the credential zaf_public_key wins if set).")
    zaf_issuer: str | None = Field(default=None, max_length=300, pattern=r"^(https://)?[A-Za-z0-9.-]+/?$",
                                   description="The Zendesk account whose tokens are accepted (iss), e.g. "
                                   "https://acme.zendesk.com. Default: base_url.")
    zaf_audience: str | None = Field(default=None, max_length=500, pattern=r"^https?://",
                                     description="The aud of the app installation's tokens, e.g. https://acme.zendesk."
                                     "com/api/v2/apps/installations/123.json. Default: this integration's "
                                     "/sidebar/zendesk/<key> URL.")
    # Mailbox integrations (mailgun, sendgrid, postmark, rawmime, imap):
    address: EmailStr | None = Field(default=None, description="Our returns address, e.g. returns@shop.example; "
                                     "replies go to returns+<case token>@shop.example.")
    aliases: list[EmailStr] = Field(default_factory=list, max_length=20,
                                    description="Other addresses of ours: mail from them is never a customer's.")
    from_name: str | None = Field(default=None, max_length=100, description="Display name on outgoing mail.")
    smtp: SmtpServerSettings | None = None
    imap: ImapServerSettings | None = None

    _patterns = field_validator("order_number_patterns")(_check_patterns)


Secret = Annotated[str, Field(min_length=8, max_length=500)]
# A credential may be a PEM public key (Zendesk's zaf_public_key: ~800 characters for RSA-4096).
Credential = Annotated[str, Field(min_length=1, max_length=4000)]  # issued elsewhere (API token, mailbox password): any length


class IntegrationCreate(Schema):
    kind: HelpdeskKind | MailKind
    name: str = Field(min_length=1, max_length=200)
    signing_secret: Secret | None = Field(
        default=None, description="The secret the helpdesk signs with; omit to have Rebound generate one.")
    credentials: dict[Annotated[str, Field(pattern=r"^[a-z_]{2,40}$")], Credential] = Field(
        default_factory=dict, max_length=10, description="API credentials for write-back, e.g. api_token.")
    settings: IntegrationSettings = Field(default_factory=IntegrationSettings)


# Kept by Rebound itself (rotation); never set through the credentials endpoint.
RESERVED_CREDENTIALS = frozenset({"signing_secret", "previous_signing_secret", "previous_valid_until"})


class CredentialsUpdate(Schema):
    """Credentials to add or replace (a value) or remove (``null``); others stay as they are."""

    credentials: dict[Annotated[str, Field(pattern=r"^[a-z_]{2,40}$")], Credential | None] = Field(
        min_length=1, max_length=10, description="e.g. {\"zaf_public_key\": \"-----BEGIN PUBLIC KEY-----…\", "
        "\"api_token\": null}. The signing secret changes only through rotate-secret.")

    @field_validator("credentials")
    @classmethod
    def _not_reserved(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        reserved = sorted(set(value) & RESERVED_CREDENTIALS)
        if reserved:
            raise ValueError(f"{', '.join(reserved)} is kept by Rebound: use rotate-secret")
        return value


class SecretRotation(Schema):
    signing_secret: Secret | None = Field(default=None, description="The new secret; omit to generate one.")
    grace_seconds: int = Field(default=86400, ge=0, le=30 * 86400,
                               description="How long the old secret is still accepted.")
