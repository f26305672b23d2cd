"""Store durability under crashes, I/O errors and a full disk (docs/reliability.md §C).

Real SQLite on real files, a real writer process SIGKILLed at random instants, real syscall faults
injected by ``strace -e inject=...`` and a real, tiny tmpfs that fills up. After every fault the same
invariants hold: ``integrity_check`` ok, audit chain valid, every acknowledged batch durable (acked ⊆
durable), no half-written batch, and the writer resumes where the store says it stopped.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from connector.errors import RetryLater, StoreError
from connector.store import Store
from tests.factories import make_invoice
from tests.reliability.harness import (
    BATCH_WRITER,
    PROJECT,
    check_batches,
    child_env,
    crash_loop,
    strace_prefix,
    strace_usable,
)

needs_strace = pytest.mark.skipif(not strace_usable(), reason="strace with ptrace is not available here")


def run_writer(db: Path, start: int, stop: int, *, prefix: list[str] = (), env: dict | None = None,
               timeout: float = 60) -> tuple[int, set[int], str]:
    proc = subprocess.run([*prefix, sys.executable, "-c", BATCH_WRITER, str(db), str(start), str(stop)],
                          cwd=PROJECT, env=env or child_env(), capture_output=True, text=True, timeout=timeout)
    acked = {int(line) for line in proc.stdout.split() if line.isdigit()}
    error = next((line for line in proc.stdout.splitlines() if line.startswith("STOREERROR")), "")
    return proc.returncode, acked, error


def resume_and_finish(db: Path, stop: int) -> None:
    """Restart without faults from the durable cursor: the writer must reach ``stop`` and all is whole."""
    with Store(db, migrate=False) as store:
        cursor = store.get_cursor("crash")
    start = 0 if cursor is None else cursor["n"] + 1
    rc, _, error = run_writer(db, start, stop)
    assert rc == 0, error
    outcome = check_batches(db, set(range(stop)))
    assert outcome.ok, outcome
    assert outcome.durable_batches == stop


def run_writer_with_fault(db: Path, inject: str, syscalls: str) -> tuple[int, set[int], str]:
    """A fresh store, then the writer of batches 0..39 with one syscall fault injected by strace."""
    Store(db).close()
    return run_writer(db, 0, 40, prefix=strace_prefix(inject, syscalls))


def acked_are_durable_then_resume(db: Path, acked: set[int], stop: int = 40):
    """After the fault: the store is whole with every acknowledged batch in it, and a restart finishes."""
    outcome = check_batches(db, acked)
    assert outcome.ok, outcome
    resume_and_finish(db, stop)
    return outcome


# -- C1: SIGKILL at random instants ----------------------------------------------------------------------

@pytest.mark.slow
def test_c1_sigkill_at_random_instants_loses_no_acknowledged_batch(tmp_path):
    outcome = crash_loop(tmp_path / "c1.db", kills=20, seed=20261128)
    assert outcome.kills == 20
    assert outcome.ok, outcome
    assert outcome.lost_acks == 0 and outcome.acked > 20


@pytest.mark.slow
def test_c1_negative_control_ack_before_commit_is_caught(tmp_path):
    """A writer that acknowledges before COMMIT (the broken variant) must be caught losing acks."""
    outcome = crash_loop(tmp_path / "c1-broken.db", kills=20, seed=20261128, broken=True)
    assert outcome.lost_acks > 0, "the crash harness could not see a lost acknowledgement"
    assert not outcome.ok


# -- C2: EIO on fsync -------------------------------------------------------------------------------------

# The 2nd fdatasync of a fresh writer is SQLite's fsync of the *directory* after creating the WAL, which
# SQLite deliberately treats as best effort (os_unix.c ignores its result): an EIO there is not an error
# of any transaction, so that instant is left out here (bench/soak.py sweeps every N and reports it).
@needs_strace
@pytest.mark.parametrize("nth", [1, 3, 5, 9, 17])
def test_c2_eio_on_fsync_stops_with_store_error_and_never_corrupts(tmp_path, nth):
    db = tmp_path / "c2.db"
    rc, acked, error = run_writer_with_fault(db, f"fsync,fdatasync:error=EIO:when={nth}", "fsync,fdatasync")
    assert rc == 3, f"writer did not stop on EIO (rc={rc})"
    assert "SQLITE_IOERR" in error, error
    acked_are_durable_then_resume(db, acked)


SWALLOWING_WRITER = r"""
# Negative control: a store whose I/O errors are treated as transient and retried on the same
# connection (what rule 6 forbids). It never stops.
import connector.store.base as base
from connector.errors import RetryLater
base.translate_sqlite_error = lambda exc, what: RetryLater(f"{what}: {exc}")
import sys
from connector.store import Store
from tests.factories import make_invoice
store = Store(sys.argv[1], actor="swallow", migrate=False)
for n in range(int(sys.argv[2]), int(sys.argv[3])):
    try:
        with store.transaction():
            store.save_invoice(make_invoice(number=f"B{n:07d}-0"))
            store.save_cursor("crash", {"n": n})
    except RetryLater:
        continue
    print(n, flush=True)
