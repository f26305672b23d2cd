"""The fixed set of invoices, credit notes and payments every golden bordereau file is made from."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from connector.channels import bordereau
from connector.model import Address, Party
from tests.factories import make_invoice

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "channels"
GOLDEN = FIXTURES / "golden"
FILE_DATE = dt.date(2026, 11, 28)

DOMESTIC = Party(name="Société Générale d'Équipement", country="FR", legal_id="73282932000074",
                 legal_id_scheme="0009", vat_id="FR44732829320", erp_id="C0042",
                 address=Address(lines=("12 rue de la Paix",), city="Paris", postal_code="75002", country="FR"))
EXPORT = Party(name="Kunde GmbH", country="DE", vat_id="DE123456789", erp_id="C0099",
               address=Address(lines=("Hauptstraße 5",), city="München", postal_code="80331", country="DE"))

PARAMS: dict[str, Any] = {
    "client_number": "123456", "company_name": "Cessio Demo SAS", "company_id": "73282932000074",
    "company_id_type": "1", "company_country": "FR", "statement_date": dt.date(2026, 11, 27),
    "company_short": "CESSIO", "emitters": {"D": "12345", "E": "12346"},
    "buyer_ids": {DOMESTIC.key: "7000042", EXPORT.key: "7000099"},
}
# Eurofactor's client code is 5 characters
LAYOUT_PARAMS = {"eurofactor": {**PARAMS, "client_number": "54321"}}


def sample_invoices():
    return [
        make_invoice("F2026-0001", "1200.00", buyer=DOMESTIC, order_reference="PO-2026-17"),
        make_invoice("F2026-0002", "349.99", buyer=DOMESTIC, due=dt.date(2027, 1, 15)),
        make_invoice("F2026-0003", "5000.00", buyer=EXPORT, buyer_reference="KD-REF-1"),
        make_invoice("AV2026-0001", "100.00", kind="credit_note", buyer=DOMESTIC,
                     preceding_invoices=("F2026-0001",)),
    ]


def build_batch(store, factor: str = "bpce", *, with_payment: bool = True) -> int:
    """Save the sample set and close it into one batch (with a payment reported in confidential mode)."""
    with store.transaction():
        ids = [store.save_invoice(invoice).invoice_id for invoice in sample_invoices()]
        payments = {ids[1]: {"amount": "49.99", "payment_date": "2026-11-20", "reference": "VIR-77"}} \
            if with_payment else None
        return store.channel_claim_batch(factor, "file", bordereau.claim_items(store, ids, payments=payments))


def params_for(layout: str) -> dict[str, Any]:
    return LAYOUT_PARAMS.get(layout, PARAMS)
