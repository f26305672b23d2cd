"""connector.pull: several sources, one failing; adapter discovery; write-back bookkeeping."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from connector.config import parse_config
from connector.errors import InvariantViolation, StopAndAsk
from connector.pull import pull, record_payment_in_erp
from connector.registry import load_adapters
from tests.adapters.tryton_server import free_port

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "erp"


def test_builtins_are_discovered() -> None:
    adapters = load_adapters()
    assert {"csv", "odoo", "tryton"} <= set(adapters)
    assert adapters["tryton"].supports_write_back and not adapters["csv"].supports_write_back


def test_a_failing_source_is_reported_and_the_others_still_run(store, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CESSIO_TEST_PW", "x")
    shutil.copyfile(FIXTURES / "fr_sage.csv", tmp_path / "ventes.csv")
    config = parse_config(f'''
[company]
name = "Cessio Demo SAS"
legal_id = "732829320"

[sources.down]
type = "tryton"
url = "http://127.0.0.1:{free_port()}"
database = "erp"
login = "admin"
password = "env:CESSIO_TEST_PW"

[sources.sage]
type = "csv"
path = "{tmp_path / 'ventes.csv'}"
mapping = "fr_sage"

[sources.off]
type = "csv"
enabled = false
path = "{tmp_path / 'missing.csv'}"
''', path=tmp_path / "cessio.toml")
    down, sage = pull(config, store)
    assert down.error and "cannot connect" in down.error
    assert (sage.source, sage.new, sage.error) == ("sage", 3, None)
    assert store.get_cursor("down") is None  # nothing read, nothing moved


def test_write_back_refuses_sources_without_it_and_reused_references(store, tmp_path: Path) -> None:
    from adapters.csv_export import CsvExportAdapter
    from connector.money import Money
    from connector.pull import pull_source

    shutil.copyfile(FIXTURES / "fr_sage.csv", tmp_path / "ventes.csv")
    adapter = CsvExportAdapter("sage", {"path": str(tmp_path / "ventes.csv"), "mapping": "fr_sage",
                                        "_company": {"name": "Cessio Demo SAS"}})
    pull_source(store, adapter)
    with pytest.raises(StopAndAsk, match="no write-back"):
        record_payment_in_erp(store, adapter, invoice_id=1, amount=Money.parse("1", "EUR"),
                              date=dt.date(2026, 11, 1), reference="r1")
    with store.transaction():
        assert store.writeback_intent("sage", "r2", invoice_id=1, source_id="FA-0001",
                                      amount=Money.parse("10.00", "EUR"), date=dt.date.today()) is None
    with pytest.raises(InvariantViolation), store.transaction():
        store.writeback_intent("sage", "r2", invoice_id=1, source_id="FA-0001",
                               amount=Money.parse("11.00", "EUR"), date=dt.date.today())


def _variant_invoices() -> list:
    from adapters.csv_export import CsvExportAdapter
    from connector.model import Invoice

    out = []
    for variant in ("generic", "fr_sage", "utf16_tab", "debit_credit", "sap_de"):
        adapter = CsvExportAdapter("erp", {"path": str(FIXTURES / f"{variant}.csv"), "mapping": variant,
                                           "_company": {"name": "Cessio Demo SAS", "legal_id": "732829320"}})
        out += [item for item in adapter.read(None) if isinstance(item, Invoice)]
    return out


def test_batched_serialisation_is_the_models_own() -> None:
    """The store's one-walk serialisation gives exactly Invoice.to_dict(), fingerprint() and canonical JSON."""
    import dataclasses

    from connector.model import PaymentInstructions, canonical_json
    from connector.money import Money
    from connector.store.invoices import invoice_data_and_fingerprint

    invoices = _variant_invoices()
    first = invoices[0]
    invoices.append(dataclasses.replace(
        first, prepaid=Money.parse("1.00", first.currency), notes=("a", "b"), payee=first.seller,
        payment=PaymentInstructions(iban="FR7630006000011234567890189"), due_date_derived=True, flags=("x",)))
    assert len(invoices) > 15
    for invoice in invoices:
        data, fingerprint, text = invoice_data_and_fingerprint(invoice)
        assert data == invoice.to_dict()
        assert fingerprint == invoice.fingerprint()
        assert text == canonical_json(invoice.to_dict())


def test_save_invoices_matches_save_invoice_one_by_one(tmp_path: Path) -> None:
    """Same rows, versions, results and audit events as the one-by-one path, repeated and changed keys
    included; the audit chain verifies."""
    import dataclasses

    from connector.money import Money
    from connector.store import Store

    invoices = _variant_invoices()
    changed = dataclasses.replace(invoices[0], amount_due=Money.zero(invoices[0].currency), erp_status="paid")
    stream = [*invoices[:10], invoices[3], changed, *invoices[10:]]
    stores = [Store(tmp_path / "one.db", actor="t"), Store(tmp_path / "batch.db", actor="t")]
    try:
        with stores[0].transaction():
            one = [stores[0].save_invoice(i) for i in [invoices[0], *stream]]
        with stores[1].transaction():
            batch = [stores[1].save_invoice(invoices[0]), *stores[1].save_invoices(stream)]
        assert [(r.status, r.invoice_id, r.version, r.diff) for r in one] == \
            [(r.status, r.invoice_id, r.version, r.diff) for r in batch]
        ignore = {"created_at", "updated_at"}
        rows = [[{k: v for k, v in r.items() if k not in ignore} for r in s.invoice_rows()] for s in stores]
        assert rows[0] == rows[1]
        for invoice_id in range(1, len(rows[0]) + 1):
            versions = [[{k: v for k, v in r.items() if k not in ignore} for r in s.invoice_versions(invoice_id)]
                        for s in stores]
            assert versions[0] == versions[1]
        events = [sorted((r["event"], r["entity"], r["payload"]) for r in s.audit_rows(limit=1000)) for s in stores]
        assert events[0] == events[1]
        assert all(s.verify_audit().ok for s in stores)
    finally:
        for s in stores:
            s.close()


def test_fast_text_precheck_never_passes_a_refused_character() -> None:
    """The pull's shortcut over the canonical JSON lets no character through that invoice_text_problem
    refuses: every one of them makes it run the exact check."""
    import dataclasses
    import json

    from connector.adapter import invoice_text_problem
    from connector.model import invoice_texts
    from connector.pull import _surely_clean

    refused = [chr(c) for c in (*range(0, 0x20), *range(0x7F, 0xA0))] + ["\ud800", "\udfff", "\ufffe", "\uffff"]
    for char in refused:
        for prefix in ("x", "é"):
            assert not _surely_clean(json.dumps({"a": prefix + char}, ensure_ascii=False)), repr(char)
    base = _variant_invoices()[0]
    for char in refused:
        if char in "\t\n\r":
            continue  # allowed in multi-line texts; the exact check decides
        dirty = dataclasses.replace(base, order_reference=f"PO{char}1")
        assert invoice_text_problem(dirty) is not None
        assert not _surely_clean(invoice_texts(dirty)[0])
    assert _surely_clean(invoice_texts(base)[0])
