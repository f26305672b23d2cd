"""Bordereau files: byte-exact golden files per layout, positions checked field by field against the
layout documented in docs/factoring.md §(c) C1 (written out here independently of the TOML files),
control totals, charset, and the refusal of a file whose totals disagree."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest

from connector.channels import bordereau
from connector.channels.bordereau import ControlTotalMismatch, file_totals, release_batch
from connector.channels.fixedwidth import compile_layout, load_layout
from connector.errors import ConfigError, Quarantine
from connector.model import Party
from tests.channels.sample import DOMESTIC, FILE_DATE, GOLDEN, build_batch, params_for

EXPECTED = {
    "bpce": ["BPCE_123456_0001_20261128.txt"],
    "factofrance": ["FACTOFRANCE_123456_0001_20261128.txt"],
    "eurofactor": ["FAA12345_20261128_CESSIO_0001.txt", "FAA12346_20261128_CESSIO_0001.txt"],
    "generic_csv": ["bpce_0001_20261128.csv"],
}


def _release(store, tmp_path: Path, layout: str) -> list[Path]:
    batch = build_batch(store, with_payment=layout != "eurofactor")
    return release_batch(store, batch, layout_name=layout, outbox=tmp_path / "outbox",
                         params=params_for(layout), file_date=FILE_DATE)


@pytest.mark.parametrize("layout", sorted(EXPECTED))
def test_golden_file_is_byte_exact(store, tmp_path, layout):
    paths = _release(store, tmp_path, layout)
    assert [p.name for p in paths] == EXPECTED[layout]
    for path in paths:
        assert path.read_bytes() == (GOLDEN / path.name).read_bytes(), path.name
    if layout == "bpce":  # the printable bordereau for signature
        page = tmp_path / "outbox" / "html" / "BPCE_123456_0001_20261128.html"
        assert page.read_bytes() == (GOLDEN / page.name).read_bytes()
        assert "<th class=n>6400.00 EUR</th>" in page.read_text()
    # nothing but the released files (and the HTML folder) in the outbox: no partial left behind
    assert sorted(p.name for p in (tmp_path / "outbox").iterdir() if p.is_file()) == EXPECTED[layout]


def _lines(name: str, charset: str) -> list[str]:
    data = (GOLDEN / name).read_bytes()
    assert data.endswith(b"\r\n") and b"\n" not in data.replace(b"\r\n", b"")  # CRLF only
    return data.decode(charset).split("\r\n")[:-1]


def _at(line: str, pos: int, width: int) -> str:
    """The field at the documented 1-based position."""
    return line[pos - 1:pos - 1 + width]


def test_bpce_positions_field_by_field():
    data = (GOLDEN / "BPCE_123456_0001_20261128.txt").read_bytes()
    assert all(b < 128 for b in data), "BPCE files are ASCII"
    lines = _lines("BPCE_123456_0001_20261128.txt", "ascii")
    assert {len(line) for line in lines} == {275}
    header, *details, trailer = lines
    # header: "01" + "000001" + "138" + factor code 6 + currency 3 + name 25 + statement date + file date
    # + file id 3 + "7.0" + 208 blanks
    assert (_at(header, 1, 2), _at(header, 3, 6), _at(header, 9, 3)) == ("01", "000001", "138")
    assert (_at(header, 12, 6), _at(header, 18, 3)) == ("123456", "EUR")
    assert _at(header, 21, 25) == "CESSIO DEMO SAS".ljust(25)
    assert (_at(header, 46, 8), _at(header, 54, 8), _at(header, 62, 3), _at(header, 65, 3)) == \
        ("27112026", "28112026", "001", "7.0")
    assert _at(header, 68, 208) == " " * 208
    first = details[0]
    assert (_at(first, 1, 2), _at(first, 3, 6), _at(first, 9, 14)) == ("02", "000002", "73282932000074")
    assert _at(first, 23, 15) == "SOCIETE GENERAL"  # upper-cased, accents and punctuation stripped, cut at 15
    assert _at(first, 38, 10) == "C0042".ljust(10)
    assert _at(first, 53, 1) == "D"
    assert _at(first, 83, 30) == "F2026 0001".ljust(30)
    assert (_at(first, 143, 3), _at(first, 146, 3)) == ("FAC", "VIR")
    assert (_at(first, 149, 8), _at(first, 157, 8)) == ("01112026", "31122026")
    assert (_at(first, 165, 13), _at(first, 178, 3)) == ("0000000120000", "EUR")
    assert _at(details[2], 53, 1) == "E" and _at(details[2], 9, 14) == "DE123456789   "
    assert _at(details[3], 143, 3) == "AVO" and _at(details[3], 165, 13) == "0000000010000"
    assert _at(details[4], 143, 3) == "ODC" and _at(details[4], 149, 8) == "20112026"
    # trailer: "09" + seq + "138" + factor code + name 25 + balance in cents 13 + 220 blanks
    assert (_at(trailer, 1, 2), _at(trailer, 3, 6), _at(trailer, 9, 3), _at(trailer, 12, 6)) == \
        ("09", "000007", "138", "123456")
    assert _at(trailer, 43, 13) == "0000000640000"  # 1200 + 349.99 + 5000 - 100 - 49.99
    assert _at(trailer, 56, 220) == " " * 220


def test_factofrance_positions_field_by_field():
    data = (GOLDEN / "FACTOFRANCE_123456_0001_20261128.txt").read_bytes()
    assert "SOCIÉTÉ".encode("latin-1") in data, "FactoFrance keeps accents, in latin-1"
    lines = _lines("FACTOFRANCE_123456_0001_20261128.txt", "latin-1")
    assert {len(line) for line in lines} == {360}
    header, *details, trailer = lines
    assert [_at(line, 1, 3) for line in lines] == ["100", "101", "101", "101", "102", "103", "199"]
    assert _at(header, 4, 6) == "123456"
    invoice = details[0]
    documented = {  # pos, width -> value (the table of docs/factoring.md §(c))
        (4, 8): "20261128", (12, 6): "123456", (18, 14): "73282932000074",
        (32, 40): "SOCIÉTÉ GÉNÉRALE D'ÉQUIPEMENT".ljust(40), (112, 80): "12 RUE DE LA PAIX".ljust(80),
        (192, 6): "75002 ", (198, 34): "PARIS".ljust(34), (232, 3): "FR ", (245, 10): "C0042".ljust(10),
        (255, 8): "20261101", (263, 15): "F2026-0001".ljust(15), (278, 3): "EUR", (281, 1): "+",
        (282, 15): "000000000120000", (297, 3): "VIR", (300, 8): "20261231", (308, 10): "PO-2026-17",
        (358, 3): "FAC",
    }
    for (pos, width), value in documented.items():
        assert _at(invoice, pos, width) == value, (pos, width)
    credit, payment = details[3], details[4]
    assert (_at(credit, 281, 1), _at(credit, 282, 15), _at(credit, 358, 3)) == ("-", "000000000010000", "AVO")
    assert (_at(payment, 281, 1), _at(payment, 282, 15), _at(payment, 358, 3)) == ("-", "000000000004999", "VIR")
    # trailer 199: count and total of invoices, credit notes, payments, adjustments
    assert (_at(trailer, 10, 6), _at(trailer, 16, 15)) == ("000003", "000000000654999")
    assert (_at(trailer, 31, 6), _at(trailer, 37, 15)) == ("000001", "000000000010000")
    assert (_at(trailer, 52, 6), _at(trailer, 58, 15)) == ("000001", "000000000004999")
    assert (_at(trailer, 73, 6), _at(trailer, 79, 15)) == ("000000", "000000000000000")


def test_eurofactor_one_file_per_emitter_240_characters():
    domestic = _lines("FAA12345_20261128_CESSIO_0001.txt", "ascii")
    export = _lines("FAA12346_20261128_CESSIO_0001.txt", "ascii")
    assert {len(line) for line in domestic + export} == {240}
    assert len(domestic) == 3 and len(export) == 1
    fields = domestic[2].split(";")
    assert fields[:8] == ["12345", "54321", "20261128", "D", "711", "A", "EUR", "7000042"]
    assert fields[10].strip() == "AV2026-0001" and fields[11] == "000000000010000"
    assert fields[17].strip() == "F2026-0001"  # original invoice of the credit note
    assert export[0].split(";")[:5] == ["12346", "54321", "20261128", "E", "999"]


def test_generic_csv_trailer_is_the_signed_total():
    text = (GOLDEN / "bpce_0001_20261128.csv").read_text("utf-8").splitlines()
    assert text[0] == "H;123456;1;2026-11-28;EUR"
    assert text[-1] == "T;5;6400.00"
    assert "D;CRN;C0042;AV2026-0001;2026-11-01;2026-12-31;-100.00;EUR" in text


@pytest.mark.parametrize("layout", sorted(EXPECTED))
def test_golden_trailers_agree_with_their_details(layout):
    for name in EXPECTED[layout]:
        totals = file_totals(load_layout(layout), (GOLDEN / name).read_bytes(), source=name)
        assert totals["count_all"] >= 1


def test_tampered_trailer_total_is_detected():
    name = "BPCE_123456_0001_20261128.txt"
    data = bytearray((GOLDEN / name).read_bytes())
    trailer_start = data.rindex(b"\r\n09") + 2
    data[trailer_start + 42 + 12] = ord("1")  # last digit of the balance at position 43..55
    with pytest.raises(ControlTotalMismatch, match="trailer balance"):
        file_totals(load_layout("bpce"), bytes(data), source=name)


@pytest.mark.parametrize("also_batch_row", [False, True])
def test_tampered_ledger_total_stops_the_release(store, tmp_path, also_batch_row):
    batch = build_batch(store)
    # someone changes a claimed amount behind the engine's back: the store no longer agrees with the invoices
    store.conn.execute("UPDATE assignments SET amount_minor = amount_minor + 1 WHERE id = "
                       "(SELECT min(id) FROM assignments WHERE batch_id = ?)", (batch,))
    if also_batch_row:  # a consistent-looking ledger that still disagrees with the documents
        store.conn.execute("UPDATE batches SET control_sum_minor = control_sum_minor + 1 WHERE id = ?", (batch,))
    with pytest.raises(ControlTotalMismatch, match="not released"):
        release_batch(store, batch, layout_name="bpce", outbox=tmp_path / "outbox", params=params_for("bpce"),
                      file_date=FILE_DATE)
    assert not (tmp_path / "outbox").exists() or not any((tmp_path / "outbox").iterdir())
    assert store.channel_files(batch_id=batch) == []
    assert store.channel_batch(batch)["state"] == "closed"
    events = [row["event"] for row in store.audit_rows(entity=f"batch:{batch}")]
    assert "channel.file_refused" in events
    assert store.verify_audit().ok


def test_release_twice_gives_one_file(store, tmp_path):
    batch = build_batch(store)
    first = release_batch(store, batch, layout_name="bpce", outbox=tmp_path / "o", params=params_for("bpce"))
    second = release_batch(store, batch, layout_name="bpce", outbox=tmp_path / "o", params=params_for("bpce"))
    assert first == second
    rows = store.channel_files(batch_id=batch)
    assert len(rows) == 1 and rows[0]["state"] == "released"
    assert hashlib.sha256(first[0].read_bytes()).hexdigest() == rows[0]["sha256"]
    assert store.channel_batch(batch)["state"] == "released"
    states = {r["financing_state"] for r in store.invoice_rows(where="kind = 'invoice'")}
    assert states == {"sent"}
    # released today (no file_date given): the printable page is named after the file
    assert (tmp_path / "o" / "html" / f"{first[0].stem}.html").is_file()


def test_second_batch_gets_the_next_file_number(store, tmp_path):
    first = build_batch(store, with_payment=False)
    with store.transaction():
        extra = store.save_invoice(dataclasses.replace(
            __import__("tests.factories", fromlist=["make_invoice"]).make_invoice("F2026-0100", "10.00",
                                                                                  buyer=DOMESTIC))).invoice_id
        second = store.channel_claim_batch("bpce", "file", bordereau.claim_items(store, [extra]))
    release_batch(store, first, layout_name="bpce", outbox=tmp_path / "o", params=params_for("bpce"))
    paths = release_batch(store, second, layout_name="bpce", outbox=tmp_path / "o", params=params_for("bpce"))
    assert "_0002_" in paths[0].name
    assert [r["file_number"] for r in store.channel_files(factor="bpce")] == [1, 2]


def test_invoice_already_claimed_cannot_enter_a_second_batch(store):
    build_batch(store, with_payment=False)
    invoice_id = store.invoice_rows(where="number = 'F2026-0001'")[0]["id"]
    from connector.errors import InvariantViolation
    with pytest.raises(InvariantViolation), store.transaction():
        store.channel_claim_batch("other-factor", "file", bordereau.claim_items(store, [invoice_id]))


def test_missing_required_field_names_the_document_and_field(store, tmp_path):
    anonymous = Party(name="Sans Identifiant SARL", country="FR", erp_id="C7")
    from tests.factories import make_invoice
    with store.transaction():
        invoice_id = store.save_invoice(make_invoice("F2026-0999", "10.00", buyer=anonymous)).invoice_id
        batch = store.channel_claim_batch("bpce", "file", bordereau.claim_items(store, [invoice_id]))
    with pytest.raises(Quarantine) as caught:
        release_batch(store, batch, layout_name="bpce", outbox=tmp_path / "o", params=params_for("bpce"))
    assert caught.value.field == "debtor_siret" and "F2026-0999" in str(caught.value)
    assert store.channel_files(batch_id=batch) == []


def test_layout_whose_positions_do_not_add_up_is_refused():
    bad = {"name": "bad", "format": "fixed", "record_length": 10, "records": {"detail": {"fields": [
        {"name": "a", "width": 4, "pos": 1}, {"name": "b", "width": 6, "pos": 6}]}}}
    with pytest.raises(ConfigError, match="position 6"):
        compile_layout(bad)
    short = {"name": "short", "format": "fixed", "record_length": 12, "records": {"detail": {"fields": [
        {"name": "a", "width": 4}]}}}
    with pytest.raises(ConfigError, match="4 characters"):
        compile_layout(short)


def test_non_numeric_client_number_in_a_digits_field_is_refused(store, tmp_path):
    batch = build_batch(store, with_payment=False)
    with pytest.raises(Quarantine) as caught:
        release_batch(store, batch, layout_name="bpce", outbox=tmp_path / "o",
                      params={**params_for("bpce"), "client_number": "AB12"})
    assert caught.value.field == "factor_code"


def test_factofrance_balance_file_carries_a_104_adjustment(store, tmp_path):
    """Confidential ("balance") mode: payments (103) and adjustments (104 AJC) ride in the same file; the
    trailer counts them apart and the signed balance follows each adjustment's direction."""
    from tests.channels.sample import sample_invoices

    with store.transaction():
        ids = [store.save_invoice(invoice).invoice_id for invoice in sample_invoices()]
        items = bordereau.claim_items(
            store, ids[:1], payments={ids[1]: {"amount": "49.99", "payment_date": "2026-11-20",
                                               "reference": "VIR-77"}},
            adjustments={ids[0]: {"amount": "12.50", "payment_date": "2026-11-21", "reference": "ESC-1",
                                  "direction": "credit", "comment": "escompte"},
                         ids[2]: {"amount": "3.00", "payment_date": "2026-11-21", "reference": "FRAIS-1",
                                  "direction": "debit"}})
        batch = store.channel_claim_batch("factofrance", "file", items)
    assert store.channel_ledger_totals(batch)["count_adjustment"] == 2
    (path,) = release_batch(store, batch, layout_name="factofrance", outbox=tmp_path / "outbox",
                            params=params_for("factofrance"), file_date=FILE_DATE)
    lines = path.read_bytes().decode("latin-1").split("\r\n")[:-1]
    assert {len(line) for line in lines} == {360}
    assert [line[:3] for line in lines] == ["100", "101", "103", "104", "104", "199"]
    credit, debit = lines[3], lines[4]
    assert (_at(credit, 281, 1), _at(credit, 282, 15), _at(credit, 358, 3)) == ("-", "000000000001250", "AJC")
    assert (_at(debit, 281, 1), _at(debit, 282, 15), _at(debit, 358, 3)) == ("+", "000000000000300", "AJC")
    totals = file_totals(load_layout("factofrance"), path.read_bytes())
    assert (totals["count_adjustment"], totals["sum_adjustment"]) == (2, 1550)
    assert totals["total_signed_minor"] == 120000 - 4999 - 1250 + 300
    trailer = lines[-1]
    assert (_at(trailer, 73, 6), _at(trailer, 79, 15)) == ("000002", "000000000001550")


def test_an_adjustment_with_an_unknown_direction_is_refused(store):
    from tests.channels.sample import sample_invoices

    with store.transaction():
        invoice_id = store.save_invoice(sample_invoices()[0]).invoice_id
        with pytest.raises(Quarantine, match="direction"):
            bordereau.claim_items(store, [], adjustments={invoice_id: {"amount": "1.00", "direction": "sideways"}})
