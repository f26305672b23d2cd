"""E-invoice ingestion bookkeeping: findings, inbox files (issue 3 fills this in)."""

from __future__ import annotations


class EinvoiceMixin:
    """Store methods of this area; SQL only lives in connector/store/."""
