"""Crash loop over reconciliation: statement import + ``run_reconciliation`` + ``post_ledger``, SIGKILLed at
random instants and restarted (issue 9, "crash at random instants during ... reconciliation").

A scenario is a folder of statement files arriving one after the other — camt.053 files cut from the
reconciliation generator's ground-truth scenario (chained balances), a re-download of one of them under
another name, an overlapping file that repeats lines of two others, one MT940 and one CFONB 120 file that pay
invoices by reference — and the invoices they pay, stored up front. The worker (a real child process on the
real store file) goes through the files in order: import, reconcile, post the ledger, printing an
acknowledgement after each commit. It is SIGKILLed at random instants, then restarted from the beginning
(re-importing is the dedup under test). After every kill and at the end, :func:`check_store` checks:

- integrity_check, the audit chain;
- every acknowledged import is durable, every acknowledged reconcile run has its audit row;
- no statement line is stored twice (identities and bank references), none is missing at the end;
- no line's decided allocations exceed it, no invoice receives more than it has open, a line's active
  decided allocations come from one decision (one run or one person), never two;
- the ledger: every piece balanced, no allocation with two open pieces, and at the end every matched line's
  cash is on the bank account exactly once (net bank movement of its pieces == the line's amount).

``NO_DEDUP=1`` runs the deliberately broken variant (negative control): every line gets a fresh identity and a
statement is never recognised as already imported; the same checks must report doubled lines.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from tests.reliability.harness import PROJECT, child_env

CONFIG = ('[company]\nname = "Cessio Demo SAS"\n\n[reconciliation]\naccounts = ["FR7630006000011234567890189"]\n'
          '\n[ledger]\nwrite_back = false\n')


def build_scenario(folder: Path, *, seed: int, invoices: int, lines: int, files: int = 4) -> dict:
    """Write the statement files into ``folder/in`` and return what the checker needs to know."""
    from connector.reconcile.generator import camt053_bytes, generate
    from tests.reliability.statement_files import Entry, cfonb_bytes, mt940_bytes

    scenario = generate(seed, n_invoices=invoices, n_lines=lines)
    inbox = folder / "in"
    inbox.mkdir(parents=True, exist_ok=True)
    ordered = sorted(scenario.statement_lines, key=lambda x: (x["date"], x["ref"]))
    size = max(1, len(ordered) // files)
    chunks = [ordered[i:i + size] for i in range(0, len(ordered), size)]
    opening = scenario.opening
    names = []
    for n, chunk in enumerate(chunks, start=1):
        data = camt053_bytes(chunk, account=scenario.account, currency="EUR", opening=opening,
                             message_id=f"MSG-{seed}-{n}", statement_id=f"ST-{seed}-{n}", created=scenario.day)
        opening += sum((x["amount"] for x in chunk), Decimal(0))
        name = f"{n:02d}-camt053-{n}.xml"
        (inbox / name).write_bytes(data)
        names.append(name)
        if n == 2:  # the same file downloaded again, under another name
            (inbox / f"{n:02d}b-redownload.xml").write_bytes(data)
            names.append(f"{n:02d}b-redownload.xml")
    if len(chunks) >= 3:  # an overlapping statement: the end of one file and the start of the next, again
        overlap = chunks[1][len(chunks[1]) // 2:] + chunks[2][: len(chunks[2]) // 2]
        data = camt053_bytes(overlap, account=scenario.account, currency="EUR", opening=Decimal("0.00"),
                             message_id=f"MSG-{seed}-overlap", statement_id=f"ST-{seed}-overlap",
                             created=scenario.day)
        (inbox / "03b-overlap.xml").write_bytes(data)
        names.append("03b-overlap.xml")
    # MT940 and CFONB payments of invoices the camt lines leave open, by their number
    paid = {number for truth in scenario.truth.values() for number, _ in truth.allocations}
    spare = [inv for inv in scenario.invoices if inv.currency == "EUR" and inv.number not in paid
             and inv.kind.value == "invoice"][:8]
    mt = [Entry(f"MT{seed}{n:04d}", inv.amount_due.amount, f"FACTURE {inv.number}", inv.buyer.name[:27])
          for n, inv in enumerate(spare[:4])]
    cf = [Entry(f"CF{seed}{n:04d}", inv.amount_due.amount, f"REGLEMENT {inv.number}", inv.buyer.name[:30])
          for n, inv in enumerate(spare[4:8])]
    (inbox / "05-mt940.sta").write_bytes(mt940_bytes(mt, number=seed % 1000))
    (inbox / "06-cfonb.txt").write_bytes(cfonb_bytes(cf))
    names += ["05-mt940.sta", "06-cfonb.txt"]
    (folder / "cessio.toml").write_text(CONFIG, encoding="utf-8")
    expected_lines = len(ordered) + len(mt) + len(cf)
    return {"files": names, "invoices": scenario.invoices, "expected_lines": expected_lines}


def seed_store(db: Path, invoices: list) -> None:
    from connector.store import Store

    with Store(db, actor="seed") as store, store.transaction():
        for invoice in invoices:
            store.save_invoice(invoice)


WORKER = r"""
import os, sys, uuid
from pathlib import Path
from connector.config import parse_config
from connector.errors import StoreError
from connector.store import Store
import connector.reconcile.importing as importing
from connector.reconcile.engine import run_reconciliation
from connector.reconcile.ledger import post_ledger
db, folder = Path(sys.argv[1]), Path(sys.argv[2])
names = sys.argv[3].split(",")
if os.environ.get("NO_DEDUP") == "1":  # the deliberately broken variant (negative control)
    original = importing.line_identities
    importing.line_identities = lambda statement: [(f"{i}|{uuid.uuid4().hex}", line)
                                                   for i, line in original(statement)]
    Store.statement_seen = lambda self, *args: None
