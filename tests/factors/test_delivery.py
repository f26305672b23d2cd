"""Delivery behaviour against a real sandbox factor on loopback: outage and circuit breaker, restart
persistence, Retry-After, definitive refusals, events into ledgers, the CLI commands."""

from __future__ import annotations

import collections
import subprocess
import time
from pathlib import Path

import pytest
import requests

from connector.factors.api import CircuitBreaker, FactorApi, NotSent, parse_retry_after
from connector.factors.channel import ApiChannel
from connector.factors.engine import decide_and_claim, run_assign
from connector.factors.events import ingest_events
from connector.factors.outbox import drain
from connector.factors.profile import profiles
from connector.sandbox import start_in_thread
from connector.store import Store
from tests.factors.conftest import CESSIO, load, seed_invoices, write_config


def _admin(server, path: str, body: dict) -> dict:
    return requests.post(f"{server.url}/v1/_sandbox/{path}", json=body, timeout=(2, 10)).json()


def _held(server) -> list[dict]:
    return requests.get(f"{server.url}/v1/assignments", headers={"Authorization": "Bearer t"},
                        timeout=(2, 10)).json()["assignments"]


def test_outage_requests_bounded_by_the_breaker_then_all_delivered_once(tmp_path: Path, sandbox_thread, store):
    config = load(write_config(tmp_path, sandbox_thread.url, connect_timeout='"0.3"', read_timeout='"0.3"',
                               batch_size=5, breaker_threshold=3, breaker_cooldown='"0.5"'))
    profile = profiles(config)[0]
    seed_invoices(store, 300, debtors=5)
    channel = ApiChannel(profile)
    decide_and_claim(store, profile, channel=channel)       # limits requested and claims made before the outage
    outage = 3.0
    _admin(sandbox_thread, "outage", {"seconds": outage})
    started = time.monotonic()
    counts = drain(store, profile, channel, max_seconds=30)
    elapsed = time.monotonic() - started
    stats = requests.get(f"{sandbox_thread.url}/v1/_sandbox/stats", timeout=5).json()
    held = _held(sandbox_thread)
    per_invoice = collections.Counter(a["invoice_key"] for a in held)
    # threshold failures, then one probe per cool-down (jittered down to half of it) while the outage lasts
    bound = 3 + int(outage / (0.5 * 0.5)) + 2
    print(f"\noutage {outage}s: {stats['outage_requests']} requests reached the factor during it "
          f"(bound {bound}; breaker opened {channel.breaker.opened_count} times); drained in {elapsed:.1f}s; {counts}")
    assert stats["outage_requests"] <= bound
    assert channel.breaker.opened_count >= 1
    assert len(held) == 300 and max(per_invoice.values()) == 1
    assert set(store.outbox_counts("sandbox")) == {"sent"}


def test_sandbox_state_survives_a_restart_and_replays_idempotent_requests(tmp_path: Path):
    body = {"invoice_key": "k|1", "number": "1", "kind": "invoice", "debtor": {"key": "vat:FR1", "vat_id": "FR1"},
            "currency": "EUR", "amount": "10.00", "issue_date": "2026-11-01", "due_date": "2099-01-01"}
    headers = {"Authorization": "Bearer t", "Idempotency-Key": "key-1"}
    server = start_in_thread(data=tmp_path / "f.db")
    first = requests.post(f"{server.url}/v1/assignments", json=body, headers=headers, timeout=5)
    server.shutdown()
    server.server_close()
    server.book.close()
    server = start_in_thread(data=tmp_path / "f.db")
    try:
        again = requests.post(f"{server.url}/v1/assignments", json=body, headers=headers, timeout=5)
        other = requests.post(f"{server.url}/v1/assignments", json=dict(body, amount="11.00"), headers=headers,
                              timeout=5)
        assert first.status_code == 201 and again.json() == first.json()
        assert other.status_code == 422 and other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
        assert len(_held(server)) == 1
        missing = requests.post(f"{server.url}/v1/assignments", json=body, headers={"Authorization": "Bearer t"},
                                timeout=5)
        assert missing.status_code == 400
        anonymous = requests.get(f"{server.url}/v1/assignments", timeout=5)
        assert anonymous.status_code == 401
    finally:
        server.shutdown()
        server.server_close()


def test_retry_after_is_honoured_and_clamped():
    assert parse_retry_after("120", cap=900) == 120
    assert parse_retry_after("5000", cap=900) == 900
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", cap=900) == 0.0
    assert parse_retry_after(None, cap=900) is None


