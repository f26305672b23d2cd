"""KPIs from the store (hand-computed cases and a generated portfolio), renderings, the HTML in Chromium."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from connector.config import empty_config
from connector.report import compute_kpis, render_html, render_text, write_report
from tests.agent.portfolio import _insert, seed_portfolio
from tests.factories import make_invoice

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "agent"
AS_OF = dt.date(2026, 3, 31)


def _paid(store, invoice_id: int, minor: int, booked: str, status: str = "auto") -> None:
    statement = _insert(store, "statements", {"account": "A", "format": "camt.053", "currency": "EUR",
                                              "content_sha256": "0" * 64, "imported_at": "2026-01-01"})
    line = _insert(store, "statement_lines", {
        "identity": f"l{invoice_id}-{booked}", "statement_id": statement, "account": "A", "booking_date": booked,
        "amount_minor": minor, "currency": "EUR", "data": "{}", "imported_at": "2026-01-01",
        "match_status": "matched"})
    _insert(store, "allocations", {"line_id": line, "invoice_id": invoice_id, "amount_minor": minor,
                                   "currency": "EUR", "status": status, "created_at": "2026-01-01"})


@pytest.fixture
def small(store):
    """Two invoices worked out by hand (tests/fixtures/agent/small.expected.json)."""
    with store.transaction():
        a = store.save_invoice(make_invoice("A-1", "1000.00", issue=dt.date(2026, 2, 1), due=dt.date(2026, 3, 3)))
        store.save_invoice(make_invoice("B-1", "2000.00", issue=dt.date(2026, 3, 1), due=dt.date(2026, 3, 31)))
        store.save_invoice(make_invoice("Y-1", "500", "JPY", issue=dt.date(2026, 3, 1)))  # other currency
        _paid(store, a.invoice_id, 100_000, "2026-03-13")  # paid 10 days late
        for kind, minor, vat in (("funding", 180_000, None), ("fee", 500, 100), ("interest", 1_000, None),
                                 ("reserve_held", 20_000, None), ("reserve_released", 5_000, None)):
            _insert(store, "factor_events", {"factor": "f", "event_id": kind, "kind": kind, "amount_minor": minor,
                                             "vat_minor": vat, "currency": "EUR", "occurred_on": "2026-03-02",
                                             "received_at": "x"})
    return store


def test_kpis_match_the_hand_computed_values(small):
    kpis = compute_kpis(small, empty_config(small.path), AS_OF)
    expected = json.loads((FIXTURES / "small.expected.json").read_text())
    picked = {
        "currency": kpis["currency"], "other_currencies": kpis["other_currencies"],
        "dso": kpis["dso"]["current"], "payment_delay_12m": kpis["dso"]["payment_delay_12m"],
        "open_amount": kpis["portfolio"]["open_amount"],
        "ageing": {a["bucket"]: a["amount"] for a in kpis["ageing"]},
        "reserve": kpis["reserve"], "cost_total": kpis["cost"]["total"], "cost_vat": kpis["cost"]["vat_total"],
        "cost_rate": kpis["cost"]["rate"], "auto_match_rate": kpis["reconciliation"]["auto_match_rate"],
    }
    assert picked == expected


def test_amounts_are_exact_strings_never_floats(small):
    kpis = compute_kpis(small, empty_config(small.path), AS_OF)

    def walk(value):
        assert not isinstance(value, float), value
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(kpis)
    json.dumps(kpis)  # plain JSON for the desk and `--format json`


def test_generated_portfolio_kpis_are_consistent(store):
    as_of = dt.date(2026, 11, 28)
    seeded = seed_portfolio(store, as_of)
    kpis = compute_kpis(store, empty_config(store.path), as_of)
    assert kpis["portfolio"]["invoices"] == seeded["invoices"]
    # ageing buckets add up to the open receivables
    assert sum(Decimal(a["amount"]) for a in kpis["ageing"]) == Decimal(kpis["portfolio"]["open_amount"])
    assert sum(a["count"] for a in kpis["ageing"]) == kpis["portfolio"]["open"]
    # per-country groups partition the portfolio
    assert sum(g["invoices"] for g in kpis["dso"]["by_country"].values()) == seeded["invoices"]
    assert sum(g["invoices"] for g in kpis["dso"]["by_segment"].values()) == seeded["invoices"]
    assert len(kpis["dso"]["trend"]) == 12 and kpis["dso"]["trend"][-1]["date"] == as_of.isoformat()
    rec = kpis["reconciliation"]
    assert rec["auto"] + rec["manual"] + rec["suggested"] + rec["unmatched"] == rec["lines"]
    assert Decimal("70") < Decimal(rec["auto_match_rate"]) < Decimal("95")
    assert kpis["declines"]["by_reason"] and kpis["declines"]["eligibility_refusals"]
    factor = kpis["funding"]["factors"][0]
    assert Decimal(factor["outstanding_assigned"]) > 0 and Decimal(factor["limits"]) > 0
    assert Decimal(kpis["reserve"]["balance"]) == Decimal(kpis["reserve"]["held"]) - Decimal(
        kpis["reserve"]["released"])
    text = render_text(kpis)
    assert "DSO" in text and "auto-matched" in text


def test_html_is_one_self_contained_file(store):
    seed_portfolio(store, dt.date(2026, 11, 28))
    page = render_html(compute_kpis(store, empty_config(store.path), dt.date(2026, 11, 28)))
    assert page.count("<svg") >= 10
    for external in ("<script", "src=", "href=", "@import", "url("):
        assert external not in page  # no script, no external resource: it opens anywhere, offline


def test_an_empty_store_still_renders(store):
    kpis = compute_kpis(store, empty_config(store.path), AS_OF)
    assert kpis["dso"]["current"] is None
    assert "no data yet" in render_html(kpis)


def test_cli_report_formats(tmp_path, store):
    seed_portfolio(store, dt.date(2026, 11, 28), invoices=40)
    store.close()
    cli = [sys.executable, "-m", "connector", "--db", str(tmp_path / "cessio.db"), "report"]
    out = subprocess.run([*cli, "--format", "json"], capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(out.stdout)["portfolio"]["invoices"] == 40
    target = tmp_path / "out" / "r.html"
    subprocess.run([*cli, "--format", "html", "-o", str(target)], capture_output=True, check=True, timeout=60)
    assert target.read_text().startswith("<!doctype html>")


def test_html_report_renders_in_headless_chromium(tmp_path, store):
    """Render the report in Chromium. Set CESSIO_KEEP_SCREENSHOT=FILE to keep the PNG and look at it."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium); the HTML report was not rendered")
    as_of = dt.date(2026, 11, 28)
    seed_portfolio(store, as_of)
    page = write_report(store, empty_config(store.path), as_of, tmp_path / "report.html")
    shot = tmp_path / "report.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1240,2200", "--hide-scrollbars",
                    f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=90, check=True)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1240, 2200)
    # a blank or unstyled page compresses to almost nothing; charts and colour tiles do not
    assert len(data) > 60_000
    if os.environ.get("CESSIO_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["CESSIO_KEEP_SCREENSHOT"])


def test_the_demo_summary_counts_what_went_through(store):
    from connector.report import end_to_end_summary

    as_of = dt.date(2026, 11, 28)
    totals = seed_portfolio(store, as_of, invoices=120)
    kpis = compute_kpis(store, empty_config(store.path), as_of)
    lines = end_to_end_summary(store, kpis)
    assert lines[0] == "end-to-end summary:"
    text = "\n".join(lines)
    assert f"invoices and credit notes stored: {totals['invoices']}" in text
    assert "financing states:" in text and "not eligible:" in text
    assert f"statement lines: {kpis['reconciliation']['lines']} " in text
    assert "ledger: 0 lines, debits 0 = credits 0" in text and "NOT BALANCED" not in text
