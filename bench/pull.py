"""Benchmark of ERP pulls: CSV rows per second and peak memory, and a real Tryton pull.

    .venv/bin/python bench/pull.py             # CSV: 10,000 rows (baseline) and 100,000 rows
    .venv/bin/python bench/pull.py --tryton    # also: 2,000 invoices from a real trytond on loopback
    .venv/bin/python bench/pull.py --tryton-only [--tryton-db FILE]   # only Tryton (FILE: a seeded database)

The Tryton database is seeded once with proteus (slow: ~1 s per posted invoice on a loaded 2-core machine)
and cached beside the test template; later runs start at once.

Each CSV size runs in its own subprocess so its peak RSS (``ru_maxrss``) is its own; the 10,000-row run is
the baseline the 100,000-row run is compared with (memory ratio ~1.0 means it does not grow with the
file). Two rates are printed: the adapter alone (read + parse + map to canonical invoices) and the full
pull into a fresh store (fingerprints, versions, audit chain, cursor commits every 2,000 rows).
Targets (issue 4): at least 20,000 rows/s, memory flat in the file size. Last, the floor: the CPU cost per
row of each part any pull of this design pays, measured alone (csv.reader, mapping, canonical JSON and
fingerprint, bare SQLite rows), so the distance to the target can be read against it.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COMPANY = {"name": "Cessio Demo SAS", "country": "FR", "legal_id": "732829320"}
HEADER = ("invoice_number,issue_date,due_date,currency,total,open_amount,net,vat,type,status,customer_id,customer,"
          "customer_vat,customer_siren,customer_country,customer_street,customer_postcode,customer_city,order,"
          "credits_invoice,payment_ref")
DEBTORS = [("C001", "ACME Industrie SA", "FR96552100554", "552100554"),
           ("C002", "Brasserie du Nord SARL", "FR59542051180", "542051180"),
           ("C003", "Transports Girard SAS", "FR64443061841", "443061841")]


def write_export(path: Path, rows: int) -> None:
    base = dt.date(2026, 1, 1)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(HEADER + "\n")
        for n in range(rows):
            cid, name, vat, siren = DEBTORS[n % len(DEBTORS)]
            issue = base + dt.timedelta(days=n % 300)
            net = 100 + (n * 37) % 90000
            gross = f"{net * 12 // 10}.{n % 100:02d}"
            out.write(f"INV-{n:07d},{issue},{issue + dt.timedelta(days=60)},EUR,{gross},{gross},{net}.00,"
                      f"{gross},INV,open,{cid},{name},{vat},{siren},FR,1 rue X,75002,Paris,PO-{n},,\n")


def measure(rows: int) -> dict:
    """One size, in this process: adapter-only rate, then full pull rate; peak RSS."""
    from adapters.csv_export import CsvExportAdapter
    from connector.adapter import Rejected
    from connector.pull import pull_source
    from connector.store import Store

    folder = Path(tempfile.mkdtemp(prefix="cessio-bench-"))
    export = folder / "export.csv"
    write_export(export, rows)
    adapter = CsvExportAdapter("bench", {"path": str(export), "mapping": "generic", "_company": COMPANY})
    started, cpu = time.perf_counter(), time.process_time()
    stream = adapter.read(None)
    rejected = sum(isinstance(item, Rejected) for item in stream)
    parse_seconds, parse_cpu = time.perf_counter() - started, time.process_time() - cpu
    store = Store(folder / "bench.db", actor="bench")
    started, cpu = time.perf_counter(), time.process_time()
    summary = pull_source(store, CsvExportAdapter("bench", adapter.options))
    pull_seconds, pull_cpu = time.perf_counter() - started, time.process_time() - cpu
    store.close()
    file_mb = round(export.stat().st_size / 1e6, 1)
    shutil.rmtree(folder, ignore_errors=True)
    return {"rows": rows, "rejected": rejected, "parse_rows_per_s": round(rows / parse_seconds),
            "parse_rows_per_cpu_s": round(rows / parse_cpu), "pull_rows_per_cpu_s": round(rows / pull_cpu),
            "pull_rows_per_s": round(rows / pull_seconds), "stored": summary.new,
            "pull_seconds": round(pull_seconds, 2), "file_mb": file_mb,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def floor(rows: int) -> dict:
    """What any pull of this design pays per row, each part alone, in microseconds: the C ``csv.reader``
    over the file; building the canonical invoices (the adapter minus the reader: mapping, Money, dates);
    their canonical JSON and fingerprint (what dedup and versions need); and bare SQLite rows (one invoice
    row and one audit row per invoice, WAL, synchronous=FULL, a commit per 2,000 rows as the pull does)."""
    import csv
    import hashlib
    import sqlite3

    from adapters.csv_export import CsvExportAdapter
    from connector.model import Invoice, invoice_texts
    from connector.money import Money

    folder = Path(tempfile.mkdtemp(prefix="cessio-bench-floor-"))
    export = folder / "export.csv"
    write_export(export, rows)
    adapter = CsvExportAdapter("bench", {"path": str(export), "mapping": "generic", "_company": COMPANY})
    started = time.process_time()
    with export.open(encoding="utf-8", newline="") as handle:
        for _ in csv.reader(handle):
            pass
    reader_s = time.process_time() - started
    started = time.process_time()
    invoices = [item for item in adapter.read(None) if isinstance(item, Invoice)]  # rejections and checkpoints out
    adapter_s = time.process_time() - started
    started = time.process_time()
    texts = [(inv.invoice_key, invoice_texts(inv)) for inv in invoices]
    prints = [(key, text, hashlib.sha256(business.encode()).hexdigest()) for key, (text, business) in texts]
    texts_s = time.process_time() - started
    # the canonical model alone: each invoice built again from its own values, its amounts parsed from text
    # (Decimal, quantised to the currency) and its dates from ISO text; parties and enums reused as they are.
    # What any mapping must at least do, with no CSV, no mapping rules and no checks of its own.
    names = [f.name for f in dataclasses.fields(Invoice)]
    plain = []
    for inv in invoices:
        values = {name: getattr(inv, name) for name in names}
        money = {name: (str(v.amount), v.currency) for name, v in values.items() if isinstance(v, Money)}
        dates = {name: v.isoformat() for name, v in values.items() if isinstance(v, dt.date)}
        plain.append((values, money, dates))
    started = time.process_time()
    for values, money, dates in plain:
        fields = dict(values)
        for name, (amount, currency) in money.items():
            fields[name] = Money.parse(amount, currency)
        for name, text in dates.items():
            fields[name] = dt.date.fromisoformat(text)
        Invoice(**fields)
    model_s = time.process_time() - started
    conn = sqlite3.connect(folder / "floor.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE invoice (key TEXT PRIMARY KEY, data TEXT, fingerprint TEXT)")
    conn.execute("CREATE TABLE audit (id INTEGER PRIMARY KEY, entity TEXT, payload TEXT, hash TEXT)")
    started = time.process_time()
    for start in range(0, len(prints), 2000):
        chunk = prints[start:start + 2000]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO invoice VALUES (?, ?, ?)", chunk)
        conn.executemany("INSERT INTO audit (entity, payload, hash) VALUES (?, ?, ?)",
                         [(key, fingerprint, fingerprint) for key, _, fingerprint in chunk])
        conn.execute("COMMIT")
    sqlite_s = time.process_time() - started
    conn.close()
    shutil.rmtree(folder, ignore_errors=True)
    seconds = {"csv_reader": reader_s, "model": model_s, "adapter": adapter_s, "texts": texts_s, "sqlite": sqlite_s}
    per_row = {name: round(spent / rows * 1e6, 1) for name, spent in seconds.items()}
    return {"rows": rows, "us_per_row": per_row}


def run_size(rows: int, mode: str = "--one") -> dict:
    done = subprocess.run([sys.executable, __file__, mode, str(rows)], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def seeded_tryton(count: int) -> tuple[Path, float | None]:
    """A Tryton database holding ``count`` more posted customer invoices than the test template, built once
    (with proteus, in one process, without a server) and cached beside the template; returns its path and
    the seconds seeding took (``None`` when it came from the cache)."""
    from tests.adapters.tryton_server import _conf, template_db

    template = template_db()
    target = template.parent / f"bench-{count}.sqlite"
    if target.exists():
        return target, None
    work = Path(tempfile.mkdtemp(prefix="cessio-bench-seed-"))
    shutil.copyfile(template, work / "bench.sqlite")
    conf = _conf(work)
    half = count // 2
    ops = [{"op": "invoice", "party": "ACME Industrie SA", "lines": [[2, "500.00"]], "count": count - half},
           {"op": "invoice", "party": "Brasserie du Nord SARL", "term": "30/60 days", "lines": [[3, "250.00"]],
            "count": half}]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "adapters" / "tryton_seed.py"), "operate", str(conf),
                           "bench"], input=json.dumps(ops).encode(), capture_output=True, timeout=7200, cwd=work)
    if done.returncode != 0:
        raise SystemExit("seeding Tryton failed:\n" + done.stderr.decode()[-3000:])
    seconds = time.perf_counter() - started
    os.replace(work / "bench.sqlite", target)
    shutil.rmtree(work, ignore_errors=True)
    return target, seconds


def bench_tryton(count: int, database: Path | None = None) -> None:
    from adapters.tryton import TrytonAdapter
    from connector.pull import pull_source
    from connector.store import Store
    from tests.adapters.tryton_server import running_server

    seeded = None
    if database is None:
        database, seeded = seeded_tryton(count)
    else:
        import sqlite3

        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
            count = conn.execute("SELECT count(*) FROM account_invoice WHERE state = 'posted'").fetchone()[0]
    if seeded is not None:
        print(f"tryton: {count} posted invoices seeded with proteus in {seeded:.0f}s (cached: {database})")
    else:
        print(f"tryton: {count} posted invoices in {database}")
    folder = Path(tempfile.mkdtemp(prefix="cessio-bench-tryton-"))
    with running_server(folder / "server", template=database) as server:
        store = Store(folder / "bench.db", actor="bench")
        started, cpu = time.perf_counter(), time.process_time()
        summary = pull_source(store, TrytonAdapter("tryton", server.options()))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        started = time.perf_counter()
        again = pull_source(store, TrytonAdapter("tryton", server.options()))
        again_seconds = time.perf_counter() - started
        # one invoice paid in Tryton, then an incremental pull picks up just that change
        first = store.invoice_rows(where="source = 'tryton'", limit=1)[0]
        server.operate({"op": "pay", "number": first["number"], "amount": "10.00"})
        started = time.perf_counter()
        third = pull_source(store, TrytonAdapter("tryton", server.options()))
        third_seconds = time.perf_counter() - started
        store.close()
    shutil.rmtree(folder, ignore_errors=True)
    print(f"tryton: first (full) pull {summary.new} new in {seconds:.1f}s = {summary.new / seconds:.0f} invoices/s "
          f"(client CPU {cpu:.1f}s; page_size 200, {summary.checkpoints} checkpoints)")
    print(f"tryton: incremental pull right after: {again.new} new, {again.changed} changed, {again.unchanged} "
          f"re-read in the overlap window, {again_seconds:.1f}s")
    print(f"tryton: after one partial payment in Tryton: {third.changed} changed, {third.status_changes} status "
          f"change(s), {third.unchanged} re-read, {third_seconds:.1f}s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--floor", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--baseline-rows", type=int, default=10_000)
    parser.add_argument("--tryton", action="store_true", help="also pull 2,000 invoices from a real trytond")
    parser.add_argument("--tryton-invoices", type=int, default=2000)
    parser.add_argument("--tryton-only", action="store_true", help="only the Tryton part")
    parser.add_argument("--tryton-db", type=Path, help="pull this Tryton SQLite file instead of the seeded one")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one)))
        return
    if args.floor:
        print(json.dumps(floor(args.floor)))
        return
    if args.tryton_only:
        bench_tryton(args.tryton_invoices, args.tryton_db)
        return
    baseline, big = run_size(args.baseline_rows), run_size(args.rows)
    for result in (baseline, big):
        print(f"csv {result['rows']:>7} rows ({result['file_mb']} MB): adapter {result['parse_rows_per_s']:>6} rows/s"
              f" ({result['parse_rows_per_cpu_s']} per CPU-s), full pull {result['pull_rows_per_s']:>6} rows/s "
              f"({result['pull_rows_per_cpu_s']} per CPU-s; {result['pull_seconds']}s, {result['stored']} stored), "
              f"peak RSS {result['peak_rss_mb']} MB")
    print(f"csv memory ratio {big['rows'] // baseline['rows']}x rows: "
          f"{big['peak_rss_mb'] / baseline['peak_rss_mb']:.2f}x peak RSS (target ~1.0)")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (wall-clock rates suffer under load)")
    print(f"csv target 20,000 rows/s: adapter {'met' if big['parse_rows_per_s'] >= 20000 else 'NOT met'}, "
          f"full pull {'met' if big['pull_rows_per_s'] >= 20000 else 'NOT met'}")
    # in its own process too, so that the invoices it holds in memory do not count in the runs above
    parts = run_size(20_000, "--floor")["us_per_row"]
    least = parts["csv_reader"] + parts["model"] + parts["texts"] + parts["sqlite"]
    print(f"csv floor (CPU microseconds per row, each part alone, 20,000 rows): csv.reader {parts['csv_reader']}, "
          f"canonical invoice from typed values and text amounts/dates {parts['model']}, "
          f"canonical JSON + fingerprint {parts['texts']}, "
          f"bare SQLite rows {parts['sqlite']}; together {least:.1f} us = at most {1e6 / least:,.0f} rows/s with no "
          f"mapping rules, versions, indexes, audit chain or status tracking (20,000 rows/s is 50 us a row; our "
          f"adapter, reader and mapping included, takes {parts['adapter']})")
    if args.tryton:
        bench_tryton(args.tryton_invoices)


if __name__ == "__main__":
    main()
