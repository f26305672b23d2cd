"""Property-based tests (hypothesis) on random invoices and payments, through the real store and engine:
the allocations of a line never exceed it, no invoice is over-allocated, re-running reconcile changes
nothing, and accepting then rejecting a suggestion (or allocating by hand then rejecting) restores the
previous state."""

from __future__ import annotations

import tempfile
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from connector.errors import InvariantViolation
from connector.money import Money
from connector.reconcile.engine import run_reconciliation
from connector.reconcile.review import accept_suggestion, allocate_manually, reject_suggestion
from connector.store import Store
from tests.reconcile.helpers import add_invoices, config, debtor, import_lines, line

DEBTORS = [debtor("Alpha Works SAS", "DE300000001", "DE89370400440532013000"),
           debtor("Bravo Trade GmbH", "DE300000002", "DE02120300000000202051")]
AMOUNTS = ["100.00", "250.00", "250.00", "99.90", "1000.00", "40.00"]

invoice_specs = st.lists(st.tuples(st.sampled_from(AMOUNTS), st.integers(0, 1), st.booleans()), min_size=1,
                         max_size=6)
line_specs = st.lists(st.tuples(
    st.lists(st.integers(0, 5), max_size=3),  # invoices named in the text
    st.sampled_from(["exact", "part", "more", "fee", "random"]),
    st.integers(-1, 1),  # payer IBAN (-1: none)
    st.integers(1, 200_000)), min_size=1, max_size=6)


def build(store: Store, invoices, lines) -> None:
    specs = []
    for n, (amount, who, is_credit) in enumerate(invoices):
        changes = {"buyer": DEBTORS[who]}
        if is_credit and n:
            changes["kind"] = "credit_note"
        specs.append((f"H-{n + 1:04d}", amount, changes))
    add_invoices(store, *specs)
    rows = []
    for named, shape, payer, cents in lines:
        named = [i for i in named if i < len(specs)]
        base = sum((Decimal(specs[i][1]) for i in named), Decimal(0)) or Decimal(cents) / 100
        amount = {"exact": base, "part": (base / 2).quantize(Decimal("0.01")), "more": base + 5,
                  "fee": base - Decimal("2.50"), "random": Decimal(cents) / 100}[shape]
        if amount <= 0:
            amount = Decimal("1.00")
        rows.append(line(str(amount), " ".join(specs[i][0] for i in named) or "payment",
                         iban=DEBTORS[payer].ibans[0] if payer >= 0 else None))
    import_lines(store, rows)


def snapshot(store: Store):
    allocations = store._all("SELECT id, line_id, invoice_id, amount_minor, writeoff_minor, status, active, proposal "
                             "FROM allocations ORDER BY id")
    lines = store._all("SELECT id, match_status FROM statement_lines ORDER BY id")
    return [tuple(r) for r in allocations], [tuple(r) for r in lines]


def check_invariants(store: Store) -> None:
    for row in store._all("SELECT l.id, l.amount_minor, coalesce(sum(a.amount_minor), 0) FROM statement_lines l "
                          "LEFT JOIN allocations a ON a.line_id = l.id AND a.active = 1 AND a.status IN "
                          "('auto', 'manual') GROUP BY l.id"):
        assert 0 <= row[2] <= max(row[1], 0) or (row[1] < 0 and row[2] == 0), tuple(row)
    for row in store._all("SELECT i.id, i.amount_due_minor, coalesce(sum(CASE WHEN i.kind = 'credit_note' THEN "
                          "-a.invoice_amount_minor ELSE a.invoice_amount_minor END + a.writeoff_minor), 0) "
                          "FROM invoices i LEFT JOIN allocations a ON a.invoice_id = i.id AND a.active = 1 "
                          "AND a.status IN ('auto', 'manual') GROUP BY i.id"):
        assert 0 <= row[2] <= row[1], tuple(row)


SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(invoices=invoice_specs, lines=line_specs)
# found by this test (2026-12-06): the IBAN of debtor 2 pays an invoice of debtor 1 by reference; inside the run
# that made the IBAN ambiguous, but the store only taught IBANs seen for one debtor, so the next run read
# the IBAN as debtor 2's again and rewrote the 0.01 line's reason (no_candidate -> identity.no_open_item)
@example(invoices=[("100.00", 0, False), ("100.00", 1, False)],
         lines=[([], "exact", 1, 1), ([0], "exact", 1, 1), ([1], "exact", 1, 1)])
def test_reconcile_invariants_and_rerun(invoices, lines):
    with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "p.db", actor="test") as store:
        build(store, invoices, lines)
        run_reconciliation(store, config())
        check_invariants(store)
        before = snapshot(store)
        again = run_reconciliation(store, config())
        assert again.written == 0
        assert snapshot(store) == before


@SETTINGS
@given(invoices=invoice_specs, lines=line_specs, pick=st.integers(0, 50))
def test_accept_then_reject_restores(invoices, lines, pick):
    with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "p.db", actor="test") as store:
        build(store, invoices, lines)
        run_reconciliation(store, config())
        suggested = [r[0] for r in store._all("SELECT id FROM allocations WHERE status = 'suggested' AND active = 1 "
                                              "ORDER BY id")]
        if not suggested:
            return
        target = suggested[pick % len(suggested)]
        before = snapshot(store)
        try:
            accept_suggestion(store, target, actor="alice")
        except InvariantViolation:  # the suggestion no longer fits (another line took the cash): refused whole
            assert snapshot(store) == before
            return
        check_invariants(store)
        reject_suggestion(store, target, actor="alice")
        assert snapshot(store)[1] == before[1]
        assert [r for r in snapshot(store)[0] if r[6]] == [r for r in before[0] if r[6]]  # the active state
        check_invariants(store)


@SETTINGS
@given(invoices=invoice_specs, lines=line_specs, pick=st.integers(0, 50), cents=st.integers(1, 150_000))
def test_manual_allocation_never_over_allocates_and_reject_restores(invoices, lines, pick, cents):
    with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "p.db", actor="test") as store:
        build(store, invoices, lines)
        run_reconciliation(store, config())
        line_ids = [r[0] for r in store._all("SELECT id FROM statement_lines ORDER BY id")]
        invoice_ids = [r[0] for r in store._all("SELECT id FROM invoices ORDER BY id")]
        before = snapshot(store)
        line_id, invoice_id = line_ids[pick % len(line_ids)], invoice_ids[pick % len(invoice_ids)]
        try:
            ids = allocate_manually(store, line_id, [(invoice_id, Money.from_minor(cents, "EUR"))], actor="bob")
        except InvariantViolation:
            assert snapshot(store) == before
            return
        check_invariants(store)
        reject_suggestion(store, ids[0], actor="bob")
        check_invariants(store)
        assert [r for r in snapshot(store)[0] if r[6]] == [r for r in before[0] if r[6]]
        assert snapshot(store)[1] == before[1]
