"""Canned responses: the customer-facing messages for each step of a return, per locale.

What belongs here: the twelve template keys, the variables a template may use (``VARIABLES``,
built from plain values by ``build_context``), the lookup order (tenant override → shipped default),
rendering in a locked-down Jinja2 sandbox, the ``money`` and ``date`` filters, and checking a
template a tenant wants to save (``validate_source``). What does not: the database, HTTP, sending
mail. Callers pass plain values in and get plain strings out; the only I/O is reading the shipped
defaults under ``templates/canned/``.

**File format.** A shipped template is ``templates/canned/<locale>/<key>.txt``::

    Subject: [{{ case_number }}] Your return is approved
    <blank line>
    Hi {{ customer_first_name }},
    ...

The first line is ``Subject:`` and the subject template; then one blank line; the rest is the body.
Both are Jinja2 templates of *plain text*. The HTML version is derived from the rendered text, never
written by hand: the text is HTML-escaped as a whole, blank-line separated blocks become ``<p>``,
lines starting with ``- `` become a ``<ul>``, and ``http(s)://`` addresses become links. So a value
a customer typed (their name, a comment) can never become markup, whatever the template does.

**Lookup.** For ``render(key, locale, …)``: the tenant's override for (key, locale), the shipped file
for that locale, then the same two for the tenant's default locale, then for English. A regional
locale (``de-AT``) tries itself, then its language (``de``). A locale that is not a language tag
falls back like an unknown one.

**Rendering rules.** Templates run in an ``ImmutableSandboxedEnvironment`` with ``StrictUndefined``:
a misspelt variable is an error that names it, never a silent blank. ``None`` prints as nothing, so
``{{ label_url }}`` is empty when there is no label. ``{% include %}``, ``{% import %}`` and
``{% extends %}`` are refused; only the filters in ``FILTERS`` exist. Attribute access to anything
private (``__class__``, ``__globals__`` …) is refused by the sandbox, functions and objects cannot
be printed or turned into text, and only harmless methods of text, lists, dicts and dates may be
called. Every render is bounded: ``MAX_RANGE`` items per ``range()``, ``MAX_ITERATIONS`` loop
iterations, ``MAX_CALLS`` calls, ``MAX_WORK_CHARS`` characters written (including text buffered in
macros), ``MAX_VALUE_CHARS`` per value, ``MAX_OUTPUT_CHARS`` of body and ``TIME_LIMIT_SECONDS``.
Every failure — syntax, unknown variable, sandbox, limit — is one ``CannedTemplateError`` (422,
``template_error``) whose message and ``details`` say which part (subject or body) and which line.

**Tenant settings** (``build_context(settings=tenant.settings.get("canned"))``): ``return_address``
(multi-line text), ``return_instructions`` (text), ``support_email``, ``signature`` (sign-off text,
replacing the localized "The <shop> team") and ``ship_within_days`` (days after the label to ship,
which gives ``ship_by``). Unknown keys are ignored.
"""

from __future__ import annotations

import contextvars
import functools
import html
import re
import time
import types
import unicodedata
from collections.abc import Callable, ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType
from typing import Any

from jinja2 import StrictUndefined, Template, meta, nodes, pass_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError, TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.filters import FILTERS as JINJA_FILTERS
from jinja2.filters import make_attrgetter
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Cycler, Joiner, Namespace

from app.errors import NotFound, ValidationFailed

__all__ = [
    "FILTERS",
    "LINE_FIELDS",
    "LOCALES",
    "TEMPLATE_KEYS",
    "VARIABLES",
    "CannedTemplateError",
    "Rendered",
    "TemplateSource",
    "build_context",
    "context_from_case",
    "format_date",
    "format_money",
    "render",
    "resolve_template",
    "sample_context",
    "shipped_template",
    "text_to_html",
    "validate_source",
]

#: Every customer-facing step that has a canned response, in the order a case meets them.
TEMPLATE_KEYS: tuple[str, ...] = (
    "request_received",
    "approved",
    "info_requested",
    "label_issued",
    "received",
    "inspected",
    "refund_issued",
    "store_credit_issued",
    "exchange_shipped",
    "rejected",
    "expired",
    "closed",
)

#: The locales Rebound ships defaults for.
LOCALES: tuple[str, ...] = ("en", "de", "fr", "es")

#: The last resort of the lookup.
FALLBACK_LOCALE = "en"

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates" / "canned"

# --- limits -------------------------------------------------------------------------------------

MAX_SOURCE_BYTES = 20 * 1024  #: a body template, UTF-8 encoded
MAX_SUBJECT_SOURCE_CHARS = 1000  #: a subject template
MAX_SUBJECT_CHARS = 250  #: a rendered subject; longer ones are shortened with "…"
MAX_OUTPUT_CHARS = 100_000  #: a rendered body
MAX_WORK_CHARS = 1_000_000  #: characters written during one render, buffered ones included
MAX_VALUE_CHARS = 200_000  #: the size of any one value (text length; containers count every item)
MAX_RANGE = 1000  #: items one range() may produce
MAX_ITERATIONS = 10_000  #: loop iterations in one render
MAX_CALLS = 10_000  #: function, macro, method and filter calls in one render
MAX_INT_BITS = 10_000  #: integers a template computes
TIME_LIMIT_SECONDS = 2.0  #: wall-clock time of one render


# --- errors -------------------------------------------------------------------------------------


class CannedTemplateError(ValidationFailed):
    """A template that cannot be parsed or rendered, or that tried to leave the sandbox.

    ``details``: ``part`` ("subject" or "body"), ``line`` (1-based within that part, or None),
    ``kind`` ("syntax", "undefined", "security", "limit" or "error"), ``fields`` ({part: [message]}),
    and ``key``/``locale`` when a stored template failed.
    """

    status = 422
    code = "template_error"

    def __init__(self, message: str, *, part: str, line: int | None, kind: str,
                 key: str | None = None, locale: str | None = None):
        details: dict[str, Any] = {"part": part, "line": line, "kind": kind, "fields": {part: [message]}}
        if key is not None:
            details["key"] = key
        if locale is not None:
            details["locale"] = locale
        super().__init__(message, details)
        self.part, self.line, self.kind = part, line, kind


class _LimitExceeded(SecurityError):
    """A render went over one of the limits above."""


class _UnknownVariable(TemplateSyntaxError):
    """A template names a variable that is not in ``VARIABLES`` (found before rendering)."""


# --- templates and results ----------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateSource:
    """The source of one canned response: a one-line subject template and a body template."""

    subject: str
    body: str

    @classmethod
    def from_text(cls, text: str) -> TemplateSource:
        """Parse the file format: ``Subject: …``, a blank line, the body.

        :raise ValueError: the text does not start with a subject line and a blank line.
        """
        first, sep, rest = text.replace("\r\n", "\n").partition("\n")
        if not first.lower().startswith("subject:"):
            raise ValueError("A canned response file must start with a 'Subject:' line.")
        blank, sep2, body = rest.partition("\n")
        if blank.strip():
            raise ValueError("The 'Subject:' line must be followed by one blank line.")
        return cls(subject=first[len("subject:"):].strip(), body=body.rstrip("\n"))

    def to_text(self) -> str:
        """The file format, the inverse of ``from_text``."""
        return f"Subject: {self.subject}\n\n{self.body}\n"


