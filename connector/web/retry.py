"""Re-try of a quarantined document after someone fixed it: the same library call that first refused it.

Reads the file again from the quarantine entry's location and hands it to its source's importer; the
importer resolves the entry when the file now imports (or quarantines it again with the new reason).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connector.errors import NotBuiltYet, Quarantine


def retry_quarantined(store: Any, entry: dict[str, Any]) -> str:
    """Re-import the quarantined file; returns a one-line outcome for the person who asked."""
    from connector.ingest import QUARANTINE_SOURCE, ingest_paths

    if entry["source"] != QUARANTINE_SOURCE:
        raise NotBuiltYet(f"re-try of {entry['source']!r} entries is not built yet; re-run that source's import")
    path = Path(entry["location"])
    if not path.is_file():
        raise Quarantine(f"{path}: the file is no longer there; put the fixed file back at this path", source=str(path))
    report = ingest_paths(store, [path])
    outcome = report.outcomes[0]
    if outcome.status == "rejected":
        return f"{path.name}: still refused: {outcome.reason}"
    return f"{path.name}: imported ({outcome.status})"
