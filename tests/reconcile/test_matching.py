"""The matching cascade through a real store: every case of the issue, with the allocations it must make."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connector.reconcile.engine import run_reconciliation
from connector.reconcile.generator import _rf
from connector.reconcile.matching import MatchConfig, numeric_tail, subset_sums
from tests.reconcile.helpers import ACCOUNT, add_invoices, allocations, config, debtor, import_lines, line

ACME = debtor("Acme Industries SAS", "DE111111111", "DE89370400440532013000")
BETA = debtor("Beta Handel GmbH", "DE222222222", "DE02120300000000202051")


@pytest.mark.parametrize("text", [
    "F2026-0001", "f2026-0001", "Facture n° F2026/0001", "FACT F2026 0001", "F20260001", "inv.F20260001",
    "Rechnung Nr. F2026-0001 Acme Industires", "paiement 20260001 merci", "F2026-1 (zeros dropped)",
])
def test_invoice_number_in_every_written_form(store, text):
    add_invoices(store, ("F2026-0001", "1200.00"), ("F2026-0002", "800.00"))
    ids = import_lines(store, [line("1200.00", text)])
    run_reconciliation(store, config())
    assert allocations(store, ids[next(iter(ids))]) == [("auto", "F2026-0001", 120000, 0)]


def test_ambiguity_is_never_auto(store):
    add_invoices(store, ("A-1001", "500.00", {"buyer": ACME}), ("A-1002", "500.00", {"buyer": ACME}))
    ids = import_lines(store, [line("500.00", "payment", name="Acme Industries", iban=ACME.ibans[0])])
    summary = run_reconciliation(store, config())
    found = allocations(store, next(iter(ids.values())))
    assert summary.auto == 0 and {a[0] for a in found} == {"suggested"}
    assert {a[1] for a in found} == {"A-1001", "A-1002"}


@pytest.mark.parametrize(("extra", "rule"), [
    ({"text": "INTERETS CREDITEURS 11/2026", "code": "ACMT/MDOP/INTR"}, "not_receivable.interest"),
    ({"text": "REMISE CB 4521", "code": "PMNT/CCRD/POSD"}, "not_receivable.card_settlement"),
    ({"text": "virement", "iban": ACCOUNT}, "not_receivable.internal_transfer"),
    ({"text": "F2026-0001", "amount": "-1200.00"}, "not_receivable.debit"),
])
def test_noise_is_not_matched(store, extra, rule):
    add_invoices(store, ("F2026-0001", "1200.00"))
    amount = extra.pop("amount", "1200.00")
    ids = import_lines(store, [line(amount, **extra)])
    run_reconciliation(store, config())
    line_id = next(iter(ids.values()))
    assert store.statement_line(line_id)["match_status"] == "not_receivable"
    assert [a["rule"] for a in store.recon_line_allocations(line_id)] == [rule]


def test_partial_fee_discount_overpayment_and_duplicate(store):
    add_invoices(store, ("P-1", "1000.00"), ("P-2", "1000.00"), ("P-3", "1000.00"), ("P-4", "1000.00"),
                 ("P-5", "1000.00"), ("P-6", "1000.00"))
    ids = import_lines(store, [
        line("400.00", "Acompte P-1"),
        line("992.50", "P-2", charges=Decimal("7.50")),  # short by the bank's own charges
        line("985.00", "P-3"),  # short by 15.00: within the fee tolerance
        line("980.00", "P-4 escompte 2%"),  # 2 % early-payment discount
        line("1050.00", "P-5"),  # overpaid: 50.00 unapplied
        line("1000.00", "P-6"), line("1000.00", "P-6 again"),  # paid twice
    ])
    run_reconciliation(store, config())
    refs = sorted(ids)
    got = [allocations(store, ids[r]) for r in refs]
    assert got[0] == [("auto", "P-1", 40000, 0)]
    assert got[1] == [("auto", "P-2", 99250, 750)]
    assert got[2] == [("auto", "P-3", 98500, 1500)]
    assert got[3] == [("auto", "P-4", 98000, 2000)]
    assert got[4] == [("auto", "P-5", 100000, 0), ("unmatched", None, 5000, 0)]
    assert got[5] == [("auto", "P-6", 100000, 0)]
    assert got[6] == [("unmatched", None, 100000, 0)]
    assert store.recon_line_allocations(ids[refs[6]])[0]["rule"] == "reference.duplicate_payment"
    assert store.recon_invoice_open_minor(store.recon_invoice_by_number("P-1", "EUR")) == 60000


def test_credit_note_netted_several_invoices_and_subset_by_iban(store):
    add_invoices(store, ("C-1", "1000.00", {"buyer": ACME}), ("CN-1", "200.00", {"buyer": ACME, "kind": "credit_note"}),
                 ("M-1", "300.00", {"buyer": BETA}), ("M-2", "450.00", {"buyer": BETA}),
                 ("S-1", "111.11", {"buyer": BETA}), ("S-2", "222.22", {"buyer": BETA}))
    ids = import_lines(store, [
        line("800.00", "C-1 moins avoir CN-1", iban=ACME.ibans[0]),
        line("750.00", "Paiement M-1 + M-2", iban=BETA.ibans[0]),
        line("333.33", "Reglement", iban=BETA.ibans[0]),  # no reference: one combination of Beta's items
    ])
    run_reconciliation(store, config())
    refs = sorted(ids)
    assert sorted(allocations(store, ids[refs[0]])) == [("auto", "C-1", 100000, 0), ("auto", "CN-1", -20000, 0)]
    assert sorted(allocations(store, ids[refs[1]])) == [("auto", "M-1", 30000, 0), ("auto", "M-2", 45000, 0)]
    assert sorted(allocations(store, ids[refs[2]])) == [("auto", "S-1", 11111, 0), ("auto", "S-2", 22222, 0)]


def test_fx_rf_identity_tail_and_amount_only(store):
    add_invoices(store, ("USD-7", "1000.00", {"currency": "USD"}),
                 ("RF-9", "640.00", {"buyer": BETA}), ("T-2026-00417", "512.30", {"buyer": ACME}),
                 ("T-2026-00418", "99.99", {"buyer": BETA}), ("Q-1", "777.77", {"buyer": ACME}))
    ids = import_lines(store, [
        line("921.40", "USD-7", instructed=(Decimal("1000.00"), "USD")),
        line("640.00", sref=_rf("RF-9")),
        line("512.30", "facture 417", iban=ACME.ibans[0]),  # the numeric tail, and the payer is known
        line("99.99", "facture 418"),  # the tail alone, payer unknown: not proof enough
        line("777.77", "virement", name="ACME INDUSTRIES"),  # the debtor's name and the only item of this amount
    ])
    run_reconciliation(store, config())
    refs = sorted(ids)
    assert allocations(store, ids[refs[0]]) == [("auto", "USD-7", 92140, 0)]
    usd = store.recon_line_allocations(ids[refs[0]])[0]
    assert (usd["invoice_amount_minor"], usd["invoice_currency"]) == (100000, "USD")
    assert allocations(store, ids[refs[1]]) == [("auto", "RF-9", 64000, 0)]
    assert allocations(store, ids[refs[2]]) == [("auto", "T-2026-00417", 51230, 0)]
    assert {a[0] for a in allocations(store, ids[refs[3]])} <= {"suggested", "unmatched"}
    assert allocations(store, ids[refs[4]]) == [("auto", "Q-1", 77777, 0)]


def test_amount_only_is_only_suggested(store):
    add_invoices(store, ("Z-1", "4321.00", {"buyer": BETA}))
    ids = import_lines(store, [line("4321.00", "payment", name="Unknown Trust Ltd")])
    run_reconciliation(store, config())
    assert allocations(store, next(iter(ids.values()))) == [("suggested", "Z-1", 432100, 0)]


def test_subset_sums_is_exact_and_bounded():
    assert subset_sums([500, 300, 200, 100], 600, limit=5) == [(0, 3), (1, 2, 3)]
    assert subset_sums([500, -100, 200], 400, limit=5) == [(0, 1)]
    assert subset_sums([7] * 40, 8, budget=1000) is None  # budget spent before the answer is certain
    assert numeric_tail("FA-2026-00123") == "123" and numeric_tail("A-12") is None


def test_config_drives_thresholds(store):
    add_invoices(store, ("K-1", "1000.00"))
    ids = import_lines(store, [line("960.00", "K-1")])  # 40.00 short: above the default fee tolerance
    run_reconciliation(store, config('fee_tolerance = "50"\n'))
    assert allocations(store, next(iter(ids.values()))) == [("auto", "K-1", 96000, 4000)]
    assert MatchConfig().auto_threshold == config().section("reconciliation")["auto_threshold"]


def test_end_to_end_id_and_the_factors_own_reference_are_structured_references(store):
    from connector.model import PaymentInstructions

    ids = add_invoices(store, ("E-1", "700.00", {"payment": PaymentInstructions(reference="PAY7781230045")}),
                       ("E-2", "650.00"), ("E-3", "650.00"))
    with store.transaction():  # E-2 assigned; the factor's id for it is what the debtor quotes
        key = store.invoice_row(ids["E-2"])["invoice_key"]
        assignment = store.create_assignment(invoice_id=ids["E-2"], invoice_key=key, version=1, factor="bpce",
                                             kind="assignment", idempotency_key="k-e2", amount_minor=65000,
                                             currency="EUR", payload={})
        store._execute("UPDATE assignments SET remote_id = 'BPCE-778812', state = 'accepted' WHERE id = ?",
                       (assignment,))
    refs = import_lines(store, [line("700.00", None, e2e="PAY7781230045"), line("650.00", "VIR BPCE-778812")])
    run_reconciliation(store, config())
    first, second = refs.values()
    assert allocations(store, first) == [("auto", "E-1", 70000, 0)]
    assert allocations(store, second) == [("auto", "E-2", 65000, 0)]  # not E-3, of the same amount
    (row,) = store.recon_line_allocations(second)
    assert "structured reference E-2" in row["evidence"]


def test_a_date_in_the_text_is_not_an_invoice_number(store):
    """At 100,000 invoices ``INV-012026`` exists, and "01/2026" in a bank's interest line must not pay it."""
    add_invoices(store, ("INV-012026", "801.93"), ("INV-112026", "300.00"))
    refs = import_lines(store, [line("801.93", "INTERETS CREDITEURS 01/2026", name="BANQUE DEMO"),
                                line("300.00", "virement du 11.2026", name="Someone Else")])
    run_reconciliation(store, config())
    interest, other = refs.values()
    assert store.statement_line(interest)["match_status"] == "not_receivable"
    assert [a[0] for a in allocations(store, other)] != ["auto"]


def test_word_order_tells_two_similar_debtors_apart(store):
    first = debtor("Lagoon Cedar Distribution BV", "NL000000121")
    second = debtor("Cedar Lagoon Distribution BV", "NL000000122")
    add_invoices(store, ("W-1", "2007.84", {"buyer": first}), ("W-2", "950.00", {"buyer": second}))
    refs = import_lines(store, [line("2007.84", "virement", name="LAGOON CEDAR DITSRIBUTION BV")])
    run_reconciliation(store, config())
    assert allocations(store, next(iter(refs.values()))) == [("auto", "W-1", 200784, 0)]
