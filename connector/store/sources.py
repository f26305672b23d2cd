"""ERP source bookkeeping beyond cursors (issue 4 fills this in)."""

from __future__ import annotations


class SourcesMixin:
    """Store methods of this area; SQL only lives in connector/store/."""
