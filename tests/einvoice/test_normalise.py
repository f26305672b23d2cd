"""Pure functions: BT-24 profile table, dates, due dates from payment terms text, mapping compilation."""

from __future__ import annotations

import datetime as dt

import pytest

from connector.einvoice.mapping import compile_mapping, load_mapping
from connector.einvoice.normalise import due_date_from_terms, parse_date, type_code_flags
from connector.einvoice.profiles import normalise_profile
from connector.errors import Quarantine

ISSUE = dt.date(2026, 3, 2)


@pytest.mark.parametrize(("declared", "name", "legacy"), [
    ("urn:factur-x.eu:1p0:basicwl", "FX-BASIC-WL", False),  # not BASIC although it contains "basic"
    ("urn:cen.eu:en16931:2017#compliant#urn:factur-x.eu:1p0:basic", "FX-BASIC", False),
    ("urn:cen.eu:en16931:2017:compliant:factur-x.eu:1p0:basic", "FX-BASIC", True),
    ("urn:cen.eu:en16931:2017#conformant#urn:factur-x.eu:1p0:extended", "FX-EXTENDED", False),  # not EN16931
    ("urn:cen.eu:en16931:2017", "EN16931", False),
    ("urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0", "XRECHNUNG-3.0", False),
    ("urn:cen.eu:en16931:2017#compliant#urn:xoev-de:kosit:standard:xrechnung_2.3", "XRECHNUNG-2.3", False),
    ("urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0", "PEPPOL-BIS3", False),
    ("urn:ferd:CrossIndustryDocument:invoice:1p0:komfort", "ZF1-COMFORT", True),
    ("urn:example:something", "UNKNOWN", False),
])
def test_profile_table_is_exact(declared: str, name: str, legacy: bool) -> None:
    profile = normalise_profile(declared, syntax="cii")
    assert (profile.name, profile.legacy) == (name, legacy)


def test_dates() -> None:
    assert parse_date("20260302", field="BT-2") == ISSUE
    assert parse_date("2026-03-02", field="BT-2") == ISSUE
    assert parse_date("2026-03-02+01:00", field="BT-2") == ISSUE
    with pytest.raises(Quarantine, match="not a date"):
        parse_date("02/03/2026", field="BT-2")
    with pytest.raises(Quarantine, match="not a valid date"):
        parse_date("20260230", field="BT-2")


@pytest.mark.parametrize(("terms", "expected"), [
    (["Payment within 30 days"], dt.date(2026, 4, 1)),
    (["Paiement à 45 jours fin de mois"], dt.date(2026, 4, 30)),
    (["2 % Skonto bei Zahlung innerhalb 10 Tagen, 30 Tage netto"], dt.date(2026, 4, 1)),
    (["Net 60"], dt.date(2026, 5, 1)),
    (["Zahlbar bis 15.04.2026"], dt.date(2026, 4, 15)),
    (["Due 2026-04-20"], dt.date(2026, 4, 20)),
    (["#SKONTO#TAGE=14#PROZENT=2.00#\nZahlbar innerhalb von 30 Tagen"], dt.date(2026, 4, 1)),
    (["Payable upon receipt"], None),
])
def test_due_date_from_terms(terms: list[str], expected: dt.date | None) -> None:
    found = due_date_from_terms(terms, ISSUE)
    assert (found[0] if found else None) == expected


def test_type_code_meanings() -> None:
    assert type_code_flags("386") == ("prepayment",)
    assert type_code_flags("389") == ("self_billed",)
    assert type_code_flags("393") == ("factored",)
    assert type_code_flags("751") == ("not_a_tax_invoice",)
    assert type_code_flags("380") == ()


def test_mappings_compile_once_and_bad_xpaths_fail_at_load() -> None:
    assert load_mapping("ubl") is load_mapping("ubl")
    for name in ("ubl", "cii", "zugferd1"):
        mapping = load_mapping(name)
        assert {"number", "amount_due", "seller.vat_id", "buyer.country", "payee.name"} <= \
            {f.name for f in mapping.fields}
    with pytest.raises(ValueError, match="field number: bad XPath"):
        compile_mapping('syntax = "x"\n[fields.number]\nxpath = "cbc:ID[["\n')
