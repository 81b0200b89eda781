"""Per-tenant return policy: the rules document, and an explainable evaluation.

What belongs here:

* `PolicyRules` -- the pydantic model that validates a tenant's policy JSON
  document (return window, exclusions, restocking fees, auto-approval,
  review triggers, keep-item threshold, store-credit bonus, resolutions).
  `PolicyRules()` on its own is a usable default policy.
* The facts a decision is made from (`CaseFacts`, `LineFacts`): plain frozen
  dataclasses the service layer fills from orders and the customer's request.
* `evaluate(facts, rules)` and its result (`Decision`, `LineDecision`,
  `RuleResult`). Every rule is evaluated and listed, passed or failed, each
  with one plain-English sentence an agent can read, plus what would change
  the outcome. Nothing is decided silently.

What does not belong here: loading policies or orders, persistence, HTTP,
permissions, case state changes (`app.cases.states`) and settlement money
(`app.cases.money`). The module imports only the standard library and
pydantic, never Flask, SQLAlchemy or other app modules, so it can run in a
dry run, a test or a worker without an application context. `evaluate` never
mutates its inputs.

Money is `decimal.Decimal` rounded to cents with ROUND_HALF_UP; percentages
are Decimals in 0..100; no amount is ever negative.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from app.cases.money import quantize  # pure like this module: stdlib only
from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "RULES",
    "AutoApprove",
    "CaseFacts",
    "Decision",
    "Effect",
    "Exclusions",
    "Fees",
    "LineDecision",
    "LineFacts",
    "Outcome",
    "PolicyRules",
    "Resolution",
    "ReviewTriggers",
    "RuleResult",
    "evaluate",
]

Resolution = Literal["refund", "store_credit", "exchange", "replacement", "repair", "keep_item"]
Effect = Literal["reject_line", "review", "info"]
Outcome = Literal["approve", "review", "reject"]

#: Names of every rule `evaluate` reports, per line first, then per case.
RULES: tuple[str, ...] = (
    "return_window",
    "final_sale",
    "excluded_category",
    "excluded_sku",
    "photo",
    "restocking_fee",
    "has_lines",
    "order_value_review",
    "return_history",
    "auto_approve_enabled",
    "auto_approve_order_value",
    "auto_approve_reasons",
    "keep_item",
    "preferred_resolution",
)

_ZERO = Decimal("0.00")
_HUNDRED = Decimal(100)

# ---------------------------------------------------------------------------
# The policy document
# ---------------------------------------------------------------------------

Percent = Annotated[Decimal, Field(ge=0, le=100, allow_inf_nan=False)]
Money = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]


def _clean_names(values: Iterable[str]) -> list[str]:
    """Strip names, drop blanks and case-insensitive duplicates, keep order.

    Policy editors paste lists with stray spaces and blank rows; matching is
    case-insensitive anyway, so "Clearance" and "clearance" are one entry.
    """
    seen: set[str] = set()
    cleaned: list[str] = []
    for value in values:
        name = value.strip()
        if name and name.casefold() not in seen:
            seen.add(name.casefold())
            cleaned.append(name)
    return cleaned


class _StrictModel(BaseModel):
    """Base for the nested policy sections: unknown keys are errors, not ignored.

    A typo like "restocking_percnt" silently ignored would leave a tenant on
    a policy they did not write, so it must fail validation instead.
    """

    model_config = ConfigDict(extra="forbid")


class Exclusions(_StrictModel):
    """What can never be returned. Categories and SKUs match case-insensitively."""

    final_sale: bool = True
    categories: list[str] = Field(default_factory=list)
    skus: list[str] = Field(default_factory=list)

    @field_validator("categories", "skus")
    @classmethod
    def _clean(cls, values: list[str]) -> list[str]:
        return _clean_names(values)


class Fees(_StrictModel):
    """Restocking fees in percent: a default, overridden per reason code."""

    restocking_percent: Percent = Decimal(0)
    by_reason: dict[str, Percent] = Field(default_factory=dict)

    @field_validator("by_reason")
    @classmethod
    def _unique_reasons(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        cleaned: dict[str, Decimal] = {}
        seen: set[str] = set()
        for code, percent in value.items():
            name = code.strip()
            if not name:
                raise ValueError("reason codes in fees.by_reason must not be blank")
            # Reason codes match case-insensitively, so two spellings of one
            # code with different fees would be ambiguous.
            if name.casefold() in seen:
                raise ValueError(f"reason code {name!r} appears more than once in fees.by_reason")
            seen.add(name.casefold())
            cleaned[name] = percent
        return cleaned

    def percent_for(self, reason_code: str | None) -> tuple[Decimal, str | None]:
        """Return (fee percent, matching by_reason key or None) for a reason code."""
        if reason_code is not None:
            wanted = reason_code.strip().casefold()
            for code, percent in self.by_reason.items():
                if code.casefold() == wanted:
                    return percent, code
        return self.restocking_percent, None


class AutoApprove(_StrictModel):
    """When a request that passes every rule may be approved without an agent."""

    enabled: bool = True
    max_order_value: Money | None = None
    # None means any reason; an empty list means no reason qualifies.
    reasons: list[str] | None = None

    @field_validator("reasons")
    @classmethod
    def _clean(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else _clean_names(values)


class ReviewTriggers(_StrictModel):
    """Conditions that send an otherwise eligible request to an agent."""

    order_value_above: Money | None = None
    # Review when the customer's returns in the last 90 days are >= this.
    max_returns_90_days: int | None = Field(default=3, ge=0)
    photo_required_missing: bool = True


def _default_resolutions() -> list[Resolution]:
    return ["refund", "store_credit", "exchange"]


class PolicyRules(BaseModel):
    """A tenant's return policy, validated from its JSON document.

    Every field has a default, so `PolicyRules()` is a sensible policy: 30
    days from delivery, final-sale items excluded, no fees, auto-approval on,
    review from the third return in 90 days or a missing required photo, and
    refund, store credit or exchange offered.
    """

    model_config = ConfigDict(extra="forbid")

    return_window_days: int = Field(default=30, ge=0, le=3650)
    # "delivery" falls back to the order date for lines without a delivery date.
    window_starts: Literal["delivery", "order"] = "delivery"
    exclusions: Exclusions = Field(default_factory=Exclusions)
    fees: Fees = Field(default_factory=Fees)
    auto_approve: AutoApprove = Field(default_factory=AutoApprove)
    review_triggers: ReviewTriggers = Field(default_factory=ReviewTriggers)
    # At or below this refundable value the customer may keep the item.
    keep_item_threshold: Money | None = None
    store_credit_bonus_percent: Percent = Decimal(0)
    resolutions: list[Resolution] = Field(default_factory=_default_resolutions, min_length=1)

    @field_validator("resolutions")
    @classmethod
    def _dedupe(cls, values: list[Resolution]) -> list[Resolution]:
        return list(dict.fromkeys(values))


# ---------------------------------------------------------------------------
# Facts
# ---------------------------------------------------------------------------


def _as_money(value: Any, what: str) -> Decimal:
    """Coerce a money-like value (Decimal, int or numeric str) to a non-negative Decimal."""
    # Floats have already lost cents, and bools are never amounts.
    if isinstance(value, (bool, float)) or not isinstance(value, (Decimal, int, str)):
        raise TypeError(f"{what} must be a Decimal, int or numeric string, not {type(value).__name__}.")
    number = Decimal(value)
    if not number.is_finite() or number < 0:
        raise ValueError(f"{what} must be a finite, non-negative number, got {value!r}.")
    return number


def _as_date(value: date | None, what: str) -> date | None:
    """Accept a date (a datetime is reduced to its date, since date - datetime fails)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if not isinstance(value, date):
        raise TypeError(f"{what} must be a date, not {type(value).__name__}.")
    return value


