"""Shared machinery of the reliability suites: child processes with rlimits, crash loops, strace.

Everything here runs the real thing: a real Python child process (``sys.executable``) on the real
store file, killed with real signals, with real syscall faults injected by ``strace``. Nothing here is
a test double. Used by ``tests/reliability/`` (small counts) and ``bench/soak.py`` (large counts).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]


def child_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "PYTHONDONTWRITEBYTECODE": "1"}
    env.update(extra)
    return env


# -- a bounded child process that reports its own peak memory -----------------------------------------

CHILD_PRELUDE = r"""
import json, resource, sys, time, traceback
_limit_mb = int(sys.argv[1]); _cpu_s = int(sys.argv[2])
if _limit_mb:
    resource.setrlimit(resource.RLIMIT_AS, (_limit_mb * 2**20, _limit_mb * 2**20))
resource.setrlimit(resource.RLIMIT_CPU, (_cpu_s, _cpu_s))
_started = time.monotonic()
def _peak_rss_mb():
    # VmHWM belongs to this process's own address space; getrusage's ru_maxrss survives execve on Linux,
    # so it would report the (large) pytest worker that spawned us rather than the reader under test.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
def _report(outcome, **extra):
    peak_mb = _peak_rss_mb()
    print("\n@@REPORT " + json.dumps({"outcome": outcome, "peak_rss_mb": round(peak_mb, 1),
          "seconds": round(time.monotonic() - _started, 3), **extra}), flush=True)
"""


@dataclass
class ChildResult:
    returncode: int
    stdout: str
    stderr: str
    report: dict = field(default_factory=dict)

    @property
    def outcome(self) -> str | None:
        return self.report.get("outcome")


def run_bounded(body: str, *, memory_mb: int = 1024, cpu_seconds: int = 60, wall_seconds: float = 120,
                args: tuple[str, ...] = (), env: dict[str, str] | None = None) -> ChildResult:
    """Run ``body`` (Python source using ``_report(outcome, **extra)``) in a child with ``RLIMIT_AS`` and
    ``RLIMIT_CPU``; the child prints one ``@@REPORT`` JSON line with its peak RSS (VmHWM)."""
    code = CHILD_PRELUDE + "\n" + body
    proc = subprocess.run([sys.executable, "-c", code, str(memory_mb), str(cpu_seconds), *args],
                          cwd=PROJECT, env=env or child_env(), capture_output=True, text=True,
                          timeout=wall_seconds)
    report: dict = {}
    for line in proc.stdout.splitlines():
        if line.startswith("@@REPORT "):
            report = json.loads(line[len("@@REPORT "):])
    return ChildResult(proc.returncode, proc.stdout, proc.stderr, report)


# -- strace fault injection -----------------------------------------------------------------------------

def strace_usable() -> bool:
    """strace present and ptrace allowed here (it is, as root on the CI machine; skip elsewhere)."""
    if not shutil.which("strace"):
        return False
    probe = subprocess.run(["strace", "-f", "-o", "/dev/null", "-e", "trace=fsync",
                            "-e", "inject=fsync:error=EIO", "true"], capture_output=True, timeout=30)
    return probe.returncode == 0


def strace_prefix(inject: str, trace: str) -> list[str]:
    """``strace -f -e trace=... -e inject=...`` with its own chatter discarded."""
    return ["strace", "-f", "-qq", "-o", "/dev/null", "-e", f"trace={trace}", "-e", f"inject={inject}"]


# -- crash loop over batched store writes (scenario C1) -------------------------------------------------

# One batch = five invoices + their audit rows + a cursor + an outbox-like audit row, all in one
# BEGIN IMMEDIATE transaction; the batch number is printed (acknowledged) only after COMMIT returned.
# With ACK_BEFORE_COMMIT=1 it acknowledges *before* committing: the deliberately broken variant the
# checker must catch (negative control).
BATCH_WRITER = r"""
import os, sys
from connector.errors import StoreError
from connector.store import Store
from tests.factories import make_invoice
n = int(sys.argv[2]); stop = int(sys.argv[3]) if len(sys.argv) > 3 else 10**9
broken = os.environ.get("ACK_BEFORE_COMMIT") == "1"
try:
    store = Store(sys.argv[1], actor="crash-writer", migrate=False)
    while n < stop:
        with store.transaction():
            for k in range(5):
                store.save_invoice(make_invoice(number=f"B{n:07d}-{k}"))
            store.save_cursor("crash", {"n": n})
            store.audit("outbox.claimed", f"batch:{n}", {"n": n})
            if broken:
                print(n, flush=True)
        if not broken:
            print(n, flush=True)
        n += 1
