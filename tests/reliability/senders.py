"""Senders the delivery harness drives against :mod:`tests.reliability.fake_factor`.

- ``reference``: a positive control written from docs/reliability.md rules 1-4 (claim with a key made
  once and persisted before any I/O, the same key on every retry, ambiguous failures looked up before
  any resend). It proves the harness does not cry wolf under faults and kills.
- ``naive``: the negative control (a test double of a broken sender): a new key per attempt, blind
  retries, no look-up. The harness must catch it financing invoices twice.

Both keep their outbox in their own SQLite file so that a SIGKILL at any instant and a restart converge.
``CESSIO_KILL_AT=before_post|after_post|after_commit`` and ``CESSIO_KILL_RATE`` make the reference
sender SIGKILL itself at that exact point (scenario A4). Run as
``python -m tests.reliability.senders reference --outbox F --url U --count N``; exit 0 once every
claim is settled.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import sys
import time
import uuid

import requests

CONNECT_TIMEOUT = 1.0
READ_TIMEOUT = 0.5


def ref_of(n: int) -> str:
    return f"INV-{n:06d}"


def open_outbox(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS claims (ref TEXT PRIMARY KEY, idem_key TEXT NOT NULL UNIQUE, "
                 "amount_minor INTEGER NOT NULL, state TEXT NOT NULL, factor_id TEXT, attempts INTEGER NOT NULL "
                 "DEFAULT 0, lookups INTEGER NOT NULL DEFAULT 0)")
    return conn


def maybe_die(point: str) -> None:
    if os.environ.get("CESSIO_KILL_AT") == point and random.random() < float(os.environ.get("CESSIO_KILL_RATE", "0")):
        os.kill(os.getpid(), signal.SIGKILL)


def claim_all(conn: sqlite3.Connection, count: int) -> None:
    """Rule 1-2: every invoice gets its claim and key once, committed before any network call."""
    existing = {row[0] for row in conn.execute("SELECT ref FROM claims")}
    todo = [n for n in range(count) if ref_of(n) not in existing]
    for start in range(0, len(todo), 500):
        conn.execute("BEGIN IMMEDIATE")
        for n in todo[start:start + 500]:
            conn.execute("INSERT OR IGNORE INTO claims (ref, idem_key, amount_minor, state) "
                         "VALUES (?, ?, ?, 'pending')", (ref_of(n), str(uuid.uuid4()), 10_000 + n))
        conn.execute("COMMIT")


def set_state(conn: sqlite3.Connection, ref: str, state: str, factor_id: str | None = None) -> None:
    conn.execute("UPDATE claims SET state = ?, factor_id = coalesce(?, factor_id) WHERE ref = ?",
                 (state, factor_id, ref))


def reference(url: str, outbox: str, count: int) -> int:
    conn = open_outbox(outbox)
    claim_all(conn, count)
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(max_retries=0))
    while True:
        rows = conn.execute("SELECT ref, idem_key, amount_minor, state FROM claims "
                            "WHERE state IN ('pending', 'unknown') ORDER BY ref LIMIT 200").fetchall()
        if not rows:
            break
        for ref, key, amount, state in rows:
            if state == "unknown":  # rule 4: look up before any resend
                try:
                    found = session.get(f"{url}/v1/assignments", params={"external_ref": ref},
                                        timeout=(CONNECT_TIMEOUT, READ_TIMEOUT * 4))
                    found.raise_for_status()
                    held = found.json()
                except (requests.RequestException, ValueError):
                    time.sleep(0.01)
                    continue
                conn.execute("UPDATE claims SET lookups = lookups + 1 WHERE ref = ?", (ref,))
                if held:
                    set_state(conn, ref, "confirmed", held[0]["id"])
                    continue
                set_state(conn, ref, "pending")
            conn.execute("UPDATE claims SET attempts = attempts + 1 WHERE ref = ?", (ref,))  # attempt start, durable
            maybe_die("before_post")
            try:
                reply = session.post(f"{url}/v1/assignments", headers={"Idempotency-Key": key},
                                     json={"external_ref": ref, "amount_minor": amount, "currency": "EUR"},
                                     timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
            except requests.exceptions.ConnectTimeout:
                continue  # not sent: stays pending, same key next time
            except requests.RequestException:
                set_state(conn, ref, "unknown")  # ambiguous (reset, read timeout, truncated)
                continue
            maybe_die("after_post")
            if reply.status_code in (200, 201):
                try:
                    factor_id = reply.json()["id"]
                except (ValueError, KeyError):
                    set_state(conn, ref, "unknown")
                    continue
                set_state(conn, ref, "confirmed", factor_id)
                maybe_die("after_commit")
            elif reply.status_code in (429, 503):
                time.sleep(min(float(reply.headers.get("Retry-After", "0") or 0), 1.0))
            elif reply.status_code >= 500:
                set_state(conn, ref, "unknown")
            elif reply.status_code in (409, 422):
                set_state(conn, ref, "hold")
            else:
                set_state(conn, ref, "rejected")
    conn.close()
    return 0


def naive(url: str, outbox: str, count: int) -> int:
    """TEST DOUBLE, negative control: a fresh key per attempt and blind retries."""
    conn = open_outbox(outbox)
    done = {row[0] for row in conn.execute("SELECT ref FROM claims WHERE state = 'confirmed'")}
    for n in range(count):
        ref = ref_of(n)
        if ref in done:
            continue
        for _attempt in range(20):
            try:
                reply = requests.post(f"{url}/v1/assignments", headers={"Idempotency-Key": str(uuid.uuid4())},
                                      json={"external_ref": ref, "amount_minor": 10_000 + n, "currency": "EUR"},
                                      timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
            except requests.RequestException:
                continue
            if reply.status_code in (200, 201):
                conn.execute("INSERT OR REPLACE INTO claims (ref, idem_key, amount_minor, state) "
                             "VALUES (?, ?, ?, 'confirmed')", (ref, str(uuid.uuid4()), 10_000 + n))
                break
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["reference", "naive"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--outbox", required=True)
    parser.add_argument("--count", type=int, required=True)
    args = parser.parse_args(argv)
    return (reference if args.kind == "reference" else naive)(args.url, args.outbox, args.count)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