def _as_count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}.")
    if value < 0:
        raise ValueError(f"{what} must not be negative, got {value}.")
    return value


@dataclass(frozen=True)
class LineFacts:
    """What is known about one line the customer wants to return.

    `key` identifies the line within the request (e.g. the order line id).
    Invalid values (negative quantity or price, floats) fail on creation, so
    any `LineFacts` that exists can be evaluated.
    """

    key: str
    sku: str
    title: str
    quantity: int
    unit_price: Decimal
    category: str | None = None
    tags: tuple[str, ...] = ()
    final_sale: bool = False
    reason_code: str | None = None
    reason_requires_photo: bool = False
    has_photo: bool = False
    ordered_on: date | None = None
    delivered_on: date | None = None
    order_number: str | None = None

    def __post_init__(self) -> None:
        # Frozen dataclass: normalised values go in through object.__setattr__.
        object.__setattr__(self, "quantity", _as_count(self.quantity, "Quantity"))
        object.__setattr__(self, "unit_price", _as_money(self.unit_price, "Unit price"))
        object.__setattr__(self, "tags", tuple(self.tags))
        object.__setattr__(self, "ordered_on", _as_date(self.ordered_on, "ordered_on"))
        object.__setattr__(self, "delivered_on", _as_date(self.delivered_on, "delivered_on"))


