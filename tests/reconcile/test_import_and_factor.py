"""Duplicate protection and balance chaining on hand-written files, the factor account's balance-gap
journal, and the commands a user runs (real subprocesses)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import subprocess
import sys
from pathlib import Path

from connector.reconcile.factor_account import balance_gap_journal, pair_movements
from connector.reconcile.importing import import_bytes, import_files
from tests.factories import make_invoice

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "statements"


def test_overlapping_download_adds_only_new_lines_and_gaps_are_reported(store):
    first, second, third = import_files(store, [FIXTURES / "overlap-a.sta", FIXTURES / "overlap-b.sta",
                                                FIXTURES / "gap-c.sta"])
    assert (first.new, first.duplicates) == (2, 0)
    assert (second.new, second.duplicates) == (1, 1)  # B0002 was in the first file
    assert second.statements[0]["chain_check"] == "overlap"
    assert third.statements[0]["chain_check"] == "gap"
    assert "closed at 1800.00 EUR" in third.statements[0]["chain_detail"] and "100.00 EUR" in \
        third.statements[0]["chain_detail"]
    assert store.count_statement_lines() == 4
    again = import_bytes(store, (FIXTURES / "overlap-a.sta").read_bytes(), file_name="re-download/overlap-a.sta")
    assert again.new == 0 and again.already_imported == 1
    gaps = store._all("SELECT payload FROM audit WHERE event = 'statement.balance_gap'")
    assert len(gaps) == 2


def test_two_identical_transfers_on_one_day_stay_two(store):
    data = (FIXTURES / "identical-twice.cfonb").read_bytes()
    result = import_bytes(store, data, file_name="identical-twice.cfonb")
    assert result.new == 2 and result.statements[0]["balance_check"] == "ok"
    identities = [r["identity"] for r in store.statement_line_rows()]
    assert identities[0].rsplit("|", 1)[0] == identities[1].rsplit("|", 1)[0]
    assert {identity.rsplit("|", 1)[1] for identity in identities} == {"1", "2"}  # the occurrence counter
    assert import_bytes(store, data, file_name="copy.cfonb").new == 0


def test_a_broken_file_is_quarantined_whole(store, tmp_path):
    broken = tmp_path / "broken.xml"
    text = (FIXTURES.parent.parent.parent / "tests" / "fixtures" / "statements" / "overlap-a.sta").read_text()
    broken.write_text(text.replace(":62F:C261125EUR1700,00", ":62F:C261125EURABC"))
    result = import_files(store, [broken])[0]
    assert result.error and "broken.xml" in result.error and ":62F:" in result.error
    assert store.count_statement_lines() == 0 and store.quarantined()[0]["location"] == str(broken)


def test_a_cfonb_file_re_encoded_or_cut_says_why(store):
    """The two usual accidents with CFONB 120 name their cause instead of "not a statement"."""
    data = (FIXTURES / "identical-twice.cfonb").read_bytes()
    records = data.split(b"\r\n")
    accented = records[1][:48] + "VIR SOCIETE GENERALE PRODUITS É".encode("latin-1") + records[1][79:]
    assert len(accented) == 120
    utf8 = b"\r\n".join([records[0], accented.decode("latin-1").encode("utf-8"), *records[2:]])
    result = import_bytes(store, utf8, file_name="utf8.cfonb")
    assert "utf8.cfonb" in result.error and "line 2 has 121" in result.error and "UTF-8" in result.error
    cut = data[: len(records[0]) + 2 + 60]
    result = import_bytes(store, cut, file_name="cut.cfonb")
    assert "cut.cfonb" in result.error and "cut mid-record" in result.error
    assert store.count_statement_lines() == 0


def movement(event_id, amount, day, kind="funding"):
    return {"event_id": event_id, "amount_minor": amount, "currency": "EUR", "occurred_on": day, "kind": kind,
            "invoice_key": None}


def fline(line_id, amount, day, text=""):
    return {"id": line_id, "amount_minor": amount, "currency": "EUR", "booking_date": day, "bank_reference": None,
            "remittance": text, "kind": "fee" if amount < 0 else "funding"}


def test_balance_gap_journal_agrees_explains_timing_and_flags_the_rest():
    movements = [movement("e1", 100000, "2026-11-02"), movement("e2", -50000, "2026-11-03"),
                 movement("e3", -300, "2026-11-03", "fee.charged")]
    lines = [fline(1, 100000, "2026-11-02"), fline(2, -50000, "2026-11-04"), fline(3, -300, "2026-11-03"),
             fline(4, -3500, "2026-11-04", "COMMISSION TRIMESTRIELLE")]
    pairs, only_factor, only_cessio = pair_movements(lines, movements, 5)
    assert len(pairs) == 3 and [x["id"] for x in only_factor] == [4] and not only_cessio
    rows = {r["day"]: r for r in balance_gap_journal(lines, movements, opening_minor=0,
                                                     opening_day=dt.date(2026, 11, 1), window=5)}
    assert rows["2026-11-02"]["status"] == "agreed"
    assert rows["2026-11-03"]["status"] == "explained" and rows["2026-11-03"]["gap_minor"] == 50000
    assert "timing" in rows["2026-11-03"]["detail"]["explained"][0]
    assert rows["2026-11-04"]["status"] == "flagged" and rows["2026-11-04"]["gap_minor"] == -3500
    assert "COMMISSION TRIMESTRIELLE" in rows["2026-11-04"]["detail"]["flagged"][0]


def cessio(*args, db: Path, env=None):
    return subprocess.run([sys.executable, "-m", "connector", "--db", str(db), *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "CESSIO_ACTOR": "dana", **(env or {})})


def test_commands_end_to_end(tmp_path, store):
    from connector.store import Store

    db = tmp_path / "cli.db"
    with Store(db) as cli_store, cli_store.transaction():
        for number, amount in (("F2026-0001", "500.00"), ("F2026-0002", "200.00"), ("F2026-0003", "100.00")):
            cli_store.save_invoice(make_invoice(number, amount))
    result = cessio("statements", "import", str(FIXTURES / "overlap-a.sta"), str(FIXTURES / "overlap-b.sta"), db=db)
    assert result.returncode == 0, result.stderr
    assert "2 new line(s)" in result.stdout and "1 duplicate(s) skipped" in result.stdout
    result = cessio("statements", "import", str(FIXTURES / "overlap-a.sta"), "/nonexistent.xml", db=db)
    assert result.returncode == 1 and "/nonexistent.xml: quarantined: cannot read" in result.stdout
    result = cessio("reconcile", db=db)
    assert result.returncode == 0 and "3 auto" in result.stdout, result.stdout + result.stderr
    result = cessio("export", "reconciliation", "--format", "csv", db=db)
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["statement_line_id"], r["invoice_number"], r["allocated_amount"], r["status"]) for r in rows] == [
        ("B0001", "F2026-0001", "500.00", "auto"), ("B0002", "F2026-0002", "200.00", "auto"),
        ("B0003", "F2026-0003", "100.00", "auto")]
    result = cessio("reconcile", "reject", rows[0]["allocation_id"], db=db)
    assert result.returncode == 0 and "(by dana)" in result.stdout
    result = cessio("reconcile", "allocate", "1", "F2026-0001=500.00", db=db)
    assert result.returncode == 0, result.stderr
    result = cessio("reconcile", "allocate", "1", "F2026-0001=5.00", db=db)
    assert result.returncode == 3 and "exceed" in result.stderr  # an invariant: one clear line, refused whole
    result = cessio("reconcile", "ledger", "--fec", str(tmp_path / "FEC.txt"), db=db)
    assert result.returncode == 0 and (tmp_path / "FEC.txt").read_text().startswith("JournalCode\t")
    result = cessio("reconcile", "frobnicate", db=db)
    assert result.returncode == 2 and "usage: cessio reconcile" in result.stderr
    result = cessio("export", "reconciliation", "--format", "json", "-o", str(tmp_path / "log.json"), db=db)
    assert result.returncode == 0 and (tmp_path / "log.json").exists()


def test_factor_account_statement_reconciled_through_the_engine(store):
    from decimal import Decimal

    from connector.config import parse_config
    from connector.reconcile.engine import run_reconciliation
    from connector.reconcile.generator import camt053_bytes

    events = (("e1", "assignment.accepted", 100000, None, [("outstanding", 100000), ("current", 100000)]),
              ("e2", "reserve.held", 10000, None, [("current", -10000), ("reserve", 10000)]),
              ("e3", "funding.paid", 90000, None, [("current", -90000), ("funded", 90000)]))
    with store.transaction():
        for event_id, kind, amount, vat, ledger in events:
            store.record_factor_event("bpce", {"event_id": event_id, "kind": kind, "amount_minor": amount,
                                               "vat_minor": vat, "currency": "EUR", "occurred_on": "2026-11-02"},
                                      ledger, None)
    day = dt.date(2026, 11, 2)
    lines = [{"ref": f"F{n}", "amount": Decimal(amount), "currency": "EUR", "text": text, "name": "BPCE FACTOR",
              "date": day + dt.timedelta(days=lag), "code": "PMNT/RCDT/ESCT"}
             for n, (amount, text, lag) in enumerate((("1000.00", "cession bordereau 1", 0),
                                                      ("-100.00", "retenue de garantie", 0),
                                                      ("-900.00", "financement bordereau 1", 1),
                                                      ("-12.00", "commission de gestion", 1)))]
    data = camt053_bytes(lines, account="FR76FACTOR0001", currency="EUR", opening=Decimal("0.00"),
                         message_id="F1", statement_id="F1", created=day)
    assert import_bytes(store, data, file_name="factor.xml").new == 4
    config = parse_config('[company]\nname = "X"\n[reconciliation]\nfactor_accounts = ["bpce=FR76FACTOR0001"]\n'
                          '[factors.bpce]\nfee_rate = "0.0025"\n')
    summary = run_reconciliation(store, config)
    assert summary.lines == 0  # factor account lines are not customer payments
    (account,) = summary.factor_accounts
    assert (account["days"], account["unmatched_lines"]) == (2, 1)
    rows = {r["day"]: r for r in store.factor_gap_rows("bpce")}
    assert rows["2026-11-02"]["status"] == "explained" and rows["2026-11-02"]["gap_minor"] == 90000  # timing
    assert rows["2026-11-03"]["status"] == "flagged" and rows["2026-11-03"]["gap_minor"] == -1200  # the fee
    assert "commission de gestion" in rows["2026-11-03"]["detail"]
    assert store._scalar("SELECT count(*) FROM audit WHERE event = 'factor.balance_gap'") == 2
    run_reconciliation(store, config)  # nothing changed: no new gap rows in the audit log
    assert store._scalar("SELECT count(*) FROM audit WHERE event = 'factor.balance_gap'") == 2


def test_bad_camt_values_and_hostile_xml_are_refused_naming_the_field(store):
    from decimal import Decimal

    import pytest

    from adapters.statements import read_statement
    from connector.errors import Quarantine, UnsafeDocument
    from connector.reconcile.generator import camt053_bytes

    good = camt053_bytes([{"ref": "R1", "amount": Decimal("10.00"), "currency": "EUR", "date": dt.date(2026, 11, 2)}],
                         account="FR76X", currency="EUR", opening=Decimal("0"), message_id="M", statement_id="S",
                         created=dt.date(2026, 11, 2))
    assert len(read_statement(good, "good.xml")[0].lines) == 1
    cases = {b'<Amt Ccy="EUR">10.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>': (b'<Amt Ccy="EUR">10.123</Amt>'
                                                                           b'<CdtDbtInd>CRDT</CdtDbtInd><Sts>', "Amt"),
             b"<BookgDt><Dt>2026-11-02</Dt>": (b"<BookgDt><Dt>2026-13-45</Dt>", "BookgDt"),
             b"<CdtDbtInd>CRDT</CdtDbtInd><Sts>": (b"<CdtDbtInd>CREDIT</CdtDbtInd><Sts>", "CdtDbtInd")}
    for old, (new, field) in cases.items():
        assert old in good
        with pytest.raises(Quarantine) as refused:
            read_statement(good.replace(old, new, 1), "bad.xml")
        assert refused.value.field == field and str(refused.value).startswith("bad.xml")
    hostile = good.replace(b"<Document", b'<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><Document', 1)
    with pytest.raises(UnsafeDocument):
        read_statement(hostile, "hostile.xml")
    result = import_bytes(store, hostile, file_name="hostile.xml")
    assert result.error and store.count_statement_lines() == 0