config = parse_config((folder / "cessio.toml").read_text())
store = Store(db, actor="recon-worker", migrate=False)
try:
    for name in names:
        result = importing.import_bytes(store, (folder / "in" / name).read_bytes(), file_name=name)
        print("IMPORT", name, result.new, result.error or "", flush=True)
        summary = run_reconciliation(store, config)
        print("RECONCILE", summary.run_id, summary.written, flush=True)
        posted = post_ledger(store, config)
        print("LEDGER", posted.posted, posted.reversed, flush=True)
    print("DONE", flush=True)
except StoreError as exc:
    print("STOREERROR " + str(exc).replace("\n", " "), flush=True)
    sys.exit(3)
"""


@dataclass
class ReconOutcome:
    kills: int = 0
    runs: int = 0
    acked_imports: int = 0
    acked_runs: int = 0
    lines: int = 0
    expected_lines: int = 0
    files: int = 0
    killed_during: dict[str, int] = field(default_factory=dict)  # the step the worker was in when killed
    problems: list[str] = field(default_factory=list)
    matched: int = 0
    allocations: int = 0
    pieces: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {**self.__dict__, "problems": self.problems[:10]}


def check_store(db: Path, *, acked_files: set[str], acked_runs: set[str], expected_lines: int | None) -> list[str]:
    """Every invariant listed in the module docstring; returns the problems found (empty when all hold)."""
    from connector.store import Store

    problems: list[str] = []
    with Store(db, migrate=False) as store:
        integrity = store.integrity_check()
        if integrity:
            problems.append(f"integrity_check: {integrity[:3]}")
        verdict = store.verify_audit()
        if not verdict.ok:
            problems.append(f"audit chain broken: {verdict.problem}")
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        q = conn.execute
        files = {row[0] for row in q("SELECT file_name FROM statements")}
        quarantined = {row[0] for row in q("SELECT location FROM quarantine")}
        for name in acked_files - files - quarantined:
            # a re-download is acknowledged as "already imported": its statement row is the first file's
            if "redownload" not in name:
                problems.append(f"acknowledged import of {name} is not in the store (lost)")
        audited_runs = {json.loads(row[0]).get("run") for row in q(
            "SELECT payload FROM audit WHERE event = 'reconcile.decided'")}
        for run in acked_runs - audited_runs:
            problems.append(f"acknowledged reconcile run {run} wrote decisions that are not in the store (lost)")
        lines = q("SELECT count(*) FROM statement_lines").fetchone()[0]
        doubled = q("SELECT count(*) FROM (SELECT account, bank_reference, amount_minor, booking_date, remittance, "
                    "count(*) AS n FROM statement_lines WHERE bank_reference IS NOT NULL GROUP BY 1, 2, 3, 4, 5 "
                    "HAVING n > 1)").fetchone()[0]
        if doubled:
            problems.append(f"{doubled} bank line(s) stored more than once (doubled)")
        if expected_lines is not None and lines != expected_lines:
            problems.append(f"{lines} statement lines stored, {expected_lines} expected "
                            f"({'doubled' if lines > expected_lines else 'lost'})")
        over_line = q("""SELECT l.id, l.amount_minor, sum(a.amount_minor) FROM statement_lines l
            JOIN allocations a ON a.line_id = l.id AND a.active = 1 AND a.status IN ('auto', 'manual')
            GROUP BY l.id HAVING (l.amount_minor >= 0 AND sum(a.amount_minor) > l.amount_minor)
                OR (l.amount_minor < 0 AND sum(a.amount_minor) < l.amount_minor)""").fetchall()
        for row in over_line[:5]:
            problems.append(f"statement line {row[0]} of {row[1]} has {row[2]} allocated (double allocation)")
        over_invoice = q("""SELECT i.id, i.amount_due_minor, sum(CASE WHEN i.kind = 'credit_note'
                THEN -coalesce(a.invoice_amount_minor, a.amount_minor) ELSE coalesce(a.invoice_amount_minor,
                a.amount_minor) END + a.writeoff_minor) AS applied FROM invoices i
            JOIN allocations a ON a.invoice_id = i.id AND a.active = 1 AND a.status IN ('auto', 'manual')
            GROUP BY i.id HAVING applied > i.amount_due_minor OR applied < 0""").fetchall()
        for row in over_invoice[:5]:
            problems.append(f"invoice {row[0]} of {row[1]} due has {row[2]} applied (double allocation)")
        two_decisions = q("""SELECT line_id, count(DISTINCT coalesce(run_id, '') || '|' || coalesce(decided_by, ''))
            FROM allocations WHERE active = 1 AND status IN ('auto', 'manual', 'suggested')
            GROUP BY line_id HAVING count(DISTINCT coalesce(run_id, '') || '|' || coalesce(decided_by, '')) > 1"""
                          ).fetchall()
        for row in two_decisions[:5]:
            problems.append(f"statement line {row[0]} carries {row[1]} live decisions at once")
        unbalanced = q("SELECT journal, piece_ref, sum(debit_minor), sum(credit_minor) FROM ledger_entries "
                       "GROUP BY journal, piece_ref HAVING sum(debit_minor) != sum(credit_minor)").fetchall()
        for row in unbalanced[:5]:
            problems.append(f"ledger piece {row[0]} {row[1]} unbalanced: {row[2]} / {row[3]}")
        pieces = {row[0] for row in q("SELECT DISTINCT piece_ref FROM ledger_entries WHERE journal = 'BQ'")}
        open_by_allocation: dict[int, int] = {}
        for piece in pieces:
            if piece.endswith("R"):
                continue
            allocation = int(piece[1:].split(".")[0])
            if piece + "R" not in pieces:
                open_by_allocation[allocation] = open_by_allocation.get(allocation, 0) + 1
        for allocation, count in open_by_allocation.items():
            if count > 1:
                problems.append(f"allocation {allocation} posted {count} times (doubled in the ledger)")
        if expected_lines is not None:  # the end state: every matched line's cash on the bank account once
            bank_account = "512000"  # the default bank account of connector/reconcile/ledger.py
            net: dict[int, int] = {}
            for piece, debit, credit in q("SELECT piece_ref, sum(debit_minor), sum(credit_minor) FROM ledger_entries "
                                          "WHERE journal = 'BQ' AND account = ? GROUP BY piece_ref", (bank_account,)):
                allocation = int(piece[1:].split(".")[0].rstrip("R"))
                line = q("SELECT line_id FROM allocations WHERE id = ?", (allocation,)).fetchone()[0]
                net[line] = net.get(line, 0) + debit - credit
            for line_id, amount, status in q("SELECT id, amount_minor, match_status FROM statement_lines"):
                expected = amount if status == "matched" else 0
                if net.get(line_id, 0) != expected:
                    problems.append(f"statement line {line_id} ({status}, {amount}) is on the bank account for "
                                    f"{net.get(line_id, 0)} in the ledger")
                    if len(problems) > 20:
                        break
    finally:
        conn.close()
    return problems


def recon_crash_loop(folder: Path, *, kills: int, seed: int, invoices: int = 120, lines: int = 100, files: int = 4,
                     broken: bool = False, deadline_s: float = 600) -> ReconOutcome:
    """Each restart replays the acknowledgements of the work already done (re-imports, empty runs) quickly,
    then the kill lands 0-3 acknowledgements further, inside new work: so the kills walk through the whole
    pass (import, match, post of every file) instead of piling up on work already done."""
    started = time.monotonic()
    built = build_scenario(folder, seed=seed, invoices=invoices, lines=lines, files=files)
    db = folder / "cessio.db"
    seed_store(db, built["invoices"])
    names = built["files"]
    env = child_env(NO_DEDUP="1" if broken else "0")
    rng = random.Random(seed)
    outcome = ReconOutcome(expected_lines=built["expected_lines"], files=len(names))
    acked_files: set[str] = set()
    acked_runs: set[str] = set()
    finished = False
    progress = 0  # acknowledgements the last killed run got to (the durable prefix a restart replays)
    while not finished and time.monotonic() - started < deadline_s:
        killing = outcome.kills < kills
        proc = subprocess.Popen([sys.executable, "-c", WORKER, str(db), str(folder), ",".join(names)], cwd=PROJECT,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        outcome.runs += 1
        target = progress + rng.randint(0, 3) if killing else 10**9
        seen = 0
        last = ""
        assert proc.stdout is not None and proc.stderr is not None
        while seen < target:
            line = proc.stdout.readline()
            if not line:
                break
            seen += 1
            word, *rest = line.split()
            last = word
            if word == "IMPORT":
                acked_files.add(rest[0])
            elif word == "RECONCILE" and int(rest[1]) > 0:
                acked_runs.add(rest[0])
            elif word == "DONE":
                finished = not killing
        progress = max(0, seen - 1)
        if killing and proc.poll() is None:
            if rng.random() < 0.7:  # most kills land somewhere inside the next import, match or posting
                time.sleep(rng.uniform(0, 0.4))
            os.kill(proc.pid, signal.SIGKILL)
            outcome.kills += 1
        out, err = proc.communicate(timeout=300)
        for line in out.splitlines():  # what was acknowledged between the last read and the kill
            word, *rest = line.split() or [""]
            last = word or last
            if word == "IMPORT":
                acked_files.add(rest[0])
            elif word == "RECONCILE" and int(rest[1]) > 0:
                acked_runs.add(rest[0])
            elif word == "DONE" and not killing:
                finished = True
        if proc.returncode == -signal.SIGKILL:
            step = {"": "start-up or first import", "IMPORT": "reconcile", "RECONCILE": "ledger posting",
                    "LEDGER": "import"}.get(last, last)
            outcome.killed_during[step] = outcome.killed_during.get(step, 0) + 1
        if proc.returncode not in (0, -signal.SIGKILL):
            outcome.problems.append(f"worker failed (rc={proc.returncode}): {err.strip()[-600:]}")
            break
        problems = check_store(db, acked_files=acked_files, acked_runs=acked_runs, expected_lines=None)
        outcome.problems += [f"after kill {outcome.kills}: {p}" for p in problems]
        if problems and broken:
            break
    if not finished and not outcome.problems:
        outcome.problems.append("the worker never finished within the deadline")
    if not outcome.problems or not broken:
        outcome.problems += check_store(db, acked_files=acked_files, acked_runs=acked_runs,
                                        expected_lines=built["expected_lines"])
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        outcome.lines = conn.execute("SELECT count(*) FROM statement_lines").fetchone()[0]
        outcome.matched = conn.execute("SELECT count(*) FROM statement_lines WHERE match_status = 'matched'"
                                       ).fetchone()[0]
        outcome.allocations = conn.execute("SELECT count(*) FROM allocations WHERE active = 1").fetchone()[0]
        outcome.pieces = conn.execute("SELECT count(DISTINCT journal || piece_ref) FROM ledger_entries").fetchone()[0]
    finally:
        conn.close()
    outcome.acked_imports, outcome.acked_runs = len(acked_files), len(acked_runs)
    outcome.seconds = round(time.monotonic() - started, 1)
    return outcome