@dataclass(frozen=True)
class CaseFacts:
    """What is known about the whole request at the time of evaluation.

    `today` is passed in rather than read from the clock so that decisions
    are reproducible (dry runs, tests, re-evaluation of an old case).
    `customer_returns_90_days` counts the customer's *previous* returns.
    """

    today: date
    lines: tuple[LineFacts, ...]
    order_value: Decimal = Decimal(0)
    customer_returns_90_days: int = 0
    preferred_resolution: str | None = None

    def __post_init__(self) -> None:
        today = _as_date(self.today, "today")
        if today is None:
            raise TypeError("today must be a date, not None.")
        object.__setattr__(self, "today", today)
        object.__setattr__(self, "lines", tuple(self.lines))
        object.__setattr__(self, "order_value", _as_money(self.order_value, "Order value"))
        object.__setattr__(
            self,
            "customer_returns_90_days",
            _as_count(self.customer_returns_90_days, "customer_returns_90_days"),
        )


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleResult:
    """The outcome of one rule, for one line (`line` = its key) or the case (None).

    `effect` says what a *failure* does: "reject_line" makes the line
    ineligible, "review" sends the case to an agent, "info" changes nothing.
    `why` is one full sentence with the facts behind the result.
    """

    rule: str
    passed: bool
    why: str
    line: str | None = None
    effect: Effect = "info"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return {"rule": self.rule, "passed": self.passed, "why": self.why, "line": self.line, "effect": self.effect}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuleResult:
        """Rebuild a result from `to_dict` output."""
        return cls(
            rule=data["rule"],
            passed=bool(data["passed"]),
            why=data["why"],
            line=data.get("line"),
            effect=data.get("effect", "info"),
        )