def test_429_retries_wait_the_retry_after_the_factor_asked(tmp_path: Path):
    server = start_in_thread(data=tmp_path / "f.db", faults="http_429=1,retry_after=7")
    try:
        config = load(write_config(tmp_path, server.url, deadline='"20"'))
        sleeps: list[float] = []

        class Enough(Exception):
            pass

        def recorder(seconds: float) -> None:  # records the requested waits instead of sleeping
            sleeps.append(seconds)
            if len(sleeps) == 3:
                raise Enough

        api = FactorApi(profiles(config)[0], sleep=recorder)
        with pytest.raises(Enough):
            api.call("GET", "/assignments", deadline=20)
        assert len(sleeps) == 3 and all(7 <= s < 7.1 for s in sleeps)
        assert server.stats["requests"] == 3
    finally:
        server.shutdown()
        server.server_close()


def test_breaker_opens_after_threshold_and_half_opens_for_a_probe_only():
    now = [0.0]
    breaker = CircuitBreaker(threshold=2, cooldown=10, clock=lambda: now[0])
    breaker.failure()
    breaker.before_call(probe=False)
    breaker.failure()
    assert breaker.state == "open"
    with pytest.raises(NotSent):
        breaker.before_call(probe=False)
    now[0] = 16.0
    assert breaker.state == "half_open"
    with pytest.raises(NotSent):
        breaker.before_call(probe=False)    # a POST never goes first after an outage
    breaker.before_call(probe=True)
    breaker.success()
    assert breaker.state == "closed"


def test_a_definitive_refusal_is_held_not_retried(tmp_path: Path, sandbox_thread, store):
    config = load(write_config(tmp_path, sandbox_thread.url))
    profile = profiles(config)[0]
    seed_invoices(store, 3, debtors=1)
    channel = ApiChannel(profile)
    decide_and_claim(store, profile, channel=channel)
    batch = store.claim_batch("sandbox", "api", batch_size=10, lease_seconds=30)
    batch["idempotency_key"] = "reused-key"
    body_one = dict(batch, items=batch["items"][:1], item_count=1)
    channel.deliver(body_one)                       # the key now belongs to another body
    from connector.factors.outbox import deliver_batch

    assert deliver_batch(store, channel, dict(batch, previous_attempts=0)) == "hold"
    assert store.outbox_counts("sandbox") == {"hold": 3}


def test_events_move_invoice_states_and_the_factor_ledgers(tmp_path: Path, sandbox_thread, store):
    config = load(write_config(tmp_path, sandbox_thread.url))
    profile = profiles(config)[0]
    seed_invoices(store, 14, debtors=2)
    run_assign(store, config)
    channel = ApiChannel(profile)
    first = ingest_events(store, profile, channel)
    assert first["assignment.accepted"] == 14 and first["fee.charged"] == 14
    assert ingest_events(store, profile, channel) == {}          # the cursor moved: nothing twice
    _admin(sandbox_thread, "advance", {"days": 100})
    later = ingest_events(store, profile, channel)
    assert later["funding.paid"] == 14
    assert later["collection.received"] + later["chargeback"] == 14
    totals = store.factor_ledger_totals("sandbox")
    assert totals[("outstanding", "EUR")] == 0
    assert totals[("fees", "EUR")] == 14 * 250                   # 0.25 % of 1,000.00
    assert totals[("fees_vat", "EUR")] == 14 * 50
    assert totals[("reserve", "EUR")] == 0                       # every reserve released
    states = collections.Counter(r["financing_state"] for r in store.invoice_rows())
    assert states["collected"] == later["collection.received"]
    assert states["charged_back"] == later["chargeback"]
    # current account = what the factor still owes: accepted - reserve - fees - funding + released - chargebacks
    assert totals[("current", "EUR")] == 14 * 10000 - later["chargeback"] * 100000


def test_cli_assign_dry_run_sends_nothing_then_assign_sends(tmp_path: Path, sandbox_thread):
    path = write_config(tmp_path, sandbox_thread.url)
    with Store(tmp_path / "cessio.db") as store:
        seed_invoices(store, 4, debtors=2)
    dry = subprocess.run([*CESSIO, "--config", str(path), "assign", "--dry-run"], capture_output=True, text=True,
                         timeout=60)
    assert dry.returncode == 0 and "NO_LIMIT" in dry.stdout and "dry run" in dry.stdout
    assert _held(sandbox_thread) == []
    real = subprocess.run([*CESSIO, "--config", str(path), "assign"], capture_output=True, text=True, timeout=60)
    assert real.returncode == 0, real.stderr
    assert len(_held(sandbox_thread)) == 4
    status = subprocess.run([*CESSIO, "--config", str(path), "status"], capture_output=True, text=True, timeout=60)
    assert "factor sandbox" in status.stdout and "debtor limits" in status.stdout
    check = subprocess.run([*CESSIO, "--config", str(path), "check"], capture_output=True, text=True, timeout=60)
    assert "reachable" in check.stdout