"""


@needs_strace
def test_c2_negative_control_a_writer_that_swallows_eio_is_caught(tmp_path):
    db = tmp_path / "c2-swallow.db"
    Store(db).close()
    proc = subprocess.run([*strace_prefix("fsync,fdatasync:error=EIO:when=3", "fsync,fdatasync"),
                           sys.executable, "-c", SWALLOWING_WRITER, str(db), "0", "10"],
                          cwd=PROJECT, env=child_env(), capture_output=True, text=True, timeout=60)
    # the assertion of the real test (rc == 3 with SQLITE_IOERR) fails for this variant
    assert proc.returncode == 0 and "STOREERROR" not in proc.stdout


# -- C3: disk full ------------------------------------------------------------------------------------------

@needs_strace
@pytest.mark.parametrize("nth", [1, 4, 15, 40])
def test_c3_enospc_on_write_stops_with_sqlite_full_and_resumes(tmp_path, nth):
    db = tmp_path / "c3.db"
    rc, acked, error = run_writer_with_fault(db, f"pwrite64:error=ENOSPC:when={nth}", "pwrite64")
    assert rc == 3, f"writer did not stop on ENOSPC (rc={rc})"
    assert "SQLITE_FULL" in error or "SQLITE_IOERR" in error, error
    acked_are_durable_then_resume(db, acked)


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A real 1 MiB file system (tmpfs) that the writer fills up; skipped where mount is refused."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


@pytest.mark.slow
def test_c3_real_disk_full_on_a_tiny_filesystem(tiny_tmpfs):
    db = tiny_tmpfs / "full.db"
    Store(db).close()
    rc, acked, error = run_writer(db, 0, 100_000, timeout=120)
    assert rc == 3 and "SQLITE_FULL" in error, (rc, error)
    assert len(acked) >= 3
    outcome = check_batches(db, acked)
    assert outcome.ok, outcome
    # space comes back: the writer resumes from the durable cursor and finishes
    subprocess.run(["mount", "-o", "remount,size=16m", str(tiny_tmpfs)], check=True)
    resume_and_finish(db, max(acked) + 20)


# -- C4: SIGKILL at an exact fsync -----------------------------------------------------------------------------

@needs_strace
@pytest.mark.parametrize("nth", [2, 3, 6, 11, 19])
def test_c4_kill_at_the_nth_fsync_keeps_acked_within_durable_within_acked_plus_one(tmp_path, nth):
    db = tmp_path / "c4.db"
    rc, acked, _ = run_writer_with_fault(db, f"fsync,fdatasync:signal=KILL:when={nth}", "fsync,fdatasync")
    assert rc != 0, "the writer was supposed to be killed"
    outcome = acked_are_durable_then_resume(db, acked)
    # at most one committed-but-unacknowledged transaction (counted before the restart)
    assert len(acked) <= outcome.durable_batches <= len(acked) + 1


# -- C6: lock contention -------------------------------------------------------------------------------------

def test_c6_a_held_write_lock_gives_retry_later_after_busy_timeout(tmp_path):
    db = tmp_path / "c6.db"
    store = Store(db)
    store.conn.execute("PRAGMA busy_timeout=300")
    holder = sqlite3.connect(str(db), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    with pytest.raises(RetryLater), store.transaction():
        store.save_invoice(make_invoice())
    waited = time.monotonic() - started
    holder.execute("ROLLBACK")
    holder.close()
    assert 0.25 <= waited < 5, waited
    with store.transaction():  # the same connection works once the lock is gone
        store.save_invoice(make_invoice())
    assert store.count_invoices() == 1
    store.close()


def test_c6_no_deferred_write_transactions_in_the_code():
    """Grep gate: every write transaction starts with BEGIN IMMEDIATE; a bare BEGIN is only allowed for
    the read snapshot in connector/store/base.py."""
    offenders = []
    pattern = re.compile(r"""execute\(\s*f?["']\s*BEGIN(?!\s+IMMEDIATE)""", re.IGNORECASE)
    for path in sorted((PROJECT / "connector").rglob("*.py")) + sorted((PROJECT / "adapters").rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(PROJECT)}:{number}: {line.strip()}")
    allowed = [o for o in offenders if o.startswith("connector/store/base.py") and "snapshot" not in o]
    snapshot_lines = [o for o in offenders if o.startswith("connector/store/base.py")]
    assert len(snapshot_lines) <= 1, snapshot_lines
    assert [o for o in offenders if o not in snapshot_lines] == [], offenders
    del allowed


# -- C7: corruption -------------------------------------------------------------------------------------------

def _store_with_rows(db: Path, rows: int = 300) -> None:
    with Store(db) as store:
        for n in range(rows):
            with store.transaction():
                store.save_invoice(make_invoice(number=f"K{n:05d}"))
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _cessio_check(db: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "connector", "--db", str(db), "check"], cwd=PROJECT,
                          env=child_env(), capture_output=True, text=True, timeout=60)


