"""Every eligibility rule, one test each (pure function: no store, no clock)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest

from connector.factors.eligibility import REASONS, Candidate, DebtorLimit, Portfolio, decide, decide_all
from connector.factors.profile import FactorProfile, profile_from_config
from connector.model import Party
from connector.money import Money
from tests.factories import BUYER, SELLER, make_invoice

TODAY = dt.date(2026, 11, 20)
PROFILE = FactorProfile(name="f", concentration_floor=Decimal("0"), concentration_limit=Decimal("1"))
LIMIT = DebtorLimit("approved", Money.parse("10000.00", "EUR"), dt.date(2026, 1, 1), dt.date(2027, 1, 1))


def codes(invoice=None, *, limit=LIMIT, portfolio=None, profile=PROFILE, **facts) -> list[str]:
    candidate = Candidate(invoice or make_invoice(), **facts)
    return decide(candidate, limit, portfolio or Portfolio(), profile, TODAY).codes


def test_a_clean_invoice_is_eligible_with_no_reason():
    assert codes() == []


def test_debtor_must_be_identified():
    anonymous = Party(name="Sans Id", country="FR")
    assert "DEBTOR_UNIDENTIFIED" in codes(make_invoice(buyer=anonymous))


@pytest.mark.parametrize("limit, code", [
    (None, "NO_LIMIT"),
    (DebtorLimit("declined", Money.parse("0", "EUR")), "LIMIT_NOT_APPROVED"),
    (DebtorLimit("approved", Money.parse("10000", "EUR"), None, dt.date(2026, 11, 1)), "LIMIT_EXPIRED"),
    (DebtorLimit("approved", Money.parse("10000", "USD")), "LIMIT_CURRENCY"),
    (DebtorLimit("approved", Money.parse("1000.00", "EUR")), "LIMIT_EXCEEDED"),
])
def test_limit_rules(limit, code):
    assert codes(limit=limit) == [code]


def test_limit_counts_outstanding_assigned_invoices():
    book = Portfolio(exposure={(BUYER.key, "EUR"): Money.parse("9000.00", "EUR")})
    assert codes(portfolio=book) == ["LIMIT_EXCEEDED"]          # 9000 + 1200 > 10000


def test_open_credit_notes_are_netted_against_the_debtor():
    book = Portfolio(exposure={(BUYER.key, "EUR"): Money.parse("9000.00", "EUR")},
                     credit_notes={(BUYER.key, "EUR"): Money.parse("500.00", "EUR")})
    assert codes(portfolio=book) == []                          # 9000 - 500 + 1200 = 9700 <= 10000


def test_a_credit_note_naming_the_invoice_reduces_its_amount():
    decision = decide(Candidate(make_invoice(), credited=Money.parse("200.00", "EUR")), LIMIT, Portfolio(),
                      PROFILE, TODAY)
    assert decision.eligible and decision.amount == Money.parse("1000.00", "EUR")
    assert codes(credited=Money.parse("1200.00", "EUR")) == ["FULLY_CREDITED"]


def test_country_allowed_and_country_risk():
    profile = dataclasses.replace(PROFILE, countries=("FR",))
    assert codes(profile=profile) == ["COUNTRY_NOT_ALLOWED"]
    risky = Party(name="Risky", country="VE", vat_id="VE123")
    assert codes(make_invoice(buyer=risky)) == ["COUNTRY_RISK"]
    relaxed = profile_from_config("f", {"country_risk": ["VE=2"], "concentration_limit": Decimal("1")})
    assert "COUNTRY_RISK" not in codes(make_invoice(buyer=risky), profile=relaxed)


def test_currency_must_be_accepted():
    assert codes(make_invoice(currency="USD", amount="10.00"), limit=None,
                 profile=dataclasses.replace(PROFILE, require_limit=False)) == ["CURRENCY_NOT_ACCEPTED"]


def test_dates_overdue_age_tenor_and_missing_due_date():
    assert codes(make_invoice(due=dt.date(2026, 11, 19))) == ["OVERDUE"]
    assert codes(make_invoice(issue=dt.date(2026, 8, 1), due=dt.date(2026, 11, 25))) == ["TOO_OLD"]
    assert codes(make_invoice(due=dt.date(2027, 6, 1))) == ["TENOR_TOO_LONG"]
    assert codes(make_invoice(due=None)) == ["NO_DUE_DATE"]


def test_disputed_and_already_assigned():
    assert codes(disputed=True) == ["DISPUTED"]
    assert codes(assigned=True) == ["ALREADY_ASSIGNED"]


def test_already_financed_when_the_payee_is_another_party():
    factor = Party(name="Some Factor SA", country="FR", legal_id="111111111", legal_id_scheme="0002")
    assert codes(make_invoice(payee=factor)) == ["ALREADY_FINANCED"]
    assert codes(make_invoice(payee=SELLER)) == []


def test_minimum_amount():
    assert codes(profile=dataclasses.replace(PROFILE, min_amount=Decimal("5000"))) == ["BELOW_MINIMUM"]


def test_intra_group_debtors_are_excluded():
    assert codes(profile=dataclasses.replace(PROFILE, intra_group=(BUYER.vat_id,))) == ["INTRA_GROUP"]


def test_concentration_applies_above_the_floor_only():
    profile = dataclasses.replace(PROFILE, concentration_limit=Decimal("0.25"),
                                  concentration_floor=Decimal("4000"))
    other = Party(name="Other", country="FR", vat_id="FR00123456789")
    book = Portfolio(exposure={(other.key, "EUR"): Money.parse("3000.00", "EUR")})
    assert codes(portfolio=book, profile=profile) == ["CONCENTRATION"]      # 1200 / 4200 = 28.6 %
    small = Portfolio(exposure={(other.key, "EUR"): Money.parse("100.00", "EUR")})
    assert codes(portfolio=small, profile=profile) == []                   # 1300 < floor 4000
    big = Portfolio(exposure={(other.key, "EUR"): Money.parse("9000.00", "EUR")})
    assert codes(portfolio=big, profile=profile) == []                     # 1200 / 10200 = 11.8 %


def test_credit_notes_are_never_financed():
    assert codes(make_invoice(kind="credit_note")) == ["NOT_AN_INVOICE"]


def test_every_reason_is_listed_not_just_the_first():
    anonymous = Party(name="Nobody", country="VE")
    found = codes(make_invoice(buyer=anonymous, due=dt.date(2026, 11, 1), currency="USD", amount="1.00"),
                  limit=None, disputed=True, assigned=True)
    assert {"DEBTOR_UNIDENTIFIED", "COUNTRY_RISK", "CURRENCY_NOT_ACCEPTED", "OVERDUE", "DISPUTED",
            "ALREADY_ASSIGNED", "NO_LIMIT"} <= set(found)
    assert set(found) <= set(REASONS)


def test_decide_all_counts_earlier_decisions_of_the_same_run():
    limits = {BUYER.key: DebtorLimit("approved", Money.parse("3000.00", "EUR"))}
    candidates = [Candidate(make_invoice(f"F-{i}")) for i in range(4)]
    decisions = decide_all(candidates, limits, Portfolio(), PROFILE, TODAY)
    assert [d.eligible for d in decisions] == [True, True, False, False]   # 1200 + 1200 fits, a third does not
    assert decisions[2].codes == ["LIMIT_EXCEEDED"]
