"""Small builders of canonical objects for tests (not test doubles: real model objects)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from connector.model import Invoice, Party
from connector.money import Money

SELLER = Party(name="Cessio Demo SAS", country="FR", legal_id="732829320", legal_id_scheme="0002",
               vat_id="FR44732829320")
BUYER = Party(name="Kunde GmbH", country="DE", vat_id="DE123456789")


def make_invoice(number: str = "F2026-0001", amount: str = "1200.00", currency: str = "EUR", *,
                 kind: str = "invoice", buyer: Party = BUYER, seller: Party = SELLER,
                 issue: dt.date = dt.date(2026, 11, 1), due: dt.date | None = dt.date(2026, 12, 31),
                 **changes) -> Invoice:
    money = Money.parse(amount, currency)
    invoice = Invoice(
        number=number, kind=kind, type_code="381" if kind == "credit_note" else "380",
        issue_date=issue, due_date=due, currency=currency, total_gross=money, amount_due=money,
        seller=seller, buyer=buyer, source="test", source_id=number)
    return dataclasses.replace(invoice, **changes) if changes else invoice
