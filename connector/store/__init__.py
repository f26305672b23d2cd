"""The durable store: every SQL statement of Cessio lives in this package.

The rest of the code calls :class:`Store` methods, never SQL, so that a PostgreSQL backend for
groups running several agents is a new implementation of these methods, not a rewrite.

>>> store = Store(":memory:")          # doctest: +SKIP
>>> with store.transaction():           # doctest: +SKIP
...     result = store.save_invoice(invoice)   # and its audit row, in one transaction

Areas (one module each): ``audit`` (hash chain), ``invoices`` (versions, documents, cursors),
``quarantine``, ``assignments`` (outbox, batches, factor events, limits), ``statements``,
``reconciliation`` (allocations, ledger), ``jobs`` (agent runs), ``integrity`` (the business-row check of
``cessio check``). Schema: ``migrations``.
"""

from __future__ import annotations

from connector.store.agent import AgentMixin
from connector.store.assignments import AssignmentsMixin
from connector.store.audit import AuditMixin, AuditVerdict
from connector.store.base import StoreBase
from connector.store.channels import ChannelsMixin
from connector.store.desk import DeskMixin
from connector.store.einvoice import EinvoiceMixin
from connector.store.integrity import BusinessVerdict, IntegrityMixin, Mismatch
from connector.store.invoices import InvoicesMixin, SaveResult
from connector.store.jobs import JobsMixin
from connector.store.quarantine import QuarantineMixin
from connector.store.reconciliation import ReconciliationMixin
from connector.store.sources import SourcesMixin
from connector.store.statements import StatementsMixin


class Store(AuditMixin, InvoicesMixin, QuarantineMixin, SourcesMixin, EinvoiceMixin, AssignmentsMixin,
            ChannelsMixin, StatementsMixin, ReconciliationMixin, JobsMixin, AgentMixin, DeskMixin, IntegrityMixin,
            StoreBase):
    """The SQLite store (WAL, synchronous=FULL, BEGIN IMMEDIATE writes, hash-chained audit)."""

    def backlog(self) -> dict[str, int]:
        """Counts for ``cessio status``: what is waiting where."""
        return {
            "invoices_waiting": self._scalar(
                "SELECT count(*) FROM invoices WHERE financing_state IN ('new', 'eligible')"),
            "assignments_in_flight": self._scalar(
                "SELECT count(*) FROM assignments WHERE state IN ('pending', 'in_flight', 'unknown')"),
            "statement_lines_unmatched": self._scalar(
                "SELECT count(*) FROM statement_lines WHERE match_status IN ('open', 'suggested')"),
            "quarantined_documents": self._scalar("SELECT count(*) FROM quarantine WHERE status = 'open'"),
        }


__all__ = ["AuditVerdict", "BusinessVerdict", "Mismatch", "SaveResult", "Store"]