@dataclass(frozen=True)
class Rendered:
    """A rendered canned response. ``origin`` is "tenant" (an override) or "shipped"."""

    key: str
    locale_used: str
    subject: str
    text: str
    html: str
    origin: str = "shipped"

    def to_dict(self) -> dict[str, str]:
        return {"key": self.key, "locale_used": self.locale_used, "origin": self.origin,
                "subject": self.subject, "text": self.text, "html": self.html}


# --- the variables ------------------------------------------------------------------------------

#: Every variable a canned response can use, with what it holds. Optional ones are None when unknown.
VARIABLES: Mapping[str, str] = MappingProxyType({
    "case_number": "The RMA number, e.g. RMA-10042. Keep it in the subject: replies are matched by it.",
    "status": "The case's status code, e.g. authorized or rejected.",
    "locale": "The language of the template being rendered (en, de, fr, es, …); money and date format for it.",
    "customer_name": "The customer's full name, or None.",
    "customer_first_name": "The first word of customer_name, or None.",
    "customer_email": "The customer's email address, or None.",
    "merchant_name": "The shop's name (the tenant's name).",
    "signature": "The sign-off: the tenant's canned.signature setting, else a localized 'The <shop> team'.",
    "agent_name": "The name of the agent sending the message, or None for automatic messages.",
    "support_email": "The tenant's canned.support_email setting, or None.",
    "requested_on": "The date the return was requested, or None. Use |date.",
    "item_count": "The number of items asked for (quantities added up).",
    "lines": "The items, in order; each is a dict with the fields in LINE_FIELDS.",
    "preferred_resolution": "What the customer asked for: refund, store_credit, exchange, replacement, "
                            "repair, keep_item, or None.",
    "currency": "The ISO 4217 currency of the amounts, e.g. EUR; |money uses it unless told otherwise.",
    "settlement_kind": "How the case is settled: refund, store_credit, exchange, replacement, repair, "
                       "keep_item, or None before that is decided.",
    "gross": "The value of the accepted items before fees, or None. Use |money.",
    "fees": "Restocking and other fees deducted, or None. Use |money.",
    "bonus": "The store-credit bonus added, or None. Use |money.",
    "amount": "What the customer receives (refund or credit, bonus included), or None. Use |money.",
    "customer_owes": "What the customer pays on an exchange for a pricier item, or None. Use |money.",
    "settlement_reference": "The payment or gift-card reference of the refund or credit, or None.",
    "carrier": "The carrier of the return parcel, or None.",
    "tracking_number": "The tracking number of the return parcel, or None.",
    "label_url": "Where the customer downloads the return label, or None.",
    "ship_by": "The date the parcel should be sent by, or None. Use |date.",
    "return_address": "Where the parcel goes (tenant setting canned.return_address, several lines), or None.",
    "return_instructions": "How to pack and send (tenant setting canned.return_instructions), or None; "
                           "the shipped templates then use their own wording.",
    "outbound_carrier": "The carrier of the exchange or replacement parcel sent to the customer, or None.",
    "outbound_tracking_number": "Its tracking number, or None.",
    "reject_reason": "Why the return was turned down, as the agent wrote it for the customer, or None.",
    "info_request": "The agent's question to the customer, or None.",
    "reply_by": "The date the customer should answer by, or None. Use |date.",
    "expiry_reason": "Why the case expired: no_reply (no answer to a question) or not_shipped "
                     "(the parcel was never sent), or None.",
    "decision_summary": "The policy's one-sentence summary (English, written for agents), or None.",
    "decision_reasons": "The policy rules that failed, one English sentence each (written for agents).",
    "what_would_change": "What would change the policy's decision, one English sentence each (for agents).",
})

#: The fields of each item in ``lines``.
LINE_FIELDS: Mapping[str, str] = MappingProxyType({
    "sku": "The item's SKU.",
    "title": "The item's name as the customer knows it.",
    "order_number": "The order it came from, or None.",
    "qty_requested": "How many the customer asked to return.",
    "qty_authorized": "How many were approved for return.",
    "qty_received": "How many arrived at the warehouse.",
    "qty_accepted": "How many passed inspection.",
    "reason_code": "The return reason code, e.g. too_small, or None.",
    "condition_grade": "The grade given at inspection, or None.",
    "disposition": "What happens to the item: restock, refurbish, repair, recycle, dispose, donate, "
                   "return_to_vendor, quarantine, or None.",
    "decision_status": "pending, accepted, rejected or manual_review.",
})

#: The filters a template can use. ``money`` and ``date`` are Rebound's; the rest are Jinja's.
FILTERS: Mapping[str, str] = MappingProxyType({
    "money": "{{ amount|money }} or {{ amount|money('USD') }}: an amount in the template's language, "
             "e.g. €49.90 (en), 49,90 € (de, fr, es). None gives nothing.",
    "date": "{{ ship_by|date }} or {{ ship_by|date(weekday=true) }}: a date in the template's language, "
            "e.g. March 14, 2026 / 14. März 2026 / 14 mars 2026 / 14 de marzo de 2026.",
    **{name: "Jinja's built-in filter of that name." for name in (
        "abs", "batch", "capitalize", "count", "d", "default", "dictsort", "filesizeformat", "first",
        "float", "groupby", "indent", "int", "items", "join", "last", "length", "list", "lower", "map",
        "max", "min", "reject", "rejectattr", "replace", "reverse", "round", "select", "selectattr",
        "slice", "sort", "string", "striptags", "sum", "title", "trim", "truncate", "unique", "upper",
        "urlencode", "wordcount", "wordwrap",
    )},
})


def _text(value: Any) -> str | None:
    """Trimmed text, or None for None and blanks."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _amount(value: Any) -> Decimal | None:
    """An amount as a Decimal (strings such as "12.50" from JSON too), or None."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise TypeError("An amount cannot be a boolean.")
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"Not an amount: {value!r}.") from None
    if not result.is_finite():
        raise ValueError(f"Not an amount: {value!r}.")
    return result


