"""Builders for reconciliation tests: invoices in a real store, statement lines through a real camt.053 file."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from itertools import count
from typing import Any

from connector.config import parse_config
from connector.model import Party
from connector.reconcile.generator import camt053_bytes
from connector.reconcile.importing import import_bytes
from tests.factories import make_invoice

ACCOUNT = "FR7630006000011234567890189"
DAY = dt.date(2026, 11, 27)
_refs = count(1)


def debtor(name: str, vat: str, iban: str | None = None) -> Party:
    return Party(name=name, country="DE", vat_id=vat, ibans=(iban,) if iban else ())


def add_invoices(store: Any, *specs: tuple[str, str] | tuple[str, str, dict]) -> dict[str, int]:
    """(number, amount[, changes]) → invoice ids by number."""
    ids = {}
    with store.transaction():
        for spec in specs:
            number, amount, *rest = spec
            changes = rest[0] if rest else {}
            ids[number] = store.save_invoice(make_invoice(number, amount, **changes)).invoice_id
    return ids


def line(amount: str, text: str | None = None, **extra: Any) -> dict[str, Any]:
    data = {"ref": f"T{next(_refs):07d}", "amount": Decimal(amount), "currency": "EUR", "name": None, "iban": None,
            "text": text, "sref": None, "e2e": None, "charges": None, "instructed": None, "code": "PMNT/RCDT/ESCT",
            "date": DAY}
    data.update(extra)
    return data


def import_lines(store: Any, lines: list[dict[str, Any]], *, statement_id: str | None = None) -> dict[str, int]:
    """Import the lines as one camt.053 statement; returns line ids by bank reference."""
    sid = statement_id or f"S{next(_refs)}"
    data = camt053_bytes(lines, account=ACCOUNT, currency="EUR", opening=Decimal("1000.00"), message_id=sid,
                         statement_id=sid, created=DAY)
    result = import_bytes(store, data, file_name=f"{sid}.xml")
    assert result.error is None, result.error
    return {row["bank_reference"]: row["id"] for row in store.statement_line_rows(account=ACCOUNT)}


def config(extra: str = "") -> Any:
    return parse_config(f'[company]\nname = "Cessio Demo SAS"\n\n[reconciliation]\naccounts = ["{ACCOUNT}"]\n'
                        + extra)


def allocations(store: Any, line_id: int) -> list[tuple]:
    """(status, invoice number, amount minor, write-off) of the line's active allocations."""
    out = []
    for a in store.recon_line_allocations(line_id):
        number = store.invoice_row(a["invoice_id"])["number"] if a["invoice_id"] else None
        out.append((a["status"], number, a["amount_minor"], a["writeoff_minor"]))
    return out
