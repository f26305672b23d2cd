"""Assignments, outbox claims, batches, factor events and debtor limits (issue 5/6 fill this in)."""

from __future__ import annotations


class AssignmentsMixin:
    """Store methods of this area; SQL only lives in connector/store/."""
