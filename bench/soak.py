"""The reliability scenarios of tests/reliability at soak counts; prints a table of figures.

    .venv/bin/python bench/soak.py                    # everything, default counts (about 25-40 min)
    .venv/bin/python bench/soak.py --only delivery --invoices 10000 --kills 120
    .venv/bin/python bench/soak.py --only crash --kills 200
    .venv/bin/python bench/soak.py --only strace --sweep 50
    .venv/bin/python bench/soak.py --only reconcile --kills 100 --lines 600 --files 50

Sections:
- ``crash``: store batches (5 invoices + cursor + claim audit row per transaction), writer SIGKILLed at
  random instants ``--kills`` times; acknowledged ⊆ durable, integrity, audit chain; plus the negative
  control (acknowledge before COMMIT) which must show lost acknowledgements.
- ``strace``: the writer under ``strace -e inject=`` for N = 1..``--sweep``: EIO on fsync, ENOSPC on
  pwrite64, SIGKILL at the Nth fsync; after each, integrity + audit + acked ⊆ durable + resume.
- ``delivery``: ``--invoices`` invoices to the fake factor with every fault kind on and per-reference
  dedupe off, the harness's reference sender SIGKILLed ``--kills`` times at random instants; D(inv) per
  invoice; then the naive sender (negative control) on ``--naive`` invoices.
- ``product``: the same with Cessio's own sender (``cessio assign``) against Cessio's sandbox factor
  (``cessio sandbox-factor`` with all seven fault kinds), killed ``--kills`` times, restarted until drained.
- ``reconcile``: statement import + matching + ledger posting over a generated scenario of ``--lines`` bank
  lines (``--files`` camt.053 files, a re-download, an overlapping file, MT940, CFONB), SIGKILLed ``--kills`` times;
  nothing lost, nothing doubled, allocations and ledger consistent; plus the negative control without
  duplicate protection on statements, which must show doubled lines.
Exit status 1 if any invariant broke (or a negative control failed to show its defect).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))


def soak_crash(kills: int, seed: int) -> list[dict]:
    from tests.reliability.harness import crash_loop

    rows = []
    for broken in (False, True):
        with tempfile.TemporaryDirectory(prefix="cessio-soak-") as tmp:
            started = time.monotonic()
            outcome = crash_loop(Path(tmp) / "soak.db", kills=kills if not broken else max(30, kills // 5),
                                 seed=seed, broken=broken, deadline_s=3600)
            rows.append({
                "scenario": "C1 store batches, SIGKILL at random" + (" — NEGATIVE CONTROL ack before commit"
                                                                      if broken else ""),
                "load": f"{outcome.durable_batches} batches ({outcome.durable_batches * 5} invoices)",
                "faults": f"{outcome.kills} SIGKILL", "acked": outcome.acked, "durable": outcome.durable_batches,
                "lost": outcome.lost_acks, "half_written": outcome.half_batches,
                "integrity_ok": not outcome.integrity, "audit_ok": outcome.audit_ok,
                "seconds": round(time.monotonic() - started, 1),
                "pass": (outcome.lost_acks > 0) if broken else outcome.ok})
    return rows


def soak_strace(sweep: int) -> list[dict]:
    import subprocess

    from connector.store import Store
    from tests.reliability.harness import BATCH_WRITER, check_batches, child_env, strace_prefix, strace_usable

    if not strace_usable():
        return [{"scenario": "C2-C4 strace", "pass": True, "note": "strace/ptrace not available: skipped"}]
    rows = []
    kinds = {
        "C2 EIO on fsync/fdatasync": ("fsync,fdatasync:error=EIO:when={n}", "fsync,fdatasync"),
        "C3 ENOSPC on pwrite64": ("pwrite64:error=ENOSPC:when={n}", "pwrite64"),
        "C4 SIGKILL at the Nth fsync": ("fsync,fdatasync:signal=KILL:when={n}", "fsync,fdatasync"),
    }
    for label, (inject, trace) in kinds.items():
        started = time.monotonic()
        stopped = continued = killed = lost = broken = extra = 0
        for n in range(1, sweep + 1):
            with tempfile.TemporaryDirectory(prefix="cessio-strace-") as tmp:
                db = Path(tmp) / "s.db"
                Store(db).close()
                proc = subprocess.run([*strace_prefix(inject.format(n=n), trace), sys.executable, "-c", BATCH_WRITER,
                                       str(db), "0", "60"], cwd=PROJECT, env=child_env(), capture_output=True,
                                      text=True, timeout=120)
                acked = {int(x) for x in proc.stdout.split() if x.isdigit()}
                if proc.returncode == 3 and "STOREERROR" in proc.stdout:
                    stopped += 1
                elif proc.returncode == 0:
                    continued += 1
                else:
                    killed += 1
                outcome = check_batches(db, acked)
                lost += outcome.lost_acks
                broken += not outcome.ok
                extra += max(0, outcome.durable_batches - len(acked) - 1)
                # resume without the fault: the writer reaches 60 batches and everything is whole
                with Store(db, migrate=False) as store:
                    cursor = store.get_cursor("crash")
                start = 0 if cursor is None else cursor["n"] + 1
                subprocess.run([sys.executable, "-c", BATCH_WRITER, str(db), str(start), "60"], cwd=PROJECT,
                               env=child_env(), capture_output=True, timeout=120, check=True)
                broken += not check_batches(db, set(range(60))).ok
        rows.append({"scenario": label, "load": f"N = 1..{sweep}, 60 batches each",
                     "faults": f"{sweep} injections", "stopped_with_StoreError": stopped,
                     "finished_unaffected": continued, "killed": killed, "lost": lost,
                     "durable_beyond_acked_plus_one": extra, "broken_after_fault_or_resume": broken,
                     "seconds": round(time.monotonic() - started, 1),
                     "pass": lost == 0 and broken == 0 and extra == 0})
    return rows


def soak_delivery(invoices: int, kills: int, naive: int, seed: int) -> list[dict]:
    from tests.reliability.delivery import run_delivery
    from tests.reliability.fake_factor import ALL_FAULTS

    rows = []
    for sender, count, kill_count in (("reference", invoices, kills), ("naive", naive, 0)):
        with tempfile.TemporaryDirectory(prefix="cessio-delivery-") as tmp:
            outcome = run_delivery(Path(tmp), sender=sender, count=count, faults=ALL_FAULTS, seed=seed,
                                   kills=kill_count, kill_window=(0.5, 6.0), deadline_s=4 * 3600)
        row = {"scenario": f"A1+A4 delivery, {sender} sender" + (" — NEGATIVE CONTROL" if sender == "naive" else ""),
               "load": f"{count} invoices", "faults": f"all 7 kinds ({ALL_FAULTS}); {outcome.kills} SIGKILL",
               **outcome.row()}
        row["pass"] = (outcome.duplicates > 0) if sender == "naive" else outcome.ok
        rows.append(row)
    return rows


def soak_product(invoices: int, kills: int, seed: int) -> list[dict]:
    """Cessio's own sender (``cessio assign``) against Cessio's sandbox factor (``cessio sandbox-factor``)
    with all seven fault kinds on, SIGKILLed at random instants, restarted until the outbox is drained."""
    import collections
    import random
    import signal
    import subprocess

    from connector.store import Store
    from tests.factors.conftest import CESSIO, SandboxProcess, seed_invoices, write_config
    from tests.factors.test_exactly_once import ALL_FAULTS

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cessio-product-") as tmp:
        folder = Path(tmp)
        factor = SandboxProcess(folder / "factor.db", ALL_FAULTS, seed=seed % 1000)
        try:
            config = write_config(folder, factor.url, connect_timeout='"0.5"', read_timeout='"0.5"',
                                  deadline='"60"', batch_size=20, lease_seconds=1, breaker_threshold=50,
                                  breaker_cooldown='"0.2"')
            with Store(folder / "cessio.db") as store:
                seed_invoices(store, invoices, debtors=50)
            rng = random.Random(seed)
            killed = runs = 0
            command = [*CESSIO, "--config", str(config), "-q", "assign"]
            while killed < kills and runs < kills * 3:
                runs += 1
                sender = subprocess.Popen(command, cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(rng.uniform(0.3, 2.5))
                if sender.poll() is None:
                    sender.send_signal(signal.SIGKILL)
                    killed += 1
                sender.wait(30)
            drained = False
            for _ in range(20):
                runs += 1
                code = subprocess.run(command, cwd=PROJECT, capture_output=True, timeout=3600).returncode
                with Store(folder / "cessio.db") as store:
                    if code == 0 and not store.assignment_candidates() and set(store.outbox_counts()) == {"sent"}:
                        drained = True
                        break
            held = factor.holdings()
            with Store(folder / "cessio.db") as store:
                rows = store.assignment_rows("sandbox")
                audit_ok = store.verify_audit().ok
                integrity = store.integrity_check(quick=True)
        finally:
            factor.stop()
    per_invoice = collections.Counter(a["invoice_key"] for a in held)
    duplicates = sum(1 for n in per_invoice.values() if n > 1)
    lost = invoices - len(per_invoice)
    agree = ({r["remote_id"] for r in rows} == {a["assignment_id"] for a in held}
             and {r["state"] for r in rows} == {"sent"} and len(rows) == invoices)
    return [{"scenario": "A1+A4 delivery, Cessio's sender (cessio assign) to Cessio's sandbox factor",
             "load": f"{invoices} invoices", "faults": f"all 7 kinds ({ALL_FAULTS}); {killed} SIGKILL in {runs} runs",
             "sent": len(rows), "delivered": len(per_invoice), "held": len(held), "duplicates": duplicates,
             "lost": lost, "cessio_agrees_with_factor": agree, "drained": drained, "audit_ok": audit_ok,
             "integrity_ok": not integrity, "seconds": round(time.monotonic() - started, 1),
             "pass": duplicates == 0 and lost == 0 and agree and drained and audit_ok and not integrity}]


def soak_reconcile(kills: int, lines: int, files: int, seed: int) -> list[dict]:
    """Statement import + reconcile + ledger posting SIGKILLed ``kills`` times at random instants (see
    ``tests/reliability/recon.py``), then the negative control without duplicate protection on statements."""
    from tests.reliability.recon import recon_crash_loop

    rows = []
    for broken in (False, True):
        with tempfile.TemporaryDirectory(prefix="cessio-recon-soak-") as tmp:
            outcome = recon_crash_loop(Path(tmp), kills=kills if not broken else 2, seed=seed % 10_000,
                                       invoices=int(lines * 1.2), lines=lines, files=files, broken=broken,
                                       deadline_s=4 * 3600)
        rows.append({
            "scenario": "Reconciliation crash loop (import + reconcile + ledger)" + (
                " — NEGATIVE CONTROL no dedup on statements" if broken else ""),
            "load": f"{outcome.expected_lines} distinct bank lines in {outcome.files} files (camt.053 x"
                    f"{outcome.files - 4}, a re-download, an overlap, MT940, CFONB), {int(lines * 1.2)} open items",
            "faults": f"{outcome.kills} SIGKILL in {outcome.runs} runs", "killed_during": outcome.killed_during,
            "lines_stored": outcome.lines,
            "expected_lines": outcome.expected_lines, "matched": outcome.matched,
            "active_allocations": outcome.allocations, "ledger_pieces": outcome.pieces,
            "acked_imports": outcome.acked_imports, "acked_reconcile_runs": outcome.acked_runs,
            "problems": outcome.problems[:5], "seconds": outcome.seconds,
            "pass": any("doubled" in p for p in outcome.problems) if broken else outcome.ok})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["crash", "strace", "delivery", "product", "reconcile"], action="append")
    parser.add_argument("--kills", type=int, default=200, help="SIGKILLs in the crash and delivery soaks")
    parser.add_argument("--sweep", type=int, default=50, help="strace: N from 1 to this")
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--naive", type=int, default=1_000, help="invoices for the naive negative control")
    parser.add_argument("--lines", type=int, default=600, help="reconcile: bank lines in the generated scenario")
    parser.add_argument("--files", type=int, default=50, help="reconcile: camt.053 files the lines are cut into")
    parser.add_argument("--seed", type=int, default=20261128)
    args = parser.parse_args(argv)
    sections = args.only or ["crash", "strace", "delivery", "product"]
    rows: list[dict] = []
    if "crash" in sections:
        rows += soak_crash(args.kills, args.seed)
    if "strace" in sections:
        rows += soak_strace(args.sweep)
    if "delivery" in sections:
        rows += soak_delivery(args.invoices, args.kills, args.naive, args.seed)
    if "product" in sections:
        rows += soak_product(args.invoices, args.kills, args.seed)
    if "reconcile" in sections:
        rows += soak_reconcile(args.kills, args.lines, args.files, args.seed)
    for row in rows:
        print(json.dumps(row))
    failed = [r["scenario"] for r in rows if not r.get("pass")]
    print(f"{len(rows)} scenarios, {len(failed)} failed" + (f": {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
