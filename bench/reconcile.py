"""Benchmark: reconciliation of N open invoices against N statement lines (the realistic generator), for
N = 10,000 and N = 100,000: time, peak memory and the growth ratio from 10k to 100k.

For each size a first subprocess builds the store (invoices through ``Store.save_invoice``, the statement
through the real camt.053 import, both timed and reported but not part of the target); a second, fresh
subprocess then runs exactly what ``cessio reconcile`` runs (``run_reconciliation``: load, index, match,
write every decision with its audit row in one transaction) and reports its wall time and its peak resident
memory (``ru_maxrss`` of that process alone). The quality of the matching on the same data is printed too.

Targets (issue 7, this 2-core machine): 100,000 x 100,000 under 60 s, growth 10k -> 100k at most 12x
(linear would be 10x), memory under 1 GB.

    .venv/bin/python bench/reconcile.py            # 10k and 100k (several minutes, mostly building stores)
    .venv/bin/python bench/reconcile.py 2000 20000  # other sizes

Wall time is the target; CPU time (``time.process_time`` of the reconcile process) and the load average
are printed next to it because the machine is shared: other people's jobs inflate wall time, not CPU time.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CONFIG = """
[company]
name = "Cessio Demo SAS"
[reconciliation]
accounts = ["FR7630006000011234567890189", "FR7630006000019876543210145"]
factor_payers = ["FR7610107001011234567890129"]
"""


def build(db: str, n: int) -> dict:
    from connector.reconcile.generator import generate, scenario_camt
    from connector.reconcile.importing import import_bytes
    from connector.store import Store

    started = time.perf_counter()
    scenario = generate(20261127, n_invoices=n, n_lines=n)
    generated = time.perf_counter()
    with Store(db, actor="bench") as store:
        with store.transaction():
            for invoice in scenario.invoices:
                store.save_invoice(invoice)
        saved = time.perf_counter()
        data = scenario_camt(scenario)
        result = import_bytes(store, data, file_name="bench-camt053.xml")
    imported = time.perf_counter()
    truth = {ref: [t.category, t.matchable, [[num, str(amount)] for num, amount in t.allocations]]
             for ref, t in scenario.truth.items()}
    Path(db + ".truth.json").write_text(json.dumps(truth))
    return {"invoices": len(scenario.invoices), "lines": result.new, "camt_bytes": len(data),
            "generate_s": round(generated - started, 2), "save_invoices_s": round(saved - generated, 2),
            "import_s": round(imported - saved, 2)}


def reconcile(db: str) -> dict:
    from connector.config import parse_config
    from connector.reconcile.engine import run_reconciliation
    from connector.store import Store

    config = parse_config(CONFIG)
    with Store(db, actor="bench") as store:
        started, cpu_started = time.perf_counter(), time.process_time()
        summary = run_reconciliation(store, config)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        again = time.perf_counter()
        rerun = run_reconciliation(store, config)
        rerun_s = time.perf_counter() - again
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"reconcile_s": round(elapsed, 2), "cpu_s": round(cpu, 2), "load": os.getloadavg()[0],
            "phases": summary.seconds, "auto": summary.auto,
            "suggested": summary.suggested, "unmatched": summary.unmatched, "not_receivable": summary.not_receivable,
            "peak_rss_mb": round(peak_mb), "rerun_s": round(rerun_s, 2), "rerun_written": rerun.written}


def quality(db: str) -> dict:
    from decimal import Decimal

    from connector.reconcile.export import reconciliation_rows
    from connector.store import Store

    truth = json.loads(Path(db + ".truth.json").read_text())
    with Store(db, actor="bench") as store:
        rows = reconciliation_rows(store)
    autos: dict[str, set] = {}
    for row in rows:
        if row["status"] == "auto" and row["invoice_number"]:
            autos.setdefault(row["statement_line_id"], set()).add(
                (row["invoice_number"], Decimal(row["allocated_amount"])))
    matchable = right = total = 0
    for ref, (_category, is_matchable, allocations) in truth.items():
        wanted = {(num, Decimal(amount)) for num, amount in allocations}
        got = autos.get(ref, set())
        total += len(got)
        if is_matchable:
            matchable += len(wanted)
            right += len(got & wanted)
    wrong = total - right
    return {"recall": round(right / max(matchable, 1), 4), "precision": round((total - wrong) / max(total, 1), 5)}


def child(mode: str, db: str, n: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, db, str(n)], capture_output=True, text=True,
                         check=True, cwd=ROOT, timeout=3600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(sizes: list[int]) -> None:
    results = {}
    with tempfile.TemporaryDirectory(prefix="cessio-bench-") as folder:
        for n in sizes:
            db = str(Path(folder) / f"bench-{n}.db")
            setup = child("build", db, n)
            run = child("reconcile", db, n)
            scores = child("quality", db, n)
            results[n] = {**setup, **run, **scores}
            print(f"N={n:>7,}: reconcile {run['reconcile_s']:6.1f} s wall, {run['cpu_s']:.1f} s CPU (load average "
                  f"{run['load']:.2f}; phases {run['phases']}), peak RSS "
                  f"{run['peak_rss_mb']} MB, re-run {run['rerun_s']} s writing {run['rerun_written']}; "
                  f"auto {run['auto']}, suggested {run['suggested']}, unmatched {run['unmatched']}, "
                  f"not receivable {run['not_receivable']}; recall {scores['recall']}, precision "
                  f"{scores['precision']}", flush=True)
            print(f"           setup (not in the target): generate {setup['generate_s']} s, save "
                  f"{setup['invoices']:,} invoices {setup['save_invoices_s']} s, import {setup['lines']:,} lines "
                  f"({setup['camt_bytes'] / 1e6:.0f} MB camt.053) {setup['import_s']} s", flush=True)
    if len(sizes) >= 2:
        small, large = results[sizes[0]], results[sizes[-1]]
        factor = sizes[-1] / sizes[0]
        growth = large["reconcile_s"] / max(small["reconcile_s"], 1e-9)
        cpu_growth = large["cpu_s"] / max(small["cpu_s"], 1e-9)
        print(f"growth {sizes[0]:,} -> {sizes[-1]:,} ({factor:.0f}x the data): {growth:.1f}x the wall time, "
              f"{cpu_growth:.1f}x the CPU time (target <= {1.2 * factor:.0f}x; on a shared machine the CPU time is "
              "the steadier figure)")
        print(f"targets: {sizes[-1]:,} x {sizes[-1]:,} in {large['reconcile_s']} s (< 60 s: "
              f"{'met' if large['reconcile_s'] < 60 else 'MISSED'}), growth {growth:.1f}x (<= 12x: "
              f"{'met' if growth <= 12 else 'MISSED'}; CPU {cpu_growth:.1f}x), "
              f"memory {large['peak_rss_mb']} MB (< 1024 MB: "
              f"{'met' if large['peak_rss_mb'] < 1024 else 'MISSED'})")


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "--child":
        mode, db, n = sys.argv[2], sys.argv[3], int(sys.argv[4])
        result = {"build": lambda: build(db, n), "reconcile": lambda: reconcile(db), "quality": lambda: quality(db)}
        print(json.dumps(result[mode]()))
    else:
        main([int(x) for x in sys.argv[1:]] or [10_000, 100_000])
