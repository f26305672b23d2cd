"""Statements and statement lines with duplicate protection (issue 7 fills this in)."""

from __future__ import annotations


class StatementsMixin:
    """Store methods of this area; SQL only lives in connector/store/."""
