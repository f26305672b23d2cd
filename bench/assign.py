"""Benchmark: assignments per second to the sandbox factor over loopback, Cessio vs a plain loop.

Same run, same machine, same payloads: (1) a plain ``requests.post`` loop posting each assignment once
(no store, no claim, no audit, no retry, no lookup: no guarantee at all); (2) Cessio's outbox sender with
every guarantee (claims under BEGIN IMMEDIATE, attempt counted before I/O, audit rows, idempotency keys,
per-batch control totals), measured for its default batch size and for batches of one item. Each run uses
a fresh sandbox file. Target (issue 5): Cessio within 2x of the plain loop, i.e. ratio >= 0.5.

    .venv/bin/python bench/assign.py [N]       # default N = 500
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connector.clock import today
from connector.factors.channel import ApiChannel
from connector.factors.engine import decide_and_claim
from connector.factors.outbox import drain
from connector.factors.profile import profiles
from connector.sandbox import start_in_thread
from connector.store import Store
from tests.factors.conftest import load, seed_invoices, write_config


def _server(folder: Path):
    return start_in_thread(data=folder / "factor.db", start=today())


def _stop(server) -> None:
    server.shutdown()
    server.server_close()
    server.book.close()


def cessio_run(n: int, batch_size: int) -> tuple[float, list[dict]]:
    folder = Path(tempfile.mkdtemp(prefix="bench-assign-"))
    server = _server(folder)
    try:
        config = load(write_config(folder, server.url, batch_size=batch_size))
        profile = profiles(config)[0]
        with Store(folder / "cessio.db") as store:
            seed_invoices(store, n)
            channel = ApiChannel(profile)
            decide_and_claim(store, profile, channel=channel)     # decisions, limits and claims: not timed
            payloads = [row["payload"] for row in store.assignment_rows("sandbox")]
            started = time.perf_counter()
            counts = drain(store, profile, channel, max_seconds=600)
            elapsed = time.perf_counter() - started
            assert store.outbox_counts("sandbox") == {"sent": n}, counts
    finally:
        _stop(server)
    return elapsed, [json.loads(p) for p in payloads]


def plain_run(payloads: list[dict]) -> float:
    folder = Path(tempfile.mkdtemp(prefix="bench-plain-"))
    server = _server(folder)
    try:
        url = f"{server.url}/v1/assignments"
        started = time.perf_counter()
        for item in payloads:
            reply = requests.post(url, json=item, timeout=(5, 30),
                                  headers={"Authorization": "Bearer t", "Idempotency-Key": item["idempotency_key"]})
            reply.raise_for_status()
        return time.perf_counter() - started
    finally:
        _stop(server)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    os.environ.setdefault("CESSIO_TEST_FACTOR_TOKEN", "bench-token")
    batched, payloads = cessio_run(n, 50)
    single, _ = cessio_run(n, 1)
    plain = plain_run(payloads)
    rate = {name: n / seconds for name, seconds in
            (("plain requests.post loop", plain), ("cessio batch=50", batched), ("cessio batch=1", single))}
    for name, value in rate.items():
        print(f"{name:28s} {value:8.1f} assignments/s")
    base = rate["plain requests.post loop"]
    for name in ("cessio batch=50", "cessio batch=1"):
        ratio = rate[name] / base
        verdict = "within 2x" if ratio >= 0.5 else "SLOWER than 2x"
        print(f"ratio {name} / plain = {ratio:.2f} ({verdict})")


if __name__ == "__main__":
    main()
