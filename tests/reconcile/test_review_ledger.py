"""Review decisions (who and when in the audit log, refusals), ledger posting (balanced, never edited,
reversed when a decision is taken back), the FEC and CSV exports, and the ERP write-back."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal

import pytest

from connector.adapter import Adapter
from connector.errors import InvariantViolation
from connector.money import Money
from connector.reconcile.engine import run_reconciliation
from connector.reconcile.export import COLUMNS, reconciliation_rows, write_reconciliation
from connector.reconcile.ledger import FEC_COLUMNS, export_csv, export_fec, post_ledger
from connector.reconcile.review import accept_suggestion, allocate_manually, reject_suggestion, review_queue
from tests.reconcile.helpers import add_invoices, allocations, config, debtor, import_lines, line

ACME = debtor("Acme Industries SAS", "DE111111111", "DE89370400440532013000")


def audit_events(store, actor):
    return [r["event"] for r in store._all("SELECT event FROM audit WHERE actor = ? ORDER BY seq", (actor,))]


def test_accept_reject_and_manual_allocation_are_audited_with_the_actor(store):
    add_invoices(store, ("A-1", "500.00", {"buyer": ACME}), ("A-2", "500.00", {"buyer": ACME}),
                 ("B-1", "300.00"))
    ids = import_lines(store, [line("500.00", "payment", iban=ACME.ibans[0]), line("300.00", "no reference")])
    run_reconciliation(store, config())
    first, second = (ids[r] for r in sorted(ids))
    queue = review_queue(store, limit=10, offset=0)
    assert [q["line_id"] for q in queue] == [first, second]
    candidates = queue[0]["candidates"]
    assert {c["invoice_number"] for c in candidates} == {"A-1", "A-2"} and candidates[0]["evidence"]
    accepted = accept_suggestion(store, candidates[0]["allocation_id"], actor="alice")
    assert allocations(store, first) == [("manual", candidates[0]["invoice_number"], 50000, 0)]
    assert store.statement_line(first)["match_status"] == "matched"
    with pytest.raises(InvariantViolation):  # a decided allocation is no suggestion to accept
        accept_suggestion(store, accepted[0], actor="alice")
    reject_suggestion(store, accepted[0], actor="alice")  # takes the acceptance back
    assert {a[0] for a in allocations(store, first)} == {"suggested"} and len(allocations(store, first)) == 2
    reject_suggestion(store, candidates[0]["allocation_id"], actor="alice")  # declines that candidate
    assert [a[1] for a in allocations(store, first)] == [candidates[1]["invoice_number"]]
    invoice_b = store.recon_invoice_by_number("B-1", "EUR")
    allocate_manually(store, second, [(invoice_b, Money.parse("300.00", "EUR"))], actor="bob")
    assert allocations(store, second) == [("manual", "B-1", 30000, 0)]
    with pytest.raises(InvariantViolation):  # B-1 is settled: nothing more can go to it
        allocate_manually(store, first, [(invoice_b, Money.parse("1.00", "EUR"))], actor="bob")
    assert audit_events(store, "alice") == ["reconcile.accepted", "reconcile.accept_undone", "reconcile.rejected"]
    assert audit_events(store, "bob") == ["reconcile.manual"]
    assert store.verify_audit().ok
    run_reconciliation(store, config())  # the engine never proposes a rejected pair again
    assert candidates[0]["invoice_number"] not in {a[1] for a in allocations(store, first)}


def test_export_columns_and_amount_rules(store):
    add_invoices(store, ("E-1", "1000.00"), ("E-2", "400.00"), ("EN-1", "100.00", {"kind": "credit_note"}))
    import_lines(store, [line("992.00", "E-1", charges=Decimal("8.00")), line("300.00", "E-2 moins EN-1"),
                         line("12.00", "nothing to see")])
    run_reconciliation(store, config())
    rows = reconciliation_rows(store)
    buffer = io.StringIO()
    write_reconciliation(rows, buffer, "csv")
    header = buffer.getvalue().splitlines()[0].split(",")
    assert tuple(header[:11]) == COLUMNS
    by_invoice = {r["invoice_number"]: r for r in rows}
    assert by_invoice["E-1"]["allocated_amount"] == "992.00" and by_invoice["E-1"]["writeoff_amount"] == "8.00"
    assert by_invoice["E-2"]["allocated_amount"] == "400.00" and by_invoice["EN-1"]["allocated_amount"] == "-100.00"
    unmatched = [r for r in rows if not r["invoice_number"]]
    assert len(unmatched) == 1 and unmatched[0]["allocated_amount"] == "0.00" and unmatched[0]["status"] == "unmatched"
    assert all(r["statement_line_id"].startswith("T") for r in rows)  # the bank's AcctSvcrRef
    out = io.StringIO()
    write_reconciliation(rows, out, "json")
    assert list(json.loads(out.getvalue())[0])[:11] == list(COLUMNS)


class RecordingErp(Adapter):
    """Test double of an ERP source at the system's edge: records payments, finds them again by reference."""

    type_name = "recording"
    supports_write_back = True

    def __init__(self, name, options):
        super().__init__(name, options)
        self.payments: dict[str, tuple] = {}

    def record_payment(self, *, source_id, amount, date, reference):
        self.payments.setdefault(reference, (source_id, amount, date))
        return f"pay-{len(self.payments)}"


