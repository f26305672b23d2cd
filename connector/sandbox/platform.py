"""A small reverse-factoring platform (and factor credit-limit desk) for tests and the demo: a real HTTP
server on 127.0.0.1 that plays the supply-chain-finance platform a buyer submits confirmed payables to.

It runs as its own server (it does not mount into the sandbox factor). State is in memory, guarded by
a lock. Endpoints (JSON):

- ``POST /payables`` with ``Idempotency-Key``: a confirmed payable; the same key returns the same payable
  (a different body under the same key is a 409). ``GET /payables?idempotency_key=K`` looks one up.
- ``POST /payables/{id}/early-payment`` (the supplier takes early payment; a test/demo control) with
  ``{"paid_on": "YYYY-MM-DD", "discount": "12.34"}``; ``GET /events?after=N`` lists the platform's events.
- ``POST /limits``, ``GET /limits?idempotency_key=K``, ``GET /limits/{id}``, and the control
  ``POST /limits/{id}/decide`` with ``{"response_code": "2", "granted_amount": "...", "valid_to": ...}``.

Faults: ``drop_after_commit=N`` makes the next N payable submissions commit and then drop the
connection without an answer (the ambiguous failure a client must resolve by looking up).
"""

from __future__ import annotations

import hashlib
import json
import threading
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


class PlatformState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.payables: dict[str, dict[str, Any]] = {}
        self.by_key: dict[str, str] = {}
        self.events: list[dict[str, Any]] = []
        self.limits: dict[str, dict[str, Any]] = {}
        self.limits_by_key: dict[str, str] = {}
        self.drop_after_commit = 0
        self.submissions = 0  # POSTs received, replays included (the tests count them)

    def add_event(self, kind: str, **data: Any) -> dict[str, Any]:
        event = {"seq": len(self.events) + 1, "id": f"EV-{len(self.events) + 1:06d}", "type": kind, **data}
        self.events.append(event)
        return event


def _body_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    server: PlatformServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # quiet: tests read state, not logs
        pass

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _json(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}") if length else {}

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = parse_qs(url.query)
        parts = [p for p in url.path.split("/") if p]
        state = self.server.state
        with state.lock:
            if parts == ["payables"]:
                key = (query.get("idempotency_key") or [""])[0]
                pid = state.by_key.get(key)
                return self._send(200, {"items": [state.payables[pid]] if pid else []})
            if len(parts) == 2 and parts[0] == "payables" and parts[1] in state.payables:
                return self._send(200, state.payables[parts[1]])
            if parts == ["events"]:
                after = int((query.get("after") or ["0"])[0])
                return self._send(200, {"events": [e for e in state.events if e["seq"] > after]})
            if parts == ["limits"]:
                key = (query.get("idempotency_key") or [""])[0]
                lid = state.limits_by_key.get(key)
                return self._send(200, {"items": [state.limits[lid]] if lid else []})
            if len(parts) == 2 and parts[0] == "limits" and parts[1] in state.limits:
                return self._send(200, state.limits[parts[1]])
        self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        parts = [p for p in urlparse(self.path).path.split("/") if p]
        state = self.server.state
        try:
            body = self._json()
        except json.JSONDecodeError:
            return self._send(400, {"error": "body is not JSON"})
        drop = False
        with state.lock:
            if parts == ["payables"]:
                state.submissions += 1
                key = self.headers.get("Idempotency-Key")
                if not key:
                    return self._send(400, {"error": "Idempotency-Key header required"})
                if key in state.by_key:
                    existing = state.payables[state.by_key[key]]
                    if existing["body_hash"] != _body_hash(body):
                        return self._send(409, {"error": "idempotency key reused with another body"})
                    return self._send(200, existing)
                try:
                    amount = Decimal(str(body["amount"]))
                    for name in ("supplier", "number", "currency", "due_date"):
                        if not body.get(name):
                            raise KeyError(name)
                except (KeyError, InvalidOperation) as exc:
                    return self._send(422, {"error": f"missing or bad field {exc}"})
                pid = f"PAY-{len(state.payables) + 1:05d}"
                payable = {"id": pid, "status": "confirmed", "body_hash": _body_hash(body),
                           "idempotency_key": key, **body, "amount": str(amount)}
                state.payables[pid] = payable
                state.by_key[key] = pid
                state.add_event("payable_confirmed", payable_id=pid, number=body["number"])
                if state.drop_after_commit > 0:
                    state.drop_after_commit -= 1
                    drop = True
                else:
                    return self._send(201, payable)
            elif len(parts) == 3 and parts[0] == "payables" and parts[2] == "early-payment":
                payable = state.payables.get(parts[1])
                if payable is None:
                    return self._send(404, {"error": "no such payable"})
                if payable["status"] == "early_paid":
                    return self._send(409, {"error": "already paid early"})
                discount = Decimal(str(body.get("discount", "0")))
                paid = Decimal(payable["amount"]) - discount
                payable["status"] = "early_paid"
                event = state.add_event("early_payment", payable_id=payable["id"], number=payable["number"],
                                        supplier=payable["supplier"], paid_amount=str(paid),
                                        discount=str(discount), currency=payable["currency"],
                                        paid_on=body.get("paid_on"), maturity_amount=payable["amount"],
                                        due_date=payable["due_date"])
                return self._send(201, event)
            elif parts == ["limits"]:
                key = self.headers.get("Idempotency-Key")
                if not key:
                    return self._send(400, {"error": "Idempotency-Key header required"})
                if key in state.limits_by_key:
                    return self._send(200, state.limits[state.limits_by_key[key]])
                lid = f"LIM-{len(state.limits) + 1:05d}"
                state.limits[lid] = {"id": lid, "status": "pending", **body}
                state.limits_by_key[key] = lid
                return self._send(201, state.limits[lid])
            elif len(parts) == 3 and parts[0] == "limits" and parts[2] == "decide":
                limit = state.limits.get(parts[1])
                if limit is None:
                    return self._send(404, {"error": "no such limit request"})
                limit.update(body)
                limit["status"] = "decided"
                return self._send(200, limit)
            else:
                return self._send(404, {"error": "not found"})
        if drop:  # committed, but the client never hears back
            self.close_connection = True
            self.connection.shutdown(2)


class PlatformServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.state = PlatformState()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> PlatformServer:
        self._thread = threading.Thread(target=self.serve_forever, name="platform-sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
