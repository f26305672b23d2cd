"""Review desk users, roles and sessions (issue 10 fills this in)."""

from __future__ import annotations


class DeskMixin:
    """Store methods of this area; SQL only lives in connector/store/."""
