"""Ingestion into a real SQLite store: idempotency, versions, quarantine, the inbox adapter, the CLI."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

from connector.einvoice.samples import render
from connector.ingest import ingest_bytes, ingest_paths, process_inbox

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "einvoice"
PROJECT = Path(__file__).resolve().parent.parent.parent
BUYER = {"name": "Müller Maschinenbau GmbH", "country": "DE", "vat_id": "DE136695976"}


def sample(number: str = "T-1", net: str = "100.00", syntax: str = "ubl") -> bytes:
    return render(syntax, number=number, issue_date=dt.date(2026, 3, 2), due_date=dt.date(2026, 4, 1),
                  currency="EUR", net=Decimal(net), buyer=BUYER)


def test_same_file_twice_is_one_invoice_and_a_reissue_is_a_new_version(store, tmp_path: Path) -> None:
    first = ingest_bytes(store, sample(), location="a.xml")
    again = ingest_bytes(store, sample(), location="a-copy.xml")
    changed = ingest_bytes(store, sample(net="110.00"), location="a-v2.xml")
    assert (first.status, again.status, changed.status) == ("new", "known", "changed")
    assert first.invoice_id == again.invoice_id == changed.invoice_id
    assert store.count_invoices() == 1
    versions = store.invoice_versions(first.invoice_id)
    assert [v["version"] for v in versions] == [1, 2]
    assert json.loads(versions[1]["diff"])["amount_due.amount"] == ["120.00", "132.00"]
    invoice = store.get_invoice(first.invoice_id)
    assert str(invoice.amount_due.amount) == "132.00" and invoice.syntax == "ubl"
    assert store.document(invoice.content_hash) == sample(net="110.00")  # the original bytes are kept
    # the same invoice as CII (other bytes, same business content) changes nothing
    assert ingest_bytes(store, sample(net="110.00", syntax="cii").replace(b"T-1", b"T-1"),
                        location="a.cii.xml").status in ("unchanged", "changed")


def test_findings_are_stored_with_the_document(store) -> None:
    outcome = ingest_bytes(store, (FIXTURES / "cii-br-co-16-broken.xml").read_bytes(), location="broken.xml")
    assert outcome.status == "new"
    rules = [f["rule"] for f in store.einvoice_findings(outcome.invoice_id)]
    assert "BR-CO-16" in rules
    assert "validation_errors" in store.get_invoice(outcome.invoice_id).flags
    events = [row["event"] for row in store.audit_rows(limit=20)]
    assert "einvoice.ingested" in events and "invoice.created" in events


def test_bad_documents_are_quarantined_with_file_field_and_reason_and_the_run_goes_on(store) -> None:
    report = ingest_paths(store, [FIXTURES])
    rejected = {Path(o.location).name: o for o in report.outcomes if o.status == "rejected"}
    assert {"bad-missing-number.xml", "bad-unknown-type-code.xml", "bad-date.xml",
            "unsupported-fatturapa.xml", "unsupported-pdf-without-xml.pdf"} <= set(rejected)
    # two PDFs carry the same invoice as cii-en16931.xml, one the same as zugferd1-comfort.xml: "unchanged"
    stored = report.count("new")
    assert stored >= 20 and store.count_invoices() == stored and report.count("unchanged") == 3
    entries = {Path(e["location"]).name: e for e in store.quarantined()}
    assert entries["bad-missing-number.xml"]["field"].startswith("BT-1 ")
    assert entries["bad-unknown-type-code.xml"]["rule"] == "BR-CL-01"
    assert entries["unsupported-fatturapa.xml"]["reason"].startswith("unsupported document: FatturaPA")
    # a second run is idempotent: nothing new, the quarantine entries are only seen again
    second = ingest_paths(store, [FIXTURES])
    assert second.count("new") == 0 and store.count_invoices() == stored
    assert store.count_quarantined() == len(entries)


def test_inbox_moves_files_and_never_reads_a_young_file(store, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "good.xml").write_bytes(sample("INBOX-1"))
    (inbox / "bad.xml").write_bytes(sample("INBOX-2")[:300])
    (inbox / "young.xml").write_bytes(sample("INBOX-3"))
    (inbox / "upload.xml.part").write_bytes(b"<Inv")
    old = time.time() - 60
    for name in ("good.xml", "bad.xml"):
        os.utime(inbox / name, (old, old))
    report = process_inbox(store, inbox, min_age_seconds=5)
    assert report.processed == ["good.xml"] and report.rejected == ["bad.xml"] and report.waiting == ["young.xml"]
    assert (inbox / "processed" / "good.xml").exists() and (inbox / "rejected" / "bad.xml").exists()
    error = (inbox / "rejected" / "bad.xml.error.txt").read_text()
    assert "reason: not well-formed XML" in error
    assert (inbox / "young.xml").exists() and (inbox / "upload.xml.part").exists()
    assert store.count_invoices() == 1
    # later the young file is old enough; a file dropped again is moved without a second invoice
    (inbox / "again.xml").write_bytes(sample("INBOX-1"))
    later = process_inbox(store, inbox, min_age_seconds=5, now=time.time() + 60)
    assert sorted(later.processed) == ["again.xml", "young.xml"]
    assert store.count_invoices() == 2


def test_inbox_reads_its_folder_from_the_config(store, tmp_path: Path) -> None:
    from connector.config import empty_config

    config = empty_config(tmp_path / "x.db")
    config.data["inbox"]["path"] = tmp_path / "in"
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.xml").write_bytes(sample("CFG-1"))
    report = process_inbox(store, config, now=time.time() + 60)
    assert report.processed == ["a.xml"]


def _cessio(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "connector", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env={**os.environ, "PYTHONPATH": str(PROJECT)})


def test_cli_inspect_and_ingest(tmp_path: Path) -> None:
    done = _cessio("inspect", "--no-official", str(FIXTURES / "ubl-invoice.xml"),
                   str(FIXTURES / "unsupported-random.xml"), cwd=tmp_path)
    assert done.returncode == 1
    good, bad = (json.loads(line) for line in done.stdout.splitlines())
    assert set(good) == {"file", "ok", "error", "syntax", "container", "profile", "invoice", "findings"}
    assert set(good["invoice"]) == {
        "number", "kind", "type_code", "issue_date", "due_date", "due_date_derived", "currency", "total_net",
        "total_tax", "total_gross", "prepaid", "amount_due", "seller", "buyer", "payee", "payment",
        "preceding_invoices"}
    assert set(good["invoice"]["seller"]) == {"name", "vat_id", "legal_id", "legal_id_scheme", "country"}
    assert bad["ok"] is False and bad["error"].startswith("unsupported document:")
    db = tmp_path / "c.db"
    first = _cessio("--db", str(db), "ingest", str(FIXTURES), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "quarantined" in first.stdout and " new," in first.stdout
    second = _cessio("--db", str(db), "ingest", str(FIXTURES), cwd=tmp_path)
    assert " 0 new," in second.stdout


def test_a_crash_between_commit_and_move_converges(store, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    data = sample("CRASH-1")
    (inbox / "c.xml").write_bytes(data)
    ingest_bytes(store, data, location=str(inbox / "c.xml"))  # committed, then the process died before the move
    report = process_inbox(store, inbox, min_age_seconds=0, now=time.time() + 60)
    assert report.processed == ["c.xml"] and store.count_invoices() == 1
    assert [row["event"] for row in store.audit_rows(limit=50)].count("invoice.created") == 1


def test_demo_stage(store, tmp_path: Path) -> None:
    from connector.demo import DemoContext
    from connector.ingest import demo_stage

    lines: list[str] = []
    ctx = DemoContext(folder=tmp_path, echo=lines.append, store=store)
    demo_stage(ctx)
    ids = ctx.state["ingested_invoice_ids"]
    assert len(ids) == 5 and store.count_invoices() == 5
    syntaxes = {store.get_invoice(i).syntax for i in ids}
    assert syntaxes == {"ubl", "cii", "zugferd1"}
    currencies = {store.get_invoice(i).currency for i in ids}
    assert {"EUR", "GBP", "CHF"} <= currencies
    sellers = {store.get_invoice(i).seller.key for i in ids}
    assert sellers == {"0002:732829320"}  # the ZUGFeRD 1 sample states only the VAT number: same seller
    assert any("rejected" in line for line in lines)


def test_inbox_takes_default_terms_from_the_config_the_agent_passes(store, tmp_path: Path) -> None:
    from connector.config import empty_config

    config = empty_config(tmp_path / "x.db")
    config.data["company"] = {**config.section("company"), "default_payment_days": 45}
    inbox = tmp_path / "in"
    inbox.mkdir()
    (inbox / "no-terms.xml").write_bytes((FIXTURES / "ubl-383-debit-note-no-terms.xml").read_bytes())
    report = process_inbox(store, inbox, min_age_seconds=0, now=time.time() + 60, config=config)
    assert report.processed == ["no-terms.xml"]
    digest = hashlib.sha256((FIXTURES / "ubl-383-debit-note-no-terms.xml").read_bytes()).hexdigest()
    invoice = store.get_invoice(store.einvoice_document(digest)["invoice_id"])
    assert (invoice.due_date, invoice.due_date_derived) == (dt.date(2026, 4, 16), True)


def test_batched_ingest_dedups_inside_a_batch_and_keeps_rejects_apart(store) -> None:
    from connector.ingest import ingest_many

    good, bad = sample("B-1"), sample("B-2")[:200]
    outcomes = ingest_many(store, [("a.xml", good), ("b.xml", bad), ("c.xml", good), ("d.xml", sample("B-3"))],
                           batch=8)
    assert [o.status for o in outcomes] == ["new", "rejected", "known", "new"]
    assert store.count_invoices() == 2 and store.count_quarantined() == 1
