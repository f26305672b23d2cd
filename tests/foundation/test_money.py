"""Money: exact, quantised to the ISO 4217 minor unit, never float, never mixing currencies."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.errors import CurrencyMismatch, MoneyError
from connector.money import _NON_DEFAULT_EXPONENTS, Money, minor_unit_exponent, total

CURRENCIES = ["EUR", "USD", "JPY", "TND", "KWD", "CHF", "SEK", "HUF", "CLF"]


def test_exponents_of_the_issue():
    assert minor_unit_exponent("EUR") == 2
    assert minor_unit_exponent("JPY") == 0
    assert minor_unit_exponent("TND") == 3
    assert Money.parse("1500", "JPY").minor_units == 1500
    assert Money.parse("1.234", "TND").minor_units == 1234
    assert str(Money.parse("7", "TND")) == "7.000 TND"


def test_table_agrees_with_the_iso4217_package():
    iso4217 = pytest.importorskip("iso4217")
    import pycountry

    disagreements = []
    for currency in pycountry.currencies:
        try:
            entry = iso4217.Currency(currency.alpha_3)
        except ValueError:
            continue
        expected = entry.exponent  # None for codes without a minor unit
        ours = _NON_DEFAULT_EXPONENTS.get(currency.alpha_3, 2)
        if expected != ours:
            disagreements.append((currency.alpha_3, expected, ours))
    assert disagreements == []


@pytest.mark.parametrize("bad", [1.5, 0.1, float("nan"), True])
def test_float_and_bool_refused(bad):
    with pytest.raises(MoneyError):
        Money(bad, "EUR")
    with pytest.raises(MoneyError):
        Money.parse(bad, "EUR")


@pytest.mark.parametrize("text", ["1,50", "1e3", "NaN", "inf", "", " ", "1 000", "abc"])
def test_non_plain_decimals_refused(text):
    with pytest.raises(MoneyError):
        Money.parse(text, "EUR")


def test_excess_decimals_refused_not_rounded():
    with pytest.raises(MoneyError, match="more decimals"):
        Money.parse("10.005", "EUR")
    with pytest.raises(MoneyError):
        Money.parse("100.5", "JPY")
    assert Money.parse("100.00", "JPY").amount == Decimal("100")
    assert Money.of("10.005", "EUR", rounding=ROUND_HALF_UP).amount == Decimal("10.01")
    assert Money.of("10.005", "EUR", rounding=ROUND_HALF_EVEN).amount == Decimal("10.00")


def test_currency_mismatch_refused():
    with pytest.raises(CurrencyMismatch):
        Money.parse("1", "EUR") + Money.parse("1", "USD")
    with pytest.raises(CurrencyMismatch):
        _ = Money.parse("1", "EUR") < Money.parse("1", "USD")
    with pytest.raises(TypeError):
        Money.parse("1", "EUR") + Decimal("1")


def test_unknown_currency_and_no_minor_unit():
    with pytest.raises(MoneyError):
        Money.parse("1", "EURO1")
    with pytest.raises(MoneyError):
        Money.parse("1", "XAU")


def test_no_truth_value():
    with pytest.raises(TypeError):
        bool(Money.zero("EUR"))


amounts = st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), allow_nan=False,
                      allow_infinity=False, places=4)


@given(amount=amounts, currency=st.sampled_from(CURRENCIES))
def test_quantisation_round_trips_exactly_or_refuses(amount, currency):
    exponent = minor_unit_exponent(currency)
    try:
        money = Money.parse(str(amount), currency)
    except MoneyError:
        assert amount != amount.quantize(Decimal(1).scaleb(-exponent))
        return
    assert money.amount == amount
    assert money.amount.as_tuple().exponent == -exponent
    assert Money.from_minor(money.minor_units, currency) == money


@given(values=st.lists(st.integers(min_value=-10**12, max_value=10**12), max_size=30),
       currency=st.sampled_from(CURRENCIES))
def test_sums_are_exact_in_minor_units(values, currency):
    moneys = [Money.from_minor(v, currency) for v in values]
    assert total(moneys, currency).minor_units == sum(values)


@given(minor=st.integers(min_value=0, max_value=10**12), rate=st.decimals(
    min_value=Decimal("0"), max_value=Decimal("1"), places=4), currency=st.sampled_from(CURRENCIES))
def test_scaling_rounds_to_the_minor_unit(minor, rate, currency):
    scaled = Money.from_minor(minor, currency).scaled(rate)
    assert scaled.amount.as_tuple().exponent == -minor_unit_exponent(currency)
    assert abs(scaled.amount - Money.from_minor(minor, currency).amount * rate) <= Decimal(1).scaleb(
        -minor_unit_exponent(currency)) / 2
