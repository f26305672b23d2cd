"""Countries and currencies are normalised through pycountry; unknown codes are errors."""

from __future__ import annotations

import pytest

from connector.codes import UnknownCode, normalise_country, normalise_currency
from connector.errors import MoneyError


@pytest.mark.parametrize("value", ["France", "FRA", "fr", "FR", " fr ", "250"])
def test_countries(value):
    assert normalise_country(value) == "FR"


def test_countries_more():
    assert normalise_country("Germany") == "DE"
    assert normalise_country("EL") == "GR"  # VAT prefix of Greece, seen on invoices
    assert normalise_country("XI") == "XI"  # Northern Ireland, EN 16931 code list


@pytest.mark.parametrize("value", ["ZZ", "Atlantis", "", "12345", "F"])
def test_unknown_countries_refused(value):
    with pytest.raises(UnknownCode):
        normalise_country(value)


@pytest.mark.parametrize(("value", "expected"), [("eur", "EUR"), ("978", "EUR"), ("Euro", "EUR"),
                                                 ("jpy", "JPY"), ("788", "TND")])
def test_currencies(value, expected):
    assert normalise_currency(value) == expected


@pytest.mark.parametrize("value", ["EU", "XYZ", "", "euros and cents"])
def test_unknown_currencies_refused(value):
    with pytest.raises(MoneyError):
        normalise_currency(value)
