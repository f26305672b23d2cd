"""Business-row integrity: what ``cessio check`` verifies beyond ``quick_check`` and the audit chain.

``quick_check`` proves the b-trees are well formed and the audit chain proves the audit rows are intact,
but a byte flipped inside an ``invoices`` or ``invoice_versions`` record passes both (docs/reliability.md,
finding 8). The business rows carry their own redundancy, and this module checks it:

- every invoice version: its ``data`` rebuilds an :class:`~connector.model.Invoice`, the fingerprint
  recomputed from that invoice equals the stored ``fingerprint``, and ``data`` is exactly the canonical
  text of the rebuilt invoice (what the store wrote);
- every ``invoices`` row: its denormalised columns equal what its current version says;
- every ledger piece (journal, piece_ref): debits equal credits, one currency, lines numbered 1..n;
- every statement line: its typed columns equal its stored ``data``; decided allocations never exceed it.

The reads are streamed in batches (one cursor, ``fetchmany``) inside one read transaction, so memory does
not grow with the store. The checks themselves are pure functions over one row (``check_*``), so they can
be tested without a store. Nothing here writes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from connector.errors import CessioError
from connector.model import Invoice, invoice_texts
from connector.money import Money

BATCH_ROWS = 1000
MAX_LISTED = 20

# invoices column -> how the current version gives it (the same mapping as InvoicesMixin.save_invoice);
# erp_status is left out on purpose: the ERP updates it on the row without a new version.
_DENORMALISED: tuple[tuple[str, Callable[[Invoice], Any]], ...] = (
    ("invoice_key", lambda inv: inv.invoice_key),
    ("source", lambda inv: inv.source),
    ("source_id", lambda inv: inv.source_id),
    ("number", lambda inv: inv.number),
    ("kind", lambda inv: inv.kind.value),
    ("type_code", lambda inv: inv.type_code),
    ("seller_key", lambda inv: inv.seller.key),
    ("buyer_key", lambda inv: inv.buyer.key),
    ("buyer_name", lambda inv: inv.buyer.name),
    ("buyer_country", lambda inv: inv.buyer.country),
    ("currency", lambda inv: inv.currency),
    ("issue_date", lambda inv: inv.issue_date.isoformat()),
    ("due_date", lambda inv: inv.due_date.isoformat() if inv.due_date else None),
    ("total_gross_minor", lambda inv: inv.total_gross.minor_units),
    ("amount_due_minor", lambda inv: inv.amount_due.minor_units),
)
_INVOICE_COLUMNS = ", ".join(f"i.{name} AS i_{name}" for name, _ in _DENORMALISED)


@dataclass(frozen=True)
class Mismatch:
    """One business row that does not agree with itself: ``table``, the row's id, and what differs."""

    table: str
    row: str
    problem: str

    def __str__(self) -> str:
        return f"{self.table} {self.row}: {self.problem}"


@dataclass
class BusinessVerdict:
    """The outcome of :meth:`IntegrityMixin.verify_business_rows`: counts, the first mismatches, the total."""

    counts: dict[str, int] = field(default_factory=dict)
    mismatches: list[Mismatch] = field(default_factory=list)  # at most ``max_listed`` of them
    total: int = 0  # every mismatch found, listed or not
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.total == 0

    def add(self, found: list[Mismatch], max_listed: int) -> None:
        self.total += len(found)
        room = max_listed - len(self.mismatches)
        if room > 0:
            self.mismatches.extend(found[:room])


# -- pure checks (one row each) -----------------------------------------------------------------------------

