"""The clock, kept at the edge: everything that needs "now" asks here, so tests can move time."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    """Current time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


def utc_iso(moment: dt.datetime | None = None) -> str:
    """ISO 8601 UTC text with microseconds (sortable), e.g. ``2026-11-28T10:00:00.000000+00:00``."""
    return (moment or utcnow()).astimezone(dt.UTC).isoformat(timespec="microseconds")


def today() -> dt.date:
    return utcnow().date()
