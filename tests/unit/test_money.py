"""Unit tests for settlement arithmetic (app.cases.money). No app, no DB."""

from __future__ import annotations

import ast
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.cases import money
from app.cases.money import KINDS, Amounts, SettlementLine, quantize, settlement_amounts

D = Decimal
FIELDS = ("gross", "fees", "bonus", "amount", "price_difference", "customer_owes")


def L(price: str, qty: int, fee: str = "0") -> SettlementLine:
    return SettlementLine(D(price), qty, D(fee))


def figures(amounts: Amounts) -> dict[str, str]:
    return amounts.to_dict()


# --- quantize -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (D("1.005"), "1.01"),  # half-up, not banker's rounding (which gives 1.00)
        (D("1.015"), "1.02"),
        (D("0.125"), "0.13"),
        (D("1.004"), "1.00"),
        (D("2.5"), "2.50"),
        (D("10"), "10.00"),
        (7, "7.00"),
        (D("-0.001"), "0.00"),  # never "-0.00"
        (D("-0"), "0.00"),
        (D("-1.005"), "-1.01"),  # half-up rounds away from zero
        (D("1E+2"), "100.00"),
        (D("123456789012345678901234567890.555"), "123456789012345678901234567890.56"),
    ],
)
def test_quantize_rounds_half_up_to_cents(value: Decimal | int, expected: str) -> None:
    result = quantize(value)
    assert isinstance(result, Decimal)
    assert str(result) == expected


@pytest.mark.parametrize("bad", [1.5, True, "1.00", None])
def test_quantize_refuses_non_decimal_input(bad: object) -> None:
    with pytest.raises(TypeError):
        quantize(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [D("NaN"), D("Infinity"), D("-Infinity")])
def test_quantize_refuses_non_finite(bad: Decimal) -> None:
    with pytest.raises(ValueError, match="finite"):
        quantize(bad)


# --- worked examples ------------------------------------------------------------

# (lines, kind, bonus %, exchange value, expected figures)
EXAMPLES = [
    pytest.param(
        [L("19.99", 2, "10")], "refund", "0", None,
        # fee 39.98 x 10% = 3.998 -> 4.00
        {"gross": "39.98", "fees": "4.00", "bonus": "0.00", "amount": "35.98", "price_difference": "0.00", "customer_owes": "0.00"},
        id="refund-with-fee",
    ),
    pytest.param(
        [L("0.05", 1, "10")], "refund", "0", None,
        # 0.005 rounds half-up to 0.01
        {"gross": "0.05", "fees": "0.01", "bonus": "0.00", "amount": "0.04", "price_difference": "0.00", "customer_owes": "0.00"},
        id="fee-rounds-half-up",
    ),
    pytest.param(
        [L("10.00", 1, "12.5"), L("3.33", 3, "0"), L("0.99", 0, "50")], "refund", "0", None,
        {"gross": "19.99", "fees": "1.25", "bonus": "0.00", "amount": "18.74", "price_difference": "0.00", "customer_owes": "0.00"},
        id="multi-line-zero-quantity-ignored",
    ),
    pytest.param(
        [L("19.99", 2, "10")], "keep_item", "0", None,
        {"gross": "39.98", "fees": "4.00", "bonus": "0.00", "amount": "35.98", "price_difference": "0.00", "customer_owes": "0.00"},
        id="keep-item-same-as-refund",
    ),
    pytest.param(
        [L("19.99", 2, "10")], "store_credit", "10", None,
        # net 35.98, bonus 3.598 -> 3.60
        {"gross": "39.98", "fees": "4.00", "bonus": "3.60", "amount": "39.58", "price_difference": "0.00", "customer_owes": "0.00"},
        id="store-credit-bonus",
    ),
    pytest.param(
        [L("50.00", 1)], "store_credit", "0", None,
        {"gross": "50.00", "fees": "0.00", "bonus": "0.00", "amount": "50.00", "price_difference": "0.00", "customer_owes": "0.00"},
        id="store-credit-no-bonus",
    ),
    pytest.param(
        [L("100.00", 1)], "refund", "25", None,
        # a bonus only applies to store credit
        {"gross": "100.00", "fees": "0.00", "bonus": "0.00", "amount": "100.00", "price_difference": "0.00", "customer_owes": "0.00"},
        id="refund-ignores-bonus",
    ),
    pytest.param(
        [L("19.99", 2, "10")], "exchange", "0", D("30"),
        {"gross": "39.98", "fees": "4.00", "bonus": "0.00", "amount": "5.98", "price_difference": "5.98", "customer_owes": "0.00"},
        id="exchange-to-cheaper-refunds-difference",
    ),
    pytest.param(
        [L("19.99", 2, "10")], "exchange", "0", D("50"),
        {"gross": "39.98", "fees": "4.00", "bonus": "0.00", "amount": "0.00", "price_difference": "14.02", "customer_owes": "14.02"},
        id="exchange-to-dearer-customer-owes",
    ),
    pytest.param(
        [L("20.00", 1)], "exchange", "0", D("20.00"),
        {"gross": "20.00", "fees": "0.00", "bonus": "0.00", "amount": "0.00", "price_difference": "0.00", "customer_owes": "0.00"},
        id="exchange-even",
    ),
    pytest.param(
        [L("19.99", 2, "10")], "exchange", "10", None,
        {"gross": "39.98", "fees": "4.00", "bonus": "0.00", "amount": "0.00", "price_difference": "0.00", "customer_owes": "0.00"},
        id="exchange-like-for-like",
    ),
    pytest.param(
        [L("19.99", 2, "10")], "replacement", "10", None,
        {"gross": "39.98", "fees": "0.00", "bonus": "0.00", "amount": "0.00", "price_difference": "0.00", "customer_owes": "0.00"},
        id="replacement-moves-no-money",
    ),
    pytest.param(
        [L("19.99", 2, "10")], "repair", "0", None,
        {"gross": "39.98", "fees": "0.00", "bonus": "0.00", "amount": "0.00", "price_difference": "0.00", "customer_owes": "0.00"},
        id="repair-moves-no-money",
    ),
    pytest.param(
        [L("25.00", 1, "100")], "store_credit", "50", None,
        {"gross": "25.00", "fees": "25.00", "bonus": "0.00", "amount": "0.00", "price_difference": "0.00", "customer_owes": "0.00"},
        id="full-fee-leaves-nothing",
    ),
    pytest.param(
        [], "refund", "0", None,
        {"gross": "0.00", "fees": "0.00", "bonus": "0.00", "amount": "0.00", "price_difference": "0.00", "customer_owes": "0.00"},
        id="no-lines",
    ),
    pytest.param(
        [], "exchange", "0", D("12.5"),
        {"gross": "0.00", "fees": "0.00", "bonus": "0.00", "amount": "0.00", "price_difference": "12.50", "customer_owes": "12.50"},
        id="exchange-nothing-returned",
    ),
]


