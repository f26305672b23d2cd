"""E-invoice ingestion, the library API behind ``cessio inspect`` / ``cessio ingest`` and the inbox job.

- :func:`inspect_file` reads one file and returns the public ``cessio inspect`` JSON object (stores nothing).
- :func:`ingest_bytes` / :func:`ingest_paths` store valid documents (original bytes, invoice with versions,
  findings) and quarantine the rest, one ``store.transaction()`` per document: idempotent (the same bytes
  twice are one invoice; a changed re-issue becomes a new version).
- :func:`process_inbox` ingests the files of a watched folder and moves each to ``processed/`` or
  ``rejected/`` (with ``<name>.error.txt``); a file still being written (too young, or changing while read)
  is left for the next run.
- :func:`demo_stage` is the demo's "ingest e-invoices" stage.

Reads: files (size-capped before reading). Writes: the store, and the inbox folders.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from adapters.facturx_pdf import MAX_PDF_BYTES
from connector.einvoice.findings import Finding
from connector.einvoice.reader import Reading, read_document
from connector.errors import CessioError, Quarantine, UnsafeDocument, UnsupportedDocument

log = logging.getLogger(__name__)

QUARANTINE_SOURCE = "einvoice"
MAX_FILE_BYTES = MAX_PDF_BYTES  # the largest container we read; XML has its own, smaller cap
SKIPPED_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".download", ".error.txt", ".swp")


def read_file_capped(path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of ``path``, refused before reading when over the cap (memory stays bounded)."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise UnsafeDocument(f"file of {size} bytes is over the {max_bytes}-byte cap", source=str(path))
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise Quarantine(f"cannot read the file: {exc.strerror or exc}", source=str(path)) from None
    if len(data) > max_bytes:
        raise UnsafeDocument(f"file grew over the {max_bytes}-byte cap while read", source=str(path))
    return data


def _fatal(error: Quarantine) -> dict[str, Any]:
    kind = ("CESSIO-UNSUPPORTED" if isinstance(error, UnsupportedDocument) else
            "CESSIO-UNSAFE" if isinstance(error, UnsafeDocument) else "CESSIO-INVALID")
    return Finding("fatal", error.rule or kind, error.reason, error.field).to_dict()


# -- inspect --------------------------------------------------------------------------------------
def inspect_file(path: Path | str, *, official: bool = True, default_payment_days: int | None = None) -> dict[str, Any]:
    """The ``cessio inspect`` object of one file (docs/interfaces.md): never raises for a bad document."""
    path = Path(path)
    out: dict[str, Any] = {"file": str(path), "ok": False, "error": None, "syntax": None, "container": None,
                           "profile": None, "invoice": None, "findings": []}
    try:
        data = read_file_capped(path)
        out["container"] = "pdf" if data[:1024].lstrip().startswith(b"%PDF-") else "xml"
        reading = read_document(data, source=str(path), official=official,
                                default_payment_days=default_payment_days)
    except Quarantine as exc:
        out["error"] = exc.reason
        out["findings"] = [_fatal(exc)]
        return out
    out.update(ok=True, syntax=reading.syntax, container=reading.container, profile=reading.profile,
               invoice=reading.view, findings=[f.to_dict() for f in reading.findings])
    return out


# -- ingest ---------------------------------------------------------------------------------------
@dataclass
class Outcome:
    location: str
    status: str  # new | changed | unchanged | known | rejected
    invoice_id: int | None = None
    version: int | None = None
    reason: str | None = None
    error: Quarantine | None = field(default=None, repr=False)


@dataclass
class IngestReport:
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def invoice_ids(self) -> list[int]:
        return list(dict.fromkeys(o.invoice_id for o in self.outcomes if o.invoice_id is not None))

    def line(self) -> str:
        return (f"{len(self.outcomes)} files: {self.count('new')} new, {self.count('changed')} changed (new version), "
                f"{self.count('unchanged') + self.count('known')} unchanged, {self.count('rejected')} quarantined")

    def to_dict(self) -> dict[str, Any]:
        return {"files": len(self.outcomes), **{s: self.count(s) for s in ("new", "changed", "unchanged", "known",
                                                                          "rejected")},
                "rejected_files": [{"file": o.location, "reason": o.reason} for o in self.outcomes
                                   if o.status == "rejected"]}


def _media_type(data: bytes) -> str:
    return "application/pdf" if data[:1024].lstrip().startswith(b"%PDF-") else "application/xml"


def _reject(store: Any, error: Quarantine, location: str, data: bytes | None) -> Outcome:
    with store.transaction():
        store.quarantine(error, source=QUARANTINE_SOURCE, location=location, content=data)
    return Outcome(location, "rejected", reason=str(error), error=error)


@dataclass
class _Prepared:
    """One document read outside any transaction, ready to be stored (or quarantined) inside one."""

    location: str
    data: bytes | None
    digest: str
    reading: Reading | None = None
    error: Quarantine | None = None


def _prepare(store: Any, data: bytes, *, location: str, official: bool,
             default_payment_days: int | None) -> _Prepared | Outcome:
    """Read one document (pure: parse, map, validate); an :class:`Outcome` when there is nothing to store."""
    digest = hashlib.sha256(data).hexdigest()
    known = store.einvoice_document(digest)
    if known is not None:  # these exact bytes were ingested before: nothing to do (idempotent)
        return Outcome(location, "known", known["invoice_id"], known["version"])
    try:
        reading = read_document(data, source=location, official=official, content_hash=digest,
                                default_payment_days=default_payment_days)
    except Quarantine as exc:
        return _Prepared(location, data, digest, error=exc)
    except CessioError:
        raise
    except Exception as exc:  # a reader bug must not stop the run: the document waits in quarantine
        log.exception("%s: unexpected error while reading", location)
        return _Prepared(location, data, digest, error=Quarantine(
            f"could not be read (internal error {type(exc).__name__}: {exc})", source=location))
    reading.root = None  # the parsed tree is not stored: a batch holds only bytes and the canonical invoice
    return _Prepared(location, data, digest, reading=reading)


def _commit(store: Any, prepared: _Prepared, *, official: bool) -> Outcome:
    """Store one prepared document; joins the caller's transaction when there is one."""
    if prepared.error is not None:
        return _reject(store, prepared.error, prepared.location, prepared.data)
    known = store.einvoice_document(prepared.digest)
    if known is not None:  # the same bytes earlier in this batch
        return Outcome(prepared.location, "known", known["invoice_id"], known["version"])
    reading, data, location = prepared.reading, prepared.data, prepared.location
    assert reading is not None and data is not None
    findings = [f.to_dict() for f in reading.findings]
    with store.transaction():
        store.keep_document(data, file_name=os.path.basename(location), media_type=_media_type(data))
        saved = store.save_invoice(reading.invoice)
        store.record_einvoice(content_sha256=prepared.digest, location=location, syntax=reading.syntax,
                              container=reading.container, profile=reading.profile, attachment=reading.attachment,
                              invoice_id=saved.invoice_id, version=saved.version,
                              official_ran=official and not any(f.rule == "OFFICIAL-NOT-RUN" for f in reading.findings),
                              findings=findings)
        store.resolve_quarantine(source=QUARANTINE_SOURCE, location=location)
    return Outcome(location, saved.status, saved.invoice_id, saved.version)


