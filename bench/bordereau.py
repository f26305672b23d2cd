"""Bordereau writer throughput: the TOML-interpreted layout writer against a hand-written f-string baseline
of the same BPCE detail record, in the same process. Prints lines/s of both and the ratio.

    .venv/bin/python bench/bordereau.py [lines]
"""

from __future__ import annotations

import datetime as dt
import sys
import time

from connector.channels.bordereau import detail_values, file_totals, render_files
from connector.channels.fixedwidth import load_layout
from connector.model import Party
from connector.money import Money
from tests.factories import make_invoice

DEBTOR = Party(name="Societe Generale d'Equipement", country="FR", legal_id="73282932000074", legal_id_scheme="0009",
               erp_id="C0042")


def main(count: int) -> None:
    layout = load_layout("bpce")
    file_date = dt.date(2026, 11, 28)
    params = {"client_number": "123456", "company_name": "Cessio Demo SAS", "statement_date": file_date}
    invoices = [make_invoice(f"F2026-{i:06d}", f"{100 + i % 900}.{i % 100:02d}", buyer=DEBTOR) for i in range(count)]
    details = [detail_values(inv, "invoice", inv.amount_due.minor_units, seq=i + 2, file_date=file_date,
                             params=params) for i, inv in enumerate(invoices)]

    start = time.perf_counter()
    parts = render_files(layout, details, head={**params, "factor": "bpce", "file_number": 1, "file_date": file_date,
                                                "currency": "EUR"})
    generic = time.perf_counter() - start
    start = time.perf_counter()
    totals = file_totals(layout, parts[0].content)
    check = time.perf_counter() - start

    start = time.perf_counter()
    lines = []
    for d in details:  # the same record, hand-written (no layout, no checks)
        lines.append(f"02{d['seq']:06d}{d['debtor_siret']:<14}{'SOCIETE GENERAL':<15}{d['debtor_ref']:<10}{'':5}"
                     f"{d['activity']}{'':9}{'':20}{d['number'].replace('-', ' '):<30}{'':30}FACVIR"
                     f"{d['issue_date']:%d%m%Y}{d['due_date']:%d%m%Y}{d['amount_minor']:013d}EUR{'':95}")
    baseline_bytes = ("\r\n".join(lines) + "\r\n").encode("ascii")
    baseline = time.perf_counter() - start
    assert len(lines[0]) == 275 and totals["count_all"] == count
    assert Money.from_minor(totals["total_signed_minor"], "EUR") > Money.zero("EUR")
    print(f"lines: {count}")
    print(f"layout writer:   {count / generic:12,.0f} lines/s ({generic:.3f} s)")
    print(f"read-back check: {count / check:12,.0f} lines/s ({check:.3f} s)")
    print(f"f-string base:   {count / baseline:12,.0f} lines/s ({baseline:.3f} s, {len(baseline_bytes)} bytes)")
    print(f"ratio writer/baseline time: {generic / baseline:.1f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20000)