@pytest.mark.parametrize(("lines", "kind", "bonus", "exchange_value", "expected"), EXAMPLES)
def test_settlement_examples(
    lines: list[SettlementLine], kind: str, bonus: str, exchange_value: Decimal | None, expected: dict[str, str]
) -> None:
    amounts = settlement_amounts(lines, kind, D(bonus), exchange_value)  # type: ignore[arg-type]
    assert figures(amounts) == expected


def test_fees_are_rounded_per_line_so_they_never_exceed_gross() -> None:
    # Three lines worth 0.005 each with a 100% fee. Rounding gross once over
    # the total (0.015 -> 0.02) against per-line fees (3 x 0.01 = 0.03) would
    # make fees exceed gross; rounding both per line keeps them equal.
    lines = [SettlementLine(D("0.005"), 1, D(100))] * 3
    amounts = settlement_amounts(lines, "refund")
    assert amounts.gross == D("0.03")
    assert amounts.fees == D("0.03")
    assert amounts.amount == D("0.00")


def test_to_dict_is_strings_with_two_places() -> None:
    amounts = settlement_amounts([L("5", 3, "10")], "store_credit", D(5))
    data = amounts.to_dict()
    assert set(data) == set(FIELDS)
    assert data == {
        "gross": "15.00",
        "fees": "1.50",
        "bonus": "0.68",  # 13.50 x 5% = 0.675 -> 0.68
        "amount": "14.18",
        "price_difference": "0.00",
        "customer_owes": "0.00",
    }


def test_settlement_line_normalises_ints_to_decimal() -> None:
    line = SettlementLine(10, 2, 5)  # type: ignore[arg-type]
    assert line.unit_price == D(10) and isinstance(line.unit_price, Decimal)
    assert line.fee_percent == D(5) and isinstance(line.fee_percent, Decimal)


def test_amounts_refuses_negative_figures() -> None:
    with pytest.raises(ValueError, match="amount must not be negative"):
        Amounts(gross=D(1), fees=D(0), bonus=D(0), amount=D("-0.01"), price_difference=D(0))


# --- validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: settlement_amounts([SettlementLine(D("1"), -1)], "refund"), "Quantity must not be negative"),
        (lambda: settlement_amounts([SettlementLine(D("-0.01"), 1)], "refund"), "Unit price must not be negative"),
        (lambda: settlement_amounts([SettlementLine(D("1"), 1, D("100.01"))], "refund"), "Fee percent must be between 0 and 100"),
        (lambda: settlement_amounts([SettlementLine(D("1"), 1, D("-1"))], "refund"), "Fee percent must be between 0 and 100"),
        (lambda: settlement_amounts([L("1", 1)], "store_credit", D("101")), "Bonus percent must be between 0 and 100"),
        (lambda: settlement_amounts([L("1", 1)], "store_credit", D("-5")), "Bonus percent must be between 0 and 100"),
        (lambda: settlement_amounts([L("1", 1)], "exchange", exchange_value=D("-1")), "Exchange value must not be negative"),
        (lambda: settlement_amounts([L("1", 1)], "refund", exchange_value=D("1")), "only applies to an exchange"),
        (lambda: settlement_amounts([L("1", 1)], "cash"), "Unknown settlement kind"),  # type: ignore[arg-type]
        (lambda: SettlementLine(D("NaN"), 1), "finite"),
    ],
)
def test_invalid_input_raises_value_error(build, message: str) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match=message):
        build()


