"""Money: an exact amount in one ISO 4217 currency, quantised to that currency's minor unit.

Amounts are :class:`decimal.Decimal` end to end and are stored as integers of minor units. A float is
refused wherever it appears; an amount with more decimals than its currency allows is refused rather
than rounded away (rounding is always explicit, with a named rounding mode).

>>> Money.parse("12.50", "EUR") + Money.parse("0.05", "EUR")
Money('12.55', 'EUR')
>>> Money.parse("1500", "JPY").minor_units
1500
>>> Money.parse("1.234", "TND").minor_units
1234
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from connector.errors import CurrencyMismatch, MoneyError

# ISO 4217 minor units that are not 2 (pycountry has no minor units). Checked against the `iso4217`
# package by tests/test_money.py. ``None`` means the code has no minor unit at all (metals, funds,
# testing codes) and cannot carry a receivable.
_NON_DEFAULT_EXPONENTS: dict[str, int | None] = {
    **dict.fromkeys(["BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG",
                     "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"], 0),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
    **dict.fromkeys(["CLF", "UYW"], 4),
    **dict.fromkeys(["XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR", "XPD", "XPT", "XSU", "XTS", "XUA", "XXX"], None),
}


def minor_unit_exponent(currency: str) -> int:
    """Number of decimals of ``currency`` (an already-normalised ISO 4217 alpha-3 code).

    >>> minor_unit_exponent("EUR"), minor_unit_exponent("JPY"), minor_unit_exponent("KWD")
    (2, 0, 3)
    """
    known = _KNOWN.get(currency) if type(currency) is str else None
    if known is not None:
        return known[1]
    return _learn(currency)[1]


# Every Money checks its currency and its minor unit; both depend only on the currency text, so each
# distinct text is resolved once: text -> (ISO code, exponent, quantum). Bounded by the currencies seen
# (pycountry's list plus a few spellings); errors are never remembered, they raise every time.
_KNOWN: dict[str, tuple[str, int, Decimal]] = {}


def _learn(currency: str) -> tuple[str, int, Decimal]:
    from connector.codes import normalise_currency

    code = normalise_currency(currency)
    exponent = _NON_DEFAULT_EXPONENTS.get(code, 2)
    if exponent is None:
        raise MoneyError(f"currency {code} has no minor unit and cannot carry an amount due")
    entry = (code, exponent, Decimal(1).scaleb(-exponent))
    if len(_KNOWN) < 4096:
        _KNOWN[currency] = entry
    return entry


def _quantum(exponent: int) -> Decimal:
    return Decimal(1).scaleb(-exponent)


# ASCII digits, an optional sign and decimal point: text Decimal() reads exactly as the general path would.
_PLAIN = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def to_decimal(value: object, *, what: str = "amount") -> Decimal:
    """Convert text, int or Decimal to a finite Decimal. Floats and booleans are refused.

    Accepts the plain decimal notation used by e-invoices and bank files (``-1234.50``); a leading
    ``+`` is tolerated. Thousands separators and decimal commas are the business of the CSV mapping.
    """
    kind = type(value)
    if kind is str and _PLAIN.fullmatch(value) is not None:
        return Decimal(value)  # the common case: plain decimal text, finite by construction
    if kind is Decimal:
        result = value
    elif isinstance(value, (bool, float)):
        raise MoneyError(f"{what}: {type(value).__name__} {value!r} refused; amounts are exact decimals")
    elif isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text or any(ch in text for ch in " _,eE") or text.lower() in {"nan", "inf", "infinity"}:
            raise MoneyError(f"{what}: {value!r} is not a plain decimal number")
        try:
            result = Decimal(text)
        except InvalidOperation:
            raise MoneyError(f"{what}: {value!r} is not a decimal number") from None
    else:
        raise MoneyError(f"{what}: {type(value).__name__} is not an amount")
    if not result.is_finite():
        raise MoneyError(f"{what}: {value!r} is not a finite number")
    return result


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount in one currency. Arithmetic refuses to mix currencies.

    Construct with :meth:`parse` (text from a document), :meth:`of` (a Decimal, optionally rounded with
    an explicit mode) or :meth:`from_minor` (integer minor units from the store).
    """

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        known = _KNOWN.get(self.currency) if type(self.currency) is str else None  # a list would not hash
        currency, exponent, quantum = known if known is not None else _learn(self.currency)
        amount = self.amount
        if type(amount) is not Decimal:
            amount = to_decimal(amount)
        elif not amount.is_finite():
            raise MoneyError(f"amount: {amount!r} is not a finite number")
        # the store keeps 64-bit integer minor units; larger amounts (and Decimal's 28-digit overflow
        # in quantize) are refused here rather than failing later as InvalidOperation or OverflowError
        if amount.adjusted() + exponent >= 18:
            raise MoneyError(f"{amount} {currency} is too large to be an amount")
        quantised = amount.quantize(quantum)
        if quantised != amount:
            raise MoneyError(
                f"{amount} {currency} has more decimals than the currency's {exponent}; "
                "round explicitly with Money.of(..., rounding=...)")
        object.__setattr__(self, "currency", currency)
        object.__setattr__(self, "amount", quantised + 0 if quantised else quantum * 0)

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def parse(cls, text: object, currency: str) -> Money:
        """Parse an amount exactly as a document states it; excess decimals are an error."""
        return cls(to_decimal(text), currency)

    @classmethod
    def of(cls, value: object, currency: str, *, rounding: str | None = None) -> Money:
        """Money from a computed value; with ``rounding`` (a :mod:`decimal` mode) it is rounded to the
        currency's minor unit, without it any excess decimal is an error."""
        amount = to_decimal(value)
        if rounding is not None:
            amount = amount.quantize(_quantum(minor_unit_exponent(currency)), rounding=rounding)
        return cls(amount, currency)

    @classmethod
    def from_minor(cls, minor_units: int, currency: str) -> Money:
        """Money from integer minor units (the store's representation)."""
        if isinstance(minor_units, bool) or not isinstance(minor_units, int):
            raise MoneyError(f"minor units must be an int, not {type(minor_units).__name__}")
        return cls(Decimal(minor_units).scaleb(-minor_unit_exponent(currency)), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    # -- views ----------------------------------------------------------------------------------
    @property
    def minor_units(self) -> int:
        """The amount as an integer count of minor units (cents, yen, millimes)."""
        return int(self.amount.scaleb(_KNOWN[self.currency][1] if self.currency in _KNOWN
                                      else minor_unit_exponent(self.currency)))

    @property
    def exponent(self) -> int:
        return minor_unit_exponent(self.currency)

    def is_zero(self) -> bool:
        return self.amount == 0

    def is_negative(self) -> bool:
        return self.amount < 0

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"

    def __repr__(self) -> str:
        return f"Money('{self.amount}', '{self.currency}')"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    # -- arithmetic -----------------------------------------------------------------------------
    def _same(self, other: object, op: str) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot {op} Money and {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot {op} {self.currency} and {other.currency}")
        return other

    def __add__(self, other: Money) -> Money:
        return Money(self.amount + self._same(other, "add").amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        return Money(self.amount - self._same(other, "subtract").amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __abs__(self) -> Money:
        return Money(abs(self.amount), self.currency)

    def scaled(self, factor: object, *, rounding: str = ROUND_HALF_EVEN) -> Money:
        """Multiply by an exact factor (a rate such as ``Decimal("0.85")``) and round explicitly."""
        return Money.of(self.amount * to_decimal(factor, what="factor"), self.currency, rounding=rounding)

    def __mul__(self, other: object) -> Money:
        if isinstance(other, int) and not isinstance(other, bool):
            return Money(self.amount * other, self.currency)
        raise TypeError("multiply Money by an int, or use .scaled(rate, rounding=...) for a rate")

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        return self.amount < self._same(other, "compare").amount

    def __le__(self, other: Money) -> bool:
        return self.amount <= self._same(other, "compare").amount

    def __gt__(self, other: Money) -> bool:
        return self.amount > self._same(other, "compare").amount

    def __ge__(self, other: Money) -> bool:
        return self.amount >= self._same(other, "compare").amount

    def __bool__(self) -> bool:
        raise TypeError("Money has no truth value; use .is_zero()")


def total(amounts: Iterable[Money], currency: str) -> Money:
    """Sum of ``amounts`` which must all be in ``currency`` (an empty sum is zero)."""
    result = Money.zero(currency)
    for amount in amounts:
        result = result + amount
    return result