def test_sandbox_cli_refuses_a_bad_fault_spec(tmp_path: Path):
    result = subprocess.run([*CESSIO, "sandbox-factor", "--port", "0", "--data", str(tmp_path / "f.db"),
                             "--faults", "meteor=0.5"], capture_output=True, text=True, timeout=30)
    assert result.returncode != 0 and "unknown fault kind" in result.stderr



def test_an_invoice_changed_after_its_claim_is_held_not_sent_under_the_old_key(tmp_path: Path, sandbox_thread,
                                                                               store):
    import dataclasses

    from connector.money import Money

    config = load(write_config(tmp_path, sandbox_thread.url))
    profile = profiles(config)[0]
    seed_invoices(store, 2, debtors=1)
    decide_and_claim(store, profile, channel=ApiChannel(profile))
    first = store.get_invoice(store.find_invoice_id(store.assignment_rows()[0]["invoice_key"]))
    with store.transaction():
        store.save_invoice(dataclasses.replace(first, amount_due=Money.parse("900.00", "EUR"),
                                               total_gross=Money.parse("900.00", "EUR")))
    report = run_assign(store, config)[0]
    assert report.held == [first.invoice_key]
    assert store.outbox_counts("sandbox") == {"hold": 1, "sent": 1}
    held = {a["invoice_key"] for a in _held(sandbox_thread)}
    assert len(held) == 1 and first.invoice_key not in held


def test_oauth2_client_credentials_from_a_secret_file(tmp_path: Path, sandbox_thread, store, monkeypatch):
    monkeypatch.setenv("CESSIO_SANDBOX_TOKEN", "only-this-static-token")
    sandbox_thread.required_token = "only-this-static-token"   # now only issued tokens or this one pass
    secret = tmp_path / "client-secret"
    secret.write_text("s3cr3t-value\n", encoding="utf-8")
    secret.chmod(0o600)
    path = write_config(tmp_path, sandbox_thread.url, client_id='"cessio"', client_secret=f'"file:{secret}"',
                        token_url=f'"{sandbox_thread.url}/oauth/token"')
    text = path.read_text(encoding="utf-8").replace('token = "env:CESSIO_TEST_FACTOR_TOKEN"\n', "")
    path.write_text(text, encoding="utf-8")
    seed_invoices(store, 3, debtors=1)
    run_assign(store, load(path))
    assert store.outbox_counts("sandbox") == {"sent": 3}
    assert len(sandbox_thread.tokens) == 1


def test_total_deadline_holds_against_a_slow_drip_factor(tmp_path: Path):
    """TEST DOUBLE at the edge: a stdlib server that answers one byte every 0.2 s (each read is within the read
    timeout, so only the total deadline can stop it)."""
    import socketserver
    import threading

    from connector.factors.api import Ambiguous

    class Drip(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.recv(65536)
            self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
            try:
                for _ in range(1000):
                    self.request.sendall(b" ")
                    time.sleep(0.2)
            except OSError:
                pass

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Drip)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = load(write_config(tmp_path, f"http://127.0.0.1:{server.server_address[1]}", read_timeout='"1"'))
        api = FactorApi(profiles(config)[0])
        started = time.monotonic()
        with pytest.raises(Ambiguous):
            api.call("POST", "/assignment-batches", json_body={}, key="k", deadline=1.5)
        assert time.monotonic() - started < 1.5 + 0.5
    finally:
        server.shutdown()
        server.server_close()


def test_two_senders_at_once_never_send_a_batch_twice(tmp_path: Path, sandbox_thread, store):
    """Leases under BEGIN IMMEDIATE: two sender processes' worth of connections drain one outbox together."""
    import threading

    config = load(write_config(tmp_path, sandbox_thread.url, batch_size=5))
    profile = profiles(config)[0]
    seed_invoices(store, 200, debtors=10)
    decide_and_claim(store, profile, channel=ApiChannel(profile))
    results: list = []

    def sender(name: str) -> None:
        with Store(tmp_path / "cessio.db", actor=name) as own:
            results.append(drain(own, profile, ApiChannel(profile), max_seconds=60, worker=name))

    threads = [threading.Thread(target=sender, args=(f"sender-{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    held = _held(sandbox_thread)
    assert len(held) == 200 and len({a["invoice_key"] for a in held}) == 200
    assert all(r["sent"] > 0 for r in results)          # both really worked
    assert sum(r["sent"] + r.get("found", 0) for r in results) == 40
    assert requests.get(f"{sandbox_thread.url}/v1/_sandbox/stats", timeout=5).json()["posts"] == 40 + 10
