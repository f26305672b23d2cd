"""A real crash: `cessio pull` is SIGKILLed mid-file, then run again; nothing is lost or stored twice."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROWS = 1500


def write_export(path: Path) -> None:
    lines = ["invoice_number,issue_date,due_date,currency,total,customer,customer_siren"]
    lines += [f"INV-{n:05d},2026-10-01,2026-12-01,EUR,{100 + n}.{n % 100:02d},ACME Industrie SA,552100554"
              for n in range(ROWS)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_sigkill_mid_pull_then_restart_converges(tmp_path: Path) -> None:
    (tmp_path / "exports").mkdir()
    write_export(tmp_path / "exports" / "big.csv")
    (tmp_path / "m.toml").write_text('[columns]\nnumber = "invoice_number"\nissue_date = "issue_date"\n'
                                     'due_date = "due_date"\ncurrency = "currency"\ntotal_gross = "total"\n'
                                     'buyer_name = "customer"\nbuyer_legal_id = "customer_siren"\n')
    config = tmp_path / "cessio.toml"
    config.write_text('[store]\npath = "cessio.db"\n[company]\nname = "Cessio Demo SAS"\nlegal_id = "732829320"\n'
                      f'[sources.erp]\ntype = "csv"\npath = "exports"\nmapping = "{tmp_path / "m.toml"}"\n'
                      'batch_rows = 50\n', encoding="utf-8")
    command = [sys.executable, "-m", "connector", "--config", str(config), "pull"]
    victim = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    db = tmp_path / "cessio.db"
    deadline = time.monotonic() + 60
    committed = 0
    while time.monotonic() < deadline and victim.poll() is None:
        if db.exists():
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
                    committed = conn.execute("SELECT count(*) FROM invoices").fetchone()[0]
            except sqlite3.Error:
                committed = 0
            if committed >= 100:
                break
        time.sleep(0.02)
    if victim.poll() is not None:
        pytest.fail("the pull finished before it could be killed; make the file bigger")
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    with sqlite3.connect(db) as conn:
        after_kill = conn.execute("SELECT count(*) FROM invoices").fetchone()[0]
    assert 0 < after_kill < ROWS
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT invoice_key), max(current_version) "
                            "FROM invoices").fetchone() == (ROWS, ROWS, 1)
        assert conn.execute("SELECT count(*) FROM audit WHERE event = 'invoice.created'").fetchone()[0] == ROWS
    verify = subprocess.run([sys.executable, "-m", "connector", "--config", str(config), "audit", "verify"],
                            capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr
