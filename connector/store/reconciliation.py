"""Allocations and ledger entries (issue 7 fills this in)."""

from __future__ import annotations


class ReconciliationMixin:
    """Store methods of this area; SQL only lives in connector/store/."""
