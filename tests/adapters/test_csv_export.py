"""CSV export adapter: one golden file per mapping variant, quarantine of bad rows, idempotent re-reads."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from adapters.csv_export import CsvExportAdapter, compile_mapping, load_mapping
from connector.adapter import Checkpoint, Rejected
from connector.errors import ConfigError
from connector.model import Invoice
from connector.pull import pull_source

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "erp"
COMPANY = {"name": "Cessio Demo SAS", "country": "FR", "legal_id": "732829320", "legal_id_scheme": "0002",
           "vat_id": "FR44732829320"}
VARIANTS = ["generic", "fr_sage", "utf16_tab", "debit_credit", "sap_de"]


def adapter_for(path: Path, mapping: str, **extra) -> CsvExportAdapter:
    return CsvExportAdapter("erp", {"path": str(path), "mapping": mapping, "_company": COMPANY, **extra})


def read_all(adapter: CsvExportAdapter) -> tuple[list[Invoice], list[Rejected], object]:
    invoices, rejected = [], []
    stream = adapter.read(None)
    while True:
        try:
            item = next(stream)
        except StopIteration as stop:
            return invoices, rejected, stop.value
        if isinstance(item, Invoice):
            invoices.append(item)
        elif isinstance(item, Rejected):
            rejected.append(item)
        else:
            assert isinstance(item, Checkpoint)


def summarise(invoices: list[Invoice], rejected: list[Rejected]) -> dict:
    return {
        "invoices": [{
            "number": i.number, "kind": i.kind.value, "issue_date": i.issue_date.isoformat(),
            "due_date": i.due_date.isoformat() if i.due_date else None, "currency": i.currency,
            "total_gross": str(i.total_gross.amount), "amount_due": str(i.amount_due.amount),
            "buyer": i.buyer.key, "buyer_name": i.buyer.name, "buyer_country": i.buyer.country,
            "erp_status": i.erp_status, "preceding_invoices": list(i.preceding_invoices), "flags": list(i.flags),
        } for i in invoices],
        "quarantined": [{"location": r.location, "field": r.error.field, "rule": r.error.rule,
                         "reason": r.error.reason} for r in rejected],
    }


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_matches_golden_file(variant: str) -> None:
    invoices, rejected, _ = read_all(adapter_for(FIXTURES / f"{variant}.csv", variant))
    got = summarise(invoices, rejected)
    expected_file = FIXTURES / f"{variant}.expected.json"
    if os.environ.get("CESSIO_REGEN") == "1":
        expected_file.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert got == json.loads(expected_file.read_text(encoding="utf-8"))


def test_bad_rows_name_file_line_column_and_reason() -> None:
    _, rejected, _ = read_all(adapter_for(FIXTURES / "generic.csv", "generic"))
    by_line = {r.location: r.error for r in rejected}
    assert by_line["generic.csv:line 7"].field == "total"  # 1.234 EUR: three decimals
    assert "at most 2 decimals" in by_line["generic.csv:line 7"].reason
    assert by_line["generic.csv:line 8"].field == "issue_date"  # month 13
    assert by_line["generic.csv:line 9"].rule == "csv.status"  # "refunded" is not a known status
    assert by_line["generic.csv:line 10"].rule == "csv.country"  # Atlantis
    assert by_line["generic.csv:line 11"].rule == "csv.width"  # one cell missing
    assert all(str(e).startswith("generic.csv:line") for e in by_line.values())


def test_amounts_are_exact_in_every_currency() -> None:
    invoices, _, _ = read_all(adapter_for(FIXTURES / "generic.csv", "generic"))
    by_number = {i.number: i for i in invoices}
    assert by_number["INV-004"].total_gross.minor_units == 150000  # JPY has no minor unit
    assert by_number["INV-010"].total_gross.minor_units == 12345  # TND has three


def test_a_file_read_twice_creates_nothing_new(store, tmp_path: Path) -> None:
    export = tmp_path / "generic.csv"
    shutil.copyfile(FIXTURES / "generic.csv", export)
    first = pull_source(store, adapter_for(export, "generic"))
    assert (first.new, first.quarantined) == (6, 5)
    audit_rows = store.audit_head()[0]
    second = pull_source(store, adapter_for(export, "generic"))
    assert (second.new, second.changed, second.quarantined, second.records) == (0, 0, 0, 0)
    assert store.audit_head()[0] == audit_rows + 1  # only the "source.pulled" summary row
    # the same file copied under another name is read, and the store still creates nothing
    shutil.copyfile(export, tmp_path / "copy.csv")
    third = pull_source(store, adapter_for(tmp_path, "generic"))
    assert (third.new, third.changed) == (0, 0)


def test_credit_note_marks_its_invoice_credited_and_a_payment_is_a_status_change(store, tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    shutil.copyfile(FIXTURES / "fr_sage.csv", export)
    first = pull_source(store, adapter_for(export, "fr_sage"))
    assert {"invoice_key": "0002:732829320|invoice|FA-0002", "from": "partially_paid",
            "to": "credited"} in first.events
    text = export.read_bytes().decode("latin-1").replace(
        "FA-0001;01/10/2026;30/11/2026;Société Générale d'Équipement;552100554;FR96552100554;FR;EUR;12 345,67;"
        "12 345,67", "FA-0001;01/10/2026;30/11/2026;Société Générale d'Équipement;552100554;FR96552100554;FR;"
        "EUR;12 345,67;0,00")
    export.write_bytes(text.encode("latin-1"))
    second = pull_source(store, adapter_for(export, "fr_sage"))
    assert second.changed == 1 and second.status_changes == 1
    key = "0002:732829320|invoice|FA-0001"
    assert store.erp_status_of(key) == "paid"
    events = [row["event"] for row in store.audit_rows(entity=f"invoice:{store.find_invoice_id(key)}")]
    assert "invoice.changed" in events


def test_mapping_errors_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="number"):
        compile_mapping('[columns]\nissue_date = "d"\nbuyer_name = "c"\ntotal_gross = "t"\n[values]\ncurrency="EUR"',
                        "bad.toml")
    with pytest.raises(ConfigError, match="unknown field"):
        compile_mapping('[columns]\nnumbr = "n"', "bad.toml")
    with pytest.raises(ConfigError, match="no CSV mapping"):
        load_mapping("does-not-exist")


def test_every_shipped_mapping_compiles() -> None:
    from importlib import resources

    names = [p.name[:-5] for p in (resources.files("mappings") / "csv").iterdir() if p.name.endswith(".toml")]
    assert set(VARIANTS) <= set(names)
    for name in names:
        load_mapping(name)


def test_wrong_encoding_is_quarantined_not_crashed(store, tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    export.write_bytes((FIXTURES / "fr_sage.csv").read_bytes())
    summary = pull_source(store, adapter_for(export, "generic"))  # UTF-8 mapping on a latin-1 file
    assert summary.new == 0
    assert summary.quarantined == 1
    assert store.quarantined()[0]["rule"] == "csv.encoding"


def test_control_characters_quarantine_the_row_naming_file_line_and_column(store, tmp_path: Path) -> None:
    """A NUL, a C1 control (a windows-1252 file read as latin-1) or a line break in a name would break every
    XML file written later: the row is set aside with file, line, column and reason, never cleaned."""
    header = (FIXTURES / "generic.csv").read_text(encoding="utf-8").splitlines()[0]
    good = (FIXTURES / "generic.csv").read_text(encoding="utf-8").splitlines()[1]
    name = good.split(",")[header.split(",").index("customer")]
    rows = [good.replace(name, name[:2] + "\x00" + name[2:]).replace(good.split(",")[0], "NUL-1"),
            good.replace(name, name + "\x80").replace(good.split(",")[0], "C1-1"),
            good.replace(good.split(",")[0], "OK-1"),
            good.replace(name, f'"{name}\nSA"').replace(good.split(",")[0], "LF-1")]
    export = tmp_path / "export.csv"
    export.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    summary = pull_source(store, adapter_for(export, "generic"))
    assert (summary.new, summary.quarantined) == (1, 3)
    entries = {q["location"]: q for q in store.quarantined()}
    assert set(entries) == {"export.csv:line 2", "export.csv:line 3", "export.csv:line 5"}
    assert entries["export.csv:line 2"]["field"] == "customer"
    assert "U+0000 (NULL) at position 3" in entries["export.csv:line 2"]["reason"]
    assert "windows-1252" in entries["export.csv:line 3"]["reason"]
    assert "LINE FEED" in entries["export.csv:line 5"]["reason"]
    assert not any(ord(ch) < 32 for row in store.invoice_rows() for value in row.values()
                   if isinstance(value, str) for ch in value)


def test_pull_refuses_control_characters_from_any_adapter(store) -> None:
    """The safety net in connector.pull, for adapters (third-party ones too) that do not check themselves."""
    import dataclasses

    from connector.adapter import Adapter
    from connector.model import Party

    invoices, _, _ = read_all(adapter_for(FIXTURES / "generic.csv", "generic"))
    bad = dataclasses.replace(invoices[0], buyer=dataclasses.replace(invoices[0].buyer, name="AC\x1bME"))

    class Plugin(Adapter):
        type_name = "plugin"

        def read(self, cursor):
            yield bad
            yield invoices[1]
            return {"done": True}

    summary = pull_source(store, Plugin("plugin", {}))
    assert (summary.new, summary.quarantined) == (1, 1)
    entry, = store.quarantined()
    assert (entry["location"], entry["field"], entry["rule"]) == (f"plugin:{bad.source_id}", "buyer.name",
                                                                 "text.control_character")
    assert isinstance(bad.seller, Party)