@pytest.mark.parametrize(
    "build",
    [
        lambda: SettlementLine(19.99, 1),  # type: ignore[arg-type]
        lambda: SettlementLine(D("1"), 1.0),  # type: ignore[arg-type]
        lambda: SettlementLine(D("1"), True),
        lambda: settlement_amounts([L("1", 1)], "store_credit", 10.0),  # type: ignore[arg-type]
    ],
)
def test_floats_and_bools_are_refused(build) -> None:  # noqa: ANN001
    with pytest.raises(TypeError):
        build()


# --- properties ---------------------------------------------------------------------

prices = st.decimals(min_value=0, max_value=D("100000"), places=4, allow_nan=False, allow_infinity=False)
percents = st.decimals(min_value=0, max_value=100, places=2, allow_nan=False, allow_infinity=False)
lines_strategy = st.lists(
    st.builds(SettlementLine, unit_price=prices, quantity=st.integers(0, 1000), fee_percent=percents),
    max_size=8,
)
money_values = st.decimals(min_value=0, max_value=D("10000000"), places=2, allow_nan=False, allow_infinity=False)


@st.composite
def settlements(draw: st.DrawFn) -> tuple[list[SettlementLine], str, Decimal, Decimal | None]:
    kind = draw(st.sampled_from(KINDS))
    exchange_value = draw(st.none() | money_values) if kind == "exchange" else None
    return draw(lines_strategy), kind, draw(percents), exchange_value


def has_two_places(value: Decimal) -> bool:
    return isinstance(value, Decimal) and value.as_tuple().exponent == -2


@settings(max_examples=300, deadline=None)
@given(settlements())
def test_amounts_are_never_negative_and_always_cents(case: tuple) -> None:
    lines, kind, bonus, exchange_value = case
    amounts = settlement_amounts(lines, kind, bonus, exchange_value)
    for name in FIELDS:
        value = getattr(amounts, name)
        assert has_two_places(value), (name, value)
        assert value >= 0, (name, value)
        assert not value.is_signed(), (name, value)  # no "-0.00" either
    assert amounts.fees <= amounts.gross
    assert amounts.gross == sum((quantize(line.unit_price * line.quantity) for line in lines), D("0.00"))


@settings(max_examples=300, deadline=None)
@given(lines_strategy, percents)
def test_store_credit_is_at_least_the_refund(lines: list[SettlementLine], bonus: Decimal) -> None:
    refund = settlement_amounts(lines, "refund")
    credit = settlement_amounts(lines, "store_credit", bonus)
    keep = settlement_amounts(lines, "keep_item")
    assert credit.amount >= refund.amount
    assert credit.amount == refund.amount + credit.bonus
    assert refund.amount == refund.gross - refund.fees
    assert keep == refund


@settings(max_examples=300, deadline=None)
@given(lines_strategy, money_values)
def test_exchange_difference_is_split_into_refund_or_payment(
    lines: list[SettlementLine], exchange_value: Decimal
) -> None:
    amounts = settlement_amounts(lines, "exchange", exchange_value=exchange_value)
    net = amounts.gross - amounts.fees
    # At most one side of the difference is non-zero, and they add up.
    assert amounts.amount == 0 or amounts.customer_owes == 0
    assert amounts.amount - amounts.customer_owes == net - exchange_value
    assert amounts.price_difference == amounts.amount + amounts.customer_owes
    assert amounts.bonus == 0


@settings(max_examples=200, deadline=None)
@given(lines_strategy, percents, st.sampled_from(["replacement", "repair"]))
def test_replacement_and_repair_move_no_money(lines: list[SettlementLine], bonus: Decimal, kind: str) -> None:
    amounts = settlement_amounts(lines, kind, bonus)  # type: ignore[arg-type]
    assert (amounts.fees, amounts.bonus, amounts.amount, amounts.price_difference, amounts.customer_owes) == (0, 0, 0, 0, 0)


@settings(max_examples=200, deadline=None)
@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=D("-1e12"), max_value=D("1e12")))
def test_quantize_is_within_half_a_cent(value: Decimal) -> None:
    result = quantize(value)
    assert has_two_places(result)
    assert abs(result - value) <= D("0.005")


# --- purity --------------------------------------------------------------------------


def test_module_imports_only_the_standard_library() -> None:
    tree = ast.parse(Path(money.__file__).read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative imports would pull in app code"
            imported.add((node.module or "").split(".")[0])
    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)
