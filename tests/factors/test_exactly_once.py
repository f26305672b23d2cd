"""Exactly-once under faults and SIGKILL (docs reliability §9 A1/A4/A9), with its negative control.

Real processes: the sandbox factor runs as ``cessio sandbox-factor`` with every fault kind on, and the
sender is ``cessio assign`` in its own process, SIGKILLed at random instants at least 30 times.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import time
from pathlib import Path

from connector.store import Store
from tests.factors.conftest import CESSIO, SandboxProcess, seed_invoices, write_config
from tests.factors.naive_sender import NaiveSender

ALL_FAULTS = ("drop_before=0.04,drop_after=0.06,http_429=0.03,http_500=0.03,http_503=0.03,slow=0.02,"
              "truncated=0.04,retry_after=0,slow_seconds=0.8")
INVOICES = int(os.environ.get("CESSIO_KILL_TEST_INVOICES", "1000"))
KILLS = int(os.environ.get("CESSIO_KILL_TEST_KILLS", "30"))


def _sender(config: Path) -> subprocess.Popen:
    return subprocess.Popen([*CESSIO, "--config", str(config), "-q", "assign"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_a_thousand_invoices_reach_the_factor_exactly_once_despite_faults_and_sigkill(tmp_path: Path):
    factor = SandboxProcess(tmp_path / "factor.db", ALL_FAULTS, seed=5)
    try:
        config = write_config(tmp_path, factor.url, connect_timeout='"0.5"', read_timeout='"0.5"',
                              deadline='"60"', batch_size=10, lease_seconds=1, breaker_threshold=50,
                              breaker_cooldown='"0.2"')
        with Store(tmp_path / "cessio.db") as store:
            seed_invoices(store, INVOICES)
        rng = random.Random(20261128)
        killed_mid_run = 0
        runs = 0
        while killed_mid_run < KILLS and runs < KILLS * 3:
            runs += 1
            sender = _sender(config)
            time.sleep(rng.uniform(0.2, 1.0))
            if sender.poll() is None:
                sender.send_signal(signal.SIGKILL)
                killed_mid_run += 1
            sender.wait(10)
        for _ in range(10):  # restart until the outbox is drained
            assert _sender(config).wait(120) == 0
            with Store(tmp_path / "cessio.db") as store:
                if not store.assignment_candidates() and set(store.outbox_counts()) == {"sent"}:
                    break
        held = factor.holdings()
        stats = factor.get("/v1/_sandbox/stats")
        with Store(tmp_path / "cessio.db") as store:
            rows = store.assignment_rows("sandbox")
            audit = store.verify_audit()
            problems = store.integrity_check(quick=True)
    finally:
        factor.stop()

    assert killed_mid_run >= KILLS
    per_invoice = collections.Counter(a["invoice_key"] for a in held)
    assert len(held) == INVOICES, f"factor holds {len(held)} assignments for {INVOICES} invoices"
    assert max(per_invoice.values()) == 1, "an invoice was assigned twice"
    assert len(per_invoice) == INVOICES, "an invoice is missing at the factor"
    # Cessio agrees with the factor: every row sent, with exactly the factor's ids
    assert len(rows) == INVOICES and {r["state"] for r in rows} == {"sent"}
    assert {r["remote_id"] for r in rows} == {a["assignment_id"] for a in held}
    assert {r["idempotency_key"] for r in rows} == {a["idempotency_key"] for a in held}
    assert audit.ok and problems == []
    print(f"\nexactly-once: {INVOICES} invoices, {killed_mid_run} SIGKILLs in {runs} runs; factor holds "
          f"{len(held)}, duplicates 0; factor saw {stats['requests']} requests ({stats['posts']} POSTs), "
          f"faults injected {stats['faults']}")


def test_the_naive_sender_double_finances_under_the_same_faults(tmp_path: Path):
    """Negative control: new key per attempt, no lookup. The same harness must see duplicates."""
    factor = SandboxProcess(tmp_path / "factor.db", ALL_FAULTS, seed=5)
    try:
        naive = NaiveSender(factor.url + "/v1", read_timeout=0.5)
        for i in range(150):
            naive.assign({"invoice_key": f"naive|F-{i}", "number": f"F-{i}", "kind": "invoice",
                          "debtor": {"key": "vat:FR01123456789", "vat_id": "FR01123456789"},
                          "currency": "EUR", "amount": "1000.00", "issue_date": "2026-11-01",
                          "due_date": "2099-12-01"})
        held = factor.holdings()
    finally:
        factor.stop()
    per_invoice = collections.Counter(a["invoice_key"] for a in held)
    doubled = sum(1 for n in per_invoice.values() if n > 1)
    print(f"\nnaive sender: {doubled} of 150 invoices held more than once ({len(held)} assignments)")
    assert doubled > 0