def _text(value: Any) -> Any:
    """Text columns are read as bytes (a scribbled byte may not be UTF-8, and sqlite3 would raise on the
    whole cursor); decode here, keeping undecodable bytes visible as their repr."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return repr(value[:40])
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _rebuild(data: Any, table: str, row: str) -> tuple[Any, Mismatch | None]:
    """``(decoded JSON, None)`` or ``(None, the mismatch saying why not)``."""
    if not isinstance(data, bytes):
        return None, Mismatch(table, row, f"data is {type(data).__name__}, not text")
    try:
        return json.loads(data.decode("utf-8")), None
    except UnicodeDecodeError:
        return None, Mismatch(table, row, "data is not valid UTF-8")
    except ValueError as exc:
        return None, Mismatch(table, row, f"data is not JSON ({exc})")


def check_invoice_version(row: Any) -> list[Mismatch]:
    """One ``invoice_versions`` row (columns ``v_*``) joined to its ``invoices`` row (``i_*``, NULL when
    there is none): the data rebuilds an invoice with the stored fingerprint and the same canonical text;
    when it is the current version, the invoice row's denormalised columns agree with it."""
    invoice_id, version = row["v_invoice_id"], row["v_version"]
    where = f"invoice_id={invoice_id} version={version}"
    data, broken = _rebuild(row["v_data"], "invoice_versions", where)
    if broken:
        return [broken]
    try:
        invoice = Invoice.from_dict(data)
        text, business = invoice_texts(invoice)
        columns = {name: expected_of(invoice) for name, expected_of in _DENORMALISED}
    except Exception as exc:  # any damage to the JSON shape (KeyError, ValueError, TypeError, MoneyError...)
        return [Mismatch("invoice_versions", where, f"data does not make an invoice ({type(exc).__name__}: {exc})")]
    found = []
    stored = _text(row["v_fingerprint"])
    recomputed = hashlib.sha256(business.encode()).hexdigest()
    if stored != recomputed:
        found.append(Mismatch("invoice_versions", where,
                              f"fingerprint {_short(stored[:16] + '…' if isinstance(stored, str) else stored)} does "
                              f"not match its data (recomputed {recomputed[:16]}…)"))
    if text != row["v_data"].decode("utf-8"):
        # the fingerprint covers the business fields only: a changed source field shows here
        found.append(Mismatch("invoice_versions", where, "data is not the canonical text of the invoice it holds"))
    content_hash = _text(row["v_content_hash"])
    if content_hash is not None and content_hash != invoice.content_hash:
        found.append(Mismatch("invoice_versions", where,
                              f"content_hash {_short(content_hash)}, data says {_short(invoice.content_hash)}"))
    current = row["i_current_version"]
    if current is None:
        found.append(Mismatch("invoice_versions", where, "no invoices row for this version"))
    elif version == current:
        for name, expected in columns.items():
            stored_value = _text(row[f"i_{name}"])
            if stored_value != expected or type(stored_value) is not type(expected):
                found.append(Mismatch("invoices", f"id={invoice_id}",
                                      f"{name} is {_short(stored_value)}, version {version} says {_short(expected)}"))
    elif not (isinstance(version, int) and isinstance(current, int) and 0 < version < current):
        # a version after the current one, or a current_version that is not a number: one of them changed
        found.append(Mismatch("invoice_versions", where, f"version does not fit current_version {_short(current)}"))
    return found


def check_invoice_row(row: Any) -> list[Mismatch]:
    """One ``invoices`` row: its current version exists (its columns are compared with that version's)."""
    if row["has_current"]:
        return []
    return [Mismatch("invoices", f"id={row['id']}",
                     f"no invoice_versions row for current_version {_short(_text(row['current_version']))}")]


def check_ledger_piece(row: Any) -> list[Mismatch]:
    """One ledger piece's aggregates: balanced, non-zero, one currency, lines 1..n, integer amounts."""
    where = f"journal={_text(row['journal'])!r} piece={_text(row['piece_ref'])!r}"
    found = []
    if row["bad_types"] or row["negatives"]:
        found.append(Mismatch("ledger_entries", where, "an amount is negative or not an integer"))
    if row["debit"] != row["credit"]:
        found.append(Mismatch("ledger_entries", where, f"debit {row['debit']} != credit {row['credit']}"))
    elif not row["debit"]:
        found.append(Mismatch("ledger_entries", where, "a piece of zero"))
    if row["currencies"] != 1:
        found.append(Mismatch("ledger_entries", where, f"{row['currencies']} currencies in one piece"))
    if row["first_line"] != 1 or row["last_line"] != row["lines"]:
        found.append(Mismatch("ledger_entries", where,
                              f"lines numbered {row['first_line']}..{row['last_line']} for {row['lines']} lines"))
    return found


def check_statement_line(row: Any) -> list[Mismatch]:
    """One ``statement_lines`` row: its typed columns equal its stored data; decided allocations within it."""
    where = f"id={row['id']}"
    data, broken = _rebuild(row["data"], "statement_lines", where)
    found = [broken] if broken else []
    if data is not None:
        try:
            amount = Money.parse(data["amount"]["amount"], data["amount"]["currency"])
            expected = {"account": data["account"], "booking_date": data["booking_date"],
                        "amount_minor": amount.minor_units, "currency": amount.currency,
                        "bank_reference": data.get("bank_reference")}
        except Exception as exc:  # damage to the JSON shape
            found.append(Mismatch("statement_lines", where, f"data does not make a line ({type(exc).__name__})"))
        else:
            for name, value in expected.items():
                stored = _text(row[name])
                if stored != value or type(stored) is not type(value):
                    found.append(Mismatch("statement_lines", where,
                                          f"{name} is {_short(stored)}, data says {_short(value)}"))
    amount, applied = row["amount_minor"], row["applied"]
    if isinstance(amount, int) and isinstance(applied, int) and (
            (amount >= 0 and not 0 <= applied <= amount) or (amount < 0 and not amount <= applied <= 0)):
        found.append(Mismatch("statement_lines", where,
                              f"decided allocations of {applied} minor units exceed the line's {amount}"))
    return found


# -- reads --------------------------------------------------------------------------------------------------

