"""The integrated factor-account test: a factor current account statement (camt.053, imported like any
statement) reconciled through ``run_reconciliation`` against Cessio's own view of the account — fundings
against the expected advances, fees and their VAT against the fee schedule, reserve held and released,
collections in notified mode (and an indirect payment on the company's own bank account), a chargeback —
and the balance-gap journal with every difference explained or flagged; then the ledger posting of the
same events, balanced. Plus the pure checks the journal is built from."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from connector.config import parse_config
from connector.factors.events import EFFECTS, ledger_movements
from connector.reconcile.engine import run_reconciliation
from connector.reconcile.factor_account import balance_gap_journal, classify_line, group_movements, schedule_findings
from connector.reconcile.generator import camt053_bytes
from connector.reconcile.importing import import_bytes
from connector.reconcile.ledger import post_ledger
from tests.factories import make_invoice

FACTOR_ACCOUNT = "FR7630004000031234567890143"
BANK = "FR7630006000011234567890189"
CONFIG = f"""
[company]
name = "Cessio Demo SAS"
[reconciliation]
accounts = ["{BANK}"]
factor_accounts = ["bpce={FACTOR_ACCOUNT}"]
factor_payers = ["{FACTOR_ACCOUNT}", "BPCE Factor"]
[factors.bpce]
mode = "notified"
advance_rate = "0.90"
reserve_rate = "0.10"
fee_rate = "0.005"
fee_vat_rate = "0.20"
"""
D = dt.date(2026, 11, 1)


def day(n: int) -> str:
    return (D + dt.timedelta(days=n - 1)).isoformat()


def event(store, event_id, kind, number, amount, on, vat=None):
    invoice = store._one("SELECT invoice_key FROM invoices WHERE number = ?", (number,))
    data = {"event_id": event_id, "kind": kind, "invoice_key": invoice[0] if invoice else None, "amount_minor": amount,
            "vat_minor": vat, "currency": "EUR", "occurred_on": day(on)}
    store.record_factor_event("bpce", data, ledger_movements(kind, amount, vat), EFFECTS[kind][0])


def statement(lines, *, account, statement_id, opening="0.00"):
    entries = [{"ref": ref, "amount": Decimal(amount), "currency": "EUR", "text": text, "date": D + dt.timedelta(
        days=on - 1), "name": name, "code": "PMNT/RCDT/ESCT" if Decimal(amount) > 0 else "PMNT/ICDT/ESCT"}
        for ref, on, amount, text, name in lines]
    return camt053_bytes(entries, account=account, currency="EUR", opening=Decimal(opening), message_id=statement_id,
                         statement_id=statement_id, created=D + dt.timedelta(days=15))


def build(store):
    with store.transaction():
        ids = {}
        for number, amount in (("F-101", "10000.00"), ("F-102", "5000.00"), ("F-103", "2000.00"),
                               ("F-104", "3000.00"), ("F-200", "1000.00")):
            saved = store.save_invoice(make_invoice(number, amount))
            ids[number] = saved.invoice_id
        for number, amount in (("F-101", 1_000_000), ("F-102", 500_000), ("F-103", 200_000), ("F-104", 300_000)):
            key = store.invoice_row(ids[number])["invoice_key"]
            store.create_assignment(invoice_id=ids[number], invoice_key=key, version=1, factor="bpce",
                                    kind="assignment", idempotency_key=f"bpce:{number}", amount_minor=amount,
                                    currency="EUR", payload={})
        # bordereau B1 (3 invoices) accepted on the 2nd; reserve 10 %, fee 0.5 % + VAT 20 %
        for n, (number, amount) in enumerate((("F-101", 1_000_000), ("F-102", 500_000), ("F-103", 200_000))):
            event(store, f"acc-{n}", "assignment.accepted", number, amount, 2)
            event(store, f"res-{n}", "reserve.held", number, amount // 10, 2)
            fee = 1_500 if number == "F-103" else amount // 200  # F-103: 15.00 charged, the schedule says 10.00
            event(store, f"fee-{n}", "fee.charged", number, fee, 2, vat=fee // 5)
            event(store, f"fund-{n}", "funding.paid", number, amount * 9 // 10, 3)
        # F-104 on the 5th: the factor holds 350.00 of reserve where the contract says 300.00
        event(store, "acc-4", "assignment.accepted", "F-104", 300_000, 5)
        event(store, "res-4", "reserve.held", "F-104", 35_000, 5)
        event(store, "fee-4", "fee.charged", "F-104", 1_500, 5, vat=300)
        event(store, "fund-4", "funding.paid", "F-104", 270_000, 6)
        # the debtor of F-101 pays the factor (notified mode); the factor releases its reserve
        event(store, "col-1", "collection.received", "F-101", 1_000_000, 10)
        event(store, "rel-1", "reserve.released", "F-101", 100_000, 10)
        # F-102 unpaid: charged back
        event(store, "cb-2", "chargeback", "F-102", 500_000, 12)
    factor_lines = [
        ("FC01", 2, "17000.00", "CESSION BORDEREAU B1", "BPCE FACTOR"),  # one line for three acceptances
        ("FC02", 2, "-1700.00", "RETENUE DE GARANTIE B1", "BPCE FACTOR"),  # one line for three reserves
        ("FC03", 2, "-50.00", "COMMISSION AFFACTURAGE F-101", "BPCE FACTOR"),  # fee and VAT on two lines
        ("FC04", 2, "-10.00", "TVA SUR COMMISSION F-101", "BPCE FACTOR"),
        ("FC05", 2, "-30.00", "COMMISSION TTC F-102", "BPCE FACTOR"),
        ("FC06", 2, "-15.00", "COMMISSION AFFACTURAGE F-103", "BPCE FACTOR"),
        ("FC07", 2, "-3.00", "TVA SUR COMMISSION F-103", "BPCE FACTOR"),
        ("FC08", 4, "-15300.00", "FINANCEMENT B1", "BPCE FACTOR"),  # booked a day after Cessio's events
        ("FC09", 5, "3000.00", "CESSION BORDEREAU B2", "BPCE FACTOR"),
        ("FC10", 5, "-350.00", "RETENUE DE GARANTIE B2", "BPCE FACTOR"),
        ("FC11", 5, "-18.00", "COMMISSION TTC F-104", "BPCE FACTOR"),
        ("FC12", 6, "-2700.00", "FINANCEMENT B2", "BPCE FACTOR"),
        ("FC13", 10, "1000.00", "LIBERATION RETENUE F-101", "BPCE FACTOR"),
        ("FC14", 12, "-5000.00", "IMPAYE F-102 DEFINANCEMENT", "BPCE FACTOR"),
        ("FC15", 12, "-25.00", "FRAIS DE TENUE DE COMPTE", "BPCE FACTOR"),  # Cessio never heard of it
    ]
    bank_lines = [
        ("BK01", 4, "15300.00", "FINANCEMENT B1", "BPCE FACTOR"),
        ("BK02", 11, "2000.00", "REGLEMENT FACTURE F-103", "Buyer GmbH"),  # notified: should have gone to BPCE
        ("BK03", 11, "1000.00", "REGLEMENT FACTURE F-200", "Buyer GmbH"),
    ]
    assert import_bytes(store, statement(factor_lines, account=FACTOR_ACCOUNT, statement_id="BPCE-11"),
                        file_name="bpce.xml").new == 15
    assert import_bytes(store, statement(bank_lines, account=BANK, statement_id="BQ-11", opening="500.00"),
                        file_name="bank.xml").new == 3


def test_factor_account_reconciled_end_to_end(store):
    build(store)
    config = parse_config(CONFIG)
    summary = run_reconciliation(store, config)
    # the bank: F-103 and F-200 matched, the factor's funding is not a customer payment
    assert (summary.lines, summary.auto, summary.not_receivable) == (3, 2, 1)
    (account,) = summary.factor_accounts
    assert account["unmatched_lines"] == 1  # only the account-keeping fee
    assert (account["accepted_minor"], account["expected_advance_minor"], account["funded_minor"]) == (
        2_000_000, 1_800_000, 1_800_000)  # every accepted invoice advanced at 90 %, no more
    rows = {r["day"]: r for r in store.factor_gap_rows("bpce")}
    detail = {d: json.loads(r["detail"]) for d, r in rows.items()}
    assert {d: (r["status"], r["gap_minor"]) for d, r in rows.items()} == {
        day(2): ("flagged", 0),  # balances agree; the F-103 fee breaks the schedule
        day(3): ("explained", 1_530_000),  # Cessio booked the funding, the factor the next day
        day(4): ("agreed", 0),
        day(5): ("flagged", 0),  # reserve of F-104 above the reserve rate
        day(6): ("agreed", 0),
        day(10): ("agreed", 0),  # reserve released on both sides; the collection is not a current movement
        day(11): ("flagged", 0),  # the indirect payment of F-103
        day(12): ("flagged", -2_500),  # the factor's account-keeping fee
    }
    # each difference is explained or flagged, in words
    assert "timing" in detail[day(3)]["explained"][0] and "funding (3 events)" in detail[day(3)]["explained"][0]
    assert rows[day(3)]["explained_minor"] == rows[day(3)]["gap_minor"]
    (fee,) = detail[day(2)]["schedule"]
    assert "fee fee-2 (F-103): 15.00 EUR charged, the schedule gives 10.00 EUR" in fee
    (reserve,) = detail[day(5)]["schedule"]
    assert "reserve res-4 (F-104): 350.00 EUR held, the schedule gives 300.00 EUR" in reserve
    (indirect,) = detail[day(11)]["schedule"]
    assert indirect.startswith("indirect payment: 2000.00 EUR for F-103") and "BK02" in indirect
    assert "FRAIS DE TENUE DE COMPTE" in detail[day(12)]["flagged"][0]
    # every factor line Cessio accounts for is reconciled, the unknown fee waits for a person
    statuses = {r["bank_reference"]: r["match_status"] for r in store.statement_line_rows(account=FACTOR_ACCOUNT)}
    assert [ref for ref, status in statuses.items() if status != "not_receivable"] == ["FC15"]
    # collections in notified mode: F-101 is closed for the bank matcher, F-102 (charged back) is open again
    states = {r["number"]: r["financing_state"] for r in store.invoice_rows()}
    assert (states["F-101"], states["F-102"]) == ("collected", "charged_back")
    # re-running writes no new journal day; the ledger posts every money event, balanced
    audited = store._scalar("SELECT count(*) FROM audit WHERE event = 'factor.balance_gap'")
    assert audited == 8
    run_reconciliation(store, config)
    assert store._scalar("SELECT count(*) FROM audit WHERE event = 'factor.balance_gap'") == audited
    result = post_ledger(store, config)
    assert result.factor_posted == 18 and result.posted == 2  # collections move no money of the company's books
    entries = store.ledger_rows()
    assert sum(e["debit_minor"] for e in entries) == sum(e["credit_minor"] for e in entries)
    fee_piece = [e for e in entries if e["piece_ref"] == "Ebpce:fee-0"]
    assert [(e["account"], e["debit_minor"], e["credit_minor"]) for e in fee_piece] == [
        ("622500", 5_000, 0), ("445660", 1_000, 0), ("467000", 0, 6_000)]


def test_classify_factor_lines_by_sign_and_words():
    def kind(amount, text):
        return classify_line({"amount_minor": amount, "remittance": text})

    assert kind(-100, "Définancement facture impayée") == "chargeback"
    assert kind(-100, "FINANCEMENT B1") == "funding"
    assert kind(100, "Libération de la retenue de garantie") == "reserve_release"
    assert kind(-100, "Retenue de garantie") == "reserve"
    assert kind(-100, "TVA sur commission") == "fee_vat"
    assert kind(-100, "Commission de financement") == "interest"
    assert kind(-100, "Commission d'affacturage") == "fee"
    assert kind(100, "Encaissement débiteur F-1") == "collection"
    assert kind(100, "Cession bordereau 12") == "assignment"
    assert kind(100, "?") == "unclassified"


def move(event_id, amount, on, kind, **extra):
    return {"event_id": event_id, "amount_minor": amount, "currency": "EUR", "occurred_on": day(on), "kind": kind,
            "invoice_key": extra.pop("invoice_key", None), **extra}


def fline(line_id, amount, on, text, kind):
    return {"id": line_id, "amount_minor": amount, "currency": "EUR", "booking_date": day(on), "bank_reference": None,
            "remittance": text, "kind": kind}


def test_groups_are_exact_and_unique_and_a_collection_credited_by_the_factor_is_explained():
    moves = [move("f1", -6000, 2, "fee.charged"), move("a1", 100000, 2, "assignment.accepted"),
             move("a2", 50000, 2, "assignment.accepted"),
             move("c1", 30000, 3, "collection.received", off_current=True, invoice_number="F-9")]
    lines = [fline(1, -5000, 2, "COMMISSION", "fee"), fline(2, -1000, 2, "TVA", "fee_vat"),
             fline(3, 150000, 2, "CESSION", "assignment"), fline(4, 30000, 4, "ENCAISSEMENT F-9", "collection")]
    groups, left_lines, left_moves = group_movements(lines, moves, 5)
    shapes = sorted((sorted(x["id"] for x in g_lines), sorted(m["event_id"] for m in g_moves))
                    for g_lines, g_moves in groups)
    assert shapes == [([1, 2], ["f1"]), ([3], ["a1", "a2"]), ([4], ["c1"])] and not left_lines and not left_moves
    rows = {r["day"]: r for r in balance_gap_journal(lines, moves, opening_minor=0, opening_day=D, window=5)}
    assert rows[day(2)]["status"] == "agreed"
    assert rows[day(4)]["status"] == "explained" and rows[day(4)]["gap_minor"] == 30000
    assert "collection 300.00 EUR credited by the factor" in rows[day(4)]["detail"]["explained"][0]
    # two ways to make the sum: no group, both sides flagged
    ambiguous = [fline(1, -1000, 2, "FRAIS", "fee"), fline(2, -1000, 2, "FRAIS", "fee"),
                 fline(3, -2000, 2, "FRAIS", "fee")]
    groups, left_lines, left_moves = group_movements(ambiguous, [move("f", -3000, 2, "fee.charged")], 5)
    assert not groups and len(left_lines) == 3 and len(left_moves) == 1


def test_schedule_findings_for_fundings_chargebacks_and_collections():
    assignments = [{"invoice_key": k, "amount_minor": a, "kind": "assignment", "state": "accepted"}
                   for k, a in (("k1", 100000), ("k2", 50000))]
    terms = {"advance_rate": "0.90", "reserve_rate": "0.10", "fee_rate": "0.005", "fee_vat_rate": "0.20",
             "mode": "notified"}

    def ev(event_id, kind, key, amount, on, vat=None):
        return {"event_id": event_id, "kind": kind, "invoice_key": key, "invoice_number": key, "amount_minor": amount,
                "vat_minor": vat, "currency": "EUR", "occurred_on": day(on)}

    events = [ev("a1", "assignment.accepted", "k1", 100000, 1), ev("a2", "assignment.accepted", "k2", 50000, 1),
              ev("f1", "funding.paid", "k1", 95000, 2),  # above the 90 % advance
              ev("fee1", "fee.charged", "k1", 500, 2, vat=150),  # VAT 30 % instead of 20 %
              ev("col", "collection.received", "k1", 100000, 5), ev("cb1", "chargeback", "k1", 100000, 6),
              ev("cb2", "chargeback", "k2", 40000, 6),  # 500.00 outstanding
              ev("col9", "collection.received", "k9", 100, 6)]  # not assigned here
    payments = [{"invoice_key": "k1", "amount_minor": 100000, "currency": "EUR", "number": "k1", "account": "FR76X",
                 "booking_date": day(7), "bank_reference": "B7", "line_id": 7}]
    findings, totals = schedule_findings(events, assignments, terms, bank_payments=payments)
    texts = [f["text"] for f in findings]
    assert totals == {"expected_advance_minor": 135000, "funded_minor": 95000, "accepted_minor": 150000}
    assert any("funding f1 (k1): 950.00 EUR paid, more than the expected advance 900.00 EUR" in t for t in texts)
    assert any("fee VAT fee1 (k1): 1.50 EUR, expected 1.00 EUR" in t for t in texts)
    assert any("chargeback cb1 (k1)" in t and "collecting it on" in t for t in texts)
    assert any("chargeback cb2 (k2): 400.00 EUR charged back, 500.00 EUR was still outstanding" in t for t in texts)
    assert any("collection.received col9 of 1.00 EUR for k9: not an invoice assigned" in t for t in texts)
    assert any(t.startswith("indirect payment") and "paid twice?" in t for t in texts)
    assert len(findings) == 6
    confidential, _ = schedule_findings(events[:2], assignments, {**terms, "mode": "confidential"},
                                        bank_payments=payments)
    assert confidential == []  # in confidential mode the debtors pay the company: nothing to pass on
