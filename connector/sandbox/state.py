"""The sandbox factor's book: its own SQLite file (survives restarts), rules, money and events.

Reads and writes only its own file. Behaves like a factor would: debtor limits it decides itself,
decline rules (no limit, limit full, overdue), acceptance with fees (+VAT) and a reserve, funding at
the advance rate on the next business day, collections in notified mode, chargebacks of invoices still
unpaid ``grace_days`` after their due date, and an append-only events feed with a cursor.
Idempotency: a key with the same request body replays the first answer; with another body it is a 422.
It does not, by default, refuse a second assignment of the same invoice under a *different* key: like
most APIs it trusts the key, which is what lets a naive client's duplicates show.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import threading
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from connector.money import Money

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS debtors (
  debtor_key TEXT PRIMARY KEY, name TEXT, country TEXT, status TEXT NOT NULL,
  limit_minor INTEGER NOT NULL, currency TEXT NOT NULL, valid_from TEXT, valid_to TEXT, decided_on TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS idempotency (
  key TEXT PRIMARY KEY, scope TEXT NOT NULL, request_hash TEXT NOT NULL, status INTEGER NOT NULL,
  response TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS assignments (
  id INTEGER PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE, request_hash TEXT NOT NULL, batch_key TEXT,
  invoice_key TEXT NOT NULL, number TEXT NOT NULL, kind TEXT NOT NULL, seller TEXT, debtor_key TEXT NOT NULL,
  currency TEXT NOT NULL, amount_minor INTEGER NOT NULL, issue_date TEXT, due_date TEXT, status TEXT NOT NULL,
  reason_code TEXT, approved_minor INTEGER NOT NULL DEFAULT 0, reserve_minor INTEGER NOT NULL DEFAULT 0,
  fee_minor INTEGER NOT NULL DEFAULT 0, fee_vat_minor INTEGER NOT NULL DEFAULT 0,
  funded_minor INTEGER NOT NULL DEFAULT 0, received_on TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS assignments_invoice ON assignments (invoice_key);
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, assignment_id INTEGER, invoice_key TEXT, debtor_key TEXT,
  amount_minor INTEGER, vat_minor INTEGER, currency TEXT, reason_code TEXT, occurred_on TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT '{}');
"""


