"""Run source adapters once: store what they read, with the cursor in the same transaction.

``pull_source`` consumes an adapter's :meth:`~connector.adapter.Adapter.read` stream. Items are written
inside a ``BEGIN IMMEDIATE`` transaction that is committed at each :class:`~connector.adapter.Checkpoint`
together with its cursor (and at the end with the returned cursor). A crash or an error mid-read rolls
back to the last checkpoint; the next run re-reads from there and the store's content fingerprints make
the re-read harmless: nothing is skipped, nothing is stored twice.

Rejected records are quarantined (source, location, reason) and the read goes on. Status changes
(paid, cancelled, credited...) go through ``store.set_erp_status`` and are audited, so later stages can
tell the factor. A credit note naming the invoice it corrects marks that invoice ``credited`` (or
``partially_credited``). Writes: invoices, invoice versions, quarantine, cursors, audit rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from connector.adapter import Adapter, Checkpoint, Rejected, StatusChange, invoice_text_problem
from connector.errors import CessioError, ConfigError, Quarantine, StopAndAsk
from connector.model import Invoice, InvoiceKind, invoice_texts
from connector.money import Money

log = logging.getLogger("cessio.pull")

CREDIT_STATUSES = ("credited", "partially_credited")
SAVE_BATCH = 500  # plain invoices saved with one store.save_invoices call (inside the checkpoint's transaction)


@dataclass
class PullSummary:
    """What one run of one source did."""

    source: str
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    quarantined: int = 0
    status_changes: int = 0
    checkpoints: int = 0
    written_back: int = 0  # pending ERP write-backs completed before the read (see resume_writebacks)
    error: str | None = None
    cursor: Any = None
    events: list[dict[str, Any]] = field(default_factory=list)  # status changes, for the log and the desk

    @property
    def records(self) -> int:
        return self.new + self.changed + self.unchanged + self.quarantined

    def line(self) -> str:
        text = (f"{self.source}: {self.new} new, {self.changed} changed, {self.unchanged} unchanged, "
                f"{self.quarantined} quarantined, {self.status_changes} status changes")
        if self.written_back:
            text += f", {self.written_back} pending payment(s) written back to the ERP"
        return text + (f" — FAILED: {self.error}" if self.error else "")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("events")
        return data


def build_adapter(name: str, source: dict[str, Any], company: dict[str, Any] | None = None) -> Adapter:
    """The configured adapter of ``[sources.NAME]`` (the ``[company]`` section is handed over too)."""
    from connector.registry import adapter_class

    try:
        cls = adapter_class(source["type"])
    except KeyError as exc:
        raise ConfigError(str(exc.args[0]), key=f"sources.{name}.type") from None
    options = dict(source)
    options["_company"] = dict(company or {})
    return cls(name=name, options=options)


def pull_source(store: Any, adapter: Adapter, *, progress: Callable[[int], None] | None = None) -> PullSummary:
    """Read ``adapter`` once from its saved cursor and store everything; returns the summary.

    Errors of the adapter (``RetryLater``, ``StopAndAsk``) propagate after the current batch is rolled
    back: the cursor then still points at the last committed checkpoint.
    """
    summary = PullSummary(source=adapter.name)
    with store.transaction():
        store.register_source(adapter.name, adapter.type_name or type(adapter).__name__)
    cursor = store.get_cursor(adapter.name)
    stream = adapter.read(cursor)
    resolves = getattr(adapter, "stable_locations", False)
    finished = False
    pending: dict[str, Invoice] = {}  # plain invoices saved together (store.save_invoices), in order

    def flush() -> None:
        if pending:
            _save_batch(store, adapter, list(pending.values()), summary, resolves)
            pending.clear()

    try:
        while not finished:
            with store.transaction():
                while True:
                    try:
                        item = next(stream)
                    except StopIteration as stop:
                        flush()
                        summary.cursor = stop.value
                        store.save_cursor(adapter.name, stop.value)
                        store.audit("source.pulled", f"source:{adapter.name}", summary.to_dict())
                        finished = True
                        break
                    if isinstance(item, Checkpoint):
                        flush()
                        summary.cursor = item.cursor
                        summary.checkpoints += 1
                        store.save_cursor(adapter.name, item.cursor)
                        break
                    if _batchable(item) and item.invoice_key not in pending:
                        pending[item.invoice_key] = item
                        if len(pending) >= SAVE_BATCH:
                            flush()
                    else:  # anything else keeps its place in the stream: what came before is saved first
                        flush()
                        _handle(store, adapter, item, summary, resolves)
                    if progress is not None:
                        progress(1)
    finally:
        stream.close()
        adapter.close()
    return summary


# Every character invoice_text_problem refuses shows in an invoice's canonical JSON either escaped (\n, \t,
# \u0001 ...: a backslash) or as itself (U+007F-U+009F, surrogates, U+FFFE/U+FFFF): an invoice whose JSON has
# none of these is clean, and the store needs that JSON anyway. Anything else (a backslash or a quote in a
# name included) only means the exact check runs.
_RAW_UNSAFE = re.compile("[\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def _surely_clean(text: str) -> bool:
    if "\\" in text:
        return False
    if text.isascii():  # O(1) in CPython; then only DEL is left to look for
        return "\x7f" not in text
    return _RAW_UNSAFE.search(text) is None


def _batchable(item: Any) -> bool:
    """An invoice that needs nothing but saving (a credit note naming its invoice, or a text to refuse, is
    handled on its own, in stream order)."""
    return (isinstance(item, Invoice) and not (item.kind is InvoiceKind.CREDIT_NOTE and item.preceding_invoices)
            and (_surely_clean(invoice_texts(item)[0]) or invoice_text_problem(item) is None))


def _save_batch(store: Any, adapter: Adapter, invoices: list[Invoice], summary: PullSummary,
                resolves: bool) -> None:
    """What :func:`_handle` does for each invoice, for a batch of distinct plain invoices at once."""
    befores = store.erp_statuses_of([item.invoice_key for item in invoices])
    items = []
    for item in invoices:
        before = befores.get(item.invoice_key)
        if before in CREDIT_STATUSES and item.erp_status in ("open", "partially_paid"):
            item = dataclasses.replace(item, erp_status=before)  # the credit note stands (see _handle)
        items.append(item)
    for item, result in zip(items, store.save_invoices(items), strict=True):
        setattr(summary, result.status, getattr(summary, result.status) + 1)
        before = befores.get(item.invoice_key)
        if before is not None and item.erp_status is not None and before != item.erp_status:
            _status_event(summary, item.invoice_key, before, item.erp_status)
        if resolves and item.source_id:
            store.resolve_quarantine(source=adapter.name, location=f"{adapter.name}:{item.source_id}")


def _handle(store: Any, adapter: Adapter, item: Any, summary: PullSummary, resolves: bool) -> None:
    if isinstance(item, Invoice):
        problem = invoice_text_problem(item)
        if problem is not None:  # the safety net for every adapter: never store what breaks a later file
            location = f"{adapter.name}:{item.source_id or item.number}"
            _handle(store, adapter, Rejected(location, Quarantine(
                problem[1], source=location, field=problem[0], rule="text.control_character")), summary, resolves)
            return
        before = store.erp_status_of(item.invoice_key)
        if before in CREDIT_STATUSES and item.erp_status in ("open", "partially_paid"):
            # the ERP row still shows the amount before its credit note; the credit note stands
            item = dataclasses.replace(item, erp_status=before)
        result = store.save_invoice(item)
        setattr(summary, result.status, getattr(summary, result.status) + 1)
        if before is not None and item.erp_status is not None and before != item.erp_status:
            _status_event(summary, item.invoice_key, before, item.erp_status)
        if resolves and item.source_id:
            store.resolve_quarantine(source=adapter.name, location=f"{adapter.name}:{item.source_id}")
        if item.kind is InvoiceKind.CREDIT_NOTE and item.preceding_invoices:
            _mark_credited(store, item, summary)
    elif isinstance(item, StatusChange):
        key = store.invoice_key_by_source_id(adapter.name, item.source_id)
        if key is None:
            return  # never pulled (e.g. cancelled before it was posted): nothing to tell a factor
        before = store.erp_status_of(key)
        if before != item.status:
            store.set_erp_status(key, item.status)
            _status_event(summary, key, before, item.status)
    elif isinstance(item, Rejected):
        store.quarantine(item.error, source=adapter.name, location=item.location, content=item.content)
        summary.quarantined += 1
        log.warning("quarantined %s: %s", item.location, item.error.reason)
    else:
        raise StopAndAsk(f"source {adapter.name} yielded {type(item).__name__}, not a read item")


def _status_event(summary: PullSummary, key: str, before: str | None, after: str) -> None:
    summary.status_changes += 1
    summary.events.append({"invoice_key": key, "from": before, "to": after})


def _mark_credited(store: Any, credit: Invoice, summary: PullSummary) -> None:
    """A posted credit note naming its invoice: the receivable is reduced (a factor must hear of it)."""
    for number in credit.preceding_invoices:
        key = f"{credit.seller.key}|{InvoiceKind.INVOICE.value}|{number.strip()}"
        row = store.invoice_amounts_by_key(key)
        if row is None or row["currency"] != credit.currency:
            continue
        invoice_total = Money.from_minor(row["total_gross_minor"], row["currency"])
        status = "credited" if credit.total_gross >= invoice_total else "partially_credited"
        if row["erp_status"] in ("paid", "cancelled", "credited") or row["erp_status"] == status:
            continue
        store.set_erp_status(key, status)
        _status_event(summary, key, row["erp_status"], status)


def pull(config: Any, store: Any, *, source: str | None = None,
         progress_factory: Callable[[str], Any] | None = None) -> list[PullSummary]:
    """Run every enabled source (or only ``source``) once. A failing source is reported in its
    summary and the others still run; a configuration error stops everything."""
    sources = config.sources or {}
    if source is not None and source not in sources:
        raise ConfigError(f"no source named {source!r} (configured: {', '.join(sorted(sources)) or 'none'})",
                          key="sources")
    summaries = []
    for name, options in sources.items():
        if source is not None and name != source:
            continue
        if source is None and not options.get("enabled", True):
            continue
        adapter = build_adapter(name, options, config.section("company"))
        started = dt.datetime.now(dt.UTC)
        resumed = resume_writebacks(store, adapter)  # before reading, so that the read sees them
        try:
            if progress_factory is not None:
                with progress_factory(name) as bar:
                    summary = pull_source(store, adapter, progress=bar.update)
            else:
                summary = pull_source(store, adapter)
        except ConfigError:
            raise
        except CessioError as exc:
            summary = PullSummary(source=name, error=str(exc))
            log.error("source %s failed: %s", name, exc)
        summary.written_back = resumed
        log.info("%s in %.1fs", summary.line(), (dt.datetime.now(dt.UTC) - started).total_seconds())
        summaries.append(summary)
    return summaries


def record_payment_in_erp(store: Any, adapter: Adapter, *, invoice_id: int, amount: Money, date: dt.date,
                          reference: str) -> str:
    """Write a reconciled payment back to the ERP exactly once, surviving crashes and timeouts.

    The intent is recorded first (``erp_writebacks``, pending); the adapter looks up ``reference`` before
    creating anything, so a retry after an ambiguous failure finds the first payment instead of making a
    second one; the ERP's id is then recorded and audited. Returns that id.
    """
    if not adapter.supports_write_back:
        raise StopAndAsk(f"source {adapter.name} ({adapter.type_name}) has no write-back")
    row = store.invoice_row(invoice_id)
    if row is None or row["source"] != adapter.name or not row["source_id"]:
        raise StopAndAsk(f"invoice {invoice_id} was not pulled from source {adapter.name}")
    with store.transaction():
        done = store.writeback_intent(adapter.name, reference, invoice_id=invoice_id, source_id=row["source_id"],
                                      amount=amount, date=date)
    if done is not None:
        return done
    erp_id = adapter.record_payment(source_id=row["source_id"], amount=amount, date=date, reference=reference)
    with store.transaction():
        store.writeback_done(adapter.name, reference, erp_id)
    return erp_id


def resume_writebacks(store: Any, adapter: Adapter) -> int:
    """Complete the write-backs of ``adapter``'s source left pending by a crash, a timeout or an ERP error
    (the ledger posting only writes back receipts it has just posted). Each goes through
    :func:`record_payment_in_erp` with its own reference, which the adapter looks up first: a payment the
    ERP did record is found, never made twice. A failure is logged and left pending for the next run.
    Returns how many were completed."""
    if not adapter.supports_write_back:
        return 0
    done = 0
    for row in store.pending_writebacks(adapter.name):
        try:
            record_payment_in_erp(store, adapter, invoice_id=row["invoice_id"],
                                  amount=Money.from_minor(row["amount_minor"], row["currency"]),
                                  date=dt.date.fromisoformat(row["payment_date"]), reference=row["reference"])
            done += 1
        except CessioError as exc:
            log.warning("write-back %s to %s still pending: %s", row["reference"], adapter.name, exc)
    return done
