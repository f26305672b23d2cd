"""The append-only, hash-chained audit log, written in the same transaction as each change.

Each row's ``hash`` is SHA-256 over the canonical JSON of ``[prev_hash, seq, ts, actor, event,
entity, payload]``; ``seq`` is gapless. Triggers refuse UPDATE and DELETE; :meth:`verify_audit`
recomputes the chain and names the first broken row (edits after dropping the triggers included).
A chain does not detect truncation or a rebuild: anchor :meth:`audit_head` outside the store.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from connector.clock import utc_iso
from connector.model import canonical_json

GENESIS = "0" * 64


def _row_hash(prev_hash: str, seq: int, ts: str, actor: str, event: str, entity: str | None,
              payload: str) -> str:
    material = json.dumps([prev_hash, seq, ts, actor, event, entity, payload],
                          separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(material.encode()).hexdigest()


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
        self.require_transaction("audit()")
        last = self._one("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        seq = 1 if last is None else last["seq"] + 1
        prev = GENESIS if last is None else last["hash"]
        ts = utc_iso()
        who = actor or self.actor
        body = canonical_json(payload if payload is not None else {})
        digest = _row_hash(prev, seq, ts, who, event, entity, body)
        self._execute(
            "INSERT INTO audit (seq, ts, actor, event, entity, payload, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (seq, ts, who, event, entity, body, prev, digest))
        return seq

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
