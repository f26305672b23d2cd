"""Finding 8: silent corruption of business rows is caught by ``cessio check``.

A store built through the real code passes; a byte changed inside an invoice version's data (still valid
JSON), an ``invoices`` column, a fingerprint, a ledger line or a statement line is reported as one ``FAIL``
line naming the table and the row, and ``check`` exits 1. The rows are changed with a plain sqlite3
connection, as a scribbled page would change them: no store method can write such a row.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import cli
from connector.config import parse_config
from connector.ingest import ingest_bytes
from connector.store import Store
from connector.store.integrity import check_invoice_version, check_ledger_piece
from tests.factories import make_invoice

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "einvoice"
RECON_CONFIG = """
[company]
name = "Cessio Demo SAS"
[reconciliation]
accounts = ["FR7630006000011234567890189", "FR7630006000019876543210145"]
factor_payers = ["FR7610107001011234567890129"]
"""


def _invoices_store(db: Path, count: int = 30) -> None:
    """Invoices saved one by one and in a batch, one changed into a second version, one ERP status."""
    with Store(db, actor="test") as store:
        with store.transaction():
            store.save_invoices([make_invoice(number=f"B{n:04d}", amount=f"{100 + n}.50") for n in range(count)])
        with store.transaction():
            store.save_invoice(make_invoice(number="B0003", amount="999.99"))  # version 2
            store.save_invoice(make_invoice(number="C0001", kind="credit_note", currency="JPY", amount="1500",
                                            due=None))
            store.save_invoice(make_invoice(number="B0005", amount="105.50", erp_status="paid"))  # row only


def _reconciled_and_posted(db: Path, *, seed: int, n_invoices: int, n_lines: int) -> tuple[int, int]:
    """A generated scenario's invoices and camt.053 statement, reconciled and posted to the ledger through the
    real code: (lines matched automatically, receipts posted to the ledger)."""
    from connector.reconcile.engine import run_reconciliation
    from connector.reconcile.generator import generate, scenario_camt
    from connector.reconcile.importing import import_bytes
    from connector.reconcile.ledger import post_ledger

    scenario = generate(seed, n_invoices=n_invoices, n_lines=n_lines)
    config = parse_config(RECON_CONFIG)
    with Store(db, actor="test") as store:
        with store.transaction():
            store.save_invoices(scenario.invoices)
        import_bytes(store, scenario_camt(scenario), file_name="camt053.xml")
        matched = run_reconciliation(store, config).auto
        posted = post_ledger(store, config).posted
    return matched, posted


def _check(db: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--db", str(db), "check", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def _check_fails(db: Path, *args: str) -> str:
    """``cessio check`` on a tampered store: it must exit 1; its output is returned for the FAIL lines."""
    code, output = _check(db, *args)
    assert code == 1, output
    return output


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A store of invoices built through the real code (``_invoices_store``), to be tampered with."""
    path = tmp_path / "invoices.db"
    _invoices_store(path)
    return path


def _tamper(db: Path, sql: str, params: tuple = ()) -> int:
    conn = sqlite3.connect(db)
    try:
        changed = conn.execute(sql, params).rowcount
        conn.commit()
    finally:
        conn.close()
    assert changed >= 1
    return changed


def _version_id(db: Path, number: str, version: int = 1) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT i.id FROM invoices i JOIN invoice_versions v ON v.invoice_id = i.id "
                            "WHERE i.number = ? AND v.version = ?", (number, version)).fetchone()[0]
    finally:
        conn.close()


def _fail_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("FAIL")]


# -- no false alarm -------------------------------------------------------------------------------------------

def test_a_store_built_through_the_real_code_passes(tmp_path):
    """Invoices, versions, a statement, a reconciliation and its ledger: every pass has rows, none fails."""
    db = tmp_path / "real.db"
    _invoices_store(db)
    matched, posted = _reconciled_and_posted(db, seed=20261206, n_invoices=150, n_lines=120)
    assert matched > 0 and posted > 0, (matched, posted)
    with Store(db, actor="test") as store:
        verdict = store.verify_business_rows()
    assert verdict.ok, [str(m) for m in verdict.mismatches]
    assert verdict.counts["versions"] > verdict.counts["invoices"] >= 180
    assert verdict.counts["ledger pieces"] > 0 and verdict.counts["statement lines"] >= 100
    code, output = _check(db)
    assert code == 0, output
    assert re.search(r"^ok   business rows: \d+ invoices, \d+ versions, \d+ ledger pieces, \d+ statement lines "
                     r"checked in [\d.]+ s$", output, re.M), output