def _as_date(value: Any) -> date | None:
    """A date from a date, a datetime or an ISO 8601 string; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
        except ValueError:
            raise ValueError(f"Not a date: {value!r}.") from None
    raise TypeError(f"A date must be a date, a datetime or an ISO string, not {type(value).__name__}.")


def _int(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"A quantity must be an int, not {type(value).__name__}.")
    return value


def _line(data: Mapping[str, Any]) -> dict[str, Any]:
    """One entry of ``lines``: exactly the LINE_FIELDS, as plain values."""
    sku = _text(data.get("sku")) or ""
    return {
        "sku": sku,
        "title": _text(data.get("title")) or sku,
        "order_number": _text(data.get("order_number")),
        "qty_requested": _int(data.get("qty_requested")),
        "qty_authorized": _int(data.get("qty_authorized")),
        "qty_received": _int(data.get("qty_received")),
        "qty_accepted": _int(data.get("qty_accepted")),
        "reason_code": _text(data.get("reason_code")),
        "condition_grade": _text(data.get("condition_grade")),
        "disposition": _text(data.get("disposition")),
        "decision_status": _text(data.get("decision_status")) or "pending",
    }


def build_context(
    *,
    case_number: str,
    status: str | None = None,
    customer_name: str | None = None,
    customer_email: str | None = None,
    merchant_name: str | None = None,
    agent_name: str | None = None,
    requested_on: date | datetime | str | None = None,
    lines: Iterable[Mapping[str, Any]] = (),
    preferred_resolution: str | None = None,
    currency: str | None = None,
    settlement: Mapping[str, Any] | None = None,
    shipment: Mapping[str, Any] | None = None,
    outbound_shipment: Mapping[str, Any] | None = None,
    policy_decision: Mapping[str, Any] | None = None,
    reject_reason: str | None = None,
    info_request: str | None = None,
    reply_by: date | datetime | str | None = None,
    ship_by: date | datetime | str | None = None,
    expiry_reason: str | None = None,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The variables of ``VARIABLES`` from plain values (never ORM objects).

    ``lines`` are mappings with the ``LINE_FIELDS`` keys; ``settlement`` has ``kind``, ``currency``,
    ``gross``, ``fees``, ``bonus``, ``amount``, ``customer_owes`` and ``external_ref`` (amounts as
    Decimal, int or string); ``shipment`` and ``outbound_shipment`` have ``carrier`` and
    ``tracking_number`` (the return shipment also ``label_url`` and ``label_issued_at``);
    ``policy_decision`` is ``Decision.to_dict()``; ``settings`` is the tenant's ``canned`` settings.
    ``locale`` and, when not set, ``signature`` are filled in by ``render`` for the template's language.

    :raise TypeError, ValueError: a value of the wrong kind (a float quantity, an unparsable date).
    """
    settings = settings or {}
    settlement = settlement or {}
    shipment = shipment or {}
    outbound_shipment = outbound_shipment or {}
    decision = policy_decision or {}
    name = _text(customer_name)
    line_list = [_line(line) for line in lines]

    label_issued = shipment.get("label_issued_at")
    days = settings.get("ship_within_days")
    if ship_by is None and label_issued is not None and isinstance(days, int) and not isinstance(days, bool) \
            and 0 < days <= 365:
        ship_by = _as_date(label_issued) + timedelta(days=days)  # type: ignore[operator]

    failed = [r for r in decision.get("results") or [] if isinstance(r, Mapping) and not r.get("passed", True)]
    return {
        "case_number": _text(case_number) or "",
        "status": _text(status),
        "locale": None,
        "customer_name": name,
        "customer_first_name": name.split()[0] if name else None,
        "customer_email": _text(customer_email),
        "merchant_name": _text(merchant_name) or "",
        "signature": _text(settings.get("signature")),
        "agent_name": _text(agent_name),
        "support_email": _text(settings.get("support_email")),
        "requested_on": _as_date(requested_on),
        "item_count": sum(line["qty_requested"] for line in line_list),
        "lines": line_list,
        "preferred_resolution": _text(preferred_resolution),
        "currency": (_text(settlement.get("currency")) or _text(currency) or "").upper() or None,
        "settlement_kind": _text(settlement.get("kind")),
        "gross": _amount(settlement.get("gross")),
        "fees": _amount(settlement.get("fees")),
        "bonus": _amount(settlement.get("bonus")),
        "amount": _amount(settlement.get("amount")),
        "customer_owes": _amount(settlement.get("customer_owes")),
        "settlement_reference": _text(settlement.get("external_ref")),
        "carrier": _text(shipment.get("carrier")),
        "tracking_number": _text(shipment.get("tracking_number")),
        "label_url": _text(shipment.get("label_url")),
        "ship_by": _as_date(ship_by),
        "return_address": _text(settings.get("return_address")),
        "return_instructions": _text(settings.get("return_instructions")),
        "outbound_carrier": _text(outbound_shipment.get("carrier")),
        "outbound_tracking_number": _text(outbound_shipment.get("tracking_number")),
        "reject_reason": _text(reject_reason),
        "info_request": _text(info_request),
        "reply_by": _as_date(reply_by),
        "expiry_reason": _text(expiry_reason),
        "decision_summary": _text(decision.get("summary")),
        "decision_reasons": [str(r["why"]) for r in failed if r.get("why")],
        "what_would_change": [str(s) for s in decision.get("what_would_change") or []],
    }


