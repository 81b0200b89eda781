"""Schemas of the outbound side: push settings (what each case action writes to its ticket),
canned responses (a tenant's edits, the list, previews) and replies queued by hand.

Input schemas derive from ``app.validation.Schema`` (unknown fields are errors); output schemas are
plain pydantic models. Nothing here touches the database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from app.cases.schemas import ResolutionKind
from app.cases.states import Action
from app.outbound.canned import TEMPLATE_KEYS
from app.validation import Schema

#: Every case action a push can be configured for: the state machine's actions, plus opening a case.
CASE_ACTIONS: tuple[str, ...] = ("create", *(action.value for action in Action))

PushKind = Literal["note", "reply", "tags", "status", "fields"]
CaseActionName = Literal[CASE_ACTIONS]  # type: ignore[valid-type]
TemplateKey = Literal[TEMPLATE_KEYS]  # type: ignore[valid-type]
Tag = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\s,]+$")]
FieldId = Annotated[str, Field(min_length=1, max_length=100)]
FieldValue = Annotated[str, Field(max_length=500)]
LocaleTag = Annotated[str, Field(min_length=2, max_length=16, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$",
                                 description="A language tag such as de or de-AT.")]


class Push(Schema):
    """One ticket update a case action sends.

    - ``note``: an internal note; the text is Rebound's summary of the step (with the policy's
      explanation where a decision was made), or the canned ``template`` rendered, when given.
    - ``reply``: a public reply to the customer, rendered from the canned ``template`` in the case's
      language; ``settlement_kinds`` limits it to cases settled that way (for ``resolve``).
    - ``tags``: ``add_tags`` and ``remove_tags``.
    - ``status``: the ticket status ``status`` (the helpdesk's own word); without one, the
      integration's ``status_map`` entry for the case's new status (nothing when unmapped).
    - ``fields``: the literal ``fields`` (helpdesk field id → value), plus ``rma_number`` and
      ``rma_status`` where the integration's ``custom_field_ids`` map them.
    """

    kind: PushKind
    template: TemplateKey | None = Field(default=None, description="Canned response key (reply; optional for note).")
    add_tags: list[Tag] = Field(default_factory=list, max_length=20)
    remove_tags: list[Tag] = Field(default_factory=list, max_length=20)
    status: str | None = Field(default=None, min_length=1, max_length=100,
                               description="Ticket status; omit to use the integration's status_map.")
    fields: dict[FieldId, FieldValue] = Field(default_factory=dict, max_length=20)
    settlement_kinds: list[ResolutionKind] = Field(
        default_factory=list, max_length=6,
        description="Only when the case's latest settlement is one of these kinds (empty: always).")

    @model_validator(mode="after")
    def _fits_its_kind(self) -> Push:
        problems = []
        if self.kind == "reply" and self.template is None:
            problems.append("a reply needs a template (a canned response key)")
        if self.template is not None and self.kind not in ("note", "reply"):
            problems.append(f"a {self.kind} push has no template; only note and reply do")
        if self.kind == "tags" and not (self.add_tags or self.remove_tags):
            problems.append("a tags push needs add_tags or remove_tags")
        if self.kind != "tags" and (self.add_tags or self.remove_tags):
            problems.append(f"add_tags and remove_tags belong to a tags push, not a {self.kind} push")
        if self.kind != "status" and self.status is not None:
            problems.append(f"status belongs to a status push, not a {self.kind} push")
        if self.kind != "fields" and self.fields:
            problems.append(f"fields belong to a fields push, not a {self.kind} push")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class PushSettings(Schema):
    """What each case action writes to the case's ticket.

    ``actions`` maps an action (``create``, ``approve``, …) to its pushes, in order. An action not
    listed uses Rebound's default; an empty list sends nothing. ``sync_ticket_status`` applies the
    integration's ``status_map``, ``tag_map`` and ``custom_field_ids`` on every status change.
    """

    actions: dict[CaseActionName, Annotated[list[Push], Field(max_length=10)]] = Field(default_factory=dict)
    sync_ticket_status: bool = Field(
        default=True, description="Apply the integration's status_map, tag_map and custom_field_ids on every "
                                  "status change.")


# ---- canned responses -------------------------------------------------------------------------

Origin = Literal["shipped", "tenant"]


class CannedTemplateIn(Schema):
    """A tenant's version of one canned response: a one-line subject and a body, both Jinja2 text."""

    subject: str = Field(min_length=1, max_length=1000)
    body: str = Field(min_length=1, max_length=20_480)


class CannedTemplateOut(BaseModel):
    key: str
    locale: str
    origin: Origin = Field(description="tenant: the tenant's own version; shipped: Rebound's default.")
    subject: str
    body: str
    updated_at: datetime | None = Field(default=None, description="When the tenant last saved it (tenant only).")


class CannedResponseItem(BaseModel):
    key: str
    locale: str
    origin: Origin
    shipped: bool = Field(description="Rebound ships a default for this key and locale.")
    updated_at: datetime | None = None


class CannedResponseList(BaseModel):
    items: list[CannedResponseItem]
    keys: list[str]
    locales: list[str] = Field(description="The locales Rebound ships defaults for.")
    variables: dict[str, str] = Field(description="Every variable a template can use, with what it holds.")
    line_fields: dict[str, str] = Field(description="The fields of each item in `lines`.")
    filters: dict[str, str] = Field(description="The filters a template can use, with how.")


class PreviewIn(Schema):
    locale: LocaleTag | None = Field(default=None, description="Default: the case's locale.")


class RenderedOut(BaseModel):
    key: str
    locale_used: str
    origin: Origin
    subject: str
    text: str
    html: str


class ReplyIn(Schema):
    """A reply (or internal note) for the case's ticket: a canned ``key`` or free ``text``, not both."""

    key: TemplateKey | None = None
    text: str | None = Field(default=None, min_length=1, max_length=20_000)
    locale: LocaleTag | None = Field(default=None, description="For a canned key; default: the case's locale.")
    visibility: Literal["public", "internal"] = "public"
    force: bool = Field(default=False, description="Mail the reply even though mail to the customer bounced "
                        "(cases answered by mail only).")

    @model_validator(mode="after")
    def _key_or_text(self) -> ReplyIn:
        if (self.key is None) == (self.text is None):
            raise ValueError("give either key (a canned response) or text, not both and not neither")
        return self


class ReplyOut(BaseModel):
    message_id: int
    event_id: int
    idempotency_key: str
    kind: Literal["reply", "note"]
    status: str
    integration_id: int
    ticket_id: str | None  # None for a case answered by mail
    mail_id: int | None = None  # the queued mail, for a case answered by mail
    key: str | None
    locale_used: str | None
    origin: Literal["shipped", "tenant", "text"]
    subject: str | None
    text: str
    html: str