def test_c7_broken_pages_are_detected_by_check(tmp_path):
    db = tmp_path / "c7.db"
    _store_with_rows(db)
    data = bytearray(db.read_bytes())
    page = 4096
    for start in range(page, len(data), page):  # every b-tree page gets an invalid page-type byte
        data[start] = 0xEE
    db.write_bytes(bytes(data))
    proc = _cessio_check(db)
    assert proc.returncode == 1, proc.stdout
    assert "FAIL store" in proc.stdout
    assert "Traceback" not in proc.stderr


def _business_rows(db: Path) -> object:
    """Every ``invoices`` and ``invoice_versions`` row as stored (bytes for text), or the error reading them."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        conn.text_factory = bytes
        try:
            return [conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
                    for table in ("invoices", "invoice_versions")]
        finally:
            conn.close()
    except (sqlite3.Error, UnicodeDecodeError) as exc:
        return repr(exc)


def test_c7_random_scribbles_never_crash_check(tmp_path):
    """Bytes scribbled anywhere: ``cessio check`` answers (ok or FAIL), never with a traceback.
    (Before the fix in connector/operations.py and store/base.py, 12 of 30 such files gave a traceback.)

    And a store that ``check`` passes has its invoice rows intact (finding 8): before the business-row
    check, 5 of these 8 files passed with changed bytes inside ``invoices`` / ``invoice_versions`` rows."""
    import random

    base = tmp_path / "c7-base.db"
    _store_with_rows(base)
    original = base.read_bytes()
    intact = _business_rows(base)
    failures = caught_by_rows = 0
    for seed in range(8):
        rng = random.Random(seed)
        data = bytearray(original)
        for _ in range(rng.randint(1, 6)):
            offset = rng.randrange(100, len(data) - 64)
            data[offset:offset + 64] = rng.randbytes(64)
        db = tmp_path / f"c7-{seed}.db"
        db.write_bytes(bytes(data))
        proc = _cessio_check(db)
        assert "Traceback" not in proc.stderr, (seed, proc.stderr[-2000:])
        assert proc.returncode in (0, 1)
        failures += proc.returncode == 1
        if proc.returncode == 0:
            assert _business_rows(db) == intact, (seed, proc.stdout)
        caught_by_rows += bool(re.search(r"^ok   store:.*\n^ok   audit:", proc.stdout, re.M)) \
            and "FAIL business rows:" in proc.stdout
    assert failures >= 1
    assert caught_by_rows >= 1  # the scribbles this test makes do reach invoice rows that quick_check passes


# -- C8: online backup while writing --------------------------------------------------------------------------

@pytest.mark.slow
def test_c8_backup_while_a_writer_runs_is_consistent(tmp_path):
    db = tmp_path / "c8.db"
    Store(db).close()
    writer = subprocess.Popen([sys.executable, "-c", BATCH_WRITER, str(db), "0", "400"], cwd=PROJECT,
                              env=child_env(), stdout=subprocess.PIPE, text=True)
    backups = []
    try:
        assert writer.stdout is not None
        for round_ in range(4):
            for _ in range(10):
                writer.stdout.readline()
            target = tmp_path / f"backup-{round_}.db"
            with Store(db, migrate=False, actor="backup") as live:
                live.backup_to(target)
            backups.append(target)
    finally:
        writer.kill()
        writer.wait()
    for target in backups:
        with Store(target, migrate=False) as copy:
            assert copy.integrity_check() == []
            assert copy.verify_audit().ok
        outcome = check_batches(target, set())
        assert outcome.half_batches == 0


def test_c8_live_db_is_never_opened_as_a_plain_file():
    """Grep gate (howtocorrupt §2): closing any fd on the DB drops SQLite's POSIX locks; copy with backup."""
    offenders = []
    for path in sorted((PROJECT / "connector").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for pattern in (r"shutil\.copy\w*\([^)]*store", r"open\([^)]*store_path", r"open\([^)]*\.db['\"]"):
            offenders += [f"{path.relative_to(PROJECT)}: {m.group(0)}" for m in re.finditer(pattern, text)]
    assert offenders == []


def test_concurrent_writers_in_threads_each_with_their_connection(tmp_path):
    """Two connections writing at once (the CLI beside the agent) serialise on BEGIN IMMEDIATE."""
    db = tmp_path / "threads.db"
    Store(db).close()
    errors: list[BaseException] = []

    def work(prefix: str) -> None:
        try:
            with Store(db, migrate=False, actor=prefix) as mine:
                for n in range(60):
                    with mine.transaction():
                        mine.save_invoice(make_invoice(number=f"{prefix}{n:04d}"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(p,)) for p in ("T", "U", "V")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    with Store(db, migrate=False) as store:
        assert store.count_invoices() == 180
        verdict = store.verify_audit()
        assert verdict.ok and verdict.rows == 180


def test_store_error_is_what_the_caller_sees():
    assert issubclass(StoreError, Exception)
