"""Settlement arithmetic for return cases: how much money moves, and why.

What belongs here: turning accepted return lines (unit price, accepted
quantity, restocking-fee percent) into the amounts of a settlement -- gross
value, restocking fees, store-credit bonus, the amount credited and, for
exchanges, the price difference -- plus the one rounding helper, `quantize`,
that every money figure in Rebound goes through.

What does not belong here: deciding *whether* a line is returnable or which
fee percent applies (that is `app.cases.policy`), talking to payment
providers, persistence, tenants or HTTP. The module imports only the standard
library so it can be used and tested without Flask or a database.

Conventions, enforced rather than hoped for:

* money is always `decimal.Decimal`, never `float` (floats cannot represent
  cents exactly, so they are refused with a `TypeError`);
* every figure is rounded to cents with ROUND_HALF_UP, the rounding customers
  and accountants expect ("half a cent rounds up");
* no figure is ever negative: a customer can owe money on an exchange, and
  that is reported as its own non-negative `customer_owes` figure rather than
  as a negative refund.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Literal, get_args

__all__ = [
    "CENT",
    "KINDS",
    "Amounts",
    "SettlementKind",
    "SettlementLine",
    "quantize",
    "settlement_amounts",
]

SettlementKind = Literal["refund", "store_credit", "exchange", "replacement", "repair", "keep_item"]

#: Every settlement kind `settlement_amounts` understands, in display order.
KINDS: tuple[str, ...] = get_args(SettlementKind)

#: The smallest unit money is rounded to.
CENT = Decimal("0.01")

_ZERO = Decimal("0.00")
_HUNDRED = Decimal(100)

# Kinds where no money changes hands: the customer gets goods or a service back.
_NO_MONEY_KINDS = frozenset({"replacement", "repair"})


def _to_decimal(value: Decimal | int, what: str) -> Decimal:
    """Return `value` as a finite Decimal, refusing floats and bools outright."""
    # bool is a subclass of int; True as a price is always a bug, never intent.
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise TypeError(f"{what} must be a Decimal or an int, not {type(value).__name__}.")
    result = Decimal(value)
    if not result.is_finite():
        raise ValueError(f"{what} must be a finite number, got {value}.")
    return result


def _check_percent(value: Decimal | int, what: str) -> Decimal:
    """Validate a percentage in 0..100 and return it as a Decimal."""
    percent = _to_decimal(value, what)
    if percent < 0 or percent > _HUNDRED:
        raise ValueError(f"{what} must be between 0 and 100, got {percent}.")
    return percent


def quantize(value: Decimal | int) -> Decimal:
    """Round a money value to cents (0.01) with ROUND_HALF_UP.

    Accepts a Decimal or an int; floats are refused with `TypeError` because
    they have already lost cents before they get here. Negative zero comes
    back as plain ``0.00`` so that it never prints as "-0.00".
    """
    number = _to_decimal(value, "Amount")
    # A context wide enough for the number's integer digits plus the cents, so
    # that even absurdly large values round instead of raising InvalidOperation.
    context = Context(prec=max(28, number.adjusted() + 4))
    result = number.quantize(CENT, rounding=ROUND_HALF_UP, context=context)
    return result.copy_abs() if result.is_zero() else result


@dataclass(frozen=True)
class SettlementLine:
    """One accepted return line as far as money is concerned.

    `quantity` is the *accepted* quantity (after inspection, say); choosing it
    is the caller's job. `fee_percent` is the restocking fee for this line in
    percent (0..100), usually `LineDecision.fee_percent` from the policy.
    Invalid values raise `ValueError` (or `TypeError` for floats) on creation.
    """

    unit_price: Decimal
    quantity: int
    fee_percent: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        price = _to_decimal(self.unit_price, "Unit price")
        if price < 0:
            raise ValueError(f"Unit price must not be negative, got {price}.")
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, int):
            raise TypeError(f"Quantity must be an int, not {type(self.quantity).__name__}.")
        if self.quantity < 0:
            raise ValueError(f"Quantity must not be negative, got {self.quantity}.")
        fee = _check_percent(self.fee_percent, "Fee percent")
        # Frozen dataclass: normalise ints to Decimal through object.__setattr__.
        object.__setattr__(self, "unit_price", price)
        object.__setattr__(self, "fee_percent", fee)


@dataclass(frozen=True)
class Amounts:
    """The money figures of one settlement, all non-negative and in cents.

    * `gross` -- value of the returned goods (sum of unit price x quantity);
    * `fees` -- restocking fees withheld;
    * `bonus` -- store-credit bonus added (only for store credit);
    * `amount` -- what is credited to the customer (refund, credit, or the
      refunded difference on an exchange); 0 for replacement and repair;
    * `price_difference` -- for exchanges, how far the new item's value is
      from the credited value, in either direction; otherwise 0;
    * `customer_owes` -- for exchanges to a dearer item, what the customer
      has to pay on top; otherwise 0.
    """

    gross: Decimal
    fees: Decimal
    bonus: Decimal
    amount: Decimal
    price_difference: Decimal
    customer_owes: Decimal = field(default=_ZERO)

    def __post_init__(self) -> None:
        # Enforce the module's promises at the type: cents, and never negative.
        for name in ("gross", "fees", "bonus", "amount", "price_difference", "customer_owes"):
            value = quantize(getattr(self, name))
            if value < 0:
                raise ValueError(f"{name} must not be negative, got {value}.")
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict[str, str]:
        """Return the figures as a JSON-safe dict of strings like ``"12.50"``."""
        return {
            "gross": str(self.gross),
            "fees": str(self.fees),
            "bonus": str(self.bonus),
            "amount": str(self.amount),
            "price_difference": str(self.price_difference),
            "customer_owes": str(self.customer_owes),
        }


def settlement_amounts(
    lines: Sequence[SettlementLine],
    kind: SettlementKind,
    bonus_percent: Decimal = Decimal(0),
    exchange_value: Decimal | None = None,
) -> Amounts:
    """Compute the settlement figures for `lines` settled as `kind`.

    * gross = sum of unit price x quantity (rounded per line);
    * fees = sum of per-line rounded unit price x quantity x fee% / 100;
    * refund and keep_item: amount = gross - fees (for keep_item the customer
      keeps the goods and is still refunded);
    * store_credit: bonus = round((gross - fees) x bonus% / 100) and
      amount = gross - fees + bonus;
    * exchange: the credited value (gross - fees) goes towards a new item
      worth `exchange_value`; amount = what is refunded when the new item is
      cheaper, customer_owes = what is paid on top when it is dearer,
      price_difference = the absolute gap. Without `exchange_value` the
      exchange is like-for-like: nothing is refunded or owed;
    * replacement and repair: no money moves, so fees, bonus and amount are 0
      (gross still reports the value of the goods involved).

    Raises `ValueError` for an unknown kind, a bonus outside 0..100, a
    negative exchange value, or an exchange value given for a kind other
    than "exchange"; invalid lines already fail when built.
    """
    if kind not in KINDS:
        raise ValueError(f"Unknown settlement kind {kind!r}; expected one of {', '.join(KINDS)}.")
    bonus_pct = _check_percent(bonus_percent, "Bonus percent")
    new_item_value: Decimal | None = None
    if exchange_value is not None:
        if kind != "exchange":
            raise ValueError(f"exchange_value only applies to an exchange, not to {kind!r}.")
        new_item_value = _to_decimal(exchange_value, "Exchange value")
        if new_item_value < 0:
            raise ValueError(f"Exchange value must not be negative, got {new_item_value}.")
        new_item_value = quantize(new_item_value)

    # Round per line, for gross and fees alike: each line's fee is then at
    # most that line's gross, so fees can never exceed gross in total even when
    # unit prices carry fractions of a cent.
    gross = sum((quantize(line.unit_price * line.quantity) for line in lines), _ZERO)
    if kind in _NO_MONEY_KINDS:
        return Amounts(gross=gross, fees=_ZERO, bonus=_ZERO, amount=_ZERO, price_difference=_ZERO)

    fees = sum(
        (quantize(line.unit_price * line.quantity * line.fee_percent / _HUNDRED) for line in lines),
        _ZERO,
    )
    net = max(_ZERO, gross - fees)

    if kind == "store_credit":
        bonus = quantize(net * bonus_pct / _HUNDRED)
        return Amounts(gross=gross, fees=fees, bonus=bonus, amount=net + bonus, price_difference=_ZERO)

    if kind == "exchange":
        if new_item_value is None:
            return Amounts(gross=gross, fees=fees, bonus=_ZERO, amount=_ZERO, price_difference=_ZERO)
        return Amounts(
            gross=gross,
            fees=fees,
            bonus=_ZERO,
            amount=max(_ZERO, net - new_item_value),
            price_difference=abs(new_item_value - net),
            customer_owes=max(_ZERO, new_item_value - net),
        )

    # refund and keep_item settle identically: the goods' fate differs, not the money.
    return Amounts(gross=gross, fees=fees, bonus=_ZERO, amount=net, price_difference=_ZERO)
