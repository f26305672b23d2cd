"""ERP source bookkeeping beyond cursors: lookups by source id, and payments written back to an ERP.

``erp_writebacks`` (migration 0020) keeps one row per (source, reference): the intent is written
before the ERP is called and completed with the ERP's id after, so a crash in between is resumed by
looking the reference up in the ERP rather than paying twice.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from connector.clock import utc_iso
from connector.errors import InvariantViolation
from connector.money import Money


class SourcesMixin:
    """Store methods of this area; SQL only lives in connector/store/."""

    def erp_status_of(self, invoice_key: str) -> str | None:
        """The ERP status last recorded for ``invoice_key`` (``None`` when unknown or not stored)."""
        return self._scalar("SELECT erp_status FROM invoices WHERE invoice_key = ?", (invoice_key,))

    def invoice_key_by_source_id(self, source: str, source_id: str) -> str | None:
        return self._scalar("SELECT invoice_key FROM invoices WHERE source = ? AND source_id = ? "
                            "ORDER BY id LIMIT 1", (source, source_id))

    def invoice_amounts_by_key(self, invoice_key: str) -> dict[str, Any] | None:
        row = self._one("SELECT id, currency, total_gross_minor, amount_due_minor, erp_status FROM invoices "
                        "WHERE invoice_key = ?", (invoice_key,))
        return None if row is None else dict(row)

    def reset_cursor(self, source: str, stream: str = "invoices") -> None:
        """Forget a source's cursor (the next pull re-reads everything; the store deduplicates). Audited."""
        self.require_transaction("reset_cursor()")
        self._execute("DELETE FROM sync_cursors WHERE source = ? AND stream = ?", (source, stream))
        self.audit("source.cursor_reset", f"source:{source}", {"stream": stream})

    # -- write-back -------------------------------------------------------------------------------
    def writeback_intent(self, source: str, reference: str, *, invoice_id: int, source_id: str, amount: Money,
                         date: dt.date) -> str | None:
        """Record the intent to write a payment back; returns the ERP id when it was already done."""
        self.require_transaction("writeback_intent()")
        row = self._one("SELECT invoice_id, amount_minor, currency, erp_id FROM erp_writebacks "
                        "WHERE source = ? AND reference = ?", (source, reference))
        if row is not None:
            if (row["invoice_id"], row["amount_minor"], row["currency"]) != (
                    invoice_id, amount.minor_units, amount.currency):
                raise InvariantViolation(f"write-back reference {reference!r} was used for another payment")
            return row["erp_id"]
        self._execute(
            "INSERT INTO erp_writebacks (source, reference, invoice_id, source_id, amount_minor, currency, "
            "payment_date, state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
            (source, reference, invoice_id, source_id, amount.minor_units, amount.currency, date.isoformat(),
             utc_iso()))
        self.audit("erp.writeback_pending", f"invoice:{invoice_id}",
                   {"source": source, "reference": reference, "amount": str(amount.amount),
                    "currency": amount.currency, "date": date.isoformat()})
        return None

    def writeback_done(self, source: str, reference: str, erp_id: str) -> None:
        self.require_transaction("writeback_done()")
        self._execute("UPDATE erp_writebacks SET state = 'done', erp_id = ?, done_at = ? "
                      "WHERE source = ? AND reference = ?", (erp_id, utc_iso(), source, reference))
        self.audit("erp.writeback_done", f"source:{source}", {"reference": reference, "erp_id": erp_id})

    def pending_writebacks(self, source: str) -> list[dict[str, Any]]:
        """Write-back intents of ``source`` whose ERP call never completed (a crash, a timeout, an error)."""
        return [dict(r) for r in self._all("SELECT * FROM erp_writebacks WHERE source = ? AND state = 'pending' "
                                           "ORDER BY id", (source,))]

    def writebacks(self, source: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM erp_writebacks" + (" WHERE source = ?" if source else "") + " ORDER BY id"
        return [dict(r) for r in self._all(sql, (source,) if source else ())]