def test_every_golden_einvoice_fixture_passes(tmp_path):
    """Every syntax, profile and edge case the readers accept: the stored data rebuilds to the same text."""
    db = tmp_path / "golden.db"
    with Store(db, actor="test") as store:
        stored = [outcome.invoice_id for path in sorted(FIXTURES.iterdir()) if path.suffix in (".xml", ".pdf")
                  for outcome in [ingest_bytes(store, path.read_bytes(), location=path.name)]
                  if outcome.invoice_id is not None]
        verdict = store.verify_business_rows()
        invoices = store.count_invoices()
    assert invoices >= 15 and len(stored) > invoices  # one fixture is a second version of another
    assert verdict.ok, [str(m) for m in verdict.mismatches]
    assert verdict.counts["invoices"] == invoices


# -- what is caught -------------------------------------------------------------------------------------------

def test_an_amount_digit_changed_in_the_version_data_is_reported_naming_the_row(db):
    invoice_id = _version_id(db, "B0007")
    _tamper(db, "UPDATE invoice_versions SET data = replace(data, '\"amount\":\"107.50\"', '\"amount\":\"107.60\"') "
                "WHERE invoice_id = ? AND version = 1", (invoice_id,))
    output = _check_fails(db)
    failures = _fail_lines(output)
    assert f"FAIL invoice_versions invoice_id={invoice_id} version=1: fingerprint" in output, output
    assert any(line.startswith(f"FAIL invoices id={invoice_id}: amount_due_minor is 10750, version 1 says 10760")
               for line in failures), output
    assert "ok   store:" in output and "ok   audit:" in output  # what check saw before this finding
    assert failures[-1].startswith("FAIL business rows: ")


def test_a_changed_amount_due_column_is_reported(db):
    invoice_id = _version_id(db, "B0011")
    _tamper(db, "UPDATE invoices SET amount_due_minor = amount_due_minor + 1000 WHERE id = ?", (invoice_id,))
    output = _check_fails(db)
    assert _fail_lines(output)[:1] == [f"FAIL invoices id={invoice_id}: amount_due_minor is 12150, version 1 says "
                                       "11150"], output
    assert "FAIL business rows: 1 mismatches" in output


def test_a_changed_fingerprint_is_reported(db):
    invoice_id = _version_id(db, "B0003", version=2)
    _tamper(db, "UPDATE invoice_versions SET fingerprint = substr(fingerprint, 2) || '0' "
                "WHERE invoice_id = ? AND version = 2", (invoice_id,))
    output = _check_fails(db)
    assert f"FAIL invoice_versions invoice_id={invoice_id} version=2: fingerprint '" in output, output


def test_an_old_version_is_checked_too_and_a_current_version_row_must_exist(db):
    invoice_id = _version_id(db, "B0003", version=2)
    _tamper(db, "UPDATE invoice_versions SET data = replace(data, '103.50', '103.70') "
                "WHERE invoice_id = ? AND version = 1", (invoice_id,))
    _tamper(db, "UPDATE invoices SET current_version = 3 WHERE id = ?", (invoice_id,))
    output = _check_fails(db)
    assert f"FAIL invoice_versions invoice_id={invoice_id} version=1: fingerprint" in output, output
    assert f"FAIL invoices id={invoice_id}: no invoice_versions row for current_version 3" in output


def test_a_source_field_or_a_buyer_column_changed_is_reported(db):
    """Fields outside the fingerprint (the source) are still covered by the invoice row's copy of them."""
    invoice_id = _version_id(db, "B0012")
    _tamper(db, "UPDATE invoice_versions SET data = replace(data, '\"source\":\"test\"', '\"source\":\"tesT\"') "
                "WHERE invoice_id = ?", (invoice_id,))
    other = _version_id(db, "B0013")
    _tamper(db, "UPDATE invoices SET buyer_key = 'vat:DE123456780' WHERE id = ?", (other,))
    output = _check_fails(db)
    assert f"FAIL invoices id={invoice_id}: source is 'test', version 1 says 'tesT'" in output, output
    assert f"FAIL invoices id={other}: buyer_key is 'vat:DE123456780', version 1 says 'vat:DE123456789'" in output


