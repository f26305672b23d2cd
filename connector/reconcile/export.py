"""The reconciliation log for finance staff: one row per allocation, CSV or JSON.

Reads: active allocations with their statement lines and invoices (``Store.recon_export_rows``), and lines
not run through the engine yet. Writes: rows whose first columns are the public interface (docs
interfaces.md), in this order::

    statement_line_id, line_date, line_amount, line_currency, counterparty, remittance, invoice_number,
    allocated_amount, status, rule, confidence

followed by ``writeoff_amount, writeoff_kind, unapplied_amount, invoice_amount, invoice_currency, evidence,
decided_by, decided_at, allocation_id, line_status, account``.

``statement_line_id`` is the bank's own reference (camt ``AcctSvcrRef``, MT940 after ``//``) or, where the
file gives none (CFONB), the line's content identity. ``allocated_amount`` is the cash of that line applied
to that document, in the statement's currency: a fee or discount short payment and a partial payment
allocate what was received (the write-off is in ``writeoff_amount``, booked, not allocated), a credit note
netted by the payer is negative. A line without a document has one row with an empty ``invoice_number``
and ``allocated_amount`` 0; what it leaves unapplied is in ``unapplied_amount``. Suggested alternatives
are listed with status ``suggested`` (they apply nothing until a person accepts one).
"""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from typing import IO, Any

from connector.errors import ConfigError
from connector.money import minor_unit_exponent

COLUMNS = ("statement_line_id", "line_date", "line_amount", "line_currency", "counterparty", "remittance",
           "invoice_number", "allocated_amount", "status", "rule", "confidence")
EXTRA_COLUMNS = ("writeoff_amount", "writeoff_kind", "unapplied_amount", "invoice_amount", "invoice_currency",
                 "evidence", "decided_by", "decided_at", "allocation_id", "line_status", "account")
FILTERS = ("date_from", "date_to", "account", "status", "rule", "currency", "amount_min", "amount_max", "debtor",
           "line_id")


def _amount(minor: int | None, currency: str | None) -> str:
    if minor is None or not currency:
        return ""
    exponent = minor_unit_exponent(currency)
    return f"{Decimal(minor).scaleb(-exponent):.{exponent}f}"


def _minor(value: int | str | None, currency: str | None) -> int | None:
    """A typed amount filter (``"12.50"``) in minor units; ints are minor units already."""
    if value in (None, ""):
        return None
    if isinstance(value, int):
        return value
    from connector.money import Money

    return Money.parse(str(value).replace(",", "."), currency or "EUR").minor_units


def _line_id(row: dict[str, Any]) -> str:
    return row["bank_reference"] or row["identity"].split("|", 1)[-1]


def reconciliation_rows(store: Any, *, date_from: str | None = None, date_to: str | None = None,
                        account: str | None = None, status: str | None = None, rule: str | None = None,
                        currency: str | None = None, amount_min: int | str | None = None,
                        amount_max: int | str | None = None, debtor: str | None = None,
                        line_id: int | None = None) -> list[dict[str, str]]:
    """The log rows (filters as the review desk's; amounts as minor units), in booking-date order."""
    amount_min, amount_max = (_minor(v, currency) for v in (amount_min, amount_max))
    filters = {"date_from": date_from, "date_to": date_to, "account": account, "status": status, "rule": rule,
               "currency": currency, "amount_min": amount_min, "amount_max": amount_max, "debtor": debtor,
               "line_id": line_id}
    with store.snapshot():
        rows = store.recon_export_rows(filters)
        bare = [] if (status or rule or debtor or amount_min or amount_max or line_id) else \
            store.recon_lines_without_allocation(filters)
    out = []
    for row in rows:
        line_currency = row["line_currency"]
        has_invoice = row["invoice_number"] is not None
        evidence = json.loads(row["evidence"] or "[]")
        out.append({
            "statement_line_id": _line_id(row), "line_date": row["booking_date"],
            "line_amount": _amount(row["line_amount_minor"], line_currency), "line_currency": line_currency,
            "counterparty": row["counterparty_name"] or "", "remittance": row["remittance"] or "",
            "invoice_number": row["invoice_number"] or "",
            "allocated_amount": _amount(row["amount_minor"] if has_invoice else 0, line_currency),
            "status": row["status"], "rule": row["rule"] or "", "confidence": row["confidence"] or "",
            "writeoff_amount": _amount(row["writeoff_minor"], row["invoice_currency"] or line_currency)
            if row["writeoff_minor"] else "",
            "writeoff_kind": row["writeoff_kind"] or "",
            "unapplied_amount": "" if has_invoice else _amount(row["amount_minor"], line_currency),
            "invoice_amount": _amount(row["invoice_amount_minor"], row["invoice_currency"]) if has_invoice else "",
            "invoice_currency": row["invoice_currency"] or "",
            "evidence": "; ".join(e if isinstance(e, str) else json.dumps(e, ensure_ascii=False, sort_keys=True)
                                  for e in evidence), "decided_by": row["decided_by"] or "",
            "decided_at": row["decided_at"] or "",
            "allocation_id": str(row["allocation_id"]), "line_status": row["match_status"], "account": row["account"],
        })
    for row in bare:
        line_currency = row["line_currency"]
        out.append({
            "statement_line_id": _line_id(row), "line_date": row["booking_date"],
            "line_amount": _amount(row["line_amount_minor"], line_currency), "line_currency": line_currency,
            "counterparty": row["counterparty_name"] or "", "remittance": row["remittance"] or "",
            "invoice_number": "", "allocated_amount": _amount(0, line_currency), "status": "unmatched",
            "rule": "not_reconciled_yet" if row["match_status"] == "open" else f"line_{row['match_status']}",
            "confidence": "", "writeoff_amount": "", "writeoff_kind": "",
            "unapplied_amount": _amount(row["line_amount_minor"], line_currency), "invoice_amount": "",
            "invoice_currency": "", "evidence": "", "decided_by": "", "decided_at": "", "allocation_id": "",
            "line_status": row["match_status"], "account": row["account"]})
    if bare:
        out.sort(key=lambda r: (r["line_date"], r["statement_line_id"]))
    return out


def write_reconciliation(rows: list[dict[str, str]], fp: IO[str], fmt: str) -> None:
    """CSV (header, then one row per allocation) or JSON (a list of objects), columns in interface order."""
    columns = COLUMNS + EXTRA_COLUMNS
    if fmt == "csv":
        writer = csv.DictWriter(fp, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    elif fmt == "json":
        json.dump([{k: row.get(k, "") for k in columns} for row in rows], fp, ensure_ascii=False, indent=1)
        fp.write("\n")
    else:
        raise ConfigError(f"unknown export format {fmt!r} (csv or json)", key="format")