@dataclass(frozen=True)
class LineDecision:
    """The verdict for one line: eligible or not, its fee, and its rule results."""

    key: str
    eligible: bool
    fee_percent: Decimal
    results: tuple[RuleResult, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict (the fee percent as a string)."""
        return {
            "key": self.key,
            "eligible": self.eligible,
            "fee_percent": str(self.fee_percent),
            "results": [result.to_dict() for result in self.results],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LineDecision:
        """Rebuild a line decision from `to_dict` output."""
        return cls(
            key=data["key"],
            eligible=bool(data["eligible"]),
            fee_percent=Decimal(str(data["fee_percent"])),
            results=tuple(RuleResult.from_dict(item) for item in data["results"]),
        )


@dataclass(frozen=True)
class Decision:
    """The explainable result of `evaluate`.

    * `outcome` -- "approve" (auto-approve), "review" (an agent decides) or
      "reject" (no line is eligible);
    * `results` -- every rule result, per line first, then case-level;
    * `lines` -- the per-line verdicts, in request order;
    * `options` -- resolutions to offer (empty when rejected);
    * `store_credit_bonus_percent` -- the bonus if store credit is chosen
      (0 when store credit is not offered);
    * `refundable_value` -- value of the eligible lines after restocking fees;
    * `what_would_change` -- one sentence per failed rule that matters,
      saying what would flip it;
    * `summary` -- one sentence for the agent.
    """

    outcome: Outcome
    results: tuple[RuleResult, ...]
    lines: tuple[LineDecision, ...]
    options: tuple[str, ...]
    store_credit_bonus_percent: Decimal
    refundable_value: Decimal
    what_would_change: tuple[str, ...]
    summary: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict; Decimals become strings such as "12.50"."""
        return {
            "outcome": self.outcome,
            "results": [result.to_dict() for result in self.results],
            "lines": [line.to_dict() for line in self.lines],
            "options": list(self.options),
            "store_credit_bonus_percent": str(self.store_credit_bonus_percent),
            "refundable_value": str(self.refundable_value),
            "what_would_change": list(self.what_would_change),
            "summary": self.summary,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        """Rebuild a decision from `to_dict` output (e.g. one stored as JSON)."""
        return cls(
            outcome=data["outcome"],
            results=tuple(RuleResult.from_dict(item) for item in data["results"]),
            lines=tuple(LineDecision.from_dict(item) for item in data["lines"]),
            options=tuple(data["options"]),
            store_credit_bonus_percent=Decimal(str(data["store_credit_bonus_percent"])),
            refundable_value=Decimal(str(data["refundable_value"])),
            what_would_change=tuple(data["what_would_change"]),
            summary=data["summary"],
        )


# ---------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Finding:
    """A rule result plus the texts that only matter when it fails.

    `change` feeds `Decision.what_would_change`; `phrase` is the short clause
    used in the one-sentence summary.
    """

    result: RuleResult
    change: str | None = None
    phrase: str | None = None

    @property
    def failed(self) -> bool:
        return not self.result.passed


def _money(value: Decimal) -> str:
    return str(quantize(value))


def _pct(value: Decimal) -> str:
    # Decimal("10.00") -> "10", Decimal("12.5") -> "12.5"; never "1E+1".
    return format(value.normalize(), "f")


def _join(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _ago(start: date, today: date) -> str:
    elapsed = (today - start).days
    if elapsed == 0:
        return "today"
    if elapsed > 0:
        return f"{_plural(elapsed, 'day')} ago"
    return f"{_plural(-elapsed, 'day')} from now"


def _cap(text: str) -> str:
    """Capitalise the first letter only (str.capitalize would lower 'SKU')."""
    return text[:1].upper() + text[1:]


def _line_label(line: LineFacts) -> str:
    return f"line {line.key} ({line.title})" if line.title else f"line {line.key}"


def _reason_label(line: LineFacts) -> str:
    return f"reason '{line.reason_code}'" if line.reason_code else "the return reason"


def _window_finding(line: LineFacts, today: date, rules: PolicyRules) -> _Finding:
    days = rules.return_window_days
    window = f"{days}-day"
    label = _line_label(line)

    start: date | None
    if rules.window_starts == "delivery":
        start = line.delivered_on or line.ordered_on
        fallback = line.delivered_on is None and line.ordered_on is not None
    else:
        start = line.ordered_on
        fallback = False

    if start is None:
        # Unknown dates are a data gap, not the customer's fault: an agent
        # checks instead of the line being rejected.
        if rules.window_starts == "delivery":
            why = (
                f"Neither a delivery date nor an order date is recorded, so the {window} "
                "return window cannot be checked automatically."
            )
            missing = "the delivery or order date"
        else:
            why = f"No order date is recorded, so the {window} return window cannot be checked automatically."
            missing = "the order date"
        return _Finding(
            RuleResult("return_window", False, why, line.key, "review"),
            change=f"Record {missing} for {label} so the return window can be checked automatically.",
            phrase=f"the return window for line {line.key} cannot be checked (no date recorded)",
        )

    when = _ago(start, today)
    if rules.window_starts == "order":
        fact, basis = f"ordered on {start.isoformat()}, {when}", "of the order date"
    elif fallback:
        fact = f"no delivery date is recorded, so it counts from the order date, {start.isoformat()}, {when}"
        basis = "of the order date"
    else:
        fact, basis = f"delivered on {start.isoformat()}, {when}", "of delivery"

    if (today - start).days <= days:
        return _Finding(RuleResult("return_window", True, f"Within the {window} window: {fact}.", line.key))

    # Only computed when the window has closed, so start + days < today and
    # the addition cannot overflow date.max.
    deadline = start + timedelta(days=days)
    why = f"{_cap(fact)}; the return window is {_plural(days, 'day')}, so it closed on {deadline.isoformat()}."
    return _Finding(
        RuleResult("return_window", False, why, line.key, "reject_line"),
        change=(
            f"{_cap(label)} would be eligible if the return had been requested by "
            f"{deadline.isoformat()} (within {_plural(days, 'day')} {basis})."
        ),
        phrase=f"outside the {window} return window",
    )


def _final_sale_finding(line: LineFacts, rules: PolicyRules) -> _Finding:
    label = _line_label(line)
    if not line.final_sale:
        return _Finding(RuleResult("final_sale", True, "The item is not marked final sale.", line.key))
    if not rules.exclusions.final_sale:
        return _Finding(
            RuleResult(
                "final_sale", True, "The item is marked final sale, but this policy accepts final-sale returns.", line.key
            )
        )
    return _Finding(
        RuleResult(
            "final_sale",
            False,
            "The item is marked final sale, and this policy does not accept final-sale returns.",
            line.key,
            "reject_line",
        ),
        change=f"{_cap(label)} would be eligible if the policy accepted final-sale returns.",
        phrase="marked final sale",
    )


def _category_finding(line: LineFacts, rules: PolicyRules) -> _Finding:
    excluded = {name.casefold(): name for name in rules.exclusions.categories}
    label = _line_label(line)
    if not excluded:
        return _Finding(RuleResult("excluded_category", True, "This policy excludes no categories.", line.key))

    # Stores often model collections ("Clearance", "Swimwear") as tags rather
    # than as the product category, so a tag naming an excluded category
    # excludes the item too.
    match: tuple[str, str] | None = None  # (what matched, the policy's spelling)
    if line.category and line.category.strip().casefold() in excluded:
        match = (f"Category '{line.category}'", excluded[line.category.strip().casefold()])
    else:
        for tag in line.tags:
            if tag.strip().casefold() in excluded:
                match = (f"Tag '{tag}'", excluded[tag.strip().casefold()])
                break

    if match is None:
        listed = ", ".join(rules.exclusions.categories)
        if line.category:
            why = f"Category '{line.category}' is not among the excluded categories ({listed})."
        else:
            why = f"The item has no category and no tag among the excluded categories ({listed})."
        return _Finding(RuleResult("excluded_category", True, why, line.key))

    what, category = match
    if what.startswith("Category"):
        why = f"{what} is excluded from returns by this policy."
    else:
        why = f"{what} matches the excluded category '{category}', so the item cannot be returned."
    return _Finding(
        RuleResult("excluded_category", False, why, line.key, "reject_line"),
        change=f"{_cap(label)} would be eligible if the policy did not exclude the category '{category}'.",
        phrase=f"in the excluded category '{category}'",
    )


def _sku_finding(line: LineFacts, rules: PolicyRules) -> _Finding:
    label = _line_label(line)
    excluded = {sku.casefold() for sku in rules.exclusions.skus}
    if not excluded:
        return _Finding(RuleResult("excluded_sku", True, "This policy excludes no SKUs.", line.key))
    if line.sku.strip().casefold() not in excluded:
        return _Finding(RuleResult("excluded_sku", True, f"SKU '{line.sku}' is not on the excluded list.", line.key))
    return _Finding(
        RuleResult("excluded_sku", False, f"SKU '{line.sku}' is excluded from returns by this policy.", line.key, "reject_line"),
        change=f"{_cap(label)} would be eligible if the policy did not exclude SKU '{line.sku}'.",
        phrase=f"an excluded SKU ('{line.sku}')",
    )


def _photo_finding(line: LineFacts, rules: PolicyRules) -> _Finding:
    reason = _reason_label(line)
    if not line.reason_requires_photo:
        return _Finding(RuleResult("photo", True, f"{_cap(reason)} does not require a photo.", line.key))
    if line.has_photo:
        return _Finding(RuleResult("photo", True, f"A photo is attached, as {reason} requires.", line.key))
    if not rules.review_triggers.photo_required_missing:
        why = f"{_cap(reason)} asks for a photo and none is attached; this policy does not send that to review."
        return _Finding(RuleResult("photo", False, why, line.key, "info"))
    return _Finding(
        RuleResult(
            "photo",
            False,
            f"{_cap(reason)} requires a photo and none is attached, so the case needs review.",
            line.key,
            "review",
        ),
        change=f"Attach a photo of the item for {_line_label(line)} to avoid review.",
        phrase=f"a required photo is missing for line {line.key}",
    )


def _fee_finding(line: LineFacts, rules: PolicyRules) -> tuple[_Finding, Decimal]:
    percent, matched = rules.fees.percent_for(line.reason_code)
    if percent == 0:
        why = "No restocking fee applies."
    elif matched is not None:
        why = f"A {_pct(percent)}% restocking fee applies for reason '{matched}'."
    else:
        why = f"A {_pct(percent)}% restocking fee applies (the policy's default)."
    return _Finding(RuleResult("restocking_fee", True, why, line.key)), percent


def _case_findings(facts: CaseFacts, rules: PolicyRules) -> list[_Finding]:
    """Case-level review and auto-approval rules (keep-item and preference come later)."""
    findings: list[_Finding] = []
    value = facts.order_value
    triggers = rules.review_triggers
    auto = rules.auto_approve

    if facts.lines:
        findings.append(
            _Finding(RuleResult("has_lines", True, f"The request contains {_plural(len(facts.lines), 'line')}."))
        )
    else:
        findings.append(
            _Finding(
                RuleResult("has_lines", False, "The request contains no items to return.", None, "reject_line"),
                change="Add at least one item to the return request.",
                phrase="the request contains no items",
            )
        )

    limit = triggers.order_value_above
    if limit is None:
        findings.append(_Finding(RuleResult("order_value_review", True, "This policy has no order-value review threshold.")))
    elif value <= limit:
        findings.append(
            _Finding(
                RuleResult(
                    "order_value_review",
                    True,
                    f"Order value {_money(value)} is not above the {_money(limit)} review threshold.",
                )
            )
        )
    else:
        findings.append(
            _Finding(
                RuleResult(
                    "order_value_review",
                    False,
                    f"Order value {_money(value)} is above the {_money(limit)} review threshold, so the case needs review.",
                    None,
                    "review",
                ),
                change=f"Would not need review if the order value were at most {_money(limit)}.",
                phrase=f"order value {_money(value)} is above the {_money(limit)} review threshold",
            )
        )

    most = triggers.max_returns_90_days
    count = facts.customer_returns_90_days
    made = f"The customer has made {_plural(count, 'return')} in the last 90 days"
    if most is None:
        findings.append(
            _Finding(RuleResult("return_history", True, "This policy does not limit how often a customer returns."))
        )
    elif count < most:
        findings.append(_Finding(RuleResult("return_history", True, f"{made}, below the review limit of {most}.")))
    else:
        findings.append(
            _Finding(
                RuleResult(
                    "return_history", False, f"{made}; {most} or more sends the case to review.", None, "review"
                ),
                change=(
                    f"Would not need review if the customer had made fewer than {_plural(most, 'return')} "
                    "in the last 90 days."
                ),
                phrase=f"the customer has made {_plural(count, 'return')} in the last 90 days (review from {most})",
            )
        )

    if auto.enabled:
        findings.append(_Finding(RuleResult("auto_approve_enabled", True, "Auto-approval is enabled in this policy.")))
    else:
        findings.append(
            _Finding(
                RuleResult(
                    "auto_approve_enabled",
                    False,
                    "Auto-approval is turned off in this policy, so an agent reviews every request.",
                    None,
                    "review",
                ),
                change="Would be auto-approved if auto-approval were enabled in the policy.",
                phrase="auto-approval is turned off",
            )
        )

    cap = auto.max_order_value
    if cap is None:
        findings.append(
            _Finding(RuleResult("auto_approve_order_value", True, "Auto-approval has no order-value limit."))
        )
    elif value <= cap:
        findings.append(
            _Finding(
                RuleResult(
                    "auto_approve_order_value",
                    True,
                    f"Order value {_money(value)} is within the {_money(cap)} auto-approval limit.",
                )
            )
        )
    else:
        findings.append(
            _Finding(
                RuleResult(
                    "auto_approve_order_value",
                    False,
                    f"Order value {_money(value)} is above the {_money(cap)} auto-approval limit.",
                    None,
                    "review",
                ),
                change=f"Would be auto-approved if the order value were at most {_money(cap)}.",
                phrase=f"order value {_money(value)} is above the {_money(cap)} auto-approval limit",
            )
        )

    findings.append(_reasons_finding(facts, rules))
    return findings


def _reasons_finding(facts: CaseFacts, rules: PolicyRules) -> _Finding:
    allowed = rules.auto_approve.reasons
    if allowed is None:
        return _Finding(RuleResult("auto_approve_reasons", True, "Auto-approval applies to any return reason."))
    if not allowed:
        return _Finding(
            RuleResult(
                "auto_approve_reasons",
                False,
                "This policy lists no reasons that may be auto-approved, so every request is reviewed.",
                None,
                "review",
            ),
            change="Would be auto-approved if the policy listed the return reasons that may be auto-approved.",
            phrase="the policy lists no auto-approvable reasons",
        )
    wanted = {reason.casefold() for reason in allowed}
    offenders: list[str] = []
    for line in facts.lines:
        if line.reason_code is None:
            offenders.append(f"line {line.key} gives no reason")
        elif line.reason_code.strip().casefold() not in wanted:
            offenders.append(f"line {line.key} has reason '{line.reason_code}'")
    listed = ", ".join(allowed)
    if not offenders:
        return _Finding(
            RuleResult(
                "auto_approve_reasons", True, f"Every line's reason is one of the auto-approved reasons ({listed})."
            )
        )
    return _Finding(
        RuleResult(
            "auto_approve_reasons",
            False,
            f"Auto-approval only covers the reasons {listed}, but {_join(offenders)}.",
            None,
            "review",
        ),
        change=f"Would be auto-approved if every line's reason were one of: {listed}.",
        phrase=f"{_join(offenders)}, which is not auto-approved"
        if len(offenders) == 1
        else f"{_join(offenders)}, which are not auto-approved",
    )


def _line_refundable(line: LineFacts, fee_percent: Decimal) -> Decimal:
    # Same per-line rounding as money.settlement_amounts(kind="refund"), so
    # the value quoted at decision time equals what a full refund pays.
    gross = quantize(line.unit_price * line.quantity)
    fee = quantize(line.unit_price * line.quantity * fee_percent / _HUNDRED)
    return max(_ZERO, gross - fee)


def _label_resolution(name: str) -> str:
    return name.replace("_", " ")


def evaluate(facts: CaseFacts, rules: PolicyRules) -> Decision:
    """Evaluate a return request against a tenant's policy and explain the result.

    Per line: return window, final-sale, category and SKU exclusions (a
    failure makes the line ineligible), the photo rule (a missing required
    photo sends the case to review when the policy says so) and the
    restocking fee. Per case: order-value and return-history review triggers
    and the auto-approval conditions, then the keep-item threshold and the
    customer's preferred resolution.

    The outcome is "reject" when no line is eligible (including an empty
    request), "review" when any review rule failed or only some lines are
    eligible, and "approve" otherwise. Every rule is listed in
    `Decision.results`, passed or failed. Inputs are never mutated, so this
    is safe for dry runs.
    """
    line_decisions: list[LineDecision] = []
    line_findings: list[tuple[LineFacts, list[_Finding]]] = []
    refundable = _ZERO

    for line in facts.lines:
        fee_finding, fee_percent = _fee_finding(line, rules)
        findings = [
            _window_finding(line, facts.today, rules),
            _final_sale_finding(line, rules),
            _category_finding(line, rules),
            _sku_finding(line, rules),
            _photo_finding(line, rules),
            fee_finding,
        ]
        eligible = not any(f.failed and f.result.effect == "reject_line" for f in findings)
        if eligible:
            refundable += _line_refundable(line, fee_percent)
        line_findings.append((line, findings))
        line_decisions.append(
            LineDecision(
                key=line.key,
                eligible=eligible,
                fee_percent=fee_percent,
                results=tuple(f.result for f in findings),
            )
        )

    case_findings = _case_findings(facts, rules)
    eligible_count = sum(1 for decision in line_decisions if decision.eligible)
    ineligible = [(line, findings) for (line, findings), d in zip(line_findings, line_decisions) if not d.eligible]
    # Review findings on a line that is rejected anyway are still listed in
    # the results, but they neither decide the outcome nor appear in the
    # summary or what_would_change: attaching a photo to an item that is out
    # of the window changes nothing.
    eligible_findings = [
        f for (_, fs), d in zip(line_findings, line_decisions) if d.eligible for f in fs
    ]
    review_findings = [
        f for f in [*eligible_findings, *case_findings] if f.failed and f.result.effect == "review"
    ]

    outcome: Outcome
    if eligible_count == 0:
        outcome = "reject"
    elif review_findings or ineligible:
        outcome = "review"
    else:
        outcome = "approve"

    # Nothing is offered on a rejected request: there is nothing to resolve.
    options: list[str] = []
    if outcome != "reject":
        # keep_item is never offered from the list itself, only via the threshold.
        options = [name for name in rules.resolutions if name != "keep_item"]
    case_findings.append(_keep_item_finding(rules, refundable, outcome, options))
    case_findings.append(_preference_finding(facts, options, outcome))
    bonus = rules.store_credit_bonus_percent if "store_credit" in options else Decimal(0)

    all_findings = [*(f for _, fs in line_findings for f in fs), *case_findings]
    moot = {id(f) for _, fs in ineligible for f in fs if f.result.effect != "reject_line"}
    what_would_change = tuple(
        dict.fromkeys(f.change for f in all_findings if f.failed and f.change and id(f) not in moot)
    )

    return Decision(
        outcome=outcome,
        results=tuple(f.result for f in all_findings),
        lines=tuple(line_decisions),
        options=tuple(options),
        store_credit_bonus_percent=bonus,
        refundable_value=quantize(refundable),
        what_would_change=what_would_change,
        summary=_summary(outcome, facts, ineligible, review_findings),
    )


def _keep_item_finding(rules: PolicyRules, refundable: Decimal, outcome: Outcome, options: list[str]) -> _Finding:
    """Decide whether the customer may keep the goods; appends "keep_item" to `options`."""
    threshold = rules.keep_item_threshold
    if threshold is None:
        return _Finding(
            RuleResult("keep_item", True, "This policy has no keep-item threshold, so returned items are sent back.")
        )
    if outcome == "reject":
        return _Finding(
            RuleResult("keep_item", False, "No line is eligible, so keeping the item is not offered.")
        )
    if refundable <= threshold:
        options.append("keep_item")
        return _Finding(
            RuleResult(
                "keep_item",
                True,
                f"The refundable value {_money(refundable)} is at or below the {_money(threshold)} keep-item "
                "threshold, so the customer may keep the item.",
            )
        )
    return _Finding(
        RuleResult(
            "keep_item",
            False,
            f"The refundable value {_money(refundable)} is above the {_money(threshold)} keep-item threshold, "
            "so the item must be sent back.",
        )
    )


def _preference_finding(facts: CaseFacts, options: list[str], outcome: Outcome) -> _Finding:
    wanted = facts.preferred_resolution
    if wanted is None:
        return _Finding(RuleResult("preferred_resolution", True, "The customer did not state a preferred resolution."))
    label = _label_resolution(wanted)
    if wanted in options:
        return _Finding(
            RuleResult("preferred_resolution", True, f"The customer's preferred resolution, {label}, is offered.")
        )
    if outcome == "reject":
        why = f"The customer asked for {label}, but nothing is offered because no line is eligible."
    else:
        offered = _join([_label_resolution(name) for name in options])
        why = f"The customer asked for {label}, which this policy does not offer (it offers {offered})."
    return _Finding(RuleResult("preferred_resolution", False, why))


def _summary(
    outcome: Outcome,
    facts: CaseFacts,
    ineligible: list[tuple[LineFacts, list[_Finding]]],
    review_findings: list[_Finding],
) -> str:
    """One sentence for the agent, leading with the outcome."""

    def why_not(findings: list[_Finding]) -> str:
        return _join([f.phrase for f in findings if f.failed and f.result.effect == "reject_line" and f.phrase])

    if outcome == "approve":
        count = len(facts.lines)
        if count == 1:
            return "Auto-approved: the single line is within policy."
        return f"Auto-approved: all {count} lines are within policy."

    if outcome == "reject":
        if not facts.lines:
            return "Rejected: no line is eligible — the request contains no items to return."
        reasons = [f"line {line.key} is {why_not(findings)}" for line, findings in ineligible]
        return f"Rejected: no line is eligible — {'; '.join(reasons)}."

    reasons = [f"line {line.key} is {why_not(findings)} and cannot be returned" for line, findings in ineligible]
    reasons += [f.phrase for f in review_findings if f.phrase]
    return f"Needs review: {'; '.join(dict.fromkeys(reasons))}."
