"""A deterministic factoring portfolio written straight into a store, for the report tests and screenshots.

Invoices go through ``Store.save_invoice``; the other rows (factor events, limits, assignments, statement
lines, allocations, decisions) are inserted with plain SQL because the report only *reads* them and this
fixture must not depend on the pipeline stages that normally write them. It is test data, not a double.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
from typing import Any

from connector.clock import utc_iso
from connector.model import Party
from connector.money import Money
from tests.factories import make_invoice

COUNTRIES = ("FR", "FR", "FR", "DE", "DE", "IT", "ES", "BE")
DECLINE_REASONS = ("LIMIT_EXCEEDED", "DEBTOR_UNKNOWN", "DISPUTED", "TENOR_TOO_LONG")
REFUSALS = ("no_debtor_limit", "overdue", "currency_not_accepted", "concentration", "intra_group")


def _insert(store: Any, table: str, row: dict[str, Any]) -> int:
    names = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    return store.conn.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(row.values())).lastrowid


def seed_portfolio(store: Any, as_of: dt.date, *, seed: int = 7, invoices: int = 240) -> dict[str, Any]:
    """About a year of invoicing to 24 debtors, half financed, most paid; returns a few known totals."""
    rng = random.Random(seed)
    debtors = [Party(name=f"Client {i:02d}", country=COUNTRIES[i % len(COUNTRIES)], vat_id=f"XX{i:09d}")
               for i in range(24)]
    now = utc_iso()
    totals = {"invoices": 0, "paid": 0}
    line_no = 0
    with store.transaction():
        statement_id = _insert(store, "statements", {
            "account": "FR7630006000011234567890189", "format": "camt.053", "currency": "EUR",
            "content_sha256": "0" * 64, "imported_at": now})
        for debtor in debtors[:20]:
            _insert(store, "debtor_limits", {
                "factor": "sandbox", "debtor_key": debtor.key,
                "status": "approved" if rng.random() < 0.85 else "declined",
                "amount_minor": rng.choice((20_000, 50_000, 80_000)) * 100, "currency": "EUR",
                "decided_at": now})
        for n in range(invoices):
            debtor = debtors[min(int(rng.paretovariate(1.2)) - 1, len(debtors) - 1) if rng.random() < 0.6
                             else rng.randrange(len(debtors))]
            issue = as_of - dt.timedelta(days=rng.randrange(5, 365))
            terms = rng.choice((30, 45, 60))
            amount = Money.of(rng.randrange(50_000, 2_500_000), "EUR").amount / 100
            invoice = dataclasses.replace(make_invoice(f"F{n:05d}", str(amount), buyer=debtor, issue=issue,
                                                       due=issue + dt.timedelta(days=terms)))
            saved = store.save_invoice(invoice)
            totals["invoices"] += 1
            # later in the year debtors pay a little later: the DSO trend is not flat
            delay = int(rng.gauss(6 + (issue - (as_of - dt.timedelta(days=365))).days / 40, 9))
            paid_on = invoice.due_date + dt.timedelta(days=delay)
            financed = rng.random() < 0.55
            if financed:
                amount_minor = invoice.amount_due.minor_units
                state = "declined" if rng.random() < 0.08 else "accepted"
                _insert(store, "assignments", {
                    "invoice_id": saved.invoice_id, "invoice_key": invoice.invoice_key, "invoice_version": 1,
                    "factor": "sandbox", "idempotency_key": f"k-{n}", "amount_minor": amount_minor,
                    "currency": "EUR", "state": state, "next_attempt_at": now, "payload": "{}",
                    "created_at": f"{issue.isoformat()}T10:00:00+00:00", "updated_at": now})
                if state == "declined":
                    _insert(store, "factor_events", {
                        "factor": "sandbox", "event_id": f"d-{n}", "kind": "declined",
                        "invoice_key": invoice.invoice_key, "amount_minor": amount_minor, "currency": "EUR",
                        "reason_code": rng.choice(DECLINE_REASONS), "occurred_on": issue.isoformat(),
                        "received_at": now})
                else:
                    day = issue + dt.timedelta(days=2)
                    for kind, minor, vat in (("funding", amount_minor * 9 // 10, None),
                                             ("fee", amount_minor * 25 // 10_000, amount_minor * 5 // 10_000),
                                             ("interest", amount_minor * terms * 45 // 365_000, None),
                                             ("reserve_held", amount_minor // 10, None)):
                        _insert(store, "factor_events", {
                            "factor": "sandbox", "event_id": f"{kind}-{n}", "kind": kind,
                            "invoice_key": invoice.invoice_key, "amount_minor": minor, "vat_minor": vat,
                            "currency": "EUR", "occurred_on": day.isoformat(), "received_at": now})
                    if paid_on <= as_of:
                        _insert(store, "factor_events", {
                            "factor": "sandbox", "event_id": f"release-{n}", "kind": "reserve_released",
                            "invoice_key": invoice.invoice_key, "amount_minor": amount_minor // 10,
                            "currency": "EUR", "occurred_on": paid_on.isoformat(), "received_at": now})
            elif rng.random() < 0.5:
                _insert(store, "decisions", {
                    "invoice_id": saved.invoice_id, "version": 1, "factor": "sandbox", "eligible": 0,
                    "reasons": json.dumps([{"code": rng.choice(REFUSALS), "ok": False}]), "decided_at": now})
            if paid_on > as_of and rng.random() < 0.9:
                continue  # still open (most late invoices), a few paid early
            line_no += 1
            status = rng.choices(("auto", "suggested", "manual", "unmatched"), (85, 7, 5, 3))[0]
            line_id = _insert(store, "statement_lines", {
                "identity": f"line-{line_no}", "statement_id": statement_id, "account": "FR76...",
                "booking_date": min(paid_on, as_of).isoformat(), "amount_minor": invoice.amount_due.minor_units,
                "currency": "EUR", "data": "{}", "imported_at": now,
                "match_status": {"auto": "matched", "manual": "matched"}.get(status, "open" if status == "unmatched"
                                                                             else "suggested")})
            if status != "unmatched":
                _insert(store, "allocations", {
                    "line_id": line_id, "invoice_id": saved.invoice_id, "currency": "EUR", "status": status,
                    "amount_minor": invoice.amount_due.minor_units, "created_at": now})
                totals["paid"] += status in ("auto", "manual")
    return totals
