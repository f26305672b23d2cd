"""Quarantine: documents and records that were refused, with the file, the field and the reason.

Quarantining the same bad content again only bumps ``seen_count``; a fixed document that later
imports fine resolves its open entries.
"""

from __future__ import annotations

import hashlib
from typing import Any

from connector.clock import utc_iso
from connector.errors import Quarantine


class QuarantineMixin:
    def quarantine(self, error: Quarantine, *, source: str, location: str,
                   content: bytes | None = None) -> int:
        """Record a refused document or record; returns the quarantine id. Audited."""
        self.require_transaction("quarantine()")
        digest = hashlib.sha256(content or location.encode()).hexdigest()
        now = utc_iso()
        self._execute(
            "INSERT INTO quarantine (source, location, content_sha256, field, rule, reason, status, "
            "created_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?) "
            "ON CONFLICT (source, location, content_sha256) DO UPDATE SET "
            "seen_count = seen_count + 1, last_seen_at = excluded.last_seen_at, reason = excluded.reason, "
            "field = excluded.field, rule = excluded.rule, status = 'open', resolved_at = NULL",
            (source, location, digest, error.field, error.rule, error.reason, now, now))
        qid = self._scalar("SELECT id FROM quarantine WHERE source = ? AND location = ? AND content_sha256 = ?",
                           (source, location, digest))
        self.audit("quarantine.added", f"quarantine:{qid}",
                   {"source": source, "location": location, "field": error.field, "rule": error.rule,
                    "reason": error.reason, "sha256": digest})
        return qid

    def resolve_quarantine(self, *, source: str, location: str) -> int:
        """Mark open entries of ``location`` resolved (it imported fine since); returns how many."""
        self.require_transaction("resolve_quarantine()")
        cursor = self._execute(
            "UPDATE quarantine SET status = 'resolved', resolved_at = ? WHERE source = ? AND location = ? "
            "AND status = 'open'", (utc_iso(), source, location))
        if cursor.rowcount:
            self.audit("quarantine.resolved", f"location:{location}", {"source": source, "count": cursor.rowcount})
        return cursor.rowcount

    def quarantined(self, *, status: str = "open", limit: int = 1000) -> list[dict[str, Any]]:
        return [dict(r) for r in self._all(
            "SELECT * FROM quarantine WHERE status = ? ORDER BY last_seen_at DESC LIMIT ?", (status, limit))]

    def count_quarantined(self) -> int:
        return self._scalar("SELECT count(*) FROM quarantine WHERE status = 'open'")
