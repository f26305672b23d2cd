"""The exactly-once fault test of the assignment engine, repeated for the file channel: a process killed
(SIGKILL) while it prepares, writes or releases a bordereau never leaves two files for one batch, and
after a restart every batch has exactly its one file."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from connector.channels import bordereau
from connector.channels.bordereau import FAULT_ENV
from connector.store import Store
from tests.channels.sample import DOMESTIC
from tests.factories import make_invoice

PROJECT = Path(__file__).resolve().parents[2]


def _seed(db: Path, batches: int, per_batch: int = 3) -> None:
    store = Store(db, actor="test")
    try:
        for b in range(batches):
            with store.transaction():
                ids = [store.save_invoice(dataclasses.replace(
                    make_invoice(f"F{b:03d}-{i:02d}", f"{100 + b}.{i:02d}", buyer=DOMESTIC))).invoice_id
                    for i in range(per_batch)]
                store.channel_claim_batch("bpce", "file", bordereau.claim_items(store, ids))
    finally:
        store.close()


def _run(db: Path, outbox: Path, fault: str | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    if fault:
        env[FAULT_ENV] = fault
    return subprocess.Popen([sys.executable, "-m", "tests.channels.release_driver", str(db), str(outbox), "bpce",
                             "bpce"], cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _check_invariants(db: Path, outbox: Path, *, finished: bool) -> None:
    store = Store(db, actor="test")
    try:
        finals = [p for p in outbox.iterdir() if p.is_file() and not p.name.startswith(".")] \
            if outbox.exists() else []
        by_name = {p.name: p for p in finals}
        rows = store.channel_files(factor="bpce")
        # never two files for one batch: each file in the outbox is the one recorded row of its batch
        assert len({r["batch_id"] for r in rows}) == len(rows)
        recorded = {r["file_name"]: r for r in rows}
        assert set(by_name) <= set(recorded), f"unrecorded file in outbox: {set(by_name) - set(recorded)}"
        for name, path in by_name.items():
            assert hashlib.sha256(path.read_bytes()).hexdigest() == recorded[name]["sha256"]
        # never a released batch without its file
        for row in rows:
            if row["state"] == "released":
                assert row["file_name"] in by_name
        batches = store._all("SELECT id, state FROM batches WHERE factor = 'bpce'")
        if finished:
            assert {b["state"] for b in batches} == {"released"}
            assert len(by_name) == len(batches) == len(rows)
            assert not [p for p in outbox.iterdir() if p.name.startswith(".")], "partial file left behind"
        assert store.verify_audit().ok
        assert store.integrity_check(quick=True) == []
    finally:
        store.close()


@pytest.mark.parametrize("fault", ["after_record", "mid_write", "after_rename"])
def test_kill_at_each_point_then_restart_converges(tmp_path, fault):
    db, outbox = tmp_path / "c.db", tmp_path / "outbox"
    _seed(db, batches=2)
    killed = _run(db, outbox, fault)
    killed.communicate(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    _check_invariants(db, outbox, finished=False)
    done = _run(db, outbox)
    _, err = done.communicate(timeout=60)
    assert done.returncode == 0, err.decode()
    _check_invariants(db, outbox, finished=True)


def test_kill_at_random_instants_then_restart_converges(tmp_path):
    db, outbox = tmp_path / "c.db", tmp_path / "outbox"
    _seed(db, batches=20, per_batch=2)
    rng = random.Random(6)
    for _ in range(6):
        proc = _run(db, outbox)
        time.sleep(rng.uniform(0.3, 1.0))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        _check_invariants(db, outbox, finished=False)
    done = _run(db, outbox)
    _, err = done.communicate(timeout=60)
    assert done.returncode == 0, err.decode()
    _check_invariants(db, outbox, finished=True)


@pytest.mark.parametrize("fault", ["mid_write", None])
def test_engine_sender_killed_while_writing_then_restarted(tmp_path, fault):
    """The same through the assignment engine's outbox and the file channel (issue 5's sender loop)."""
    from tests.channels.test_engine_channels import _claim_all

    db, outbox = tmp_path / "c.db", tmp_path / "outbox"
    store = Store(db, actor="test")
    _claim_all(store, "bpce")
    store.close()
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    if fault:
        env[FAULT_ENV] = fault
    command = [sys.executable, "-m", "tests.channels.release_driver", "engine", str(db), str(outbox)]
    killed = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, timeout=60)
    assert killed.returncode == (-signal.SIGKILL if fault else 0), killed.stderr.decode()
    env.pop(FAULT_ENV, None)
    done = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    store = Store(db, actor="test")
    try:
        files = sorted(p.name for p in outbox.iterdir() if p.is_file() and not p.name.startswith("."))
        batches = store._all("SELECT number, state, remote_id FROM batches WHERE factor = 'bpce' ORDER BY number")
        assert [b["state"] for b in batches] == ["sent", "sent"]  # 4 items, 2 per batch
        assert files == sorted(b["remote_id"] for b in batches)  # exactly one file per batch
        assert not [p for p in outbox.iterdir() if p.name.startswith(".")]
        assert {r["state"] for r in store.assignment_rows("bpce")} == {"sent"}
    finally:
        store.close()
