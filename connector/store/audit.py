"""The append-only, hash-chained audit log, written in the same transaction as each change.

Each row's ``hash`` is SHA-256 over the canonical JSON of ``[prev_hash, seq, ts, actor, event,
entity, payload]``; ``seq`` is gapless. Triggers refuse UPDATE and DELETE; :meth:`verify_audit`
recomputes the chain and names the first broken row (edits after dropping the triggers included).
A chain does not detect truncation or a rebuild: anchor :meth:`audit_head` outside the store.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from json.encoder import encode_basestring as _json_string
from typing import Any

from connector.clock import utc_iso
from connector.model import canonical_json
from connector.store.base import translate_sqlite_error

GENESIS = "0" * 64


def _row_hash(prev_hash: str, seq: int, ts: str, actor: str, event: str, entity: str | None,
              payload: str) -> str:
    return hashlib.sha256(_row_material(prev_hash, seq, ts, actor, event, entity, payload).encode()).hexdigest()


def _row_material(prev_hash: str, seq: int, ts: str, actor: str, event: str, entity: str | None,
                  payload: str) -> str:
    """``json.dumps([prev_hash, seq, ts, actor, event, entity, payload], separators=(",", ":"),
    ensure_ascii=False)``, the text a row's hash covers. Written directly for the usual types (the same
    string escaping as json.dumps, character for character): the general encoder costs more than the
    hash itself, and a bulk import hashes one row per invoice."""
    if (type(seq) is int and type(prev_hash) is str and type(ts) is str and type(actor) is str
            and type(event) is str and type(payload) is str and (entity is None or type(entity) is str)):
        return (f"[{_json_string(prev_hash)},{int.__repr__(seq)},{_json_string(ts)},{_json_string(actor)},"
                f"{_json_string(event)},{'null' if entity is None else _json_string(entity)},"
                f"{_json_string(payload)}]")
    return json.dumps([prev_hash, seq, ts, actor, event, entity, payload], separators=(",", ":"),
                      ensure_ascii=False)


@dataclass(frozen=True)
class AuditVerdict:
    ok: bool
    rows: int
    first_broken_seq: int | None = None
    problem: str | None = None
    head_hash: str | None = None


class AuditMixin:
    def audit(self, event: str, entity: str | None = None, payload: Any = None, *,
              actor: str | None = None) -> int:
        """Append an audit row; must be called inside :meth:`transaction` with the change it records."""
        return self.audit_text(event, entity, canonical_json(payload if payload is not None else {}), actor=actor)

    def audit_text(self, event: str, entity: str | None, body: str, *, actor: str | None = None) -> int:
        """:meth:`audit` with the payload already written as canonical JSON (``body``)."""
        self.require_transaction("audit()")
        last = self._one("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        seq = 1 if last is None else last["seq"] + 1
        prev = GENESIS if last is None else last["hash"]
        ts = utc_iso()
        who = actor or self.actor
        digest = _row_hash(prev, seq, ts, who, event, entity, body)
        self._execute(
            "INSERT INTO audit (seq, ts, actor, event, entity, payload, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (seq, ts, who, event, entity, body, prev, digest))
        return seq

    def audit_texts(self, rows: list[tuple[str, str | None, str]]) -> None:
        """Append ``(event, entity, canonical JSON payload)`` rows in order, in one statement, chained
        exactly as :meth:`audit` chains them one by one (same seq, ts and hashes as that loop would give
        within the same second)."""
        self.require_transaction("audit()")
        if not rows:
            return
        last = self._one("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        seq = 0 if last is None else last["seq"]
        prev = GENESIS if last is None else last["hash"]
        ts, who = utc_iso(), self.actor
        out = []
        for event, entity, body in rows:
            seq += 1
            digest = _row_hash(prev, seq, ts, who, event, entity, body)
            out.append((seq, ts, who, event, entity, body, prev, digest))
            prev = digest
        try:
            self.conn.executemany("INSERT INTO audit (seq, ts, actor, event, entity, payload, prev_hash, hash) "
                                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", out)
        except sqlite3.Error as exc:
            raise translate_sqlite_error(exc, "INSERT INTO audit") from exc

    def verify_audit(self) -> AuditVerdict:
        """Recompute the chain from the first row; stop at the first row that does not fit."""
        prev = GENESIS
        expected_seq = 1
        count = 0
        for row in self._execute(
                "SELECT seq, ts, actor, event, entity, payload, prev_hash, hash FROM audit ORDER BY seq"):
            count += 1
            if row["seq"] != expected_seq:
                return AuditVerdict(False, count, row["seq"], f"gap: expected seq {expected_seq}")
            if row["prev_hash"] != prev:
                return AuditVerdict(False, count, row["seq"], "prev_hash does not match the row before")
            digest = _row_hash(prev, row["seq"], row["ts"], row["actor"], row["event"], row["entity"],
                               row["payload"])
            if digest != row["hash"]:
                return AuditVerdict(False, count, row["seq"], "content does not match its hash")
            prev = row["hash"]
            expected_seq += 1
        return AuditVerdict(True, count, head_hash=prev if count else None)

    def audit_head(self) -> tuple[int, str] | None:
        """``(seq, hash)`` of the newest row, to anchor outside the store."""
        row = self._one("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        return None if row is None else (row["seq"], row["hash"])

    def audit_rows(self, *, entity: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        if entity:
            rows = self._all("SELECT * FROM audit WHERE entity = ? ORDER BY seq DESC LIMIT ?", (entity, limit))
        else:
            rows = self._all("SELECT * FROM audit ORDER BY seq DESC LIMIT ?", (limit,))
        return [dict(r) for r in rows]