def context_from_case(
    case: Mapping[str, Any],
    *,
    merchant_name: str | None = None,
    settings: Mapping[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """``build_context`` from a case as the API shows it (``CaseOut.model_dump()``).

    The latest settlement is used. ``extra`` passes the values a case does not hold:
    ``agent_name``, ``reject_reason``, ``info_request``, ``reply_by``, ``ship_by``,
    ``expiry_reason``, ``outbound_shipment``.
    """
    settlements = list(case.get("settlements") or [])
    return build_context(
        case_number=case["number"],
        status=case.get("status"),
        customer_name=case.get("customer_name"),
        customer_email=case.get("customer_email"),
        merchant_name=merchant_name,
        requested_on=case.get("created_at"),
        lines=case.get("lines") or [],
        preferred_resolution=case.get("preferred_resolution"),
        currency=case.get("currency"),
        settlement=settlements[-1] if settlements else None,
        shipment=case.get("shipment"),
        policy_decision=case.get("policy_decision"),
        settings=settings,
        **extra,
    )


_SAMPLE_KIND = {"refund_issued": "refund", "store_credit_issued": "store_credit", "exchange_shipped": "exchange"}
_SAMPLE_STATUS = {
    "request_received": "requested", "approved": "authorized", "info_requested": "awaiting_customer",
    "label_issued": "awaiting_shipment", "received": "received", "inspected": "inspected",
    "refund_issued": "resolved", "store_credit_issued": "resolved", "exchange_shipped": "resolved",
    "rejected": "rejected", "expired": "expired", "closed": "closed",
}


_SAMPLE_TEXTS: Mapping[str, tuple[str, str]] = MappingProxyType({
    # (reject_reason, info_request) as an agent would write them in that language
    "en": ("The boots show clear signs of outdoor use, and our return policy only covers unworn items.",
           "Could you send us a photo of the sole of the boots, and of the damage you mentioned?"),
    "de": ("Die Schuhe zeigen deutliche Gebrauchsspuren im Freien, und unsere Rückgaberichtlinie gilt nur für "
           "ungetragene Artikel.",
           "Könnten Sie uns ein Foto der Sohle und der von Ihnen erwähnten Beschädigung schicken?"),
    "fr": ("Les chaussures présentent des traces nettes d'utilisation en extérieur, et notre politique de retour "
           "ne couvre que les articles non portés.",
           "Pourriez-vous nous envoyer une photo de la semelle et du défaut que vous avez mentionné ?"),
    "es": ("Las botas muestran claras señales de uso en exteriores y nuestra política de devoluciones solo cubre "
           "artículos sin usar.",
           "¿Podría enviarnos una foto de la suela y del daño que menciona?"),
})


def sample_context(key: str | None = None, *, locale: str = FALLBACK_LOCALE, sparse: bool = False) -> dict[str, Any]:
    """A realistic context for previews and checks, fitted to ``key`` when given; the agent-written
    texts (``reject_reason``, ``info_request``) are in ``locale``'s language when Rebound ships it.

    ``sparse`` leaves out everything optional (name, label, address, agent, references …) but keeps
    what the step itself needs, so a template can be tried with and without its optional parts.
    """
    kind = _SAMPLE_KIND.get(key or "", "refund")
    texts = _SAMPLE_TEXTS.get(_language(locale), _SAMPLE_TEXTS[FALLBACK_LOCALE])
    money = {
        "refund": {"gross": "219.80", "fees": "14.00", "bonus": "0.00", "amount": "205.80", "customer_owes": "0.00",
                   "external_ref": "re_3PqL2x"},
        "store_credit": {"gross": "219.80", "fees": "0.00", "bonus": "21.98", "amount": "241.78",
                         "customer_owes": "0.00", "external_ref": "GIFT-8812-KD4Q"},
        "exchange": {"gross": "139.90", "fees": "0.00", "bonus": "0.00", "amount": "0.00", "customer_owes": "10.00",
                     "external_ref": None},
    }[kind]
    sample = build_context(
        case_number="RMA-10042",
        status=_SAMPLE_STATUS.get(key or "", "authorized"),
        customer_name=None if sparse else "Ana Silva",
        customer_email="ana.silva@example.com",
        merchant_name="Northwind Outdoor",
        agent_name=None if sparse else "Sam",
        requested_on=date(2026, 3, 2),
        lines=[
            {"sku": "BOOT-42", "title": "Ridge hiking boots, 42", "order_number": "2001", "qty_requested": 1,
             "qty_authorized": 1, "qty_received": 1, "qty_accepted": 1, "reason_code": "too_small",
             "condition_grade": "A", "disposition": "restock", "decision_status": "accepted"},
            {"sku": "SOCK-3P", "title": "Merino trail socks, 3-pack", "order_number": "2001", "qty_requested": 2,
             "qty_authorized": 2, "qty_received": 2, "qty_accepted": 1, "reason_code": "changed_mind",
             "condition_grade": "C", "disposition": "dispose", "decision_status": "accepted"},
        ],
        preferred_resolution=kind,
        currency="EUR",
        settlement={"kind": kind, "currency": "EUR", **money, **({"external_ref": None} if sparse else {})},
        shipment=None if sparse else {"carrier": "DHL", "tracking_number": "JD014600000001",
                                      "label_url": "https://labels.example.com/l/RMA-10042.pdf"},
        outbound_shipment=None if sparse else {"carrier": "UPS", "tracking_number": "1Z999AA10123456784"},
        policy_decision={
            "summary": "Needs review: line 2 is outside the return window.",
            "results": [{"rule": "return_window", "passed": False,
                         "why": "Delivered 41 days ago, outside the 30-day window.", "line": "2"}],
            "what_would_change": ["A request within 30 days of delivery would be auto-approved."],
        },
        reject_reason=texts[0],
        info_request=texts[1],
        reply_by=None if sparse else date(2026, 3, 16),
        ship_by=None if sparse else date(2026, 3, 20),
        expiry_reason="not_shipped" if key == "expired" else None,
        settings=None if sparse else {
            "return_address": "Northwind Outdoor Returns\nLagerstraße 12\n04109 Leipzig\nGermany",
            "support_email": "help@northwind.example",
        },
    )
    return sample


# --- money and dates ----------------------------------------------------------------------------

NBSP = "\u00a0"
NNBSP = "\u202f"

# decimal mark, group separator, minimum digits before grouping starts, symbol position
_NUMBER_STYLE: Mapping[str, tuple[str, str, int, str]] = MappingProxyType({
    "en": (".", ",", 4, "prefix"),
    "de": (",", ".", 4, "suffix"),
    "fr": (",", NNBSP, 4, "suffix"),
    "es": (",", ".", 5, "suffix"),  # Spanish groups from five digits on: 1234,50 € but 12.345,00 €
    "it": (",", ".", 4, "suffix"),
    "pt": (",", ".", 4, "suffix"),
    "nl": (",", ".", 4, "prefix_space"),
})
_SYMBOLS: Mapping[str, str] = MappingProxyType({
    "EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "INR": "₹", "KRW": "₩", "BRL": "R$", "CAD": "CA$",
    "AUD": "A$", "NZD": "NZ$", "MXN": "MX$", "ILS": "₪", "VND": "₫", "PHP": "₱", "TRY": "₺", "UAH": "₴",
})
_MINOR_UNITS: Mapping[str, int] = MappingProxyType({
    **dict.fromkeys(("JPY", "KRW", "CLP", "ISK", "VND", "UGX", "PYG", "XAF", "XOF", "BIF", "DJF", "GNF",
                     "KMF", "RWF", "VUV", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
})


def _language(locale: str | None) -> str:
    return (locale or FALLBACK_LOCALE).lower().replace("_", "-").split("-")[0]


def _group(digits: str, separator: str, min_digits: int) -> str:
    if len(digits) < min_digits:
        return digits
    head = len(digits) % 3 or 3
    return separator.join([digits[:head]] + [digits[i:i + 3] for i in range(head, len(digits), 3)])


def format_money(amount: Decimal | int | str, currency: str, locale: str = FALLBACK_LOCALE) -> str:
    """An amount as a customer reads it in ``locale``: "€1,234.50" (en), "1.234,50 €" (de).

    The space before a trailing symbol is a no-break space (U+00A0); French groups thousands with a
    narrow no-break space (U+202F). Currencies without a known symbol are written with their code.
    Rounds half up to the currency's minor unit (cents, or none for JPY).
    """
    value = _amount(amount)
    if value is None:
        raise ValueError("An amount is required.")
    code = (currency or "").strip().upper()
    decimal_mark, group, min_digits, position = _NUMBER_STYLE.get(_language(locale), _NUMBER_STYLE["en"])
    places = _MINOR_UNITS.get(code, 2)
    rounded = abs(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    whole, _, cents = f"{rounded:f}".partition(".")
    number = _group(whole, group, min_digits) + (decimal_mark + cents if places else "")
    sign = "-" if value < 0 and rounded != 0 else ""
    symbol = _SYMBOLS.get(code, code)
    if position == "suffix":
        return f"{sign}{number}{NBSP}{symbol}".strip()
    if position == "prefix_space" or symbol.isalpha():
        return f"{sign}{symbol}{NBSP}{number}".strip()
    return f"{sign}{symbol}{number}"


_MONTHS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
    "de": ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
           "November", "Dezember"),
    "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre"),
    "es": ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre",
           "noviembre", "diciembre"),
    "it": ("gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto", "settembre",
           "ottobre", "novembre", "dicembre"),
    "pt": ("janeiro", "fevereiro", "março", "abril", "maio", "junho", "julho", "agosto", "setembro", "outubro",
           "novembro", "dezembro"),
    "nl": ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober",
           "november", "december"),
})
_WEEKDAYS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "de": ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
    "fr": ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
    "es": ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
    "it": ("lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato", "domenica"),
    "pt": ("segunda-feira", "terça-feira", "quarta-feira", "quinta-feira", "sexta-feira", "sábado", "domingo"),
    "nl": ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"),
})