def ingest_bytes(store: Any, data: bytes, *, location: str, official: bool = False,
                 default_payment_days: int | None = None) -> Outcome:
    """Read and store one document (one transaction), or quarantine it with the reason."""
    prepared = _prepare(store, data, location=location, official=official, default_payment_days=default_payment_days)
    if isinstance(prepared, Outcome):
        return prepared
    return _commit(store, prepared, official=official)


BATCH_DOCUMENTS = 256  # documents per transaction; BATCH_BYTES bounds the memory a batch holds
BATCH_BYTES = 16 * 1024 * 1024  # bytes held in memory by one batch, at most (plus one document)


def ingest_many(store: Any, documents: Iterable[tuple[str, bytes | Quarantine]], *, official: bool = False,
                default_payment_days: int | None = None, batch: int = BATCH_DOCUMENTS,
                progress: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Ingest ``(location, bytes)`` pairs (or ``(location, Quarantine)`` for a file that could not be read).

    Documents are read outside any transaction, then written in batches of up to ``batch`` documents (and
    :data:`BATCH_BYTES`) per transaction: one fsync per batch instead of one per document. Every invoice
    and its audit rows still commit together; a crash loses at most the uncommitted batch, which the next
    run ingests again (idempotent). ``batch=1`` is one transaction per document.
    """
    outcomes: list[Outcome] = []
    pending: list[_Prepared | Outcome] = []
    size = 0

    def flush() -> None:
        nonlocal size
        if any(isinstance(item, _Prepared) for item in pending):
            with store.transaction():
                done = [item if isinstance(item, Outcome) else _commit(store, item, official=official)
                        for item in pending]
        else:
            done = list(pending)  # type: ignore[arg-type]
        for outcome in done:
            outcomes.append(outcome)
            if progress is not None:
                progress(outcome)
        pending.clear()
        size = 0

    for location, data in documents:
        if isinstance(data, Quarantine):
            pending.append(_Prepared(location, None, "", error=data))
        else:
            pending.append(_prepare(store, data, location=location, official=official,
                                    default_payment_days=default_payment_days))
            size += len(data)
        if len(pending) >= batch or size >= BATCH_BYTES:
            flush()
    flush()
    return outcomes


def iter_files(paths: Iterable[Path | str]) -> Iterator[Path]:
    """Files of ``paths``; folders recursively, in sorted order, hidden files and partial downloads skipped."""
    for path in map(Path, paths):
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                rel = child.relative_to(path).parts
                if child.is_file() and not any(p.startswith(".") for p in rel) \
                        and not child.name.endswith(SKIPPED_SUFFIXES):
                    yield child
        else:
            yield path


def ingest_paths(store: Any, paths: Iterable[Path | str], *, official: bool = False,
                 default_payment_days: int | None = None,
                 progress: Callable[[Outcome], None] | None = None, batch: int = BATCH_DOCUMENTS) -> IngestReport:
    """Ingest files and folders (recursively); every file ends stored or quarantined, the run goes on."""

    def documents() -> Iterator[tuple[str, bytes | Quarantine]]:
        for path in iter_files(paths):
            try:
                yield str(path), read_file_capped(path)
            except Quarantine as exc:
                yield str(path), exc

    report = IngestReport()
    report.outcomes = ingest_many(store, documents(), official=official, default_payment_days=default_payment_days,
                                  batch=batch, progress=progress)
    return report


# -- inbox ----------------------------------------------------------------------------------------
@dataclass
class InboxReport:
    processed: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # too young or changing: left for the next run

    def to_dict(self) -> dict[str, Any]:
        return {"processed": len(self.processed), "rejected": len(self.rejected), "waiting": len(self.waiting),
                "rejected_files": self.rejected}


def free_name(folder: Path, name: str, digest: str) -> Path:
    """``folder/name``, or ``name`` with the start of the content's digest added when that name is taken."""
    target = folder / name
    if not target.exists():
        return target
    stem, dot, suffix = name.partition(".")
    return folder / f"{stem}-{digest[:12]}{dot}{suffix}"


def _stable(path: Path, before: os.stat_result) -> bool:
    after = path.stat()
    return (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def process_inbox(store: Any, inbox: Any, *, min_age_seconds: float | None = None, official: bool = False,
                  default_payment_days: int | None = None, now: float | None = None,
                  config: Any = None) -> InboxReport:
    """Ingest the files directly in ``inbox`` and move each to ``processed/`` or ``rejected/``.

    ``inbox`` is a folder (with ``config``, the :class:`~connector.config.Config` its default payment terms and
    ``official_rules`` come from: the agent calls it so), or the Config itself (its ``[inbox]`` section).
    A file younger than ``min_age_seconds`` (by mtime), or whose size or mtime changes while it is
    read, is not touched this time. A crash between the commit and the move is harmless: the next run finds
    the bytes already ingested and only moves the file.
    """
    from connector.clock import utcnow

    if config is not None and not hasattr(inbox, "section"):  # the agent passes the folder and the config
        official = official or bool(config.section("inbox").get("official_rules", False))
        if default_payment_days is None:
            default_payment_days = config.section("company").get("default_payment_days")
    if hasattr(inbox, "section"):
        section = inbox.section("inbox")
        if min_age_seconds is None:
            min_age_seconds = section.get("min_age_seconds", 5)
        official = official or bool(section.get("official_rules", False))
        if default_payment_days is None:
            default_payment_days = inbox.section("company").get("default_payment_days")
        inbox = section.get("path")
        if not inbox:
            return InboxReport()
    folder = Path(inbox)
    min_age = 5.0 if min_age_seconds is None else float(min_age_seconds)
    processed_dir, rejected_dir = folder / "processed", folder / "rejected"
    processed_dir.mkdir(parents=True, exist_ok=True)
    rejected_dir.mkdir(parents=True, exist_ok=True)
    moment = utcnow().timestamp() if now is None else now
    report = InboxReport()
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith(".") or path.name.endswith(SKIPPED_SUFFIXES):
            continue
        before = path.stat()
        if moment - before.st_mtime < min_age:
            report.waiting.append(path.name)
            continue
        try:
            data = read_file_capped(path)
        except Quarantine as exc:
            data, outcome = None, None
            error: Quarantine | None = exc
        else:
            error = None
        if not _stable(path, before):
            report.waiting.append(path.name)
            continue
        if error is None:
            outcome = ingest_bytes(store, data, location=str(path), official=official,
                                   default_payment_days=default_payment_days)
        else:
            outcome = _reject(store, error, str(path), None)
        digest = hashlib.sha256(data or path.name.encode()).hexdigest()
        if outcome.status == "rejected":
            target = free_name(rejected_dir, path.name, digest)
            error_text = _error_text(outcome)
            Path(f"{target}.error.txt").write_text(error_text, encoding="utf-8")
            shutil.move(str(path), target)
            report.rejected.append(path.name)
        else:
            shutil.move(str(path), free_name(processed_dir, path.name, digest))
            report.processed.append(path.name)
    return report


def _error_text(outcome: Outcome) -> str:
    error = outcome.error
    lines = [f"file: {Path(outcome.location).name}", f"reason: {error.reason if error else outcome.reason}"]
    if error is not None and error.field:
        lines.append(f"field: {error.field}")
    if error is not None and error.rule:
        lines.append(f"rule: {error.rule}")
    lines.append("The document was not imported; fix it and drop it into the inbox again.")
    return "\n".join(lines) + "\n"


# -- demo -----------------------------------------------------------------------------------------
DEMO_BUYERS = (
    # syntax, container, currency, net, buyer
    ("ubl", "xml", "EUR", Decimal("12500.00"), {"name": "Müller Maschinenbau GmbH", "country": "DE", "city": "Köln",
                                                "vat_id": "DE136695976", "legal_id": "HRB 12345",
                                                "legal_id_scheme": "0204"}),
    ("cii", "pdf", "EUR", Decimal("8400.00"), {"name": "Boulangeries Réunies SA", "country": "FR", "city": "Lyon",
                                               "vat_id": "FR40303265045", "legal_id": "303265045",
                                               "legal_id_scheme": "0002"}),
    ("cii", "xml", "GBP", Decimal("5200.00"), {"name": "Thames Logistics Ltd", "country": "GB", "city": "London",
                                               "vat_id": "GB980780684", "legal_id": "04567891",
                                               "legal_id_scheme": "0088"}),
    ("ubl", "xml", "CHF", Decimal("9900.00"), {"name": "Alpen Präzision AG", "country": "CH", "city": "Bern",
                                               "vat_id": "CHE116281710", "legal_id": "CHE116281710",
                                               "legal_id_scheme": "0183"}),
    ("zugferd1", "xml", "EUR", Decimal("4300.00"), {"name": "Hanse Handel KG", "country": "DE", "city": "Hamburg",
                                                    "vat_id": "DE811128135"}),
)


def demo_stage(ctx: Any) -> None:
    """Write sample e-invoices of every syntax (UBL, CII, ZUGFeRD 1, Factur-X PDF) into an inbox under
    ``ctx.folder``, due 30-60 days from today, plus one broken file; ingest the inbox twice and print a summary.

    Sets ``ctx.state["ingested_invoice_ids"]`` (store ids of the invoices stored by this stage) and
    ``ctx.state["einvoice_inbox"]`` (the inbox folder).
    """
    from connector.clock import today
    from connector.einvoice.samples import pdf_with_attachment, render
    from connector.money import Money

    base = today()
    inbox = ctx.folder / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    for index, (syntax, container, currency, net, buyer) in enumerate(DEMO_BUYERS, start=1):
        number = f"FE-{base.year}-{index:04d}"
        xml = render(syntax, number=number, issue_date=base - dt.timedelta(days=2),
                     due_date=base + dt.timedelta(days=28 + 7 * index), currency=currency, net=net, buyer=buyer)
        name = f"{number}.{syntax}.xml"
        if container == "pdf":
            xml, name = pdf_with_attachment(xml, "factur-x.xml"), f"{number}.pdf"
        (inbox / name).write_bytes(xml)
    (inbox / "truncated.xml").write_bytes(render("ubl", number="FE-BROKEN", issue_date=base, due_date=base,
                                                 currency="EUR", net=Decimal(1), buyer=DEMO_BUYERS[0][4])[:900])
    first = process_inbox(ctx.store, inbox, min_age_seconds=0)
    ctx.echo(f"  inbox: {len(first.processed)} e-invoices stored, {len(first.rejected)} rejected "
             f"(see inbox/rejected/*.error.txt)")
    ids = []
    for row in ctx.store.invoice_rows(where="source = 'file'"):
        ids.append(row["id"])
        due = Money.from_minor(row["amount_due_minor"], row["currency"])
        invoice = ctx.store.get_invoice(row["id"])
        document = ctx.store.einvoice_document(invoice.content_hash) or {}
        kind = f"{invoice.syntax}/{document.get('container', '?')} {invoice.profile}"
        ctx.echo(f"    {row['number']:<13} {kind:<26} {row['buyer_name'][:24]:<24} {row['buyer_country']} {due:>13} "
                 f"due {row['due_date']}")
    for entry in ctx.store.quarantined(limit=5):
        if entry["source"] == QUARANTINE_SOURCE:
            ctx.echo(f"    quarantined {Path(entry['location']).name}: {entry['reason'][:90]}")
    # the same files dropped again change nothing
    for done in (inbox / "processed").iterdir():
        shutil.copy(done, inbox / done.name)
    second = process_inbox(ctx.store, inbox, min_age_seconds=0)
    ctx.echo(f"  same files again: {len(second.processed)} moved, {ctx.store.count_invoices()} invoices in the "
             "store (idempotent)")
    ctx.state["ingested_invoice_ids"] = ids
    ctx.state["einvoice_inbox"] = str(inbox)