def test_undecodable_or_broken_data_is_one_failure_not_a_traceback(db):
    first, second, third = (_version_id(db, n) for n in ("B0001", "B0002", "B0020"))
    _tamper(db, "UPDATE invoice_versions SET data = CAST(data || x'ff' AS TEXT) "
                "WHERE invoice_id = ?", (first,))
    _tamper(db, "UPDATE invoice_versions SET data = substr(data, 1, 40) WHERE invoice_id = ?", (second,))
    _tamper(db, "UPDATE invoice_versions SET data = replace(data, '\"currency\":\"EUR\"', '\"currency\":\"E?R\"') "
                "WHERE invoice_id = ?", (third,))
    _tamper(db, "UPDATE invoices SET number = CAST(x'42ff30' AS TEXT) WHERE id = ?", (_version_id(db, "B0021"),))
    output = _check_fails(db)
    assert f"FAIL invoice_versions invoice_id={first} version=1: data is not valid UTF-8" in output, output
    assert f"FAIL invoice_versions invoice_id={second} version=1: data is not JSON" in output
    assert f"FAIL invoice_versions invoice_id={third} version=1: data does not make an invoice" in output
    assert f"FAIL invoices id={_version_id(db, 'B0022') - 1}: number is " in output


def test_at_most_max_listed_rows_then_the_count(db):
    _tamper(db, "UPDATE invoices SET total_gross_minor = total_gross_minor + 1")
    output = _check_fails(db, "--max-listed", "5")
    failures = _fail_lines(output)
    assert len(failures) == 6, output
    assert all(" total_gross_minor is " in line for line in failures[:5])
    assert failures[5].startswith("FAIL business rows: 31 mismatches (26 not listed); 31 invoices, 32 versions")
    code, output = _check(db, "--no-rows")
    assert code == 0 and "business rows" not in output


def test_an_unbalanced_ledger_piece_and_a_changed_statement_line_are_reported(tmp_path):
    db = tmp_path / "ledger.db"
    _reconciled_and_posted(db, seed=7, n_invoices=60, n_lines=50)
    with Store(db, actor="test") as store:
        piece = store.ledger_rows()[0]
        line = store.statement_line_rows()[0]
    # ledger rows refuse UPDATE: a scribble bypasses triggers, an extra INSERT stands for it here
    _tamper(db, "INSERT INTO ledger_entries (journal, piece_ref, line_no, entry_date, account, label, debit_minor, "
                "credit_minor, currency, posted_at) VALUES (?, ?, 99, '2026-11-27', '512', 'x', 1, 0, 'EUR', 'now')",
            (piece["journal"], piece["piece_ref"]))
    _tamper(db, "UPDATE statement_lines SET amount_minor = amount_minor * 10 WHERE id = ?", (line["id"],))
    output = _check_fails(db)
    where = f"journal={piece['journal']!r} piece={piece['piece_ref']!r}"
    assert f"FAIL ledger_entries {where}: debit " in output, output
    assert f"FAIL ledger_entries {where}: lines numbered 1..99" in output
    assert f"FAIL statement_lines id={line['id']}: amount_minor is " in output


# -- the pure checks ----------------------------------------------------------------------------------------

def test_pure_checks_on_plain_rows():
    from connector.model import invoice_texts

    invoice = make_invoice(number="P1")
    text, _ = invoice_texts(invoice)
    row = {"v_invoice_id": 1, "v_version": 1, "v_fingerprint": invoice.fingerprint().encode(),
           "v_content_hash": None, "v_data": text.encode(), "i_current_version": 1,
           "i_invoice_key": invoice.invoice_key.encode(), "i_source": b"test", "i_source_id": b"P1",
           "i_number": b"P1", "i_kind": b"invoice", "i_type_code": b"380", "i_seller_key": invoice.seller.key.encode(),
           "i_buyer_key": invoice.buyer.key.encode(), "i_buyer_name": b"Kunde GmbH", "i_buyer_country": b"DE",
           "i_currency": b"EUR", "i_issue_date": b"2026-11-01", "i_due_date": b"2026-12-31",
           "i_total_gross_minor": 120000, "i_amount_due_minor": 120000}
    assert check_invoice_version(row) == []
    assert [m.problem for m in check_invoice_version({**row, "i_amount_due_minor": 120000.0})] == [
        "amount_due_minor is 120000.0, version 1 says 120000"]  # a type change counts
    assert [m.table for m in check_invoice_version({**row, "v_version": 2})] == ["invoice_versions"]
    piece = {"journal": b"BQ", "piece_ref": b"A1.1", "lines": 2, "first_line": 1, "last_line": 2, "debit": 500,
             "credit": 500, "currencies": 1, "negatives": 0, "bad_types": 0}
    assert check_ledger_piece(piece) == []
    assert [m.problem for m in check_ledger_piece({**piece, "currencies": 2, "debit": 0, "credit": 0})] == [
        "a piece of zero", "2 currencies in one piece"]


@pytest.mark.parametrize("batch", [1, 7])
def test_reads_are_batched(db, batch):
    with Store(db) as store, store._text_as_bytes():
        sizes = [len(rows) for rows in store.integrity_invoice_versions(batch=batch)]
    assert max(sizes) == batch and sum(sizes) == 32