class RequestError(Exception):
    """A definitive 4xx answer: status, code and message go back to the client as JSON."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def body_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _money(text: Any, currency: str, what: str) -> Money:
    try:
        return Money.parse(str(text), currency)
    except Exception as exc:  # any parse problem is the client's error
        raise RequestError(422, "INVALID_AMOUNT", f"{what}: {exc}") from None


def _late_payer(invoice_key: str) -> bool:
    """Deterministically, about one invoice in seven is never paid by its debtor (then charged back)."""
    return int(hashlib.sha256(invoice_key.encode()).hexdigest()[:8], 16) % 7 == 0


class SandboxBook:
    def __init__(self, path: str | Path, *, advance_rate: str = "0.90", reserve_rate: str = "0.10",
                 fee_rate: str = "0.0025", fee_vat_rate: str = "0.20", grace_days: int = 60,
                 max_limit: str = "1000000", start: dt.date | None = None) -> None:
        self.path = Path(path)
        self.lock = threading.RLock()
        self.conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=30)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript(SCHEMA)
        self.advance_rate, self.reserve_rate = Decimal(advance_rate), Decimal(reserve_rate)
        self.fee_rate, self.fee_vat_rate = Decimal(fee_rate), Decimal(fee_vat_rate)
        self.grace_days = grace_days
        self.max_limit = Decimal(max_limit)
        with self.lock:
            if self._meta("business_date") is None:
                self.conn.execute("INSERT INTO meta VALUES ('business_date', ?)",
                                  ((start or dt.date.today()).isoformat(),))

    def close(self) -> None:
        self.conn.close()

    # -- helpers ----------------------------------------------------------------------------------
    def _meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    @property
    def business_date(self) -> dt.date:
        return dt.date.fromisoformat(self._meta("business_date"))

    def _event(self, kind: str, *, assignment: dict | None = None, amount: int | None = None, vat: int | None = None,
               currency: str | None = None, reason: str | None = None, debtor: str | None = None,
               detail: dict | None = None) -> None:
        self.conn.execute(
            "INSERT INTO events (kind, assignment_id, invoice_key, debtor_key, amount_minor, vat_minor, currency, "
            "reason_code, occurred_on, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (kind, assignment["id"] if assignment else None, assignment["invoice_key"] if assignment else None,
             debtor or (assignment["debtor_key"] if assignment else None), amount, vat,
             currency or (assignment["currency"] if assignment else None), reason,
             self.business_date.isoformat(), json.dumps(detail or {}, sort_keys=True)))

    def _scaled(self, minor: int, rate: Decimal, currency: str) -> int:
        return Money.from_minor(minor, currency).scaled(rate, rounding=ROUND_HALF_EVEN).minor_units

    def _transaction(self):
        return _Txn(self)

    def _replay(self, key: str, scope: str, digest: str) -> tuple[int, dict] | None:
        row = self.conn.execute("SELECT scope, request_hash, status, response FROM idempotency WHERE key = ?",
                                (key,)).fetchone()
        if row is None:
            return None
        if row["scope"] != scope or row["request_hash"] != digest:
            raise RequestError(422, "IDEMPOTENCY_KEY_REUSED", "this Idempotency-Key was used with another request")
        return row["status"], json.loads(row["response"])

    def _remember(self, key: str, scope: str, digest: str, status: int, response: dict) -> None:
        self.conn.execute("INSERT INTO idempotency VALUES (?, ?, ?, ?, ?, datetime('now'))",
                          (key, scope, digest, status, json.dumps(response, sort_keys=True)))

    # -- debtors and limits -----------------------------------------------------------------------
    def request_limit(self, debtor_key: str, body: dict) -> dict:
        """Decide a limit at once: approved up to the sandbox's maximum (partly above it), valid one year."""
        currency = str(body.get("currency") or "EUR")
        asked = _money(body.get("amount"), currency, "amount")
        with self.lock, self._transaction():
            cap = Money.of(self.max_limit, currency, rounding=ROUND_HALF_EVEN)
            status = "approved" if asked <= cap else "partly_approved"
            granted = asked if asked <= cap else cap
            if not body.get("debtor", {}).get("vat_id") and not body.get("debtor", {}).get("legal_id"):
                status, granted = "declined", Money.zero(currency)
            today = self.business_date
            valid_to = today + dt.timedelta(days=365)
            self.conn.execute(
                "INSERT INTO debtors VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (debtor_key) DO UPDATE SET "
                "status = excluded.status, limit_minor = excluded.limit_minor, currency = excluded.currency, "
                "valid_from = excluded.valid_from, valid_to = excluded.valid_to, decided_on = excluded.decided_on",
                (debtor_key, body.get("debtor", {}).get("name"), body.get("debtor", {}).get("country"), status,
                 granted.minor_units, currency, today.isoformat(), valid_to.isoformat(), today.isoformat()))
            self._event("limit.decided", debtor=debtor_key, amount=granted.minor_units, currency=currency,
                        reason=None if status != "declined" else "DEBTOR_UNIDENTIFIED",
                        detail={"status": status, "valid_from": today.isoformat(), "valid_to": valid_to.isoformat()})
            return self.debtor(debtor_key)

    def debtor(self, debtor_key: str) -> dict:
        row = self.conn.execute("SELECT * FROM debtors WHERE debtor_key = ?", (debtor_key,)).fetchone()
        if row is None:
            raise RequestError(404, "NOT_FOUND", "no such debtor")
        currency = row["currency"]
        used = self.conn.execute(
            "SELECT coalesce(sum(approved_minor), 0) FROM assignments WHERE debtor_key = ? AND status IN "
            "('accepted', 'partly_accepted', 'funded')", (debtor_key,)).fetchone()[0]
        return {"debtor_key": debtor_key, "status": row["status"], "currency": currency,
                "limit": str(Money.from_minor(row["limit_minor"], currency).amount),
                "used": str(Money.from_minor(used, currency).amount),
                "valid_from": row["valid_from"], "valid_to": row["valid_to"]}

    # -- assignments ------------------------------------------------------------------------------
    def submit_batch(self, key: str | None, body: dict) -> tuple[int, dict]:
        if not key:
            raise RequestError(400, "IDEMPOTENCY_KEY_MISSING", "an Idempotency-Key header is required")
        digest = body_hash(body)
        items = body.get("items")
        if not isinstance(items, list) or not items:
            raise RequestError(422, "EMPTY_BATCH", "a batch needs at least one item")
        currency = str(body.get("currency") or "")
        control = Money.zero(currency) if currency else None
        with self.lock, self._transaction():
            replay = self._replay(key, "batch", digest)
            if replay is not None:
                return replay
            if int(body.get("item_count", -1)) != len(items):
                raise RequestError(422, "CONTROL_COUNT_MISMATCH", f"item_count {body.get('item_count')} but "
                                                                  f"{len(items)} items")
            for item in items:
                amount = _money(item.get("amount"), currency, "amount")
                control = control + (-amount if item.get("kind") == "credit_note" else amount)
            if control != _money(body.get("control_sum"), currency, "control_sum"):
                raise RequestError(422, "CONTROL_SUM_MISMATCH", f"items add up to {control}, "
                                                                f"control_sum says {body.get('control_sum')}")
            results = [self._assign(item, key, currency) for item in items]
            response = {"batch_key": key, "item_count": len(items), "control_sum": str(control.amount),
                        "currency": currency, "items": results}
            self._remember(key, "batch", digest, 201, response)
            return 201, response

    def submit_one(self, key: str | None, body: dict) -> tuple[int, dict]:
        if not key:
            raise RequestError(400, "IDEMPOTENCY_KEY_MISSING", "an Idempotency-Key header is required")
        digest = body_hash(body)
        with self.lock, self._transaction():
            replay = self._replay(key, "assignment", digest)
            if replay is not None:
                return replay
            result = self._assign(dict(body, idempotency_key=key), None, str(body.get("currency") or ""))
            self._remember(key, "assignment", digest, 201, result)
            return 201, result

    def _assign(self, item: dict, batch_key: str | None, currency: str) -> dict:
        key = item.get("idempotency_key")
        if not key:
            raise RequestError(422, "ITEM_KEY_MISSING", "every item needs its idempotency_key")
        digest = body_hash(item)
        existing = self.conn.execute("SELECT * FROM assignments WHERE idempotency_key = ?", (key,)).fetchone()
        if existing is not None:
            if existing["request_hash"] != digest:
                raise RequestError(422, "IDEMPOTENCY_KEY_REUSED", f"item {key} was sent before with other content")
            return self._public(dict(existing))
        amount = _money(item.get("amount"), currency, "amount")
        if not amount.amount > 0:
            raise RequestError(422, "INVALID_AMOUNT", "amounts are positive; the kind says credit note")
        debtor = item.get("debtor") or {}
        if not debtor.get("key"):
            raise RequestError(422, "DEBTOR_MISSING", "debtor.key is required")
        today = self.business_date
        cursor = self.conn.execute(
            "INSERT INTO assignments (idempotency_key, request_hash, batch_key, invoice_key, number, kind, seller, "
            "debtor_key, currency, amount_minor, issue_date, due_date, status, received_on, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'received', ?, datetime('now'))",
            (key, digest, batch_key, str(item.get("invoice_key") or item.get("number")), str(item.get("number")),
             str(item.get("kind") or "assignment"), item.get("seller"), debtor["key"], currency, amount.minor_units,
             item.get("issue_date"), item.get("due_date"), today.isoformat()))
        row = dict(self.conn.execute("SELECT * FROM assignments WHERE id = ?", (cursor.lastrowid,)).fetchone())
        self._decide(row)
        return self._public(dict(self.conn.execute("SELECT * FROM assignments WHERE id = ?", (row["id"],)).fetchone()))

    def _decide(self, row: dict) -> None:
        """The factor's own rules, applied at receipt; the decision goes to the events feed."""
        currency = row["currency"]
        if row["kind"] == "credit_note":
            self.conn.execute("UPDATE assignments SET status = 'applied' WHERE id = ?", (row["id"],))
            self._event("credit_note.applied", assignment=row, amount=row["amount_minor"])
            return
        limit = self.conn.execute("SELECT * FROM debtors WHERE debtor_key = ?", (row["debtor_key"],)).fetchone()
        reason, approved = None, row["amount_minor"]
        today = self.business_date.isoformat()
        if row["due_date"] and row["due_date"] < today:
            reason = "OVERDUE"
        elif limit is None or limit["status"] not in ("approved", "partly_approved"):
            reason = "NO_LIMIT"
        elif limit["currency"] != currency or (limit["valid_to"] and limit["valid_to"] < today):
            reason = "LIMIT_NOT_VALID"
        else:
            used = self.conn.execute(
                "SELECT coalesce(sum(approved_minor), 0) FROM assignments WHERE debtor_key = ? AND id != ? AND "
                "status IN ('accepted', 'partly_accepted', 'funded')", (row["debtor_key"], row["id"])).fetchone()[0]
            applied = self.conn.execute(
                "SELECT coalesce(sum(amount_minor), 0) FROM assignments WHERE debtor_key = ? AND "
                "status = 'applied'", (row["debtor_key"],)).fetchone()[0]
            headroom = limit["limit_minor"] - max(used - applied, 0)
            if headroom <= 0:
                reason = "LIMIT_EXCEEDED"
            elif headroom < approved:
                approved = headroom
        if reason is not None:
            self.conn.execute("UPDATE assignments SET status = 'declined', reason_code = ? WHERE id = ?",
                              (reason, row["id"]))
            self._event("assignment.declined", assignment=row, amount=row["amount_minor"], reason=reason)
            return
        status = "accepted" if approved == row["amount_minor"] else "partly_accepted"
        reserve = self._scaled(approved, self.reserve_rate, currency)
        fee = self._scaled(approved, self.fee_rate, currency)
        vat = self._scaled(fee, self.fee_vat_rate, currency)
        self.conn.execute("UPDATE assignments SET status = ?, approved_minor = ?, reserve_minor = ?, fee_minor = ?, "
                          "fee_vat_minor = ? WHERE id = ?", (status, approved, reserve, fee, vat, row["id"]))
        self._event(f"assignment.{status}", assignment=row, amount=approved,
                    detail={"requested_minor": row["amount_minor"]})
        self._event("reserve.held", assignment=row, amount=reserve)
        self._event("fee.charged", assignment=row, amount=fee, vat=vat, detail={"rate": str(self.fee_rate)})

    def _public(self, row: dict) -> dict:
        currency = row["currency"]

        def amount(minor: int) -> str:
            return str(Money.from_minor(minor, currency).amount)

        return {"assignment_id": f"asg-{row['id']}", "idempotency_key": row["idempotency_key"],
                "batch_key": row["batch_key"], "invoice_key": row["invoice_key"], "number": row["number"],
                "kind": row["kind"], "debtor_key": row["debtor_key"], "currency": currency,
                "amount": amount(row["amount_minor"]), "status": row["status"], "reason_code": row["reason_code"],
                "approved": amount(row["approved_minor"]), "funded": amount(row["funded_minor"]),
                "received_on": row["received_on"]}

    def list_assignments(self, *, idempotency_key: str | None = None, invoice_key: str | None = None) -> list[dict]:
        sql, params = "SELECT * FROM assignments", []
        if idempotency_key:
            sql, params = sql + " WHERE idempotency_key = ?", [idempotency_key]
        elif invoice_key:
            sql, params = sql + " WHERE invoice_key = ?", [invoice_key]
        with self.lock:
            return [self._public(dict(r)) for r in self.conn.execute(sql + " ORDER BY id", params)]

    def get_assignment(self, assignment_id: str) -> dict:
        number = assignment_id.removeprefix("asg-")
        with self.lock:
            row = self.conn.execute("SELECT * FROM assignments WHERE id = ?", (number,)).fetchone()
        if row is None:
            raise RequestError(404, "NOT_FOUND", "no such assignment")
        return self._public(dict(row))

    def get_batch(self, key: str) -> dict:
        with self.lock:
            row = self.conn.execute("SELECT response FROM idempotency WHERE key = ? AND scope = 'batch'",
                                    (key,)).fetchone()
        if row is None:
            raise RequestError(404, "NOT_FOUND", "no batch under this key")
        return json.loads(row["response"])

    def cancel(self, assignment_id: str) -> dict:
        with self.lock, self._transaction():
            current = self.get_assignment(assignment_id)
            if current["status"] in ("funded", "collected", "charged_back"):
                raise RequestError(409, "NOT_CANCELLABLE", f"assignment is {current['status']}")
            if current["status"] != "cancelled":
                row = dict(self.conn.execute("SELECT * FROM assignments WHERE id = ?",
                                             (assignment_id.removeprefix("asg-"),)).fetchone())
                self.conn.execute("UPDATE assignments SET status = 'cancelled' WHERE id = ?", (row["id"],))
                self._event("assignment.cancelled", assignment=row, amount=row["approved_minor"])
                if row["reserve_minor"]:
                    self._event("reserve.released", assignment=row, amount=row["reserve_minor"])
            return self.get_assignment(assignment_id)

    # -- time passes ------------------------------------------------------------------------------
    def advance(self, days: int) -> dict:
        """Move the business clock day by day: fund yesterday's acceptances, collect what debtors pay on the
        due date (notified mode), charge back what is still unpaid after the grace period."""
        counts = {"funded": 0, "collected": 0, "charged_back": 0}
        with self.lock:
            for _ in range(max(0, int(days))):
                with self._transaction():
                    today = self.business_date + dt.timedelta(days=1)
                    self.conn.execute("UPDATE meta SET value = ? WHERE key = 'business_date'", (today.isoformat(),))
                    for row in self._rows("SELECT * FROM assignments WHERE status IN ('accepted', 'partly_accepted') "
                                          "AND received_on < ?", (today.isoformat(),)):
                        paid = self._scaled(row["approved_minor"], self.advance_rate, row["currency"]) \
                            - row["fee_minor"] - row["fee_vat_minor"]
                        self.conn.execute("UPDATE assignments SET status = 'funded', funded_minor = ? WHERE id = ?",
                                          (paid, row["id"]))
                        self._event("funding.paid", assignment=row, amount=paid,
                                    detail={"advance_rate": str(self.advance_rate)})
                        counts["funded"] += 1
                    for row in self._rows("SELECT * FROM assignments WHERE status = 'funded' AND due_date <= ?",
                                          (today.isoformat(),)):
                        due = dt.date.fromisoformat(row["due_date"])
                        if not _late_payer(row["invoice_key"]):
                            self.conn.execute("UPDATE assignments SET status = 'collected' WHERE id = ?", (row["id"],))
                            self._event("collection.received", assignment=row, amount=row["approved_minor"])
                            self._event("reserve.released", assignment=row, amount=row["reserve_minor"])
                            counts["collected"] += 1
                        elif (today - due).days > self.grace_days:
                            self.conn.execute("UPDATE assignments SET status = 'charged_back' WHERE id = ?",
                                              (row["id"],))
                            self._event("chargeback", assignment=row, amount=row["approved_minor"],
                                        reason="UNPAID_AFTER_GRACE", detail={"grace_days": self.grace_days})
                            self._event("reserve.released", assignment=row, amount=row["reserve_minor"])
                            counts["charged_back"] += 1
        return {"business_date": self.business_date.isoformat(), **counts}

    def _rows(self, sql: str, params: tuple) -> list[dict]:
        return [dict(r) for r in self.conn.execute(sql, params)]

    # -- the events feed --------------------------------------------------------------------------
    def events(self, after: int, limit: int) -> dict:
        with self.lock:
            rows = self._rows("SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit))
        events = []
        for row in rows:
            currency = row["currency"]

            def amount(minor: int | None, currency: str | None = currency) -> str | None:
                return None if minor is None or currency is None else str(Money.from_minor(minor, currency).amount)

            events.append({"event_id": f"evt-{row['seq']}", "kind": row["kind"],
                           "assignment_id": f"asg-{row['assignment_id']}" if row["assignment_id"] else None,
                           "invoice_key": row["invoice_key"], "debtor_key": row["debtor_key"],
                           "amount": amount(row["amount_minor"]), "vat": amount(row["vat_minor"]),
                           "currency": currency, "reason_code": row["reason_code"], "occurred_on": row["occurred_on"],
                           "detail": json.loads(row["detail"])})
        next_cursor = str(rows[-1]["seq"]) if rows else str(after)
        return {"events": events, "next_cursor": next_cursor, "has_more": len(rows) == limit}


class _Txn:
    """BEGIN IMMEDIATE .. COMMIT on the book's connection (the caller holds the book's lock)."""

    def __init__(self, book: SandboxBook) -> None:
        self.book = book
        self.outer = False

    def __enter__(self) -> None:
        self.outer = not self.book.conn.in_transaction
        if self.outer:
            self.book.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if not self.outer:
            return
        self.book.conn.execute("ROLLBACK" if exc_type else "COMMIT")
