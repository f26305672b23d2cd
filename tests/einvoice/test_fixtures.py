"""The project's own hand-written e-invoices (one per syntax, container and edge case) against the golden
JSON beside each one: the exact ``cessio inspect`` object (official rules off: they are tested apart).

Regenerate after a deliberate change with ``CESSIO_REGEN_GOLDEN=1 pytest tests/einvoice/test_fixtures.py``
and review the diff: the golden files are the specification of what each document says.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from connector.ingest import inspect_file

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "einvoice"
DOCUMENTS = sorted(p for p in FIXTURES.iterdir() if p.suffix in (".xml", ".pdf"))


def _inspect(path: Path) -> dict:
    result = inspect_file(path, official=False)
    result["file"] = path.name
    return json.loads(json.dumps(result))


@pytest.mark.parametrize("path", DOCUMENTS, ids=[p.name for p in DOCUMENTS])
def test_fixture_matches_golden(path: Path) -> None:
    golden = path.with_suffix(path.suffix + ".json")
    result = _inspect(path)
    if os.environ.get("CESSIO_REGEN_GOLDEN"):
        golden.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert golden.exists(), f"no golden file {golden.name}; run with CESSIO_REGEN_GOLDEN=1 and review it"
    assert result == json.loads(golden.read_text(encoding="utf-8"))


def test_every_syntax_container_and_edge_case_has_a_fixture() -> None:
    results = {p.name: _inspect(p) for p in DOCUMENTS}
    ok = [r for r in results.values() if r["ok"]]
    assert {r["syntax"] for r in ok} == {"ubl", "cii", "zugferd1"}
    assert {r["container"] for r in ok} == {"xml", "pdf"}
    type_codes = {r["invoice"]["type_code"] for r in ok}
    assert {"380", "381", "383", "384", "386", "389", "393", "396", "875", "877"} <= type_codes
    assert {r["profile"] for r in ok} >= {"EN16931", "FX-MINIMUM", "FX-BASIC-WL", "FX-BASIC", "FX-EXTENDED",
                                          "XRECHNUNG-3.0", "PEPPOL-BIS3", "ZF1-COMFORT"}
    assert {r["invoice"]["seller"]["legal_id_scheme"] for r in ok} >= {"0002", "0009"}
    assert any(r["invoice"]["payee"] for r in ok)
    assert any(r["invoice"]["due_date_derived"] for r in ok)
    assert any(r["invoice"]["kind"] == "credit_note" and r["invoice"]["type_code"] == "380" for r in ok)
    assert any(r["invoice"]["preceding_invoices"] for r in ok)
    refused = [r for r in results.values() if not r["ok"]]
    assert all(r["error"].startswith("unsupported document:") for n, r in results.items()
               if n.startswith("unsupported-"))
    assert len(refused) >= 7


def test_sign_prepaid_rounding_and_vat_currency_read_as_stated() -> None:
    negative = _inspect(FIXTURES / "ubl-negative-380.xml")["invoice"]
    assert (negative["kind"], negative["type_code"], negative["amount_due"]) == ("credit_note", "380", "-300.00")
    two = _inspect(FIXTURES / "ubl-two-tax-totals.xml")["invoice"]
    assert two["total_tax"] == "200.00"  # not the SEK TaxTotal that comes first
    prepaid = _inspect(FIXTURES / "ubl-prepayment-386-rounding.xml")["invoice"]
    assert (prepaid["prepaid"], prepaid["amount_due"]) == ("200.00", "800.00")
    credit = _inspect(FIXTURES / "ubl-creditnote-381.xml")["invoice"]
    assert credit["due_date"] == "2026-03-20"  # CreditNote: BT-9 is PaymentMeans/PaymentDueDate
    assert credit["preceding_invoices"] == ["UBL-2026-001"]


def test_canonical_invoice_flags_for_factoring() -> None:
    from connector.einvoice.reader import read_document

    def read(name: str):
        return read_document((FIXTURES / name).read_bytes(), source=name).invoice

    factored = read("ubl-factored-393-payee.xml")
    assert {"factored", "payee_not_seller"} <= set(factored.flags) and factored.already_factored
    assert factored.payee.name == "Factor Affacturage SA" and factored.payee.legal_id == "383163897"
    negative = read("ubl-negative-380.xml")
    assert negative.is_credit_note and str(negative.amount_due.amount) == "300.00"
    assert "negative_invoice" in negative.flags
    assert "prepayment" in read("ubl-prepayment-386-rounding.xml").flags
    assert "self_billed" in read("cii-self-billed-389-bad-rf.xml").flags
    assert "validation_errors" in read("cii-br-co-16-broken.xml").flags
    jpy = read("cii-jpy.xml")
    assert jpy.amount_due.minor_units == 180000 and jpy.currency == "JPY"
    seller = read("ubl-invoice.xml").seller
    assert (seller.legal_id, seller.legal_id_scheme, seller.vat_id) == ("732829320", "0002", "FR44732829320")


def test_factored_credit_note_corrective_and_construction_codes() -> None:
    from connector.einvoice.reader import read_document

    def read(name: str):
        return read_document((FIXTURES / name).read_bytes(), source=name).invoice

    factored_credit = read("cii-basic-396-factored-credit-payee.xml")
    assert factored_credit.is_credit_note and factored_credit.already_factored
    assert {"factored", "payee_not_seller"} <= set(factored_credit.flags)
    corrective = read("cii-xrechnung-384-corrective-siret.xml")
    assert "correction" in corrective.flags and corrective.preceding_invoices == ("CII-2026-001",)
    assert (corrective.seller.legal_id, corrective.seller.legal_id_scheme) == ("73282932000074", "0009")
    assert "construction" in read("cii-basicwl-877-construction.xml").flags
    assert "debit_note" in read("ubl-383-debit-note-no-terms.xml").flags
    address = read("ubl-invoice.xml").seller.address
    assert (address.lines, address.city, address.postal_code, address.country) == (
        ("1 rue de la Paix",), "Paris", "75002", "FR")


def test_due_date_from_configured_default_terms_is_flagged_as_derived() -> None:
    path = FIXTURES / "ubl-383-debit-note-no-terms.xml"
    assert _inspect(path)["invoice"]["due_date"] is None
    result = inspect_file(path, official=False, default_payment_days=45)
    invoice = result["invoice"]
    assert (invoice["issue_date"], invoice["due_date"], invoice["due_date_derived"]) == (
        "2026-03-02", "2026-04-16", True)
    assert "CESSIO-DUE-DEFAULT" in {f["rule"] for f in result["findings"]}


def test_pdf_attachment_names_and_precedence() -> None:
    zugferd1 = _inspect(FIXTURES / "zugferd1-in-pdf.pdf")
    assert (zugferd1["syntax"], zugferd1["container"]) == ("zugferd1", "pdf")
    both = _inspect(FIXTURES / "pdf-facturx-and-zugferd1.pdf")
    assert both["syntax"] == "cii"
    assert [f["rule"] for f in both["findings"]] == ["CESSIO-PDF-MULTI"]
