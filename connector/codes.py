"""Countries (ISO 3166-1 alpha-2) and currencies (ISO 4217 alpha-3), normalised through pycountry.

"France", "FRA", "fr" and "250" all become "FR"; "euro", "eur" and "978" become "EUR". Unknown codes
are errors, never silently kept.

>>> normalise_country("France"), normalise_country("deu"), normalise_currency("978")
('FR', 'DE', 'EUR')
"""

from __future__ import annotations

import functools

import pycountry

from connector.errors import MoneyError


class UnknownCode(ValueError):
    """A country or currency that is not in ISO 3166 / ISO 4217."""


# Codes used on invoices that ISO 3166 does not list but EN 16931 (ISO 3166 + code list) accepts.
_EXTRA_COUNTRIES = {"XI": "XI", "XK": "XK", "EL": "GR", "UK": "GB"}


@functools.lru_cache(maxsize=1024)
def normalise_country(value: str) -> str:
    """Return the ISO 3166-1 alpha-2 code for a code (alpha-2, alpha-3, numeric) or an English name."""
    if not isinstance(value, str) or not value.strip():
        raise UnknownCode(f"country {value!r} is empty")
    text = value.strip()
    upper = text.upper()
    if upper in _EXTRA_COUNTRIES:
        return _EXTRA_COUNTRIES[upper]
    found = None
    if len(upper) == 2 and upper.isalpha():
        found = pycountry.countries.get(alpha_2=upper)
    elif len(upper) == 3 and upper.isalpha():
        found = pycountry.countries.get(alpha_3=upper)
    elif upper.isdigit():
        found = pycountry.countries.get(numeric=upper.zfill(3))
    if found is None and len(text) > 3:
        try:
            found = pycountry.countries.lookup(text)
        except LookupError:
            found = None
    if found is None:
        raise UnknownCode(f"country {value!r} is not an ISO 3166 country")
    return found.alpha_2


@functools.lru_cache(maxsize=512)
def normalise_currency(value: str) -> str:
    """Return the ISO 4217 alpha-3 code for a code (alpha or numeric) or an English currency name."""
    if not isinstance(value, str) or not value.strip():
        raise MoneyError(f"currency {value!r} is empty")
    text = value.strip()
    upper = text.upper()
    found = None
    if len(upper) == 3 and upper.isalpha():
        found = pycountry.currencies.get(alpha_3=upper)
    elif upper.isdigit():
        found = pycountry.currencies.get(numeric=upper.zfill(3))
    if found is None and len(text) > 3:
        try:
            found = pycountry.currencies.lookup(text)
        except LookupError:
            found = None
    if found is None:
        raise MoneyError(f"currency {value!r} is not an ISO 4217 currency")
    return found.alpha_3
