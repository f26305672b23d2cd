"""How long the KPI report takes on a large store, against reading the same rows (the floor) in the same run.

    .venv/bin/python bench/report.py [INVOICES]

Prints the time to read every row the report needs, the time of ``compute_kpis`` and of the HTML rendering,
and the ratio of the report to the plain read. The daily report job and the review desk's dashboard call
``compute_kpis``; it must stay a small multiple of reading the rows.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connector.config import empty_config
from connector.report import compute_kpis, render_html
from connector.store import Store
from tests.agent.portfolio import seed_portfolio


def best_of(runs: int, fn) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    as_of = dt.date(2026, 11, 28)
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "cessio.db", actor="bench")
        seed_portfolio(store, as_of, invoices=count)
        config = empty_config(store.path)

        def read_rows() -> None:
            with store.snapshot():
                for fetch in (store.kpi_invoices, store.kpi_factor_events, store.kpi_assignments,
                              store.kpi_debtor_limits, store.kpi_refusals, store.kpi_statement_lines):
                    fetch()

        floor = best_of(3, read_rows)
        kpis_time = best_of(3, lambda: compute_kpis(store, config, as_of))
        kpis = compute_kpis(store, config, as_of)
        html_time = best_of(3, lambda: render_html(kpis))
        store.close()
    print(f"invoices: {count}")
    print(f"read rows (baseline): {floor * 1000:.0f} ms")
    print(f"compute_kpis:         {kpis_time * 1000:.0f} ms  ({kpis_time / floor:.1f}x the baseline)")
    print(f"render_html:          {html_time * 1000:.0f} ms")


if __name__ == "__main__":
    main()
