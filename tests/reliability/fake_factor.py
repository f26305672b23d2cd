"""FakeFactor: a test double of a factor's assignment API, with seeded fault injection (docs §1.4).

It stands at the system's edge only: a real HTTP server (stdlib) on 127.0.0.1, keeping what it holds
in its own SQLite file, honouring ``Idempotency-Key`` (same key and body → the stored reply is replayed;
same key, other body → 422), optionally refusing a second assignment of the same reference (409), and
listing everything it holds so tests can count D(inv) = assignments held per invoice.

Faults, drawn per POST from a seeded RNG (``--faults drop_before=0.1,drop_after=0.1,...``):

- ``drop_before``: the connection is reset before anything is stored (not sent);
- ``drop_after``: stored, then reset without a reply (ambiguous);
- ``slow_after``: stored, then the reply comes after ``--slow-seconds`` (past the client's read timeout);
- ``truncated``: stored, then a reply whose body is cut short (ambiguous);
- ``http_429``: 429 with ``Retry-After: 0``, nothing stored; ``http_503``: 503 without body, nothing stored;
- ``http_500_after``: stored, then 500 without body (ambiguous).

Run: ``python -m tests.reliability.fake_factor --db F --faults SPEC --seed N`` prints ``PORT <n>``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.server
import json
import random
import socket
import sqlite3
import struct
import sys
import threading
import time
import urllib.parse

FAULT_KINDS = ("drop_before", "drop_after", "slow_after", "truncated", "http_429", "http_503", "http_500_after")
ALL_FAULTS = "drop_before=0.08,drop_after=0.08,slow_after=0.04,truncated=0.05,http_429=0.06,http_503=0.06," \
             "http_500_after=0.05"


def parse_faults(spec: str) -> dict[str, float]:
    faults: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, rate = part.partition("=")
        if name not in FAULT_KINDS:
            raise SystemExit(f"unknown fault {name!r}; known: {', '.join(FAULT_KINDS)}")
        faults[name] = float(rate)
    return faults


class FactorState:
    def __init__(self, path: str, *, faults: dict[str, float], seed: int, dedupe_by_ref: bool) -> None:
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.executescript("""
            CREATE TABLE IF NOT EXISTS held (id INTEGER PRIMARY KEY, external_ref TEXT NOT NULL,
              idem_key TEXT NOT NULL UNIQUE, body_sha TEXT NOT NULL, amount_minor INTEGER, currency TEXT,
              received_at REAL NOT NULL);
            CREATE TABLE IF NOT EXISTS requests (id INTEGER PRIMARY KEY, method TEXT, path TEXT, idem_key TEXT,
              external_ref TEXT, fault TEXT, status INTEGER, at REAL);
        """)
        self.lock = threading.Lock()
        self.faults = faults
        self.rng = random.Random(seed)
        self.dedupe_by_ref = dedupe_by_ref
        self.down_until = 0.0

    def draw_fault(self) -> str | None:
        with self.lock:
            roll = self.rng.random()
        edge = 0.0
        for name, rate in self.faults.items():
            edge += rate
            if roll < edge:
                return name
        return None

    def log(self, method: str, path: str, key: str | None, ref: str | None, fault: str | None, status: int) -> None:
        with self.lock:
            self.conn.execute("INSERT INTO requests (method, path, idem_key, external_ref, fault, status, at) "
                              "VALUES (?, ?, ?, ?, ?, ?, ?)", (method, path, key, ref, fault, status, time.time()))

    def store(self, key: str, body: dict, body_sha: str) -> tuple[int, dict]:
        """Apply one assignment under the factor's rules; returns (status, reply)."""
        with self.lock:
            row = self.conn.execute("SELECT id, external_ref, body_sha FROM held WHERE idem_key = ?", (key,)).fetchone()
            if row is not None:
                if row[2] != body_sha:
                    return 422, {"error": "idempotency key reused with a different body"}
                return 201, {"id": f"A{row[0]}", "external_ref": row[1], "replayed": True}
            ref = body["external_ref"]
            if self.dedupe_by_ref:
                other = self.conn.execute("SELECT id FROM held WHERE external_ref = ?", (ref,)).fetchone()
                if other is not None:
                    return 409, {"error": "already assigned", "id": f"A{other[0]}"}
            cursor = self.conn.execute(
                "INSERT INTO held (external_ref, idem_key, body_sha, amount_minor, currency, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?)", (ref, key, body_sha, body.get("amount_minor"), body.get("currency"),
                                              time.time()))
            return 201, {"id": f"A{cursor.lastrowid}", "external_ref": ref}

    def find(self, ref: str | None) -> list[dict]:
        with self.lock:
            if ref is None:
                rows = self.conn.execute("SELECT id, external_ref, idem_key, amount_minor, currency FROM held "
                                         "ORDER BY id").fetchall()
            else:
                rows = self.conn.execute("SELECT id, external_ref, idem_key, amount_minor, currency FROM held "
                                         "WHERE external_ref = ? ORDER BY id", (ref,)).fetchall()
        return [{"id": f"A{r[0]}", "external_ref": r[1], "idempotency_key": r[2], "amount_minor": r[3],
                 "currency": r[4]} for r in rows]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: FactorState
    slow_seconds: float = 2.0

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, status: int, payload: dict | list | None, *, headers: dict | None = None,
               truncate: bool = False) -> None:
        body = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body) + (40 if truncate else 0)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if truncate else body)
        self.wfile.flush()
        if truncate:
            self._reset()

    def _reset(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0), as a crashed peer or a proxy would."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
        self.close_connection = True

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path == "/v1/assignments":
            ref = query.get("external_ref", [None])[0]
            self.state.log("GET", url.path, None, ref, None, 200)
            self._reply(200, self.state.find(ref))
        elif url.path == "/health":
            self._reply(200, {"ok": True})
        else:
            self._reply(404, {"error": "not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        raw = self.rfile.read(length)
        key = self.headers.get("Idempotency-Key")
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError:
            self._reply(400, {"error": "body is not JSON"})
            return
        ref = body.get("external_ref")
        if not key or not ref:
            self.state.log("POST", self.path, key, ref, None, 400)
            self._reply(400, {"error": "Idempotency-Key header and external_ref are required"})
            return
        fault = self.state.draw_fault()
        if fault == "drop_before":
            self.state.log("POST", self.path, key, ref, fault, 0)
            self._reset()
            return
        if fault == "http_429":
            self.state.log("POST", self.path, key, ref, fault, 429)
            self._reply(429, {"error": "slow down"}, headers={"Retry-After": "0"})
            return
        if fault == "http_503":
            self.state.log("POST", self.path, key, ref, fault, 503)
            self._reply(503, None)
            return
        status, reply = self.state.store(key, body, hashlib.sha256(raw).hexdigest())
        self.state.log("POST", self.path, key, ref, fault, status)
        if status == 201 and fault == "drop_after":
            self._reset()
        elif status == 201 and fault == "http_500_after":
            self._reply(500, None)
        elif status == 201 and fault == "truncated":
            self._reply(status, reply, truncate=True)
        elif status == 201 and fault == "slow_after":
            time.sleep(self.slow_seconds)
            with contextlib.suppress(OSError):
                self._reply(status, reply)
        else:
            self._reply(status, reply)


def serve(db: str, *, faults: str, seed: int, dedupe_by_ref: bool, slow_seconds: float,
          port: int = 0) -> http.server.ThreadingHTTPServer:
    state = FactorState(db, faults=parse_faults(faults), seed=seed, dedupe_by_ref=dedupe_by_ref)
    handler = type("BoundHandler", (Handler,), {"state": state, "slow_seconds": slow_seconds})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    # a client killed mid-request (the point of the crash tests) is not an error of the factor
    server.handle_error = lambda request, address: None
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--faults", default="")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--slow-seconds", type=float, default=2.0)
    parser.add_argument("--dedupe-by-ref", action="store_true")
    args = parser.parse_args(argv)
    server = serve(args.db, faults=args.faults, seed=args.seed, dedupe_by_ref=args.dedupe_by_ref,
                   slow_seconds=args.slow_seconds, port=args.port)
    print(f"PORT {server.server_address[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
