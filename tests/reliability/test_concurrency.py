"""Concurrency: two Cessio processes working the same store at once never double-assign (issue 9,
"the CLI run while the agent runs").

Two ``cessio assign`` processes (one standing for the agent's job, one for an operator's manual run)
start together again and again against the sandbox factor with faults on, one of them SIGKILLed now
and then; they share one store. Afterwards the factor holds every invoice exactly once and Cessio's
rows agree with it. (The manual-reconcile-while-the-agent-reconciles case waits for the reconciliation
engine, issue 7.)
"""

from __future__ import annotations

import collections
import random
import signal
import subprocess
import time

import pytest

from connector.store import Store

pytestmark = pytest.mark.slow

FAULTS = "drop_after=0.08,http_500=0.04,truncated=0.04,slow=0.02,retry_after=0,slow_seconds=0.8"


def test_two_assign_processes_at_once_never_double_assign(tmp_path):
    factors = pytest.importorskip("tests.factors.conftest")
    invoices = 200
    factor = factors.SandboxProcess(tmp_path / "factor.db", FAULTS, seed=17)
    try:
        config = factors.write_config(tmp_path, factor.url, connect_timeout='"0.5"', read_timeout='"0.5"',
                                      deadline='"60"', batch_size=5, lease_seconds=1, breaker_threshold=50,
                                      breaker_cooldown='"0.2"')
        with Store(tmp_path / "cessio.db") as store:
            factors.seed_invoices(store, invoices, debtors=10)
        command = [*factors.CESSIO, "--config", str(config), "-q", "assign"]
        rng = random.Random(11)
        for _round in range(6):
            pair = [subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                    for _ in range(2)]
            time.sleep(rng.uniform(0.5, 2.0))
            victim = pair[rng.randrange(2)]
            if victim.poll() is None:
                victim.send_signal(signal.SIGKILL)
            for proc in pair:
                proc.wait(120)
                proc.stderr.close()
        for _ in range(10):
            done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
            with Store(tmp_path / "cessio.db") as store:
                if done.returncode == 0 and set(store.outbox_counts()) == {"sent"} \
                        and not store.assignment_candidates():
                    break
        held = factor.holdings()
        with Store(tmp_path / "cessio.db") as store:
            rows = store.assignment_rows("sandbox")
            assert store.verify_audit().ok and store.integrity_check(quick=True) == []
    finally:
        factor.stop()
    per_invoice = collections.Counter(a["invoice_key"] for a in held)
    assert max(per_invoice.values()) == 1, "an invoice was assigned twice"
    assert len(per_invoice) == invoices, f"{invoices - len(per_invoice)} invoices missing at the factor"
    assert len(rows) == invoices and {r["state"] for r in rows} == {"sent"}
    assert {r["remote_id"] for r in rows} == {a["assignment_id"] for a in held}
