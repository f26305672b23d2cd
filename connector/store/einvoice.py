"""E-invoice ingestion bookkeeping: which document became which invoice version, and its findings.

SQL of issue 3 only; callers are in :mod:`connector.ingest`. Every write runs inside the caller's
``store.transaction()`` together with ``keep_document`` and ``save_invoice`` of the same document.
"""

from __future__ import annotations

from typing import Any

from connector.clock import utc_iso


class EinvoiceMixin:
    """Store methods of this area; SQL only lives in connector/store/."""

    def einvoice_document(self, content_sha256: str) -> dict[str, Any] | None:
        """The bookkeeping row of an already-ingested document (by the SHA-256 of its bytes)."""
        row = self._one("SELECT * FROM einvoice_documents WHERE content_sha256 = ?", (content_sha256,))
        return None if row is None else dict(row)

    def record_einvoice(self, *, content_sha256: str, location: str, syntax: str, container: str,
                        profile: str | None, attachment: str | None, invoice_id: int, version: int,
                        official_ran: bool, findings: list[dict[str, Any]]) -> bool:
        """Record a document and its findings once; returns False when it was already recorded. Audited."""
        self.require_transaction("record_einvoice()")
        cursor = self._execute(
            "INSERT OR IGNORE INTO einvoice_documents (content_sha256, location, syntax, container, profile, "
            "attachment, invoice_id, version, official_rules, ingested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (content_sha256, location, syntax, container, profile, attachment, invoice_id, version,
             "run" if official_ran else "not_run", utc_iso()))
        if not cursor.rowcount:
            return False
        self.conn.executemany(
            "INSERT INTO einvoice_findings (content_sha256, level, rule, message, field) VALUES (?, ?, ?, ?, ?)",
            [(content_sha256, f["level"], f["rule"], f["message"], f.get("field")) for f in findings])
        counts: dict[str, int] = {}
        for finding in findings:
            counts[finding["level"]] = counts.get(finding["level"], 0) + 1
        self.audit("einvoice.ingested", f"invoice:{invoice_id}",
                   {"sha256": content_sha256, "location": location, "syntax": syntax, "container": container,
                    "profile": profile, "version": version, "findings": counts})
        return True

    def einvoice_findings(self, invoice_id: int, version: int | None = None) -> list[dict[str, Any]]:
        """Findings of the documents behind an invoice (all versions unless ``version`` is given)."""
        sql = ("SELECT d.version, d.location, f.level, f.rule, f.message, f.field FROM einvoice_findings f "
               "JOIN einvoice_documents d USING (content_sha256) WHERE d.invoice_id = ?")
        params: tuple[Any, ...] = (invoice_id,)
        if version is not None:
            sql += " AND d.version = ?"
            params += (version,)
        return [dict(r) for r in self._all(sql + " ORDER BY f.id", params)]

    def count_einvoice_documents(self) -> int:
        return self._scalar("SELECT count(*) FROM einvoice_documents")
