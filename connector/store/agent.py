"""Agent bookkeeping: lock, alerts, report snapshots (issue 8 fills this in)."""

from __future__ import annotations


class AgentMixin:
    """Store methods of this area; SQL only lives in connector/store/."""
