"""A factor outage compressed in time (scenario B3), black box: the sandbox factor is stopped and its
port answers every connection with a reset (a dead backend behind a load balancer) while the agent's
scheduled ``cessio assign`` runs keep firing; then the factor comes back on the same port with its data.

During the outage each run makes a bounded number of connection attempts (the circuit breaker, and the
outbox's persisted backoff), and nothing is lost: once the factor is back, every invoice is delivered exactly once.
"""

from __future__ import annotations

import collections
import subprocess

import pytest

from connector.store import Store
from tests.reliability.loopback import CountingListener

pytestmark = pytest.mark.slow


def start_sandbox(factors, data, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([*factors.CESSIO, "sandbox-factor", "--port", str(port), "--data", str(data)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert "listening on" in line, (line, proc.stderr.read())
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait(10)
    proc.stdout.close()
    proc.stderr.close()


def test_outage_runs_are_bounded_and_everything_is_delivered_once_after(tmp_path):
    factors = pytest.importorskip("tests.factors.conftest")
    from tests.adapters.tryton_server import free_port

    # No negative control here: with the breaker switched off (threshold 100,000) the runs still made only
    # [22, 4, 9] attempts, because each failed batch's next attempt is persisted with backoff in the outbox;
    # "a sender without a breaker" is therefore not a clean broken variant of this design.
    invoices, runs, threshold = 60, 4, 5
    port = free_port()
    data = tmp_path / "factor.db"
    sandbox = start_sandbox(factors, data, port)
    config = factors.write_config(tmp_path, f"http://127.0.0.1:{port}", connect_timeout='"0.5"',
                                  read_timeout='"0.5"', deadline='"4"', batch_size=5, lease_seconds=1,
                                  breaker_threshold=threshold, breaker_cooldown='"30"')
    with Store(tmp_path / "cessio.db") as store:
        factors.seed_invoices(store, invoices, debtors=4)
    command = [*factors.CESSIO, "--config", str(config), "-q", "assign"]
    # the limits are requested while the factor is up; then it goes down
    first = subprocess.run([*command, "--dry-run"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr[-1500:]
    stop(sandbox)
    dead = CountingListener(port, reset=True)  # resets every connection, counting them
    per_run = []
    try:
        for _ in range(runs):  # the scheduled runs of an hour-long outage, back to back
            before = dead.count
            subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
            per_run.append(dead.count - before)
    finally:
        dead.close()
    # each run stops hammering after the breaker opens: a few attempts per run, not one per invoice
    assert max(per_run) <= 3 * threshold, per_run
    with Store(tmp_path / "cessio.db") as store:
        assert store.verify_audit().ok
    sandbox = start_sandbox(factors, data, port)
    try:
        for _ in range(10):
            done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
            with Store(tmp_path / "cessio.db") as store:
                if done.returncode == 0 and not store.assignment_candidates() \
                        and set(store.outbox_counts()) == {"sent"}:
                    break
        import requests

        held = requests.get(f"http://127.0.0.1:{port}/v1/assignments", headers={"Authorization": "Bearer t"},
                            timeout=(2, 30)).json()["assignments"]
        with Store(tmp_path / "cessio.db") as store:
            rows = store.assignment_rows("sandbox")
    finally:
        stop(sandbox)
    per_invoice = collections.Counter(a["invoice_key"] for a in held)
    assert len(per_invoice) == invoices and max(per_invoice.values()) == 1, per_invoice.most_common(3)
    assert {r["state"] for r in rows} == {"sent"} and len(rows) == invoices
    print(f"\noutage: connection attempts per scheduled run {per_run}; after recovery {invoices} held once")