def test_ledger_is_balanced_reversed_not_edited_and_written_back(store):
    add_invoices(store, ("L-1", "1000.00", {"source": "erp", "source_id": "inv-1"}), ("L-2", "250.00"))
    ids = import_lines(store, [line("990.00", "L-1"), line("260.00", "L-2")])
    run_reconciliation(store, config())
    erp = RecordingErp("erp", {})
    result = post_ledger(store, config(), adapters={"erp": erp})
    assert (result.posted, result.written_back) == (3, 1)  # two receipts and 10.00 unapplied
    assert erp.payments["cessio-allocation-1"][1] == Money.parse("990.00", "EUR")
    rows = store.ledger_rows()
    assert sum(r["debit_minor"] for r in rows) == sum(r["credit_minor"] for r in rows)
    accounts = {(r["account"], r["debit_minor"], r["credit_minor"]) for r in rows if r["piece_ref"] == "A1.1"}
    assert accounts == {("512000", 99000, 0), ("627000", 1000, 0), ("411000", 0, 100000)}
    assert post_ledger(store, config(), adapters={"erp": erp}).posted == 0  # idempotent
    with pytest.raises(InvariantViolation):
        store._execute("UPDATE ledger_entries SET debit_minor = 1 WHERE id = 1")
    # taking the decision back posts a reversal, never an edit
    first = ids[sorted(ids)[0]]
    reject_suggestion(store, store.recon_line_allocations(first)[0]["id"], actor="carol")
    result = post_ledger(store, config(), adapters={"erp": erp})
    assert result.reversed == 1
    reversal = store.ledger_piece("BQ", "A1.1R")
    assert [(r["debit_minor"], r["credit_minor"]) for r in reversal] == [(0, 99000), (0, 1000), (100000, 0)]
    assert all(r["reverses"] for r in reversal)
    fec = io.StringIO()
    export_fec(store, fec, config())
    table = list(csv.reader(io.StringIO(fec.getvalue()), delimiter="\t"))
    assert tuple(table[0]) == FEC_COLUMNS and table[1][3] == dt.date(2026, 11, 27).strftime("%Y%m%d")
    assert table[1][11] == "990,00"
    out = io.StringIO()
    assert export_csv(store, out) == len(store.ledger_rows())


def test_factor_events_are_posted_with_vat(store):
    add_invoices(store, ("FX-1", "1200.00"))
    invoice = store.invoice_row(store.recon_invoice_by_number("FX-1", "EUR"))
    with store.transaction():
        for event_id, kind, amount, vat in (("e1", "assignment.accepted", 120000, None), ("e2", "fee.charged", 300, 60),
                                            ("e3", "funding.paid", 108000, None), ("e4", "limit.decided", 5, None)):
            store.record_factor_event("f", {"event_id": event_id, "kind": kind, "invoice_key": invoice["invoice_key"],
                                            "amount_minor": amount, "vat_minor": vat, "currency": "EUR",
                                            "occurred_on": "2026-11-20"}, [], None)
    result = post_ledger(store, config())
    assert result.factor_posted == 3 and not result.not_posted
    fee = store.ledger_piece("FACT", "Ef:e2")
    assert [(r["account"], r["debit_minor"], r["credit_minor"]) for r in fee] == [
        ("622500", 300, 0), ("445660", 60, 0), ("467000", 0, 360)]
