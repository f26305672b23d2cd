"""The sandbox factor's HTTP server: the Cessio Factor API (docs/factor-api.openapi.yaml) on loopback.

Reads JSON requests, writes JSON replies; state lives in :class:`~connector.sandbox.state.SandboxBook`.
Faults (``--faults``) are drawn per API request, before or after the book commits (see
:mod:`connector.sandbox.faults`). Sandbox-only admin routes under ``/v1/_sandbox/`` are never faulted:
``POST /v1/_sandbox/advance {"days": N}`` moves the business clock, ``POST /v1/_sandbox/outage
{"seconds": S}`` makes every API request fail (connection reset) for S seconds while counting them, and
``GET /v1/_sandbox/stats`` returns request counters.

Auth: ``Authorization: Bearer <token>``. With ``CESSIO_SANDBOX_TOKEN`` set only that token (or one issued
by ``POST /oauth/token``, client-credentials grant) is accepted; without it any non-empty token is.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from connector.sandbox.faults import BEFORE_COMMIT, Faults, parse_faults
from connector.sandbox.state import RequestError, SandboxBook


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], book: SandboxBook, faults: Faults) -> None:
        if address[0] not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the sandbox factor listens on loopback only")
        super().__init__(address, Handler)
        self.book = book
        self.faults = faults
        self.tokens: set[str] = set()
        self.required_token = os.environ.get("CESSIO_SANDBOX_TOKEN")
        self.outage_until = 0.0
        self.stats_lock = threading.Lock()
        self.stats = {"requests": 0, "posts": 0, "outage_requests": 0, "faults": {}}

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def count(self, key: str, kind: str | None = None) -> None:
        with self.stats_lock:
            self.stats[key] += 1
            if kind:
                self.stats["faults"][kind] = self.stats["faults"].get(kind, 0) + 1

    def handle_error(self, request: Any, client_address: Any) -> None:  # resets are part of the job
        pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: Nagle would add ~40 ms a reply
    server: SandboxServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the tests read counters, not logs
        pass

    # -- plumbing -------------------------------------------------------------------------------
    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            raise RequestError(400, "INVALID_JSON", "the body is not JSON") from None

    def _reply(self, status: int, body: Any, *, headers: dict[str, str] | None = None,
               truncate: bool = False) -> None:
        data = json.dumps(body, sort_keys=True).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if truncate:
            self.wfile.write(data[: len(data) // 2])
            self._reset()
            return
        self.wfile.write(data)

    def _reset(self) -> None:
        """Close with a TCP RST, like a dropped connection."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
        self.close_connection = True

    def _authorised(self) -> bool:
        header = self.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        if not token:
            return False
        required = self.server.required_token
        return required is None or token == required or token in self.server.tokens

    # -- dispatch -------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        url = urlparse(self.path)
        path = url.path.rstrip("/")
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            body = self._body() if method == "POST" else {}
        except RequestError as exc:
            self._reply(exc.status, {"code": exc.code, "message": exc.message})
            return
        if path.startswith("/v1/_sandbox/"):
            self._admin(method, path, body)
            return
        server = self.server
        server.count("requests")
        if method == "POST":
            server.count("posts")
        if time.monotonic() < server.outage_until:
            server.count("outage_requests")
            self._reset()
            return
        fault = server.faults.draw() if path != "/oauth/token" else None
        if fault:
            with server.stats_lock:
                server.stats["faults"][fault] = server.stats["faults"].get(fault, 0) + 1
        if fault in BEFORE_COMMIT:
            self._before_commit_fault(fault)
            return
        try:
            status, answer = self._route(method, path, query, body)
        except RequestError as exc:
            status, answer = exc.status, {"code": exc.code, "message": exc.message}
        if fault == "drop_after":
            self._reset()
            return
        if fault == "slow":
            time.sleep(server.faults.slow_seconds)
        self._reply(status, answer, truncate=fault == "truncated")

    def _before_commit_fault(self, fault: str) -> None:
        retry_after = str(self.server.faults.retry_after)
        if fault == "drop_before":
            self._reset()
        elif fault == "http_429":
            self._reply(429, {"code": "RATE_LIMITED", "message": "slow down"}, headers={"Retry-After": retry_after})
        elif fault == "http_503":
            self._reply(503, {"code": "UNAVAILABLE", "message": "try later"}, headers={"Retry-After": retry_after})
        else:  # http_500: no body, like a crashed upstream
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        book = self.server.book
        if path == "/oauth/token" and method == "POST":
            return self._token(body)
        if path == "/v1/health":
            return 200, {"status": "ok", "business_date": book.business_date.isoformat()}
        if not self._authorised():
            raise RequestError(401, "UNAUTHORISED", "a bearer token is required")
        parts = [unquote(p) for p in path.split("/")[2:]]  # after /v1
        key = self.headers.get("Idempotency-Key")
        if parts == ["assignment-batches"] and method == "POST":
            return book.submit_batch(key, body)
        if len(parts) == 2 and parts[0] == "assignment-batches" and method == "GET":
            return 200, book.get_batch(parts[1])
        if parts == ["assignments"] and method == "POST":
            return book.submit_one(key, body)
        if parts == ["assignments"] and method == "GET":
            items = book.list_assignments(idempotency_key=query.get("idempotency_key"),
                                          invoice_key=query.get("invoice_key"))
            return 200, {"assignments": items, "count": len(items)}
        if len(parts) == 2 and parts[0] == "assignments" and method == "GET":
            return 200, book.get_assignment(parts[1])
        if len(parts) == 3 and parts[0] == "assignments" and parts[2] == "cancel" and method == "POST":
            return 200, book.cancel(parts[1])
        if len(parts) == 3 and parts[0] == "debtors" and parts[2] == "limit-requests" and method == "POST":
            return 201, book.request_limit(parts[1], body)
        if len(parts) == 2 and parts[0] == "debtors" and method == "GET":
            return 200, book.debtor(parts[1])
        if parts == ["events"] and method == "GET":
            try:
                after, limit = int(query.get("after") or 0), min(int(query.get("limit") or 500), 1000)
            except ValueError:
                raise RequestError(400, "INVALID_CURSOR", "after and limit are integers") from None
            return 200, book.events(after, limit)
        raise RequestError(404, "NOT_FOUND", f"no route {method} {path}")

    def _token(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or body.get("grant_type") != "client_credentials" \
                or not body.get("client_id") or not body.get("client_secret"):
            raise RequestError(400, "invalid_request", "client_credentials grant with id and secret required")
        token = secrets.token_urlsafe(24)
        self.server.tokens.add(token)
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600}

    def _admin(self, method: str, path: str, body: Any) -> None:
        server = self.server
        if path == "/v1/_sandbox/advance" and method == "POST":
            self._reply(200, server.book.advance(int(body.get("days", 1))))
        elif path == "/v1/_sandbox/outage" and method == "POST":
            server.outage_until = time.monotonic() + float(body.get("seconds", 0))
            self._reply(200, {"outage_seconds": body.get("seconds", 0)})
        elif path == "/v1/_sandbox/stats":
            with server.stats_lock:
                self._reply(200, json.loads(json.dumps(server.stats)))
        else:
            self._reply(404, {"code": "NOT_FOUND", "message": path})


def make_server(host: str = "127.0.0.1", port: int = 0, data: str | Path = "sandbox-factor.db",
                faults: str | Faults = "", seed: int = 0, **book_options: Any) -> SandboxServer:
    """A bound, not yet serving, sandbox factor (port 0: a free port)."""
    parsed = faults if isinstance(faults, Faults) else parse_faults(faults, seed)
    return SandboxServer((host, port), SandboxBook(data, **book_options), parsed)


def start_in_thread(**options: Any) -> SandboxServer:
    """Serve in a daemon thread; stop with ``server.shutdown(); server.server_close()``."""
    server = make_server(**options)
    threading.Thread(target=server.serve_forever, name="sandbox-factor", daemon=True).start()
    return server


def serve(host: str, port: int, data: Path, faults: str, seed: int, echo: Any = print) -> None:
    """Run in the foreground until interrupted (``cessio sandbox-factor``)."""
    server = make_server(host, port, data, faults, seed)
    echo(f"sandbox factor listening on {server.url} (data {data}; business date "
         f"{server.book.business_date}; faults {faults or 'none'})")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.book.close()
