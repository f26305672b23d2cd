"""Reconciliation invariants as a hypothesis stateful machine on the real store (scenario E2 for issue 7's code).

The machine issues invoices, imports camt.053 statements (bank references drawn from a small pool so that
re-downloads and overlapping statements happen often; the same file imported twice), runs the matching engine,
accepts and rejects suggestions as a person would, allocates lines by hand, and posts the ledger — in any order.
After every step:

- every bank line is stored exactly once and the stored cash equals, to the minor unit, what the bank sent
  (Σ stored lines == Σ distinct bank lines, computed from the generated Decimal amounts);
- no line's decided allocations exceed it, no invoice receives more than it has open, no line carries two live
  decisions, every ledger piece balances (``recon.check_store``);
- right after a ledger run, every matched line's cash is on the bank account exactly once.

It runs twice: on Cessio's importer (must hold) and, as the negative control, on an importer that carries
amounts as binary floats on their way to minor units (``int(float(amount) * 100)``, the classic mistake); the
same machine must catch it.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import datetime as dt
import shutil
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

import connector.reconcile.importing as importing
from connector.config import parse_config
from connector.errors import InvariantViolation
from connector.money import Money
from connector.store import Store
from tests.factories import make_invoice
from tests.reliability.recon import CONFIG, check_store
from tests.reliability.statement_files import Entry, camt_bytes

pytestmark = pytest.mark.slow

_TEMPLATE: dict[str, Path] = {}


def template_db() -> Path:
    """One migrated store per process, copied for each example (migrating takes longer than the example)."""
    if "db" not in _TEMPLATE:
        folder = Path(tempfile.mkdtemp(prefix="cessio-recon-machine-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        Store(folder / "template.db").close()
        _TEMPLATE["db"] = folder / "template.db"
    return _TEMPLATE["db"]


def float_amounts(real):
    """Negative control: the importer's amounts go through a binary float on their way to minor units."""

    def read(data: bytes, source: str):
        statements, info = real(data, source)
        out = []
        for statement in statements:
            lines = tuple(dataclasses.replace(line, amount=Money.from_minor(
                int(float(line.amount.amount) * 100), line.amount.currency)) for line in statement.lines)
            out.append(dataclasses.replace(statement, lines=lines))
        return out, info

    return read


class ReconciliationMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="cessio-recon-example-"))
        shutil.copy(template_db(), self.folder / "cessio.db")
        self.store = Store(self.folder / "cessio.db", actor="machine", migrate=False)
        self.config = parse_config(CONFIG)
        self.invoices: dict[str, Decimal] = {}
        self.bank: dict[str, Entry] = {}  # bank reference -> the line as the bank sent it (first time)
        self.last_file: bytes | None = None
        self.files = 0
        self.posted = False

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- the world -------------------------------------------------------------------------------------
    @rule(number=st.integers(1, 8), cents=st.integers(1, 500_000))
    def issue_invoice(self, number, cents):
        key = f"FA-2026-{number:05d}"
        if key in self.invoices:
            return
        amount = Decimal(cents).scaleb(-2)
        with self.store.transaction():
            self.store.save_invoice(make_invoice(key, str(amount)))
        self.invoices[key] = amount

    @rule(data=st.data(), size=st.integers(1, 4))
    def import_statement(self, data, size):
        entries = []
        used = set()
        for _ in range(size):
            ref = f"BR{data.draw(st.integers(1, 12)):04d}"
            if ref in used:
                continue
            used.add(ref)
            if ref not in self.bank:  # a reference names one bank line forever: the same content every time
                pays = data.draw(st.sampled_from([*sorted(self.invoices), None]) if self.invoices else st.none())
                if pays is not None and data.draw(st.booleans()):
                    amount = self.invoices[pays]  # pays the invoice exactly
                else:
                    amount = Decimal(data.draw(st.integers(-300_000, 600_000).filter(bool))).scaleb(-2)
                self.bank[ref] = Entry(ref, amount, f"Facture {pays}" if pays else "VIREMENT", "ACME SA",
                                       dt.date(2026, 11, 20) + dt.timedelta(days=int(ref[2:]) % 7))
            entries.append(self.bank[ref])
        self.files += 1
        self.last_file = camt_bytes(entries, statement_id=f"S{self.files}")
        result = importing.import_bytes(self.store, self.last_file, file_name=f"s{self.files}.xml")
        assert result.error is None, result.error
        self.posted = False

    @precondition(lambda self: self.last_file is not None)
    @rule()
    def import_the_same_file_again(self):
        before = self.store.count_statement_lines()
        result = importing.import_bytes(self.store, self.last_file, file_name=f"again-{self.files}.xml")
        assert result.error is None and result.new == 0
        assert self.store.count_statement_lines() == before

    # -- the engine and the people -------------------------------------------------------------------
    @rule()
    def reconcile(self):
        from connector.reconcile.engine import run_reconciliation

        run_reconciliation(self.store, self.config)
        self.posted = False

    @rule(pick=st.integers(0, 10), accept=st.booleans())
    def review_a_suggestion(self, pick, accept):
        from connector.reconcile.review import accept_suggestion, reject_suggestion, review_queue

        queue = review_queue(self.store, limit=20, offset=0)
        candidates = [c for item in queue for c in item["candidates"]]
        if not candidates:
            return
        chosen = candidates[pick % len(candidates)]["allocation_id"]
        # a refusal (the invoice meanwhile settled) is refused in its transaction, nothing written
        with contextlib.suppress(InvariantViolation):
            (accept_suggestion if accept else reject_suggestion)(self.store, chosen, actor="alice")
        self.posted = False

    @rule(pick=st.integers(0, 50), invoice=st.integers(1, 8), share=st.sampled_from(["1", "0.5", "0.33"]))
    def allocate_by_hand(self, pick, invoice, share):
        from connector.reconcile.review import allocate_manually

        lines = [r for r in self.store.statement_line_rows() if r["match_status"] in ("open", "suggested")
                 and r["amount_minor"] > 0]
        key = f"FA-2026-{invoice:05d}"
        if not lines or key not in self.invoices:
            return
        line = lines[pick % len(lines)]
        invoice_id = self.store.recon_invoice_by_number(key, "EUR")
        minor = int(line["amount_minor"] * Decimal(share))
        if not minor:
            return
        with contextlib.suppress(InvariantViolation):  # more than the invoice has open: refused
            allocate_manually(self.store, line["id"], [(invoice_id, Money.from_minor(minor, "EUR"))], actor="bob")
        self.posted = False

    @rule()
    def post_ledger(self):
        from connector.reconcile.ledger import post_ledger

        post_ledger(self.store, self.config)
        self.posted = True

    # -- invariants ------------------------------------------------------------------------------------
    @invariant()
    def every_bank_line_once_and_to_the_cent(self):
        rows = self.store.statement_line_rows()
        assert len(rows) == len(self.bank), f"{len(rows)} lines stored for {len(self.bank)} bank lines"
        stored = sum(r["amount_minor"] for r in rows)
        sent = sum(int(e.amount.scaleb(2)) for e in self.bank.values())
        assert stored == sent, f"the store holds {stored} minor units of cash, the bank sent {sent}"

    @invariant()
    def allocations_ledger_and_audit_hold(self):
        problems = check_store(self.folder / "cessio.db", acked_files=set(), acked_runs=set(),
                               expected_lines=len(self.bank) if self.posted else None)
        assert problems == []


MACHINE_SETTINGS = settings(max_examples=20, stateful_step_count=14, deadline=None, database=None,
                            suppress_health_check=list(HealthCheck))


def test_reconciliation_machine_holds():
    run_state_machine_as_test(ReconciliationMachine, settings=MACHINE_SETTINGS)


def test_negative_control_float_money_in_the_importer_is_caught(monkeypatch):
    monkeypatch.setattr(importing, "read_statement_with_info", float_amounts(importing.read_statement_with_info))
    with pytest.raises(AssertionError, match="minor units of cash"):
        run_state_machine_as_test(ReconciliationMachine, settings=settings(
            MACHINE_SETTINGS, max_examples=200, derandomize=True, phases=[Phase.generate]))