def format_date(value: date | datetime | str, locale: str = FALLBACK_LOCALE, *, weekday: bool = False) -> str:
    """A date written out in ``locale``: "March 14, 2026", "14. März 2026", "14 mars 2026",
    "14 de marzo de 2026"; with ``weekday`` it starts with the day's name."""
    day = _as_date(value)
    if day is None:
        raise ValueError("A date is required.")
    language = _language(locale)
    if language not in _MONTHS:
        language = FALLBACK_LOCALE
    month, name = _MONTHS[language][day.month - 1], _WEEKDAYS[language][day.weekday()]
    if language == "en":
        text = f"{month} {day.day}, {day.year}"
        return f"{name}, {text}" if weekday else text
    if language == "de":
        text = f"{day.day}. {month} {day.year}"
        return f"{name}, {text}" if weekday else text
    if language in ("es", "pt"):
        text = f"{day.day} de {month} de {day.year}"
        return f"{name}, {text}" if weekday else text
    if language == "fr":
        text = f"{'1er' if day.day == 1 else day.day} {month} {day.year}"
        return f"{name} {text}" if weekday else text
    text = f"{day.day} {month} {day.year}"  # it, nl
    return f"{name} {text}" if weekday else text


_DEFAULT_SIGNATURE: Mapping[str, tuple[str, str]] = MappingProxyType({
    # (with the shop's name, without one)
    "en": ("The {shop} team", "Customer Service"),
    "de": ("Ihr Team von {shop}", "Ihr Kundenservice"),
    "fr": ("L'équipe {shop}", "Le service client"),
    "es": ("El equipo de {shop}", "Atención al cliente"),
    "it": ("Il team di {shop}", "Il servizio clienti"),
    "pt": ("A equipa {shop}", "Apoio ao cliente"),
    "nl": ("Het team van {shop}", "Klantenservice"),
})


def _default_signature(locale: str, merchant_name: str | None) -> str:
    with_shop, without = _DEFAULT_SIGNATURE.get(_language(locale), _DEFAULT_SIGNATURE["en"])
    return with_shop.format(shop=merchant_name) if merchant_name else without


# --- the sandbox --------------------------------------------------------------------------------


class _Render:
    """What one render may still spend, and the language it formats for."""

    __slots__ = ("locale", "deadline", "calls", "iterations", "work")

    def __init__(self, locale: str) -> None:
        self.locale = locale
        self.deadline = time.monotonic() + TIME_LIMIT_SECONDS
        self.calls = self.iterations = self.work = 0

    def clock(self) -> None:
        if time.monotonic() > self.deadline:
            raise _LimitExceeded(f"rendering took longer than {TIME_LIMIT_SECONDS:g} seconds.")

    def call(self) -> None:
        self.calls += 1
        if self.calls > MAX_CALLS:
            raise _LimitExceeded(f"more than {MAX_CALLS} function, filter or macro calls in one message.")
        self.clock()

    def iterate(self) -> None:
        self.iterations += 1
        if self.iterations > MAX_ITERATIONS:
            raise _LimitExceeded(f"more than {MAX_ITERATIONS} loop iterations in one message.")
        if not self.iterations % 64:
            self.clock()

    def charge(self, chars: int) -> None:
        self.work += chars
        if self.work > MAX_WORK_CHARS:
            raise _LimitExceeded(f"the template writes more than {MAX_WORK_CHARS} characters.")
        self.clock()


_CURRENT: contextvars.ContextVar[_Render | None] = contextvars.ContextVar("canned_render", default=None)


def _spend(what: str) -> None:
    """Count one call or loop iteration against the current render, if one is running."""
    state = _CURRENT.get()
    if state is not None:
        getattr(state, what)()


def _charge(chars: int) -> None:
    """Count characters written against the current render, if one is running."""
    state = _CURRENT.get()
    if state is not None:
        state.charge(chars)


_SCALARS = (str, int, float, Decimal, bool, type(None), date, Undefined)


class _NotData(SecurityError):
    """An object (function, macro, loop, namespace …) where text, numbers or dates are needed."""

    def __init__(self, described: str) -> None:
        super().__init__(f"cannot use {described} as text.")
        self.described = described


def _describe(value: Any) -> str:
    if isinstance(value, types.GeneratorType):
        return "a sequence produced by a filter (add |list or |join)"
    if callable(value):
        return "a function or macro (call it with ())"
    return f"a {type(value).__name__} object"


def _weigh(value: Any, *, data: bool = False, limit: int = MAX_VALUE_CHARS) -> int:
    """How big ``value`` is: text length plus one per item, every shared item counted again.

    With ``data``, everything inside must be text, numbers, dates or containers of them.

    :raise _LimitExceeded: bigger than ``limit``.
    :raise _NotData: ``data`` and something else is inside.
    """
    total, stack = 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 1
        elif isinstance(item, _SCALARS):
            total += 1
        elif isinstance(item, dict):
            total += 1
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset, KeysView, ValuesView, ItemsView)):
            total += 1
            stack.extend(item)
        elif isinstance(item, range):
            total += 1 + len(item)
        elif data:
            raise _NotData(_describe(item))
        else:
            total += 1
        if total > limit:
            raise _LimitExceeded(f"a value is larger than the limit of {limit} characters.")
    return total


def _range(*args: int) -> range:
    result = range(*args)
    if len(result) > MAX_RANGE:
        raise _LimitExceeded(f"range() is limited to {MAX_RANGE} items in canned responses.")
    return result


def _dict(*args: Any, **kwargs: Any) -> dict[Any, Any]:
    return dict(*args, **kwargs)


# Methods of built-in values a template may call. Everything else on them (str.format, int.to_bytes,
# str.center …) is refused: those can be used to build huge values or are never needed in a message.
_SAFE_METHODS: tuple[tuple[type | tuple[type, ...], frozenset[str]], ...] = (
    (str, frozenset({
        "capitalize", "casefold", "count", "endswith", "find", "isalnum", "isalpha", "isdecimal", "isdigit",
        "islower", "isnumeric", "isspace", "istitle", "isupper", "lower", "lstrip", "partition",
        "removeprefix", "removesuffix", "replace", "rfind", "rpartition", "rsplit", "rstrip", "split",
        "splitlines", "startswith", "strip", "swapcase", "title", "upper",
    })),
    (dict, frozenset({"get", "items", "keys", "values"})),
    ((list, tuple), frozenset({"count", "index"})),
    (date, frozenset({"isoformat", "isoweekday", "weekday"})),
)


# Built-in values whose methods are limited to _SAFE_METHODS (Jinja's own objects keep theirs).
_BUILTIN_VALUES = (str, bytes, int, float, complex, Decimal, list, tuple, dict, set, frozenset, range, date,
                   KeysView, ValuesView, ItemsView)


def _check_method(method: Any) -> None:
    """Refuse calling a method of a built-in value unless ``_SAFE_METHODS`` lists it."""
    owner = getattr(method, "__self__", None)
    if not isinstance(owner, _BUILTIN_VALUES):
        return
    name = getattr(method, "__name__", "?")
    for kinds, allowed in _SAFE_METHODS:
        if isinstance(owner, kinds) and name in allowed:
            return
    raise SecurityError(f"calling .{name}() on a {type(owner).__name__} is not allowed in canned responses.")


def _check_replace(text: Any, old: Any, new: Any) -> None:
    """Refuse a replace that would build a value over the limit before building it."""
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        hits = text.count(old) if old else len(text) + 1
        if len(text) + hits * max(0, len(new) - len(old)) > MAX_VALUE_CHARS:
            raise _LimitExceeded(f"replace() would produce more than {MAX_VALUE_CHARS} characters.")


def _hook(name: str, node: nodes.Expr) -> nodes.Call:
    """``environment.<name>(node)``, called directly (see ``_CodeGenerator.visit_Call``)."""
    return nodes.Call(nodes.EnvironmentAttribute(name), [node], [], None, None, lineno=node.lineno)