except StoreError as exc:
    print("STOREERROR " + str(exc).replace("\n", " "), flush=True)
    sys.exit(3)
"""


@dataclass
class CrashOutcome:
    kills: int = 0
    acked: int = 0
    durable_batches: int = 0
    lost_acks: int = 0
    half_batches: int = 0
    integrity: list[str] = field(default_factory=list)
    audit_ok: bool = True
    audit_problem: str | None = None
    invoices_without_audit: int = 0

    @property
    def ok(self) -> bool:
        return (self.lost_acks == 0 and self.half_batches == 0 and not self.integrity and self.audit_ok
                and self.invoices_without_audit == 0)


def check_batches(db: Path, acked: set[int]) -> CrashOutcome:
    """The invariants after any crash: integrity ok, audit chain valid, acked ⊆ durable, no half batch,
    every invoice has its creation audit row."""
    import sqlite3

    from connector.store import Store

    out = CrashOutcome(acked=len(acked))
    with Store(db, migrate=False) as store:
        out.integrity = store.integrity_check()
        verdict = store.verify_audit()
        out.audit_ok, out.audit_problem = verdict.ok, verdict.problem
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            per_batch: dict[int, int] = {}
            for (number,) in conn.execute("SELECT number FROM invoices"):
                batch = int(number[1:].split("-")[0])
                per_batch[batch] = per_batch.get(batch, 0) + 1
            created = {row[0] for row in conn.execute(
                "SELECT json_extract(payload, '$.invoice_key') FROM audit WHERE event = 'invoice.created'")}
            keys = {row[0] for row in conn.execute("SELECT invoice_key FROM invoices")}
            claimed = {int(row[0]) for row in conn.execute(
                "SELECT json_extract(payload, '$.n') FROM audit WHERE event = 'outbox.claimed'")}
        finally:
            conn.close()
    out.durable_batches = len(per_batch)
    out.half_batches = sum(1 for count in per_batch.values() if count != 5) + len(set(per_batch) ^ claimed)
    out.lost_acks = len(acked - set(per_batch))
    out.invoices_without_audit = len(keys - created)
    return out


def crash_loop(db: Path, *, kills: int, seed: int, broken: bool = False, max_batches_per_round: int = 12,
               deadline_s: float = 600) -> CrashOutcome:
    """Start the batch writer, SIGKILL it at a random instant, restart from the durable cursor; repeat."""
    from connector.store import Store

    Store(db).close()  # migrate once, up front
    rng = random.Random(seed)
    env = child_env(ACK_BEFORE_COMMIT="1" if broken else "0")
    acked: set[int] = set()
    total_acked = 0
    lost_at_kill = 0
    next_batch = 0
    done_kills = 0
    started = time.monotonic()
    while done_kills < kills and time.monotonic() - started < deadline_s:
        proc = subprocess.Popen([sys.executable, "-c", BATCH_WRITER, str(db), str(next_batch)], cwd=PROJECT,
                                env=env, stdout=subprocess.PIPE, text=True)
        target = rng.randint(1, max_batches_per_round)
        seen = 0
        assert proc.stdout is not None
        while seen < target:
            line = proc.stdout.readline()
            if not line:
                break
            acked.add(int(line))
            total_acked += 1
            seen += 1
        # kill right after an ack half the time (the window a too-early ack would expose), else a
        # random delay that lands between or inside transactions
        if rng.random() >= 0.5:
            time.sleep(rng.uniform(0, 0.02))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        done_kills += 1
        with Store(db, migrate=False) as store:
            cursor = store.get_cursor("crash")
        durable_upto = -1 if cursor is None else cursor["n"]
        # checked at every kill: a lost acknowledged batch would be rewritten by the restart and hide
        lost_at_kill += sum(1 for n in acked if n > durable_upto)
        acked = {n for n in acked if n <= durable_upto}
        next_batch = durable_upto + 1
    outcome = check_batches(db, acked)
    outcome.kills = done_kills
    outcome.lost_acks += lost_at_kill
    outcome.acked = total_acked
    return outcome
