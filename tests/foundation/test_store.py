"""The store: migrations, invoice versions, quarantine, audit chain, crash safety of writes."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from connector.errors import InvariantViolation, Quarantine
from connector.money import Money
from connector.store import Store
from connector.store.migrations import migrations
from tests.factories import make_invoice


def test_pragmas(store):
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_migrations_from_empty_then_rerun_idempotent(tmp_path):
    path = tmp_path / "m.db"
    first = Store(path)
    applied = [m.name for m in migrations.applied(first.db)]
    assert applied and applied[0] == "0001_core"
    tables = set(first.db.table_names())
    assert {"audit", "invoices", "invoice_versions", "quarantine", "assignments", "factor_events",
            "statements", "statement_lines", "allocations", "ledger_entries", "sync_cursors"} <= tables
    first.close()
    second = Store(path)
    assert second.migrate() == []
    assert [m.name for m in migrations.applied(second.db)] == applied
    second.close()


def test_invoice_versions(store):
    invoice = make_invoice()
    with store.transaction():
        assert store.save_invoice(invoice).status == "new"
    with store.transaction():
        again = store.save_invoice(invoice)
    assert again.status == "unchanged" and again.version == 1
    changed = dataclasses.replace(invoice, amount_due=Money.parse("1100.00", "EUR"))
    with store.transaction():
        result = store.save_invoice(changed)
    assert result.status == "changed" and result.version == 2
    assert result.diff == {"amount_due.amount": ["1200.00", "1100.00"]}
    assert store.get_invoice(result.invoice_id) == changed
    assert store.get_invoice(result.invoice_id, 1) == invoice
    row = store.invoice_row(result.invoice_id)
    assert row["amount_due_minor"] == 110000 and row["current_version"] == 2
    events = [r["event"] for r in reversed(store.audit_rows())]
    assert events == ["invoice.created", "invoice.changed"]


def test_source_bookkeeping_is_not_a_new_version(store):
    invoice = make_invoice()
    with store.transaction():
        store.save_invoice(invoice)
    with store.transaction():
        result = store.save_invoice(dataclasses.replace(invoice, source_id="other-id", erp_status="paid"))
    assert result.status == "unchanged"
    assert store.invoice_row(result.invoice_id)["erp_status"] == "paid"


def test_writes_outside_a_transaction_are_refused(store):
    with pytest.raises(InvariantViolation):
        store.save_invoice(make_invoice())
    with pytest.raises(InvariantViolation):
        store.audit("x")


def test_a_failed_transaction_leaves_nothing(store):
    with pytest.raises(RuntimeError), store.transaction():
        store.save_invoice(make_invoice())
        raise RuntimeError("boom")
    assert store.count_invoices() == 0
    assert store.verify_audit().rows == 0


def test_quarantine_is_idempotent_and_resolvable(store):
    error = Quarantine("BT-9 due date is not a date", source="a.xml", field="DueDate")
    with store.transaction():
        first = store.quarantine(error, source="files", location="a.xml", content=b"<x/>")
    with store.transaction():
        second = store.quarantine(error, source="files", location="a.xml", content=b"<x/>")
    assert first == second
    [row] = store.quarantined()
    assert row["seen_count"] == 2 and row["field"] == "DueDate"
    with store.transaction():
        assert store.resolve_quarantine(source="files", location="a.xml") == 1
    assert store.quarantined() == []


def test_cursor_round_trip(store):
    assert store.get_cursor("erp") is None
    with store.transaction():
        store.save_cursor("erp", {"write_date": "2026-11-01T10:00:00", "id": 42})
    assert store.get_cursor("erp") == {"write_date": "2026-11-01T10:00:00", "id": 42}


def test_audit_chain_verifies_and_catches_tampering(store):
    for n in range(5):
        with store.transaction():
            store.save_invoice(make_invoice(number=f"F{n}"))
    assert store.verify_audit().ok
    # the triggers refuse edits through SQL
    with pytest.raises(sqlite3.IntegrityError):
        store.conn.execute("UPDATE audit SET payload = '{}' WHERE seq = 3")
    # someone with file access drops the trigger and edits row 3
    store.conn.execute("DROP TRIGGER audit_no_update")
    store.conn.execute("UPDATE audit SET payload = replace(payload, 'F2', 'F9') WHERE seq = 3")
    verdict = store.verify_audit()
    assert not verdict.ok and verdict.first_broken_seq == 3
    assert "hash" in verdict.problem


def test_audit_verify_catches_a_deleted_row(store):
    for n in range(4):
        with store.transaction():
            store.audit("test.event", payload={"n": n})
    store.conn.execute("DROP TRIGGER audit_no_delete")
    store.conn.execute("DELETE FROM audit WHERE seq = 2")
    verdict = store.verify_audit()
    assert not verdict.ok and verdict.first_broken_seq == 3


def test_cli_audit_verify_names_the_broken_row(tmp_path):
    from click.testing import CliRunner

    from connector.cli import cli

    db = tmp_path / "s.db"
    with Store(db) as store:
        for n in range(3):
            with store.transaction():
                store.audit("test.event", payload={"n": n})
        store.conn.execute("DROP TRIGGER audit_no_update")
        store.conn.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 2")
    result = CliRunner().invoke(cli, ["--db", str(db), "audit", "verify"])
    assert result.exit_code == 1
    assert "BROKEN at seq 2" in result.output


def test_ledger_and_documents_are_immutable(store):
    with store.transaction():
        digest = store.keep_document(b"<Invoice/>", file_name="a.xml")
    with pytest.raises(sqlite3.IntegrityError):
        store.conn.execute("UPDATE documents SET content = x'00' WHERE sha256 = ?", (digest,))


# -- crash safety --------------------------------------------------------------------------------------

WRITER = r"""
import sys, datetime as dt
from connector.store import Store
from tests.factories import make_invoice
store = Store(sys.argv[1], actor="crash-writer")
n = int(sys.argv[2])
while True:
    with store.transaction():
        for k in range(5):   # a batch: five invoices and their audit rows, all or nothing
            store.save_invoice(make_invoice(number=f"C{n:06d}-{k}"))
        store.save_cursor("crash", {"n": n})
    print(n, flush=True)     # acknowledged only after COMMIT returned
    n += 1