class IntegrityMixin:
    """Streaming reads for the business-row check; SQL only lives in connector/store/."""

    @contextlib.contextmanager
    def _text_as_bytes(self) -> Iterator[None]:
        """TEXT values come back as bytes while the check reads: a corrupt string must be one mismatch,
        not a UnicodeDecodeError that ends the cursor. The connection's usual factory is put back after."""
        previous = self.conn.text_factory
        self.conn.text_factory = bytes
        try:
            yield
        finally:
            self.conn.text_factory = previous

    def _batches(self, sql: str, batch: int) -> Iterator[list[sqlite3.Row]]:
        cursor = self._execute(sql)
        while rows := cursor.fetchmany(batch):
            yield rows

    def integrity_invoice_versions(self, *, batch: int = BATCH_ROWS) -> Iterator[list[sqlite3.Row]]:
        """Every invoice version with its invoice's denormalised columns, ``batch`` rows at a time."""
        return self._batches(
            "SELECT v.invoice_id AS v_invoice_id, v.version AS v_version, v.fingerprint AS v_fingerprint, "
            "v.content_hash AS v_content_hash, v.data AS v_data, i.current_version AS i_current_version, "
            f"{_INVOICE_COLUMNS} FROM invoice_versions v LEFT JOIN invoices i ON i.id = v.invoice_id", batch)

    def integrity_invoices(self, *, batch: int = BATCH_ROWS) -> Iterator[list[sqlite3.Row]]:
        """Every invoice with whether its ``current_version`` row exists (the join from the versions
        cannot show an invoice whose current version is missing)."""
        return self._batches(
            "SELECT i.id, i.current_version, EXISTS (SELECT 1 FROM invoice_versions v WHERE v.invoice_id = i.id "
            "AND v.version = i.current_version) AS has_current FROM invoices i", batch)

    def integrity_ledger_pieces(self, *, batch: int = BATCH_ROWS) -> Iterator[list[sqlite3.Row]]:
        """Per ledger piece: line count and numbering, debit and credit totals, currencies, odd amounts.
        ``total()`` rather than ``sum()``: a scribbled huge amount must not abort the read with an overflow
        (it still makes the piece unbalanced)."""
        return self._batches(
            "SELECT journal, piece_ref, count(*) AS lines, min(line_no) AS first_line, max(line_no) AS last_line, "
            "CAST(total(debit_minor) AS INTEGER) AS debit, CAST(total(credit_minor) AS INTEGER) AS credit, "
            "count(DISTINCT currency) AS currencies, "
            "sum(debit_minor < 0 OR credit_minor < 0) AS negatives, "
            "sum(typeof(debit_minor) != 'integer' OR typeof(credit_minor) != 'integer') AS bad_types "
            "FROM ledger_entries GROUP BY journal, piece_ref", batch)

    def integrity_statement_lines(self, *, batch: int = BATCH_ROWS) -> Iterator[list[sqlite3.Row]]:
        """Every statement line with the total of its decided allocations (the line invariant)."""
        return self._batches(
            "SELECT l.id, l.account, l.booking_date, l.amount_minor, l.currency, l.bank_reference, l.data, "
            "(SELECT CAST(total(a.amount_minor) AS INTEGER) FROM allocations a WHERE a.line_id = l.id "
            "AND a.active = 1 AND a.status IN ('auto', 'manual')) AS applied FROM statement_lines l", batch)

    def verify_business_rows(self, *, max_listed: int = MAX_LISTED) -> BusinessVerdict:
        """Check every business row (module docstring) in one read transaction; lists at most
        ``max_listed`` mismatches and counts them all. A read that fails (a malformed page) becomes a
        mismatch of that table and the other tables are still checked."""
        started = time.perf_counter()
        verdict = BusinessVerdict()
        passes: tuple[tuple[str, str, Callable[[], Iterator[list[sqlite3.Row]]], Callable[[Any], list[Mismatch]]],
                      ...] = (
            ("invoices", "invoices", self.integrity_invoices, check_invoice_row),
            ("invoice_versions", "versions", self.integrity_invoice_versions, check_invoice_version),
            ("ledger_entries", "ledger pieces", self.integrity_ledger_pieces, check_ledger_piece),
            ("statement_lines", "statement lines", self.integrity_statement_lines, check_statement_line),
        )
        with self.snapshot(), self._text_as_bytes():
            for table, label, read, check in passes:
                seen = 0
                try:
                    for rows in read():
                        for row in rows:
                            seen += 1
                            try:
                                found = check(row)
                            except Exception as exc:  # a check must name the row, never end the whole pass
                                found = [Mismatch(table, f"row #{seen}", f"could not be checked: {exc!r}"[:200])]
                            if found:
                                verdict.add(found, max_listed)
                except (sqlite3.Error, CessioError, UnicodeDecodeError) as exc:
                    # a corrupt file fails inside SQLite mid-read, and its message may not even be UTF-8
                    verdict.add([Mismatch(table, f"after {seen} rows", f"could not be read: {exc}")], max_listed)
                verdict.counts[label] = seen
        verdict.seconds = time.perf_counter() - started
        return verdict
