"""The agent's inbox job: one watched folder for e-invoices *and* statements, each file routed by its content.

Companies get bank statements (camt.053/054, MT940, CFONB 120) and factor statements from an EBICS/SFTP
client or a download, and e-invoices from a platform or by mail; operators point both at the same folder
(``[inbox] path``). Each file is read once to tell what it is, exactly as ``cessio statements import`` and
``cessio ingest`` do:

- a file :func:`adapters.statements.detect_format` recognises is imported as a statement
  (:func:`connector.reconcile.importing.import_bytes`: each line once, balances and chain checked) and moved
  to ``processed/``; a statement file that cannot be read is quarantined and moved to ``rejected/`` with a
  ``.error.txt`` that speaks of a *statement*, never of an invoice;
- anything else is left for e-invoice ingestion (:func:`connector.ingest.process_inbox`), which moves it to
  ``processed/`` or ``rejected/`` in its turn.

The same rules as for e-invoices: a file younger than ``min_age_seconds`` or still changing is left for the
next run; temporary names (``.part``, ``.tmp``...) are skipped; a crash between the import's commit and the
move is harmless (the next run finds the statement already imported, imports nothing and moves the file).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("cessio.agent.inbox")

DETECT_BYTES = 256 * 1024  # enough for every detector (MT940 looks at the first 200,000 characters)


@dataclass
class StatementInboxReport:
    imported: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    new_lines: int = 0
    duplicates: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"imported": len(self.imported), "rejected": len(self.rejected), "new_lines": self.new_lines,
                "duplicate_lines": self.duplicates, "rejected_files": self.rejected}


def _head(path: Path) -> bytes:
    with path.open("rb") as fp:
        return fp.read(DETECT_BYTES)


def import_inbox_statements(store: Any, folder: Path | str, *, min_age_seconds: float = 5.0,
                            now: float | None = None) -> StatementInboxReport:
    """Import the statement files directly in ``folder``; leave every other file where it is."""
    from adapters.statements import detect_format
    from connector.clock import utcnow
    from connector.errors import Quarantine, StoreError
    from connector.ingest import SKIPPED_SUFFIXES, free_name, read_file_capped
    from connector.reconcile.importing import FileImport, import_bytes

    folder = Path(folder)
    report = StatementInboxReport()
    if not folder.is_dir():
        return report
    moment = utcnow().timestamp() if now is None else now
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith(".") or path.name.endswith(SKIPPED_SUFFIXES):
            continue
        before = path.stat()
        if moment - before.st_mtime < min_age_seconds:
            continue  # e-invoice ingestion reports it as waiting
        try:
            if detect_format(_head(path)) is None:
                continue  # not a statement: an e-invoice, or something ingestion will reject with its reason
            data = read_file_capped(path)
        except (OSError, Quarantine):
            continue  # unreadable or too big: ingestion rejects it with the reason
        after = path.stat()
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            continue  # still being written
        try:
            result = import_bytes(store, data, file_name=str(path))
        except StoreError:
            raise  # the store itself failed: the agent's own rule applies (stop, let a human look)
        except Exception as exc:  # a reader bug on a hostile file must not block the inbox for every other file
            log.error("statement %s could not be imported (%s: %s); moved to rejected/", path.name,
                      type(exc).__name__, exc)
            result = FileImport(file=str(path), error=f"{type(exc).__name__}: {exc}")
        digest = hashlib.sha256(data).hexdigest()
        if result.error:
            rejected = folder / "rejected"
            rejected.mkdir(exist_ok=True)
            target = free_name(rejected, path.name, digest)
            Path(f"{target}.error.txt").write_text(
                f"file: {path.name}\nkind: bank or factor statement ({detect_format(data[:DETECT_BYTES])})\n"
                f"reason: {result.error}\nThe statement was not imported; fix it (or download it again) and drop "
                "it into the inbox again.\n", encoding="utf-8")
            shutil.move(str(path), target)
            report.rejected.append(path.name)
            continue
        processed = folder / "processed"
        processed.mkdir(exist_ok=True)
        shutil.move(str(path), free_name(processed, path.name, digest))
        report.imported.append(path.name)
        report.new_lines += result.new
        report.duplicates += result.duplicates
    return report

