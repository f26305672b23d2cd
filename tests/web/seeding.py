"""Review-desk data for tests and ``bench/serve.py``: real invoices through ``Store.save_invoice`` and the
assignment methods, statement lines and suggested allocations written in one audited transaction.

Statement lines and allocations go in with plain SQL through the store's own connection because the
reconciliation area (issue 7) has no store method to create them yet; switch to its import and matching
functions when they exist. The rows have the exact shape of the 0001 schema.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

from connector.clock import utc_iso
from connector.model import Party
from tests.factories import make_invoice

DEBTORS = [Party(name="Kunde GmbH", country="DE", vat_id="DE123456789"),
           Party(name="Client Lyonnais SARL", country="FR", vat_id="FR40303265045"),
           Party(name="Cliente Roma SpA", country="IT", vat_id="IT00743110157")]


@dataclass
class Seeded:
    invoices: dict[str, int] = field(default_factory=dict)  # number -> id
    lines: list[int] = field(default_factory=list)
    suggestions: dict[int, list[int]] = field(default_factory=dict)  # line id -> allocation ids


def seed_desk(store, *, lines: int = 3, invoices: int = 6, batch: int = 5000) -> Seeded:
    """``invoices`` EUR invoices and ``lines`` open statement lines; each line has two suggested candidates."""
    seeded = Seeded()
    now = utc_iso()
    with store.transaction():
        for i in range(invoices):
            number = f"F2026-{i + 1:04d}"
            amount = f"{1000 + 250 * (i % 7)}.{(i * 37) % 100:02d}"
            result = store.save_invoice(make_invoice(number, amount, buyer=DEBTORS[i % len(DEBTORS)],
                                                     issue=dt.date(2026, 10, 1) + dt.timedelta(days=i % 50)))
            seeded.invoices[number] = result.invoice_id
        cursor = store._execute(
            "INSERT INTO statements (account, statement_id, format, currency, from_date, to_date, content_sha256, "
            "imported_at) VALUES ('FR7630006000011234567890189', 'STMT-1', 'camt.053', 'EUR', '2026-11-01', "
            "'2026-11-27', ?, ?)", ("0" * 64, now))
        statement_id = cursor.lastrowid
        numbers = list(seeded.invoices)
        amounts = {r["id"]: r["amount_due_minor"] for r in store._all("SELECT id, amount_due_minor FROM invoices")}
        for start in range(0, lines, batch):
            line_rows, alloc_rows = [], []
            for n in range(start, min(lines, start + batch)):
                first = seeded.invoices[numbers[n % len(numbers)]]
                second = seeded.invoices[numbers[(n + 1) % len(numbers)]]
                paid = amounts[first] + amounts[second] if n % 3 == 2 else amounts[first] - (250 if n % 3 else 0)
                if lines > 1000:  # a big store: about three years of statements, oldest first
                    day = dt.date(2026, 11, 27) - dt.timedelta(days=(lines - 1 - n) * 1000 // lines)
                else:
                    day = dt.date(2026, 11, 1) + dt.timedelta(days=n % 27)
                line_rows.append((f"seed:{n}", statement_id, "FR7630006000011234567890189", f"BR{n:08d}",
                                  day.isoformat(), paid, "EUR", DEBTORS[n % len(DEBTORS)].name,
                                  f"PAYMENT {numbers[n % len(numbers)]}", "{}", "suggested", now))
            first_id = store._scalar("SELECT coalesce(max(id), 0) FROM statement_lines") + 1
            store.conn.executemany(
                "INSERT INTO statement_lines (identity, statement_id, account, bank_reference, booking_date, "
                "amount_minor, currency, counterparty_name, remittance, data, match_status, imported_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", line_rows)
            for offset, row in enumerate(line_rows):
                line_id = first_id + offset
                n = start + offset
                first = seeded.invoices[numbers[n % len(numbers)]]
                second = seeded.invoices[numbers[(n + 1) % len(numbers)]]
                fee = 250 if n % 3 == 1 else 0  # paid 2.50 short: bank fee
                first_cash = amounts[first] - fee
                second_cash = amounts[second] if n % 3 == 2 else row[5]  # n % 3 == 2: one payment, two invoices
                alloc_rows.append((line_id, first, first_cash, "EUR", fee, "fee" if fee else None, "suggested",
                                   "invoice_number_in_text", "0.82", json.dumps(
                                       [{"rule": "invoice_number_in_text", "found": numbers[n % len(numbers)],
                                         "where": "remittance"}, {"name_similarity": "0.91"},
                                        {"difference": f"-{fee // 100}.{fee % 100:02d} fee" if fee else "0.00"}])
                                   , now))
                alloc_rows.append((line_id, second, second_cash, "EUR", 0, None, "suggested", "amount_and_party",
                                   "0.41", json.dumps([{"rule": "amount_and_party", "name_similarity": "0.55"}]), now))
                seeded.lines.append(line_id)
            store.conn.executemany(
                "INSERT INTO allocations (line_id, invoice_id, amount_minor, currency, writeoff_minor, writeoff_kind, "
                "status, rule, confidence, evidence, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", alloc_rows)
        for row in store._all("SELECT id, line_id FROM allocations"):
            seeded.suggestions.setdefault(row["line_id"], []).append(row["id"])
        store.audit("test.seeded", None, {"lines": lines, "invoices": invoices})
    return seeded