"""


@pytest.mark.slow
def test_sigkill_in_the_middle_of_batches_leaves_the_store_consistent(tmp_path):
    db = tmp_path / "crash.db"
    project = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(project)}
    acked: list[int] = []
    next_batch = 0
    for round_ in range(8):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(next_batch)], cwd=project, env=env,
                                stdout=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        seen = 0
        while seen < 3 + round_ and time.monotonic() < deadline:  # let it commit a few batches
            line = proc.stdout.readline()
            if not line:
                break
            acked.append(int(line))
            seen += 1
        time.sleep(random.uniform(0, 0.03))  # land anywhere: between or inside a transaction
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        with Store(db) as store:
            cursor = store.get_cursor("crash")
            next_batch = cursor["n"] + 1
    with Store(db) as store:
        assert store.integrity_check() == []
        verdict = store.verify_audit()
        assert verdict.ok, verdict
        committed = store.get_cursor("crash")["n"]
        # acknowledged ⊆ durable: every acknowledged batch is there in full
        assert max(acked) <= committed
        assert store.count_invoices() == 5 * (committed + 1)
        per_batch = {}
        for row in store.invoice_rows():
            per_batch.setdefault(row["number"].split("-")[0], 0)
            per_batch[row["number"].split("-")[0]] += 1
        assert set(per_batch.values()) == {5}, "a batch was half-written"
        created = [r for r in store.audit_rows(limit=10_000) if r["event"] == "invoice.created"]
        assert len(created) == store.count_invoices()
        assert json.loads(created[0]["payload"])["version"] == 1
