"""Throughput of bank statement import: camt.053, MT940 and CFONB 120 of the same payments, against the raw
``lxml.etree.fromstring`` parse of the camt file, in the same run.

For each format: the read alone (``read_statement``: detect, decode, parse, map to statement lines; camt is
streamed one entry at a time) and the full import (``import_bytes`` into a fresh store: lines with their
identity and dedup keys, balance chaining, the original bytes and the audit row, one transaction, WAL with
synchronous=FULL). No target is set by an issue; the figures say what a large bank file costs.

    .venv/bin/python bench/statements.py [--entries 20000] [--rounds 3]

Prints entries per second for each step and the ratios against the raw parse; each figure is the best of
``--rounds`` rounds, the runs alternating within a round so that a change of machine load hits all alike.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))


def best_of(rounds: int, *runs) -> list[float]:
    best = [float("inf")] * len(runs)
    for _ in range(rounds):
        for index, run in enumerate(runs):
            started = time.perf_counter()
            run()
            best[index] = min(best[index], time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from lxml import etree

    from adapters.statements import read_statement
    from connector.reconcile.importing import import_bytes
    from connector.store import Store
    from tests.reliability.statement_files import camt_bytes, cfonb_bytes, mt940_bytes, sample_entries

    entries = sample_entries(args.entries, seed=3)
    files = {"camt.053": camt_bytes(entries), "MT940": mt940_bytes(entries), "CFONB 120": cfonb_bytes(entries)}

    def raw_parse() -> None:
        etree.fromstring(files["camt.053"])

    def reader(data: bytes, name: str):
        return lambda: read_statement(data, name)

    def importer(data: bytes, name: str):
        def run() -> None:
            with tempfile.TemporaryDirectory() as folder:
                store = Store(Path(folder) / "bench.db", actor="bench")
                try:
                    result = import_bytes(store, data, file_name=name)
                    if result.error:
                        raise SystemExit(f"{name}: {result.error}")
                finally:
                    store.close()
        return run

    def open_store() -> None:
        with tempfile.TemporaryDirectory() as folder:
            Store(Path(folder) / "bench.db", actor="bench").close()

    runs = [raw_parse, open_store]
    for name, data in files.items():
        runs += [reader(data, name), importer(data, name)]
    for run in runs:  # warm up: modules imported, caches filled
        if run is not raw_parse:
            run()
    timings = best_of(args.rounds, *runs)
    t_raw, t_store = timings[:2]
    n = len(entries)
    print(f"{n:,} entries; camt.053 {len(files['camt.053']) / 1e6:.1f} MB, raw lxml.etree.fromstring "
          f"{t_raw * 1000:.0f} ms ({n / t_raw:,.0f} entries/s); opening a fresh store {t_store * 1000:.0f} ms "
          "(excluded below)")
    for index, name in enumerate(files):
        t_read, t_import = timings[2 + 2 * index], timings[3 + 2 * index] - t_store
        print(f"  {name:<10} read {t_read * 1000:7.0f} ms ({n / t_read:8,.0f} entries/s, "
              f"{t_read / t_raw:5.1f}x raw parse)   import {t_import * 1000:7.0f} ms "
              f"({n / t_import:8,.0f} entries/s, {t_import / t_raw:5.1f}x)")


if __name__ == "__main__":
    main()