class _CodeGenerator(CodeGenerator):
    """Jinja's code generator with the accounting hooks the sandbox alone does not have."""

    def visit_Call(self, node: nodes.Call, frame: Frame, forward_caller: bool = False) -> None:
        hook = node.node
        if isinstance(hook, nodes.EnvironmentAttribute) and hook.name.startswith("_canned_"):
            self.write(f"environment.{hook.name}(")
            self.visit(node.args[0], frame)
            self.write(")")
            return
        super().visit_Call(node, frame, forward_caller=forward_caller)

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        guarded = nodes.For(node.target, _hook("_canned_iter", node.iter), node.body, node.else_, node.test,
                            node.recursive, lineno=node.lineno)
        guarded.set_environment(self.environment)
        super().visit_For(guarded, frame)

    def visit_Output(self, node: nodes.Output, frame: Frame) -> None:
        # Literal text counts towards the work limit each time it is written, in loops and macros too.
        literal = sum(len(child.data) for child in node.nodes if isinstance(child, nodes.TemplateData))
        if literal:
            self.writeline(f"environment._canned_charge({literal})", node)
        super().visit_Output(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment._canned_concat((")
        for child in node.nodes:
            self.visit(child, frame)
            self.write(", ")
        self.write("))")

    def _guarded_literal(self, visit: Callable[[Any, Frame], None], node: Any, frame: Frame) -> None:
        self.write("environment._canned_value(")
        visit(node, frame)
        self.write(")")

    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        self._guarded_literal(super().visit_List, node, frame)

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self._guarded_literal(super().visit_Dict, node, frame)

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        if node.ctx == "load":
            self._guarded_literal(super().visit_Tuple, node, frame)
        else:
            super().visit_Tuple(node, frame)


def _printable(value: Any) -> str:
    """``value`` as output text: None is empty, objects and functions are refused."""
    if value is None:
        return ""
    if isinstance(value, Undefined):
        return str(value)  # StrictUndefined raises, naming the variable
    _weigh(value, data=True)
    return str(value)


@pass_context
def _finalize(context: Context, value: Any) -> str:
    text = _printable(value)
    _charge(len(text))
    return text


class _Environment(ImmutableSandboxedEnvironment):
    """The sandbox canned responses run in (see the module docstring for what it refuses)."""

    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def wrap_str_format(self, value: Any) -> None:
        # str.format and format_map stay plain methods, which _check_method refuses.
        return None

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        _spend("call")
        _check_method(__obj)
        if getattr(__obj, "__name__", None) == "replace" and isinstance(getattr(__obj, "__self__", None), str):
            _check_replace(__obj.__self__, *(list(args) + [None, None])[:2])
        _weigh((args, kwargs))
        result = super().call(__context, __obj, *args, **kwargs)
        _weigh(result)
        return result

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _spend("call")
        if operator == "%" and isinstance(left, str):
            raise SecurityError("'%' cannot format text in canned responses; use the filters instead.")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int):
                    size = len(seq) if isinstance(seq, str) else _weigh(seq)
                    if size * max(times, 0) > MAX_VALUE_CHARS:
                        raise _LimitExceeded(f"'*' would produce a value larger than {MAX_VALUE_CHARS} characters.")
            if _is_int(left) and _is_int(right) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise _LimitExceeded("'*' would produce a number that is too large.")
        if operator == "**" and _is_int(left) and _is_int(right) and right > 0 \
                and max(left.bit_length(), 1) * right > MAX_INT_BITS:
            raise _LimitExceeded("'**' would produce a number that is too large.")
        result = self.binop_table[operator](left, right)
        _weigh(result)
        return result

    def _canned_iter(self, iterable: Any) -> Iterator[Any]:
        state = _CURRENT.get()
        for item in iterable:
            if state is not None:
                state.iterate()
            yield item

    def _canned_charge(self, chars: int) -> None:
        _charge(chars)

    def _canned_concat(self, values: tuple[Any, ...]) -> str:
        parts, size = [], 0
        for value in values:
            text = _printable(value)
            size += len(text)
            if size > MAX_VALUE_CHARS:
                raise _LimitExceeded(f"'~' would produce more than {MAX_VALUE_CHARS} characters.")
            parts.append(text)
        return "".join(parts)

    def _canned_value(self, value: Any) -> Any:
        _weigh(value)
        return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# Filters whose first argument may be a sequence of anything (a generator from map/select included);
# every other filter gets only text, numbers, dates and containers of them.
_SEQUENCE_FILTERS = frozenset({
    "batch", "count", "dictsort", "first", "groupby", "items", "join", "last", "length", "list", "map", "max", "min",
    "reject", "rejectattr", "reverse", "select", "selectattr", "slice", "sort", "sum", "unique",
})


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    passes_first = getattr(func, "jinja_pass_arg", None) is not None

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _spend("call")
        own = args[1:] if passes_first else args
        if own:
            _weigh(own[0], data=name not in _SEQUENCE_FILTERS)
            _weigh((own[1:], list(kwargs.values())), data=True)
        _check_filter_args(name, own, kwargs)
        result = func(*args, **kwargs)
        if not isinstance(result, types.GeneratorType):
            _weigh(result)
        return result

    return guarded


def _check_filter_args(name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Refuse, before the work is done, the arguments that would build something huge."""
    def arg(position: int, keyword: str, default: Any = None) -> Any:
        return args[position] if len(args) > position else kwargs.get(keyword, default)

    if name == "indent":
        text, width = arg(0, "s", ""), arg(1, "width", 4)
        size = len(width) if isinstance(width, str) else width if _is_int(width) else 0
        if size > 100:
            raise _LimitExceeded("indent() is limited to 100 characters of indentation.")
        if isinstance(text, str) and len(text) + size * (text.count("\n") + 1) > MAX_VALUE_CHARS:
            raise _LimitExceeded(f"indent() would produce more than {MAX_VALUE_CHARS} characters.")
    elif name == "sum":
        start = arg(2, "start", 0)
        if isinstance(start, bool) or not isinstance(start, (int, float, Decimal)):
            raise _LimitExceeded("sum() adds numbers only; use join to put text or lists together.")
    elif name == "replace":
        _check_replace(arg(0, "s"), arg(1, "old"), arg(2, "new"))
    elif name == "batch":
        count = arg(1, "linecount", 1)
        if isinstance(count, int) and count > 1000:
            raise _LimitExceeded("batch() is limited to groups of 1000.")
    elif name == "slice":
        count = arg(1, "slices", 1)
        if isinstance(count, int) and count > 1000:
            raise _LimitExceeded("slice() is limited to 1000 slices.")


@pass_context
def _join_filter(context: Context, value: Iterable[Any], d: str = "", attribute: str | int | None = None) -> str:
    if attribute is not None:
        value = map(make_attrgetter(context.environment, attribute), value)
    return _join_items(value, d)


def _join_items(value: Iterable[Any], separator: Any) -> str:
    separator = _printable(separator)
    parts, size = [], 0
    for item in value:
        text = _printable(item)
        size += len(text) + len(separator)
        if size > MAX_VALUE_CHARS:
            raise _LimitExceeded(f"join() would produce more than {MAX_VALUE_CHARS} characters.")
        parts.append(text)
    return separator.join(parts)


def _string_filter(value: Any) -> str:
    return _printable(value)


@pass_context
def _money_filter(context: Context, value: Any, currency: str | None = None) -> str:
    if value is None:
        return ""
    code = currency if currency is not None else context.get("currency")
    if not code:
        raise ValueError("money needs a currency: {{ amount|money('EUR') }}, or set the currency variable.")
    return format_money(value, str(code), _filter_locale(context))


@pass_context
def _date_filter(context: Context, value: Any, weekday: bool = False) -> str:
    if value is None:
        return ""
    return format_date(value, _filter_locale(context), weekday=bool(weekday))


def _filter_locale(context: Context) -> str:
    state = _CURRENT.get()
    if state is not None:
        return state.locale
    return str(context.get("locale") or FALLBACK_LOCALE)


def _build_environment() -> _Environment:
    env = _Environment(
        undefined=StrictUndefined,
        autoescape=False,  # the text is plain; HTML is derived from it by escaping everything
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        optimized=False,  # nothing is evaluated at compile time, outside the limits
        finalize=_finalize,
        auto_reload=False,
        cache_size=0,
    )
    env.globals.clear()
    env.globals.update(range=_range, dict=_dict, cycler=Cycler, joiner=Joiner, namespace=Namespace)
    own = {"join": _join_filter, "string": _string_filter, "money": _money_filter, "date": _date_filter}
    env.filters = {
        name: _guard_filter(name, own.get(name) or JINJA_FILTERS[name]) for name in FILTERS
    }
    return env


_ENV = _build_environment()
_FILENAME = "<canned response>"
_FORBIDDEN_TAGS: tuple[tuple[type[nodes.Node], str], ...] = (
    (nodes.Extends, "{% extends %}"), (nodes.Include, "{% include %}"),
    (nodes.Import, "{% import %}"), (nodes.FromImport, "{% from … import %}"),
)


@functools.lru_cache(maxsize=512)
def _compile(source: str) -> Template:
    """Parse, check and compile one template source; cached by source text.

    :raise TemplateSyntaxError: bad syntax, an unknown filter, a forbidden tag.
    """
    tree = _ENV.parse(source, filename=_FILENAME)
    for node_type, tag in _FORBIDDEN_TAGS:
        found = next(tree.find_all(node_type), None)
        if found is not None:
            raise TemplateSyntaxError(f"{tag} is not available in canned responses.", found.lineno,
                                      filename=_FILENAME)
    code = _ENV.compile(tree, filename=_FILENAME)
    return _ENV.template_class.from_code(_ENV, code, _ENV.make_globals(None))


def _line_of(exc: BaseException) -> int | None:
    """The template line an exception came from (Jinja rewrites tracebacks to template lines)."""
    if isinstance(exc, TemplateSyntaxError):
        return exc.lineno
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == _FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _as_error(exc: BaseException, part: str, key: str | None = None, locale: str | None = None) -> CannedTemplateError:
    """One clear ``CannedTemplateError`` for anything a template can raise."""
    if isinstance(exc, _UnknownVariable):
        kind, message = "undefined", exc.message or "unknown variable"
    elif isinstance(exc, TemplateSyntaxError):
        kind, message = "syntax", exc.message or "invalid syntax"
    elif isinstance(exc, (_LimitExceeded, RecursionError, MemoryError)):
        kind = "limit"
        message = str(exc) if isinstance(exc, _LimitExceeded) else \
            "the template nests too deeply (a macro or loop calling itself, or brackets in brackets)." \
            if isinstance(exc, RecursionError) else \
            "the message would be too large."
    elif isinstance(exc, _NotData):
        kind, message = "error", str(exc)
    elif isinstance(exc, SecurityError):
        kind, message = "security", f"not allowed: {exc}"
    elif isinstance(exc, UndefinedError):
        kind, message = "undefined", str(exc)
    elif isinstance(exc, TemplateError):
        kind, message = "error", str(exc)
    else:
        kind, message = "error", f"{type(exc).__name__}: {exc}"
    message = message.strip().rstrip(".")
    if len(message) > 300:
        message = message[:299] + "…"
    line = _line_of(exc)
    where = f"Error in the {part}" + (f" on line {line}" if line else "")
    return CannedTemplateError(f"{where}: {message}.", part=part, line=line, kind=kind, key=key, locale=locale)


def _render_part(source: str, variables: Mapping[str, Any], part: str, locale: str,
                 key: str | None = None, limit: int = MAX_OUTPUT_CHARS) -> str:
    """Render one part in the sandbox, within the limits.

    :raise CannedTemplateError: anything at all went wrong.
    """
    token = _CURRENT.set(_Render(locale))
    try:
        template = _compile(source)
        chunks, size = [], 0
        for chunk in template.generate(variables):
            size += len(chunk)
            if size > limit:
                raise _LimitExceeded(f"the rendered {part} is longer than {limit} characters.")
            chunks.append(chunk)
        return "".join(chunks)
    except Exception as exc:  # noqa: BLE001 — every failure of a template is reported the same way
        raise _as_error(exc, part, key, locale) from None
    finally:
        _CURRENT.reset(token)


# --- lookup -------------------------------------------------------------------------------------

_LOCALE_TAG = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")


def _candidates(locale: str | None) -> list[str]:
    """``de-at`` → ["de-at", "de"]; something that is not a language tag → []."""
    tag = (locale or "").strip().lower().replace("_", "-")
    if not _LOCALE_TAG.match(tag):
        return []
    parts = tag.split("-")
    return ["-".join(parts[:n]) for n in range(len(parts), 0, -1)]


@functools.lru_cache(maxsize=None)
def shipped_template(key: str, locale: str) -> TemplateSource | None:
    """The default template Rebound ships for (key, locale), or None."""
    if key not in TEMPLATE_KEYS or locale not in LOCALES:
        return None
    path = TEMPLATES_DIR / locale / f"{key}.txt"
    if not path.is_file():
        return None
    return TemplateSource.from_text(path.read_text(encoding="utf-8"))


def resolve_template(
    key: str,
    locale: str | None,
    *,
    overrides: Mapping[tuple[str, str], TemplateSource] | None = None,
    default_locale: str | None = FALLBACK_LOCALE,
) -> tuple[TemplateSource, str, str]:
    """The template ``render`` would use: ``(source, locale_used, origin)``, origin "tenant" or "shipped".

    Tries the tenant override, then the shipped default, for ``locale`` (and its language), then for
    ``default_locale``, then for English.

    :raise NotFound: no template of that key exists at all.
    """
    tenant = {(k, c): source for (k, loc), source in (overrides or {}).items()
              for c in _candidates(loc)[:1]}
    tried: list[str] = []
    for candidate in _candidates(locale) + _candidates(default_locale) + [FALLBACK_LOCALE]:
        if candidate in tried:
            continue
        tried.append(candidate)
        if (key, candidate) in tenant:
            return tenant[(key, candidate)], candidate, "tenant"
        shipped = shipped_template(key, candidate)
        if shipped is not None:
            return shipped, candidate, "shipped"
    raise NotFound(f"There is no canned response named {key!r}.", {"key": key, "known": list(TEMPLATE_KEYS)})


# --- rendering ----------------------------------------------------------------------------------

_BLANK_CONTEXT = build_context(case_number="")
_URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
_TRAILING_PUNCTUATION = ".,;:!?)]}'\""
_BULLET = re.compile(r"^[-•*] ")


def _linkify(line: str) -> str:
    """Escape one line of text and turn its http(s) addresses into links."""
    out, pos = [], 0
    for match in _URL.finditer(line):
        url = match.group(0).rstrip(_TRAILING_PUNCTUATION)
        out.append(html.escape(line[pos:match.start()]))
        safe = html.escape(url)
        out.append(f'<a href="{safe}">{safe}</a>')
        pos = match.start() + len(url)
    out.append(html.escape(line[pos:]))
    return "".join(out)


def text_to_html(text: str) -> str:
    """HTML for a plain-text message: everything escaped, blocks → ``<p>``, ``- `` lines → ``<ul>``."""
    blocks: list[str] = []
    for block in re.split(r"\n[ \t]*\n", text.strip("\n")):
        paragraph: list[str] = []
        items: list[list[str]] = []

        def flush_paragraph() -> None:
            if paragraph:
                blocks.append("<p>" + "<br>\n".join(paragraph) + "</p>")
                paragraph.clear()

        def flush_items() -> None:
            if items:
                lis = "\n".join("<li>" + "<br>\n".join(item) + "</li>" for item in items)
                blocks.append(f"<ul>\n{lis}\n</ul>")
                items.clear()

        for raw in block.split("\n"):
            if _BULLET.match(raw):
                flush_paragraph()
                items.append([_linkify(raw[2:].strip())])
            elif items and raw[:1].isspace() and raw.strip():
                items[-1].append(_linkify(raw.strip()))
            else:
                flush_items()
                paragraph.append(_linkify(raw.strip()))
        flush_paragraph()
        flush_items()
    return "\n".join(blocks)


def _tidy_text(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n") + "\n"


def _tidy_subject(subject: str, case_number: str) -> str:
    # One line whatever the data holds: a CR/LF in a customer's name must not reach a mail header.
    # No-break spaces (in amounts) stay; control characters and line/paragraph separators become spaces.
    flat = "".join(" " if unicodedata.category(c)[0] == "C" or unicodedata.category(c) in ("Zl", "Zp") else c
                   for c in subject)
    line = re.sub(r" {2,}", " ", flat).strip()
    if case_number and f"[{case_number}]" not in line:
        line = f"[{case_number}] {line}".strip()
    if len(line) > MAX_SUBJECT_CHARS:
        line = line[:MAX_SUBJECT_CHARS - 1].rstrip() + "…"
    return line


def _variables(context: Mapping[str, Any], locale_used: str) -> dict[str, Any]:
    """The documented defaults, the caller's values, and the render's own (locale, signature)."""
    variables = {**_BLANK_CONTEXT, **context}
    for name, value in variables.items():
        try:
            _weigh(value, data=True, limit=10 * MAX_VALUE_CHARS)
        except _NotData as exc:
            raise TypeError(f"Context variable {name!r} holds {exc.described}; pass plain values "
                            f"(see build_context).") from None
    variables["locale"] = locale_used
    if not variables.get("signature"):
        variables["signature"] = _default_signature(locale_used, variables.get("merchant_name"))
    return variables


def _render_source(source: TemplateSource, context: Mapping[str, Any], locale_used: str,
                   key: str | None) -> tuple[str, str]:
    for part, text, limit in (("subject", source.subject, MAX_SUBJECT_SOURCE_CHARS),
                              ("body", source.body, MAX_SOURCE_BYTES)):
        size = len(text.encode("utf-8")) if part == "body" else len(text)
        if size > limit:
            unit = "bytes" if part == "body" else "characters"
            raise CannedTemplateError(f"The {part} template is longer than {limit} {unit}.", part=part, line=None,
                                      kind="limit", key=key, locale=locale_used)
    variables = _variables(context, locale_used)
    subject = _render_part(source.subject, variables, "subject", locale_used, key, limit=10 * MAX_SUBJECT_CHARS)
    body = _render_part(source.body, variables, "body", locale_used, key)
    return _tidy_subject(subject, variables.get("case_number") or ""), _tidy_text(body)


def render(
    key: str,
    locale: str | None,
    context: Mapping[str, Any],
    *,
    overrides: Mapping[tuple[str, str], TemplateSource] | None = None,
    default_locale: str | None = FALLBACK_LOCALE,
) -> Rendered:
    """Render the canned response ``key`` for a customer who reads ``locale``.

    ``context`` is ``build_context(...)`` (missing variables default to None); ``overrides`` are the
    tenant's own templates by (key, locale). The subject is one line, always carries the
    ``[case_number]`` tag and is at most ``MAX_SUBJECT_CHARS`` long.

    :raise NotFound: unknown ``key``.
    :raise CannedTemplateError: (422) the template is broken or broke a sandbox rule or limit.
    :raise TypeError: a context value is not plain data (an ORM object, a function).
    """
    source, locale_used, origin = resolve_template(key, locale, overrides=overrides, default_locale=default_locale)
    subject, text = _render_source(source, context, locale_used, key)
    return Rendered(key=key, locale_used=locale_used, subject=subject, text=text, html=text_to_html(text),
                    origin=origin)


def _unknown_variables(source: str, part: str) -> None:
    tree = _ENV.parse(source, filename=_FILENAME)
    known = set(VARIABLES) | set(_ENV.globals)
    unknown = meta.find_undeclared_variables(tree) - known
    if unknown:
        name = sorted(unknown)[0]
        node = next((n for n in tree.find_all(nodes.Name) if n.name == name), None)
        raise _UnknownVariable(f"'{name}' is undefined: canned responses have no variable of that name",
                               node.lineno if node else 1, filename=_FILENAME)


def validate_source(subject: str, body: str, *, key: str | None = None, locale: str = FALLBACK_LOCALE) -> None:
    """Check a template a tenant wants to save: size, syntax, known variables, then a trial render
    with a full and a sparse sample (``sample_context(key)``) so optional branches run too.

    :raise CannedTemplateError: (422) with the part and line of the first problem.
    """
    for part, text in (("subject", subject), ("body", body)):
        if not text or not text.strip():
            raise CannedTemplateError(f"The {part} is empty.", part=part, line=None, kind="syntax", key=key)
        if "\x00" in text:
            raise CannedTemplateError(f"The {part} contains a NUL character.", part=part, line=None, kind="syntax",
                                      key=key)
    if "\n" in subject.strip() or "\r" in subject.strip():
        raise CannedTemplateError("The subject must be a single line.", part="subject", line=None, kind="syntax",
                                  key=key)
    source = TemplateSource(subject=subject.strip(), body=body)
    for part, text in (("subject", source.subject), ("body", source.body)):
        limit = MAX_SUBJECT_SOURCE_CHARS if part == "subject" else MAX_SOURCE_BYTES
        if (len(text) if part == "subject" else len(text.encode("utf-8"))) > limit:
            unit = "characters" if part == "subject" else "bytes"
            raise CannedTemplateError(f"The {part} template is longer than {limit} {unit}.", part=part, line=None,
                                      kind="limit", key=key)
        try:
            _compile(text)
            _unknown_variables(text, part)
        except TemplateSyntaxError as exc:
            raise _as_error(exc, part, key) from None
    language = (_candidates(locale) or [FALLBACK_LOCALE])[0]
    for sparse in (False, True):
        _render_source(source, sample_context(key, locale=language, sparse=sparse), language, key)
